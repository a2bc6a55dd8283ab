"""``nasplug rank-corr``: can the supernet's ranking of architectures be trusted?

For a run whose supernet stage has finished: draw N distinct archs (uniformly, or stratified
over an analytic metric such as ``params``), score each with the supernet (inherited weights,
the run's evaluator on its fixed held-out batches), train each standalone from scratch for S
steps with K seeds, score every model on exactly the same pre-masked batches, and report
Kendall tau / Spearman rho between the supernet's score and the mean over seeds, with
bootstrap intervals. With K >= 2 the *noise ceiling* (the mean tau between seeds) says how
well standalone training agrees with itself, and each predictor's tau against single seeds
is given as a fraction of it. Besides the supernet: its kept snapshots (``--checkpoints``,
the training-budget curve), other runs' supernets of the same space and task
(``--compare``), cheaper predictors (``--predictors``: params, FLOPs, zero-cost proxies,
short standalone training) and the evaluation-cost curve (``--eval-cost``: tau against the
number of held-out batches, in the other precision and with BatchNorm recalibration
toggled).

Files (:class:`nasplug.layout.RankCorrLayout`), in ``run_dir/rank_corr/`` (or ``out``):
``rank_corr.json/.md/.png``, ``predictors.json/.md``, ``budget.json/.md/.png``,
``eval_cost.json/.md/.png``, ``scores/`` (the supernets' scores per held-out batch); and in
the models folder (``models``, default ``out``): ``standalone/<arch>/steps-<S>/seed-<k>/``
and ``predictors/``.

Everything is kept and reused: a standalone model per (arch, steps, seed), across calls and
runs that share ``models``; every cached score names the settings it was computed with, and
a changed setting (``--batches``, ``--set evaluator...``, a supernet trained again) scores
again (trained models are loaded, never retrained). Archs are the first N distinct draws of
``random.Random(seed)``, so a rerun with a larger N reuses every arch already trained.

:func:`rank_correlation` plans (:mod:`nasplug.rankcorr.plan`: every argument and folder
checked, nothing written), scores (:mod:`nasplug.rankcorr.scoring`), judges
(:mod:`nasplug.rankcorr.record`) and writes (:mod:`nasplug.rankcorr.outputs`,
:mod:`nasplug.rankcorr.tables`).
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Imported when first used (torch, the training loop): building the CLI's parser imports this package.
_LAZY = {"summary_lines": "outputs", "table": "outputs", "write_outputs": "outputs", "load_run_recipe": "plan",
         "standalone_train_config": "standalone", "sample_archs": "sampling", "stratified_archs": "sampling",
         "result_record": "record", "heldout_sums": "standalone"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def rank_correlation(run_dir: str | Path, archs: int, steps: int, *, seed: int = 0, num_batches: int | None = None,
                     resume: bool = True, progress: bool = True, train_overrides: dict[str, Any] | None = None,
                     metric: str | None = None, out: str | Path | None = None, resamples: int = 2000,
                     keep_checkpoints: bool = False, overrides: Sequence[str] = (),
                     models: str | Path | None = None, num_seeds: int = 1, predictors: Sequence[str] = (),
                     checkpoints: bool = False, compare: Sequence[str | Path] = (), eval_cost: bool = False,
                     stratify: str | None = None, jobs: int = 1) -> dict[str, Any]:
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
        num_seeds: K, standalone trainings per arch (``--seeds``; K >= 2 gives the noise ceiling).
        predictors: cheaper predictors ranked beside the supernet
            (:mod:`nasplug.rankcorr.predictors`: params, flops, synflow, grad_norm, snip,
            jacov, short[:N], all).
        checkpoints: also rank with each kept supernet snapshot (``supernet.snapshots``).
        compare: other runs of the same space and task whose supernets are ranked too.
        eval_cost: the evaluation-cost curve.
        stratify: draw the archs stratified over this analytic metric (e.g. ``params``).
        jobs: train the standalone models in this many processes (:mod:`nasplug.rankcorr.parallel`).

    Returns:
        The content of ``rank_corr.json`` plus ``files`` (paths of the json, md and png).

    Raises:
        NasplugError: no run directory, no trained supernet, N < 3, S < 1, K < 1, a metric the
            task does not measure, an unknown predictor, no snapshots with ``checkpoints``, a
            compared run of another space or task, or an output folder of another experiment.
    """
    from nasplug.rankcorr.outputs import write_outputs
    from nasplug.rankcorr.plan import RankCorrRequest, plan_rank_corr
    from nasplug.rankcorr.record import result_record
    from nasplug.rankcorr.scoring import score_plan

    t0 = time.perf_counter()
    request = RankCorrRequest(
        Path(run_dir), archs, steps, seed=seed, num_batches=num_batches, resume=resume, progress=progress,
        train_overrides=train_overrides, metric=metric, out=None if out is None else Path(out), resamples=resamples,
        keep_checkpoints=keep_checkpoints, overrides=tuple(overrides), models=None if models is None else Path(models),
        num_seeds=num_seeds, predictors=tuple(predictors), checkpoints=checkpoints,
        compare=tuple(Path(c) for c in compare), eval_cost=eval_cost, stratify=stratify, jobs=jobs)
    plan = plan_rank_corr(request)
    scores = score_plan(plan)
    result = result_record(plan, scores)
    result["wall_s"] = time.perf_counter() - t0
    result["files"] = write_outputs(result, plan.out_dir)
    tau = result["kendall_tau"]
    log.info("rank-corr: Kendall tau %.3f [%.3f, %.3f] over %d archs", tau["estimate"], tau["ci_low"], tau["ci_high"],
             result["archs"])
    return result


__all__ = ["heldout_sums", "load_run_recipe", "rank_correlation", "result_record", "sample_archs",
           "standalone_train_config", "stratified_archs", "summary_lines", "table", "write_outputs"]
