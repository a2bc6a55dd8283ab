"""Contract test suites that plugin authors reuse (like optuna.testing's sampler suites).

Subclass in your own tests and provide the fixtures::

    from nasplug.testing import SpaceContract

    class TestMySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace(slots=4)

Every test here states one promise of the interface; a space, strategy or evaluator plugin
that breaks it fails with a message naming the promise.
"""

from __future__ import annotations

try:
    import pytest  # noqa: F401
except ImportError:  # the suites are pytest classes; the rest of nasplug does not need pytest
    raise ImportError("nasplug.testing needs pytest (pip install pytest, or nasplug[dev])") from None

from nasplug.testing.cost import LatencyPartsContract
from nasplug.testing.evaluators import EvaluatorPluginContract
from nasplug.testing.spaces import (
    BRUTE_FORCE_LIMIT,
    SpaceContract,
    archs_covering_every_option,
    check_canonical_models,
    check_extract_matches,
    randomize_state,
    renamed,
)
from nasplug.testing.strategies import MultiObjectiveStrategyContract, StrategyContract

__all__ = ["BRUTE_FORCE_LIMIT", "EvaluatorPluginContract", "LatencyPartsContract", "MultiObjectiveStrategyContract",
           "SpaceContract", "StrategyContract", "archs_covering_every_option", "check_canonical_models",
           "check_extract_matches", "randomize_state", "renamed"]
