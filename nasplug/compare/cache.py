"""The evaluation cache shared by every run of a comparison, and ground-truth enumeration.

``cache.jsonl`` is append-only: one ``{"key": arch key, "metrics": {...}, "origin": run}``
line per newly scored arch, flushed and fsynced right after the search has logged the arch's
trial (the trial log first: a crash between the two leaves the trial in its log, and replaying
that log on resume writes the missing cache line). So an arch whose trial was logged is never
scored again; one whose trial line a crash cut is scored again, as the uninterrupted run did.
A torn last line (a crash mid-write) is dropped and cut on load. JSON floats round-trip
exactly, so a score read back from the cache is the same float the evaluator returned: the
cache changes how often the evaluator runs, never a result.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.constraints import Constraint, first_violation
from nasplug.errors import NasplugError
from nasplug.evaluate import Evaluator, Metrics, evaluate_batch, is_finite
from nasplug.io import JsonlLineError, read_jsonl
from nasplug.objectives import Objective, one_objective, values_of
from nasplug.pareto import losses
from nasplug.progress import progress_bar
from nasplug.space import SearchSpace

log = logging.getLogger(__name__)


def _cache_record(record: Any, index: int) -> tuple[str, Metrics, str | None]:
    """``(key, metrics, origin)`` of one cache line (KeyError, TypeError, ... when it is not one)."""
    origin = record.get("origin")
    return str(record["key"]), {str(k): float(v) for k, v in record["metrics"].items()}, \
        origin if isinstance(origin, str) else None


class JsonlCache(MutableMapping[str, Metrics]):
    """``arch key -> metrics``, persisted as an append-only, fsynced JSONL file.

    Pass it as ``search(cache=...)``: once a new score's trial is logged, the search loop
    stores it with ``cache[key] = metrics``, which appends one durable line.

    Attributes:
        loaded: entries read from the file when the cache was opened.
        added: entries appended since (i.e. evaluator calls that produced a score).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._data: dict[str, Metrics] = {}
        self.origin: dict[str, str] = {}  # key -> the run that scored it (absent: ground truth)
        self._load()
        self.loaded = len(self._data)
        self.added = 0

    def _load(self) -> None:
        """Read the file; a torn last line is dropped and cut (and a last line that lost only
        its newline gets it back), so the next append starts on a line of its own."""
        try:
            records = read_jsonl(self.path, _cache_record, repair=True, blank_lines=True)
        except JsonlLineError as exc:
            raise NasplugError(f"{self.path}:{exc.lineno}: not a cache record ({type(exc.cause).__name__}); the cache "
                               "was damaged: delete it (every arch is then scored again)") from None
        for key, metrics, origin in records:
            self._data[key] = metrics
            if origin is not None:
                self.origin[key] = origin

    def __getitem__(self, key: str) -> Metrics:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: str, metrics: Metrics) -> None:
        self.add_many([(key, metrics)])

    def __delitem__(self, key: str) -> None:
        raise TypeError("the comparison cache is append-only")

    def add_many(self, items: Iterable[tuple[str, Metrics]], origin: str | None = None) -> None:
        """Store several entries with one write and one fsync (used by ground truth);
        ``origin`` names the run that scored them (see :class:`RunCache`)."""
        lines = []
        for key, metrics in items:
            metrics = {k: float(v) for k, v in metrics.items()}
            if self._data.get(key) == metrics:
                continue
            self._data[key] = metrics
            self.added += 1
            record: dict[str, Any] = {"key": key, "metrics": metrics}
            if origin is not None:
                record["origin"] = self.origin[key] = origin
            lines.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class RunCache(MutableMapping[str, Metrics]):
    """One run's view of the shared cache: what it adds is marked as its own. An entry it
    added for a trial its log no longer holds (the log was deleted or cut short; the cache
    line is written after the trial line, so a crash alone does not do this) is
    *reclaimable*: the search logs it as a fresh "ok" trial with the cached metrics, as the
    uninterrupted run did, without scoring it again.

    Args:
        cache: the comparison's shared cache.
        origin: the run's name (``strategy/seed``).
        logged: arch keys of the trials the run's log holds (read when the run resumes).
    """

    def __init__(self, cache: JsonlCache, origin: str, logged: Iterable[str] = ()) -> None:
        self.cache, self.own, self.logged = cache, origin, set(logged)

    def reclaimable(self, key: str) -> bool:
        """True (once) for an entry this run scored whose trial its log lost."""
        if self.cache.origin.get(key) == self.own and key not in self.logged:
            self.logged.add(key)
            return True
        return False

    def __getitem__(self, key: str) -> Metrics:
        return self.cache[key]

    def __setitem__(self, key: str, metrics: Metrics) -> None:
        self.logged.add(key)
        self.cache.add_many([(key, metrics)], origin=self.own)

    def __delitem__(self, key: str) -> None:
        raise TypeError("the comparison cache is append-only")

    def __iter__(self) -> Iterator[str]:
        return iter(self.cache)

    def __len__(self) -> int:
        return len(self.cache)


