"""The official optimiser (BERT/ELECTRA AdamWeightDecay, no bias correction) and its schedule
(warm-up multiplying the linear decay), against hand-computed updates."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from train_helpers import read_metrics, tiny_cfg, tiny_space, tiny_supernet, tiny_task

from nasplug.oneshot.config import TrainConfig
from nasplug.oneshot.optim import AdamWeightDecay, lr_factor, make_optimizer


def hand_adam_weight_decay(p: float, grads: list[float], lr: float, wd: float, b1: float = 0.9, b2: float = 0.999,
                           eps: float = 1e-6) -> list[float]:
    """BERT optimization.py, written out for one scalar."""
    m = v = 0.0
    out = []
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        update = m / (math.sqrt(v) + eps) + wd * p
        p = p - lr * update
        out.append(p)
    return out


def run(opt_cls, params: list[nn.Parameter], grads: list[list[float]], **kw) -> list[list[float]]:
    opt = opt_cls(params, **kw)
    seen = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        seen.append([float(p.detach()) for p in params])
    return seen


def test_first_steps_match_a_hand_computed_adam_weight_decay_update():
    grads = [0.5, -0.2, 0.3, 0.1]
    p = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    got = run(AdamWeightDecay, [p], [[g] for g in grads], lr=0.1, weight_decay=0.01)
    want = hand_adam_weight_decay(1.0, grads, lr=0.1, wd=0.01)
    assert [x[0] for x in got] == pytest.approx(want, rel=1e-12, abs=1e-12)
    # the first update is m / sqrt(v) = 0.1 g / (0.0316 |g|) = 3.16: bias-corrected Adam gives 1.0
    assert 1.0 - got[0][0] == pytest.approx(0.1 * (0.05 / (math.sqrt(0.00025) + 1e-6) + 0.01), rel=1e-9)
    q = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    adamw = run(torch.optim.AdamW, [q], [[g] for g in grads], lr=0.1, weight_decay=0.01, eps=1e-6)
    assert abs(adamw[0][0] - got[0][0]) > 0.1  # torch AdamW is not the official update


def test_make_optimizer_decays_matrices_only_and_keeps_adamw_the_default():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    official = make_optimizer(model, TrainConfig(optimizer="official", lr=1e-3, weight_decay=0.01))
    assert isinstance(official, AdamWeightDecay)
    decays = {tuple(p.shape): g["weight_decay"] for g in official.param_groups for p in g["params"]}
    assert decays == {(4, 3): 0.01, (4,): 0.0}
    assert isinstance(make_optimizer(model, TrainConfig()), torch.optim.AdamW)


def test_official_schedule_multiplies_warm_up_and_linear_decay():
    total, warmup = 100, 10
    assert lr_factor(0, warmup, total, "official") == 0.0
    assert lr_factor(5, warmup, total, "official") == pytest.approx(0.5 * 0.95)
    assert lr_factor(10, warmup, total, "official") == pytest.approx(0.9)
    assert lr_factor(55, warmup, total, "official") == pytest.approx(0.45)
    assert lr_factor(100, warmup, total, "official") == 0.0
    assert lr_factor(10, warmup, total) == 1.0  # adamw: warm-up then decay, unchanged
    assert lr_factor(3, 0, total, "official") == pytest.approx(0.97)


def test_training_loop_uses_the_official_optimizer_and_schedule(tmp_path):
    space = tiny_space(slots=2)
    model = tiny_supernet(space)
    cfg = tiny_cfg(steps=4, warmup_steps=2, optimizer="official", lr=1e-2)
    from nasplug.oneshot.train import train

    train(model, tiny_task(), cfg, tmp_path, space=space, progress=False)
    lrs = [r["lr"] for r in read_metrics(tmp_path) if "lr" in r]
    assert lrs == pytest.approx([1e-2 * lr_factor(s, 2, 4, "official") for s in range(4)])
    assert lrs[0] == 0.0  # the official schedule's first step has rate 0 (global_step 0)


def test_adamw_takes_torchs_fused_kernel_on_cpu_and_updates_as_the_per_tensor_loop():
    model = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 3))
    reference = [p.detach().clone().requires_grad_() for p in model.parameters()]
    cfg = TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=0.01, eps=1e-6)
    opt = make_optimizer(model, cfg)
    plain = torch.optim.AdamW([{"params": [q for q in reference if q.ndim >= 2], "weight_decay": 0.01},
                               {"params": [q for q in reference if q.ndim < 2], "weight_decay": 0.0}],
                              lr=1e-2, betas=tuple(cfg.betas), eps=1e-6, fused=False)
    assert opt.defaults["fused"] is True
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        grads = [torch.randn(p.shape, generator=gen) for p in reference]
        for p, q, g in zip(model.parameters(), reference, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        plain.step()
    for p, q in zip(model.parameters(), reference):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
