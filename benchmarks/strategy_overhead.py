"""Time per ask+tell for each strategy once it carries 10,000 trials of history.

The space has the LV-BERT shape (24 slots x 3 options) but no model, so this measures the
strategy alone. Target: under 1 ms per proposal. Strategies are measured interleaved
(round-robin, several repeats) so machine noise hits them alike. ``evolution-nsga2`` is the
evolution strategy told two objectives (a score maximised, a cost minimised): its
non-dominated sorting and crowding distance over the history.

    .venv/bin/python benchmarks/strategy_overhead.py [--history 10000] [--measure 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from nasplug.objectives import Objective
from nasplug.registry import STRATEGIES
from nasplug.space import SearchSpace


class SlotSpace(SearchSpace):
    name = "slots"

    def __init__(self, slots: int = 24) -> None:
        self._choices = {f"L{i:02d}": ("conv", "attn", "ffn") for i in range(slots)}

    def choices(self):
        return self._choices


def score(arch: dict) -> float:
    return sum((i % 5) * (v == "attn") - (v == "conv") * 0.3 for i, v in enumerate(arch.values()))


def cost(arch: dict) -> float:
    return sum((2.6, 1.4, 1.9)[("attn", "ffn", "conv").index(v)] for v in arch.values())


#: name in the table -> (registered strategy, objectives or None for the default one)
TWO = (Objective("score", "maximize"), Objective("cost", "minimize"))
VARIANTS = {"evolution-nsga2": ("evolution", TWO)}


def drive(strategy, trials: int, batch: int) -> float:
    """Ask/tell ``trials`` archs; return seconds spent inside the strategy."""
    spent, done = 0.0, 0
    while done < trials:
        t0 = time.perf_counter()
        archs = strategy.ask(min(batch, trials - done))
        spent += time.perf_counter() - t0
        two = len(strategy.objectives) > 1
        scores = [(score(a), cost(a)) if two else score(a) for a in archs]
        t0 = time.perf_counter()
        for arch, s in zip(archs, scores):
            strategy.tell(arch, s)
        spent += time.perf_counter() - t0
        done += len(archs)
        if not archs:
            raise RuntimeError(f"{type(strategy).__name__} stopped proposing after {done} trials")
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--measure", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--strategies", nargs="*", default=["random", "evolution", "evolution-nsga2", "regularized"])
    args = parser.parse_args()
    space = SlotSpace()
    total = args.history + args.measure
    generations = total // 50 + 2  # evolution must not run out of generations
    kwargs = {"evolution": {"generations": generations}}
    results: dict[str, list[float]] = {name: [] for name in args.strategies}
    for rep in range(args.repeats):
        for name in args.strategies:
            registered, objectives = VARIANTS.get(name, (name, None))
            strategy = STRATEGIES.build(registered, space=space, seed=rep, **kwargs.get(registered, {}))
            if objectives is not None:
                strategy.set_objectives(objectives)
            drive(strategy, args.history, batch=50)
            spent = drive(strategy, args.measure, batch=50)
            results[name].append(1000 * spent / args.measure)
    print(f"ask+tell time per proposal after {args.history} trials of history (24 slots x 3 options), "
          f"{args.repeats} repeats, ms: min / median / max  [target < 1 ms]")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"  {name:16s} {min(values):.4f} / {med:.4f} / {max(values):.4f}   ratio to 1 ms: {med:.3f}  "
              f"{'OK' if med < 1.0 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
