"""The optimizer, its learning-rate schedule, and how a global batch is split over processes."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Learning-rate multiplier for the optimizer step that follows ``step`` finished steps:
    linear warm-up from 0 over ``warmup`` steps, then linear decay to 0 at ``total``."""
    if step < warmup:
        return step / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def make_optimizer(module: nn.Module, cfg: Any) -> torch.optim.AdamW:
    """AdamW (``cfg.lr``, ``betas``, ``eps``) with ``weight_decay`` on matrices and conv
    kernels only: no decay on biases and normalisation weights, as in BERT / ELECTRA."""
    decay, no_decay = [], []
    for _, param in module.named_parameters():  # shared / tied parameters appear once
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def shard(batch_size: int, rank: int, world: int, grad_accum: int) -> list[slice]:
    """Row slices of the global batch for this rank's ``grad_accum`` micro-batches: rank r
    owns rows ``[r * B / world, (r + 1) * B / world)``, cut into equal consecutive pieces
    (the same rows ``BatchIterator(rank=r, world=world)`` would give)."""
    per_rank = batch_size // world
    size = per_rank // grad_accum
    return [slice(rank * per_rank + i * size, rank * per_rank + (i + 1) * size) for i in range(grad_accum)]


def compile_model(model: nn.Module) -> None:
    """``torch.compile`` in place: a model may say how (``compile_parts()``: e.g. a supernet
    compiles each candidate layer once, since the path changes every step), else whole."""
    parts = getattr(model, "compile_parts", None)
    if parts is not None:
        parts()
    else:
        model.compile()
