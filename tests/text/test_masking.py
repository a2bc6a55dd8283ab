"""MLM masking statistics, fixed held-out masks, the unigram baseline."""

from __future__ import annotations

import pytest
import torch

from nasplug.errors import NasplugError
from nasplug.text.masking import (
    IGNORE_INDEX,
    MaskedBatch,
    fixed_heldout_batches,
    mask_tokens,
    unigram_baseline,
)
from nasplug.text.tokenizer import TokenInfo

INFO = TokenInfo(vocab_size=50, pad_id=0, cls_id=2, sep_id=3, mask_id=4, unk_id=1, special_ids=(0, 1, 2, 3, 4))
SPECIAL = torch.tensor(INFO.special_ids)


def _rows(n: int, length: int, seed: int = 0) -> torch.Tensor:
    """Rows like packed ones: [CLS] tokens... [SEP], some padded, a few [UNK]s inside."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(5, INFO.vocab_size, (n, length), generator=g, dtype=torch.int32)
    rows[:, 0], rows[:, -1] = INFO.cls_id, INFO.sep_id
    rows[::4, length // 2 :] = INFO.pad_id
    rows[1::7, 3] = INFO.unk_id
    return rows


def test_masking_statistics() -> None:
    ids = _rows(400, 128)
    out, labels = mask_tokens(ids, INFO, torch.Generator().manual_seed(1))
    assert out.dtype == labels.dtype == torch.int64 and out.shape == labels.shape == ids.shape
    special = torch.isin(ids, SPECIAL)
    picked = labels != IGNORE_INDEX
    assert not (picked & special).any(), "special tokens and padding are never masked"
    assert torch.equal(out[~picked], ids.long()[~picked]), "unpicked positions are untouched"
    assert torch.equal(labels[picked], ids.long()[picked])
    assert abs(picked.sum().item() / (~special).sum().item() - 0.15) < 0.005
    n = picked.sum().item()
    as_mask = (out[picked] == INFO.mask_id).sum().item() / n
    kept = (out[picked] == ids.long()[picked]).sum().item() / n
    replaced = picked & (out != INFO.mask_id) & (out != ids.long())
    assert abs(as_mask - 0.8) < 0.015
    assert abs(replaced.sum().item() / n - 0.1 * 44 / 45) < 0.012  # a random draw is the original 1 time in 45
    assert abs(kept - (0.1 + 0.1 / 45)) < 0.012
    assert not torch.isin(out[replaced], SPECIAL).any(), "random replacements are ordinary tokens"


def test_masking_uses_only_the_generator() -> None:
    ids = _rows(8, 32)
    a = mask_tokens(ids, INFO, torch.Generator().manual_seed(5))
    b = mask_tokens(ids, INFO, torch.Generator().manual_seed(5))
    c = mask_tokens(ids, INFO, torch.Generator().manual_seed(6))
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)
    with pytest.raises(NasplugError, match="mask_prob"):
        mask_tokens(ids, INFO, torch.Generator(), prob=0.0)


def test_fixed_heldout_batches_are_identical_across_calls() -> None:
    held = _rows(50, 16, seed=3)
    torch.manual_seed(123)  # the global RNG must not matter
    a = fixed_heldout_batches(held, INFO, batch_size=16, seed=7)
    torch.manual_seed(456)
    b = fixed_heldout_batches(held, INFO, batch_size=16, seed=7)
    assert [len(x.input_ids) for x in a] == [16, 16, 16, 2]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.input_ids, y.input_ids) and torch.equal(x.labels, y.labels)
    assert torch.equal(torch.cat([x.labels for x in a]) != IGNORE_INDEX,
                       torch.cat([x.labels for x in b]) != IGNORE_INDEX)
    c = fixed_heldout_batches(held, INFO, batch_size=16, seed=8, num_batches=2)
    assert len(c) == 2 and not torch.equal(c[0].labels, a[0].labels)
    assert len(fixed_heldout_batches(held, INFO, batch_size=16, seed=7, num_batches=99)) == 4
    with pytest.raises(NasplugError, match="held-out set is empty"):
        fixed_heldout_batches(held[:0], INFO, batch_size=16, seed=7)


def test_unigram_baseline() -> None:
    train = torch.tensor([[2, 9, 9, 9, 7, 3], [2, 9, 7, 0, 0, 0]])  # 9 is the most frequent word
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 1], labels[0, 2], labels[1, 3], labels[1, 4] = 9, 8, 9, 7
    batch = MaskedBatch(torch.zeros(2, 6, dtype=torch.long), labels)
    assert unigram_baseline(train, [batch], INFO) == pytest.approx(0.5)
    held = torch.tensor([[2, 9, 8, 8, 3, 0]])  # raw rows: over the non-special positions
    assert unigram_baseline(train, held, INFO) == pytest.approx(1 / 3)
    pads = torch.tensor([[2, 0, 0, 0, 0, 0, 0, 9, 3]] * 3)  # special tokens never win
    assert unigram_baseline(pads, held, INFO) == pytest.approx(1 / 3)
