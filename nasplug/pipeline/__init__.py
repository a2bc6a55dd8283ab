"""``nasplug run``: the stages of a recipe, in order, each resumable and runnable alone.

Every stage reads what earlier stages left in the run directory and ends by writing
``stages/<name>.json`` (atomically). With ``resume``, a finished stage is skipped and an
unfinished one continues from its own checkpoint or log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, atomic_write_text
from nasplug.recipe import Component, Recipe, dump_recipe
from nasplug.registry import CONSTRAINTS, EVALUATORS, SPACES, STRATEGIES, build_callable
from nasplug.runinfo import run_info
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy

log = logging.getLogger(__name__)


@dataclass
class RunContext:
    """Everything a stage needs: the recipe, the run directory, and built components."""

    recipe: Recipe
    run_dir: Path
    resume: bool = False
    progress: bool = True
    extras: dict[str, Any] = field(default_factory=dict)  # stage-to-stage objects in memory

    @cached_property
    def space(self) -> SearchSpace:
        return build_space(self.recipe.space)

    def stage_file(self, stage: str) -> Path:
        return self.run_dir / "stages" / f"{stage}.json"

    def stage_done(self, stage: str) -> bool:
        return self.stage_file(stage).is_file()


def build_space(spec: Component) -> SearchSpace:
    space = build_callable(SPACES.get(spec.name), spec.kwargs(), field="space")
    if not isinstance(space, SearchSpace):
        raise NasplugError(f"space {spec.name!r}: built a {type(space).__name__}, not a nasplug SearchSpace")
    return space


def build_strategy(spec: Component, space: SearchSpace, seed: int) -> Strategy:
    kwargs = {"seed": seed, **spec.kwargs()}
    strategy = build_callable(STRATEGIES.get(spec.name), {"space": space, **kwargs}, field="search.strategy")
    if not isinstance(strategy, Strategy):
        raise NasplugError(f"strategy {spec.name!r}: built a {type(strategy).__name__}, not a nasplug Strategy")
    return strategy


def build_constraints(specs: Sequence[Component], space: SearchSpace) -> list[Callable[..., Any]]:
    return [build_callable(CONSTRAINTS.get(c.name), {"space": space, **c.kwargs()}, field=f"search.constraints[{i}]")
            for i, c in enumerate(specs)]


def build_evaluator(ctx: RunContext) -> Callable[..., Any]:
    spec = ctx.recipe.evaluator
    if spec is None:
        raise NasplugError("evaluator: the recipe has a search section but no evaluator (e.g. evaluator: {name: toy})")
    factory = EVALUATORS.get(spec.name)
    kwargs: dict[str, Any] = {"space": ctx.space, **spec.kwargs()}
    if getattr(factory, "needs_run_context", False):  # e.g. the supernet evaluator reads the trained supernet
        kwargs["context"] = ctx
    return build_callable(factory, kwargs, field="evaluator")


# --------------------------------------------------------------------------- stages
Stage = Callable[[RunContext], dict[str, Any]]
#: Stage name -> (applies to this recipe?, run it). Later modules add theirs with add_stage.
STAGES: dict[str, tuple[Callable[[Recipe], bool], Stage]] = {}
ORDER = ("supernet", "search", "retrain", "glue", "report")
#: Stages that use every torchrun process (the others run on rank 0 only).
MULTI_PROCESS_STAGES = ("supernet", "search", "retrain")


def add_stage(name: str, applies: Callable[[Recipe], bool]) -> Callable[[Stage], Stage]:
    if name not in ORDER:
        raise ValueError(f"unknown stage {name!r}")

    def decorator(fn: Stage) -> Stage:
        STAGES[name] = (applies, fn)
        return fn

    return decorator


def _load_stages() -> None:
    """Import the modules that define stages (kept out of import time of nasplug itself)."""
    from nasplug.pipeline import stages  # noqa: F401


def parse_stages(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        if name not in ORDER:
            raise NasplugError(f"--stages: unknown stage {name!r}; allowed: {', '.join(ORDER)}")
    return names


def run_recipe(recipe: Recipe, run_dir: str | Path, *, resume: bool = False, stages: Sequence[str] | None = None,
               progress: bool = True) -> RunContext:
    """Run the recipe's stages in order into ``run_dir``; return the context (with results)."""
    _load_stages()
    from nasplug.sharding import world

    main = world()[0] == 0  # under torchrun only rank 0 writes files
    run_dir = Path(run_dir)
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=resume, progress=progress)
    started = (run_dir / "stages").is_dir() or (run_dir / "trials.jsonl").is_file()
    if started and not resume and stages is None:
        raise NasplugError(f"run directory {run_dir} has a run in it already; pass --resume to continue it, or --out for a new one")
    # Built (and the fixed arch parsed) here, so bad input fails before anything is written.
    if recipe.arch is not None:
        ctx.space.parse(recipe.arch)
    _ = ctx.space
    run_dir.mkdir(parents=True, exist_ok=True)
    if main:
        atomic_write_text(run_dir / "recipe.yaml", dump_recipe(recipe))
        atomic_write_json(run_dir / "run.json", run_info(recipe.seed))
    wanted = list(stages) if stages is not None else [s for s in ORDER if s in STAGES and STAGES[s][0](recipe)]
    for name in wanted:
        applies, fn = STAGES[name]
        if not applies(recipe):
            raise NasplugError(f"--stages: stage {name!r} does not apply to recipe {recipe.name!r}")
        if ctx.stage_done(name) and (resume or stages is None) and name != "report":
            log.info("stage %s: done already, skipped", name)
            continue
        if not main and name not in MULTI_PROCESS_STAGES:
            continue  # fine-tuning and the report run on rank 0 alone
        log.info("stage %s: starting", name)
        t0 = time.perf_counter()
        summary = fn(ctx)
        wall = time.perf_counter() - t0
        if main:
            atomic_write_json(ctx.stage_file(name), {"stage": name, "wall_s": wall, "summary": summary})
        log.info("stage %s: done in %.1fs", name, wall)
    return ctx

