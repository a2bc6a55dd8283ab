"""``nasplug export --pareto / --max-params / --max-latency``: the retrained front of a run.

The retrained front models are :func:`~nasplug.pipeline.retrained.front_models` (the
``retrain.pareto`` picks, and ``found`` when it is on the front). Within a budget, the best
is the one with the best retrained held-out value of the search's first objective that the
retrained models measure (mean over ``retrain.seeds``), in that objective's direction (ties:
the cheaper by the budget's metric); the
budget reads the space's analytic metric (``params``, or ``latency_ms``: table-predicted or,
with ``latency.measure: direct``, as the run measured it).
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError

BUDGETS = {"params": "--max-params", "latency_ms": "--max-latency"}


def _context(run_dir: Path) -> Any:
    from nasplug.pipeline.context import RunContext
    from nasplug.pipeline.identity import stored_recipe

    recipe = stored_recipe(run_dir) if run_dir.is_dir() else None
    if recipe is None:
        raise NasplugError(f"RUN_DIR: {run_dir} is not a nasplug run directory (no recipe.yaml)")
    if recipe.retrain is None or recipe.retrain.pareto is None:
        raise NasplugError(f"{run_dir}: the run's recipe sets no retrain.pareto; there is no retrained front to export "
                           "(use --model)")
    return RunContext(recipe=recipe, run_dir=run_dir, progress=False)


def retrained_front(ctx: Any) -> list[dict[str, Any]]:
    """One row per retrained front model: name, arch, analytic metrics and retrained figures."""
    from nasplug.pipeline.retrained import front_models, seed_runs
    from nasplug.pipeline.standalone import read_run

    rows = []
    for name, arch in front_models(ctx).items():
        runs = [read_run(ctx.layout.retrain(name, folder_seed)) for _, _, folder_seed in seed_runs(ctx)]
        runs = [r for r in runs if r]
        keys = [k for k in (runs[0] if runs else {}) if all(k in r for r in runs)]
        figures = {k: statistics.fmean(r[k] for r in runs) for k in keys}
        rows.append({"name": name, "arch": arch, "metrics": ctx.space.metrics(arch), "retrained": figures})
    return rows


def ranking_objective(ctx: Any, rows: list[dict[str, Any]]) -> Any:
    """The first search objective the retrained models measure (their held-out figures)."""
    for objective in ctx.objectives:
        if rows and all(f"heldout_{objective.metric}" in r["retrained"] for r in rows):
            return objective
    measured = ", ".join(sorted(rows[0]["retrained"])) if rows else "nothing"
    raise NasplugError(f"export: the retrained front models measure none of the search objectives "
                       f"({', '.join(o.metric for o in ctx.objectives)}; they measure {measured}); has the retrain "
                       "stage finished?")


def best_within(ctx: Any, metric: str, limit: float) -> dict[str, Any]:
    """The best retrained front model whose analytic ``metric`` is at most ``limit``."""
    flag = BUDGETS[metric]
    rows = [r for r in retrained_front(ctx) if r["retrained"]]
    if not rows:
        raise NasplugError(f"{flag}: no retrained front model has finished training; run (or resume) the retrain stage")
    if any(metric not in r["metrics"] for r in rows):
        hint = " (the recipe has no latency: section)" if metric == "latency_ms" else ""
        raise NasplugError(f"{flag}: the run's space has no {metric!r}{hint}")
    objective = ranking_objective(ctx, rows)
    fits = [r for r in rows if r["metrics"][metric] <= limit]
    if not fits:
        smallest = min(rows, key=lambda r: r["metrics"][metric])
        raise NasplugError(f"{flag}: no retrained front model has {metric} <= {limit:g}; the smallest is "
                           f"{smallest['name']} with {smallest['metrics'][metric]:g}")
    # ties: the cheaper one
    best = max(fits, key=lambda r: (objective.sign * r["retrained"][f"heldout_{objective.metric}"],
                                    -r["metrics"][metric]))
    return {**best, "objective": f"heldout_{objective.metric}"}


def export_front(run_dir: Path, out: Path, max_params: float | None = None, max_latency: float | None = None,
                 seed: int | None = None) -> list[tuple[str, Path, str]]:
    """Export every retrained front model into ``out/<name>/`` (no budget), or the best one
    within the budget into ``out``; returns (name, folder, why) per exported model."""
    from nasplug.pipeline.export import export_run
    from nasplug.pipeline.identity import check_out_path

    ctx = _context(run_dir)
    check_out_path(out)
    if out.exists() and any(out.iterdir()):
        raise NasplugError(f"--out: {out} is not empty; export into a new folder")
    if max_params is None and max_latency is None:
        rows = retrained_front(ctx)
        return [(r["name"], export_run(run_dir, r["name"], out / r["name"], seed=seed), "on the front") for r in rows]
    metric, limit = ("params", max_params) if max_params is not None else ("latency_ms", max_latency)
    assert limit is not None
    best = best_within(ctx, metric, limit)
    why = (f"{metric} {best['metrics'][metric]:g} <= {limit:g}; retrained {best['objective']} "
           f"{best['retrained'][best['objective']]:.4g}")
    return [(best["name"], export_run(run_dir, best["name"], out, seed=seed), why)]
