"""Cross-entropy over a wide vocabulary, a block of rows at a time.

``F.cross_entropy`` on [N, V] logits makes about six passes over N x V values in memory: under
bf16 autocast the fp32 copy of the logits, ``log_softmax``, and in the backward a zero-filled
gradient for the NLL, the ``log_softmax`` backward and the copy back to bf16. With an MLM
head's 30,522-word vocabulary those passes took 160-200 ms of a 2.1 s ELECTRA-small train step
on one CPU core (608 masked positions: 18.6 M values).

On the CPU, :func:`cross_entropy` does the same arithmetic on blocks of rows that fit in a
core's L2 cache (:data:`BLOCK_VALUES`): each block is copied to fp32, and its maximum, the
log-sum-exp and, in the backward, the softmax less the one-hot target are computed there (the
exponentials by :func:`nasplug.nn.fastexp.exp_`), so
the logits are read once per pass direction from memory and the gradient written once. The
loss and the gradient are computed in fp32 and the gradient rounded once to the logits' dtype,
as autocast's fp32 cross-entropy does. Elsewhere (GPUs have fused kernels; compiled graphs fuse
it themselves) it is ``F.cross_entropy`` on the logits in fp32 (fp64 ones stay fp64).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from nasplug.nn.fastexp import exp_

BLOCK_VALUES = 1 << 18  # fp32 values per block: 1 MiB
# Smallest logits (N x V values) the block loop takes, by dtype: below, torch's kernels work in
# cache anyway and the loop's per-block calls cost more than they save. Measured on one core
# (fwd + bwd, against autocast's fp32 cross-entropy): bf16 30522 x 608 0.38x the time, 8192 x
# 600 0.83x, 2048 x 1200 1.00x; fp32 30522 x 608 0.66x, 8192 x 600 1.19x, 2048 x 1200 1.22x.
MIN_VALUES = {torch.float32: 1 << 23, torch.float64: 1 << 62}  # fp64: never (the loop computes in fp32)
MIN_VALUES_REDUCED = 1 << 22  # bf16, fp16


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  reduction: Literal["mean", "sum"] = "mean") -> torch.Tensor:
    """Cross-entropy of ``logits`` [N, V] against class indices ``targets`` [N], a 0-dim tensor
    in fp32 (in fp64 for fp64 logits; bf16 and fp16 logits are computed in fp32);
    ``reduction`` "mean" or "sum" over the N rows."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if not _blockwise(logits):
        wide = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
        return F.cross_entropy(wide, targets, reduction=reduction)
    per_row = _BlockwiseCrossEntropy.apply(logits, targets)
    return per_row.sum() if reduction == "sum" else per_row.mean()


def _blockwise(logits: torch.Tensor) -> bool:
    """Eager CPU on [N, V] logits big enough: where the block loop beats torch's kernels."""
    return (logits.device.type == "cpu" and logits.dim() == 2 and not torch.compiler.is_compiling()
            and logits.numel() >= MIN_VALUES.get(logits.dtype, MIN_VALUES_REDUCED))


def _row_blocks(n: int, vocab: int) -> range:
    return range(0, n, max(1, BLOCK_VALUES // max(vocab, 1)))


class _BlockwiseCrossEntropy(torch.autograd.Function):
    """Per-row losses ``logsumexp(x) - x[target]`` [N] in fp32; the backward recomputes the
    softmax block by block from the saved logits and log-sum-exps."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n, vocab = logits.shape
        blocks = _row_blocks(n, vocab)
        lse = torch.empty(n, dtype=torch.float32, device=logits.device)
        buffer = torch.empty(min(blocks.step, n), vocab, dtype=torch.float32, device=logits.device)
        for start in blocks:
            stop = min(start + blocks.step, n)
            block = buffer[: stop - start]
            block.copy_(logits[start:stop])
            top = block.amax(-1, keepdim=True)
            torch.add(exp_(block.sub_(top)).sum(-1).log_(), top.squeeze(1), out=lse[start:stop])
        picked = logits.gather(1, targets[:, None]).squeeze(1).float()
        ctx.save_for_backward(logits, targets, lse)
        return lse - picked

    @staticmethod
    def backward(ctx: Any, grad_rows: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, targets, lse = ctx.saved_tensors
        n, vocab = logits.shape
        blocks = _row_blocks(n, vocab)
        grad = torch.empty_like(logits)
        buffer = torch.empty(min(blocks.step, n), vocab, dtype=torch.float32, device=logits.device)
        grad_rows = grad_rows.float()
        for start in blocks:
            stop = min(start + blocks.step, n)
            block, weight = buffer[: stop - start], grad_rows[start:stop, None]
            block.copy_(logits[start:stop])
            exp_(block.sub_(lse[start:stop, None])).mul_(weight)  # softmax x upstream gradient
            block.scatter_add_(1, targets[start:stop, None], -weight)  # less the one-hot target
            grad[start:stop].copy_(block)  # rounded once to the logits' dtype
        return grad, None
