"""``nasplug compare`` with several objectives: each run's front, judged by its hypervolume
and (in ground-truth mode) its IGD against the exact front, with the same statistics as one
objective (:func:`nasplug.compare.stats.summarize`: means at several budgets, evaluations to a
target, seed-paired Wilcoxon tests with Holm's correction).

* **Hypervolume** of a run's front after each scored evaluation (an anytime curve, higher is
  better), bounded by one reference point for every run: the recipe's
  ``search.reference_point``, else, in ground-truth mode, the worst value of each objective
  over the whole space (derived once), else the worst value over every run's scored archs.
* **IGD** (ground-truth mode): the mean distance from each point of the exact front (every
  feasible arch scored) to the nearest point a run found, each objective divided by the exact
  front's range; 0 means the run found the whole front. Also an anytime curve (lower is better).

Everything is a pure function of the runs' logs and the ground truth, so a resumed comparison
writes the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nasplug.compare.cache import GroundTruth
from nasplug.compare.report import score_table, tests_table
from nasplug.compare.stats import summarize
from nasplug.objectives import Objective, describe, reference_values
from nasplug.pareto import Point, dominates, hypervolume, hypervolume_curve, igd, losses, nadir, nondominated, spans
from nasplug.report.table import fmt

RECIPE = "the recipe's search.reference_point"
TRUTH = "the worst value of each objective over the whole space (ground truth)"
POOLED = "the worst value of each objective over every run's scored archs"


def reference(objectives: Sequence[Objective], given: dict[str, float] | None, truth: GroundTruth | None,
              runs: Sequence[dict[str, Any]]) -> tuple[tuple[float, ...], str]:
    """The hypervolume's reference point (a loss vector) and where it comes from."""
    values = reference_values(objectives, given)
    if values is not None:
        return losses(objectives, values), RECIPE
    if truth is not None and truth.points:
        return nadir(truth.points), TRUTH
    return nadir([p for run in runs for p in run["points"]]), POOLED


def exact_front(truth: GroundTruth) -> list[tuple[float, ...]]:
    """The distinct loss vectors of the non-dominated feasible archs."""
    points = truth.points or []
    return sorted({points[i] for i in nondominated(points)})


def igd_curve(points: Sequence[Point], exact: Sequence[Point], scale: Point) -> list[float]:
    """IGD of the front of the first ``i`` points, for every ``i`` (recomputed when the front changes)."""
    front: list[tuple[float, ...]] = []
    curve: list[float] = []
    value = math.inf
    for point in points:
        p = tuple(point)
        if not any(dominates(q, p) or q == p for q in front):
            front = [q for q in front if not dominates(p, q)] + [p]
            value = igd(front, exact, scale)
        curve.append(value)
    return curve


def own_units(objectives: Sequence[Objective], point: Sequence[float]) -> dict[str, float]:
    return {o.metric: -o.sign * x for o, x in zip(objectives, point, strict=True)}


def front_statistics(objectives: Sequence[Objective], given: dict[str, float] | None, runs: list[dict[str, Any]],
                     truth: GroundTruth | None, budget: int, budgets: Sequence[int] | None,
                     target: float | None) -> dict[str, Any]:
    """Each run's hypervolume curve (its ``curve``/``final``) and final IGD, and the summaries.

    ``runs`` are the records of :func:`nasplug.compare.runs.run_all`; their ``points`` (loss
    vectors of the scored trials) are read and removed here.
    """
    ref, source = reference(objectives, given, truth, runs)
    exact = exact_front(truth) if truth is not None and truth.points else None
    scale = spans(exact) if exact else None
    exact_hv = hypervolume(exact, ref) if exact else None
    hv: dict[str, dict[int, list[float]]] = {}
    distance: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        points = run.pop("points")
        curve = hypervolume_curve(points, ref)
        front_size = len({tuple(points[i]) for i in nondominated(points)})
        run.update(curve=curve, final=curve[-1] if curve else None, front_size=front_size)
        hv.setdefault(run["strategy"], {})[run["seed"]] = curve
        if exact and scale:
            curve_igd = igd_curve(points, exact, scale)
            run["final_igd"] = curve_igd[-1] if curve_igd else None
            distance.setdefault(run["strategy"], {})[run["seed"]] = curve_igd
    return {
        "reference_point": own_units(objectives, ref), "reference_source": source,
        "exact_front": None if exact is None else {"size": len(exact), "hypervolume": exact_hv,
                                                   "points": [own_units(objectives, p) for p in exact]},
        "hypervolume": summarize(hv, budget, direction="maximize", budgets=budgets, target=target, optimum=exact_hv),
        "igd": summarize(distance, budget, direction="minimize", budgets=budgets, optimum=0.0) if exact else None,
    }


def render_fronts(data: dict[str, Any]) -> str:
    """``comparison.md`` of a comparison with several objectives."""
    cfg, fronts = data["config"], data["fronts"]
    budget, seeds = cfg["budget"], cfg["seeds"]
    objectives = [Objective(o["metric"], o["direction"]) for o in cfg["objectives"]]
    hv, distance, exact = data["summary"], fronts["igd"], fronts["exact_front"]
    reference = ", ".join(f"{k} = {fmt(v, 6)}" for k, v in fronts["reference_point"].items())
    parts = [f"# Strategy comparison: {cfg['recipe']}", "",
             f"Objectives: {describe(objectives)}. Budget: {budget} scored evaluations per run, batch size "
             f"{cfg['batch_size']}. Seeds: {', '.join(map(str, seeds))} ({len(seeds)} per strategy). Strategies: "
             f"{', '.join(cfg['strategies'])}.", "",
             f"Hypervolume reference point: {reference} ({fronts['reference_source']}).", ""]
    if exact is not None:
        parts += [f"Ground truth: {data['ground_truth']['feasible']:,} feasible archs scored; the exact front has "
                  f"{exact['size']} points and hypervolume {fmt(exact['hypervolume'], 8)}.", ""]
    parts += [f"Target: hypervolume {fmt(hv['target']['value'], 8)} ({hv['target']['source']}).", "",
              "## Hypervolume of the front found (mean ± std over seeds)", "",
              score_table(hv, budget, "hypervolume"), ""]
    if distance is not None:
        parts += ["## IGD against the exact front (mean ± std over seeds; 0: the whole front found)", "",
                  score_table(distance, budget, "IGD"), ""]
    for name, summary in (("hypervolume", hv), ("IGD", distance)):
        if summary is not None and summary["tests"]:
            parts += [f"## Pairwise tests on the {name} at budget {budget}", "", tests_table(summary["tests"]), ""]
    parts += ["## Method", "",
              "- Every strategy and seed ran against the same evaluator through one shared cache (`cache.jsonl`); "
              "runs with the same seed are paired in the tests.",
              "- Hypervolume: the volume the front found so far dominates, bounded by the reference point, "
              "in the metrics' own units (exact computation). `@b`: after b scored evaluations.",
              "- IGD: mean over the exact front's points of the distance to the nearest point found, each "
              "objective divided by the exact front's range.",
              "- Tests: two-sided Wilcoxon signed-rank on seed-paired values at the budget (Pratt), Holm-corrected "
              f"over all pairs of each table, significant at {hv['alpha']}; the smallest possible p with "
              f"{len(seeds)} seeds is {2 / 2 ** len(seeds):.3g}.",
              "- `anytime.png`: mean hypervolume over seeds against evaluations, 95% Student-t band.",
              "", "![hypervolume curves](anytime.png)", ""]
    return "\n".join(parts)
