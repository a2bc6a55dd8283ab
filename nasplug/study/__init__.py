"""``nasplug study``: retrain rows of architectures for K seeds each and compare them.

The rows of a recipe's ``study:`` section (see :mod:`nasplug.study.config`) are searched,
fixed or random architectures; each is trained from scratch once per seed with the recipe's
retrain settings, scored on the task's held-out (and test) data and by downstream stages
(GLUE for text encoders), and every row is tested against the reference row, paired by seed.
Everything lives in ``RUN_DIR/study/``; a (row, arch, seed) run that finished is never
trained again, and an interrupted one continues from its checkpoint::

    study/searches/<row>/trials.jsonl      the search of a search row (resumable by replay)
    study/models/<row>/<i>-<arch>/seed-<k>/ one training run (result.json, test.json, downstream.json)
    study/study.json, study.md, study.png   the table, the tests and the plot
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.recipe import Component, Recipe, describe_error
from nasplug.study.config import StudyConfig, StudyRow

log = logging.getLogger(__name__)


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


def run_study(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study of ``recipe`` in ``run_dir``; return ``study.json``'s content."""
    from nasplug.pipeline import RunContext, run_recipe
    from nasplug.study.models import train_rows
    from nasplug.study.report import write_study

    run_dir = Path(run_dir)
    cfg = study_config(recipe)
    check = RunContext(recipe=recipe, run_dir=run_dir, progress=progress)
    searches = {name: row for name, row in cfg.rows.items() if row.kind == "search"}
    for name, row in searches.items():  # every row's settings are checked before anything runs
        _check_search_row(recipe, row, name, run_dir)
    for name, row in cfg.rows.items():
        if row.kind == "arch":
            _parse(check.space, row.arch or "", f"study.rows.{name}.arch")
    train_config(recipe, cfg, 0)
    check_metric(check, cfg)
    ctx = run_recipe(recipe, run_dir, resume=resume, stages=["supernet"] if searches else [], progress=progress)
    archs: dict[str, list[Arch]] = {}
    for name, row in cfg.rows.items():
        archs[name] = _row_archs(ctx, name, row)
    results = train_rows(ctx, cfg, archs)
    return write_study(ctx, cfg, archs, results, ctx.layout.study)


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


def _check_search_row(recipe: Recipe, row: StudyRow, name: str, run_dir: Path) -> None:
    """The search stage's checks (strategy, constraints, evaluator arguments, search metric)
    on the row's search settings and sub-space, naming the row."""
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.stage import get_stage

    search_cfg, sub = _search_setup(recipe, row, name)
    row_recipe = recipe.model_copy(update={"search": search_cfg, "space": sub})
    try:
        get_stage("search").check(RunContext(recipe=row_recipe, run_dir=run_dir))
    except NasplugError as exc:
        raise NasplugError(f"study.rows.{name}: {exc}") from None


def _parse(space: Any, text: str, field: str) -> Arch:
    try:
        return space.unconstrained().parse(text)
    except NasplugError as exc:
        raise NasplugError(f"{field}: {exc}") from None


def _search_setup(recipe: Recipe, row: StudyRow, name: str) -> tuple[Any, Component]:
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


def _row_archs(ctx: Any, name: str, row: StudyRow) -> list[Arch]:
    """The archs of one row: the search's best, the fixed arch, or N random ones."""
    if row.kind == "arch":
        return [_parse(ctx.space, row.arch or "", f"study.rows.{name}.arch")]
    if row.kind == "random":
        from nasplug.rankcorr import sample_archs

        return sample_archs(ctx.space, row.random or 1, row.seed)
    return [_search_row(ctx, name, row)]


def _search_row(ctx: Any, name: str, row: StudyRow) -> Arch:
    """Search the row's sub-space with the run's supernet; the best arch (resumable)."""
    from nasplug.pipeline import build_constraints, build_evaluator, build_space, build_strategy
    from nasplug.search import search

    search_cfg, sub_spec = _search_setup(ctx.recipe, row, name)
    sub = build_space(sub_spec)
    folder = ctx.layout.study_search(name)
    log_path = folder / RunLayout.TRIALS
    evaluator = ctx.extras.get("study_evaluator")
    if evaluator is None:
        evaluator = ctx.extras["study_evaluator"] = build_evaluator(ctx)  # the full space's trained supernet
    log.info("study: searching row %s (%s, budget %d)", name, search_cfg.strategy.name, search_cfg.budget)
    result = search(build_strategy(search_cfg.strategy, sub, ctx.recipe.seed), evaluator, search_cfg.budget, space=sub,
                    constraints=build_constraints(search_cfg.constraints, sub), metric=search_cfg.metric,
                    direction=search_cfg.direction, batch_size=search_cfg.batch_size, log_path=log_path,
                    resume=log_path.exists())
    if result.best is None:
        raise NasplugError(f"study.rows.{name}: the search scored no architecture")
    atomic_write_json(folder / "best.json", {"arch": result.best.arch, "text": sub.format(result.best.arch),
                                             "score": result.best.score})
    return dict(result.best.arch)
