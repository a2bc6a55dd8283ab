"""Modules that follow the active arch, and freezing a supernet into a standalone model.

A :class:`Choosable` module reads its part of an arch in :meth:`Choosable.choose` (the
supernet calls it on every such module when it is routed through an arch) and can give a
plain module holding copies of the weights of that choice (:meth:`Choosable.freeze`).
:func:`freeze` copies a whole module tree that way, so a supernet built from these blocks
gets ``extract(arch)`` for free, BatchNorm statistics included (as NNI's mutable layers and
Once-for-all's elastic layers do).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError


class Choosable(nn.Module):
    """A module whose computation depends on one or more choices of the active arch."""

    #: The choice names this module reads (for error messages and checks).
    keys: tuple[str, ...] = ()

    def choose(self, arch: Arch) -> None:
        """Read this module's choices from ``arch``. Called by ``Supernet.activate``."""
        raise NotImplementedError

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Module:
        """A plain module computing what this one computes under ``arch``, holding copies
        of the weights and buffers it uses. ``memo`` keeps shared tensors shared: copy them
        with :func:`shared_copy` (weights tied between modules stay tied in the copy)."""
        raise NotImplementedError

    def _value(self, arch: Arch, key: str, options: Any) -> Any:
        if key not in arch:
            raise NasplugError(f"arch: missing choice {key!r} (needed by {type(self).__name__})")
        value = arch[key]
        if value not in options:
            raise NasplugError(f"arch.{key}: {value!r} is not an option of this supernet; allowed: "
                               f"{', '.join(map(repr, options))}")
        return value


class OpChoice(Choosable):
    """One of several candidate modules, picked by the arch's choice ``key``.

    Args:
        key: the choice name in the space (``"op0"``).
        ops: option -> module (every candidate's weights live here, shared by all archs
            that pick it).
    """

    def __init__(self, key: str, ops: Mapping[str, nn.Module]) -> None:
        super().__init__()
        if not ops:
            raise NasplugError(f"OpChoice {key!r}: needs at least one op")
        self.key = key
        self.keys = (key,)
        self.options = list(ops)  # as the space names them (str, int, ...); ModuleDict keys are their str
        self.ops = nn.ModuleDict({str(k): v for k, v in ops.items()})
        self.chosen: str | None = None

    def choose(self, arch: Arch) -> None:
        self.chosen = str(self._value(arch, self.key, self.options))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.chosen is None:
            raise RuntimeError(f"OpChoice {self.key!r}: route the supernet through an arch first (activate/using)")
        return self.ops[self.chosen](*args, **kwargs)

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Module:
        return freeze(self.ops[str(self._value(arch, self.key, self.options))], arch, memo)


def choose_all(module: nn.Module, arch: Arch) -> None:
    """Call ``choose(arch)`` on every :class:`Choosable` inside ``module``."""
    for sub in module.modules():
        if isinstance(sub, Choosable):
            sub.choose(arch)


def freeze(module: nn.Module, arch: Arch, memo: dict[Any, Any] | None = None) -> nn.Module:
    """A copy of ``module`` with every :class:`Choosable` replaced by its frozen form under
    ``arch``; parameters and buffers are copied (shared ones stay shared, and a module used
    in two places is one module in the copy), so the result owns its weights and the
    supernet is untouched. Other modules keep their class and ``forward``, so the copy
    computes what the routed supernet computes. Draws nothing from the global RNG."""
    memo = {} if memo is None else memo
    key = ("module", id(module))
    if key in memo:
        return memo[key]
    if isinstance(module, Choosable):
        memo[key] = module.freeze(arch, memo)
        return memo[key]
    new = memo[key] = copy.copy(module)
    new._parameters = {k: None if p is None else shared_copy(p, memo) for k, p in module._parameters.items()}
    new._buffers = {k: None if b is None else shared_copy(b, memo) for k, b in module._buffers.items()}
    new._modules = {k: None if m is None else freeze(m, arch, memo) for k, m in module._modules.items()}
    return new


def shared_copy(tensor: Any, memo: dict[Any, Any], out: int | None = None, inp: int | None = None) -> Any:
    """A detached copy of ``tensor`` (a parameter stays a parameter), or of its leading slice
    ``tensor[:out, :inp]`` (the first channels, as elastic layers take them), made once per
    tensor and slice: every frozen module that uses the same slice of the same tensor gets
    the same copy. The whole tensor is keyed by its id alone, so an elastic layer at full
    width shares the copy with a plain module tied to the same weight."""
    index = tuple(slice(None) if n is None else slice(0, n) for n in (out, inp))[: tensor.dim()]
    part = tensor[index]
    key: Any = id(tensor) if part.shape == tensor.shape else (id(tensor), tuple(part.shape))
    if key not in memo:
        data = part.detach().clone()
        memo[key] = nn.Parameter(data, requires_grad=tensor.requires_grad) if isinstance(tensor, nn.Parameter) else data
    return memo[key]
