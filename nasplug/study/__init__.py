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

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.layout import RunLayout

if TYPE_CHECKING:  # the rest is imported when a study runs: building the CLI's parser imports this package
    from nasplug.recipe import Recipe
    from nasplug.study.config import StudyRow

log = logging.getLogger(__name__)


def run_study(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or continue) the study of ``recipe`` in ``run_dir``; return ``study.json``'s content."""
    from nasplug.pipeline import RunContext, run_recipe
    from nasplug.study.models import train_rows
    from nasplug.study.plan import check_metric, check_search_row, parse_arch, study_config, train_config
    from nasplug.study.report import write_study

    run_dir = Path(run_dir)
    cfg = study_config(recipe)
    check = RunContext(recipe=recipe, run_dir=run_dir, progress=progress)
    searches = {name: row for name, row in cfg.rows.items() if row.kind == "search"}
    for name, row in searches.items():  # every row's settings are checked before anything runs
        check_search_row(recipe, row, name, run_dir)
    for name, row in cfg.rows.items():
        if row.kind == "arch":
            parse_arch(check.space, row.arch or "", f"study.rows.{name}.arch")
    train_config(recipe, cfg, 0)
    check_metric(check, cfg)
    ctx = run_recipe(recipe, run_dir, resume=resume, stages=["supernet"] if searches else [], progress=progress)
    archs: dict[str, list[Arch]] = {}
    for name, row in cfg.rows.items():
        archs[name] = _row_archs(ctx, name, row)
    import torch

    threads = ctx.machine.apply()  # the run's thread count for the rows' training too
    try:
        results = train_rows(ctx, cfg, archs)
    finally:
        torch.set_num_threads(threads)
    return write_study(ctx, cfg, archs, results, ctx.layout.study)


def _row_archs(ctx: Any, name: str, row: StudyRow) -> list[Arch]:
    """The archs of one row: the search's best, the fixed arch, or N random ones."""
    from nasplug.study.plan import parse_arch

    if row.kind == "arch":
        return [parse_arch(ctx.space, row.arch or "", f"study.rows.{name}.arch")]
    if row.kind == "random":
        from nasplug.rankcorr import sample_archs

        return sample_archs(ctx.space, row.random or 1, row.seed)
    return [_search_row(ctx, name, row)]


def _search_row(ctx: Any, name: str, row: StudyRow) -> Arch:
    """Search the row's sub-space with the run's supernet; the best arch (resumable)."""
    from nasplug.io import atomic_write_json
    from nasplug.pipeline import build_constraints, build_evaluator, build_space, build_strategy
    from nasplug.search import search
    from nasplug.study.plan import row_objectives, search_setup

    search_cfg, sub_spec = search_setup(ctx.recipe, row, name)
    sub = build_space(sub_spec, ctx.task if ctx.recipe.task is not None else None)  # as the run's space
    folder = ctx.layout.study_search(name)
    log_path = folder / RunLayout.TRIALS
    objectives = row_objectives(ctx, search_cfg, sub_spec, sub, name)
    strategy = build_strategy(search_cfg.strategy, sub, ctx.recipe.seed, objectives)
    evaluator = ctx.extras.get("study_evaluator")
    if evaluator is None:  # the full space's trained supernet
        evaluator = ctx.extras["study_evaluator"] = build_evaluator(ctx, strategy.memory_hint())
    log.info("study: searching row %s (%s, budget %d)", name, search_cfg.strategy.name, search_cfg.budget)
    result = search(strategy, evaluator, search_cfg.budget, space=sub,
                    constraints=build_constraints(search_cfg.constraints, sub), objectives=objectives,
                    archs_per_ask=search_cfg.archs_per_ask, log_path=log_path,
                    resume=log_path.exists())
    if result.best is None:
        raise NasplugError(f"study.rows.{name}: the search scored no architecture")
    atomic_write_json(folder / "best.json", {"arch": result.best.model_arch, "text": sub.format(result.best.model_arch),
                                             "score": result.best.score})
    return dict(result.best.model_arch)
