"""search(): the one loop that drives a strategy against an evaluator.

Per batch: ask, reject what the space or a constraint forbids, evaluate each distinct model
once (cached by the key of its canonical arch: in a space with conditional choices two names
of one model are scored once, the second a ``cached`` trial), append every trial to
``trials.jsonl`` (fsynced), then tell the strategy in the order it asked. Resume replays the
log into a fresh strategy and checks that it proposes the same archs again before continuing.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Protocol, runtime_checkable

from nasplug import sharding
from nasplug.arch import Arch, arch_key
from nasplug.constraints import Constraint, first_violation
from nasplug.errors import NasplugError, describe
from nasplug.evaluate import Evaluator, Metrics, is_finite
from nasplug.layout import RunLayout
from nasplug.objectives import DIRECTIONS, Objective, Objectives, one_objective, values_of
from nasplug.pareto import losses, nondominated
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy
from nasplug.trials import Trial, TrialLog

log = logging.getLogger(__name__)

Callback = Callable[[Trial, "SearchResult"], None]


@runtime_checkable
class ReclaimingCache(Protocol):
    """A shared evaluation cache that knows which of its entries this run scored before its
    log lost them (``nasplug compare``'s per-run view): such a trial is logged again as it
    was, from the cache, without scoring the arch again."""

    def reclaimable(self, key: str) -> bool:
        """True (once per key) for an entry this run scored whose trial its log lost."""
        ...


@dataclass
class SearchResult:
    """Every trial of a search, in log order, and how to read its objectives.

    ``metric`` / ``direction`` are the first objective's; ``objectives`` lists them all (a
    one-objective result may be built from ``metric`` and ``direction`` alone). A trial's
    ``score`` is its value of the first objective; the others are in its ``metrics``.
    """

    metric: str = "score"
    direction: str = "maximize"
    trials: list[Trial] = field(default_factory=list)
    objectives: Objectives = ()

    def __post_init__(self) -> None:
        if not self.objectives:
            self.objectives = one_objective(self.metric, self.direction)
        self.metric, self.direction = self.objectives[0].metric, self.objectives[0].direction

    def sign(self) -> float:
        return 1.0 if self.direction == "maximize" else -1.0

    @property
    def scored(self) -> list[Trial]:
        return [t for t in self.trials if t.scored]

    @property
    def best(self) -> Trial | None:
        """The best scored trial (the first one on ties); with several objectives, the front's
        best in the first objective (what ``top(1)`` gives, found in one pass: it is called
        after every trial)."""
        if len(self.objectives) > 1:
            unique = self.distinct()
            if not unique:
                return None
            top = max(self.sign() * _score(t) for t in unique)
            ties = [t for t in unique if self.sign() * _score(t) == top]
            return ties[nondominated([losses(self.objectives, self.values(t)) for t in ties])[0]]
        return next(iter(self.top(1)), None)

    def distinct(self) -> list[Trial]:
        """The first scored trial of each arch, in log order."""
        seen: set[str] = set()
        unique = []
        for trial in self.scored:
            if trial.key not in seen:
                seen.add(trial.key)
                unique.append(trial)
        return unique

    def values(self, trial: Trial) -> tuple[float, ...]:
        """The trial's value of each objective, in the metrics' own units."""
        return (_score(trial),) + values_of(self.objectives[1:], trial.metrics)

    def top(self, k: int) -> list[Trial]:
        """The ``k`` best distinct archs, best first; ties keep log order. With several
        objectives: by Pareto front (non-dominated first), then by the first objective."""
        unique = self.distinct()
        if len(self.objectives) > 1:  # peel fronts off until k archs are ranked
            ranked: list[Trial] = []
            rest = unique
            while rest and len(ranked) < k:
                front = set(nondominated([losses(self.objectives, self.values(t)) for t in rest]))
                ranked += sorted((rest[i] for i in front), key=lambda t: -self.sign() * _score(t))
                rest = [t for i, t in enumerate(rest) if i not in front]
            return ranked[:k]
        unique.sort(key=lambda t: -self.sign() * _score(t))
        return unique[:k]

    def front(self) -> list[Trial]:
        """The non-dominated distinct trials (every objective), in log order."""
        unique = self.distinct()
        return [unique[i] for i in nondominated([losses(self.objectives, self.values(t)) for t in unique])]

    def best_so_far(self) -> list[float]:
        """Best value of the first objective after each scored trial (the anytime curve)."""
        curve: list[float] = []
        for trial in self.scored:
            value = _score(trial)
            curve.append(value if not curve else (max if self.sign() > 0 else min)(curve[-1], value))
        return curve


def _score(trial: Trial) -> float:
    """A scored trial's score (its value of the first objective)."""
    if trial.score is None:
        raise ValueError(f"trial {trial.number} has no score")
    return float(trial.score)


