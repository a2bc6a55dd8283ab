"""Carrying out a rank-corr plan: the supernet's scores, then each arch trained and scored.

Each arch is trained standalone into its own folder (``arch-NN/`` of the models folder) and
scored on exactly the evaluator's held-out batches; ``score.json`` records the score and what
it was scored with, so a rerun reuses it, or loads the trained model and scores it again when
only the evaluator's or the task's settings changed.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasplug.arch import Arch
from nasplug.errors import NasplugError, UnloadableWeights
from nasplug.io import atomic_write_json
from nasplug.rankcorr.plan import RankCorrPlan, sample_archs
from nasplug.runfiles import read_json

log = logging.getLogger(__name__)

Figures = dict[str, float]


@dataclass
class Scores:
    """Both scores of every sampled arch, in draw order."""

    archs: list[Arch]
    texts: list[str]
    supernet: list[Figures]
    standalone: list[Figures]
    heldout_batches: int  # how many held-out batches both scores are on


def standalone_metrics(model: torch.nn.Module, evaluator: Any, aux: dict[str, Any] | None = None) -> Figures:
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


def _as_json(obj: Any) -> Any:
    """``obj`` as it reads back from a JSON file, to compare with what a file holds."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _supernet_evaluator(plan: RankCorrPlan) -> Any:
    """The run's supernet evaluator with the plan's settings (its data prepared first)."""
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.registry import build_callable

    ctx = plan.ctx
    ctx.prepared_task()
    try:
        return build_callable(SupernetEvaluator, plan.evaluator_kwargs, field="evaluator").build(ctx)
    except UnloadableWeights as exc:
        raise NasplugError(
            f"{exc} (the run's recipe.yaml builds another supernet than the one trained; if the "
            "recipe had null keys such as space.size: null, pass them again: --set space.size=null)"
        ) from None


def score_plan(plan: RankCorrPlan) -> Scores:
    """Score the plan's archs with the supernet, then train (or reuse) and score each standalone."""
    from nasplug.pipeline.run import make_run_dir
    from nasplug.progress import progress_bar

    request, ctx = plan.request, plan.ctx
    evaluator = _supernet_evaluator(plan)
    sampled = sample_archs(ctx.space, request.archs, request.seed)
    texts = [ctx.space.format(a) for a in sampled]
    log.info("rank-corr: scoring %d archs with the supernet", request.archs)
    supernet_scores = evaluator.evaluate_batch(sampled)
    evaluator.close()  # its kept hidden states are not needed while the standalone models train
    make_run_dir(plan.out_dir, "--out")
    make_run_dir(plan.models_dir, "--models")
    width = max(2, len(str(request.archs - 1)))
    standalone: list[Figures] = []
    bar = progress_bar(total=request.archs, desc="rank-corr", unit="arch", enabled=request.progress)
    for i, (arch, text) in enumerate(zip(sampled, texts)):
        standalone.append(_one_arch(plan, evaluator, i, arch, text, plan.models_dir / f"arch-{i:0{width}d}", bar))
        bar.update()
    bar.close()
    return Scores(sampled, texts, supernet_scores, standalone, len(evaluator.batches))


def _one_arch(plan: RankCorrPlan, evaluator: Any, i: int, arch: Arch, text: str, folder: Path, bar: Any) -> Figures:
    """The standalone score of arch ``i``: read back, or trained (or loaded) and scored now."""
    request, config = plan.request, plan.train.model_dump(mode="json")
    # what the standalone scores depend on besides the weights: the evaluator's batches and the task's data
    task_settings = _as_json(plan.ctx.recipe.task.kwargs() if plan.ctx.recipe.task is not None else None)
    scored_with = {"evaluator": _as_json(plan.evaluator_kwargs), "task": task_settings}
    saved = _check_folder(folder, text, config, task_settings, scored_with)
    if saved is not None:
        log.info("rank-corr: arch %d/%d %s: trained already, skipped", i + 1, request.archs, text)
        return saved
    bar.set_postfix_str(text[:32])
    if (folder / "result.json").is_file() and (folder / "model.safetensors").is_file():
        log.info("rank-corr: arch %d/%d %s: trained already, scoring it again", i + 1, request.archs, text)
    else:
        log.info("rank-corr: arch %d/%d %s: training %d steps", i + 1, request.archs, text, request.steps)
        atomic_write_json(folder / "arch.json", {"arch": text, "arch_dict": arch, "config": config,
                                                 "task": task_settings})
    saved = _train_and_score(plan.ctx, arch, folder, plan.train, evaluator, request.progress)  # loads a trained model
    atomic_write_json(folder / "score.json", {"metrics": saved, "scored_with": scored_with})
    if not request.keep_checkpoints:
        shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return saved


def _train_and_score(ctx: Any, arch: Arch, folder: Path, cfg: Any, evaluator: Any, progress: bool) -> Figures:
    """Train ``arch`` from scratch into ``folder`` (or load it if trained) and score it."""
    from nasplug.distributed import device_for
    from nasplug.oneshot.build import build_model
    from nasplug.pipeline.standalone import train_model

    task = ctx.prepared_task()
    model = build_model(ctx.space, arch, task, seed=ctx.recipe.seed)
    # not tested: scored here, on the evaluator's batches
    aux = train_model(model, task, cfg, folder, progress=progress, test=False)
    device = device_for(cfg.device)  # a model loaded from its folder (not trained now) is still on the CPU
    return standalone_metrics(model.to(device), evaluator, {k: m.to(device) for k, m in aux.items()})


def _check_folder(folder: Path, arch_text: str, config: dict[str, Any], task: Any,
                  scored_with: dict[str, Any]) -> Figures | None:
    """The saved score of this arch, None if there is none or it was scored on other held-out
    batches (the trained model is then loaded and scored again); an error if the folder holds
    another arch or a model trained with other settings."""
    meta_file = folder / "arch.json"
    if not meta_file.is_file():
        return None
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
