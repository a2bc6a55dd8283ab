"""The reusable contract suites, run for every registered space and strategy."""

from __future__ import annotations

import pytest

from nasplug.registry import SPACES, STRATEGIES
from nasplug.testing import SpaceContract, StrategyContract

#: Small constructor arguments so each space's contract runs in a moment.
TINY_SPACE_ARGS = {
    "toy": {"slots": 5},
    "lvbert": {"hidden": 32, "heads": 1, "ffn": 64, "embedding": 32, "slots": 4, "vocab_size": 97, "max_positions": 32},
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
