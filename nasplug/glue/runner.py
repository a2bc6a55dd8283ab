"""The one GLUE task loop: fine-tune a model on the recipe's tasks, one result file per task.

Both the GLUE stage (every retrained model and ``glue.init_from`` encoder, see
:mod:`nasplug.glue.stage`) and ``nasplug study`` (each trained model's downstream figures,
see :mod:`nasplug.glue.downstream`) plan with :func:`glue_plan` and run
:func:`finetune_model`; each writes its own figures from the results. A task's result is
written to ``<folder>/<TASK>.json`` when it is done, so an interrupted run fine-tunes only
what is missing.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from nasplug.errors import NasplugError
from nasplug.glue.finetune import FinetuneConfig
from nasplug.glue.models import GlueModel, InitFrom, read_backbone
from nasplug.glue.tasks import BENCHMARK_TASKS
from nasplug.io import atomic_write_json
from nasplug.runfiles import read_json

log = logging.getLogger(__name__)

#: What a task's result says when it has no dev figures: its data was missing, or its loss diverged.
UNFINISHED = ("missing", "failed")


class GlueConfig(FinetuneConfig):
    """The recipe's ``glue:`` section: fine-tuning settings, which tasks, from where."""

    source: str = "hub"  # "hub" (nyu-mll/glue) or a folder in the GLUE TSV layout
    tasks: list[str] = Field(default_factory=lambda: list(BENCHMARK_TASKS))
    #: model name -> folder (or {path, tokenizer}) of a ready-made encoder to fine-tune too
    init_from: dict[str, str | InitFrom] = Field(default_factory=dict)


def glue_config(raw: dict[str, Any] | None) -> GlueConfig:
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


@dataclass(frozen=True)
class GluePlan:
    """How every model of one command is fine-tuned."""

    config: GlueConfig
    source: str  # "hub" or the GLUE folder, resolved
    tasks: tuple[str, ...]  # canonical names, in the recipe's order (AX included when listed)
    #: The stage: a task whose result is missing or failed is fine-tuned again (the data may be
    #: there now, or the user lowered glue.lr), and the MNLI run predicts AX when it is listed.
    #: A study keeps whatever result a task has and predicts no AX.
    retry_unfinished: bool = True
    predict_ax: bool = True

    @property
    def finetune(self) -> FinetuneConfig:
        """The fine-tuning settings alone (the section without its source, tasks and models)."""
        return FinetuneConfig(**self.config.model_dump(exclude={"source", "tasks", "init_from"}))

    @property
    def source_missing(self) -> bool:
        return self.source != "hub" and not Path(self.source).is_dir()

    @property
    def trained_tasks(self) -> list[str]:
        """The tasks fine-tuned (AX has no training data: the MNLI model predicts it)."""
        return [t for t in self.tasks if t != "AX"]


def glue_plan(section: dict[str, Any] | None, *, study: bool = False) -> GluePlan:
    """The plan of a recipe's ``glue:`` section (``study``: a study's downstream figures)."""
    from nasplug.glue.tasks import get_task

    cfg = glue_config(section)
    return GluePlan(cfg, glue_source(cfg.source), tuple(get_task(t).name for t in cfg.tasks),
                    retry_unfinished=not study, predict_ax=not study)


def model_factory(space: Any, arch: dict[str, Any], weights: Path, sees_padding: bool = False) -> Any:
    """``(num_labels, seed) -> LVBertForSequenceClassification`` of ``arch`` in ``space`` with
    the backbone trained into ``weights``; ``sees_padding``: the dynamic convolutions see
    padding as in the official code."""
    backbone = read_backbone(weights)
    free = space.unconstrained()  # baselines may lie outside the searched sub-space
    extra = {"conv_sees_padding": True} if sees_padding else {}

    def factory(num_labels: int, seed: int) -> Any:
        model = free.build(arch, head="classification", seed=seed, num_labels=num_labels, **extra)
        missing, _ = model.lvbert.load_state_dict(backbone, strict=False)
        if missing:
            raise NasplugError(f"glue: {weights} lacks backbone weights, e.g. {missing[0]}")
        return model

    return factory


def finetune_model(plan: GluePlan, model: GlueModel, folder: Path) -> dict[str, Any]:
    """Task -> result of ``model`` on every task of the plan: read back from ``folder`` when it
    is done there, else fine-tuned now and written (``<TASK>.json``)."""
    from nasplug import glue
    from nasplug.spaces.lvbert import layer_index

    results: dict[str, Any] = {}
    for task in plan.trained_tasks:
        path = folder / f"{task}.json"
        done = read_json(path)
        if done is not None and not (plan.retry_unfinished and done.get("status") in UNFINISHED):
            results[task] = done
            continue
        if plan.source_missing:
            reason = f"GLUE folder {plan.source} not found (set glue.source or $NASPLUG_DATA_DIR)"
            log.warning("glue %s: %s is missing: %s", model.name, task, reason)
            results[task] = {"task": task, "status": "missing", "missing": {"all": reason}}
            atomic_write_json(path, results[task])
            continue
        data = glue.load_task(task, plan.source)
        ax = glue.load_task("AX", plan.source) if plan.predict_ax and task == "MNLI" and "AX" in plan.tasks else None
        log.info("glue %s: fine-tuning %s on %s", model.name, task, plan.source)
        result = glue.finetune(task, model.factory, model.tokenizer, data, plan.finetune,
                               layer_index=lambda n, slots=model.slots: layer_index(n, slots), ax_data=ax)
        atomic_write_json(path, result)
        results[task] = result
    return results
