"""One comparison, start to end: plan (:mod:`nasplug.compare.plan`: checked, nothing written),
run (the evaluator, ``compare-config.json``, the ground truth and every run of
:mod:`nasplug.compare.runs`), write (the statistics, ``comparison.json`` / ``.md``,
``anytime.png``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasplug.compare.cache import GroundTruth, JsonlCache
from nasplug.compare.fronts import front_statistics, render_fronts
from nasplug.compare.plan import CompareRequest, ComparisonPlan, plan_comparison
from nasplug.compare.report import plot_anytime, render_markdown, score_table, tests_table
from nasplug.compare.runs import RunPlan, run_all, run_ground_truth
from nasplug.compare.stats import summarize
from nasplug.evaluate import Evaluator
from nasplug.io import atomic_write_json, atomic_write_text
from nasplug.pipeline import RunContext, build_evaluator
from nasplug.pipeline.run import make_run_dir
from nasplug.recipe import Recipe

log = logging.getLogger(__name__)


@dataclass
class ComparisonResult:
    """A finished comparison: its setup, every run's curve, the statistics, the ground truth.

    ``data`` is exactly what ``comparison.json`` holds; the properties read from it.
    """

    data: dict[str, Any]
    out_dir: Path
    ground_truth: GroundTruth | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.data["summary"]

    @property
    def curves(self) -> dict[str, dict[int, list[float]]]:
        """strategy -> seed -> best-so-far curve."""
        out: dict[str, dict[int, list[float]]] = {}
        for run in self.data["runs"]:
            out.setdefault(run["strategy"], {})[run["seed"]] = run["curve"]
        return out

    @property
    def multi(self) -> bool:
        """Several objectives: the summary is of the fronts' hypervolume (see ``fronts``)."""
        return self.data.get("fronts") is not None

    def table(self, regret: bool = False) -> str:
        """The main table (best score or, in ground-truth mode, regret at each budget; with
        several objectives: the hypervolume of the fronts found)."""
        cfg = self.data["config"]
        return score_table(self.summary, cfg["budget"], "hypervolume" if self.multi else cfg["metric"], regret=regret)

    def tests_table(self) -> str:
        return tests_table(self.summary["tests"])

    def markdown(self) -> str:
        return render_fronts(self.data) if self.multi else render_markdown(self.data)


def compare(recipe: Recipe, strategies: Sequence[str], seeds: Sequence[int] | int, budget: int,
            out_dir: str | Path, *, resume: bool = False, ground_truth: bool = False,
            budgets_to_report: Sequence[int] | None = None, target: float | None = None,
            progress: bool = True, batch_size: int | None = None,
            strategy_args: Sequence[str] = (), max_ground_truth: int = 100_000,
            evaluator: Evaluator | None = None, from_run: str | Path | None = None) -> ComparisonResult:
    """Run every strategy with every seed against the recipe's evaluator and compare them.

    Args:
        recipe: gives the space, the evaluator, the objective (``search.metric`` /
            ``direction``), constraints and the batch size. Its ``search.strategy`` kwargs
            apply to the strategy of the same name.
        strategies: registered names, ``package.module:attr`` paths or entry points.
        seeds: seed list, or a count N meaning seeds 0..N-1 (the same for every strategy).
        budget: scored evaluations per run (cache hits count, as in ``search()``).
        out_dir: where runs, cache and reports go.
        resume: continue a comparison in ``out_dir`` (finished runs are read back, others
            replayed and continued); without it ``out_dir`` must not hold one already.
        ground_truth: score the whole space first and report regret against the optimum.
        budgets_to_report: where the table reads the curves (default 10/25/50/100%).
        target: score to reach (default: the true optimum, else the median final best).
        progress: show progress bars.
        batch_size: archs per ask (default: the recipe's ``search.batch_size``).
        strategy_args: ``NAME.KEY=VALUE`` constructor arguments for a strategy (YAML values).
        max_ground_truth: refuse ground truth on spaces with more archs than this.
        evaluator: use this evaluator instead of building the recipe's (Python callers).
        from_run: the run directory the evaluator reads (e.g. the trained supernet of
            ``nasplug run``); it becomes ``RunContext.run_dir``. Default: ``out_dir``.

    Raises:
        NasplugError: bad arguments, unknown strategies, a changed recipe on resume, ...
    """
    request = CompareRequest(
        recipe, tuple(strategies), seeds if isinstance(seeds, int) else tuple(seeds), budget, Path(out_dir),
        resume=resume, ground_truth=ground_truth,
        budgets_to_report=None if budgets_to_report is None else tuple(budgets_to_report), target=target,
        progress=progress, batch_size=batch_size, strategy_args=tuple(strategy_args), max_ground_truth=max_ground_truth,
        evaluator=evaluator, from_run=None if from_run is None else Path(from_run))
    plan = plan_comparison(request)
    runs, truth, run_plan = run_comparison(plan)
    return write_comparison(plan, runs, truth, run_plan)


