"""The official ELECTRA / LV-BERT masking (``masking: electra``) and the task's choice of masking."""

from __future__ import annotations

import pytest
import torch
from train_helpers import TOKENS, tiny_data

from nasplug.text.masking import IGNORE_INDEX, electra_draws, mask_electra, max_predictions
from nasplug.text.tasks import ElectraTask, MLMTask

L = 128


def rows_of_lengths(lengths: list[int], seed: int = 0) -> torch.Tensor:
    """[CLS] tokens [SEP] [PAD]... rows with ``n`` real tokens each (special tokens included)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), L, dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, 1 : n - 1] = 5 + torch.randint(0, 100, (n - 2,), generator=gen)
        ids[r, 0], ids[r, n - 1] = TOKENS.cls_id, TOKENS.sep_id
    return ids


def test_cap_is_electras_max_predictions_per_seq():
    assert max_predictions(0.15, 128) == 19 and max_predictions(0.15, 64) == 9 and max_predictions(0.15, 512) == 79


def test_exactly_min_19_round_015n_draws_with_replacement_85_percent_mask():
    lengths = [3, 7, 10, 30, 40, 64, 100, 127, 128] * 40
    ids = rows_of_lengths(lengths)
    positions, used, to_mask = electra_draws(ids, TOKENS, torch.Generator().manual_seed(0))
    assert positions.shape == (len(lengths), 19)
    expected = torch.tensor([max(1, min(19, round(0.15 * n))) for n in lengths])
    assert torch.equal(used.sum(1), expected)  # exactly k draws per row, capped at 19
    assert int(used.sum(1).max()) == 19 and int(used.sum(1).min()) == 1
    drawn = ids.gather(1, positions)[used]
    assert not torch.isin(drawn, torch.tensor([TOKENS.pad_id, TOKENS.cls_id, TOKENS.sep_id])).any()
    per_row_unique = [len(set(p[u].tolist())) for p, u in zip(positions, used)]
    assert sum(per_row_unique) < int(used.sum())  # with replacement: some positions drawn twice
    frac = to_mask[used].float().mean()
    assert abs(float(frac) - 0.85) < 0.02  # 85% [MASK] / 15% kept


def test_masked_batch_marks_each_drawn_position_and_never_inserts_random_tokens():
    lengths = [20, 60, 128, 90] * 50
    ids = rows_of_lengths(lengths, seed=1)
    out, labels = mask_electra(ids, TOKENS, torch.Generator().manual_seed(2))
    picked = labels != IGNORE_INDEX
    assert torch.equal(labels[picked], ids[picked])
    assert (picked.sum(1) <= 19).all() and (picked.sum(1) >= 1).all()
    changed = out != ids
    assert (out[changed] == TOKENS.mask_id).all() and not (changed & ~picked).any()  # [MASK] or kept, nothing else
    kept = (picked & ~changed).sum() / picked.sum()
    assert 0.1 < float(kept) < 0.2  # ~15% kept (a little less: a position drawn twice is masked if either draw says so)
    a = mask_electra(ids, TOKENS, torch.Generator().manual_seed(2))
    assert torch.equal(a.input_ids, out) and torch.equal(a.labels, labels)


def test_unk_may_be_masked_and_rows_without_candidates_mask_nothing():
    ids = rows_of_lengths([10, 2])
    ids[0, 3] = TOKENS.unk_id  # official candidates exclude only [CLS] [SEP] [MASK] and padding
    counts = torch.zeros(L)
    for seed in range(200):
        _, labels = mask_electra(ids, TOKENS, torch.Generator().manual_seed(seed))
        counts += (labels != IGNORE_INDEX)[0].float()
        assert (labels[1] == IGNORE_INDEX).all()  # [CLS] [SEP] only: nothing to mask
    assert counts[3] > 0


def test_tasks_default_and_explicit_masking_train_and_hold_out_the_same_way():
    data = tiny_data()
    assert MLMTask.from_data(data).masking == "bert" and ElectraTask.from_data(data).masking == "electra"
    electra = ElectraTask.from_data(data)
    cap = max_predictions(0.15, data.seq_len)
    held = electra.heldout_batches(8, seed=0)
    for b in held:  # held-out batches: the training masking (fixed count, 85/15, no random tokens)
        picked = b.labels != IGNORE_INDEX
        assert (picked.sum(1) <= cap).all()
        changed = b.input_ids != torch.where(picked, b.labels, b.input_ids)
        assert (b.input_ids[changed] == TOKENS.mask_id).all()
    micro, counts = electra.micro_batches(data.train[:8].long(), 1, 0, [slice(0, 8)], torch.device("cpu"))
    assert counts["masked"] <= 8 * cap
    bert = MLMTask.from_data(data, masking="electra", max_predictions=2)
    _, counts = bert.micro_batches(data.train[:8].long(), 1, 0, [slice(0, 8)], torch.device("cpu"))
    assert counts["masked"] <= 16


def test_a_bad_masking_name_is_one_line():
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match="masking"):
        MLMTask(masking="random")
