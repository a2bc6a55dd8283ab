"""Few-shot supernets (Zhao et al., "Few-shot Neural Architecture Search", ICML 2021).

One weight-sharing supernet makes archs that differ in a choice share weights that suit
neither well. Few-shot NAS splits the supernet on one choice: a copy per option, each
warm-started from the one-shot supernet and trained further only on the archs with its
option. :class:`FewShotSupernet` holds the copies and routes an arch to the copy of its
option; everything else (the forward pass, the heads, ``extract``) is the copy's. The supernet
stage trains the one-shot supernet for the first part of the steps, then the split one for
the rest, so the total training compute equals one-shot training of the same steps (each
step still trains one path, now in one copy). The second phase has the first one's seed, so
its held-out figures are on the same eval archs and batches; its archs come from a sampler
seed of their own, and its data continue where the first phase stopped (:class:`Continued`).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.supernet import Supernet


class FewShotSupernet(Supernet):
    """Copies of a supernet, one per option of the choice ``key``; an arch runs in its own.

    Args:
        base: the (trained) one-shot supernet; each copy starts as a deep copy of it.
        key: the choice to split on (e.g. ``L00``, the first sub-layer).
        options: the options of ``key``; one copy each.
    """

    # The prefix-sharing evaluator walks one shared embedding for all archs: not valid across
    # copies, so these are hidden (arch by arch evaluation gives the same results).
    route = None
    embed = None
    run_layer = None

    def __init__(self, base: Supernet, key: str, options: Sequence[Any]) -> None:
        super().__init__()
        if not options:
            raise NasplugError(f"supernet.split: the choice {key!r} has no options")
        self.key, self.options = key, list(options)
        self.copies = nn.ModuleDict({str(o): copy.deepcopy(base) for o in self.options})
        self._set_current(self._option_copy(self.options[0]))

    def _set_current(self, module: Supernet) -> None:
        object.__setattr__(self, "current", module)  # not a second registration of a copy

    def _copy(self, arch: Arch) -> Supernet:
        if self.key not in arch:
            raise NasplugError(f"arch: missing choice {self.key!r} (the few-shot supernet is split on it)")
        value = arch[self.key]
        if value not in self.options:
            raise NasplugError(f"arch.{self.key}: {value!r} is not an option; allowed: "
                               f"{', '.join(map(repr, self.options))}")
        return self._option_copy(value)

    def _option_copy(self, option: Any) -> Supernet:
        copy_ = self.copies[str(option)]
        assert isinstance(copy_, Supernet)  # deep copies of the base supernet
        return copy_

    def activate(self, arch: Arch) -> None:
        self._set_current(self._copy(arch))
        self.current.activate(arch)
        self.active = dict(arch)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.require_active()
        return self.current(*args, **kwargs)

    def extract(self, arch: Arch, *args: Any, **kwargs: Any) -> nn.Module:
        return self._copy(arch).extract(arch, *args, **kwargs)

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[Any, ...]:
        return self.current.example_input(batch, seed)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            # The task's heads and helpers (mlm_logits, discriminator_logits, config, ...) are
            # the active copy's.
            current = self.__dict__.get("_modules", {}).get("copies")
            if current is None or name.startswith("_"):
                raise
            return getattr(self.__dict__["current"], name)


class Continued:
    """``task`` whose training batches start after the first ``skip`` batches of the same
    settings: the few-shot phase sees the data the one-shot phase did not reach yet, rather
    than the same batches again. Everything else is ``task``'s."""

    def __init__(self, task: Any, skip: int) -> None:
        self._task, self._skip = task, skip

    def training_batches(self, batch_size: int, seed: int) -> Any:
        from nasplug.oneshot.batches import BatchIterator

        batches = self._task.training_batches(batch_size, seed)
        if isinstance(batches, BatchIterator) and self._skip:  # jump: n batches per epoch, epochs roll lazily
            n, k = len(batches), self._skip
            batches.load_state_dict({**batches.state_dict(), "epoch": (k - 1) // n, "index": (k - 1) % n + 1})
        else:
            for _ in range(self._skip):
                next(batches)
        return batches

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_task"], name)
