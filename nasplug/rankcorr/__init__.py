"""``nasplug rank-corr``: can the supernet's ranking of architectures be trusted?

For a run whose supernet stage has finished: sample N distinct archs, score each with the
supernet (inherited weights, the run's evaluator on its fixed held-out batches), train each
standalone from scratch for S steps, score it on exactly the same pre-masked batches, and
report Kendall tau / Spearman rho between the two scores with bootstrap intervals.

Files, in ``run_dir/rank_corr/`` (or ``out``)::

    arch-00/ ... arch-NN/   pretrain output of each standalone model (metrics.jsonl,
                            model.safetensors, result.json) + score.json (its held-out metrics)
    rank_corr.json          pairs, archs, both scores, tau / rho with intervals and p-values
    rank_corr.md            the same as a table
    rank_corr.png           scatter of supernet score vs standalone accuracy

Resumable: an arch whose ``score.json`` exists is not trained again, and an interrupted
training continues from its checkpoint. ``score.json`` names the evaluator and task settings it
was scored with; when they change (``--batches``, ``--set evaluator...``) the trained models are
loaded and scored again, not retrained. Archs are the first N distinct draws of
``random.Random(seed)``, so a rerun with a larger N reuses every arch already trained.

:func:`rank_correlation` plans (:mod:`nasplug.rankcorr.plan`: every argument and folder
checked, nothing written), scores (:mod:`nasplug.rankcorr.scoring`) and writes
(:mod:`nasplug.rankcorr.outputs`).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nasplug.rankcorr.plan import RankCorrPlan
    from nasplug.rankcorr.scoring import Scores

log = logging.getLogger(__name__)

#: Imported when first used (torch, the training loop): building the CLI's parser imports this package.
_LAZY = {"summary_lines": "outputs", "table": "outputs", "write_outputs": "outputs", "load_run_recipe": "plan",
         "sample_archs": "plan", "standalone_train_config": "plan", "standalone_metrics": "scoring"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def rank_correlation(run_dir: str | Path, archs: int, steps: int, *, seed: int = 0, num_batches: int | None = None,
                     resume: bool = True, progress: bool = True, train_overrides: dict[str, Any] | None = None,
                     metric: str | None = None, out: str | Path | None = None, resamples: int = 2000,
                     keep_checkpoints: bool = False, overrides: Sequence[str] = (),
                     models: str | Path | None = None) -> dict[str, Any]:
    """Rank correlation between the supernet's scores and standalone training, for one run.

    Args:
        run_dir: a run directory whose supernet stage has finished.
        archs: N, the number of distinct archs (>= 3).
        steps: S, standalone training steps per arch (>= 1).
        seed: draws the archs (``random.Random(seed)``) and seeds the bootstrap.
        num_batches: how many held-out batches the evaluator scores on (``--batches``; default:
            the recipe's ``evaluator.batches``).
        resume: reuse archs trained by an earlier call; False refuses a folder with results.
        progress: progress bars (across archs, and pretrain's own per arch).
        train_overrides: TrainConfig fields over the recipe's retrain settings, e.g. ``{"lr": 1e-3}``.
        metric: the compared metric, any the task measures (default: the search metric if
            the task measures it, else the task's primary metric, e.g. ``mlm_acc`` for MLM).
        out: output folder (default ``run_dir/rank_corr``).
        resamples: bootstrap resamples.
        keep_checkpoints: keep each arch's training checkpoint after it is scored (default:
            removed once ``score.json`` is written, to save disk; ``model.safetensors`` stays).
        overrides: ``KEY=VALUE`` changes to the run's recipe, as ``nasplug run --set``
            (e.g. ``retrain.lr=0.001``, or a key the run's ``recipe.yaml`` lost).
        models: where the standalone models are trained and kept (default: ``out``). Runs
            that differ only in how their supernet was trained (sampling rules) share one
            folder: the same archs, data and settings give the same standalone models, trained once.

    Returns:
        The content of ``rank_corr.json`` plus ``files`` (paths of the json, md and png).

    Raises:
        NasplugError: no run directory, no trained supernet, N < 3, S < 1, a metric the
            objective has not, or an output folder that holds another experiment.
    """
    from nasplug.rankcorr.outputs import write_outputs
    from nasplug.rankcorr.plan import RankCorrRequest, plan_rank_corr
    from nasplug.rankcorr.scoring import score_plan

    t0 = time.perf_counter()
    request = RankCorrRequest(
        Path(run_dir), archs, steps, seed=seed, num_batches=num_batches, resume=resume, progress=progress,
        train_overrides=train_overrides, metric=metric, out=None if out is None else Path(out), resamples=resamples,
        keep_checkpoints=keep_checkpoints, overrides=tuple(overrides), models=None if models is None else Path(models))
    plan = plan_rank_corr(request)
    scores = score_plan(plan)
    result = result_record(plan, scores)
    result["wall_s"] = time.perf_counter() - t0
    result["files"] = write_outputs(result, plan.out_dir)
    tau = result["kendall_tau"]
    log.info(
        "rank-corr: Kendall tau %.3f [%.3f, %.3f] over %d archs", tau["estimate"], tau["ci_low"], tau["ci_high"], archs
    )
    return result


def result_record(plan: RankCorrPlan, scores: Scores) -> dict[str, Any]:
    """What ``rank_corr.json`` holds (but the wall time and the file names): the pairs, the
    coefficients with their intervals and the top-k agreement."""
    from nasplug.rankcorr.stats import rank_stats, top_k_agreement

    request, metric, n = plan.request, plan.metric, plan.request.archs
    x = [s[metric] for s in scores.supernet]
    y = [s[metric] for s in scores.standalone]
    stats = rank_stats(y, x, resamples=request.resamples, seed=request.seed)
    sign = -1.0 if plan.direction == "minimize" else 1.0  # top-k picks the best: the lowest loss
    top_k = top_k_agreement([sign * v for v in y], [sign * v for v in x])  # regret stays >= 0, in metric units
    pairs = [{"index": i, "arch": scores.texts[i], "arch_dict": scores.archs[i], "supernet": x[i],
              "standalone": y[i], "supernet_metrics": scores.supernet[i], "standalone_metrics": scores.standalone[i]}
             for i in range(n)]
    return {
        "run_dir": str(request.run_dir),
        "metric": metric,
        "task": plan.ctx.task.name,
        "archs": n,
        "steps": request.steps,
        "seed": request.seed,
        "overrides": list(request.overrides),
        "train_config": plan.train.model_dump(mode="json"),
        "evaluator": {**plan.evaluator_kwargs, "heldout_batches": scores.heldout_batches},
        "direction": "minimize" if sign < 0 else "maximize",
        "pairs": pairs,
        **stats,
        "top_k": top_k,
    }


__all__ = ["load_run_recipe", "rank_correlation", "sample_archs", "standalone_metrics", "standalone_train_config",
           "summary_lines", "table", "write_outputs"]
