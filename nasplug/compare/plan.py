"""What a ``nasplug compare`` call will do, decided and checked before anything runs.

:func:`plan_comparison` checks every argument, builds the space, every strategy (a typo
fails here) and the constraints, and refuses an output folder that holds another comparison
(or, on ``--resume``, one whose settings differ); it writes nothing. The runs then carry out
the :class:`ComparisonPlan` (see :func:`nasplug.compare.compare`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasplug.compare.cache import check_ground_truth_size
from nasplug.compare.runs import slug
from nasplug.errors import NasplugError
from nasplug.evaluate import Evaluator
from nasplug.layout import ComparisonLayout
from nasplug.objectives import DeclaresDirections, Objectives, reference_values
from nasplug.pipeline import build_constraints, build_space, build_strategy, build_task
from nasplug.recipe import Component, Recipe, SearchConfig
from nasplug.registry import STRATEGIES
from nasplug.resume import RESUME
from nasplug.yamlio import parse_override_value


@dataclass(frozen=True)
class CompareRequest:
    """The arguments of :func:`nasplug.compare.compare` (see its docstring)."""

    recipe: Recipe
    strategies: tuple[str, ...]
    seeds: tuple[int, ...] | int
    budget: int
    out_dir: Path
    resume: bool = False
    ground_truth: bool = False
    budgets_to_report: tuple[int, ...] | None = None
    target: float | None = None
    progress: bool = True
    batch_size: int | None = None
    strategy_args: tuple[str, ...] = ()
    max_ground_truth: int = 100_000
    evaluator: Evaluator | None = None
    from_run: Path | None = None


@dataclass
class ComparisonPlan:
    """A checked comparison: the built space, strategies and constraints, the settings written
    to ``compare-config.json`` and the fingerprint a resume must match."""

    request: CompareRequest
    space: Any
    specs: dict[str, Component]
    seeds: list[int]
    archs_per_ask: int
    search: SearchConfig
    constraints: list[Any]
    config: dict[str, Any]
    fingerprint: dict[str, Any]
    layout: ComparisonLayout
    #: The search's objectives with their directions (see :mod:`nasplug.objectives`).
    objectives: Objectives = ()
    #: The largest of the strategies' memory hints: how many archs' states the evaluator keeps.
    memory_hint: int | None = None


def _seed_list(seeds: Sequence[int] | int) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise NasplugError(f"--seeds: must be >= 1, got {seeds}")
        return list(range(seeds))
    seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise NasplugError(f"seeds: expected distinct seeds, got {seed_list}")
    return seed_list


def _check_numbers(request: CompareRequest, seed_list: list[int], batch: int) -> None:
    budget = request.budget
    if budget < 1:
        raise NasplugError(f"--budget: must be a positive integer, got {budget}")
    if batch < 1:
        raise NasplugError(f"--batch-size: must be a positive integer, got {batch}")
    if request.budgets_to_report is not None and any(b < 1 for b in request.budgets_to_report):
        raise NasplugError(f"--budgets: must be positive integers, got {list(request.budgets_to_report)}")
    if request.target is not None and not math.isfinite(request.target):
        raise NasplugError(f"--target: must be a finite number, got {request.target}")
    if budget > 10**7 or len(seed_list) > 10**4:
        raise NasplugError(f"--budget / --seeds: at most 10,000,000 evaluations and 10,000 seeds per run, got "
                           f"{budget} and {len(seed_list)}")
    if request.from_run is not None and not request.from_run.is_dir():
        raise NasplugError(f"--from-run: {request.from_run} is not a directory")


def resolve_strategies(names: Sequence[str], strategy_args: Sequence[str] = (),
                       recipe_strategy: Component | None = None) -> dict[str, Component]:
    """label -> Component: the name, the recipe's kwargs if the names match, then ``--strategy-args``."""
    if not names:
        raise NasplugError("--strategies: give at least one strategy, e.g. --strategies random evolution")
    specs: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in specs:
            raise NasplugError(f"--strategies: {name!r} is listed twice")
        STRATEGIES.get(name)  # unknown names fail here, with the known ones listed
        same = recipe_strategy is not None and recipe_strategy.name == name
        specs[name] = dict(recipe_strategy.kwargs()) if same and recipe_strategy else {}
    slugs = [slug(n) for n in specs]
    if len(set(slugs)) != len(slugs):
        raise NasplugError(f"--strategies: two names map to the same run folder: {', '.join(specs)}")
    for item in strategy_args:
        key, sep, text = item.partition("=")
        name, dot, arg = key.strip().rpartition(".")
        if not sep or not dot or not name or not arg:
            raise NasplugError(f"--strategy-args {item!r}: expected NAME.KEY=VALUE, e.g. evolution.population=20")
        if name not in specs:
            raise NasplugError(f"--strategy-args {item!r}: {name!r} is not one of --strategies ({', '.join(specs)})")
        specs[name][arg] = parse_override_value(text, f"--strategy-args {name}.{arg}")  # YAML 1.2: 1e-3 is a float
    return {name: Component(name=name, **kwargs) for name, kwargs in specs.items()}


