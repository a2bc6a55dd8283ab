"""BatchIterator: seeded epochs, exact resume, rank sharding."""

from __future__ import annotations

import pytest
import torch

from nasplug.errors import NasplugError
from nasplug.oneshot.batches import BatchIterator

ROWS = torch.arange(50, dtype=torch.int32).unsqueeze(1).repeat(1, 4)  # row i is all i


def _ids(batch: torch.Tensor) -> list[int]:
    return batch[:, 0].tolist()


def test_epochs_are_seeded_permutations() -> None:
    it = BatchIterator(ROWS, batch_size=8, seed=0)
    assert len(it) == 6  # 50 // 8; the last 2 rows of each epoch's order are dropped
    epoch0 = [i for _ in range(6) for i in _ids(next(it))]
    epoch1 = [i for _ in range(6) for i in _ids(next(it))]
    assert len(set(epoch0)) == 48 and len(set(epoch1)) == 48 and epoch0 != epoch1
    assert it.epoch == 1
    same = BatchIterator(ROWS, batch_size=8, seed=0)
    assert [i for _ in range(6) for i in _ids(next(same))] == epoch0
    other = BatchIterator(ROWS, batch_size=8, seed=1)
    assert [i for _ in range(6) for i in _ids(next(other))] != epoch0
    assert next(same).dtype == torch.int64


def test_state_round_trip_resumes_exactly() -> None:
    it = BatchIterator(ROWS, batch_size=8, seed=3)
    for _ in range(10):  # into the second epoch
        next(it)
    state = it.state_dict()
    expected = [_ids(next(it)) for _ in range(8)]  # crosses into the third epoch
    resumed = BatchIterator(ROWS, batch_size=8, seed=3)
    resumed.load_state_dict(state)
    assert [_ids(next(resumed)) for _ in range(8)] == expected
    # resuming exactly at an epoch end continues with the next epoch's first batch
    end = BatchIterator(ROWS, batch_size=8, seed=3)
    for _ in range(6):
        next(end)
    again = BatchIterator(ROWS, batch_size=8, seed=3)
    again.load_state_dict(end.state_dict())
    assert _ids(next(again)) == _ids(next(end))
    with pytest.raises(NasplugError, match="seed"):
        BatchIterator(ROWS, batch_size=8, seed=4).load_state_dict(state)
    with pytest.raises(NasplugError, match="num_rows"):
        BatchIterator(ROWS[:40], batch_size=8, seed=3).load_state_dict(state)


def test_ranks_cover_the_global_batch() -> None:
    single = BatchIterator(ROWS, batch_size=12, seed=9)
    ranks = [BatchIterator(ROWS, batch_size=12, seed=9, rank=r, world=3) for r in range(3)]
    for _ in range(7):  # more than one epoch
        parts = [next(r) for r in ranks]
        assert all(len(p) == 4 for p in parts)
        assert torch.equal(torch.cat(parts), next(single))
    # a run saved with 3 ranks can resume on 1 and see the same global batches
    one = BatchIterator(ROWS, batch_size=12, seed=9)
    one.load_state_dict(ranks[0].state_dict())
    assert torch.equal(next(one), next(single))


def test_bad_arguments() -> None:
    with pytest.raises(NasplugError, match="batch_size"):
        BatchIterator(ROWS, batch_size=10, seed=0, rank=0, world=3)
    with pytest.raises(NasplugError, match="rank"):
        BatchIterator(ROWS, batch_size=8, seed=0, rank=2, world=2)
    with pytest.raises(NasplugError, match="larger than"):
        BatchIterator(ROWS[:4], batch_size=8, seed=0)
