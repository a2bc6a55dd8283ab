"""Elastic-width layers: one weight at the largest width, the first k channels for width k.

Following Once-for-all (Cai et al. 2020) and slimmable networks (Yu et al. 2019): a width
choice selects the first k output (or input) channels of a shared weight, and every width
keeps its own BatchNorm ("switchable" normalisation), since the statistics of 8 channels
say nothing about those of 32. Widths come from choices of the arch: ``in_key`` /
``out_key`` name them (None: fixed at the largest width). Frozen, each layer becomes the
plain ``nn.Linear`` / ``nn.Conv2d`` / ``nn.BatchNorm2d`` of the chosen widths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.nn.choice import Choosable, freeze, shared_copy


class _Elastic(Choosable):
    """Shared plumbing: which widths the arch picks for the input and output channels."""

    in_unit: int = 1
    out_unit: int = 1

    def _setup(self, in_max: int, out_max: int, in_key: str | None, out_key: str | None) -> None:
        self.in_max, self.out_max, self.in_key, self.out_key = in_max, out_max, in_key, out_key
        self.keys = tuple(k for k in (in_key, out_key) if k is not None)
        self.in_now, self.out_now = in_max, out_max

    def _widths(self, arch: Arch) -> tuple[int, int]:
        return (self._width(arch, self.in_key, self.in_max, "in", self.in_unit),
                self._width(arch, self.out_key, self.out_max, "out", self.out_unit))

    def _width(self, arch: Arch, key: str | None, most: int, side: str, unit: int = 1) -> int:
        """The choice's value times ``unit`` (attention: heads x head size), checked."""
        if key is None:
            return most
        if key not in arch:
            raise NasplugError(f"arch: missing choice {key!r} (the {side} width of a {type(self).__name__})")
        width = arch[key]
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width * unit <= most:
            raise NasplugError(f"arch.{key}: {width!r} is not a width this layer holds (1..{most // unit})")
        return width * unit

    def choose(self, arch: Arch) -> None:
        self.in_now, self.out_now = self._widths(arch)

    def _weight(self) -> torch.Tensor:
        w = self.weight[: self.out_now, : self.in_now]
        # A contiguous copy when sliced: the frozen layer holds a contiguous weight, and both
        # must run the same kernel to give identical results.
        return w if w.shape == self.weight.shape else w.contiguous()

    def _bias(self) -> torch.Tensor | None:
        return None if self.bias is None else self.bias[: self.out_now]

    def _share(self, layer: nn.Module, memo: dict[Any, Any], i: int | None, o: int) -> nn.Module:
        """``layer`` holding copies of the first ``o`` x ``i`` channels of the weight (and the
        first ``o`` of the bias), shared with every frozen layer that takes the same slice of
        the same tensor: tied or reused weights stay tied in the frozen model."""
        layer.weight = shared_copy(self.weight, memo, o, i)
        if self.bias is not None:
            layer.bias = shared_copy(self.bias, memo, o)
        return layer


class ElasticLinear(_Elastic):
    """``nn.Linear(in_features, out_features)`` whose used widths follow the arch.

    ``in_unit`` / ``out_unit``: the width is the choice's value times this (a choice of heads
    with ``out_unit=head_size`` uses ``heads x head_size`` output features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, in_key: str | None = None,
                 out_key: str | None = None, in_unit: int = 1, out_unit: int = 1) -> None:
        super().__init__()
        self._setup(in_features, out_features, in_key, out_key)
        self.in_unit, self.out_unit = in_unit, out_unit
        ref = nn.Linear(in_features, out_features, bias=bias)  # the usual initialisation
        self.weight = ref.weight
        self.bias = ref.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in_now] -> [..., out_now]
        return F.linear(x, self._weight(), self._bias())

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Linear:
        i, o = self._widths(arch)
        # skip_init: no initialisation (the weights are replaced below), so no global RNG draw
        layer = nn.utils.skip_init(nn.Linear, i, o, bias=self.bias is not None, device=self.weight.device,
                                   dtype=self.weight.dtype)
        return self._share(layer, memo, i, o)


class ElasticConv2d(_Elastic):
    """``nn.Conv2d(in_channels, out_channels, kernel_size, ...)`` with arch-chosen channels.

    ``depthwise=True`` makes it a depthwise convolution (one filter per channel, groups =
    channels), whose width is ``out_key`` (input and output channels are the same).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 dilation: int = 1, bias: bool = True, in_key: str | None = None, out_key: str | None = None,
                 depthwise: bool = False) -> None:
        super().__init__()
        if depthwise and in_channels != out_channels:
            raise NasplugError("ElasticConv2d: a depthwise convolution has as many input as output channels")
        self._setup(in_channels, out_channels, out_key if depthwise else in_key, out_key)
        self.depthwise = depthwise
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        ref = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                        groups=out_channels if depthwise else 1, bias=bias)
        self.weight = ref.weight  # [out, in (1 if depthwise), k, k]
        self.bias = ref.bias

    def _weight(self) -> torch.Tensor:
        if not self.depthwise:
            return super()._weight()
        w = self.weight[: self.out_now]
        return w if w.shape == self.weight.shape else w.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, in_now, H, W] -> [B, out_now, H', W']
        groups = self.out_now if self.depthwise else 1
        return F.conv2d(x, self._weight(), self._bias(), self.stride, self.padding, self.dilation, groups)

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Conv2d:
        i, o = self._widths(arch)
        layer = nn.utils.skip_init(nn.Conv2d, i, o, self.kernel_size, self.stride, self.padding, self.dilation,
                                   groups=o if self.depthwise else 1, bias=self.bias is not None,
                                   device=self.weight.device, dtype=self.weight.dtype)
        return self._share(layer, memo, None if self.depthwise else i, o)


class ElasticBatchNorm2d(Choosable):
    """One ``nn.BatchNorm2d`` per width (switchable BatchNorm): the arch's ``key`` picks it.

    Args:
        widths: every width the choice ``key`` can take.
        key: the width choice.
        kwargs: passed to each ``nn.BatchNorm2d`` (eps, momentum, ...).
    """

    def __init__(self, widths: Sequence[int], key: str, **kwargs: Any) -> None:
        super().__init__()
        if not widths:
            raise NasplugError(f"ElasticBatchNorm2d {key!r}: needs at least one width")
        self.key, self.keys, self.widths = key, (key,), tuple(int(w) for w in widths)
        self.norms = nn.ModuleDict({str(w): nn.BatchNorm2d(w, **kwargs) for w in self.widths})
        self.now = max(self.widths)

    def choose(self, arch: Arch) -> None:
        self.now = int(self._value(arch, self.key, self.widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norms[str(self.now)](x)

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Module:
        return freeze(self.norms[str(self._value(arch, self.key, self.widths))], arch, memo)


__all__ = ["ElasticBatchNorm2d", "ElasticConv2d", "ElasticLinear"]
