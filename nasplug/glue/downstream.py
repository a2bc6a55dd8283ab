"""GLUE dev scores of one trained model, for ``nasplug study`` (the stage's downstream hook).

Each task's result goes to ``<model folder>/glue/<TASK>.json`` when it is done, so an
interrupted study fine-tunes only what is missing. Tasks without local data are left out.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from nasplug.io import atomic_write_json
from nasplug.runfiles import read_json

log = logging.getLogger(__name__)


def glue_downstream(ctx: Any, arch: dict[str, Any], folder: Path) -> dict[str, float]:
    """``glue_<TASK>`` (the task's dev metric, median over the fine-tuning seeds) for every
    task with data, and ``glue_avg`` (their mean), of the model in ``folder``."""
    from nasplug import glue
    from nasplug.glue.stage import _model_factory, glue_config, glue_source
    from nasplug.spaces.lvbert import layer_index
    from nasplug.text.tokenizer import load_tokenizer

    cfg = glue_config(ctx.recipe.section("glue"))
    source = glue_source(cfg.source)
    if source != "hub" and not Path(source).is_dir():
        log.warning("study: GLUE folder %s not found; no GLUE figures", source)
        return {}
    finetune_cfg = glue.FinetuneConfig(**cfg.model_dump(exclude={"source", "tasks", "init_from"}))
    tokenizer = load_tokenizer(ctx.layout.tokenizer)
    factory = _model_factory(ctx, arch, folder / "model.safetensors", cfg.official_padding)
    scores: dict[str, float] = {}
    for task in (glue.get_task(t).name for t in cfg.tasks):
        if task == "AX":
            continue
        path = folder / "glue" / f"{task}.json"
        result = read_json(path)
        if result is None:
            data = glue.load_task(task, source)
            result = glue.finetune(task, factory, tokenizer, data, finetune_cfg,
                                   layer_index=lambda n: layer_index(n, len(arch)))
            atomic_write_json(path, result)
        value = (result.get("median") or {}).get(glue.ELECTRA_DEV_METRIC.get(task, "accuracy"))
        if result.get("status") not in ("missing", "failed") and isinstance(value, (int, float)):
            scores[f"glue_{task}"] = float(value)
    wanted = [t for t in (glue.get_task(t).name for t in cfg.tasks) if t != "AX"]
    if scores and len(scores) == len(wanted):  # an average of some tasks is not comparable with one of all
        scores["glue_avg"] = statistics.fmean(scores.values())
    return scores
