"""``nasplug run``: the stages of a recipe, in order, each resumable and runnable alone.

Every stage reads what earlier stages left in the run directory and ends by writing
``stages/<name>.json`` (atomically). With ``resume``, a finished stage is skipped and an
unfinished one continues from its own checkpoint or log.

A run directory belongs to one experiment. Before anything is written: without ``resume``
a directory that holds a run is refused; with it, the stored recipe is compared with the new
one and any change that would alter results is refused, naming the first differing key.
Every stage's settings are checked before the first stage runs. Only then are
``recipe.yaml`` and ``run.json`` written, so a refused command leaves the run as it was.
``run.json`` also records what ``precision: auto`` resolved to and the CPU thread count
(:mod:`nasplug.pipeline.machine`); the run sets that count for its duration.
Under torchrun every rank checks the directory, then all wait for each other, and only then
does rank 0 write: a slower rank never mistakes the new run for an old one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, atomic_write_text, remove_leftovers
from nasplug.layout import RunLayout
from nasplug.pipeline.context import RunContext, with_objectives
from nasplug.pipeline.identity import check_run_dir, has_run
from nasplug.pipeline.machine import Machine
from nasplug.pipeline.preflight import preflight
from nasplug.pipeline.stage import ORDER, Stage, get_stage
from nasplug.recipe import Recipe, dump_recipe
from nasplug.runinfo import changed_plugin, plugin_sources, run_info
from nasplug.tracking import check_tracking

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


def _start_run(run_dir: Path, recipe: Recipe, machine: Machine) -> None:
    make_run_dir(run_dir)
    _write_identity(run_dir, recipe, machine)


def run_recipe(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, stages: Sequence[str] | None = None,
               progress: bool = True) -> RunContext:
    """Run the recipe's stages in order into ``run_dir``; return the context (with results)."""
    from nasplug import distributed

    main = distributed.info().is_main  # under torchrun only rank 0 writes files
    run_dir = Path(run_dir)
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=resume, progress=progress, measures_latency=main)
    recipe = ctx.recipe = with_objectives(ctx)  # stored and compared with every direction spelt out
    check_run_dir(run_dir, recipe, resume)
    wanted = _wanted(recipe, stages)
    _ = ctx.space  # built (and the fixed arch parsed) here, so bad input fails before anything is written
    if recipe.arch is not None:
        ctx.space.parse(recipe.arch)
    _check_prerequisites(ctx, wanted)
    for stage in wanted:
        stage.check(ctx)
    check_tracking(recipe.tracking)
    preflight(ctx, wanted)  # every model the stages build fits its task, before anything is written
    fresh = not has_run(run_dir)
    if not fresh:
        _check_plugin_code(ctx)
    created = not run_dir.exists()
    extended = set() if fresh else _extended(ctx, wanted)
    machine = ctx.machine  # precision auto and the threads: from run.json when the run has one
    distributed.barrier()  # every rank has judged the directory before rank 0 writes to it
    if fresh:  # a new run: its identity first; a resumed one keeps it until it succeeds (rank 0 writes)
        distributed.on_main(_start_run, run_dir, recipe, machine)
    else:  # temp files of writes a kill cut short: nothing reads them, so they would stay forever
        distributed.on_main(remove_leftovers, run_dir)
    tracker = _tracker(ctx) if main else None
    if main:
        log.info("%s", machine.describe(recipe))  # once per run, after its identity is written
    threads = machine.apply()
    ctx.stages_running = True  # from here on measured latencies are written to the run
    try:
        for stage in wanted:
            _run_stage(ctx, stage, explicit=stages is not None, main=main, extend=stage.name in extended)
            if tracker is not None:
                tracker.sync()
    except NasplugError:
        if main and fresh:
            _forget_untouched(run_dir, created)
        raise
    finally:
        if tracker is not None:
            tracker.close()
        torch.set_num_threads(threads)  # the caller's thread count again
    if main and not fresh:
        _write_identity(run_dir, recipe, machine)  # the resumed run succeeded: record its (allowed) changes
    return ctx


def _tracker(ctx: RunContext) -> Any:
    """The recipe's experiment tracking (rank 0 only), None without a ``tracking:`` section."""
    cfg = ctx.recipe.tracking
    if cfg is None or not cfg.report_to:
        return None
    from nasplug.tracking import Tracker

    settings = ctx.recipe.model_dump(mode="json", exclude_none=True)
    # one objective: its direction (spelt out by with_objectives); several: no single best to track
    direction = ctx.recipe.search.direction if ctx.recipe.search else None
    return Tracker(cfg, ctx.run_dir, ctx.recipe.name, settings, direction)


