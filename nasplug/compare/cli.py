"""The ``nasplug compare`` command line: argument parser and command.

Kept apart from :mod:`nasplug.compare` so that building the CLI parser imports nothing heavy
(numpy, pydantic, the search loop): those are imported when the command runs. The CLI owns
the terminal: it prints the tables; the library only logs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_compare_parser(subparsers: Any, common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Add ``nasplug compare`` to the CLI's subparsers (``build_parser`` calls this)."""
    p = subparsers.add_parser(
        "compare",
        parents=[common] if common is not None else [],
        help="compare search strategies over several seeds against one evaluator",
        description="Run every strategy with every seed against the recipe's evaluator (one shared "
        "evaluation cache) and report mean/std at several budgets, evaluations to a target, "
        "pairwise tests and anytime curves. Writes comparison.json/.md and anytime.png.",
    )
    p.add_argument("recipe", help="recipe YAML: space, evaluator, objective (the strategy comes from here)")
    p.add_argument("--strategies", nargs="+", required=True, metavar="NAME",
                   help="strategies to compare: registered names or package.module:attr paths")
    p.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 0..N-1 for every strategy (default 5)")
    p.add_argument("--budget", type=int, help="scored evaluations per run (default: the recipe's search.budget)")
    p.add_argument("--out", help="output folder (default: runs/<recipe name>-compare)")
    p.add_argument("--resume", action="store_true", help="continue the comparison in --out")
    p.add_argument(
        "--from-run",
        metavar="RUN_DIR",
        help="run directory the evaluator reads, e.g. the trained supernet of `nasplug run` (default: --out)",
    )
    p.add_argument("--ground-truth", action="store_true", help="score the whole space first; report regret")
    p.add_argument("--max-ground-truth", type=int, default=100_000, metavar="N",
                   help="refuse --ground-truth on spaces with more archs (default 100000)")
    p.add_argument("--target", type=float, help="score to reach (default: the optimum, else the median final best)")
    p.add_argument("--budgets", type=int, nargs="+", metavar="B", help="budgets to report (default: 10/25/50/100%%)")
    p.add_argument("--batch-size", type=int, help="archs per ask (default: the recipe's search.batch_size)")
    p.add_argument("--strategy-args", action="append", default=[], metavar="NAME.KEY=VALUE",
                   help="a strategy constructor argument, e.g. evolution.population=20 (repeatable)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set space.slots=6 (repeatable)")
    return p


def cmd_compare(args: argparse.Namespace) -> int:
    """``nasplug compare``: run the comparison, print the tables and where the files are."""
    from nasplug.compare.comparison import compare
    from nasplug.layout import ComparisonLayout, default_out
    from nasplug.recipe import SearchConfig, load_recipe, resolve_recipe

    recipe = load_recipe(resolve_recipe(args.recipe), args.overrides)
    budget = args.budget if args.budget is not None else (recipe.search or SearchConfig()).budget
    out = Path(args.out) if args.out else default_out(f"{recipe.name}-compare")
    result = compare(recipe, args.strategies, args.seeds, budget, out, resume=args.resume,
                     ground_truth=args.ground_truth, budgets_to_report=args.budgets, target=args.target,
                     progress=not getattr(args, "quiet", False), batch_size=args.batch_size,
                     strategy_args=args.strategy_args, max_ground_truth=args.max_ground_truth,
                     from_run=args.from_run)
    cfg, summary = result.data["config"], result.summary
    if result.multi:
        _print_fronts(result)
    else:
        print(f"best {cfg['metric']} ({cfg['direction']}), mean ± std over {len(cfg['seeds'])} seeds; "
              f"target {summary['target']['value']:.6g} ({summary['target']['source']})")
        print(result.table())
        if result.ground_truth is not None:
            print(f"\nregret against the true optimum {result.ground_truth.optimum:.6g}")
            print(result.table(regret=True))
        if summary["tests"]:
            print(f"\npairwise tests at budget {cfg['budget']} (Holm-corrected)")
            print(result.tests_table())
    layout = ComparisonLayout(out)
    print(f"\ncomparison: {layout.output('md')}, {layout.output('json')}, {layout.anytime_plot}")
    return 0


def _print_fronts(result: Any) -> None:
    """The tables of a comparison with several objectives: hypervolume, IGD, their tests."""
    from nasplug.compare.report import score_table, tests_table

    cfg, fronts, summary = result.data["config"], result.data["fronts"], result.summary
    print(f"hypervolume of the front found (higher is better), mean ± std over {len(cfg['seeds'])} seeds; "
          f"reference point {fronts['reference_point']} ({fronts['reference_source']})")
    print(result.table())
    if fronts["igd"] is not None:
        print(f"\nIGD against the exact front ({fronts['exact_front']['size']} points; lower is better)")
        print(score_table(fronts["igd"], cfg["budget"], "IGD"))
    for name, part in (("hypervolume", summary), ("IGD", fronts["igd"])):
        if part is not None and part["tests"]:
            print(f"\npairwise tests on the {name} at budget {cfg['budget']} (Holm-corrected)")
            print(tests_table(part["tests"]))
