"""The Strategy interface: ask for architectures, tell their values. Pure Python, no torch."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.objectives import Objective, Objectives, describe, one_objective
from nasplug.space import SearchSpace

#: What :meth:`Strategy.tell` receives: one value per objective (a strategy with
#: ``vector_tell``), a higher-is-better score (one that has not), or None (rejected or failed).
Told = float | Sequence[float] | None


class Strategy(ABC):
    """A searcher over a :class:`SearchSpace`, driven through ask/tell.

    The run calls :meth:`set_objectives` once, right after building the strategy and
    before the first ask. The search loop then calls :meth:`ask` for a batch, evaluates the
    batch, and calls :meth:`tell` once per asked arch, in the order they were asked, before
    asking again.

    What :meth:`tell` receives depends on :attr:`vector_tell`:

    * ``vector_tell = True``: one value per objective, in each metric's own units and sign
      (a loss as measured); the strategy reads the directions from :attr:`objectives`. Such a
      strategy works for any number of objectives (evolution, random, Optuna).
    * ``vector_tell = False`` (the default, and every strategy written before objectives had
      directions): one number, higher is better; the loop flips the sign of a minimised
      metric. Such a strategy optimises one objective; a search naming more refuses it.

    Determinism: given the same seed and the same sequence of asks and tells, a strategy
    proposes the same archs. Resume relies on it (the log is replayed into a fresh strategy).
    Use ``self.rng`` for all randomness.
    """

    #: Registered name, filled in by subclasses.
    name: str = "strategy"
    #: Whether :meth:`tell` takes one value per objective in the metrics' own units (see above).
    vector_tell: ClassVar[bool] = False
    #: What the search optimises, set by :meth:`set_objectives` (default: one maximised ``score``).
    objectives: Objectives = one_objective()

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = random.Random(seed)

    def set_objectives(self, objectives: Sequence[Objective]) -> None:
        """Tell the strategy what it optimises: the objectives with their directions. Called
        once by the run right after the strategy is built (and by :func:`nasplug.search.search`
        before its first ask), never after an ask with other objectives.

        Raises:
            NasplugError: several objectives for a strategy without :attr:`vector_tell`.
        """
        objectives = tuple(objectives)
        if len(objectives) > 1 and not self.vector_tell:
            raise NasplugError(f"search.objectives: strategy {self.name!r} optimises one objective and "
                               f"{len(objectives)} are named ({describe(objectives)}); use a multi-objective "
                               "strategy: evolution (NSGA-II), random, or optuna (NSGAIISampler, TPESampler)")
        self.objectives = objectives

    def told_values(self, score: Told) -> tuple[float, ...] | None:
        """What a :attr:`vector_tell` strategy was told, as one value per objective in the
        metrics' own units (None: rejected or failed). A single number is read the old way,
        higher is better, which a caller of a one-objective search may still pass."""
        if score is None:
            return None
        if isinstance(score, (int, float)):
            if len(self.objectives) != 1:
                raise TypeError(f"tell: {len(self.objectives)} objectives need one value each, got one number")
            return (self.objectives[0].sign * float(score),)
        values = tuple(float(v) for v in score)
        if len(values) != len(self.objectives):
            raise TypeError(f"tell: {len(self.objectives)} objectives need one value each, got {len(values)}")
        return values

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
    def tell(self, arch: Arch, score: Told) -> None:
        """Report how an asked arch did: one value per objective (:attr:`vector_tell`), else
        one higher-is-better score.

        ``None`` means the arch was rejected by a constraint or its evaluation failed; a
        strategy treats it as deleted (never a parent, never proposed again if it can help it).
        """
