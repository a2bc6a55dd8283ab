"""The study's settings, checked before anything trains: the ``study:`` section, the training
settings of its models, the figures it may headline (the task's and the downstream stages'),
and each search row's settings. :func:`nasplug.study.run_study` checks them all first.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.recipe import Component, Recipe, describe_error
from nasplug.study.config import StudyConfig, StudyRow


def study_config(recipe: Recipe) -> StudyConfig:
    """The recipe's validated ``study:`` section; NasplugError naming the field."""
    if recipe.study is None:
        raise NasplugError(f"study: recipe {recipe.name!r} has no study section (rows of archs to retrain)")
    try:
        return StudyConfig.model_validate(recipe.study)
    except ValidationError as exc:
        raise NasplugError(f"study.{describe_error(exc)}") from None


def train_config(recipe: Recipe, cfg: StudyConfig, seed: int) -> Any:
    """The retrain settings (else the supernet's) changed by ``study.train``, at ``seed``:
    the training settings only (not the baselines, seeds, sampler or split of those sections)."""
    from nasplug.oneshot.config import TrainConfig
    from nasplug.recipe import training_settings

    base = training_settings(recipe)
    if base is None:
        raise NasplugError("study: the recipe needs a retrain (or supernet) section for the training settings")
    try:
        return TrainConfig.of(base, **{**cfg.train, "seed": seed})
    except ValidationError as exc:
        raise NasplugError(f"study.train.{describe_error(exc)}") from None


def slug(space: Any, arch: Arch) -> str:
    """A short folder-safe name of an arch (its text form if short, else a hash of it)."""
    text = space.format(arch)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)
    return safe if len(safe) <= 40 else hashlib.sha256(text.encode()).hexdigest()[:16]


def downstream_stages(ctx: Any) -> list[Any]:
    """Every stage that adds downstream figures (overrides ``Stage.downstream``) and applies
    to the recipe (GLUE for a text encoder), in stage order."""
    from nasplug.pipeline.stage import Stage, all_stages

    return [s for s in all_stages() if type(s).downstream is not Stage.downstream and s.applies(ctx.recipe)]


def downstream_figures(ctx: Any) -> tuple[dict[str, str], list[str]]:
    """The downstream stages' figures (name -> direction) and each stage's headline (its first)."""
    figures: dict[str, str] = {}
    headlines: list[str] = []
    for stage in downstream_stages(ctx):
        own = stage.downstream_metrics(ctx)
        headlines += list(own)[:1]
        figures.update({k: v for k, v in own.items() if k not in figures})
    return figures, headlines


def metric_directions(ctx: Any) -> dict[str, str]:
    """What ``study.metric`` may name: the training task's metrics, then every downstream
    stage's figures (name -> direction)."""
    figures, _ = downstream_figures(ctx)
    task = dict(ctx.retrain_task.metrics)
    return {**task, **{k: v for k, v in figures.items() if k not in task}}


def check_metric(ctx: Any, cfg: StudyConfig) -> None:
    """NasplugError unless ``study.metric`` (when set) is a figure the study measures: a
    misspelt one would otherwise change the headline without a word."""
    allowed = metric_directions(ctx)
    if cfg.metric is not None and cfg.metric not in allowed:
        raise NasplugError(f"study.metric: {cfg.metric!r} is not measured by task {ctx.retrain_task.name!r} or a "
                           f"downstream stage; allowed: {', '.join(allowed)}")


def check_search_row(recipe: Recipe, row: StudyRow, name: str, run_dir: Path) -> None:
    """The search stage's checks (strategy, constraints, evaluator arguments, search metric)
    on the row's search settings and sub-space, naming the row."""
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.stage import get_stage

    search_cfg, sub = search_setup(recipe, row, name)
    row_recipe = recipe.model_copy(update={"search": search_cfg, "space": sub})
    ctx = RunContext(recipe=row_recipe, run_dir=run_dir)
    try:
        get_stage("search").check(ctx)
    except NasplugError as exc:
        raise NasplugError(f"study.rows.{name}: {exc}") from None
    row_objectives(ctx, search_cfg, sub, ctx.space, name)


def row_objectives(ctx: Any, search_cfg: Any, sub_spec: Component, sub: Any, name: str) -> Any:
    """The objectives of a search row (its own search settings on its sub-space): one, since
    a row retrains the one best arch its search finds."""
    from nasplug.pipeline import RunContext

    row_recipe = ctx.recipe.model_copy(update={"search": search_cfg, "space": sub_spec})
    objectives = RunContext(recipe=row_recipe, run_dir=ctx.run_dir, built_space=sub).objectives
    if len(objectives) > 1:
        names = ", ".join(o.metric for o in objectives)
        raise NasplugError(f"study.rows.{name}.search: a search row retrains the one best arch it finds, so it "
                           f"searches one objective; {len(objectives)} are named ({names})")
    return objectives


def parse_arch(space: Any, text: str, field: str) -> Arch:
    try:
        return space.unconstrained().parse(text)
    except NasplugError as exc:
        raise NasplugError(f"{field}: {exc}") from None


def search_setup(recipe: Recipe, row: StudyRow, name: str) -> tuple[Any, Component]:
    """The row's search settings (the recipe's, changed by the row) and its sub-space."""
    from nasplug.recipe import SearchConfig

    if recipe.search is None:
        raise NasplugError(f"study.rows.{name}: a search row needs the recipe's search section")
    changes = dict(row.search or {})
    space_changes = changes.pop("space", {}) or {}
    if not isinstance(space_changes, dict):
        raise NasplugError(f"study.rows.{name}.search.space: expected a mapping of space settings")
    try:
        search_cfg = SearchConfig.model_validate({**recipe.search.model_dump(), **changes})
    except ValidationError as exc:
        raise NasplugError(f"study.rows.{name}.search.{describe_error(exc)}") from None
    sub = Component(name=recipe.space.name, **{**recipe.space.kwargs(), **space_changes})
    return search_cfg, sub
