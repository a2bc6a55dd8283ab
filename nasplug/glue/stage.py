"""The GLUE stage: fine-tune every retrained model, and ready-made encoders, on GLUE tasks.

Models: every model of the retrain stage (its backbone), plus each ``glue.init_from`` entry
(model name -> a folder written by ``nasplug import-official`` or an LV-BERT Hugging Face
folder), e.g. the released LV-BERT checkpoints. A recipe without a retrain section fine-tunes
only the ``init_from`` models. One JSON per (model, task) under ``run_dir/glue/<model>/``,
written when the task is done, so a resumed run skips finished tasks. Submission files for
the found model (or, without one, each ``init_from`` model) go to ``glue/<model>/submission/``.
Missing task data is reported as missing, never skipped.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from nasplug.errors import NasplugError
from nasplug.glue.finetune import FinetuneConfig
from nasplug.glue.models import GlueModel, InitFrom, init_from_model
from nasplug.glue.tasks import BENCHMARK_TASKS
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.retrain import retrain_archs, seed_runs
from nasplug.pipeline.stage import RunView, Section, Stage
from nasplug.runfiles import read_json

log = logging.getLogger(__name__)


class GlueConfig(FinetuneConfig):
    """The recipe's ``glue:`` section: fine-tuning settings, which tasks, from where."""

    source: str = "hub"  # "hub" (nyu-mll/glue) or a folder in the GLUE TSV layout
    tasks: list[str] = Field(default_factory=lambda: list(BENCHMARK_TASKS))
    #: model name -> folder (or {path, tokenizer}) of a ready-made encoder to fine-tune too
    init_from: dict[str, str | InitFrom] = Field(default_factory=dict)


def glue_config(raw: dict[str, Any]) -> GlueConfig:
    """The validated ``glue:`` section; NasplugError naming the field."""
    from nasplug.recipe import describe_error

    try:
        return GlueConfig.model_validate(raw)
    except ValidationError as exc:
        raise NasplugError(f"glue.{describe_error(exc)}") from None


def glue_source(source: str) -> str:
    """"hub", or a GLUE folder; a relative folder may also live under $NASPLUG_DATA_DIR."""
    if source == "hub":
        return source
    path = Path(source).expanduser()
    data_dir = os.environ.get("NASPLUG_DATA_DIR")
    if not path.is_absolute() and not path.exists() and data_dir and (Path(data_dir) / path).exists():
        path = Path(data_dir) / path
    return str(path)


def _model_factory(ctx: RunContext, arch: dict[str, Any], weights: Path, sees_padding: bool = False) -> Any:
    """``(num_labels, seed) -> LVBertForSequenceClassification`` with the retrained backbone;
    ``sees_padding``: the dynamic convolutions see padding as in the official code."""
    from nasplug.glue.models import read_backbone

    backbone = read_backbone(weights)
    free = ctx.space.unconstrained()  # baselines may lie outside the searched sub-space
    extra = {"conv_sees_padding": True} if sees_padding else {}

    def factory(num_labels: int, seed: int) -> Any:
        model = free.build(arch, head="classification", seed=seed, num_labels=num_labels, **extra)
        missing, _ = model.lvbert.load_state_dict(backbone, strict=False)
        if missing:
            raise NasplugError(f"glue: {weights} lacks backbone weights, e.g. {missing[0]}")
        return model

    return factory


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
            models.append(GlueModel(name, _model_factory(ctx, arch, weights, cfg.official_padding), tokenizer,
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
        from nasplug.pipeline.retrain import check_model_name

        cfg = glue_config(ctx.recipe.section("glue"))
        for task in cfg.tasks:
            glue.get_task(task)
        retrained = set(retrain_archs_names(ctx)) if ctx.recipe.retrain is not None else set()
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
        from nasplug import glue

        tasks = [glue.get_task(t).name for t in glue_config(ctx.recipe.section("glue")).tasks]
        return {"glue_avg": "maximize", **{f"glue_{t}": "maximize" for t in tasks if t != "AX"}}

    def report(self, view: RunView) -> Section:
        from nasplug.glue.report import glue_section
        from nasplug.report.sections import retrained_archs

        init_from = list((view.recipe.get("glue") or {}).get("init_from") or {})
        return glue_section(view.run_dir, [*retrained_archs(view), *init_from], view.recipe.get("expected"))


def retrain_archs_names(ctx: RunContext) -> list[str]:
    """Names of the retrained models (``found`` and the baselines), without reading any file."""
    cfg = ctx.recipe.retrain
    return ["found", *(cfg.baselines if cfg else {})]


def run_glue(ctx: RunContext) -> dict[str, Any]:
    from nasplug import glue
    from nasplug.spaces.lvbert import layer_index

    cfg = glue_config(ctx.recipe.section("glue"))
    source = glue_source(cfg.source)
    finetune_cfg = glue.FinetuneConfig(**cfg.model_dump(exclude={"source", "tasks", "init_from"}))
    tasks = [glue.get_task(t).name for t in cfg.tasks]
    summary: dict[str, Any] = {}
    models = glue_models(ctx, cfg)
    submits = {"found"} if any(m.name == "found" for m in models) else {m.name for m in models}
    for model in models:
        name, factory, tokenizer, slots = model.name, model.factory, model.tokenizer, model.slots
        out = ctx.layout.glue(name)
        results: dict[str, Any] = {}
        for task in tasks:
            if task == "AX":
                continue  # predicted by the MNLI model
            path = out / f"{task}.json"
            if path.is_file():
                done = read_json(path)
                # a missing task is tried again (the data may be there now), a failed one too
                # (its loss diverged: the user may have lowered glue.lr)
                if done.get("status") not in ("missing", "failed"):
                    results[task] = done
                    continue
            if source != "hub" and not Path(source).is_dir():
                reason = f"GLUE folder {source} not found (set glue.source or $NASPLUG_DATA_DIR)"
                log.warning("glue %s: %s is missing: %s", name, task, reason)
                results[task] = {"task": task, "status": "missing", "missing": {"all": reason}}
                atomic_write_json(path, results[task])
                continue
            data = glue.load_task(task, source)
            ax = glue.load_task("AX", source) if task == "MNLI" and "AX" in tasks else None
            log.info("glue %s: fine-tuning %s on %s", name, task, source)
            result = glue.finetune(task, factory, tokenizer, data, finetune_cfg,
                                   layer_index=lambda n, slots=slots: layer_index(n, slots), ax_data=ax)
            atomic_write_json(path, result)
            results[task] = result
        predictions = {k: v for r in results.values() for k, v in (r.get("test_predictions") or {}).items()}
        if name in submits and predictions:
            glue.write_submission(predictions, out / "submission", check_counts=False)
        scores = {conv: glue.glue_score(results, convention=conv) for conv in glue.CONVENTIONS}
        atomic_write_json(ctx.layout.glue_scores(name), scores)
        summary[name] = {conv: s.get("score") for conv, s in scores.items()}
    return summary
