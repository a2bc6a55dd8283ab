"""The GLUE stage: fine-tune every retrained model, and ready-made encoders, on GLUE tasks.

Models: every model of the retrain stage (its backbone), plus each ``glue.init_from`` entry
(model name -> a folder written by ``nasplug import-official`` or an LV-BERT Hugging Face
folder), e.g. the released LV-BERT checkpoints. A recipe without a retrain section fine-tunes
only the ``init_from`` models. One JSON per (model, task) under ``run_dir/glue/<model>/``,
written when the task is done, so a resumed run skips finished tasks. Submission files for
the found model (or, without one, each ``init_from`` model) go to ``glue/<model>/submission/``.
Missing task data is reported as missing, never skipped. The task loop is
:func:`nasplug.glue.runner.finetune_model`, shared with ``nasplug study``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.glue.models import GlueModel, InitFrom, init_from_model
from nasplug.glue.runner import GlueConfig, finetune_model, glue_config, glue_plan, model_factory
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.retrained import check_model_name, retrain_archs, retrained_names, seed_runs
from nasplug.pipeline.stage import RunView, Section, Stage

log = logging.getLogger(__name__)


def glue_models(ctx: RunContext, cfg: GlueConfig) -> list[GlueModel]:
    """The models to fine-tune: the retrained ones (if the recipe retrains), then ``init_from``."""
    from nasplug.text.tokenizer import load_tokenizer

    models: list[GlueModel] = []
    if ctx.recipe.retrain is not None:
        tokenizer = load_tokenizer(ctx.layout.tokenizer)
        slots = len(ctx.space.choices())
        for name, arch in retrain_archs(ctx).items():
            weights = ctx.layout.retrain(name, seed_runs(ctx)[0][2]) / "model.safetensors"  # the first seed's
            if not weights.is_file():
                raise NasplugError(f"glue: no retrained model at {weights}; run the retrain stage first")
            models.append(GlueModel(name, model_factory(ctx.space, arch, weights, cfg.official_padding), tokenizer,
                                    slots, str(weights)))
    task = ctx.recipe.task.kwargs() if ctx.recipe.task is not None else {}
    pretrained = (task.get("tokenizer") or {}).get("pretrained") if isinstance(task.get("tokenizer"), dict) else None
    for name, entry in cfg.init_from.items():
        spec = entry.model_dump() if isinstance(entry, InitFrom) else entry
        models.append(init_from_model(name, spec, cfg.official_padding, ctx.layout.tokenizer, pretrained))
    return models


class GlueStage(Stage):
    """Fine-tunes every retrained model (its backbone) and every ``glue.init_from`` encoder on
    the recipe's GLUE tasks."""

    name = "glue"
    incremental = True  # named in --stages, it retries tasks that were missing
    position = 40.0  # after retraining, before the report
    outputs = (RunLayout.GLUE,)
    # results are kept per (model, task); glue.lr is the remedy for a task whose loss diverged
    may_change = ("glue.tasks", "glue.progress", "glue.device", "glue.lr")
    section = True  # the recipe's glue: section

    def applies(self, recipe: Any) -> bool:
        glue = recipe.section("glue")
        return glue is not None and (
            recipe.retrain is not None or bool(isinstance(glue, dict) and glue.get("init_from"))
        )

    def check(self, ctx: RunContext) -> None:
        from nasplug import glue
        cfg = glue_config(ctx.recipe.section("glue"))
        for task in cfg.tasks:
            glue.get_task(task)
        retrained = set(retrained_names(ctx)) if ctx.recipe.retrain is not None else set()
        for name in cfg.init_from:
            check_model_name(name, f"glue.init_from.{name}")
            if name in retrained:
                raise NasplugError(f"glue.init_from.{name}: {name!r} is already a retrained model's name; "
                                   "name the imported model otherwise (e.g. released)")

    def run(self, ctx: RunContext) -> dict[str, Any]:
        return run_glue(ctx)

    def downstream(self, ctx: RunContext, arch: Any, folder: Path, seed: int) -> dict[str, float] | None:
        from nasplug.glue.downstream import glue_downstream

        return glue_downstream(ctx, arch, folder)

    def downstream_metrics(self, ctx: RunContext) -> dict[str, str]:
        """``glue_avg`` (the headline), then ``glue_<TASK>`` for each task (AX has no dev score)."""
        tasks = glue_plan(ctx.recipe.section("glue")).trained_tasks
        return {"glue_avg": "maximize", **{f"glue_{t}": "maximize" for t in tasks}}

    def report(self, view: RunView) -> Section:
        from nasplug.glue.report import glue_section
        from nasplug.report.sections import retrained_archs

        init_from = list((view.recipe.get("glue") or {}).get("init_from") or {})
        return glue_section(view.run_dir, [*retrained_archs(view), *init_from], view.recipe.get("expected"))


def run_glue(ctx: RunContext) -> dict[str, Any]:
    """Fine-tune every model on every task (:func:`~nasplug.glue.runner.finetune_model`), then
    write each model's submission files and ``scores.json``; returns the stage summary."""
    plan = glue_plan(ctx.recipe.section("glue"))
    if not ctx.progress:  # `nasplug -q` (or a rank that is not 0): no bar, whatever the recipe says
        plan = dataclasses.replace(plan, config=plan.config.model_copy(update={"progress": False}))
    models = glue_models(ctx, plan.config)
    submits = {"found"} if any(m.name == "found" for m in models) else {m.name for m in models}
    summary: dict[str, Any] = {}
    for model in models:
        results = finetune_model(plan, model, ctx.layout.glue(model.name))
        summary[model.name] = write_scores(ctx.layout, model.name, results, submit=model.name in submits)
    return summary


def write_scores(layout: RunLayout, name: str, results: dict[str, Any], submit: bool) -> dict[str, Any]:
    """A model's submission files (``submit``: when it has test predictions) and ``scores.json``
    (its GLUE score under each convention); returns the scores for the stage summary."""
    from nasplug import glue

    predictions = {k: v for r in results.values() for k, v in (r.get("test_predictions") or {}).items()}
    if submit and predictions:
        glue.write_submission(predictions, layout.glue_submission(name), check_counts=False)
    scores = {conv: glue.glue_score(results, convention=conv) for conv in glue.CONVENTIONS}
    atomic_write_json(layout.glue_scores(name), scores)
    return {conv: s.get("score") for conv, s in scores.items()}
