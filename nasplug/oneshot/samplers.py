"""Which architectures a supernet trains at each step (single-path one-shot sampling).

A sampler is called once per optimizer step with the step number and returns the archs whose
paths that step trains; their gradients are accumulated into one update. Every choice is
derived from ``(seed, step)``, so a resumed run draws the same archs again.
"""

from __future__ import annotations

import random
from typing import Any

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.oneshot.seeds import derive_seed
from nasplug.space import SearchSpace


class UniformSampler:
    """SPOS (Guo et al. 2020): one arch per step, uniform over the space's valid archs."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed
        self.rng: random.Random | None = None  # the last step's, kept for the checkpoint

    def __call__(self, step: int) -> list[Arch]:
        self.rng = random.Random(derive_seed(self.seed, "arch", step))
        return [self.space.sample(self.rng)]


SAMPLERS: dict[str, type[Any]] = {"uniform": UniformSampler}


def build_sampler(name: str, space: SearchSpace, seed: int) -> Any:
    """The sampler registered as ``name``; NasplugError listing the known ones."""
    if name not in SAMPLERS:
        raise NasplugError(f"sampler: {name!r} is not a sampler; allowed: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](space, seed)
