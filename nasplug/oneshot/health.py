"""Is training sound? Divergence detection and the one-line error that says what to do.

The training loop feeds :class:`Health` every step's loss and gradient norm; each checkpoint
is marked healthy or not (see :func:`nasplug.oneshot.checkpoint.save_checkpoint`), and a run
that ends, or meets a non-finite figure, while unhealthy stops with :func:`divergence_error`,
which names the last healthy checkpoint to resume from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from nasplug.errors import NasplugError
from nasplug.oneshot import checkpoint as ckpt


class Health:
    """Finite losses that do not run away, and finite, bounded weights.

    A loss is "running away" when its moving average exceeds ``factor`` times the lowest
    moving average seen (with a floor, so a loss near zero is not judged by ratios). A
    checkpoint written then is marked unhealthy: resuming it would diverge again.
    """

    def __init__(self, factor: float = 10.0, floor: float = 1.0, max_weight: float = 1e6) -> None:
        self.factor, self.floor, self.max_weight = factor, floor, max_weight
        self.ema: float | None = None
        self.best: float | None = None
        self.bad = False

    def update(self, what: str, value: float) -> None:
        """Called with every step's ``"loss"`` and ``"gradient norm"``."""
        if not math.isfinite(value):
            self.bad = True
        elif what == "loss":
            self.ema = value if self.ema is None else 0.9 * self.ema + 0.1 * value
            self.best = self.ema if self.best is None else min(self.best, self.ema)
            self.bad = self.ema > self.factor * max(self.best, self.floor)

    def healthy(self, params: Sequence[torch.Tensor]) -> bool:
        """Sound now: the loss is not running away and every weight is finite and bounded."""
        if self.bad:
            return False
        with torch.no_grad():
            return all(bool(torch.isfinite(p).all()) and float(p.abs().max()) < self.max_weight
                       for p in params if p.numel())

    def problem(self) -> str:
        """What is wrong, in words, once :meth:`healthy` said False."""
        if self.bad and self.ema is not None and self.best is not None:
            return (f"the loss diverged (its moving average {self.ema:.4g} is over {self.factor:g}x its lowest, "
                    f"{self.best:.4g})")
        return f"the weights are not finite or grew past {self.max_weight:g} in absolute value"


def divergence_error(problem: str, ckpt_root: Path, run_dir: Path) -> NasplugError:
    """The error that stops a diverged run: ``problem``, then where to resume from and how."""
    good = ckpt.last_good(ckpt_root)
    if good is not None:
        where = (f"the last good checkpoint (step {good['step']}) is in {ckpt_root}; resume from it with a "
                 "lower learning rate (--resume --set <stage>.lr=...) or precision: fp32")
    else:
        where = (f"no checkpoint from before the divergence is usable: delete {run_dir} (or its checkpoint "
                 "folder and metrics.jsonl) and start again with a lower learning rate or precision: fp32")
    return NasplugError(f"training: {problem}; {where}")
