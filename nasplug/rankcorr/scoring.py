"""Carrying out a rank-corr plan: every supernet's scores, then each arch trained standalone
(K seeds) and scored, then the cheaper predictors.

Both sides are scored per held-out batch (:mod:`nasplug.rankcorr.supernets`,
:mod:`nasplug.rankcorr.standalone`), so the metric on the first b batches, for any b, comes
from the one evaluation (the evaluation-cost curve) and the totals are the evaluator's scores.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from nasplug.arch import Arch
from nasplug.rankcorr.plan import RankCorrPlan, SupernetSource
from nasplug.rankcorr.predictors import score_predictor
from nasplug.rankcorr.standalone import StandaloneModels
from nasplug.rankcorr.supernets import SupernetRun, eval_cost_variants, score_supernet
from nasplug.task import Sums, add_sums

log = logging.getLogger(__name__)

Figures = dict[str, float]


@dataclass
class Scores:
    """Everything measured for a plan, in draw order of the archs."""

    archs: list[Arch]
    texts: list[str]
    supernet: list[Figures]  # this run's supernet
    per_seed: list[list[Figures]]  # [seed][arch]: standalone figures at the full steps
    heldout_batches: int
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per predictor (the supernets first)
    eval_cost: list[dict[str, Any]] = field(default_factory=list)  # one per evaluator variant


def _slug(source: SupernetSource, index: int) -> str:
    if index == 0:
        return "supernet"
    if source.step is not None:
        return f"supernet-step-{source.step}"
    return f"compare-{index}-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in source.ctx.run_dir.name)


def _training_seconds(source: SupernetSource) -> float | None:
    """What training this supernet cost (its run's supernet stage wall time; a snapshot at
    step s of S steps: s / S of it, every step costing the same)."""
    record = source.ctx.layout.read_stage("supernet")
    wall = record.get("wall_s") if isinstance(record, dict) else None
    if not isinstance(wall, (int, float)):
        return None
    return float(wall) * (source.step / source.ctx.recipe.supernet.steps if source.step is not None else 1.0)


def _heldout(plan: RankCorrPlan, task: Any) -> tuple[list[Any], dict[str, Any]]:
    """The fixed held-out batches both sides are scored on, and what they depend on; a task
    with fewer batches than asked scores on those it has (both sides alike)."""
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.registry import build_callable

    plugin = build_callable(SupernetEvaluator, plan.evaluator_kwargs, field="evaluator")
    batches = task.heldout_batches(plugin.batch_size, plugin.seed, plugin.num_batches)
    if len(batches) < plugin.num_batches:
        plan.evaluator_kwargs["batches"] = len(batches)
    return batches, {"batches": len(batches), "batch_size": plugin.batch_size, "seed": plugin.seed}


def score_plan(plan: RankCorrPlan) -> Scores:
    """Score the plan's archs with every supernet, train (or reuse) and score each arch
    standalone for every seed, then score them with each cheaper predictor."""
    from nasplug.pipeline.run import make_run_dir

    request, ctx = plan.request, plan.ctx
    task = ctx.prepared_task()
    heldout, heldout_id = _heldout(plan, task)

    def metric_of(parts: list[Sums]) -> float:
        return task.figures(add_sums(parts))[plan.metric]

    higher = plan.direction == "maximize"
    rows, runs = [], []
    for i, source in enumerate(plan.supernets):
        run = score_supernet(plan, source, plan.evaluator_kwargs, _slug(source, i))
        runs.append(run)
        rows.append({"label": source.label, "kind": "supernet", "step": source.step, "higher_is_better": higher,
                     "values": [metric_of(p) for p in run.parts],
                     "seconds_per_arch": run.setup_seconds + sum(run.batch_seconds),
                     "one_off_s": _training_seconds(source)})
    eval_cost = _eval_cost(plan, runs[0], metric_of) if request.eval_cost else []
    make_run_dir(plan.out_dir, "--out")  # (only now: a supernet that does not load leaves the folders as they were)
    make_run_dir(plan.models_dir, "--models")
    models = StandaloneModels(ctx, plan.layout, request.train_overrides, heldout, heldout_id,
                              progress=request.progress, keep_checkpoints=request.keep_checkpoints)
    if request.jobs > 1:
        from nasplug.rankcorr.parallel import train_in_workers

        short = [p.steps for p in plan.predictors if p.kind == "short"]
        todo = [(a, request.steps, k) for a in plan.archs for k in range(request.num_seeds)]
        train_in_workers(plan, models, [*todo, *((a, s, 0) for s in short for a in plan.archs)], heldout_id)
    per_seed = _standalone(plan, models, task)
    for predictor in plan.predictors:
        scores = score_predictor(predictor, plan, models, metric_of)
        rows.append({"label": predictor.label, "kind": predictor.kind, "step": None,
                     "higher_is_better": scores.higher_is_better, "values": scores.values,
                     "seconds_per_arch": scores.seconds_per_arch, "one_off_s": scores.one_off_s})
    return Scores(plan.archs, [ctx.space.format(a) for a in plan.archs],
                  [task.figures(add_sums(p)) for p in runs[0].parts], per_seed, len(heldout), rows, eval_cost)


def _standalone(plan: RankCorrPlan, models: StandaloneModels, task: Any) -> list[list[Figures]]:
    """[seed][arch]: the figures of every arch trained for the full steps with every seed."""
    from nasplug.progress import progress_bar

    request = plan.request
    bar = progress_bar(total=len(plan.archs) * request.num_seeds, desc="rank-corr", unit="model",
                       enabled=request.progress)
    per_seed: list[list[Figures]] = [[] for _ in range(request.num_seeds)]
    for arch in plan.archs:  # every seed of an arch before the next arch: a stop leaves whole archs
        for k in range(request.num_seeds):
            bar.set_postfix_str(f"{plan.ctx.space.format(arch)[:24]} seed {k}")
            per_seed[k].append(task.figures(add_sums(models.get(arch, request.steps, k).parts)))
            bar.update()
    bar.close()
    return per_seed


def batch_grid(total: int) -> list[int]:
    """1, 2, 4, ... up to ``total`` held-out batches, ``total`` itself always included."""
    grid, b = [], 1
    while b < total:
        grid.append(b)
        b *= 2
    return [*grid, total]


def _eval_cost(plan: RankCorrPlan, as_run: SupernetRun, metric_of: Any) -> list[dict[str, Any]]:
    """Per evaluator variant (:func:`~nasplug.rankcorr.supernets.eval_cost_variants`), the
    supernet's scores on the first b held-out batches and their cost per arch, for each b."""
    out = []
    for tag, description, kwargs in eval_cost_variants(plan):
        run = as_run if tag == "as-run" else score_supernet(plan, plan.supernets[0], kwargs, f"supernet-{tag}")
        curve = [{"batches": b, "values": [metric_of(p[:b]) for p in run.parts],
                  "seconds_per_arch": run.setup_seconds + sum(run.batch_seconds[:b])}
                 for b in batch_grid(len(run.batch_seconds))]
        out.append({"tag": tag, "description": description, "curve": curve})
    return out