def plan_comparison(request: CompareRequest) -> ComparisonPlan:
    """Check the request and decide everything; writes nothing (NasplugError on a bad argument,
    an unknown strategy, or an output folder that holds another comparison)."""
    recipe = request.recipe
    seed_list = _seed_list(request.seeds)
    cfg = recipe.search or SearchConfig.model_validate({})
    batch = request.batch_size if request.batch_size is not None else cfg.archs_per_ask
    _check_numbers(request, seed_list, batch)
    space = build_space(recipe.space, build_task(recipe.task) if recipe.task is not None else None)  # as the run's
    if request.ground_truth:
        check_ground_truth_size(space, request.max_ground_truth)
    objectives = _objectives(request, space)
    _check_no_latency(recipe, objectives)
    multi = len(objectives) > 1
    reference_values(objectives, cfg.reference_point)  # checked: one value per objective
    specs = resolve_strategies(request.strategies, request.strategy_args, cfg.strategy)
    # fail on a typo (or a one-objective strategy asked for several) before anything runs or is
    # written; the evaluator keeps states for the largest parent pool
    hints = [build_strategy(spec, space, seed_list[0], objectives).memory_hint() for spec in specs.values()]
    constraints = build_constraints(cfg.constraints, space)
    first = objectives[0]
    several = {"objectives": [o.to_json() for o in objectives] if multi else None,
               "reference_point": cfg.reference_point if multi else None}
    config: dict[str, Any] = {
        "recipe": recipe.name, "strategies": list(specs), "seeds": seed_list, "budget": request.budget,
        "batch_size": batch, "metric": first.metric, "direction": first.direction, **several,
        "ground_truth": request.ground_truth,
        "strategy_specs": {k: v.model_dump(mode="json") for k, v in specs.items()},
    }
    from_run = request.from_run
    fingerprint = {"space": recipe.space.model_dump(mode="json"),
                   "evaluator": None if recipe.evaluator is None else recipe.evaluator.model_dump(mode="json"),
                   "metric": first.metric, "direction": first.direction, "objectives": several["objectives"],
                   "batch_size": batch,
                   "constraints": [c.model_dump(mode="json") for c in cfg.constraints],
                   "from_run": None if from_run is None else str(from_run.resolve())}
    layout = ComparisonLayout(request.out_dir)
    _check_out_dir(layout, request.resume, fingerprint, config["strategy_specs"])
    return ComparisonPlan(request, space, specs, seed_list, batch, cfg, constraints, config, fingerprint, layout,
                          objectives, memory_hint=max((h for h in hints if h is not None), default=None))


def _check_no_latency(recipe: Any, objectives: Objectives) -> None:
    """``latency_ms`` comes from a run's latency stage or its own measurements, which a
    comparison has neither: one line before any search starts, rather than at its first trial."""
    from nasplug.cost.measure import LATENCY_METRIC

    search = recipe.search
    named = [o.metric for o in objectives] + [str(c.kwargs().get("metric")) for c in
                                              (search.constraints if search is not None else [])]
    if recipe.section("latency") is not None and LATENCY_METRIC in named:
        raise NasplugError(f"latency: nasplug compare measures no {LATENCY_METRIC} (no latency table, no direct "
                           "measurement); compare strategies on other objectives and constraints, or search "
                           "with nasplug run")


def _objectives(request: CompareRequest, space: Any) -> Objectives:
    """The recipe's objectives, directions declared by its task, space and evaluator (and by
    an evaluator passed from Python in its place)."""
    from nasplug.pipeline import RunContext

    run_dir = request.from_run if request.from_run is not None else request.out_dir
    ctx = RunContext(recipe=request.recipe, run_dir=run_dir, progress=False, built_space=space)
    given = request.evaluator
    return ctx.resolve_objectives(dict(given.metric_directions) if isinstance(given, DeclaresDirections) else None)


def _check_out_dir(layout: ComparisonLayout, resume: bool, fingerprint: dict[str, Any], specs: dict[str, Any]) -> None:
    from nasplug.pipeline.identity import check_out_path
    from nasplug.runfiles import read_json

    out_dir = layout.root
    check_out_path(out_dir)
    if layout.started and not resume:
        raise NasplugError(
            f"{out_dir}: holds a comparison already; pass --resume to continue it, or --out for a new one"
        )
    if not resume or not layout.config.is_file():
        return
    old = read_json(layout.config, dict, "restore it, or compare into another --out")
    if not isinstance(old.get("fingerprint"), dict) or not isinstance(old.get("strategy_specs", {}), dict):
        raise NasplugError(f"{layout.config}: not a comparison's settings; restore it, or compare into another --out")
    key = RESUME.first_comparison_difference(old.get("fingerprint", {}), fingerprint)
    if key is not None:
        raise NasplugError(f"--resume: {key} differs from the comparison in {out_dir}; the shared cache and "
                           "logs would mix results; use another --out")
    for name, spec in specs.items():
        before = old.get("strategy_specs", {}).get(name)
        if before is not None and before != spec:
            raise NasplugError(f"--resume: strategy {name!r} had arguments {before} in {out_dir}, now {spec}; "
                               "use another --out")