@dataclass
class GroundTruth:
    """Every feasible arch of a space scored once: the optimum and the score distribution."""

    metric: str
    direction: str
    optimum: float
    arch: Arch  # the best arch (the first in enumeration order on ties)
    scores: list[float]  # every feasible arch's score, best first
    size: int  # archs enumerated (the product of the option counts)
    failed: int  # feasible archs whose evaluation failed (left out of ``scores``)
    #: Several objectives: every feasible arch's loss vector (:func:`nasplug.pareto.losses`), in
    #: enumeration order; the exact front and the nadir come from these.
    points: list[tuple[float, ...]] | None = None

    def regret(self, value: float) -> float:
        """How far ``value`` is from the optimum, in metric units (>= 0)."""
        return self.optimum - value if self.direction == "maximize" else value - self.optimum

    def rank(self, value: float) -> int:
        """1 + the number of feasible archs strictly better than ``value``."""
        sign = 1.0 if self.direction == "maximize" else -1.0
        return 1 + sum(1 for s in self.scores if sign * s > sign * value)

    def to_json(self, formatted_arch: str | None = None) -> dict[str, Any]:
        quantiles = {}
        for q in (0.5, 0.9, 0.99):  # the score that beats a fraction q of the feasible archs
            index = min(len(self.scores) - 1, int(math.floor((1.0 - q) * len(self.scores))))
            quantiles[f"top_{round(100 * (1 - q))}pct"] = self.scores[index]
        return {"optimum": self.optimum, "arch": self.arch, "arch_text": formatted_arch,
                "feasible": len(self.scores), "enumerated": self.size, "failed": self.failed,
                "worst": self.scores[-1], "thresholds": quantiles}


def enumerate_space(space: SearchSpace, constraints: Sequence[Constraint] = (),
                    tick: Callable[[int], object] | None = None) -> Iterator[Arch]:
    """Every model of ``space`` (its canonical archs: one name per model in a space with
    conditional choices) in a fixed order, skipping invalid or constrained ones.

    ``tick(1)`` is called for every arch looked at, feasible or not (a progress bar).
    """
    from nasplug.conditions import every_model

    archs = every_model(space)
    for arch in archs:
        if tick is not None:
            tick(1)
        if first_violation(arch, space, constraints) is None:
            yield arch


def check_ground_truth_size(space: SearchSpace, max_archs: int) -> int:
    """``space.size()``, or a NasplugError when it is over ``max_archs``."""
    size = space.size()
    if size > max_archs:
        raise NasplugError(f"--ground-truth: space {space.name!r} has {size:,} archs, more than "
                           f"--max-ground-truth {max_archs:,}; use a smaller space or raise the limit")
    return size


def ground_truth(space: SearchSpace, evaluator: Evaluator, cache: MutableMapping[str, Metrics], *, metric: str = "",
                 direction: str = "maximize", objectives: Sequence[Objective] | None = None,
                 constraints: Sequence[Constraint] = (), max_archs: int = 100_000,
                 chunk: int = 256, progress: bool = False) -> GroundTruth:
    """Score every feasible arch once (through ``cache``) and return the true optimum.

    Args:
        space, evaluator: what to enumerate and how to score it.
        cache: shared with the searches, so the runs afterwards evaluate nothing new.
        metric, direction: the objective (or ``objectives``: the optimum is the first one's,
            and with several every feasible arch's loss vector is kept in ``points``).
        constraints: the recipe's constraints; archs they reject are not feasible.
        max_archs: refuse spaces larger than this (``space.size()``, before constraints).
        chunk: archs evaluated together (``evaluator.evaluate_batch`` when it has one).
        progress: show a progress bar.

    Raises:
        NasplugError: the space is too large, nothing is feasible, or the metric is missing.
    """
    size = check_ground_truth_size(space, max_archs)
    objectives = tuple(objectives) if objectives else one_objective(metric, direction)
    metric, direction = objectives[0].metric, objectives[0].direction
    sign = objectives[0].sign
    best: tuple[float, Arch] | None = None
    scores: list[float] = []
    points: list[tuple[float, ...]] = []
    failed = 0
    bar = progress_bar(total=size, desc="ground truth", unit="arch", enabled=progress)
    try:
        for batch in _chunks(enumerate_space(space, constraints, tick=bar.update), chunk):
            keys = [arch_key(a) for a in batch]
            todo = {k: a for k, a in zip(keys, batch, strict=True) if k not in cache}
            outcomes = evaluate_batch(evaluator, list(todo.values()))
            new = []
            for key, outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    continue
                _check_returned(objectives, outcome)
                if all(is_finite(outcome[o.metric]) for o in objectives):
                    new.append((key, outcome))
            _store(cache, new)
            for key, arch in zip(keys, batch, strict=True):
                value = cache[key][metric] if key in cache else None
                if value is None:
                    failed += 1
                    continue
                scores.append(value)
                if len(objectives) > 1:
                    points.append(losses(objectives, values_of(objectives, cache[key])))
                if best is None or sign * value > sign * best[0]:
                    best = (value, arch)
    finally:
        bar.close()
    if best is None:
        raise NasplugError(f"--ground-truth: no feasible arch of space {space.name!r} could be scored "
                           f"({failed} evaluations failed)")
    if failed:
        log.warning("ground truth: %d of %d feasible archs failed to evaluate; left out", failed, failed + len(scores))
    scores.sort(key=lambda s: -sign * s)
    log.info("ground truth: %d feasible archs, optimum %s = %.6g", len(scores), metric, best[0])
    return GroundTruth(metric=metric, direction=direction, optimum=best[0], arch=best[1], scores=scores,
                       size=size, failed=failed, points=points if len(objectives) > 1 else None)


def _check_returned(objectives: Sequence[Objective], outcome: Metrics) -> None:
    for objective in objectives:
        if objective.metric not in outcome:
            field = "search.metric" if len(objectives) == 1 else "search.objectives"
            raise NasplugError(f"{field}: the evaluator returned no {objective.metric!r}; it returns: "
                               f"{', '.join(outcome) or '(nothing)'}")


def _store(cache: MutableMapping[str, Metrics], items: list[tuple[str, Metrics]]) -> None:
    if isinstance(cache, JsonlCache):
        cache.add_many(items)
    else:
        for key, metrics in items:
            cache[key] = {k: float(v) for k, v in metrics.items()}


def _chunks(items: Iterable[Arch], n: int) -> Iterator[list[Arch]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, n)):
        yield batch
