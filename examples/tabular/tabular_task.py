"""Regression on scikit-learn's diabetes data (442 patients, 10 features; shipped with sklearn).

Features and target are standardised with the training split's statistics; the rows are
split once, by a seeded permutation, into train / held-out (scores candidates) / test.
"""

from __future__ import annotations

import torch

from nasplug.task import Task


class DiabetesTask(Task):
    name = "diabetes"
    metrics = {"mse": "minimize", "mae": "minimize", "loss": "minimize"}

    def __init__(self, heldout: float = 0.2, test: float = 0.2, seed: int = 0) -> None:
        self.heldout, self.test, self.seed = heldout, test, seed

    def load(self, env):
        from sklearn.datasets import load_diabetes

        x, y = (torch.tensor(a, dtype=torch.float32) for a in load_diabetes(return_X_y=True))
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.seed))
        n_test, n_held = round(self.test * len(y)), round(self.heldout * len(y))
        parts = {"test": order[:n_test], "heldout": order[n_test:n_test + n_held], "train": order[n_test + n_held:]}
        train = parts["train"]
        x = (x - x[train].mean(0)) / x[train].std(0)
        y = (y - y[train].mean()) / y[train].std()
        return {name: (x[idx], y[idx]) for name, idx in parts.items()}

    def batch_loss(self, model, batch):
        x, y = batch
        error = model(x) - y
        return (error**2).sum(), {"mse": (error**2).sum().detach(), "mae": error.abs().sum().detach()}

    def baseline(self):  # always predicting the training mean (0 after standardising)
        _, y = self.split("heldout")
        return {"mse": float((y**2).mean()), "mae": float(y.abs().mean())}
