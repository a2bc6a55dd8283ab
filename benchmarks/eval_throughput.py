"""Candidates per second of a whole evolution search: shared-prefix (fp32, bf16) against one-by-one fp32.

The evolution strategy (population 50, top-10 parents, 25 mutants + 25 crossovers,
mutation probability 0.1) runs ``--generations`` generations (default 20: the SPOS search)
as in a search stage, driven by the fp32 shared-prefix scores. Every generation's candidates
are scored (an arch asked again is scored once, as the search's cache does), each timed:

* ``shared fp32``: the inherited-weights evaluator with shared prefixes (``precision: fp32``),
  keeping the hidden states of the 10 best archs between generations, as the search does;
* ``shared bf16``: the same evaluator under bf16 autocast, on the same candidates;
* ``one-by-one fp32``: every arch alone, on a sample of ``--sample`` candidates per generation
  (its cost per candidate does not depend on what came before), checked to give exactly the
  shared fp32 metrics.

It prints candidates/s of each over the whole search, the speed-ups against one-by-one fp32
(target: the evaluator's default >= 2.5x), and the Kendall tau between the bf16 and fp32
rankings of all candidates (target >= 0.95: the evaluator's default is ``auto``, bf16 where the
machine's bf16 is fast; its scoring head decides in fp32 in both: under bf16 the MLM
decoder's product runs in bf16 and every argmax it could change is recomputed in fp32).

Two setups. By default: an ELECTRA-small supernet (hidden 256, 24 slots, vocab 30522) with
random weights on random pre-masked held-out batches, ranked by MLM loss (random weights
rank archs by their structure only: use ``--run`` for a ranking that means something).
With ``--run RUN_DIR``: the run's trained supernet, its evaluator's held-out batches and its
search metric (e.g. ``runs/demo`` after ``make demo``).

    .venv/bin/python benchmarks/eval_throughput.py [--generations 20] [--batches 1] [--batch-size 16]
        [--sample 3] [--threads 1] [--run RUN_DIR]

benchmarks/prefix_reuse_bound.py prints the most any exact evaluator can gain from prefixes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from scipy import stats

from nasplug.allocator import keep_freed_memory
from nasplug.arch import Arch, arch_key
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.strategies.evolution import Evolution
from nasplug.text.masking import MaskedBatch
from nasplug.text.tasks import text_evaluator

POPULATION = 50
PARENTS = 10  # the evolution below: the evaluator keeps the states of this many best archs, as a search stage does


def random_setup(args: argparse.Namespace) -> tuple[Any, Any, str, str]:
    """ELECTRA-small, random weights and held-out batches: ``(space, make(precision, sharing), metric, direction)``."""
    space = LVBertSpace(size="small", slots=24)
    supernet = space.build_supernet().eval()
    gen = torch.Generator().manual_seed(0)
    data = []
    for _ in range(args.batches):
        ids = torch.randint(5, supernet.config.vocab_size, (args.batch_size, args.seq_len), generator=gen)
        picked = torch.rand(ids.shape, generator=gen) < 0.15
        data.append(MaskedBatch(torch.where(picked, torch.full_like(ids, 4), ids), torch.where(picked, ids, -100)))

    def make(precision: str, sharing: bool) -> Any:
        return text_evaluator(supernet, data, space=space, precision=precision, prefix_sharing=sharing,
                              rank_metric="mlm_loss", rank_direction="minimize")

    return space, make, "mlm_loss", "minimize"


def run_setup(run_dir: Path) -> tuple[Any, Any, str, str]:
    """A finished run's trained supernet, evaluator batches and search metric."""
    from nasplug.pipeline import RunContext
    from nasplug.pipeline.evaluators import SupernetEvaluator
    from nasplug.rankcorr import load_run_recipe

    recipe = load_run_recipe(run_dir)
    ctx = RunContext(recipe=recipe, run_dir=run_dir, resume=True, progress=False)
    settings = {k: v for k, v in recipe.evaluator.kwargs().items() if k not in ("precision", "prefix_sharing")}

    def make(precision: str, sharing: bool) -> Any:  # the memory hint a search stage passes: its parents
        return SupernetEvaluator(precision=precision, prefix_sharing=sharing, **settings).build(ctx, PARENTS)

    return ctx.space, make, recipe.search.metric, recipe.search.direction


