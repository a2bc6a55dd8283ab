"""Dropout with cheap masks, and attention whose dropout uses them.

``torch.nn.Dropout`` on CPU draws one Bernoulli sample per element (``bernoulli_``, about
7-15 ns each): in a small encoder's train step that was 12% of the time, more than the
attention products. Here one 64-bit draw of torch's generator (``random_`` over all int64
values, a few ns) gives four 16-bit uniforms, and an element is kept when its uniform clears a
threshold: the drop probability is ``p`` rounded to a multiple of 1/65536 (0.1 becomes
0.1000061). The kept elements are scaled by ``1 / (1 - p)`` as usual. Masks come from the
global torch generator, as ``nn.Dropout``'s do, so a seeded run is reproducible bit for bit.

:func:`attention` is ``softmax(q k^T / sqrt(d) + mask) v``: in fp32 without dropout
``scaled_dot_product_attention``'s fused kernel; on the CPU in training with dropout the same
products written out, because SDPA then takes its math path, which computes in fp32 under
bf16 autocast and draws its mask element by element; on the CPU in bf16 without dropout (a
bf16 evaluation) written out too, because SDPA's fused CPU kernel is slower there than two
bf16 batched products (6.2 ms against 4.7 ms for 16 x 4 heads x 128 x 64; 1.9-2.0 against
1.4 at the demo's sizes; in fp32 the fused kernel wins, 5.8 against 9.2). On a GPU, and
inside ``torch.compile``, both are torch's own (fused kernels draw their masks there).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | None = None) -> torch.Tensor:
    """Bool mask of ``shape``: True with probability ``1 - p`` (p rounded to 1/65536).

    Each int64 from ``random_(-2**63, None)`` (uniform over all 64-bit values) is four
    uniform 16-bit lanes; a lane below the threshold drops its element.
    """
    n, threshold = math.prod(shape), round(p * 65536) - 32768  # P(lane < threshold) = p
    if threshold > 32767:  # p rounds to 1 (and 32768 would wrap around as an int16)
        return torch.zeros(shape, dtype=torch.bool, device=device)
    draws = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    lanes = draws.view(torch.int16)
    if lanes.device.type == "cpu" and not torch.compiler.is_compiling():
        # numpy's int16 comparison is vectorised, torch's CPU one is not: 0.08 against 1.3 ms for 2M lanes
        return torch.from_numpy(np.greater_equal(lanes.numpy(), threshold))[:n].view(shape)
    return (lanes >= threshold)[:n].view(shape)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout`` with :func:`keep_mask` (identity when not training or ``p == 0``)."""
    if not training or p == 0:
        return x
    if p >= 1 or not _cheap(x):
        return F.dropout(x, p, training)
    return _KeepAndScale.apply(x, keep_mask(x.shape, p, x.device).view(torch.uint8), 1.0 / (1.0 - p))


def _keep_and_scale(x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
    """``x * keep * scale`` for a 0/1 uint8 ``keep``, each value rounded once.

    A bool operand is converted element by element inside the product, about 7x the product
    itself on CPU (2.5 against 0.36 ms for 2M bf16 values); uint8 -> x.dtype is one fast
    vectorised pass, and x * keep is exact. fp32 folds the scale into the mask (one pass over
    x); other dtypes take two passes (a bf16 mask holding the scale would round 1/0.9 to 1.109).
    """
    mask = keep.to(x.dtype)
    if x.dtype == torch.float32:
        return x.mul(mask.mul_(scale))
    return x.mul(mask).mul_(scale)


class _KeepAndScale(torch.autograd.Function):
    """:func:`_keep_and_scale` whose backward (the same map on the gradient) keeps the one-byte
    mask, not one in x's dtype: in fp32 that is 4x less memory held until the backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return _keep_and_scale(x, keep, scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return _keep_and_scale(grad, keep, ctx.scale), None, None


def _cheap(x: torch.Tensor) -> bool:
    """Whether the written-out path pays: eager CPU. GPUs draw masks in fused kernels (SDPA's
    included), and a compiled graph generates its own (``random_`` would break the graph)."""
    return x.device.type == "cpu" and not torch.compiler.is_compiling()


class Dropout(nn.Module):
    """Drop-in ``nn.Dropout`` (same argument, no state) drawing :func:`keep_mask` masks."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None = None,
              dropout_p: float = 0.0) -> torch.Tensor:
    """Multi-head attention of ``q, k, v`` [B, N, T, D]; ``key_mask`` bool [B, 1, 1, T] (True:
    attend), ``dropout_p`` on the attention weights (pass 0 in eval mode)."""
    if not _cheap(q) or (dropout_p == 0 and q.dtype == torch.float32):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)
    scores = torch.matmul(q, k.transpose(-1, -2)).mul_(1.0 / math.sqrt(q.shape[-1]))  # [B, N, T, T]
    if key_mask is not None:  # as an additive bias: masked_fill with a broadcast bool mask is 3-9x slower on CPU
        scores = scores.add_(torch.zeros(key_mask.shape, dtype=scores.dtype, device=scores.device)
                             .masked_fill_(~key_mask, float("-inf")))
    weights = dropout(torch.softmax(scores, dim=-1), dropout_p)
    return torch.matmul(weights, v)  # [B, N, T, D]
