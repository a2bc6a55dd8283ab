"""The Strategy interface: ask for architectures, tell their scores. Pure Python, no torch."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping

from nasplug.arch import Arch
from nasplug.space import SearchSpace


class Strategy(ABC):
    """A searcher over a :class:`SearchSpace`, driven through ask/tell.

    The search loop calls :meth:`ask` for a batch, evaluates the batch, then calls
    :meth:`tell` once per asked arch, in the order they were asked, before asking again.
    Strategies always maximise (the loop flips the sign for minimised metrics).

    Determinism: given the same seed and the same sequence of asks and tells, a strategy
    proposes the same archs. Resume relies on it (the log is replayed into a fresh strategy).
    Use ``self.rng`` for all randomness.
    """

    #: Registered name, filled in by subclasses.
    name: str = "strategy"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)

    @abstractmethod
    def ask(self, n: int = 1) -> list[Arch]:
        """Propose up to ``n`` archs. An empty list means the strategy has finished."""

    def observe(self, arch: Arch, metrics: Mapping[str, float]) -> None:
        """Every metric of a scored arch (the objective, ``params``, ``flops``, losses ...),
        called by the search loop just before :meth:`tell`. Default: ignored. A strategy
        may keep them (Optuna stores them as user attributes of the trial)."""
        return None

    def memory_hint(self) -> int | None:
        """How many of the best archs scored so far the strategy builds its next proposals
        on (evolution: its parents), or None when it has no such pool. Called once, before
        the search starts, to size what the evaluator keeps between calls (the hidden states
        of the archs children will resume from); it never changes a result. Default: None."""
        return None

    @abstractmethod
    def tell(self, arch: Arch, score: float | None) -> None:
        """Report the score of an asked arch (higher is better).

        ``None`` means the arch was rejected by a constraint or its evaluation failed; a
        strategy treats it as deleted (never a parent, never proposed again if it can help it).
        """