def _check_plugin_code(ctx: RunContext) -> None:
    """A resumed run's space, task, evaluator and strategy code must be what it started with."""
    info = ctx.layout.read_info()
    changed = changed_plugin(info.get("plugins") if isinstance(info, dict) else None, plugin_sources(ctx.recipe))
    if changed is not None:
        raise NasplugError(f"--resume: {changed} in {ctx.run_dir}; a resumed run must be the same experiment: "
                           "restore the file, or use --out for a new run")


def _write_identity(run_dir: Path, recipe: Recipe, machine: Machine) -> None:
    layout = RunLayout(run_dir)
    atomic_write_text(layout.recipe, dump_recipe(recipe))
    info = run_info(recipe.seed, _recipe_dir(layout, recipe), plugin_sources(recipe))
    atomic_write_json(layout.info, {**info, "machine": machine.record(recipe)})


def make_run_dir(run_dir: Path, field: str = "--out") -> None:
    """Create ``run_dir``; NasplugError (one line) when the system refuses."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NasplugError(f"{field}: cannot create {run_dir} ({exc.strerror or type(exc).__name__})") from None


def _forget_untouched(run_dir: Path, created: bool) -> None:
    """A new run refused by its first stage before that stage wrote anything: remove the two
    identity files it started with (and the folder, if this command created it), so the same
    command can be run again once the input is fixed. Anything else in the folder stays."""
    identity = RunLayout.IDENTITY
    if not run_dir.is_dir() or any(p.name not in identity for p in run_dir.iterdir()):
        return
    for name in identity:
        (run_dir / name).unlink(missing_ok=True)
    if created:
        try:
            run_dir.rmdir()
        except OSError:
            pass


def _check_prerequisites(ctx: RunContext, wanted: list[Stage]) -> None:
    """A stage needs every earlier stage that applies to the recipe to be done already or to
    run now (the report shows whatever there is, so it needs none)."""
    names = [s.name for s in wanted]
    for stage in wanted:
        if stage.name == "report":
            continue
        for earlier in reversed(ORDER[: ORDER.index(stage.name)]):  # the nearest missing stage first
            if earlier in names or ctx.layout.stage_done(earlier):
                continue
            if get_stage(earlier).applies(ctx.recipe):
                raise NasplugError(f"--stages: stage {stage.name!r} needs the {earlier!r} stage first, which has not "
                                   f"run in {ctx.run_dir}; add it to --stages (or leave --stages out)")


def _recipe_dir(layout: RunLayout, recipe: Recipe) -> str | None:
    """The recipe's folder (kept from the run's first start when a resumed run has none)."""
    if recipe.folder is not None:
        return recipe.folder
    previous = layout.read_info()
    return previous.get("recipe_dir") if isinstance(previous, dict) else None


def _wanted(recipe: Recipe, stages: Sequence[str] | None) -> list[Stage]:
    if stages is None:
        return [s for s in (get_stage(n) for n in ORDER) if s.applies(recipe)]
    wanted = [get_stage(n) for n in stages]
    for stage in wanted:
        if not stage.applies(recipe):
            raise NasplugError(f"--stages: stage {stage.name!r} does not apply to recipe {recipe.name!r}")
    return wanted


def _extended(ctx: RunContext, wanted: list[Stage]) -> set[str]:
    """The finished stages the resumed recipe asks more of (:meth:`Stage.extends`); each must
    be among the stages that run."""
    names = {s.name for s in wanted}
    extended = set()
    for stage in (get_stage(n) for n in ORDER):
        if not stage.applies(ctx.recipe) or not stage.extends(ctx):
            continue
        if stage.name not in names:
            raise NasplugError(f"--stages: the recipe asks for more of the finished {stage.name!r} stage than it did; "
                               f"add {stage.name} to --stages (or leave --stages out)")
        extended.add(stage.name)
    return extended


def _run_stage(ctx: RunContext, stage: Stage, explicit: bool, main: bool, extend: bool = False) -> None:
    from nasplug import distributed

    name = stage.name
    if ctx.layout.stage_done(name) and name != "report" and not (explicit and stage.incremental) and not extend:
        log.info("stage %s: done already, skipped", name)
        return
    if not main and not stage.multi_process:
        return  # fine-tuning and the report run on rank 0 alone
    if extend:  # not finished until it has done the more it is asked for (a kill leaves it unfinished)
        log.info("stage %s: finished before; the recipe asks for more", name)
        distributed.on_main(ctx.layout.stage_file(name).unlink, missing_ok=True)
    log.info("stage %s: starting", name)
    t0 = time.perf_counter()
    summary: dict[str, Any] = stage.run(ctx)
    wall = time.perf_counter() - t0
    record = {"stage": name, "wall_s": wall, "summary": summary}
    if stage.multi_process:  # every rank is here: a failed write stops them all
        distributed.on_main(atomic_write_json, ctx.layout.stage_file(name), record)
    elif main:  # the other ranks went on
        atomic_write_json(ctx.layout.stage_file(name), record)
    log.info("stage %s: done in %.1fs", name, wall)