def search(
    strategy: Strategy,
    evaluator: Evaluator,
    budget: int,
    *,
    space: SearchSpace | None = None,
    constraints: Sequence[Constraint] = (),
    metric: str = "score",
    direction: str = "maximize",
    objectives: Sequence[Objective] | None = None,
    archs_per_ask: int = 1,
    log_path: str | os.PathLike[str] | None = None,
    resume: bool = False,
    callbacks: Iterable[Callback] = (),
    cache: MutableMapping[str, Metrics] | None = None,
    max_rejections: int = 10_000,
    max_failures: int = 20,
) -> SearchResult:
    """Run ``strategy`` until ``budget`` archs have been scored (or it stops proposing).

    Args:
        strategy: a fresh strategy (on resume it must be built exactly as the first time).
        evaluator: ``arch -> metrics``; must return ``metric``.
        budget: number of scored trials (evaluated or answered from the cache). Rejected
            and failed proposals do not count.
        space: when given, archs outside it are rejected before evaluation.
        constraints: callables ``arch -> reason | None``, checked before evaluation.
        metric, direction: the objective of a one-objective search.
        objectives: the objectives (one or more; replaces ``metric`` and ``direction``). The
            strategy is told them first (:meth:`Strategy.set_objectives`); it is then told
            one value per objective, or, written for one objective only, a higher-is-better
            score (the sign is flipped here).
        archs_per_ask: archs asked per ``ask`` (and evaluated together); the recipe's
            ``search.batch_size``.
        log_path: the ``trials.jsonl`` to append to.
        resume: replay ``log_path`` into ``strategy`` first, then continue.
        callbacks: called as ``cb(trial, result)`` after each trial is logged.
        cache: ``arch key -> metrics``, shared between searches (e.g. strategy comparisons).
        max_rejections / max_failures: stop with an error after that many in a row.
    """
    if budget <= 0:
        raise NasplugError(f"search.budget: must be a positive integer, got {budget}")
    if archs_per_ask <= 0:
        raise NasplugError(f"search.batch_size: archs per ask must be a positive integer, got {archs_per_ask}")
    if objectives is None:
        if direction not in DIRECTIONS:
            raise NasplugError(f"search.direction: {direction!r} is not allowed; allowed: {', '.join(DIRECTIONS)}")
        objectives = one_objective(metric, direction)
    objectives = tuple(objectives)
    strategy.set_objectives(objectives)
    rank, _ = sharding.world()
    if rank > 0:  # under torchrun, ranks > 0 only evaluate the shards rank 0 sends them
        sharding.serve(evaluator)
        status, payload = sharding.share_result(None)
        if status == "failed":  # rank 0 stopped with an error: so does every rank, with its message
            raise NasplugError(f"{payload} (on rank 0)")
        return payload
    loop = _Loop(strategy, evaluator, space, constraints, objectives, log_path,
                 list(callbacks), {} if cache is None else cache, max_rejections, max_failures)
    failure: Exception | None = None
    try:
        _run(loop, budget, archs_per_ask, log_path, resume)
    except Exception as exc:  # noqa: BLE001 - told to the workers, then raised as it is
        failure = exc
    finally:
        sharding.stop_workers()
    if failure is not None:
        sharding.share_result(("failed", describe(failure)))
        raise failure
    return sharding.share_result(("ok", loop.result))[1]


