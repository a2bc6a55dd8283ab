"""Sharded evaluation: a 2-process gloo search writes the same trials.jsonl as 1 process."""

from __future__ import annotations

import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nasplug.oneshot.evaluator import InheritedWeights
from nasplug.search import search
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.strategies.evolution import Evolution
from nasplug.text.masking import MaskedBatch
from nasplug.text.tasks import text_evaluator

TINY = dict(hidden=32, heads=1, ffn=64, embedding=32, vocab_size=61, max_positions=24, slots=4)


def make_search(log_path: str):
    torch.manual_seed(0)
    space = LVBertSpace(**TINY)
    supernet = space.build_supernet(seed=0)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 61, (4, 12), generator=gen)
    picked = torch.rand(ids.shape, generator=gen) < 0.3
    batch = MaskedBatch(torch.where(picked, torch.full_like(ids, 4), ids), torch.where(picked, ids, -100))

    class FailsSometimes(InheritedWeights):  # failures must shard and log the same way too
        def evaluate_batch(self, archs):
            raise RuntimeError("use the one-by-one path")

        def __call__(self, arch):
            if list(arch.values()).count("conv") == 4:
                raise ValueError("all conv is not allowed here")
            return InheritedWeights.evaluate_batch(self, [arch])[0]

    plain = text_evaluator(supernet, [batch], space=space)
    evaluator = FailsSometimes(supernet, plain.task, plain.batches, space=space)
    strategy = Evolution(space, seed=3, population=12, parents=4, mutations=5, crossovers=5)
    return search(strategy, evaluator, budget=40, archs_per_ask=12, metric="mlm_loss", direction="minimize",
                  log_path=log_path)


def _worker(rank: int, world: int, init_file: str, log_path: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = make_search(log_path if rank == 0 else log_path + f".rank{rank}")
        assert len(result.scored) == 40  # every rank gets rank 0's result
        dist.barrier()  # as `nasplug run` ends: no rank leaves while the other may still talk to it
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="gloo file rendezvous")
def test_two_process_search_matches_one_process(tmp_path):
    single = tmp_path / "single.jsonl"
    make_search(str(single))
    sharded = tmp_path / "sharded.jsonl"
    mp.start_processes(
        _worker, args=(2, str(tmp_path / "rdv"), str(sharded)), nprocs=2, join=True, start_method="spawn"
    )
    assert sharded.read_bytes() == single.read_bytes()
    assert not os.path.exists(str(sharded) + ".rank1"), "only rank 0 writes the log"
    text = single.read_text()
    assert '"status":"failed"' in text and '"status":"ok"' in text


def _failing_worker(rank: int, world: int, init_file: str, log_path: str, out: str) -> None:
    """Rank 0's search fails (its log holds another search and resume is off): both ranks must stop with it."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        try:
            make_search(log_path if rank == 0 else log_path + f".rank{rank}")
        except Exception as exc:  # noqa: BLE001
            with open(f"{out}.rank{rank}", "w") as fh:
                fh.write(f"{type(exc).__name__}: {exc}")
        dist.barrier()  # both ranks stopped cleanly; neither leaves while the other may still talk to it
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="gloo file rendezvous")
def test_a_search_that_fails_on_rank_0_stops_every_rank(tmp_path):
    log = tmp_path / "trials.jsonl"
    make_search(str(log))  # a finished search: running it again without resume is an error on rank 0
    out = str(tmp_path / "error")
    mp.start_processes(_failing_worker, args=(2, str(tmp_path / "rdv"), str(log), out), nprocs=2, join=True,
                       start_method="spawn")
    errors = [open(f"{out}.rank{r}").read() for r in (0, 1)]
    assert errors[0].startswith("NasplugError: ") and errors[1] == errors[0] + " (on rank 0)", errors
