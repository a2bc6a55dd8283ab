"""The zero-cost proxies against hand computations on a two-layer model.

The model is ``Linear(3, 4) -> ReLU -> Linear(4, 2)`` with a mean cross-entropy loss; every
gradient below is written out by hand in numpy (the chain rule through the two layers), not
taken from autograd, so each test fails if a measure differentiates, sums or normalises
anything other than its definition (:mod:`nasplug.zerocost.measures`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nasplug.zerocost import measures


def two_layer(seed: int = 0) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    return model


def data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(5, 3, generator=gen, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1])


def weights(model: nn.Sequential) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return tuple(p.detach().numpy().copy() for p in (model[0].weight, model[0].bias, model[2].weight, model[2].bias))


def hand_loss_gradients(model: nn.Sequential, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """dL/dW1 [4, 3] and dL/dW2 [2, 4] of the mean cross-entropy, by the chain rule."""
    w1, b1, w2, b2 = weights(model)
    xn, n = x.numpy(), len(x)
    z1 = xn @ w1.T + b1
    h = np.maximum(z1, 0)
    z2 = h @ w2.T + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz2 = (p - np.eye(2)[y.numpy()]) / n
    dw2 = dz2.T @ h
    dz1 = (dz2 @ w2) * (z1 > 0)
    dw1 = dz1.T @ xn
    return dw1, dw2


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor):  # noqa: ANN201
    return lambda: nn.functional.cross_entropy(model(x), y)


def test_grad_norm_is_the_sum_of_the_layers_gradient_norms() -> None:
    model, (x, y) = two_layer(), data()
    dw1, dw2 = hand_loss_gradients(model, x, y)
    expected = np.linalg.norm(dw1) + np.linalg.norm(dw2)  # Frobenius norms; biases not scored
    assert measures.grad_norm(model, loss_of(model, x, y)) == pytest.approx(expected, rel=1e-12)


def test_snip_is_the_summed_absolute_weight_times_gradient() -> None:
    model, (x, y) = two_layer(), data()
    w1, _, w2, _ = weights(model)
    dw1, dw2 = hand_loss_gradients(model, x, y)
    expected = np.abs(w1 * dw1).sum() + np.abs(w2 * dw2).sum()
    assert measures.snip(model, loss_of(model, x, y)) == pytest.approx(expected, rel=1e-12)


def test_synflow_uses_absolute_weights_and_an_input_of_ones() -> None:
    model, (x, _) = two_layer().float(), data()  # given in float32, computed in float64
    w1, b1, w2, b2 = (np.abs(a).astype(np.float64) for a in weights(model))
    a1 = w1 @ np.ones(3) + b1  # every pre-activation is positive: ReLU passes all of it
    # R = 1' (W2 a1 + b2): dR/dW2[i, j] = a1[j]; dR/dW1[j, k] = (W2' 1)[j] * 1
    expected = (w2 * a1[None, :]).sum() + (w1 * (w2.sum(0))[:, None]).sum()
    got = measures.synflow(model, (x.float(), model))
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(p.dtype == torch.float64 and (p >= 0).all() for p in model.parameters())


def test_synflow_ignores_the_data() -> None:
    model_a, model_b = two_layer(), two_layer()
    x, _ = data()
    assert measures.synflow(model_a, (x, model_a)) == measures.synflow(model_b, (100 * x + 3, model_b))


def test_jacobian_covariance_matches_the_definition() -> None:
    model, (x, _) = two_layer(), data()
    w1, b1, w2, _ = weights(model)
    z1 = x.numpy() @ w1.T + b1
    # d(sum of outputs)/dx for each example: W1' diag(z1 > 0) W2' 1
    jac = np.stack([w1.T @ ((z1[i] > 0) * w2.sum(0)) for i in range(len(x))])
    v = np.real(np.linalg.eig(np.corrcoef(jac))[0])
    expected = -np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5))
    assert measures.jacov(model, (x, model)) == pytest.approx(expected, rel=1e-9)


def test_jacobian_covariance_of_a_constant_row_is_finite() -> None:
    jac = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 2.0], [3.0, 2.0, 1.0]])  # row 1 has no variance
    score = measures.jacov_score(jac)
    # row 1 uncorrelated with the others; rows 0 and 2 perfectly anti-correlated: eigenvalues 0, 1, 2
    v = np.array([0.0, 1.0, 2.0])
    assert score == pytest.approx(-np.sum(np.log(v + 1e-5) + 1.0 / (v + 1e-5)), rel=1e-9)


def test_only_linear_and_convolution_weights_are_scored_each_once() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential(nn.Embedding(5, 2), nn.LayerNorm(2), shared, nn.Conv1d(2, 2, 3), shared, nn.BatchNorm1d(2))
    assert measures.scored_weights(model) == [shared.weight, model[3].weight]
