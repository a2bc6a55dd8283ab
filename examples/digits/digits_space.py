"""A CNN search space with a weight-sharing supernet, for 8x8 digit images.

Three cells, each picking an op (3x3 or 5x5 conv-BN-ReLU, 3x3 average pool, or skip), and one
width (channels) for the whole network: 4^3 x 3 = 192 architectures. The supernet holds every
op of every cell at the largest width; a width uses the first k channels of each weight and
its own BatchNorm (nasplug.nn's elastic layers), so extract(arch) comes for free.
"""

from __future__ import annotations

from torch import nn

from nasplug.nn import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear, OpChoice
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet

OPS = ("conv3", "conv5", "pool", "skip")


class DigitsSpace(SearchSpace):
    name = "digits-cnn"

    def __init__(self, cells: int = 3, widths: tuple[int, ...] = (8, 16, 24), classes: int = 10) -> None:
        self.cells, self.widths, self.classes = cells, tuple(widths), classes
        self._choices = {**{f"op{i}": OPS for i in range(cells)}, "width": self.widths}

    def choices(self):
        return self._choices

    def metrics(self, arch):  # parameters of the standalone model, counted without building it
        w, convs = arch["width"], [arch[f"op{i}"] for i in range(self.cells)]
        conv = sum(w * w * (9 if op == "conv3" else 25) + 2 * w for op in convs if op.startswith("conv"))
        return {"params": float(9 * w + 3 * w + conv + w * self.classes + self.classes)}

    def build_supernet(self):
        return DigitsSupernet(self)


def conv_bn_relu(widths: tuple[int, ...], kernel: int) -> nn.Module:
    w = max(widths)
    return nn.Sequential(ElasticConv2d(w, w, kernel, padding=kernel // 2, bias=False, in_key="width", out_key="width"),
                         ElasticBatchNorm2d(widths, "width"), nn.ReLU())


class DigitsSupernet(Supernet):
    def __init__(self, space: DigitsSpace) -> None:
        super().__init__()
        w, widths = max(space.widths), space.widths
        self.stem = nn.Sequential(ElasticConv2d(1, w, 3, padding=1, out_key="width"),
                                  ElasticBatchNorm2d(widths, "width"), nn.ReLU())
        ops = {"conv3": lambda: conv_bn_relu(widths, 3), "conv5": lambda: conv_bn_relu(widths, 5),
               "pool": lambda: nn.AvgPool2d(3, 1, 1), "skip": nn.Identity}
        self.cells = nn.ModuleList(OpChoice(f"op{i}", {op: ops[op]() for op in OPS}) for i in range(space.cells))
        self.head = ElasticLinear(w, space.classes, in_key="width")

    def forward(self, x):  # [B, 1, 8, 8] -> [B, classes]
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.head(x.mean(dim=(2, 3)))

    def example_input(self, batch: int = 2, seed: int = 0):
        import torch

        return (torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(seed)),)
