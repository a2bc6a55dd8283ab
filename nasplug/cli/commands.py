"""The core commands: ``run``, ``list``, ``show``, ``export``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError

LISTABLE = ("recipes", "spaces", "tasks", "strategies", "evaluators", "constraints")


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="run a recipe (supernet, search, retrain, glue, report)")
    run.add_argument("recipe", help="a recipe YAML file, or the name of a shipped recipe (nasplug list recipes)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a recipe key, e.g. --set search.budget=200 (repeatable)")
    run.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out (also to add stages to it)")
    run.add_argument("--stages", help="comma-separated subset of: latency,supernet,search,retrain,glue,report")
    run.add_argument("--threads", type=int, metavar="N",
                     help="CPU threads (the recipe key threads; default $OMP_NUM_THREADS, else 1: see README)")

    lst = sub.add_parser("list", parents=[common], help="list shipped recipes or registered plugins, with a line each")
    lst.add_argument("what", choices=LISTABLE)

    show = sub.add_parser("show", parents=[common], help="summarise a run directory: best architectures and a table")
    show.add_argument("run_dir")
    show.add_argument("--top", type=int, default=10, help="how many architectures to list")

    export = sub.add_parser("export", parents=[common],
                            help="a retrained model of a run as a folder other tools load (Hugging Face for LV-BERT)")
    export.add_argument("run_dir", help="a run directory whose retrain stage has finished")
    export.add_argument("--model", help="which retrained model: found (default), pareto-<i> or a baseline's name")
    export.add_argument("--pareto", action="store_true",
                       help="every retrained front model (retrain.pareto), each into OUT/<name>")
    export.add_argument("--max-params", type=float, metavar="N",
                       help="the best retrained front model with at most N parameters")
    export.add_argument("--max-latency", type=float, metavar="MS",
                       help="the best retrained front model with a predicted latency_ms of at most MS")
    export.add_argument("--out", required=True, help="the folder to write (must not exist, or be empty)")
    export.add_argument("--seed", type=int, metavar="N",
                        help="which model of a run with retrain.seeds: the one trained with seed N "
                             "(default: the first of retrain.seeds)")


def cmd_run(args: argparse.Namespace) -> int:
    from nasplug import distributed
    from nasplug.layout import default_out
    from nasplug.pipeline import parse_stages, run_recipe
    from nasplug.recipe import load_recipe, resolve_recipe

    threads = [] if args.threads is None else [f"threads={args.threads}"]
    recipe = load_recipe(resolve_recipe(args.recipe), [*args.overrides, *threads])
    stages = parse_stages(args.stages)
    out = Path(args.out) if args.out else default_out(recipe.name)
    info = distributed.init()  # a no-op outside torchrun
    if not info.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # one voice: rank 0's
    try:
        ctx = run_recipe(recipe, out, resume=args.resume, stages=stages, progress=not args.quiet and info.is_main)
    except BaseException:
        distributed.destroy()  # no barrier: a rank that failed would never reach it
        raise
    distributed.destroy(wait_for_all=True)
    table = ctx.extras.get("report_table")
    if info.is_main:
        if table:
            print(table)
        print(f"run directory: {out}")
    return 0


def _first_line(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else ""


def cmd_list(args: argparse.Namespace) -> int:
    from nasplug import registry

    if args.what == "recipes":
        from nasplug.recipe import shipped_recipes

        rows = [(name, description) for name, description in shipped_recipes().items()]
    else:
        reg = {"spaces": registry.SPACES, "tasks": registry.TASKS, "strategies": registry.STRATEGIES,
               "evaluators": registry.EVALUATORS, "constraints": registry.CONSTRAINTS}[args.what]
        rows = []
        for name in reg.names():
            try:
                rows.append((name, _first_line(reg.get(name))))
            except NasplugError as exc:  # a broken plugin is listed, with why
                rows.append((name, f"(cannot load: {exc})"))
    width = max((len(n) for n, _ in rows), default=0)
    for name, description in rows:
        short = description if len(description) <= 100 else description[:97].rsplit(" ", 1)[0] + " ..."
        print(f"{name:<{width}}  {short}".rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nasplug.report import render_report

    if not 1 <= args.top <= 10_000:
        raise NasplugError(f"--top: must be between 1 and 10,000, got {args.top}")
    text, _ = render_report(args.run_dir, k=args.top)
    print(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from nasplug.pipeline.export import export_run

    front = args.pareto or args.max_params is not None or args.max_latency is not None
    if front:
        return _export_front(args)
    args.model = args.model or "found"
    folder = export_run(Path(args.run_dir), args.model, Path(args.out), seed=args.seed)
    which = "" if args.seed is None else f" (seed {args.seed})"
    print(f"exported {args.model}{which} of {args.run_dir} to {folder}")
    return 0


def _export_front(args: argparse.Namespace) -> int:
    import math

    from nasplug.pipeline.front_export import export_front

    if args.model is not None:
        raise NasplugError("--model: give either --model or one of --pareto / --max-params / --max-latency")
    if sum((args.pareto, args.max_params is not None, args.max_latency is not None)) > 1:
        raise NasplugError("--pareto: give one of --pareto (every front model), --max-params or --max-latency")
    for flag, value in (("--max-params", args.max_params), ("--max-latency", args.max_latency)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise NasplugError(f"{flag}: expected a positive number, got {value}")
    done = export_front(Path(args.run_dir), Path(args.out), max_params=args.max_params,
                        max_latency=args.max_latency, seed=args.seed)
    for name, folder, why in done:
        print(f"exported {name} of {args.run_dir} to {folder} ({why})")
    return 0
