"""GLUE dev scores of one trained model, for ``nasplug study`` (the stage's downstream hook).

The tasks are fine-tuned by the GLUE stage's task loop
(:func:`~nasplug.glue.runner.finetune_model`): each task's result goes to
``<model folder>/glue/<TASK>.json`` when it is done, so an interrupted study fine-tunes only
what is missing. A result is kept as it is (a study's models must all be fine-tuned alike),
and tasks without local data are left out.
"""

from __future__ import annotations

import logging
import statistics
from pathlib import Path
from typing import Any

from nasplug.glue.models import GlueModel
from nasplug.glue.runner import UNFINISHED, finetune_model, glue_plan, model_factory
from nasplug.layout import RunLayout

log = logging.getLogger(__name__)


def glue_downstream(ctx: Any, arch: dict[str, Any], folder: Path) -> dict[str, float]:
    """``glue_<TASK>`` (the task's dev metric, median over the fine-tuning seeds) for every
    task with data, and ``glue_avg`` (their mean), of the model in ``folder``."""
    from nasplug import glue
    from nasplug.text.tokenizer import load_tokenizer

    plan = glue_plan(ctx.recipe.section("glue"), study=True)
    if plan.source_missing:
        log.warning("study: GLUE folder %s not found; no GLUE figures", plan.source)
        return {}
    weights = folder / "model.safetensors"
    model = GlueModel(str(folder), model_factory(ctx.space, arch, weights, plan.config.official_padding),
                      load_tokenizer(ctx.layout.tokenizer), len(arch), str(weights))
    results = finetune_model(plan, model, folder / RunLayout.GLUE)
    scores: dict[str, float] = {}
    for task, result in results.items():
        value = (result.get("median") or {}).get(glue.ELECTRA_DEV_METRIC.get(task, "accuracy"))
        if result.get("status") not in UNFINISHED and isinstance(value, (int, float)):
            scores[f"glue_{task}"] = float(value)
    if scores and len(scores) == len(plan.trained_tasks):  # an average of some tasks is not comparable
        scores["glue_avg"] = statistics.fmean(scores.values())
    return scores
