"""Objectives: the metrics a search optimises, each with the direction its producer declares.

A search has one or more objectives. Each is a metric name plus ``"maximize"`` or
``"minimize"``. The direction comes from whoever produces the metric, never from a default:

* the task (``Task.metrics``: held-out figures such as ``acc`` or ``loss``),
* the space (``SearchSpace.metric_directions``: its analytic metrics, ``params`` and ``flops``),
* the evaluator (``EvaluatorPlugin.metric_directions``; a plain evaluator class or function
  declares a ``metric_directions`` mapping, e.g. the toy evaluator's ``score``),
* a cost model (``latency_ms``), declared the same way by the evaluator that measures it.

The recipe names the objectives (``search.objectives: [acc, params]``, or one
``search.metric``) and may override a direction (``search.directions: {params: maximize}``,
or ``search.direction`` for one metric). A metric nobody declares a direction for, with none
in the recipe, is an error naming the field: a silent ``maximize`` would report the worst
architecture as the best (a minimised loss, an error rate).

Pure Python, no torch: strategies and the search loop import it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Objective:
    """One metric a search optimises and which way."""

    metric: str
    direction: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise NasplugError(f"search.directions.{self.metric}: {self.direction!r} is not allowed; allowed: "
                               f"{', '.join(DIRECTIONS)}")

    @property
    def sign(self) -> float:
        """+1 for a maximised metric, -1 for a minimised one: ``sign * value`` is higher-is-better."""
        return 1.0 if self.direction == "maximize" else -1.0

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly better than ``b``."""
        return self.sign * a > self.sign * b

    def to_json(self) -> dict[str, str]:
        return {"metric": self.metric, "direction": self.direction}


Objectives = tuple[Objective, ...]


def one_objective(metric: str = "score", direction: str = "maximize") -> Objectives:
    """The objectives of a one-metric search (what ``search(metric=, direction=)`` means)."""
    return (Objective(metric, direction),)


@runtime_checkable
class DeclaresDirections(Protocol):
    """Something that produces metrics and declares which way each is better (a plain
    evaluator class or function with a ``metric_directions`` mapping, a space)."""

    metric_directions: Mapping[str, str]


