"""Candidates per second for one evolution generation: shared-prefix vs one-by-one evaluation.

One generation as the evolution strategy makes it: 10 parents (the top-10 of a random first
population), 25 mutants + 25 crossovers with mutation probability 0.1. Evaluated with
inherited weights at ELECTRA-small sizes (hidden 256, 24 slots, vocab 30522) on fixed
pre-masked held-out batches (default 2 x 32 x 128). Both ways run interleaved, several
repeats; the target is a ratio of at least 1.5.

    .venv/bin/python benchmarks/eval_throughput.py [--repeats 3] [--batches 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from nasplug.arch import arch_key
from nasplug.masking import MaskedBatch
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.strategies.evolution import Evolution
from nasplug.supernet_eval import SupernetEvaluator


def one_generation(space: LVBertSpace, seed: int) -> list[dict]:
    """The 50 children evolution proposes after a random first generation of 50."""
    evo = Evolution(space, seed=seed)
    rng = random.Random(seed)
    for arch in evo.ask(50):
        evo.tell(arch, rng.random())  # any scores: only the parent/child structure matters
    children = evo.ask(50)
    assert len(children) == 50 and len({arch_key(a) for a in children}) == 50
    return children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = LVBertSpace(size="small", slots=24)
    supernet = space.build_supernet().eval()
    vocab = supernet.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    data = []
    for _ in range(args.batches):
        ids = torch.randint(5, vocab, (args.batch_size, args.seq_len), generator=gen)
        picked = torch.rand(ids.shape, generator=gen) < 0.15
        data.append(MaskedBatch(torch.where(picked, torch.full_like(ids, 4), ids), torch.where(picked, ids, -100)))
    shared = SupernetEvaluator(supernet, data, prefix_sharing=True)
    alone = SupernetEvaluator(supernet, data, prefix_sharing=False)
    times: dict[str, list[float]] = {"one-by-one": [], "shared-prefix": []}
    for rep in range(args.repeats):
        children = one_generation(space, seed=rep)
        results = {}
        for name, evaluator in (("one-by-one", alone), ("shared-prefix", shared)):
            t0 = time.perf_counter()
            results[name] = evaluator.evaluate_batch(children)
            times[name].append(time.perf_counter() - t0)
        assert results["one-by-one"] == results["shared-prefix"], "shared-prefix metrics must equal one-by-one"
    n = 50
    print(f"one evolution generation (50 children of 10 parents, p=0.1) at ELECTRA-small sizes, "
          f"{args.batches} held-out batches of {args.batch_size}x{args.seq_len}, {args.threads} threads, {args.repeats} repeats")
    for name, values in times.items():
        rates = sorted(n / t for t in values)
        print(f"  {name:14s} candidates/s min {rates[0]:.2f}  median {statistics.median(rates):.2f}  max {rates[-1]:.2f}")
    ratios = sorted(a / b for a, b in zip(times["one-by-one"], times["shared-prefix"]))
    print(f"  speed-up (one-by-one time / shared-prefix time, per repeat): min {ratios[0]:.2f}  "
          f"median {statistics.median(ratios):.2f}  max {ratios[-1]:.2f}   [target >= 1.5]")


if __name__ == "__main__":
    main()
