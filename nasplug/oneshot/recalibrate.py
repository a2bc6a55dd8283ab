"""BatchNorm recalibration for inherited-weights evaluation (SPOS, Guo et al. 2020).

While a supernet trains, each BatchNorm layer's running statistics mix every path that ran
through it, so they fit no single arch. Before scoring an arch, SPOS resets them and
re-estimates them on a few training batches through that arch. :class:`BatchNormRecalibration`
does that on fixed batches (the same for every arch), changing no weight, and puts the
supernet's own statistics back afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from nasplug.errors import NasplugError


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1d/2d/3d, tracking running statistics) in ``model``."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def running_statistics(layer: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Running mean, running variance and batch count of a layer that tracks them."""
    mean, var, count = layer.running_mean, layer.running_var, layer.num_batches_tracked
    assert mean is not None and var is not None and count is not None, "BatchNorm without running statistics"
    return mean, var, count


class BatchNormRecalibration:
    """Re-estimate BatchNorm statistics through the active arch on fixed training batches.

    Args:
        batches: micro-batches as the task's ``micro_batches`` gives them, on the device.
        counts: the counts that came with them (the loss needs them; its value is unused).
    """

    def __init__(self, batches: Sequence[Any], counts: Mapping[str, int]) -> None:
        if not batches:
            raise NasplugError("evaluator.recalibrate: needs at least one training batch")
        self.batches, self.counts = list(batches), dict(counts)

    @classmethod
    def from_task(
        cls, task: Any, num_batches: int, batch_size: int, seed: int, device: torch.device
    ) -> BatchNormRecalibration:
        """The first ``num_batches`` training batches of ``task`` shuffled with ``seed``."""
        stream = task.training_batches(batch_size, seed)
        batches, counts = [], {}
        for step in range(1, num_batches + 1):
            micro, counts = task.micro_batches(next(stream), step, seed, [slice(0, batch_size)], device)
            batches += micro
        return cls(batches, counts)

    @contextlib.contextmanager
    def applied(self, model: nn.Module, task: Any, aux: Mapping[str, nn.Module]) -> Iterator[None]:
        """Inside: ``model``'s BatchNorm layers hold statistics of the active arch alone
        (cumulative averages over the batches); on exit the saved statistics return."""
        layers = batchnorms(model)
        saved = [(tuple(t.clone() for t in running_statistics(m)), m.momentum) for m in layers]
        try:
            for m in layers:
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the recalibration batches
                m.train()
            with torch.no_grad():
                for batch in self.batches:
                    task.loss(model, batch, self.counts, aux)
            for m in layers:
                m.eval()
            yield
        finally:
            with torch.no_grad():
                for m, (values, momentum) in zip(layers, saved):
                    for stat, value in zip(running_statistics(m), values):
                        stat.copy_(value)
                    m.momentum = momentum
                    m.eval()
