"""The reusable contract suites, run for every registered space and strategy."""

from __future__ import annotations

import pytest

from nasplug.registry import EVALUATORS, SPACES, STRATEGIES
from nasplug.testing import (
    EvaluatorPluginContract,
    MultiObjectiveStrategyContract,
    SpaceContract,
    StrategyContract,
)

#: Small constructor arguments so each space's contract runs in a moment.
TINY_SPACE_ARGS = {
    "toy": {"slots": 5},
    "lvbert": {"hidden": 32, "heads": 1, "ffn": 64, "embedding": 32, "slots": 4, "vocab_size": 97, "max_positions": 32},
    "elastic-bert": {"layers": 3, "depths": [1, 2, 3], "hidden": [16, 32], "heads": [1, 2], "ffn": [16, 32],
                     "head_size": 16, "vocab_size": 64, "seq_len": 16},
}
#: Strategy-specific arguments for tiny budgets.
STRATEGY_ARGS = {"evolution": {"population": 8, "parents": 3, "mutations": 3, "crossovers": 3}}


class TestEverySpace(SpaceContract):
    @pytest.fixture(params=SPACES.names())
    def space(self, request):
        return SPACES.build(request.param, **TINY_SPACE_ARGS.get(request.param, {}))


class TestEveryStrategy(StrategyContract):
    @pytest.fixture(params=STRATEGIES.names())
    def make_strategy(self, request):
        factory = STRATEGIES.get(request.param)
        return lambda space, seed: factory(space, seed=seed, **STRATEGY_ARGS.get(request.param, {}))


class TestEveryStrategyWithTwoObjectives(MultiObjectiveStrategyContract):
    @pytest.fixture(params=STRATEGIES.names())
    def make_strategy(self, request):
        factory = STRATEGIES.get(request.param)
        return lambda space, seed: factory(space, seed=seed, **STRATEGY_ARGS.get(request.param, {}))


class TestEveryEvaluator(EvaluatorPluginContract):
    """Evaluators that need a trained run (``supernet``) run this suite in tests/rankcorr, on one;
    the zero-cost proxies, which need a task's batch, in tests/zerocost on a two-layer model."""

    @pytest.fixture(params=EVALUATORS.names())
    def plugin(self, request):
        from nasplug.pipeline.evaluator_plugin import evaluator_plugin
        from nasplug.recipe import Component

        plugin = evaluator_plugin(Component(name=request.param))
        if plugin.needs_context:
            pytest.skip(f"evaluator {request.param!r} reads a trained run; see tests/rankcorr/test_rank_corr.py")
        from nasplug.zerocost.evaluators import ZeroCostEvaluator

        if isinstance(plugin, ZeroCostEvaluator):  # this toy recipe has no task to draw a batch from
            pytest.skip(f"evaluator {request.param!r} needs a task's batch; see tests/zerocost/test_evaluators.py")
        return plugin

    @pytest.fixture
    def ctx(self, tmp_path):
        from nasplug.pipeline import RunContext
        from nasplug.recipe import validate_recipe

        recipe = validate_recipe({"name": "contract", "space": {"name": "toy", "slots": 5},
                                  "evaluator": {"name": "toy"}, "search": {"budget": 4}})
        return RunContext(recipe=recipe, run_dir=tmp_path / "run", progress=False)
