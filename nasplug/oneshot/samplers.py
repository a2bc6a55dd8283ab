"""Which architectures a supernet trains at each step (single-path one-shot sampling).

A sampler is called once per optimizer step with the step number and returns the archs whose
paths that step trains; their gradients are accumulated into one update. Every choice is
derived from ``(seed, step)``, so a resumed run draws the same archs again: a sampler holds
no state and a checkpoint stores none for it.
"""

from __future__ import annotations

import random
from typing import Annotated, Any

from pydantic import Field

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.oneshot.seeds import derive_seed
from nasplug.registry import checked
from nasplug.space import SearchSpace


class UniformSampler:
    """SPOS (Guo et al. 2020): one arch per step, uniform over the space's valid archs."""

    name = "uniform"

    def __init__(self, space: SearchSpace, seed: int) -> None:
        self.space, self.seed = space, seed

    def __call__(self, step: int) -> list[Arch]:
        return [self.space.sample(random.Random(derive_seed(self.seed, "arch", step)))]


class FairSampler:
    """FairNAS strict fairness (Chu et al., ICCV 2021): every step trains m paths, m = the
    most options any choice has; for each choice a random permutation of its options gives
    path j its j-th option, so every option of every choice is trained exactly once per step
    (choices with fewer options repeat random ones). The loop accumulates the paths'
    gradients (their mean) into one update. A step costs m single-path steps: compare it with
    uniform sampling at ``steps / m``.

    A space with constraints may make a path invalid; the step's permutations are then drawn
    again (up to ``max_tries`` times), and the invalid paths are replaced by uniform samples.
    """

    name = "fair"

    @checked("sampler")
    def __init__(self, space: SearchSpace, seed: int,
                 max_tries: Annotated[int, Field(ge=1, le=1_000_000)] = 100) -> None:
        self.space, self.seed, self.max_tries = space, seed, max_tries
        self.paths = max(len(options) for options in space.choices().values())

    def __call__(self, step: int) -> list[Arch]:
        rng = random.Random(derive_seed(self.seed, "arch", step))
        choices = self.space.choices()
        archs: list[Arch] = []
        for _ in range(self.max_tries):
            orders = {}
            for key, options in choices.items():
                order = list(options)
                rng.shuffle(order)
                orders[key] = order + [rng.choice(list(options)) for _ in range(self.paths - len(order))]
            archs = [{key: orders[key][j] for key in choices} for j in range(self.paths)]
            if all(self.space.is_valid(a) for a in archs):
                return archs
        return [a if self.space.is_valid(a) else self.space.sample(rng) for a in archs]


SAMPLERS: dict[str, type[Any]] = {"uniform": UniformSampler, "fair": FairSampler}


def build_sampler(name: str, space: SearchSpace, seed: int) -> Any:
    """The sampler registered as ``name``; NasplugError listing the known ones."""
    if name not in SAMPLERS:
        raise NasplugError(f"sampler: {name!r} is not a sampler; allowed: {', '.join(SAMPLERS)}")
    return SAMPLERS[name](space, seed)
