"""Elastic depth, feed-forward blocks and a head that follows the last active layer.

Frozen, each becomes plain torch: ``ElasticDepth`` the ``nn.Sequential`` of its first d
blocks (each frozen), ``ElasticFFN`` ``nn.Sequential(Linear, activation, Linear)``,
``ElasticHead`` an ``nn.Linear`` of the chosen input width.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.nn.choice import Choosable, freeze
from nasplug.nn.elastic import ElasticLinear

#: Activations by name (``ElasticFFN(activation=...)``); a module may be given instead.
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU, "sigmoid": nn.Sigmoid}


class ElasticDepth(Choosable):
    """A stack of blocks of which the arch's ``key`` keeps the first d (d from 0 to all).

    Calling it runs the kept blocks in order on one input, as ``nn.Sequential`` does;
    iterating over it yields the kept blocks, so blocks that take more arguments (a mask)
    are run with ``for block in self.layers: x = block(x, mask)``, which works unchanged on
    the frozen ``nn.Sequential``. Blocks may be elastic themselves.

    Example::

        self.layers = ElasticDepth([nn.Sequential(ElasticLinear(...), nn.ReLU()) for _ in range(4)], "depth")
        h = self.layers(x)                     # arch {"depth": 2, ...}: blocks 0 and 1
        frozen = self.layers.freeze(arch, {})  # nn.Sequential of the 2 blocks, frozen
    """

    def __init__(self, blocks: Sequence[nn.Module], key: str) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.key, self.keys = key, (key,)
        self.depth = len(self.blocks)

    def _depth(self, arch: Arch) -> int:
        if self.key not in arch:
            raise NasplugError(f"arch: missing choice {self.key!r} (the depth of an ElasticDepth)")
        depth = arch[self.key]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= len(self.blocks):
            raise NasplugError(f"arch.{self.key}: {depth!r} is not a depth this stack holds (0..{len(self.blocks)})")
        return depth

    def choose(self, arch: Arch) -> None:
        self.depth = self._depth(arch)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(list(self.blocks)[: self.depth])

    def __len__(self) -> int:
        return self.depth

    def forward(self, x: Any) -> Any:
        for block in self:
            x = block(x)
        return x

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Sequential:
        return nn.Sequential(*(freeze(block, arch, memo) for block in list(self.blocks)[: self._depth(arch)]))


class ElasticFFN(Choosable):
    """Transformer feed-forward block ``Linear(hidden -> ffn), activation, Linear(ffn -> hidden)``
    whose intermediate width is the arch's ``ffn_key`` (and hidden width ``hidden_key``, None:
    fixed), the first k neurons of one pair of weights.

    Example::

        ffn = ElasticFFN(64, 256, ffn_key="ffn0", hidden_key="hidden")
        y = ffn(x)                      # x [..., hidden] -> [..., hidden], ffn0 neurons used
        frozen = ffn.freeze(arch, {})   # nn.Sequential(nn.Linear, nn.GELU, nn.Linear)
    """

    def __init__(self, hidden: int, ffn: int, ffn_key: str | None, hidden_key: str | None = None,
                 activation: str | nn.Module = "gelu", bias: bool = True) -> None:
        super().__init__()
        self.keys = tuple(k for k in (hidden_key, ffn_key) if k is not None)
        self.fc1 = ElasticLinear(hidden, ffn, bias=bias, in_key=hidden_key, out_key=ffn_key)
        self.act = _activation(activation)
        self.fc2 = ElasticLinear(ffn, hidden, bias=bias, in_key=ffn_key, out_key=hidden_key)

    def choose(self, arch: Arch) -> None:
        for layer in (self.fc1, self.fc2):
            layer.choose(arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Sequential:
        return nn.Sequential(freeze(self.fc1, arch, memo), freeze(self.act, arch, memo), freeze(self.fc2, arch, memo))


class ElasticHead(ElasticLinear):
    """``nn.Linear(in_features, out_features)`` reading the output of the last active layer of
    a stack: its input width is ``arch[widths[d - 1]]`` where ``d = arch[depth_key]`` (the
    width of layer d), or when d is 0 the stack's input width (``arch[input_key]``; None:
    ``in_features``).

    Example::

        head = ElasticHead(64, 1, widths=["width0", "width1", "width2"], depth_key="depth")
        # arch {"depth": 2, "width1": 32, ...}: nn.Linear(32, 1) frozen
    """

    def __init__(self, in_features: int, out_features: int, widths: Sequence[str], depth_key: str,
                 input_key: str | None = None, bias: bool = True, out_key: str | None = None) -> None:
        super().__init__(in_features, out_features, bias=bias, out_key=out_key)
        self.widths, self.depth_key, self.input_key = tuple(widths), depth_key, input_key
        self.keys = tuple(k for k in (depth_key, input_key, *self.widths, out_key) if k is not None)

    def _widths(self, arch: Arch) -> tuple[int, int]:
        if self.depth_key not in arch:
            raise NasplugError(f"arch: missing choice {self.depth_key!r} (the depth an ElasticHead follows)")
        depth = arch[self.depth_key]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= len(self.widths):
            raise NasplugError(f"arch.{self.depth_key}: {depth!r} is not a depth this head follows "
                               f"(0..{len(self.widths)})")
        key = self.input_key if depth == 0 else self.widths[depth - 1]
        width = self._width(arch, key, self.in_max, "in")
        return width, self._width(arch, self.out_key, self.out_max, "out")


def _activation(activation: str | nn.Module) -> nn.Module:
    if isinstance(activation, nn.Module):
        return activation
    if activation not in ACTIVATIONS:
        raise NasplugError(f"activation: {activation!r} is not known; allowed: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[activation]()


__all__ = ["ACTIVATIONS", "ElasticDepth", "ElasticFFN", "ElasticHead"]
