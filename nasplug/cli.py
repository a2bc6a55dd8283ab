"""The ``nasplug`` command. It owns the terminal: progress bars, tables, one-line errors.

Errors a user can cause (NasplugError) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from nasplug.allocator import keep_freed_memory
from nasplug.compare.cli import add_compare_parser, cmd_compare
from nasplug.errors import NasplugError
from nasplug.rankcorr.cli import add_rank_corr_parser, cmd_rank_corr

log = logging.getLogger("nasplug")

LISTABLE = ("spaces", "tasks", "strategies", "evaluators", "constraints")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and still exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasplug", description="Neural architecture search with pluggable spaces and strategies.")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final table")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a recipe (supernet, search, retrain, glue, report)")
    run.add_argument("recipe", help="path to a recipe YAML file")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. --set search.budget=200 (repeatable)")
    run.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    run.add_argument("--stages", help="comma-separated subset of: supernet,search,retrain,glue,report")

    lst = sub.add_parser("list", help="list registered spaces, strategies, evaluators or constraints")
    lst.add_argument("what", choices=LISTABLE)

    show = sub.add_parser("show", help="summarise a run directory: best architectures and a table")
    show.add_argument("run_dir")
    show.add_argument("--top", type=int, default=10, help="how many architectures to list")
    add_compare_parser(sub)
    add_rank_corr_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    keep_freed_memory()
    try:
        return COMMANDS[args.command](args)
    except NasplugError as exc:
        print(f"nasplug: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasplug: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


def _quiet_libraries() -> None:
    """Our own progress bars are enough: silence the per-file bars of `datasets`."""
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass


def cmd_run(args: argparse.Namespace) -> int:
    from nasplug import distributed
    from nasplug.pipeline import parse_stages, run_recipe
    from nasplug.recipe import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    stages = parse_stages(args.stages)
    out = Path(args.out) if args.out else Path("runs") / recipe.name
    info = distributed.init()  # a no-op outside torchrun
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one voice: rank 0's
    try:
        ctx = run_recipe(recipe, out, resume=args.resume, stages=stages, progress=not args.quiet and info.is_main)
    finally:
        distributed.destroy()
    table = ctx.extras.get("report_table")
    if info.is_main:
        if table:
            print(table)
        print(f"run directory: {out}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from nasplug import registry

    reg = {"spaces": registry.SPACES, "tasks": registry.TASKS, "strategies": registry.STRATEGIES,
           "evaluators": registry.EVALUATORS, "constraints": registry.CONSTRAINTS}[args.what]
    for name in reg.names():
        print(name)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nasplug.report import render_report

    if args.top < 1:
        raise NasplugError(f"--top: must be >= 1, got {args.top}")
    text, _ = render_report(args.run_dir, k=args.top)
    print(text)
    return 0


COMMANDS = {"run": cmd_run, "list": cmd_list, "show": cmd_show, "compare": cmd_compare, "rank-corr": cmd_rank_corr}

if __name__ == "__main__":
    sys.exit(main())
