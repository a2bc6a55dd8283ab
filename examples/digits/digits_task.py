"""A classification task on scikit-learn's 8x8 digits (1,797 images, shipped with sklearn).

The images are split once, by a seeded permutation, into train / held-out (scores the
candidates during the search) / test (reported after retraining only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nasplug.task import Task


class DigitsTask(Task):
    name = "digits"
    metrics = {"acc": "maximize", "loss": "minimize"}

    def __init__(self, heldout: float = 0.2, test: float = 0.2, seed: int = 0) -> None:
        self.heldout, self.test, self.seed = heldout, test, seed

    def load(self, env):
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0  # pixel values 0..16
        y = torch.tensor(y, dtype=torch.long)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
        n_test, n_held = round(self.test * len(y)), round(self.heldout * len(y))
        parts = {"test": order[:n_test], "heldout": order[n_test:n_test + n_held], "train": order[n_test + n_held:]}
        return {name: (x[idx], y[idx]) for name, idx in parts.items()}

    def batch_loss(self, model, batch):
        x, y = batch
        logits = model(x)
        return F.cross_entropy(logits, y, reduction="sum"), {"acc": (logits.argmax(dim=1) == y).sum()}

    def baseline(self):  # always predicting the most frequent training class
        _, y_train = self.split("train")
        _, y_held = self.split("heldout")
        return {"acc": float((y_held == torch.bincount(y_train).argmax()).float().mean())}
