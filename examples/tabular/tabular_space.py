"""A regression MLP space with elastic depth, per-layer width and activation, and LayerNorm.

``depth`` keeps the first 1..4 layers; each layer picks a width and an activation. The width
and activation of a layer below the depth change nothing, so they are conditional on
``depth``: 4 x 9^4 = 26,244 arch names are 9 + 81 + 729 + 6,561 = 7,380 models, and
``size()``, the search and ``compare --ground-truth`` count models. Built from nasplug.nn's
blocks, the supernet gets ``extract(arch)`` (plain torch modules) for free.
"""

from __future__ import annotations

import torch
from torch import nn

from nasplug.conditions import at_least
from nasplug.nn import ElasticDepth, ElasticHead, ElasticLayerNorm, ElasticLinear, OpChoice
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class TabularSpace(SearchSpace):
    name = "tabular-mlp"

    def __init__(self, features: int = 10, layers: int = 4, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        self.features, self.layers, self.widths = features, layers, tuple(widths)
        self._choices = {"depth": tuple(range(1, layers + 1))}
        for i in range(layers):
            self._choices |= {f"width{i}": self.widths, f"act{i}": tuple(ACTIVATIONS)}
        self._conditions = {f"{kind}{i}": at_least("depth", i + 1) for i in range(layers) for kind in ("width", "act")}

    def choices(self):
        return self._choices

    def conditions(self):  # layer i's width and activation matter only when depth > i
        return self._conditions

    def build_supernet(self):
        return TabularSupernet(self)


class TabularSupernet(Supernet):
    def __init__(self, space: TabularSpace) -> None:
        super().__init__()
        w = max(space.widths)
        self.layers = ElasticDepth([nn.Sequential(
            ElasticLinear(space.features if i == 0 else w, w, in_key=None if i == 0 else f"width{i - 1}",
                          out_key=f"width{i}"),
            ElasticLayerNorm(w, f"width{i}"),
            OpChoice(f"act{i}", {name: act() for name, act in ACTIVATIONS.items()})) for i in range(space.layers)],
            "depth")
        self.head = ElasticHead(w, 1, widths=[f"width{i}" for i in range(space.layers)], depth_key="depth")

    def forward(self, x):  # [B, features] -> [B]
        return self.head(self.layers(x)).squeeze(-1)

    def example_input(self, batch: int = 2, seed: int = 0):
        return (torch.randn(batch, self.layers.blocks[0][0].in_max, generator=torch.Generator().manual_seed(seed)),)
