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
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.rankcorr.outputs import summary_lines, table, write_outputs

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- inputs
def load_run_recipe(run_dir: Path, overrides: Sequence[str] = ()) -> Any:
    """The validated ``Recipe`` of a run directory (its ``recipe.yaml``), with ``--set``
    overrides (``a.b=value``) applied, e.g. ``retrain.lr=0.001``."""
    from nasplug.recipe import apply_override, validate_recipe
    from nasplug.report import load_run

    if not run_dir.is_dir():
        raise NasplugError(f"RUN_DIR: no such run directory: {run_dir}")
    raw, _ = load_run(run_dir)
    for override in overrides:
        apply_override(raw, override)
    return validate_recipe(raw, source=str(RunLayout(run_dir).recipe))


def standalone_train_config(recipe: Any, steps: int, overrides: dict[str, Any] | None = None) -> Any:
    """The recipe's ``retrain`` settings (else ``supernet``'s) for an S-step standalone run.

    ``steps`` = S; an explicit ``warmup_steps`` is scaled by S / the recipe's steps (a
    ``warmup_fraction`` scales by itself); ``eval_every`` = 0 (the held-out score is computed
    here, on the evaluator's batches). ``overrides`` (TrainConfig fields) are applied last.
    """
    from pydantic import ValidationError

    from nasplug.oneshot.config import TrainConfig
    from nasplug.recipe import describe_error, training_settings

    base = training_settings(recipe)
    changes: dict[str, Any] = {"steps": steps, "eval_every": 0}
    if base.warmup_steps is not None:
        changes["warmup_steps"] = round(base.warmup_steps * steps / base.steps)
    try:
        return TrainConfig.of(base, **{**changes, **(overrides or {})})
    except ValidationError as exc:
        raise NasplugError(f"rank-corr training settings: {describe_error(exc)}") from None


def sample_archs(space: Any, n: int, seed: int) -> list[Arch]:
    """The first ``n`` distinct archs drawn with ``random.Random(seed)`` (valid by construction)."""
    rng, seen, archs = random.Random(seed), set(), []
    for _ in range(1000 * n):
        arch = space.sample(rng)
        if arch_key(arch) not in seen:
            seen.add(arch_key(arch))
            archs.append(arch)
            if len(archs) == n:
                return archs
    raise NasplugError(
        f"--archs: only {len(archs)} distinct archs found in {1000 * n} draws; the space is too small for {n}"
    )


def _evaluator_kwargs(recipe: Any, batches: int | None) -> dict[str, Any]:
    from nasplug.pipeline.evaluators import supernet_evaluator
    from nasplug.registry import EVALUATORS

    spec = recipe.evaluator
    kwargs: dict[str, Any] = {}
    if spec is not None:
        if EVALUATORS.get(spec.name) is not supernet_evaluator:
            raise NasplugError(
                f"evaluator: rank-corr compares against the 'supernet' evaluator; the run uses {spec.name!r}"
            )
        kwargs = spec.kwargs()
    if batches is not None:
        kwargs["batches"] = batches
    return kwargs


# ---------------------------------------------------------------------- standalone scoring
def standalone_metrics(model: torch.nn.Module, evaluator: Any, aux: dict[str, Any] | None = None) -> dict[str, float]:
    """Held-out metrics of a standalone model on the evaluator's own fixed batches.

    The same sums as :class:`nasplug.oneshot.evaluator.InheritedWeights` (the task's
    ``evaluate`` on the evaluator's batches, fp32): a model extracted from the supernet
    scores exactly what the evaluator gives its arch (without the analytic metrics).
    """
    device = next(model.parameters()).device
    model.eval()
    for module in (aux or {}).values():
        module.eval()
    task = evaluator.task
    with torch.inference_mode():
        return task.figures(task.evaluate(model, evaluator.batches, aux or {}, device))


def _train_and_score(ctx: Any, arch: Arch, folder: Path, cfg: Any, evaluator: Any,
                     progress: bool) -> dict[str, float]:
    """Train ``arch`` from scratch into ``folder`` (or load it if trained) and score it."""
    from nasplug.distributed import device_for
    from nasplug.oneshot.build import build_model
    from nasplug.pipeline.standalone import train_model

    task = ctx.prepared_task()
    model = build_model(ctx.space, arch, task, seed=ctx.recipe.seed)
    aux = train_model(
        model, task, cfg, folder, progress=progress, test=False
    )  # scored here, on the evaluator's batches
    device = device_for(cfg.device)  # a model loaded from its folder (not trained now) is still on the CPU
    return standalone_metrics(model.to(device), evaluator, {k: m.to(device) for k, m in aux.items()})


