"""The most any exact prefix-reusing evaluator can gain, per evolution generation.

An arch's hidden states after its first k layers depend on those k layers only, so an
evaluator whose metrics equal one-by-one evaluation can skip a layer only when the same
prefix was already computed: earlier in the same call, or kept from an earlier call. This
script runs the evolution strategy (population 50, top-10 parents, 25 mutants + 25
crossovers, p = 0.1, LV-BERT space at ELECTRA-small sizes) without any network and counts,
per children's generation, the FLOPs of the layers no exact evaluator can skip when the
states of every earlier prefix of the kept archs (the top-10 so far, i.e. the parents) are
available for free. FLOPs per layer type come from the space's analytic model, so

    layers-only bound = one-by-one layer FLOPs / unavoidable layer FLOPs

is an upper bound on the speed-up of shared-prefix evaluation. Every candidate also runs the
MLM head at its masked positions (15%: dense H -> E, decoder E -> vocab), which no exact
evaluator can share; "with the head" adds that to both sides, the tighter bound
(benchmarks/eval_throughput.py measures the real speed-up). Fitness: "random" (every arch an
independent uniform score, as untrained weights rank them) or "additive" (a fixed random
preference per slot and layer type plus noise: a landscape evolution converges on).

    .venv/bin/python benchmarks/prefix_reuse_bound.py [--seeds 200] [--generations 19]
        [--fitness random|additive] [--keep 10]
"""

from __future__ import annotations

import argparse
import random
import statistics

from nasplug.spaces.lvbert import LVBertSpace
from nasplug.strategies.evolution import Evolution

POPULATION = 50
KINDS = {"A": "attn", "F": "ffn", "C": "conv"}


def fitness(kind: str, seed: int, slots: int):  # type: ignore[no-untyped-def]
    rng = random.Random(f"fitness-{seed}")
    if kind == "random":
        return lambda route: rng.random()
    prefer = [{k: rng.gauss(0, 1) for k in KINDS} for _ in range(slots)]
    return lambda route: sum(prefer[i][k] for i, k in enumerate(route)) + rng.gauss(0, 1)


def head_flops(space: LVBertSpace, masked_share: float = 0.15) -> float:
    """FLOPs of the MLM head over one sequence's masked positions."""
    dims = space.dims
    return 2 * masked_share * space.seq_len * (dims.hidden * dims.embedding + dims.embedding * dims.vocab_size)


def search_bounds(space: LVBertSpace, seed: int, generations: int, keep: int, score,  # type: ignore[no-untyped-def]
                  head: float = 0.0) -> list[float]:
    """Per children's generation: one-by-one FLOPs / unavoidable FLOPs (``head``: per candidate)."""
    cost = {letter: space.dims.layer_flops(kind, space.seq_len) for letter, kind in KINDS.items()}
    evo = Evolution(space, seed=seed, population=POPULATION, parents=10, mutation_prob=0.1,
                    generations=generations + 1)
    ranked: list[tuple[float, str]] = []  # every route scored so far, best first
    bounds = []
    for generation in range(generations + 1):
        archs = evo.ask(POPULATION)
        routes = [space.format(a) for a in archs]
        kept = {r[:k] for _, r in ranked[:keep] for k in range(1, len(r) + 1)}
        needed = {r[:k] for r in routes for k in range(1, len(r) + 1)} - kept
        if generation:
            full = sum(cost[c] for r in routes for c in r)
            heads = head * len(routes)
            bounds.append((full + heads) / (sum(cost[p[-1]] for p in needed) + heads))
        for arch, route in zip(archs, routes):
            value = score(route)
            evo.tell(arch, value)
            ranked.append((value, route))
        ranked.sort(key=lambda item: -item[0])
    return bounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--generations", type=int, default=19, help="children generations (SPOS: 20 in all)")
    parser.add_argument("--fitness", choices=("random", "additive"), default="random")
    parser.add_argument("--keep", type=int, default=10)
    args = parser.parse_args()
    space = LVBertSpace(size="small", slots=24)
    print(f"upper bound on exact shared-prefix speed-up (FLOPs), {args.fitness} fitness, {args.seeds} "
          f"searches, states of the {args.keep} best archs kept between generations; per children's "
          f"generation over the searches: median, 99th percentile, max, share of searches >= 1.5")
    for label, head in (("layers only", 0.0), ("with the head", head_flops(space))):
        runs = [search_bounds(space, seed, args.generations, args.keep, fitness(args.fitness, seed, space.slots), head)
                for seed in range(args.seeds)]
        print(f"{label}:")
        for g in range(args.generations):
            values = sorted(run[g] for run in runs)
            share = sum(v >= 1.5 for v in values) / len(values)
            print(f"  generation {g + 1:2d}: median {statistics.median(values):.2f}  "
                  f"p99 {values[int(0.99 * (len(values) - 1))]:.2f}  max {values[-1]:.2f}  >= 1.5: {share:.0%}")


if __name__ == "__main__":
    main()
