"""The training stages: single-path supernet pre-training, and retraining from scratch.

``supernet``: the space's supernet trained with a fresh uniformly sampled arch per step
(``run_dir/supernet/``). ``retrain``: the found arch (the search's best, or the recipe's
fixed ``arch``) and each baseline, trained standalone with fresh weights for the same steps
(``run_dir/retrain/<name>/``). Each training run resumes from its own checkpoint.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.pipeline import RunContext, add_stage
from nasplug.text.prepare import prepare_data

log = logging.getLogger(__name__)

SUPERNET_DIR = "supernet"
RETRAIN_DIR = "retrain"


def _resume_flag(folder: Any) -> bool:
    """Resume a training run that has a checkpoint (after a crash), else start fresh."""
    return (folder / "checkpoint").exists() or (folder / "metrics.jsonl").exists()


@add_stage("supernet", applies=lambda recipe: recipe.supernet is not None and recipe.arch is None)
def run_supernet_stage(ctx: RunContext) -> dict[str, Any]:
    from nasplug.oneshot.train import pretrain

    cfg = ctx.recipe.supernet
    assert cfg is not None
    data = prepare_data(ctx)
    supernet = ctx.space.build_supernet(seed=ctx.recipe.seed)
    folder = ctx.run_dir / SUPERNET_DIR
    result = pretrain(supernet, data, cfg, folder, space=ctx.space, resume=_resume_flag(folder), progress=ctx.progress)
    ctx.extras["supernet"] = supernet
    return {"heldout": {k: v for k, v in result.heldout.items() if k != "per_arch"},
            "unigram_baseline": result.unigram_baseline, "tokens_per_s": result.tokens_per_s}


def found_arch(ctx: RunContext) -> Arch:
    """The recipe's fixed arch, or the best arch of the search stage."""
    if ctx.recipe.arch is not None:
        return ctx.space.parse(ctx.recipe.arch)
    result = ctx.extras.get("search")  # this process searched: every rank holds the result
    if result is not None and result.best is not None:
        return dict(result.best.arch)
    top = ctx.run_dir / "top.json"
    if not top.is_file():
        raise NasplugError(f"retrain: no found architecture yet ({top} is missing); run the search stage first")
    return json.loads(top.read_text())[0]["arch"]


def retrain_archs(ctx: RunContext) -> dict[str, Arch]:
    """Name -> arch of every model the retrain stage trains: ``found`` first, then baselines."""
    from nasplug.spaces.lvbert import interleaved

    cfg = ctx.recipe.retrain
    archs = {"found": found_arch(ctx)}
    free = ctx.space.unconstrained()  # a baseline may lie outside the searched sub-space
    for name, text in (cfg.baselines if cfg else {}).items():
        if text == "interleaved":
            text = interleaved(len(ctx.space.choices()))
        try:
            archs[name] = free.parse(text)
        except NasplugError as exc:
            raise NasplugError(f"retrain.baselines.{name}: {exc}") from None
    return archs


@add_stage("retrain", applies=lambda recipe: recipe.retrain is not None)
def run_retrain_stage(ctx: RunContext) -> dict[str, Any]:
    from nasplug.oneshot.train import TrainConfig, pretrain

    cfg = ctx.recipe.retrain
    assert cfg is not None
    train_cfg = TrainConfig(**cfg.model_dump(exclude={"baselines"}))
    data = prepare_data(ctx)
    head = "discriminator" if train_cfg.objective == "electra" else "mlm"
    free = ctx.space.unconstrained()  # baselines may lie outside the searched sub-space
    summary: dict[str, Any] = {}
    for name, arch in retrain_archs(ctx).items():
        folder = ctx.run_dir / RETRAIN_DIR / name
        if (folder / "result.json").is_file():
            summary[name] = json.loads((folder / "result.json").read_text()).get("heldout", {})
            continue
        log.info("retrain %s: %s", name, ctx.space.format(arch))
        model = free.build(arch, head=head, seed=ctx.recipe.seed)
        result = pretrain(model, data, train_cfg, folder, resume=_resume_flag(folder), progress=ctx.progress)
        summary[name] = {k: v for k, v in result.heldout.items() if k != "per_arch"}
    return summary