def merge_declarations(sources: Iterable[tuple[str, Mapping[str, str]]]) -> dict[str, str]:
    """metric -> direction from every ``(who, declarations)`` source, in order.

    Raises:
        NasplugError: a direction that is not ``maximize``/``minimize``, or two sources
            declaring one metric in opposite directions (naming both).
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for who, declared in sources:
        for metric, direction in dict(declared).items():
            if direction not in DIRECTIONS:
                raise NasplugError(f"{who}: metric {metric!r} has direction {direction!r}; allowed: "
                                   f"{', '.join(DIRECTIONS)}")
            if metric in merged and merged[metric] != direction:
                raise NasplugError(f"{who} declares {metric!r} as {direction} but {owner[metric]} declares it as "
                                   f"{merged[metric]}; set search.directions.{metric} to say which")
            merged.setdefault(metric, direction)
            owner.setdefault(metric, who)
    return merged


def resolve(search: Any, declared: Mapping[str, str], default_metric: str | None) -> Objectives:
    """The objectives of a recipe's ``search`` section (a :class:`~nasplug.recipe.SearchConfig`).

    Args:
        search: ``objectives`` (names) or ``metric`` (one name), ``directions`` / ``direction``
            (the recipe's overrides).
        declared: metric -> direction from the task, the space and the evaluator.
        default_metric: what to search for when the recipe names nothing (the task's
            ``default_metric``, else the evaluator's first declared metric).

    Raises:
        NasplugError: one line naming the field: both ``metric`` and ``objectives``, a metric
            listed twice, an override for a metric that is not an objective, no metric at
            all, or a metric with no declared direction and none in the recipe.
    """
    names = _names(search, default_metric)
    overrides = dict(search.directions or {})
    for metric in overrides:
        if metric not in names:
            raise NasplugError(f"search.directions.{metric}: not one of the objectives ({', '.join(names)})")
    if search.direction is not None:
        overrides[names[0]] = search.direction
    objectives = []
    for metric in names:
        direction = overrides.get(metric) or declared.get(metric)
        if direction is None:
            raise NasplugError(_undeclared(search, metric, declared))
        if metric in overrides and declared.get(metric) not in (None, direction):
            log.info("search: %s is declared %s but the recipe says %s; the recipe's direction is used",
                     metric, declared[metric], direction)
        objectives.append(Objective(metric, direction))
    return tuple(objectives)


def _names(search: Any, default_metric: str | None) -> list[str]:
    if search.objectives is not None:
        if search.metric is not None:
            raise NasplugError("search.metric: give either search.metric (one objective) or search.objectives, "
                               "not both")
        if search.direction is not None:
            raise NasplugError("search.direction: with search.objectives, give each metric's direction in "
                               "search.directions (e.g. {params: minimize})")
        names = list(search.objectives)
        for i, name in enumerate(names):
            if name in names[:i]:
                raise NasplugError(f"search.objectives: {name!r} is listed twice")
        return names
    metric = search.metric or default_metric
    if metric is None:
        raise NasplugError("search.metric: required: the recipe has no task to take a default metric from and "
                           "its evaluator declares none; name the metric to search for")
    return [metric]


def _undeclared(search: Any, metric: str, declared: Mapping[str, str]) -> str:
    known = ", ".join(f"{m} ({d})" for m, d in declared.items()) or "none"
    if search.objectives is None:
        return (f"search.direction: no direction is declared for metric {metric!r} (declared: {known}); "
                "set search.direction: maximize or minimize")
    return (f"search.directions.{metric}: no direction is declared for objective {metric!r} (declared: {known}); "
            f"add search.directions: {{{metric}: maximize}} or minimize")


def resolved_fields(objectives: Objectives) -> dict[str, Any]:
    """The ``search`` keys that spell ``objectives`` out, as stored in a run's ``recipe.yaml``:
    ``metric`` and ``direction`` for one objective (the form every earlier run stored, so
    they resume), ``objectives`` and every metric's ``directions`` for several."""
    if len(objectives) == 1:
        return {"metric": objectives[0].metric, "direction": objectives[0].direction, "objectives": None,
                "directions": None}
    return {"metric": None, "direction": None, "objectives": [o.metric for o in objectives],
            "directions": {o.metric: o.direction for o in objectives}}


def from_stored(search: Mapping[str, Any]) -> Objectives:
    """The objectives of a run's stored (resolved) ``search`` section, read leniently (for
    reports): ``objectives`` with ``directions``, else ``metric`` and ``direction``."""
    names = search.get("objectives")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        stored = search.get("directions")
        directions: Mapping[str, Any] = stored if isinstance(stored, dict) else {}
        missing = [n for n in names if directions.get(n) not in DIRECTIONS]
        if missing:
            raise NasplugError(f"recipe.yaml: search.directions.{missing[0]}: missing or not maximize/minimize; "
                               "restore the run's recipe.yaml")
        return tuple(Objective(n, str(directions[n])) for n in names)
    direction = search.get("direction")  # every run stored before objectives had both, filled in
    return one_objective(str(search.get("metric") or "score"),
                         direction if direction in DIRECTIONS else "maximize")


def values_of(objectives: Sequence[Objective], metrics: Mapping[str, float]) -> tuple[float, ...]:
    """One value per objective from a trial's metrics, in the metrics' own units.

    Raises:
        NasplugError: an objective the metrics lack (a log written for other objectives).
    """
    missing = [o.metric for o in objectives if o.metric not in metrics]
    if missing:
        raise NasplugError(f"search.objectives: a trial has no {missing[0]!r} (it has: {', '.join(metrics)}); "
                           "was its log written for other objectives?")
    return tuple(float(metrics[o.metric]) for o in objectives)


def describe(objectives: Sequence[Objective]) -> str:
    """``acc (maximize), params (minimize)``."""
    return ", ".join(f"{o.metric} ({o.direction})" for o in objectives)


def reference_values(objectives: Sequence[Objective], given: Mapping[str, float] | None) -> tuple[float, ...] | None:
    """The recipe's ``search.reference_point`` as one value per objective (None when not given).

    Raises:
        NasplugError: a missing objective, a key that is not an objective.
    """
    if not given:
        return None
    names = [o.metric for o in objectives]
    for key in given:
        if key not in names:
            raise NasplugError(f"search.reference_point.{key}: not one of the objectives ({', '.join(names)})")
    missing = [n for n in names if n not in given]
    if missing:
        raise NasplugError(f"search.reference_point: no value for objective {missing[0]!r}; give one per objective "
                           f"({', '.join(names)})")
    return tuple(float(given[n]) for n in names)
