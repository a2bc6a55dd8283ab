"""Effect of ``nasplug.allocator.keep_freed_memory`` on CPU evaluation, side by side.

Each repeat starts two fresh worker processes, one with glibc's default malloc and one with
the setting the ``nasplug`` command applies; each scores 20 random archs at ELECTRA-small
sizes (1 held-out batch of 32 x 128, 1 thread) three times and reports the last two calls'
seconds and minor page faults. Prints the default / tuned time ratio per repeat.

    .venv/bin/python benchmarks/malloc_tuning.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def worker(tuned: bool) -> None:
    if tuned:
        from nasplug.allocator import keep_freed_memory

        assert keep_freed_memory()
    import random

    import torch
    from eval_throughput import held_out  # this folder: the same held-out batch as that benchmark

    from nasplug.oneshot.evaluator import SupernetEvaluator
    from nasplug.spaces.lvbert import LVBertSpace

    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = LVBertSpace(size="small", slots=24)
    supernet = space.build_supernet().eval()
    data = held_out(1, 32, 128, supernet.config.vocab_size)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(20)]
    seconds, faults = [], []
    for _ in range(3):
        evaluator = SupernetEvaluator(supernet, data, keep=0)
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        evaluator.evaluate_batch(archs)
        seconds.append(time.perf_counter() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    print(json.dumps({"seconds": sum(seconds[1:]), "faults": sum(faults[1:]) // 2}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", choices=["default", "tuned"])
    args = parser.parse_args()
    if args.worker:
        worker(args.worker == "tuned")
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ratios = []
    for rep in range(args.repeats):
        out = {}
        for mode in ("default", "tuned"):
            done = subprocess.run([sys.executable, __file__, "--worker", mode], env=env, check=True,
                                  capture_output=True, text=True)
            out[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        ratios.append(out["default"]["seconds"] / out["tuned"]["seconds"])
        print(f"repeat {rep}: " + "   ".join(f"{m}: {o['seconds']:.2f} s, {o['faults']:,} faults per call"
                                              for m, o in out.items()) + f"   default/tuned {ratios[-1]:.3f}")
    print(f"default / tuned time: min {min(ratios):.3f}  median {statistics.median(ratios):.3f}  max {max(ratios):.3f}")


if __name__ == "__main__":
    main()
