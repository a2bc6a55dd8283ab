"""Latency as one of a space's analytic metrics: predicted by a table, or measured directly.

:func:`with_latency` gives a built space a ``latency_ms`` metric predicted by a table,
:func:`with_measured_latency` one measured on each arch's extracted model
(:mod:`nasplug.cost.direct`); both declare it ``minimize``: searches can then name it as an
objective, and constraints (``max_metric``) read it before any evaluation, like ``params``.
Only this instance changes (its ``metrics`` and ``metric_directions``); the space's class and
other instances are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nasplug.arch import Arch
from nasplug.cost.direct import MeasuredLatencies
from nasplug.cost.measure import LATENCY_METRIC
from nasplug.cost.table import LatencyTable
from nasplug.space import SearchSpace


def with_latency(space: SearchSpace, table: LatencyTable) -> SearchSpace:
    """``space`` whose :meth:`~nasplug.space.SearchSpace.metrics` add the table's predicted
    ``latency_ms`` (returns ``space`` itself; calling it again replaces the table)."""
    table.check_space(space)
    _attach(space, lambda arch: table.predict(arch, space), "latency_table", table)
    return space


def with_measured_latency(space: SearchSpace, measured: MeasuredLatencies) -> SearchSpace:
    """``space`` whose metrics add ``latency_ms`` measured on each arch's extracted model
    (an arch nobody measured has none when ``measured`` is read-only)."""
    _attach(space, measured.get, "latency_measured", measured)
    return space


def _attach(space: SearchSpace, latency: Callable[[Arch], float | None], name: str, source: object) -> None:
    own = vars(space)
    inner = own.get("_metrics_without_latency") or space.metrics

    def metrics(arch: Arch) -> dict[str, Any]:
        ms = latency(arch)
        return {**inner(arch), LATENCY_METRIC: ms} if ms is not None else inner(arch)

    own["_metrics_without_latency"] = inner
    own["metrics"] = metrics  # an instance attribute: read before the class's method
    own["metric_directions"] = {**type(space).metric_directions, LATENCY_METRIC: "minimize"}
    own.pop("latency_table", None)
    own.pop("latency_measured", None)
    own[name] = source