def _as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file, to compare with what a file holds."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _check_folder(folder: Path, arch_text: str, config: dict[str, Any], task: Any,
                  scored_with: dict[str, Any]) -> dict[str, Any] | None:
    """The saved score of this arch, None if there is none or it was scored on other held-out
    batches (the trained model is then loaded and scored again); an error if the folder holds
    another arch or a model trained with other settings."""
    meta_file = folder / "arch.json"
    if not meta_file.is_file():
        return None
    from nasplug.runfiles import read_json

    meta = read_json(meta_file, dict, "delete the folder to train the arch again")
    if meta.get("arch") != arch_text:
        raise NasplugError(f"{folder}: holds arch {meta.get('arch')}, not {arch_text} (an earlier --seed?); "
                           "pass another --out or delete the folder")
    if meta.get("config") != config:
        previous = meta.get("config") if isinstance(meta.get("config"), dict) else {}
        changed = sorted(k for k in config if previous.get(k) != config[k])
        raise NasplugError(f"{folder}: was trained with other settings ({', '.join(changed)} differ: an earlier "
                           "--steps or --set?); pass another --out or delete the folder")
    if "task" in meta and meta["task"] != task:  # (folders of older versions do not say)
        raise NasplugError(f"{folder}: was trained on other data (the task settings differ: an earlier --set "
                           "task...?); pass another --out or delete the folder")
    score_file = folder / "score.json"
    saved = read_json(score_file, dict, "delete it to score the arch again")
    if saved is None or saved.get("scored_with") != scored_with:
        return None  # not scored yet, or on other batches (an evaluator setting changed, or an older format)
    score = saved.get("metrics")
    if not isinstance(score, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in score.values()):
        raise NasplugError(f"{score_file}: its metrics are not a mapping of names to numbers; delete it to score "
                           "the arch again")
    return score


