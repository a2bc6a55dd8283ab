"""Masking (BERT's and the official ELECTRA one), fixed held-out masks, the unigram baseline.

Two maskings, chosen by the text task's ``masking`` setting:

* ``bert`` (:func:`mask_tokens`): every maskable position is picked with probability
  ``prob``; of the picked ones 80% become [MASK], 10% a random token, 10% stay (BERT).
* ``electra`` (:func:`mask_electra`, ELECTRA's ``pretrain_helpers.mask``, used by LV-BERT):
  per row exactly ``k = max(1, min(N, round(prob * n)))`` positions drawn **with
  replacement** among the real tokens other than [CLS] / [SEP] / [MASK] (``n`` real tokens,
  ``N = int((prob + 0.005) * L)`` = 19 at L = 128); each draw becomes [MASK] with
  probability 0.85 and keeps its token otherwise (no random tokens: the generator replaces).

The training loop masks every batch afresh. ``fixed_heldout_batches`` is called once per
run: the held-out rows are masked once with a fixed generator (and the task's masking) so
every candidate architecture is evaluated on identical inputs. ``unigram_baseline`` gives the
accuracy of always predicting the most frequent token, the floor any model must beat.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import torch

from nasplug.errors import NasplugError
from nasplug.text.tokenizer import TokenInfo

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of unmasked positions: ignored by cross_entropy and accuracy


class MaskedBatch(NamedTuple):
    """A masked batch: the model reads ``input_ids`` and predicts ``labels``.

    Attributes:
        input_ids: int64 [B, L] with masked positions replaced.
        labels: int64 [B, L]: the original id at masked positions, -100 elsewhere.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor


