"""A two-layer space and a float-input task for the zero-cost evaluator tests (named in
recipes as ``mlp_kit:MLPSpace`` / ``mlp_kit:MLPTask`` once this folder is on the import path)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.space import SearchSpace
from nasplug.task import Task


class MLPSpace(SearchSpace):
    """``Linear(3, hidden) -> ReLU -> Linear(hidden, 2)``; one choice: hidden 4 or 6."""

    name = "mlp"

    def choices(self):
        return {"hidden": (4, 6)}

    def metrics(self, arch):
        h = arch["hidden"]
        return {"params": float(3 * h + h + 2 * h + 2)}

    def build(self, arch):  # build_model seeds torch inside fork_rng
        return nn.Sequential(nn.Linear(3, arch["hidden"]), nn.ReLU(), nn.Linear(arch["hidden"], 2))


class MLPTask(Task):
    name = "mlp-task"
    metrics = {"acc": "maximize", "loss": "minimize"}

    def load(self, env):
        gen = torch.Generator().manual_seed(7)
        x = torch.randn(60, 3, generator=gen)
        y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
        return {"train": (x[:40], y[:40]), "heldout": (x[40:], y[40:])}

    def batch_loss(self, model, batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits, y, reduction="sum"), {"acc": (logits.argmax(1) == y).sum()}
