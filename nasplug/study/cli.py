"""The ``nasplug study`` command line (kept apart so the CLI parser imports nothing heavy)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_study_parser(subparsers: Any, common: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "study",
        parents=[common] if common is not None else [],
        help="retrain rows of architectures (searched, fixed, random) for K seeds and compare them",
        description="Run the recipe's study: section into RUN_DIR/study (the supernet stage first when a row "
        "searches). Each (row, arch, seed) is trained once; --resume continues an interrupted study. "
        "Writes study.md, study.json and study.png.",
    )
    p.add_argument("recipe", help="recipe YAML with a study: section")
    p.add_argument("--out", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study, or add rows, archs or seeds to it (or a study to a finished run); "
                        "its training settings and existing search rows may not change")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, e.g. --set study.seeds=[0,1] (repeatable)")
    return p


def cmd_study(args: argparse.Namespace) -> int:
    from nasplug.layout import default_out
    from nasplug.recipe import load_recipe, resolve_recipe
    from nasplug.study import run_study

    recipe = load_recipe(resolve_recipe(args.recipe), args.overrides)
    out = Path(args.out) if args.out else default_out(recipe.name)
    summary = run_study(recipe, out, resume=args.resume, progress=not getattr(args, "quiet", False))
    print(summary["table"])
    print(f"\nstudy: {out / 'study' / 'study.md'}, study.json, study.png")
    return 0
