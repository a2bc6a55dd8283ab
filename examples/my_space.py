"""A user-defined search space in one file: copy it, rename it, change the choices.

Use it from a recipe with ``space: {name: "my_space:MLPSpace"}`` (this folder on
PYTHONPATH), or register it as an entry point in the ``nasplug.spaces`` group.
"""

from __future__ import annotations

import torch.nn as nn

from nasplug.space import SearchSpace


class MLPSpace(SearchSpace):
    """Depth, width and activation of a small MLP."""

    name = "mlp"

    def __init__(self, inputs: int = 16, max_params: int = 20_000) -> None:
        self.inputs, self.max_params = inputs, max_params

    def choices(self):
        return {"depth": (1, 2, 3, 4), "width": (16, 32, 64, 128), "act": ("relu", "gelu", "tanh")}

    def metrics(self, arch):
        depth, width = arch["depth"], arch["width"]
        params = self.inputs * width + width + (depth - 1) * (width * width + width) + width + 1
        return {"params": float(params)}

    def violation(self, arch):
        params = self.metrics(arch)["params"]
        return f"params {params:g} > max_params {self.max_params}" if params > self.max_params else None

    def build(self, arch):
        act = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}[arch["act"]]
        layers, width = [], self.inputs
        for _ in range(arch["depth"]):
            layers += [nn.Linear(width, arch["width"]), act()]
            width = arch["width"]
        return nn.Sequential(*layers, nn.Linear(width, 1))


class ProxyScore:
    """A stand-in evaluator: prefers capacity, penalises size (replace with real training)."""

    metric_directions = {"score": "maximize"}  # which way each metric it returns is better

    def __init__(self, space: MLPSpace) -> None:
        self.space = space

    def __call__(self, arch):
        params = self.space.metrics(arch)["params"]
        bonus = {"relu": 0.0, "gelu": 0.3, "tanh": -0.2}[arch["act"]]
        return {"score": arch["depth"] * 0.5 + arch["width"] / 64 + bonus - params / 10_000, "params": params}
