"""``nasplug latency-table`` and ``nasplug latency-check``: parsers and commands.

Building the parsers imports nothing heavy; torch is imported when a command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError


def _device_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="where to measure: cpu (default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads during the measurement (default 1)")
    p.add_argument("--batch", dest="batch_size", type=int, default=1,
                   help="sequences per forward call (default 1; read as batch_size)")
    p.add_argument("--seq-len", type=int, default=128, help="tokens per sequence (default 128)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per item first (default 3)")
    p.add_argument("--repeats", type=int, default=15, help="timed rounds; the latency is their minimum (default 15)")
    p.add_argument("--calls", type=int, default=3, help="forward calls per timed round (default 3)")
    p.add_argument("--statistic", default="min",
                   help="min (default: the fastest round, steadier on a shared machine) or median of the timed rounds")
    p.add_argument("--clock", default="wall",
                   help="wall (elapsed, default) or thread (the thread's CPU time, --threads 1: steadier on a "
                        "shared, loaded machine)")


def add_latency_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """``nasplug latency-table`` and ``nasplug latency-check`` (``build_parser`` calls this)."""
    table = sub.add_parser("latency-table", parents=[common],
                           help="measure a latency table of a recipe's space (each option at each position)")
    table.add_argument("recipe", help="a recipe YAML file or a shipped recipe's name")
    _device_options(table)
    table.add_argument("--calibrate", type=int, default=5, metavar="N",
                       help="random archs measured whole to fit the table's constant (default 5)")
    table.add_argument("--seed", type=int, default=0, help="seed of the calibration archs and the order (default 0)")
    table.add_argument("--out", required=True, help="the table file to write (e.g. lut.json)")
    table.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe key (repeatable)")
    check = sub.add_parser("latency-check", parents=[common],
                           help="a latency table's predictions against direct measurement (Kendall tau, MAPE, plot)")
    check.add_argument("table", help="a table written by nasplug latency-table")
    check.add_argument("--archs", type=int, default=30, metavar="N", help="random archs to measure (default 30)")
    check.add_argument("--seed", type=int, default=0, help="seed of the arch draws (default 0)")
    check.add_argument("--passes", type=int, default=2, metavar="K",
                       help="measure the archs K times on fresh models (default 2): the predictions are compared "
                            "with the mean, and the passes with each other (the measurement's repeatability)")
    check.add_argument("--out", help="folder for latency_check.json/.png (default: beside the table)")


def cmd_latency_table(args: argparse.Namespace) -> int:
    from nasplug.cost.table import build_table
    from nasplug.pipeline.context import RunContext, space_spec
    from nasplug.recipe import load_recipe, resolve_recipe

    device = _device(args)
    recipe = load_recipe(resolve_recipe(args.recipe), args.overrides)
    ctx = RunContext(recipe=recipe, run_dir=Path("."))
    space = ctx.space
    spec = space_spec(recipe.space, ctx.task if recipe.task is not None else None)
    out = Path(args.out)
    if out.is_dir():
        raise NasplugError(f"--out: {out} is a folder; give the table's file name (e.g. lut.json)")
    table = build_table(space, device, spec, calibrate=args.calibrate, seed=args.seed,
                        progress=None if args.quiet else lambda msg: print(msg, flush=True))
    table.save(out)
    d = table.device
    per = f" x {len(table.groups)} values of {', '.join(table.context)}" if table.context else ""
    print(f"latency table of {len(table.choice_names())} choices{per}, {d.name} ({d.threads} thread(s), "
          f"batch {d.batch_size}, seq {d.seq_len}, {d.clock} clock) on {table.machine}: constant "
          f"{table.constant_ms:.3f} ms")
    print(f"written: {out}")
    return 0


def _device(args: argparse.Namespace) -> Any:
    from nasplug.cost.measure import Device

    return Device(name=args.device, threads=args.threads, batch_size=args.batch_size, seq_len=args.seq_len,
                  warmup=args.warmup, repeats=args.repeats, calls=args.calls, clock=args.clock,
                  statistic=args.statistic)


def cmd_latency_check(args: argparse.Namespace) -> int:
    from nasplug.cost.check import check_table, write_check
    from nasplug.cost.table import load_table

    table = load_table(args.table)
    result = check_table(table, args.archs, seed=args.seed, passes=args.passes)
    paths = write_check(result, Path(args.out) if args.out else Path(args.table).parent)
    d = result["device"]
    print(f"{result['archs']} archs, {d['name']} ({d['threads']} thread(s), batch {d['batch_size']}, "
          f"seq {d['seq_len']}, {d['clock']} clock) on {result['machine']}")
    print(f"Kendall tau {result['kendall_tau']:.3f}   MAPE {result['mape_pct']:.1f}%   (against the mean of "
          f"{result['passes']} measurement pass(es))")
    if result.get("repeatability_tau") is not None:
        print(f"repeatability: Kendall tau {result['repeatability_tau']:.3f} between the passes (how far single "
              "measurements of the same models agree on their order: a rough noise floor for the tau above)")
    print(f"written: {paths['json']}, {paths['plot']}")
    return 0
