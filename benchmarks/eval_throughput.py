"""Candidates per second for one evolution generation: shared-prefix vs one-by-one evaluation.

The evolution strategy runs as in a search: a random first population of 50 is scored
(by both evaluators, timed and printed as "first population"), then 50 children of its
top-10 (25 mutants + 25 crossovers, mutation probability 0.1) are scored -- the timed
generation the target is about. Scoring uses weights inherited from a supernet at
ELECTRA-small sizes (hidden 256, 24 slots, vocab 30522) on fixed pre-masked held-out
batches (default 2 x 32 x 128). The shared-prefix evaluator walks each call's routes as a
prefix tree and keeps the hidden states of the 10 best archs between calls (as it does in a
search), so children start from their parents' states; the one-by-one evaluator runs every
arch alone. Both run interleaved in each repeat, from fresh evaluators; metrics must match
exactly. Target: speed-up of at least 1.5 on the children's generation. Also printed: the
layers each way computes per candidate (24 one by one), and with --nothing-kept a third
evaluator that shares prefixes within a call only (evaluator.keep: 0).

    .venv/bin/python benchmarks/eval_throughput.py [--repeats 3] [--batches 2] [--threads 2]
        [--generations 1] [--nothing-kept] [--seed 0]

benchmarks/prefix_reuse_bound.py prints the most any exact evaluator can gain here.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nasplug.allocator import keep_freed_memory
from nasplug.arch import arch_key
from nasplug.oneshot.evaluator import SupernetEvaluator
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.strategies.evolution import Evolution
from nasplug.text.masking import MaskedBatch

POPULATION = 50
METRIC = "mlm_loss"  # random weights: accuracy is ~0 for every arch, the loss still ranks them


def held_out(batches: int, rows: int, length: int, vocab: int) -> list[MaskedBatch]:
    gen = torch.Generator().manual_seed(0)
    data = []
    for _ in range(batches):
        ids = torch.randint(5, vocab, (rows, length), generator=gen)
        picked = torch.rand(ids.shape, generator=gen) < 0.15
        data.append(MaskedBatch(torch.where(picked, torch.full_like(ids, 4), ids), torch.where(picked, ids, -100)))
    return data


def count_layers(supernet) -> list[int]:
    """Count the layers run through ``supernet.run_layer`` or its plain forward (slot modules)."""
    counter = [0]

    def count(*_):
        counter[0] += 1

    for slot in supernet.slots:
        for layer in slot.values():
            layer.register_forward_hook(count)
    return counter


def summary(values: list[float]) -> str:
    values = sorted(values)
    return f"min {values[0]:.2f}  median {statistics.median(values):.2f}  max {values[-1]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--generations", type=int, default=1, help="children generations timed after the first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0, help="evolution seed of the first repeat (+1 per repeat)")
    parser.add_argument("--nothing-kept", action="store_true", help="also time prefix sharing within calls only")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc malloc as it is (the CLI tunes it)")
    args = parser.parse_args()
    tuned = False if args.default_malloc else keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = LVBertSpace(size="small", slots=24)
    supernet = space.build_supernet().eval()
    layers = count_layers(supernet)
    data = held_out(args.batches, args.batch_size, args.seq_len, supernet.config.vocab_size)
    labels = ["first population"] + [f"children, generation {g}" for g in range(1, args.generations + 1)]
    names = ["one-by-one", "shared-prefix"] + (["nothing kept"] if args.nothing_kept else [])
    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in names} for label in labels}
    depth: dict[str, dict[str, list[float]]] = {label: {name: [] for name in names} for label in labels}
    cache_mb = []
    for rep in range(args.repeats):
        shared = SupernetEvaluator(supernet, data, rank_metric=METRIC, rank_direction="minimize")
        alone = SupernetEvaluator(supernet, data, prefix_sharing=False)
        within = SupernetEvaluator(supernet, data, keep=0)
        evaluators = {"one-by-one": alone, "shared-prefix": shared, "nothing kept": within}
        evo = Evolution(space, seed=args.seed + rep, population=POPULATION, parents=10, mutation_prob=0.1,
                        generations=args.generations + 1)
        for label in labels:
            archs = evo.ask(POPULATION)
            assert len({arch_key(a) for a in archs}) == POPULATION
            results = {}
            for name in names:
                layers[0] = 0
                t0 = time.perf_counter()
                results[name] = evaluators[name].evaluate_batch(archs)
                times[label][name].append(time.perf_counter() - t0)
                depth[label][name].append(layers[0] / POPULATION / args.batches)
            assert all(results[name] == results["one-by-one"] for name in names), "metrics must equal one-by-one"
            for arch, metrics in zip(archs, results["shared-prefix"]):
                evo.tell(arch, -metrics[METRIC])
        cache_mb.append(shared.cache_bytes / 2**20)
    print(f"evolution (population {POPULATION}, top-10 parents, 25 mutants + 25 crossovers, p=0.1) at "
          f"ELECTRA-small sizes, {args.batches} held-out batches of {args.batch_size}x{args.seq_len}, "
          f"{args.threads} threads, {args.repeats} repeats, glibc malloc keeps freed memory: {tuned}")
    for label in labels:
        print(f"{label}:")
        for name, values in times[label].items():
            print(f"  {name:14s} candidates/s {summary([POPULATION / t for t in values])}   "
                  f"layers per candidate {summary(depth[label][name])}")
        for name in names[1:]:
            ratios = [a / b for a, b in zip(times[label]["one-by-one"], times[label][name])]
            target = "" if label == labels[0] or name != "shared-prefix" else "   [target >= 1.5]"
            print(f"  speed-up, one-by-one time / {name} time, per repeat: {summary(ratios)}{target}")
    if args.generations > 1:
        children = labels[1:]
        print(f"all {args.generations} children generations together:")
        for name in names[1:]:
            ratios = [sum(times[label]["one-by-one"][rep] for label in children)
                      / sum(times[label][name][rep] for label in children) for rep in range(args.repeats)]
            print(f"  speed-up, one-by-one time / {name} time, per repeat: {summary(ratios)}")
    print(f"hidden states kept between calls: {summary(cache_mb)} MiB")


if __name__ == "__main__":
    main()
