"""What every stage works with: the recipe, the run directory, and the built components.

:class:`RunContext` builds each component once (space, task, strategy, constraints) through
the registries, so a stage asks for ``ctx.space`` or ``ctx.prepared_task()`` and never
imports a concrete space or task. The evaluator is built by
:func:`nasplug.pipeline.evaluator_plugin.build_evaluator`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.layout import RunLayout
from nasplug.objectives import Objectives, merge_declarations, resolve, resolved_fields
from nasplug.pipeline.machine import Machine, resolve_machine
from nasplug.recipe import Component, Recipe, refuse_reserved
from nasplug.registry import CONSTRAINTS, SPACES, STRATEGIES, TASKS, build_plugin
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy
from nasplug.task import Task, TaskEnv, check_metrics

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The folder for data shared between runs: ``$NASPLUG_CACHE`` or ``~/.cache/nasplug``."""
    return Path(os.environ.get("NASPLUG_CACHE") or Path.home() / ".cache" / "nasplug").expanduser()


@dataclass
class RunContext:
    """Everything a stage needs: the recipe, the run directory, and built components."""

    recipe: Recipe
    run_dir: Path
    resume: bool = False
    progress: bool = True
    extras: dict[str, Any] = field(default_factory=dict)  # stage-to-stage objects in memory
    #: The recipe's space when the caller built it already (``nasplug compare``): not built twice.
    built_space: SearchSpace | None = field(default=None, repr=False)
    #: ``latency.measure: direct``: this context may measure archs (``run_recipe`` on rank 0);
    #: every other context (rank-corr, export, report) only reads what the run measured.
    measures_latency: bool = False
    #: Set by ``run_recipe`` once its checks passed and its stages run: measured latencies are
    #: written to the run from then on (until then they wait in memory).
    stages_running: bool = False

    @cached_property
    def machine(self) -> Machine:
        """What ``precision: auto`` means in this run and its thread count (recorded in
        ``run.json``; a run directory keeps what it started with)."""
        return resolve_machine(self.recipe, self.run_dir)

    @cached_property
    def space(self) -> SearchSpace:
        """The recipe's space (or ``built_space``), with what the task dictates of its models
        (vocabulary size, sequence length) where the recipe leaves it out (see :func:`build_space`)."""
        from nasplug.pipeline.latency import attach_run_latency

        if self.built_space is not None:
            return self.built_space
        space = build_space(self.recipe.space, self.task if self.recipe.task is not None else None)
        return attach_run_latency(space, self.recipe, self.run_dir, read_only=not self.measures_latency,
                                  started=lambda: self.stages_running)  # latency_ms: the stage's table or measured

    @cached_property
    def task(self) -> Task:
        """The recipe's task (built, not yet prepared); NasplugError if the recipe has none."""
        if self.recipe.task is None:
            raise NasplugError(
                f"task: recipe {self.recipe.name!r} trains models of space {self.space.name!r} but names "
                f"no task; add e.g. task: {{name: mlm}} (known: {', '.join(TASKS.names())})"
            )
        return build_task(self.recipe.task)

    @cached_property
    def retrain_task(self) -> Task:
        """The task the retrain stage trains on: the recipe's task with the changes in
        ``retrain.task`` (e.g. ``{name: electra}`` after an MLM supernet), if any."""
        change = self.recipe.retrain.task if self.recipe.retrain is not None else None
        if change is None:
            return self.task
        base = self.recipe.task.kwargs() if self.recipe.task is not None else {}
        return build_task(Component(name=change.name, **{**base, **change.kwargs()}))

    def prepared_task(self, task: Task | None = None) -> Task:
        """``task`` (default: the recipe's) with its data built, once per process (under
        torchrun rank 0 first, while the other ranks wait)."""
        task = self.task if task is None else task
        if not task.prepared_for_run:
            from nasplug import distributed

            info = distributed.init()
            if not info.is_main:
                distributed.barrier()  # rank 0 builds the data and fills the cache first
            task.prepare(TaskEnv(self.run_dir, cache_dir(), self.recipe.seed, self.progress))
            if info.is_main:
                distributed.barrier()
            task.prepared_for_run = True
        return task

    def space_spec(self) -> dict[str, Any]:
        """How to rebuild the run's space without the recipe (:func:`space_spec`)."""
        return space_spec(self.recipe.space, self.task if self.recipe.task is not None else None)

    @cached_property
    def layout(self) -> RunLayout:
        """Where each file of the run lives."""
        return RunLayout(self.run_dir)

    def declared_directions(self) -> dict[str, str]:
        """metric -> direction as the run's producers declare them: the task's metrics, the
        evaluator's own, the space's analytic ones (see :mod:`nasplug.objectives`)."""
        from nasplug.pipeline.evaluator_plugin import evaluator_plugin

        sources: list[tuple[str, Mapping[str, str]]] = []
        if self.recipe.task is not None:
            sources.append((f"task {self.task.name!r}", self.task.metrics))
        if self.recipe.evaluator is not None:
            sources.append((f"evaluator {self.recipe.evaluator.name!r}",
                            evaluator_plugin(self.recipe.evaluator).metric_directions(self)))
        sources.append((f"space {self.space.name!r}", self.space.metric_directions))
        if self.recipe.section("latency") is not None:  # the latency stage's table, measured or not yet
            from nasplug.cost.measure import LATENCY_METRIC

            sources.append(("the latency stage", {LATENCY_METRIC: "minimize"}))
        return merge_declarations(sources)

    @cached_property
    def objectives(self) -> Objectives:
        """The search's objectives with their directions (NasplugError naming the recipe key
        when a metric's direction is declared nowhere)."""
        return self.resolve_objectives()

    def resolve_objectives(self, evaluator: Mapping[str, str] | None = None) -> Objectives:
        """The recipe's objectives; ``evaluator``: what an evaluator passed in place of the
        recipe's declares (``nasplug compare`` from Python), besides the recipe's sources."""
        from nasplug.recipe import SearchConfig

        declared = merge_declarations([("the evaluator", evaluator or {}), ("the run", self.declared_directions())])
        default = self.task.primary_metric() if self.recipe.task is not None else None
        if default is None and self.recipe.evaluator is not None:
            from nasplug.pipeline.evaluator_plugin import evaluator_plugin

            default = next(iter(evaluator_plugin(self.recipe.evaluator).metric_directions(self)), None)
        if default is None and evaluator:
            default = next(iter(evaluator))
        return resolve(self.recipe.search or SearchConfig.model_validate({}), declared, default)


