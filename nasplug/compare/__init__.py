"""``nasplug compare``: several strategies x several seeds against one evaluator, fairly.

Every (strategy, seed) run is a plain :func:`nasplug.search.search` with its own log
(``OUT/runs/<strategy>/seed<k>/trials.jsonl``), and all runs share one evaluation cache
(``OUT/cache.jsonl``), so an arch is scored once however many runs propose it. Resume is
per run: a finished run is read back from its log, an unfinished one is replayed and
continued by ``search(resume=True)``. Ground-truth mode first scores the whole space through
the same cache and reports regret against the true optimum. The outputs, written atomically:
``comparison.json`` (everything), ``comparison.md`` (tables + method) and ``anytime.png``.
See :mod:`nasplug.compare.stats` for the statistics.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasplug.compare.cache import GroundTruth, JsonlCache, check_ground_truth_size
from nasplug.compare.cli import add_compare_parser, cmd_compare  # the CLI entry points, re-exported
from nasplug.compare.report import plot_anytime, render_markdown, score_table, tests_table
from nasplug.compare.runs import RunPlan, run_all, run_ground_truth, slug
from nasplug.compare.stats import summarize
from nasplug.errors import NasplugError
from nasplug.evaluate import Evaluator
from nasplug.io import atomic_write_json, atomic_write_text
from nasplug.layout import ComparisonLayout
from nasplug.pipeline import (
    RunContext,
    build_constraints,
    build_evaluator,
    build_space,
    build_strategy,
)
from nasplug.pipeline.run import make_run_dir
from nasplug.recipe import Component, Recipe, SearchConfig
from nasplug.registry import STRATEGIES
from nasplug.resume import RESUME
from nasplug.yamlio import parse_override_value

__all__ = ["ComparisonResult", "add_compare_parser", "cmd_compare", "compare", "resolve_strategies"]

log = logging.getLogger(__name__)



@dataclass
class ComparisonResult:
    """A finished comparison: its setup, every run's curve, the statistics, the ground truth.

    ``data`` is exactly what ``comparison.json`` holds; the properties read from it.
    """

    data: dict[str, Any]
    out_dir: Path
    ground_truth: GroundTruth | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.data["summary"]

    @property
    def curves(self) -> dict[str, dict[int, list[float]]]:
        """strategy -> seed -> best-so-far curve."""
        out: dict[str, dict[int, list[float]]] = {}
        for run in self.data["runs"]:
            out.setdefault(run["strategy"], {})[run["seed"]] = run["curve"]
        return out

    def table(self, regret: bool = False) -> str:
        """The main table (best score or, in ground-truth mode, regret at each budget)."""
        cfg = self.data["config"]
        return score_table(self.summary, cfg["budget"], cfg["metric"], regret=regret)

    def tests_table(self) -> str:
        return tests_table(self.summary["tests"])

    def markdown(self) -> str:
        return render_markdown(self.data)


def compare(recipe: Recipe, strategies: Sequence[str], seeds: Sequence[int] | int, budget: int,
            out_dir: str | Path, *, resume: bool = False, ground_truth: bool = False,
            budgets_to_report: Sequence[int] | None = None, target: float | None = None,
            progress: bool = True, batch_size: int | None = None,
            strategy_args: Sequence[str] = (), max_ground_truth: int = 100_000,
            evaluator: Evaluator | None = None, from_run: str | Path | None = None) -> ComparisonResult:
    """Run every strategy with every seed against the recipe's evaluator and compare them.

    Args:
        recipe: gives the space, the evaluator, the objective (``search.metric`` /
            ``direction``), constraints and the batch size. Its ``search.strategy`` kwargs
            apply to the strategy of the same name.
        strategies: registered names, ``package.module:attr`` paths or entry points.
        seeds: seed list, or a count N meaning seeds 0..N-1 (the same for every strategy).
        budget: scored evaluations per run (cache hits count, as in ``search()``).
        out_dir: where runs, cache and reports go.
        resume: continue a comparison in ``out_dir`` (finished runs are read back, others
            replayed and continued); without it ``out_dir`` must not hold one already.
        ground_truth: score the whole space first and report regret against the optimum.
        budgets_to_report: where the table reads the curves (default 10/25/50/100%).
        target: score to reach (default: the true optimum, else the median final best).
        progress: show progress bars.
        batch_size: archs per ask (default: the recipe's ``search.batch_size``).
        strategy_args: ``NAME.KEY=VALUE`` constructor arguments for a strategy (YAML values).
        max_ground_truth: refuse ground truth on spaces with more archs than this.
        evaluator: use this evaluator instead of building the recipe's (Python callers).
        from_run: the run directory the evaluator reads (e.g. the trained supernet of
            ``nasplug run``); it becomes ``RunContext.run_dir``. Default: ``out_dir``.

    Raises:
        NasplugError: bad arguments, unknown strategies, a changed recipe on resume, ...
    """
    seed_list = _seed_list(seeds)
    if budget < 1:
        raise NasplugError(f"--budget: must be a positive integer, got {budget}")
    cfg = recipe.search or SearchConfig()
    batch = batch_size if batch_size is not None else cfg.batch_size
    if batch < 1:
        raise NasplugError(f"--batch-size: must be a positive integer, got {batch}")
    if budgets_to_report is not None and any(b < 1 for b in budgets_to_report):
        raise NasplugError(f"--budgets: must be positive integers, got {list(budgets_to_report)}")
    if target is not None and not math.isfinite(target):
        raise NasplugError(f"--target: must be a finite number, got {target}")
    if budget > 10**7 or len(seed_list) > 10**4:
        raise NasplugError(f"--budget / --seeds: at most 10,000,000 evaluations and 10,000 seeds per run, got "
                           f"{budget} and {len(seed_list)}")
    if from_run is not None and not Path(from_run).is_dir():
        raise NasplugError(f"--from-run: {from_run} is not a directory")
    space = build_space(recipe.space)
    if ground_truth:
        check_ground_truth_size(space, max_ground_truth)
    specs = resolve_strategies(strategies, strategy_args, cfg.strategy)
    for spec in specs.values():  # fail on a typo before anything runs or is written
        build_strategy(spec, space, seed_list[0])
    constraints = build_constraints(cfg.constraints, space)
    out_dir = Path(out_dir)
    config: dict[str, Any] = {
        "recipe": recipe.name, "strategies": list(specs), "seeds": seed_list, "budget": budget, "batch_size": batch,
        "metric": cfg.metric, "direction": cfg.direction, "ground_truth": ground_truth,
        "strategy_specs": {k: v.model_dump(mode="json") for k, v in specs.items()},
    }
    fingerprint = {"space": recipe.space.model_dump(mode="json"),
                   "evaluator": None if recipe.evaluator is None else recipe.evaluator.model_dump(mode="json"),
                   "metric": cfg.metric, "direction": cfg.direction, "batch_size": batch,
                   "constraints": [c.model_dump(mode="json") for c in cfg.constraints],
                   "from_run": None if from_run is None else str(Path(from_run).resolve())}
    layout = ComparisonLayout(out_dir)
    _check_out_dir(layout, resume, fingerprint, config["strategy_specs"])
    if evaluator is None:
        ctx = RunContext(recipe=recipe, run_dir=Path(from_run) if from_run is not None else out_dir, resume=resume,
                         progress=progress)
        ctx.__dict__["space"] = space  # share the built space with the evaluator (cached_property slot)
        evaluator = build_evaluator(ctx)
    make_run_dir(out_dir)
    atomic_write_json(layout.config, {**config, "fingerprint": fingerprint})
    plan = RunPlan(space, evaluator, JsonlCache(layout.cache), constraints, cfg.metric, cfg.direction,
                 budget, batch, resume, layout)
    log.info("compare: %d strategies x %d seeds x budget %d into %s (cache: %d archs)",
             len(specs), len(seed_list), budget, out_dir, len(plan.cache))
    truth = None
    if ground_truth:
        truth = run_ground_truth(plan, max_ground_truth, progress)
    runs = run_all(plan, specs, seed_list, progress)
    curves: dict[str, dict[int, list[float]]] = {}
    for run in runs:
        curves.setdefault(run["strategy"], {})[run["seed"]] = run["curve"]
        if truth is not None and run["final"] is not None:
            run["final_regret"], run["final_rank"] = truth.regret(run["final"]), truth.rank(run["final"])
    summary = summarize(curves, budget, direction=cfg.direction, budgets=budgets_to_report, target=target,
                        optimum=None if truth is None else truth.optimum)
    data = {"version": 1, "config": config, "summary": summary, "runs": runs,
            "ground_truth": None if truth is None else truth.to_json(space.format(truth.arch)),
            "runtime": {"evaluator_calls": plan.cache.added, "cache_entries": len(plan.cache),
                        "cache_entries_at_start": plan.cache.loaded, "wall_s": plan.wall}}
    result = ComparisonResult(data=data, out_dir=out_dir, ground_truth=truth)
    atomic_write_json(layout.output("json"), data)
    atomic_write_text(layout.output("md"), result.markdown())
    plot_anytime(layout.anytime_plot, curves, budget, metric=cfg.metric, direction=cfg.direction,
                 optimum=None if truth is None else truth.optimum)
    log.info("compare: wrote %s (comparison.json, comparison.md, anytime.png); %d new evaluations",
             out_dir, plan.cache.added)
    return result


# --------------------------------------------------------------------------- setup helpers
def _seed_list(seeds: Sequence[int] | int) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise NasplugError(f"--seeds: must be >= 1, got {seeds}")
        return list(range(seeds))
    seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise NasplugError(f"seeds: expected distinct seeds, got {seed_list}")
    return seed_list


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


def _check_out_dir(layout: ComparisonLayout, resume: bool, fingerprint: dict[str, Any], specs: dict[str, Any]) -> None:
    from nasplug.pipeline.identity import check_out_path

    out_dir = layout.root
    check_out_path(out_dir)
    config_file = layout.config
    if layout.started and not resume:
        raise NasplugError(
            f"{out_dir}: holds a comparison already; pass --resume to continue it, or --out for a new one"
        )
    if not resume or not config_file.is_file():
        return
    from nasplug.runfiles import read_json

    old = read_json(config_file, dict, "restore it, or compare into another --out")
    if not isinstance(old.get("fingerprint"), dict) or not isinstance(old.get("strategy_specs", {}), dict):
        raise NasplugError(f"{config_file}: not a comparison's settings; restore it, or compare into another --out")
    key = RESUME.first_comparison_difference(old.get("fingerprint", {}), fingerprint)
    if key is not None:
        raise NasplugError(f"--resume: {key} differs from the comparison in {out_dir}; the shared cache and "
                           "logs would mix results; use another --out")
    for name, spec in specs.items():
        before = old.get("strategy_specs", {}).get(name)
        if before is not None and before != spec:
            raise NasplugError(f"--resume: strategy {name!r} had arguments {before} in {out_dir}, now {spec}; "
                               "use another --out")