def _run(loop: _Loop, budget: int, archs_per_ask: int, log_path: str | os.PathLike[str] | None,
         resume: bool) -> None:
    pending: list[Arch] = []
    if log_path is not None and Path(log_path).exists() and not Path(log_path).is_file():
        raise NasplugError(f"{log_path}: the search log is not a file; nasplug writes it as one: move it aside "
                           "(or delete it to search again from the start)")
    if log_path is not None and TrialLog(log_path).exists():
        if not resume:
            raise NasplugError(
                f"{log_path}: a search log exists already; pass --resume to continue it or choose another --out"
            )
        pending = loop.replay()
    elif log_path is not None and Path(log_path).is_file() and Path(log_path).stat().st_size:
        if not resume:
            raise NasplugError(
                f"{log_path}: a search log exists already; pass --resume to continue it or choose another --out"
            )
        log.warning("%s holds no trial (only whitespace); starting the search afresh", log_path)
        TrialLog(log_path).read(repair=True)  # cuts the whitespace: the log is then the uninterrupted one
    while True:
        if pending:
            archs, asked = pending, loop.trials[-1].asked
            pending = []
        else:
            if loop.scored >= budget:
                break
            asked = min(archs_per_ask, budget - loop.scored)
            archs = loop.strategy.ask(asked)
            if not archs:
                log.info("strategy %s has no more proposals", type(loop.strategy).__name__)
                break
            loop.batch += 1
        loop.run_batch(archs, asked)
        log.debug("search batch %d: %d asked, %d scored of %d, best %s", loop.batch, len(archs), loop.scored, budget,
                  None if loop.result.best is None else f"{loop.result.best.score:.6g}")