def with_objectives(ctx: RunContext) -> Recipe:
    """``ctx.recipe`` with its search objectives spelt out (every direction named), as a run
    stores it: a run searched the way its ``recipe.yaml`` says, whatever a later version's
    declarations are. A recipe that does not search is returned as it is."""
    recipe = ctx.recipe
    if recipe.search is None or recipe.arch is not None:
        return recipe
    search = recipe.search.model_copy(update=resolved_fields(ctx.objectives))
    return recipe.model_copy(update={"search": search})


def build_space(spec: Component, task: Task | None = None) -> SearchSpace:
    """The space ``spec`` names. With ``task``: each setting the task dictates of its models
    (:meth:`~nasplug.task.Task.model_settings`, e.g. the text tasks' ``vocab_size`` and
    ``seq_len``) is passed to the space's constructor when it takes an argument of that name
    and the recipe leaves it out; a value the recipe sets that disagrees is one clear line."""
    kwargs = space_spec(spec, task)
    return build_plugin(SPACES, kwargs.pop("name"), kwargs, field="space", kind=SearchSpace)


def space_spec(spec: Component, task: Task | None = None) -> dict[str, Any]:
    """``{name, **constructor arguments}`` of the space :func:`build_space` builds: what a
    file (a latency table) stores to rebuild the same space without the recipe."""
    kwargs = spec.kwargs()
    if task is not None and task.model_settings():
        factory, _ = SPACES.resolve(spec.name)
        try:
            params = set(inspect.signature(factory).parameters)
        except (TypeError, ValueError):
            params = set()
        for key, value in task.model_settings().items():
            if key not in params:
                continue
            if kwargs.get(key) is None:
                kwargs[key] = value
            elif kwargs[key] != value:
                raise NasplugError(f"space.{key}: {kwargs[key]!r} disagrees with the task's {key} ({value!r}, "
                                   f"task {task.name!r}); leave space.{key} out to follow the task, or make them equal")
    return {"name": spec.name, **kwargs}


def build_task(spec: Component) -> Task:
    task = build_plugin(TASKS, spec.name, spec.kwargs(), field="task", kind=Task)
    check_metrics(task)
    return task


def build_strategy(spec: Component, space: SearchSpace, seed: int, objectives: Objectives | None = None) -> Strategy:
    """The recipe's strategy, told the search's ``objectives`` when given (NasplugError, one
    line, for a one-objective strategy and several objectives)."""
    refuse_reserved(spec, "strategy", "search.strategy")
    kwargs = {"seed": seed, **spec.kwargs()}
    strategy = build_plugin(STRATEGIES, spec.name, {"space": space, **kwargs}, field="search.strategy", kind=Strategy)
    if objectives is not None:
        strategy.set_objectives(objectives)
    return strategy


def build_constraints(specs: Sequence[Component], space: SearchSpace) -> list[Callable[..., Any]]:
    for i, c in enumerate(specs):
        refuse_reserved(c, "constraint", f"search.constraints[{i}]")
    return [build_plugin(CONSTRAINTS, c.name, {"space": space, **c.kwargs()}, field=f"search.constraints[{i}]")
            for i, c in enumerate(specs)]
