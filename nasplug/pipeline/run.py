"""``nasplug run``: the stages of a recipe, in order, each resumable and runnable alone.

Every stage reads what earlier stages left in the run directory and ends by writing
``stages/<name>.json`` (atomically). With ``resume``, a finished stage is skipped and an
unfinished one continues from its own checkpoint or log.

A run directory belongs to one experiment. Before anything is written: without ``resume``
a directory that holds a run is refused; with it, the stored recipe is compared with the new
one and any change that would alter results is refused, naming the first differing key.
Every stage's settings are checked before the first stage runs. Only then are
``recipe.yaml`` and ``run.json`` written, so a refused command leaves the run as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, atomic_write_text
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.identity import check_run_dir
from nasplug.pipeline.stage import ORDER, Stage, get_stage
from nasplug.recipe import Recipe, dump_recipe
from nasplug.runinfo import run_info

log = logging.getLogger(__name__)


def parse_stages(text: str | None) -> list[str] | None:
    """``--stages a,b`` -> ``["a", "b"]`` (None: every stage that applies)."""
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise NasplugError(f"--stages: {text!r} names no stage; allowed: {', '.join(ORDER)}")
    for name in names:
        if name not in ORDER:
            raise NasplugError(f"--stages: unknown stage {name!r}; allowed: {', '.join(ORDER)}")
    if len(set(names)) != len(names):
        raise NasplugError(f"--stages: a stage is listed twice in {text!r}")
    return [n for n in ORDER if n in names]


def run_recipe(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, stages: Sequence[str] | None = None,
               progress: bool = True) -> RunContext:
    """Run the recipe's stages in order into ``run_dir``; return the context (with results)."""
    from nasplug.sharding import world

    main = world()[0] == 0  # under torchrun only rank 0 writes files
    run_dir = Path(run_dir)
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=resume, progress=progress)
    check_run_dir(run_dir, recipe, resume)
    wanted = _wanted(recipe, stages)
    _ = ctx.space  # built (and the fixed arch parsed) here, so bad input fails before anything is written
    if recipe.arch is not None:
        ctx.space.parse(recipe.arch)
    for stage in wanted:
        stage.check(ctx)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "recipe.yaml", dump_recipe(recipe))
        atomic_write_json(run_dir / "run.json", run_info(recipe.seed, _recipe_dir(run_dir, recipe)))
    for stage in wanted:
        _run_stage(ctx, stage, explicit=stages is not None, main=main)
    return ctx


def _recipe_dir(run_dir: Path, recipe: Recipe) -> str | None:
    """The recipe's folder (kept from the run's first start when a resumed run has none)."""
    if recipe.folder is not None:
        return recipe.folder
    from nasplug.runfiles import read_json

    previous = read_json(run_dir / "run.json")
    return previous.get("recipe_dir") if isinstance(previous, dict) else None


def _wanted(recipe: Recipe, stages: Sequence[str] | None) -> list[Stage]:
    if stages is None:
        return [s for s in (get_stage(n) for n in ORDER) if s.applies(recipe)]
    wanted = [get_stage(n) for n in stages]
    for stage in wanted:
        if not stage.applies(recipe):
            raise NasplugError(f"--stages: stage {stage.name!r} does not apply to recipe {recipe.name!r}")
    return wanted


def _run_stage(ctx: RunContext, stage: Stage, explicit: bool, main: bool) -> None:
    name = stage.name
    if ctx.stage_done(name) and name != "report" and not (explicit and stage.incremental):
        log.info("stage %s: done already, skipped", name)
        return
    if not main and not stage.multi_process:
        return  # fine-tuning and the report run on rank 0 alone
    log.info("stage %s: starting", name)
    t0 = time.perf_counter()
    summary: dict[str, Any] = stage.run(ctx)
    wall = time.perf_counter() - t0
    if main:
        atomic_write_json(ctx.stage_file(name), {"stage": name, "wall_s": wall, "summary": summary})
    log.info("stage %s: done in %.1fs", name, wall)
