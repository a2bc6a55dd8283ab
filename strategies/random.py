"""Random search: uniform samples from the space, without repeats while new ones can be found."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from nasplug.arch import Arch, arch_key
from nasplug.conditions import every_model
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy, Told


class RandomSearch(Strategy):
    """Uniformly random valid archs; skips archs already proposed (up to ``max_tries`` draws).

    Sampling without replacement means a budget equal to the space size enumerates a small
    space, which is what ground-truth comparisons expect of a random baseline.
    """

    name = "random"
    vector_tell = True  # proposals ignore the values: any number of objectives

    #: Spaces up to this size are enumerated when random draws keep hitting seen archs.
    ENUMERATE_LIMIT = 200_000

    @checked("strategy")
    def __init__(self, space: SearchSpace, seed: int = 0,
                 max_tries: Annotated[int, Field(ge=1, le=1_000_000)] = 100) -> None:
        super().__init__(space, seed)
        self.max_tries = max_tries
        self.seen: set[str] = set()

    def ask(self, n: int = 1) -> list[Arch]:
        proposals = []
        for _ in range(n):
            arch = self.space.sample(self.rng)
            for _ in range(self.max_tries - 1):
                if arch_key(arch) not in self.seen:
                    break
                arch = self.space.sample(self.rng)
            if arch_key(arch) in self.seen:  # nearly exhausted: pick uniformly among the unseen
                arch = self._unseen() or arch
            self.seen.add(arch_key(arch))
            proposals.append(arch)
        return proposals

    def _unseen(self) -> Arch | None:
        """A uniformly chosen valid arch not yet seen, for small spaces (else None)."""
        if self.space.size() > self.ENUMERATE_LIMIT:
            return None
        unseen = []
        for arch in every_model(self.space):  # one name per model
            if arch_key(arch) not in self.seen and self.space.is_valid(arch):
                unseen.append(arch)
        return self.rng.choice(unseen) if unseen else None

    def tell(self, arch: Arch, score: Told) -> None:
        self.seen.add(arch_key(arch))