def search(args: argparse.Namespace, space: Any, make: Any, metric: str, direction: str) -> dict[str, Any]:
    """The whole search, timed per evaluator; the scores of every candidate."""
    evaluators = {"shared fp32": make("fp32", True), "shared bf16": make("bf16", True)}
    alone = make("fp32", False)
    evo = Evolution(space, seed=args.seed, population=POPULATION, parents=PARENTS, mutation_prob=0.1,
                    generations=args.generations)
    times = {name: 0.0 for name in [*evaluators, "one-by-one fp32"]}
    scores: dict[str, list[dict[str, float]]] = {name: [] for name in evaluators}
    alone_count, seen = 0, {}
    sign = 1.0 if direction == "maximize" else -1.0
    for generation in range(args.generations):
        asked: list[Arch] = evo.ask(POPULATION)
        archs = [a for a in asked if arch_key(a) not in seen]  # a search scores each arch once (its cache)
        results = {}
        for name, evaluator in evaluators.items():
            start = time.perf_counter()
            results[name] = evaluator.evaluate_batch(archs)
            times[name] += time.perf_counter() - start
            scores[name] += results[name]
        picked = list(range(0, len(archs), max(1, len(archs) // args.sample)))[: args.sample]
        start = time.perf_counter()
        single = alone.evaluate_batch([archs[i] for i in picked])
        times["one-by-one fp32"] += time.perf_counter() - start
        alone_count += len(picked)
        assert single == [results["shared fp32"][i] for i in picked], "shared-prefix must equal one-by-one exactly"
        seen.update({arch_key(a): r[metric] for a, r in zip(archs, results["shared fp32"])})
        for arch in asked:
            evo.tell(arch, sign * seen[arch_key(arch)])
        print(f"  generation {generation + 1:2d}: " + ", ".join(f"{n} {t:7.1f} s" for n, t in times.items()),
              flush=True)
    return {"times": times, "scores": scores, "candidates": len(seen), "alone": alone_count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20)
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--sample", type=int, default=3, help="candidates per generation scored one by one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="evolution seed")
    parser.add_argument("--run", type=Path, help="a finished run directory: its trained supernet and batches")
    args = parser.parse_args()
    tuned = keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space, make, metric, direction = run_setup(args.run) if args.run else random_setup(args)
    where = (f"run {args.run}" if args.run else f"ELECTRA-small random weights, {args.batches} held-out batches "
             f"of {args.batch_size}x{args.seq_len}")
    print(f"evolution (population {POPULATION}, top-10 parents, p=0.1), {args.generations} generations, {where}, "
          f"metric {metric} ({direction}), {args.threads} threads, glibc malloc keeps freed memory: {tuned}")
    out = search(args, space, make, metric, direction)
    rate = {name: (out["alone"] if name.startswith("one") else out["candidates"]) / t
            for name, t in out["times"].items()}
    print(f"\nwhole search, {out['candidates']} candidates ({out['alone']} of them one by one):")
    for name, value in rate.items():
        speed_up = value / rate["one-by-one fp32"]
        print(f"  {name:<16} {value:7.3f} candidates/s   x{speed_up:.2f} against one-by-one fp32")
    for name in dict.fromkeys([metric, "mlm_loss"]):  # the search's metric, and the loss (no ties)
        fp32, bf16 = ([r[name] for r in out["scores"][f"shared {p}"]] for p in ("fp32", "bf16"))
        tau = stats.kendalltau(fp32, bf16).statistic
        print(f"Kendall tau, bf16 vs fp32 {name} of the same {out['candidates']} candidates: {tau:.4f} "
              f"(target >= 0.95: {'ok' if tau >= 0.95 else 'MISSED'})")
    from nasplug.hardware import resolve_precision

    default = resolve_precision("auto", "cpu")
    print(f"target: the default evaluator (precision auto: shared {default.value} on this machine, {default.reason}) "
          ">= 2.5x one-by-one fp32")


if __name__ == "__main__":
    main()
