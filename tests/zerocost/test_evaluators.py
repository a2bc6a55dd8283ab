"""The registered zero-cost evaluators (``evaluator: {name: synflow}`` ...): each one's value
of an arch against the hand computation on the same fresh two-layer model and batch, their
recipe checks, and the evaluator-plugin contract on the two-layer space and on LV-BERT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasplug.errors import NasplugError
from nasplug.testing import EvaluatorPluginContract
from nasplug.zerocost import PROXIES

HERE = Path(__file__).parent
ARCH = {"hidden": 6}


def mlp_ctx(tmp_path: Path, proxy: str = "synflow", **search: Any) -> Any:
    from nasplug.pipeline import RunContext
    from nasplug.recipe import validate_recipe
    from nasplug.registry import add_import_dir

    add_import_dir(HERE)
    recipe = validate_recipe({"name": "mlp", "seed": 3, "space": {"name": "mlp_kit:MLPSpace"},
                              "task": {"name": "mlp_kit:MLPTask"}, "evaluator": {"name": proxy},
                              "search": {"budget": 2, "metric": proxy, **search}})
    return RunContext(recipe=recipe, run_dir=tmp_path / "run", progress=False)


def evaluate(ctx: Any, proxy: str, batch_size: int = 5) -> float:
    from nasplug.pipeline.evaluator_plugin import evaluator_plugin
    from nasplug.recipe import Component

    result = evaluator_plugin(Component(name=proxy, batch_size=batch_size)).build(ctx)(ARCH)
    assert result["params"] == 3 * 6 + 6 + 2 * 6 + 2
    return result[proxy]


def fresh_model_and_batch(ctx: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The fresh weights (W1, b1, W2, b2) the evaluator scores and its one batch (x, y)."""
    from nasplug.oneshot.build import build_model

    task = ctx.prepared_task()
    model = build_model(ctx.space, ARCH, task, seed=3)  # the recipe's seed
    x, y = next(task.training_batches(5, 0))
    return [p.detach().double().numpy() for p in model.parameters()], x.double().numpy(), y.numpy()


def by_hand(proxy: str, params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The proxy of ``Linear -> ReLU -> Linear`` with a mean cross-entropy, by the chain rule."""
    w1, b1, w2, b2 = params
    if proxy == "synflow":
        w1, b1, w2 = np.abs(w1), np.abs(b1), np.abs(w2)
        a1 = w1 @ np.ones(3) + b1
        return float((w2 * a1[None, :]).sum() + (w1 * w2.sum(0)[:, None]).sum())
    z1 = x @ w1.T + b1
    if proxy == "jacov":
        jac = np.stack([w1.T @ ((z1[i] > 0) * w2.sum(0)) for i in range(len(x))])
        v = np.real(np.linalg.eig(np.corrcoef(jac))[0])
        return float(-np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)))
    h = np.maximum(z1, 0)
    z2 = h @ w2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = (p - np.eye(2)[y]) / len(x)
    dw2, dw1 = dz2.T @ h, ((dz2 @ w2) * (z1 > 0)).T @ x
    if proxy == "grad_norm":
        return float(np.linalg.norm(dw1) + np.linalg.norm(dw2))
    return float(np.abs(w1 * dw1).sum() + np.abs(w2 * dw2).sum())  # snip


@pytest.mark.parametrize("proxy", PROXIES)
def test_each_registered_proxy_equals_the_hand_computation(proxy: str, tmp_path: Path) -> None:
    ctx = mlp_ctx(tmp_path)
    got = evaluate(ctx, proxy)
    expected = by_hand(proxy, *fresh_model_and_batch(ctx))
    assert got == pytest.approx(expected, rel=1e-5)  # the model runs in float32 (SynFlow: float64)
    other_batch = evaluate(ctx, proxy, batch_size=6)
    assert (other_batch == got) == (proxy == "synflow"), "only SynFlow ignores the data"


def test_a_search_ranks_by_the_proxy_maximised_or_by_an_analytic_metric(tmp_path: Path) -> None:
    from nasplug.zerocost.evaluators import SynFlow

    SynFlow().check(mlp_ctx(tmp_path))
    SynFlow().check(mlp_ctx(tmp_path, metric="params", direction="minimize"))
    with pytest.raises(NasplugError, match="search.direction: synflow"):
        SynFlow().check(mlp_ctx(tmp_path, direction="minimize"))
    with pytest.raises(NasplugError, match="search.metric: 'acc' .*allowed: synflow, params"):
        SynFlow().check(mlp_ctx(tmp_path, metric="acc"))
    with pytest.raises(NasplugError, match="evaluator.batch_size"):
        from nasplug.pipeline.evaluator_plugin import evaluator_plugin
        from nasplug.recipe import Component

        evaluator_plugin(Component(name="snip", batch_size=1))


def test_ids_are_no_continuous_input_for_the_default_task() -> None:
    from nasplug.task import Task

    with pytest.raises(NasplugError, match="not a float tensor"):
        Task().differentiable_input(torch.nn.Identity(), (torch.zeros(2, 3, dtype=torch.long),))


@pytest.mark.parametrize("proxy", PROXIES)
class TestZeroCostContract(EvaluatorPluginContract):
    """The evaluator-plugin contract for every proxy, on the two-layer space."""

    @pytest.fixture
    def plugin(self, proxy: str) -> Any:
        from nasplug.pipeline.evaluator_plugin import evaluator_plugin
        from nasplug.recipe import Component

        return evaluator_plugin(Component(name=proxy, batch_size=8))

    @pytest.fixture
    def ctx(self, tmp_path: Path, proxy: str) -> Any:
        return mlp_ctx(tmp_path, proxy)
