"""Deterministic, resumable, rank-sharded batches over packed rows.

The training loop creates one ``BatchIterator`` per run and calls ``next()`` once per step;
it saves ``state_dict()`` with each checkpoint and calls ``load_state_dict()`` on resume, so
the resumed run sees exactly the batch the interrupted one would have seen next.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nasplug.errors import NasplugError


class BatchIterator:
    """Infinite iterator of row batches, reshuffled every epoch from ``seed``.

    Each epoch is a seeded permutation of the rows (``numpy.random.default_rng([seed,
    epoch])``), cut into ``len(self)`` global batches of ``batch_size`` rows; the last
    incomplete batch of an epoch is dropped so every step has the same shape. Under DDP
    every rank builds the same iterator with its own ``rank``: rank r gets rows
    ``[r * b, (r + 1) * b)`` of each global batch, ``b = batch_size // world``, so the
    ranks together cover the global batch exactly once. The position is global, so a run
    may resume with a different ``world`` and still see the same global batches.

    Args:
        data: rows [N, L] (e.g. ``PackedData.train``), returned as int64; or a tuple of
            tensors with N rows each (a task's split), returned as a tuple of their rows.
        batch_size: global batch size (all ranks together); a multiple of ``world``.
        seed: shuffling seed.
        rank, world: this process's rank and the number of ranks.
    """

    def __init__(self, data: torch.Tensor | tuple[torch.Tensor, ...], batch_size: int, seed: int, rank: int = 0,
                 world: int = 1) -> None:
        if world < 1 or not 0 <= rank < world:
            raise NasplugError(f"batches: rank {rank} is not in 0..{world - 1} (world {world})")
        if batch_size < 1 or batch_size % world:
            raise NasplugError(f"batch_size: {batch_size} must be a positive multiple of the world size {world}")
        self.data = data
        if self.num_rows < batch_size:
            raise NasplugError(f"batch_size: {batch_size} is larger than the {self.num_rows} rows of data")
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.index = 0  # batches already returned in this epoch
        self._order_epoch = -1
        self._order = np.empty(0, dtype=np.int64)

    @property
    def num_rows(self) -> int:
        return len(self.data[0]) if isinstance(self.data, tuple) else len(self.data)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.num_rows // self.batch_size

    def __iter__(self) -> BatchIterator:
        return self

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            self._order = np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)
            self._order_epoch = epoch
        return self._order

    def global_indices(self) -> np.ndarray:
        """Row indices of the next global batch (all ranks), without advancing."""
        epoch, index = (self.epoch + 1, 0) if self.index >= len(self) else (self.epoch, self.index)
        return self._permutation(epoch)[index * self.batch_size : (index + 1) * self.batch_size]

    def __next__(self) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """This rank's share of the next global batch: int64 [batch_size // world, L] (or a
        tuple of each tensor's rows)."""
        rows = self.global_indices()
        if self.index >= len(self):
            self.epoch, self.index = self.epoch + 1, 0
        self.index += 1
        per_rank = self.batch_size // self.world
        mine = rows[self.rank * per_rank : (self.rank + 1) * per_rank]
        index = torch.from_numpy(mine)
        if isinstance(self.data, tuple):
            return tuple(t[index] for t in self.data)
        return self.data[index].long()

    def state_dict(self) -> dict[str, Any]:
        """The position (plain ints): saved with each checkpoint."""
        return {"epoch": self.epoch, "index": self.index, "seed": self.seed,
                "batch_size": self.batch_size, "num_rows": self.num_rows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; NasplugError if it was saved for other data."""
        for key, mine in (("seed", self.seed), ("batch_size", self.batch_size), ("num_rows", self.num_rows)):
            if state.get(key) != mine:
                raise NasplugError(
                    f"batches: the saved state has {key}={state.get(key)!r} but this run has {mine!r}; "
                    "resume with the same data, batch size and seed"
                )
        self.epoch, self.index = int(state["epoch"]), int(state["index"])
