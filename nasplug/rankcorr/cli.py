"""The ``nasplug rank-corr`` command line: argument parser and command.

Kept apart from :mod:`nasplug.rankcorr` so that building the CLI parser imports nothing
heavy (torch, scipy): those are imported when the command runs. The CLI owns the terminal.
"""

from __future__ import annotations

import argparse
from typing import Any

from nasplug.errors import NasplugError


def add_rank_corr_parser(subparsers: Any, common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add ``nasplug rank-corr`` to the CLI's subparsers (``build_parser`` calls this)."""
    p = subparsers.add_parser(
        "rank-corr",
        parents=[common] if common is not None else [],
        help="rank correlation of the supernet's scores with standalone training",
        description="Sample N distinct archs, score each with the run's trained supernet, train each "
        "standalone from scratch for S steps (the recipe's retrain settings), score it on the "
        "same held-out batches, and report Kendall tau / Spearman rho with bootstrap intervals. "
        "Archs already trained in the output folder are reused. Writes rank_corr.json/.md/.png.",
    )
    p.add_argument("run_dir", help="a run directory whose supernet stage has finished")
    p.add_argument("--archs", type=int, required=True, metavar="N", help="number of distinct archs (>= 3)")
    p.add_argument("--steps", type=int, required=True, metavar="S", help="standalone training steps per arch (>= 1)")
    p.add_argument(
        "--seed", type=int, default=0, metavar="K", help="seed of the arch draws and the bootstrap (default 0)"
    )
    p.add_argument("--batches", type=int, metavar="B",
                   help="held-out batches for both scores (default: the recipe's evaluator setting)")
    p.add_argument("--metric", help="compared metric, any the task measures (default: the search metric if the "
                                    "task measures it, else the task's primary one, e.g. mlm_acc for MLM)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN_DIR/rank_corr)")
    p.add_argument("--models", metavar="DIR",
                   help="where the standalone models are trained and kept (default: --out); share it between runs "
                        "whose supernets differ only in training to train each arch once")
    p.add_argument("--resamples", type=int, default=2000, metavar="R", help="bootstrap resamples (default 2000)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the run's recipe, e.g. --set retrain.lr=0.001 (the standalone "
                        "training settings come from retrain, else supernet) (repeatable)")
    return p


def cmd_rank_corr(args: argparse.Namespace) -> int:
    """``nasplug rank-corr``: run it, print the table, the coefficients and where the files are."""
    from nasplug.rankcorr import rank_correlation, summary_lines, table

    if args.resamples < 10:
        raise NasplugError(f"--resamples: must be >= 10, got {args.resamples}")
    if args.batches is not None:  # evaluator.batches of the run's recipe, within the evaluator's bounds
        from nasplug.pipeline.evaluators import SupernetEvaluator
        from nasplug.registry import check_argument

        check_argument(SupernetEvaluator, "batches", args.batches, "--batches")
    result = rank_correlation(args.run_dir, args.archs, args.steps, seed=args.seed, num_batches=args.batches,
                              progress=not getattr(args, "quiet", False), metric=args.metric, out=args.out,
                              overrides=args.overrides, resamples=args.resamples, models=args.models)
    print(table(result))
    print()
    for line in summary_lines(result):
        print(line)
    files = result["files"]
    print(f"\nrank-corr: {files['md']}, {files['json']}, {files['png']}")
    return 0
