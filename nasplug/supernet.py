"""The Supernet base: one module holding every candidate's weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeGuard

import torch.nn as nn

from nasplug.arch import Arch


class Supernet(nn.Module):
    """A weight-sharing model routed through one architecture at a time.

    Contract (checked by :class:`nasplug.testing.SpaceContract`): in eval mode,
    ``supernet.extract(arch)(x)`` equals ``supernet.using(arch)(x)`` exactly, for trained
    weights and buffers (BatchNorm statistics) too.

    ``routable`` is False on a module that :meth:`extract` froze from a supernet (it keeps
    the class but no longer holds choices): training loops treat it as a standalone model.
    """

    routable: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.active: Arch | None = None

    def activate(self, arch: Arch) -> None:
        """Route the following forward passes through ``arch``. Called once per training step
        by the single-path sampler and once per candidate by the evaluator. Default: tell
        every :class:`nasplug.nn.Choosable` block inside (op choices, elastic layers)."""
        from nasplug.nn.choice import choose_all

        choose_all(self, arch)
        self.active = dict(arch)

    @contextmanager
    def using(self, arch: Arch) -> Iterator[Supernet]:
        """Context manager: activate ``arch``, then restore the previous one."""
        previous = self.active
        self.activate(arch)
        try:
            yield self
        finally:
            if previous is not None and previous != self.active:
                self.activate(previous)
            self.active = previous

    def require_active(self) -> Arch:
        """The active arch, or a clear error when forward is called before activate()."""
        if self.active is None:
            raise RuntimeError(f"{type(self).__name__}: call activate(arch) or using(arch) before forward")
        return self.active

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[Any, ...]:
        """Positional arguments for one forward pass on random data (for contract tests)."""
        raise NotImplementedError(f"{type(self).__name__} defines no example_input()")

    def extract(self, arch: Arch) -> nn.Module:
        """A standalone module for ``arch`` holding copies of the inherited weights (and
        buffers, e.g. BatchNorm statistics), in this supernet's train/eval mode.

        Default: a copy of this supernet in which every :class:`nasplug.nn.Choosable` block
        is frozen to its choice under ``arch`` (plain ``nn.Linear``, ``nn.Conv2d``, the chosen
        op); the copy keeps this class's ``forward`` and is not routable any more. Supernets
        not built from those blocks override this. The supernet keeps its routing (the arch
        active before the call) and the global RNG is not drawn from.
        """
        from nasplug.nn.choice import freeze

        with self.using(arch):  # checks the arch against every block, with their clear errors
            frozen = freeze(self, arch)
        assert isinstance(frozen, Supernet)  # freeze copies a module that is not a block, class and all
        frozen.routable = False
        frozen.active = dict(arch)
        return frozen


def is_supernet(model: nn.Module) -> TypeGuard[Supernet]:
    """True for a supernet that can be routed through archs (not a frozen extract)."""
    return isinstance(model, Supernet) and model.routable
