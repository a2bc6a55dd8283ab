"""Sharded candidate evaluation under torch.distributed (torchrun).

Rank 0 runs the strategy and writes the log; for each batch it broadcasts the archs to
evaluate, every rank scores a contiguous slice (sorted by arch key, so neighbours share
prefixes), and the results are gathered back on every rank. Workers (rank > 0) sit in
:func:`serve` until rank 0 broadcasts the stop signal. Evaluation is per-arch
deterministic, so the log is the same as with one process.

torch is imported only when a process group is live: plain searches stay torch-free.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.evaluate import Evaluator, evaluate_batch

#: What an evaluation yields here: metrics, or a one-line failure reason (picklable).
Outcome = "dict[str, float] | str"


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) when no process group is initialised."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 0, 1
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def evaluate_local(evaluator: Evaluator, archs: Sequence[Arch]) -> list[Any]:
    """Evaluate in this process; failures become ``"Type: message"`` strings."""
    return [o if isinstance(o, dict) else f"{type(o).__name__}: {o}" for o in evaluate_batch(evaluator, archs)]


def _shard(archs: Sequence[Arch], rank: int, size: int) -> list[Arch]:
    ordered = sorted(archs, key=arch_key)
    per = -(-len(ordered) // size)
    return ordered[rank * per:(rank + 1) * per]


def _broadcast(obj: Any) -> Any:
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _gather_shards(evaluator: Evaluator, archs: Sequence[Arch], rank: int, size: int) -> dict[str, Any]:
    import torch.distributed as dist

    mine = _shard(archs, rank, size)
    results = dict(zip((arch_key(a) for a in mine), evaluate_local(evaluator, mine)))
    gathered: list[Any] = [None] * size
    dist.all_gather_object(gathered, results)
    merged: dict[str, Any] = {}
    for part in gathered:
        merged.update(part)
    return merged


def sharded_evaluator(evaluator: Evaluator) -> Callable[[Sequence[Arch]], list[Any]]:
    """For rank 0: ``archs -> outcomes`` that spreads the work over all ranks."""
    rank, size = world()
    if size == 1:
        return lambda archs: evaluate_local(evaluator, archs)

    def run(archs: Sequence[Arch]) -> list[Any]:
        _broadcast(list(archs))
        merged = _gather_shards(evaluator, archs, rank, size)
        return [merged[arch_key(a)] for a in archs]

    return run


def serve(evaluator: Evaluator) -> None:
    """For ranks > 0: evaluate shards until rank 0 says stop (broadcasts None)."""
    rank, size = world()
    while True:
        archs = _broadcast(None)
        if archs is None:
            return
        _gather_shards(evaluator, archs, rank, size)


def stop_workers() -> None:
    """Rank 0: release the workers (call once, also when the search fails)."""
    if world()[1] > 1:
        _broadcast(None)


def share_result(obj: Any) -> Any:
    """Give every rank rank 0's copy of ``obj`` (e.g. the final trials)."""
    return _broadcast(obj) if world()[1] > 1 else obj
