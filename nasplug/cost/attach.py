"""A latency table as one of a space's analytic metrics.

:func:`with_latency` gives a built space a ``latency_ms`` metric predicted by a table, declared
``minimize``: searches can then name it as an objective, and constraints (``max_metric``) read
it before any evaluation, like ``params``. Only this instance changes (its ``metrics`` and
``metric_directions``); the space's class and other instances are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasplug.arch import Arch
from nasplug.cost.measure import LATENCY_METRIC
from nasplug.cost.table import LatencyTable
from nasplug.layout import RunLayout
from nasplug.space import SearchSpace


def with_latency(space: SearchSpace, table: LatencyTable) -> SearchSpace:
    """``space`` whose :meth:`~nasplug.space.SearchSpace.metrics` add the table's predicted
    ``latency_ms`` (returns ``space`` itself; calling it again replaces the table)."""
    table.check_space(space)
    own = vars(space)
    inner = own.get("_metrics_without_latency") or space.metrics

    def metrics(arch: Arch) -> dict[str, Any]:
        return {**inner(arch), LATENCY_METRIC: table.predict(arch, space)}

    own["_metrics_without_latency"] = inner
    own["metrics"] = metrics  # an instance attribute: read before the class's method
    own["metric_directions"] = {**type(space).metric_directions, LATENCY_METRIC: "minimize"}
    own["latency_table"] = table
    return space


def attach_run_table(space: Any, recipe: Any, run_dir: Path) -> Any:
    """``space`` with the run's stored table attached (itself when the recipe has no latency
    section or the latency stage, :mod:`nasplug.pipeline.latency`, has not written it yet)."""
    if recipe.section("latency") is None:
        return space
    path = RunLayout(run_dir).latency_table
    if not path.is_file():
        return space
    from nasplug.cost.table import load_table

    return with_latency(space, load_table(path))