# ---------------------------------------------------------------------- the command
def rank_correlation(run_dir: str | Path, archs: int, steps: int, *, seed: int = 0, batches: int | None = None,
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
        batches: held-out batches of the evaluator (default: the recipe's evaluator setting).
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
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.evaluators import supernet_evaluator
    from nasplug.progress import progress_bar
    from nasplug.rankcorr.stats import rank_stats, top_k_agreement
    from nasplug.registry import build_callable

    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if not 3 <= archs <= 10_000:
        raise NasplugError(f"--archs: rank correlation needs between 3 and 10,000 archs, got {archs}")
    if not 1 <= steps <= 10**9:
        raise NasplugError(f"--steps: must be between 1 and 1,000,000,000, got {steps}")
    if not 10 <= resamples <= 10**6:
        raise NasplugError(f"--resamples: must be between 10 and 1,000,000, got {resamples}")
    recipe = load_run_recipe(run_dir, overrides)
    if recipe.supernet is None:
        raise NasplugError(f"{run_dir}: the run's recipe has no supernet section; nothing to rank-correlate")
    weights = RunLayout(run_dir).supernet_weights
    if not weights.is_file():
        raise NasplugError(f"{run_dir}: no trained supernet ({weights} is missing); run the supernet stage first")
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=True, progress=progress)
    task = ctx.task
    if metric is None:
        wanted = recipe.search.metric if recipe.search is not None else None
        metric = wanted if wanted in task.metrics else task.primary_metric()
    if metric not in task.metrics:
        raise NasplugError(f"--metric: {metric!r} is not measured by task {task.name!r}; "
                           f"allowed: {', '.join(task.metrics)}")
    direction = task.metrics[metric]
    cfg = standalone_train_config(recipe, steps, train_overrides)
    out_dir = Path(out) if out is not None else RunLayout(run_dir).rank_corr
    models_dir = Path(models) if models is not None else out_dir
    from nasplug.pipeline.identity import check_out_path
    from nasplug.pipeline.run import make_run_dir

    check_out_path(out_dir, "--out")
    check_out_path(models_dir, "--models")
    if not resume and any(models_dir.glob("arch-*")):
        raise NasplugError(f"{models_dir}: holds archs of an earlier rank-corr; resume it or pass another --out")

    ctx.prepared_task()
    try:
        evaluator = build_callable(supernet_evaluator, {"space": ctx.space, "context": ctx,
                                                        **_evaluator_kwargs(recipe, batches)}, field="evaluator")
    except NasplugError as exc:
        if "cannot load weights" not in str(exc):
            raise
        raise NasplugError(
            f"{exc} (the run's recipe.yaml builds another supernet than the one trained; if the "
            "recipe had null keys such as space.size: null, pass them again: --set space.size=null)"
        ) from None
    sampled = sample_archs(ctx.space, archs, seed)
    texts = [ctx.space.format(a) for a in sampled]
    log.info("rank-corr: scoring %d archs with the supernet", archs)
    supernet_scores = evaluator.evaluate_batch(sampled)
    evaluator.close()  # its kept hidden states are not needed while the standalone models train

    config = cfg.model_dump(mode="json")
    # what the standalone scores depend on besides the weights: the evaluator's batches and the task's data
    task_settings = _as_json(recipe.task.kwargs() if recipe.task is not None else None)
    scored_with = {"evaluator": _as_json(_evaluator_kwargs(recipe, batches)), "task": task_settings}
    make_run_dir(out_dir, "--out")
    make_run_dir(models_dir, "--models")
    width = max(2, len(str(archs - 1)))
    standalone: list[dict[str, float]] = []
    bar = progress_bar(total=archs, desc="rank-corr", unit="arch", enabled=progress)
    for i, (arch, text) in enumerate(zip(sampled, texts)):
        folder = models_dir / f"arch-{i:0{width}d}"
        saved = _check_folder(folder, text, config, task_settings, scored_with)
        if saved is None:
            bar.set_postfix_str(text[:32])
            if (folder / "result.json").is_file() and (folder / "model.safetensors").is_file():
                log.info("rank-corr: arch %d/%d %s: trained already, scoring it again", i + 1, archs, text)
            else:
                log.info("rank-corr: arch %d/%d %s: training %d steps", i + 1, archs, text, steps)
                atomic_write_json(folder / "arch.json", {"arch": text, "arch_dict": arch, "config": config,
                                                         "task": task_settings})
            saved = _train_and_score(ctx, arch, folder, cfg, evaluator, progress)  # loads a trained model
            atomic_write_json(folder / "score.json", {"metrics": saved, "scored_with": scored_with})
            if not keep_checkpoints:
                shutil.rmtree(folder / "checkpoint", ignore_errors=True)
        else:
            log.info("rank-corr: arch %d/%d %s: trained already, skipped", i + 1, archs, text)
        standalone.append(saved)
        bar.update()
    bar.close()

    x = [s[metric] for s in supernet_scores]
    y = [s[metric] for s in standalone]
    stats = rank_stats(y, x, resamples=resamples, seed=seed)
    sign = -1.0 if direction == "minimize" else 1.0  # top-k picks the best: the lowest loss
    top_k = top_k_agreement([sign * v for v in y], [sign * v for v in x])  # regret stays >= 0, in metric units
    pairs = [{"index": i, "arch": texts[i], "arch_dict": sampled[i], "supernet": x[i], "standalone": y[i],
              "supernet_metrics": supernet_scores[i], "standalone_metrics": standalone[i]} for i in range(archs)]
    result = {
        "run_dir": str(run_dir),
        "metric": metric,
        "task": task.name,
        "archs": archs,
        "steps": steps,
        "seed": seed,
        "overrides": list(overrides),
        "train_config": config,
        "evaluator": {**_evaluator_kwargs(recipe, batches), "heldout_batches": len(evaluator.batches)},
        "direction": "minimize" if sign < 0 else "maximize",
        "pairs": pairs,
        **stats,
        "top_k": top_k,
        "wall_s": time.perf_counter() - t0,
    }
    result["files"] = write_outputs(result, out_dir)
    tau = stats["kendall_tau"]
    log.info(
        "rank-corr: Kendall tau %.3f [%.3f, %.3f] over %d archs", tau["estimate"], tau["ci_low"], tau["ci_high"], archs
    )
    return result


__all__ = ["rank_correlation", "sample_archs", "standalone_metrics", "standalone_train_config", "summary_lines",
           "table", "write_outputs"]
