"""The zero-cost measures, each a number for one model and one batch.

Definitions follow Abdelfattah et al. 2021 (Zero-Cost Proxies for Lightweight NAS) and
NASLib's zero-cost predictors; the code is ours. The *scored layers* are every ``nn.Linear``
and convolution (``nn.Conv1d/2d/3d``) of the model: their ``weight`` alone (no bias, no
normalisation, no embedding), as both collections score "prunable" layers.

* ``grad_norm``: sum over scored layers of the Euclidean norm of dL/dW, L the task's loss
  on the batch.
* ``snip`` (Lee et al. 2019, connection sensitivity): sum over every scored weight of
  \\|W * dL/dW\\|.
* ``synflow`` (Tanaka et al. 2020): every parameter replaced by its absolute value, float64,
  an input of ones (one example); R = the sum of the outputs; sum over scored weights of
  \\|W * dR/dW\\|. No data and no labels are used.
* ``jacov`` (Mellor et al. 2020, "NAS without training", v1): J = d(sum of outputs)/dx per
  example, flattened to [N, D]; C = the correlation matrix of J's rows; with C's eigenvalues
  v and k = 1e-5, score = -sum(log(v + k) + 1 / (v + k)). A row with no variance (a constant
  Jacobian) has no correlation: its entries of C are 0 (1 on the diagonal), where numpy
  would give NaN.

Each function takes a model it may change (the evaluators build a fresh one per arch): the
gradients are left in it, and :func:`synflow` replaces its weights by their absolute values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

#: The layer types whose ``weight`` the measures score.
SCORED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Jacobian covariance's k (Mellor et al. 2020).
JACOV_K = 1e-5

Inputs = tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


def scored_weights(model: nn.Module) -> list[nn.Parameter]:
    """The ``weight`` of every scored layer, in module order, each once (tied weights too)."""
    seen: set[int] = set()
    out = []
    for module in model.modules():
        weight = getattr(module, "weight", None) if isinstance(module, SCORED) else None
        if isinstance(weight, nn.Parameter) and id(weight) not in seen:
            seen.add(id(weight))
            out.append(weight)
    return out


def _backward(model: nn.Module, value: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    value.backward()


def grad_norm(model: nn.Module, loss: Callable[[], torch.Tensor]) -> float:
    """Sum over scored layers of ||dL/dW||_2; ``loss()`` computes L on the batch."""
    _backward(model, loss())
    return float(sum(float(w.grad.norm()) for w in scored_weights(model) if w.grad is not None))


def snip(model: nn.Module, loss: Callable[[], torch.Tensor]) -> float:
    """Sum over scored weights of |W * dL/dW|."""
    _backward(model, loss())
    return float(sum(float((w.detach() * w.grad).abs().sum()) for w in scored_weights(model) if w.grad is not None))


def synflow(model: nn.Module, inputs: Inputs) -> float:
    """Sum over scored weights of |W * dR/dW| with |parameters|, float64, R = sum f(ones)."""
    x, forward = inputs
    model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    ones = torch.ones_like(x[:1], dtype=torch.float64)
    _backward(model, forward(ones).sum())
    return float(sum(float((w.detach() * w.grad).abs().sum()) for w in scored_weights(model) if w.grad is not None))


def jacov(model: nn.Module, inputs: Inputs) -> float:
    """-sum(log(v + k) + 1/(v + k)) over the eigenvalues v of the correlation of the
    per-example input Jacobians."""
    x, forward = inputs
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    y = forward(x)
    y.backward(torch.ones_like(y))
    assert x.grad is not None
    return jacov_score(x.grad.reshape(len(x), -1).double().cpu().numpy())


def jacov_score(jacobians: np.ndarray) -> float:
    """The score of per-example Jacobians [N, D] (see the module docstring)."""
    centred = jacobians - jacobians.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=1))
    safe = np.where(norms > 0, norms, 1.0)
    unit = centred / safe[:, None]
    corr = unit @ unit.T
    corr[norms == 0, :] = 0.0
    corr[:, norms == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    v = np.clip(np.linalg.eigvalsh(corr), 0.0, None)  # C is positive semi-definite: rounding may dip below 0
    return float(-np.sum(np.log(v + JACOV_K) + 1.0 / (v + JACOV_K)))
