"""Contract suite for evaluator plugins."""

from __future__ import annotations

import random
from typing import Any

import pytest

from nasplug.arch import Arch


class EvaluatorPluginContract:
    """Promises every :class:`~nasplug.pipeline.evaluator_plugin.EvaluatorPlugin` keeps.

    Provide ``plugin`` (built with its settings) and ``ctx``: a ``RunContext`` of a recipe it
    scores; for a plugin that ``needs_context``, one whose run directory holds what earlier
    stages wrote (e.g. a trained supernet). A plugin that does not declare ``needs_context``
    is built once more in an empty run directory: it must not need the run's outputs.
    """

    @pytest.fixture
    def plugin(self) -> Any:
        raise NotImplementedError("define a `plugin` fixture returning the EvaluatorPlugin under test")

    @pytest.fixture
    def ctx(self) -> Any:
        raise NotImplementedError("define a `ctx` fixture: the RunContext of a run the plugin scores")

    @staticmethod
    def _archs(ctx: Any, n: int = 3) -> list[Arch]:
        rng = random.Random(0)
        return [ctx.space.sample(rng) for _ in range(n)]

    def test_check_accepts_the_run(self, plugin: Any, ctx: Any) -> None:
        plugin.check(ctx)

    def test_metrics_are_finite_numbers_and_deterministic(self, plugin: Any, ctx: Any) -> None:
        import math

        archs = self._archs(ctx)
        first = [dict(plugin.build(ctx)(a)) for a in archs]
        for metrics in first:
            assert metrics and all(isinstance(k, str) for k in metrics)
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values()), metrics
        assert [dict(plugin.build(ctx)(a)) for a in archs] == first, "the same arch must get the same metrics"

    def test_optional_abilities_keep_their_promises(self, plugin: Any, ctx: Any) -> None:
        from nasplug.evaluate import BatchEvaluator, Closeable

        archs = self._archs(ctx)
        evaluator = plugin.build(ctx, memory_hint=2)
        alone = [dict(evaluator(a)) for a in archs]
        if isinstance(evaluator, BatchEvaluator):
            assert [dict(m) for m in evaluator.evaluate_batch(archs)] == alone, "evaluate_batch must equal one by one"
        closeable = isinstance(evaluator, Closeable)
        if closeable:
            evaluator.close()
            assert [dict(evaluator(a)) for a in archs] == alone, "a closed evaluator still scores the same"

    def test_needs_context_is_declared(self, plugin: Any, ctx: Any, tmp_path: Any) -> None:
        from nasplug.pipeline import RunContext

        if plugin.needs_context:
            pytest.skip("reads the run directory, as it declares")
        bare = RunContext(recipe=ctx.recipe, run_dir=tmp_path / "empty", progress=False)
        arch = self._archs(ctx, 1)[0]
        assert dict(plugin.build(bare)(arch)) == dict(plugin.build(ctx)(arch))