def _evaluator(plan: ComparisonPlan) -> Evaluator:
    """The request's evaluator, else the recipe's, built on the plan's space."""
    request = plan.request
    if request.evaluator is not None:
        return request.evaluator
    ctx = RunContext(recipe=request.recipe, run_dir=request.from_run if request.from_run is not None else
                     plan.layout.root, resume=request.resume, progress=request.progress, built_space=plan.space)
    return build_evaluator(ctx, plan.memory_hint)


def run_comparison(plan: ComparisonPlan) -> tuple[list[dict[str, Any]], GroundTruth | None, RunPlan]:
    """Build the evaluator, write ``compare-config.json``, then the ground truth (if asked for)
    and every (strategy, seed) run: one JSON record per run."""
    request, layout = plan.request, plan.layout
    evaluator = _evaluator(plan)
    make_run_dir(layout.root)
    atomic_write_json(layout.config, {**plan.config, "fingerprint": plan.fingerprint})
    run_plan = RunPlan(plan.space, evaluator, JsonlCache(layout.cache), plan.constraints, plan.objectives,
                       request.budget, plan.archs_per_ask, request.resume, layout)
    log.info("compare: %d strategies x %d seeds x budget %d into %s (cache: %d archs)",
             len(plan.specs), len(plan.seeds), request.budget, layout.root, len(run_plan.cache))
    truth = None
    if request.ground_truth:
        truth = run_ground_truth(run_plan, request.max_ground_truth, request.progress)
    runs = run_all(run_plan, plan.specs, plan.seeds, request.progress)
    for run in runs:
        if truth is not None and run["final"] is not None and len(plan.objectives) == 1:
            run["final_regret"], run["final_rank"] = truth.regret(run["final"]), truth.rank(run["final"])
    return runs, truth, run_plan


def write_comparison(plan: ComparisonPlan, runs: list[dict[str, Any]], truth: GroundTruth | None,
                     run_plan: RunPlan) -> ComparisonResult:
    """The statistics of the runs, written: ``comparison.json``, ``comparison.md``, ``anytime.png``."""
    request, layout, objectives = plan.request, plan.layout, plan.objectives
    budget = request.budget
    fronts = None
    if len(objectives) > 1:  # each run's curve becomes its front's hypervolume curve
        fronts = front_statistics(objectives, plan.search.reference_point, runs, truth, budget,
                                  request.budgets_to_report, request.target)
    curves: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        curves.setdefault(run["strategy"], {})[run["seed"]] = run["curve"]
    if fronts is not None:
        summary = fronts.pop("hypervolume")
        metric, direction, optimum = "hypervolume", "maximize", None
    else:
        metric, direction = objectives[0].metric, objectives[0].direction
        optimum = None if truth is None else truth.optimum
        summary = summarize(curves, budget, direction=direction, budgets=request.budgets_to_report,
                            target=request.target, optimum=optimum)
    data = {"version": 1, "config": plan.config, "summary": summary, "runs": runs,
            "ground_truth": None if truth is None else truth.to_json(plan.space.format(truth.arch)),
            "runtime": {"evaluator_calls": run_plan.cache.added, "cache_entries": len(run_plan.cache),
                        "cache_entries_at_start": run_plan.cache.loaded, "wall_s": run_plan.wall}}
    if fronts is not None:
        data["fronts"] = fronts  # reference point, exact front, IGD summary (the summary above: hypervolume)
    result = ComparisonResult(data=data, out_dir=layout.root, ground_truth=truth)
    atomic_write_json(layout.output("json"), data)
    atomic_write_text(layout.output("md"), result.markdown())
    plot_anytime(layout.anytime_plot, curves, budget, metric=metric, direction=direction, optimum=optimum)
    log.info("compare: wrote %s (comparison.json, comparison.md, anytime.png); %d new evaluations",
             layout.root, run_plan.cache.added)
    return result