class SegmentedBatch(NamedTuple):
    """A masked held-out batch of two-segment rows: :class:`MaskedBatch` + segment ids.

    Attributes:
        input_ids, labels: as in :class:`MaskedBatch`.
        token_type_ids: int64 [B, L] segment ids (0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``).
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    token_type_ids: torch.Tensor


@functools.lru_cache(maxsize=8)
def _maskable_ids(tokens: TokenInfo) -> torch.Tensor:
    """Ids that may be masked or drawn as random replacements: all but the special ones (CPU)."""
    keep = torch.ones(tokens.vocab_size, dtype=torch.bool)
    keep[list(tokens.special_ids)] = False
    return keep.nonzero().squeeze(1)


def mask_tokens(
    input_ids: torch.Tensor,
    tokens: TokenInfo,
    generator: torch.Generator,
    prob: float = 0.15,
    mask_fraction: float = 0.8,
    random_fraction: float = 0.1,
) -> MaskedBatch:
    """BERT MLM masking: pick ``prob`` of the non-special positions, then 80/10/10.

    Of the picked positions ``mask_fraction`` become [MASK], ``random_fraction`` a random
    non-special token, the rest keep their token. Special tokens ([CLS], [SEP], [PAD],
    [UNK], [MASK]) are never picked. Random numbers are drawn on ``generator.device``
    (a CPU generator gives the same masks whatever device ``input_ids`` is on) and only
    from ``generator``, so the same generator state gives the same masks.

    Args:
        input_ids: int [B, L] packed rows (not modified).
        tokens: special ids and vocabulary size (``PackedData.tokens``).
        generator: the only source of randomness.
        prob: fraction of maskable positions picked (BERT: 0.15).
        mask_fraction, random_fraction: split of the picked positions (BERT: 0.8, 0.1).

    Returns:
        ``MaskedBatch(input_ids, labels)``, both int64 on ``input_ids.device``.
    """
    if not 0.0 < prob <= 1.0:
        raise NasplugError(f"mask_prob: {prob} must be in (0, 1]")
    if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
        raise NasplugError("masking: mask_fraction and random_fraction must be >= 0 and sum to at most 1")
    ids = input_ids.long()
    dev, gdev = ids.device, generator.device
    maskable = _maskable_ids(tokens)
    # One draw per position for "picked" and one for "how replaced", then the random tokens.
    picked_u = torch.rand(ids.shape, generator=generator, device=gdev).to(dev)
    how_u = torch.rand(ids.shape, generator=generator, device=gdev).to(dev)
    random_ids = maskable[torch.randint(len(maskable), ids.shape, generator=generator, device=gdev).cpu()].to(dev)
    special = torch.isin(ids, torch.tensor(tokens.special_ids, device=dev))
    picked = (picked_u < prob) & ~special
    labels = torch.where(picked, ids, torch.full_like(ids, IGNORE_INDEX))
    out = ids.clone()
    out[picked & (how_u < mask_fraction)] = tokens.mask_id
    rand = picked & (how_u >= mask_fraction) & (how_u < mask_fraction + random_fraction)
    out[rand] = random_ids[rand]
    return MaskedBatch(out, labels)


def max_predictions(prob: float, seq_len: int) -> int:
    """ELECTRA's cap on masked positions per row: ``int((prob + 0.005) * seq_len)`` (19 at
    prob 0.15 and length 128), at least 1."""
    return max(1, int((prob + 0.005) * seq_len))


def electra_draws(
    input_ids: torch.Tensor,
    tokens: TokenInfo,
    generator: torch.Generator,
    prob: float = 0.15,
    max_preds: int | None = None,
    mask_fraction: float = 0.85,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The draws of ELECTRA's masking (see the module docstring), on the CPU.

    Returns:
        ``(positions, used, to_mask)``, each [B, N] with N the cap: the drawn positions
        (with replacement), whether draw j counts (``j < k`` of its row), and whether it
        puts [MASK] there (probability ``mask_fraction``).
    """
    ids = input_ids.long().cpu()
    b, length = ids.shape
    cap = max_preds if max_preds is not None else max_predictions(prob, length)
    real = ids != tokens.pad_id
    ignore = torch.tensor([tokens.cls_id, tokens.sep_id, tokens.mask_id])
    candidates = real & ~torch.isin(ids, ignore)  # [B, L]
    # k per row; TF's round and torch.round both round half to even.
    k = torch.round(real.sum(1).double() * prob).long().clamp(1, cap)  # [B]
    empty = ~candidates.any(1)
    weights = candidates.double()
    weights[empty, 0] = 1.0  # a row without candidates draws nothing (see ``used``)
    positions = torch.multinomial(weights, cap, replacement=True, generator=generator)  # [B, N]
    used = (torch.arange(cap)[None, :] < k[:, None]) & ~empty[:, None]
    to_mask = torch.rand((b, cap), generator=generator) < mask_fraction
    return positions, used, to_mask


def mask_electra(
    input_ids: torch.Tensor,
    tokens: TokenInfo,
    generator: torch.Generator,
    prob: float = 0.15,
    max_preds: int | None = None,
    mask_fraction: float = 0.85,
) -> MaskedBatch:
    """ELECTRA / LV-BERT masking of a batch (official ``pretrain_helpers.mask``).

    Labels mark every drawn position once: a position drawn twice is predicted once (the
    official loss counts it twice; at length 128 about 7% of the draws are repeats). It is
    [MASK]ed when any of its draws says so, as the official ``scatter_update`` does.

    Args:
        input_ids: int [B, L] packed rows (not modified).
        tokens: special ids.
        generator: a CPU generator, the only source of randomness.
        prob: masking rate (0.15).
        max_preds: the cap N (None: ``int((prob + 0.005) * L)``).
        mask_fraction: share of draws that become [MASK] (0.85).
    """
    if not 0.0 < prob <= 1.0:
        raise NasplugError(f"mask_prob: {prob} must be in (0, 1]")
    ids = input_ids.long()
    positions, used, to_mask = electra_draws(ids, tokens, generator, prob, max_preds, mask_fraction)
    rows = torch.arange(len(ids))[:, None].expand_as(positions)
    cpu = ids.cpu()
    labels = torch.full_like(cpu, IGNORE_INDEX)
    labels[rows[used], positions[used]] = cpu[rows[used], positions[used]]
    out = cpu.clone()
    hit = used & to_mask
    out[rows[hit], positions[hit]] = tokens.mask_id
    return MaskedBatch(out.to(ids.device), labels.to(ids.device))


