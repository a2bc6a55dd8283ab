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
    p.add_argument("--seeds", type=int, default=1, metavar="K", dest="num_seeds",
                   help="standalone trainings per arch, seeded (default 1); K >= 2 reports the noise ceiling, the "
                        "tau between seeds, and compares against the mean over seeds")
    p.add_argument("--predictors", action="append", default=[], metavar="LIST",
                   help="cheaper predictors ranked beside the supernet, comma-separated: params, flops, synflow, "
                        "grad_norm, snip, jacov, short[:N] (N standalone steps; default S/8), all (repeatable)")
    p.add_argument("--checkpoints", action="store_true",
                   help="also rank with every supernet snapshot the run kept (supernet.snapshots): the "
                        "training-budget curve (budget.md/.png)")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN",
                   help="other runs of the same space and task (other samplers, budgets) whose supernets are "
                        "ranked against the same standalone models")
    p.add_argument("--eval-cost", action="store_true",
                   help="the evaluation-cost curve: tau against the number of held-out batches, also in the other "
                        "precision and with BatchNorm recalibration toggled (eval_cost.md/.png)")
    p.add_argument("--stratify", metavar="METRIC",
                   help="draw the archs stratified over an analytic metric of the space (e.g. params) instead of "
                        "uniformly, so they span the space")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train the standalone models in N processes (one thread each; default 1): on N cores "
                        "about N times sooner, the same models bit for bit")
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
                              overrides=args.overrides, resamples=args.resamples, models=args.models,
                              num_seeds=args.num_seeds, predictors=args.predictors, checkpoints=args.checkpoints,
                              compare=args.compare, eval_cost=args.eval_cost, stratify=args.stratify,
                              jobs=args.jobs)
    print(table(result))
    print()
    for line in summary_lines(result):
        print(line)
    _print_tables(result)
    files = result["files"]
    print(f"\nrank-corr: {', '.join(v for k, v in files.items() if k != 'png' and not k.endswith('_json'))}")
    return 0


def _print_tables(result: dict) -> None:
    from nasplug.rankcorr.outputs import clean_json
    from nasplug.rankcorr.tables import budget_table, eval_cost_table, predictors_table

    clean = clean_json(result)
    for title, wanted, render in (("predictors", len(result["predictors"]) > 1, predictors_table),
                                  ("training budget", bool(result["budget"]), budget_table),
                                  ("evaluation cost", bool(result["eval_cost"]), eval_cost_table)):
        if wanted:
            print(f"\n{title}:\n{render(clean)}")
