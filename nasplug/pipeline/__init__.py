"""``nasplug run``: the recipe's stages in order (supernet, search, retrain, glue, report).

The generic stages know only the concepts (space, task, strategy, evaluator); plugins add
their own stages (GLUE, with the text tasks) through the stage registry.
"""

from __future__ import annotations

from nasplug.pipeline.context import (
    RunContext,
    build_constraints,
    build_space,
    build_strategy,
    build_task,
)
from nasplug.pipeline.evaluator_plugin import EvaluatorPlugin, build_evaluator
from nasplug.pipeline.run import parse_stages, run_recipe
from nasplug.pipeline.stage import ORDER, STAGES, Stage, get_stage

__all__ = ["ORDER", "STAGES", "EvaluatorPlugin", "RunContext", "Stage", "build_constraints", "build_evaluator",
           "build_space", "build_strategy", "build_task", "get_stage", "parse_stages", "run_recipe"]