def fixed_heldout_batches(
    heldout: torch.Tensor,
    tokens: TokenInfo,
    batch_size: int,
    seed: int,
    num_batches: int | None = None,
    prob: float = 0.15,
    *,
    segments: torch.Tensor | None = None,
    mask: Callable[[torch.Tensor, torch.Generator], MaskedBatch] | None = None,
) -> list[MaskedBatch] | list[SegmentedBatch]:
    """Mask held-out rows once, with a fixed generator: identical inputs for every candidate.

    Called once per run (or per search); the evaluator scores every architecture on the
    returned list. Rows are taken in order; the last batch may be smaller. Same arguments,
    same masks and replacements, on every call and machine.

    Args:
        heldout: rows [N, L] (``PackedData.heldout``).
        tokens: special ids and vocabulary size.
        batch_size: rows per batch.
        seed: seeds a private CPU ``torch.Generator``.
        num_batches: how many batches (None: all rows); capped, with a warning, at what
            the held-out set holds.
        prob: masking probability (BERT masking, when ``mask`` is None).
        segments: segment ids [N, L] of the rows; given, the batches are
            :class:`SegmentedBatch` (None: :class:`MaskedBatch`, one segment).
        mask: ``(rows, generator) -> MaskedBatch``, the task's masking (None: BERT's
            :func:`mask_tokens` at ``prob``); the same as in training.
    """
    if batch_size < 1:
        raise NasplugError(f"batch_size: {batch_size} must be positive")
    if len(heldout) == 0:
        raise NasplugError("corpus.heldout_fraction: the held-out set is empty; raise heldout_fraction")
    available = -(-len(heldout) // batch_size)
    if num_batches is not None and num_batches > available:
        log.warning("only %d held-out batches of %d rows exist; %d were asked for", available, batch_size, num_batches)
    n = available if num_batches is None else min(num_batches, available)
    gen = torch.Generator().manual_seed(seed)
    masker = mask or (lambda rows, g: mask_tokens(rows, tokens, g, prob))
    out: list[Any] = []
    for i in range(n):
        rows = slice(i * batch_size, (i + 1) * batch_size)
        batch = masker(heldout[rows], gen)
        out.append(batch if segments is None else SegmentedBatch(batch.input_ids, batch.labels, segments[rows].long()))
    return out


def unigram_baseline(
    train: torch.Tensor, heldout: torch.Tensor | Iterable[MaskedBatch], tokens: TokenInfo
) -> float:
    """MLM accuracy of always predicting the most frequent non-special train token.

    Args:
        train: training rows [N, L]: the token counts come from here.
        heldout: pre-masked batches (accuracy over their masked positions, the exact inputs
            the models see), or raw rows [M, L] (accuracy over all non-special positions:
            the expected value over random masks).
        tokens: special ids and vocabulary size.
    """
    counts = torch.bincount(train.reshape(-1).long(), minlength=tokens.vocab_size)
    counts[list(tokens.special_ids)] = 0
    top = int(counts.argmax())
    if isinstance(heldout, torch.Tensor):
        flat = heldout.reshape(-1).long()
        targets = flat[~torch.isin(flat, torch.tensor(tokens.special_ids))]
    else:
        labels = torch.cat([b.labels.reshape(-1) for b in heldout])
        targets = labels[labels != IGNORE_INDEX]
    if len(targets) == 0:
        raise NasplugError("corpus.heldout_fraction: the held-out set has no maskable tokens")
    return float((targets == top).float().mean())
