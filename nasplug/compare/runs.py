"""The runs of a comparison: one ``search()`` per (strategy, seed), resumable one by one.

Each run logs to ``runs/<strategy>/seed<k>/trials.jsonl`` and, when ``search()`` returns,
writes ``run.json`` (how many trials it scored, whether the strategy stopped proposing
early). On resume a run is finished when its log holds the budget's worth of scored trials
(or the marker says the strategy ran dry at exactly that count); anything else is replayed and
continued by ``search(resume=True)``, so a truncated or deleted log costs only re-asking.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasplug.compare.cache import GroundTruth, JsonlCache, RunCache, ground_truth
from nasplug.evaluate import Evaluator
from nasplug.io import atomic_write_json
from nasplug.layout import ComparisonLayout
from nasplug.objectives import Objectives
from nasplug.pareto import losses
from nasplug.pipeline import build_strategy
from nasplug.progress import progress_bar
from nasplug.recipe import Component
from nasplug.search import SearchResult, search
from nasplug.space import SearchSpace
from nasplug.trials import Trial, TrialLog

log = logging.getLogger(__name__)


def slug(label: str) -> str:
    """A folder name for a strategy label (``optuna:TPESampler`` -> ``optuna_TPESampler``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._") or "strategy"


@dataclass
class RunPlan:
    """Everything the runs of one comparison share."""

    space: SearchSpace
    evaluator: Evaluator
    cache: JsonlCache
    constraints: list[Any]
    objectives: Objectives
    budget: int
    archs_per_ask: int  # --batch-size
    resume: bool
    layout: ComparisonLayout
    wall: dict[str, float] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.objectives[0].metric

    @property
    def direction(self) -> str:
        return self.objectives[0].direction


def run_ground_truth(plan: RunPlan, max_archs: int, progress: bool) -> GroundTruth:
    """Score the whole space through the shared cache (see :func:`ground_truth`), timed."""
    t0 = time.perf_counter()
    truth = ground_truth(plan.space, plan.evaluator, plan.cache, objectives=plan.objectives,
                         constraints=plan.constraints, max_archs=max_archs, chunk=max(plan.archs_per_ask, 64),
                         progress=progress)
    plan.wall["ground_truth"] = time.perf_counter() - t0
    return truth


def run_all(plan: RunPlan, specs: dict[str, Component], seeds: list[int], progress: bool) -> list[dict[str, Any]]:
    """Every (strategy, seed) run, strategy by strategy; one JSON record per run, in that order."""
    total = len(specs) * len(seeds) * plan.budget
    bar = progress_bar(total=total, desc="compare", unit="eval", enabled=progress)
    runs = []
    try:
        for label, spec in specs.items():
            for seed in seeds:
                bar.set_postfix_str(f"{label} seed {seed}", refresh=False)
                runs.append(_run_one(plan, label, spec, seed, bar))
                bar.update(len(runs) * plan.budget - bar.n)  # replayed or skipped trials, early stops
    finally:
        bar.close()
    return runs


def _run_one(plan: RunPlan, label: str, spec: Component, seed: int, bar: Any) -> dict[str, Any]:
    log_path, marker = plan.layout.run_trials(slug(label), seed), plan.layout.run_marker(slug(label), seed)
    trials = _finished(log_path, marker, plan.budget) if plan.resume else None
    wall = 0.0
    if trials is None:
        def tick(trial: Trial, result: SearchResult) -> None:
            if trial.scored:
                bar.update(1)

        strategy = build_strategy(spec, plan.space, seed)
        logged = [t.key for t in TrialLog(log_path).read(repair=True)] if plan.resume else []
        cache = RunCache(plan.cache, f"{slug(label)}/seed{seed}", logged)
        t0 = time.perf_counter()
        result = search(strategy, plan.evaluator, plan.budget, space=plan.space, constraints=plan.constraints,
                        objectives=plan.objectives, archs_per_ask=plan.archs_per_ask,
                        log_path=log_path, resume=plan.resume, callbacks=[tick], cache=cache)
        wall = time.perf_counter() - t0
        trials = result.trials
        scored = sum(t.scored for t in trials)
        atomic_write_json(marker, {"strategy": label, "seed": seed, "budget": plan.budget, "scored": scored,
                                   "exhausted": scored < plan.budget, "wall_s": wall})
    else:
        log.info("compare: %s seed %d finished already (%s), read back", label, seed, log_path)
        wall = float(_marker(marker).get("wall_s", 0.0))
    plan.wall[label] = plan.wall.get(label, 0.0) + wall
    return _run_record(label, seed, trials, plan)


def _finished(log_path: Path, marker: Path, budget: int) -> list[Trial] | None:
    """The logged trials if this run needs no more work, else None (run or continue it)."""
    log_file = TrialLog(log_path)
    if not log_file.exists():
        return None
    trials = log_file.read(repair=True)
    scored = sum(t.scored for t in trials)
    if scored >= budget:
        return trials
    info = _marker(marker)  # a strategy that stopped proposing early is finished too
    if info.get("exhausted") and info.get("scored") == scored:
        return trials
    return None


def _marker(path: Path) -> dict[str, Any]:
    """``run.json`` of a run, or {} when it is missing or unreadable (the run is then redone)."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def _run_record(label: str, seed: int, trials: list[Trial], plan: RunPlan) -> dict[str, Any]:
    """One run as JSON: its curve (cut at the budget), final best and the best arch."""
    scored = [t for t in trials if t.scored][: plan.budget]
    result = SearchResult(objectives=plan.objectives, trials=scored)
    curve = result.best_so_far()
    best = result.best
    record = {"strategy": label, "seed": seed, "scored": len(scored), "curve": curve,
              "final": curve[-1] if curve else None,
              "best_arch": None if best is None else plan.space.format(best.model_arch),
              "rejected": sum(t.status == "rejected" for t in trials),
              "failed": sum(t.status == "failed" for t in trials)}
    if len(plan.objectives) > 1:  # read by nasplug.compare.fronts, which replaces the curve, then dropped
        record["points"] = [losses(plan.objectives, result.values(t)) for t in scored]
    return record
