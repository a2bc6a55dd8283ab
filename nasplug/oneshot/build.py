"""Building a space's supernet and standalone models, seeded, for a task.

The stages call these instead of ``space.build_supernet()`` / ``space.build(arch)`` so that
every space gets the same treatment whatever its constructor takes: ``seed`` is passed when
the space's method accepts it (else the global RNG is seeded inside ``fork_rng``, so the
caller's stream is untouched), and the task's ``head`` when the method takes a ``head``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _seeded(fn: Callable[..., Any], seed: int | None, *args: Any, **kwargs: Any) -> Any:
    if seed is not None and _accepts(fn, "seed"):
        return fn(*args, seed=seed, **kwargs)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return fn(*args, **kwargs)


def build_supernet(space: SearchSpace, seed: int | None = None) -> Supernet:
    """The space's supernet with weights initialised from ``seed``; NasplugError when the
    space has none."""
    try:
        supernet = _seeded(space.build_supernet, seed)
    except NotImplementedError:
        raise NasplugError(f"space {space.name!r} has no supernet (build_supernet); a recipe with a supernet stage "
                           "needs one, or use an evaluator that trains nothing") from None
    if not isinstance(supernet, Supernet):
        raise NasplugError(f"space {space.name!r}: build_supernet() returned a {type(supernet).__name__}, "
                           "not a nasplug Supernet")
    return supernet


def build_model(space: SearchSpace, arch: Arch, task: Any = None, seed: int | None = None) -> nn.Module:
    """A standalone model of ``arch`` with fresh weights from ``seed`` (with the task's head
    where the space's ``build`` takes one)."""
    kwargs: dict[str, Any] = {}
    head = task.head if task is not None else None
    if head is not None and _accepts(space.build, "head"):
        kwargs["head"] = head
    try:
        return _seeded(space.build, seed, arch, **kwargs)
    except NotImplementedError:
        raise NasplugError(f"space {space.name!r} builds no standalone models (build, or build_supernet + "
                           "extract); the retrain stage needs one") from None