class _Loop:
    """The state of one search: trials so far, counters, and the per-batch step."""

    def __init__(self, strategy: Strategy, evaluator: Evaluator, space: SearchSpace | None,
                 constraints: Sequence[Constraint], objectives: Objectives,
                 log_path: str | os.PathLike[str] | None, callbacks: list[Callback],
                 cache: MutableMapping[str, Metrics], max_rejections: int, max_failures: int) -> None:
        self.strategy, self.evaluator, self.space = strategy, evaluator, space
        self.models = space if space is not None else strategy.space  # who knows the canonical
        self.constraints = constraints
        self.log = TrialLog(log_path) if log_path is not None else None
        self.callbacks, self.cache = callbacks, cache
        self.result = SearchResult(objectives=objectives)
        self.evaluate_many = sharding.sharded_evaluator(evaluator)
        self.max_rejections, self.max_failures = max_rejections, max_failures
        self.batch = -1
        self.scored = 0
        self.rejected_in_row = 0
        self.failed_in_row = 0

    @property
    def trials(self) -> list[Trial]:
        return self.result.trials

    def replay(self) -> list[Arch]:
        """Feed the logged trials back into the strategy; return the unfinished batch's rest."""
        assert self.log is not None
        logged = self.log.read(repair=True)
        log.info("resuming from %s: replaying %d trials", self.log.path, len(logged))
        last_batch = logged[-1].batch if logged else -1
        for batch, group_iter in groupby(logged, key=lambda t: t.batch):
            group = list(group_iter)
            asked = self.strategy.ask(group[0].asked)
            last = batch == last_batch
            for i, trial in enumerate(group):
                if i >= len(asked) or arch_key(asked[i]) != arch_key(trial.arch):
                    now = arch_key(asked[i]) if i < len(asked) else "nothing"
                    raise NasplugError(
                        f"resume: {self.log.path} trial {trial.number} was {trial.key} but the strategy now proposes "
                        f"{now}; the recipe, seed or code changed since the log was written"
                    )
            if len(group) < len(asked) and not last:
                raise NasplugError(f"resume: {self.log.path} batch {batch} is incomplete but is not the last one")
            for trial in group:
                self._record(trial, write=False)
            self.batch = batch
            if len(group) < len(asked):
                return asked[len(group):]
        return []

    def run_batch(self, archs: Sequence[Arch], asked: int) -> None:
        """Check, evaluate (each new arch once) and record one batch of proposals."""
        models = [self._canonical(a) for a in archs]  # what each proposal builds, under its one name
        reasons = [first_violation(m, self.space, self.constraints) for m in models]
        todo: dict[str, Arch] = {}
        for model, reason in zip(models, reasons):
            key = arch_key(model)
            if reason is None and key not in self.cache:
                todo.setdefault(key, model)
        outcomes = dict(zip(todo, self.evaluate_many(list(todo.values()))))
        reclaim = self.cache.reclaimable if isinstance(self.cache, ReclaimingCache) else None
        for arch, model, reason in zip(archs, models, reasons):
            key = arch_key(model)
            trial = Trial(number=len(self.trials), batch=self.batch, asked=asked, arch=dict(arch), status="ok",
                          canonical=None if key == arch_key(arch) else dict(model))
            if reason is not None:
                trial.status, trial.reason = "rejected", reason
            elif key in outcomes:  # first time this arch is seen: evaluated just now
                self._fill(trial, outcomes.pop(key))
            elif reclaim is not None and key in self.cache and reclaim(key):  # scored by this run before a crash
                self._fill(trial, dict(self.cache[key]))
            elif key not in self.cache:  # a repeat within the batch of an arch that failed
                trial.status, trial.reason = "failed", "repeat of a failed evaluation in the same batch"
            else:
                trial.status, trial.metrics = "cached", dict(self.cache[key])
                trial.score = self.cache[key][self.result.metric]
            self._record(trial, write=True)

    def _canonical(self, arch: Arch) -> Arch:
        """The canonical form of a proposal (itself when the space has no conditions or is
        unknown); a proposal that is no arch of the space stays as it is, to be rejected."""
        if self.models is None or not self.models.conditions():
            return arch
        try:
            return self.models.canonical(arch)
        except (KeyError, TypeError, NasplugError):
            return arch

    def _fill(self, trial: Trial, outcome: Metrics | str) -> None:
        if isinstance(outcome, str):  # the evaluation raised; this is its reason
            trial.status, trial.reason = "failed", outcome
            return
        objectives = self.result.objectives
        for objective in objectives:
            if objective.metric not in outcome:
                field = "search.metric" if len(objectives) == 1 else "search.objectives"
                raise NasplugError(f"{field}: the evaluator returned no {objective.metric!r}; it returns: "
                                   f"{', '.join(outcome) or '(nothing)'}")
        for objective in objectives:
            value = outcome[objective.metric]
            if not is_finite(value):
                trial.status, trial.reason, trial.metrics = "failed", f"{objective.metric} is {value}", dict(outcome)
                return
        trial.score = float(outcome[objectives[0].metric])
        trial.metrics = {k: float(v) for k, v in outcome.items()}
        # the cache hears of it in _record, after the trial is logged: a crash between the two
        # leaves the trial in the log, and replaying it on resume fills the cache; a crash that
        # cuts the trial line leaves neither, and the resumed run scores the arch again

    def _record(self, trial: Trial, write: bool) -> None:
        if write and self.log is not None:
            self.log.append(trial)
        self.trials.append(trial)
        if trial.scored:
            self.scored += 1
            if trial.status == "ok":
                self.cache.setdefault(trial.key, trial.metrics)
        self.rejected_in_row = self.rejected_in_row + 1 if trial.status == "rejected" else 0
        self.failed_in_row = self.failed_in_row + 1 if trial.status == "failed" else 0
        if trial.metrics:
            self.strategy.observe(trial.arch, trial.metrics)
        self.strategy.tell(trial.arch, self._told(trial))
        if write:
            for callback in self.callbacks:
                callback(trial, self.result)
            if trial.status == "failed":
                log.warning("trial %d failed: %s", trial.number, trial.reason)
        if self.rejected_in_row >= self.max_rejections:
            raise NasplugError(
                f"search: {self.rejected_in_row} proposals in a row were rejected (last: {trial.reason}); "
                "the constraints exclude (almost) all of the space"
            )
        if self.failed_in_row >= self.max_failures:
            raise NasplugError(f"search: {self.failed_in_row} evaluations in a row failed (last: {trial.reason})")

    def _told(self, trial: Trial) -> float | tuple[float, ...] | None:
        """What the strategy hears of a trial: one value per objective in the metrics' own units
        (``vector_tell``), else one higher-is-better number; None when it was not scored."""
        if trial.score is None or not math.isfinite(trial.score):
            return None
        if self.strategy.vector_tell:
            return self.result.values(trial)
        return self.result.sign() * trial.score


def read_result(run_dir: str | os.PathLike[str], metric: str = "score", direction: str = "maximize",
                objectives: Sequence[Objective] | None = None) -> SearchResult:
    """Load a finished (or interrupted) search from ``run_dir/trials.jsonl``."""
    path = RunLayout(run_dir).trials
    if not path.is_file():
        raise NasplugError(f"{path}: no search log here")
    return SearchResult(metric=metric, direction=direction, trials=TrialLog(path).read(),
                        objectives=tuple(objectives or ()))
