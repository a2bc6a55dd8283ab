"""Issue 23, acceptance 4: an LV-BERT latency table against direct measurement.

LV-BERT small dims (hidden 256, 24 slots, FFN 1024, vocabulary 30,522), CPU, 1 thread,
batch 1, sequence 128: the table is measured (72 blocks, 5 calibration archs), then 30
other random archs are measured whole, in --passes passes on freshly built models, and compared
with the table's predictions (Kendall tau, MAPE, against the mean of the passes) with each clock
(wall and the thread's CPU time); the passes' agreement with each other (Kendall tau between
them) is what the measurement can resolve at all. Every figure is measured here,
in one run, with interleaved rounds and medians; the load is printed before and after, since
the machine may be shared.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/latency_table.py [--archs 30] [--passes 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from nasplug.cost.check import check_table, write_check
from nasplug.cost.measure import Device
from nasplug.cost.table import build_table
from nasplug.spaces.lvbert.space import LVBertSpace


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--clocks", default="wall,thread")
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--statistic", default="min", help="min or median of the timed rounds")
    parser.add_argument("--out", default="runs/bench-latency")
    args = parser.parse_args()
    space = LVBertSpace(size="small")
    print(f"LV-BERT small dims: {space.dims}")
    for clock in args.clocks.split(","):
        device = Device(threads=1, batch_size=1, seq_len=128, repeats=args.repeats, clock=clock,
                        statistic=args.statistic)
        print(f"\n== clock {clock}, {args.statistic} of {args.repeats} rounds: {load()}", flush=True)
        start = time.perf_counter()
        table = build_table(space, device, {"name": "lvbert", "size": "small"}, calibrate=5)
        table.save(Path(args.out) / clock / "lut.json")
        built = time.perf_counter() - start
        result = check_table(table, args.archs, seed=0, space=space, passes=args.passes)
        write_check(result, Path(args.out) / clock)
        checked = time.perf_counter() - start - built
        print(f"table: {built:.0f} s, constant {table.constant_ms:.2f} ms; check: {checked:.0f} s")
        low = min(r["measured_ms"] for r in result["rows"])
        high = max(r["measured_ms"] for r in result["rows"])
        print(f"{result['archs']} archs, measured {low:.1f}..{high:.1f} ms: Kendall tau {result['kendall_tau']:.3f}, "
              f"MAPE {result['mape_pct']:.1f}% (against the mean of {args.passes} passes); between the passes: "
              f"Kendall tau {result.get('repeatability_tau', float('nan')):.3f}   ({load()})", flush=True)


if __name__ == "__main__":
    main()
