"""BERT masked-language-model masking, fixed held-out masks and the unigram baseline.

``mask_tokens`` is called by the training loop on every batch. ``fixed_heldout_batches`` is
called once per run: the held-out rows are masked once with a fixed generator so every
candidate architecture is evaluated on identical inputs. ``unigram_baseline`` gives the
accuracy of always predicting the most frequent token, the floor any model must beat.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import NamedTuple

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


def fixed_heldout_batches(
    heldout: torch.Tensor,
    tokens: TokenInfo,
    batch_size: int,
    seed: int,
    num_batches: int | None = None,
    prob: float = 0.15,
) -> list[MaskedBatch]:
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
        prob: masking probability.
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
    return [mask_tokens(heldout[i * batch_size : (i + 1) * batch_size], tokens, gen, prob) for i in range(n)]


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
