"""Reading a run directory back: ``report.md`` and the tables of ``nasplug show``.

Each stage renders its own section from the files it left (see
:meth:`nasplug.pipeline.stage.Stage.report`), so any run, finished or not, of any space and
task, can be shown; plugins (GLUE) bring their sections with their stages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nasplug.errors import NasplugError
from nasplug.layout import RunLayout
from nasplug.objectives import from_stored
from nasplug.report.table import markdown_table
from nasplug.search import SearchResult
from nasplug.trials import TrialLog


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], SearchResult | None]:
    """The run's stored recipe (as a dict) and its search result, if it searched."""
    layout = RunLayout(run_dir)
    if not layout.root.is_dir():
        raise NasplugError(f"{run_dir}: no such run directory")
    if not layout.recipe.is_file():
        raise NasplugError(f"{run_dir}: not a nasplug run directory (no recipe.yaml)")
    recipe = layout.read_recipe("restore it or start a new run")
    if not recipe:
        raise NasplugError(f"{layout.recipe}: not a recipe (a mapping of keys); restore it or start a new run")
    search_cfg = recipe.get("search") if isinstance(recipe.get("search"), dict) else {}
    trials = TrialLog(layout.trials)
    result = None
    if trials.exists():
        result = SearchResult(objectives=from_stored(search_cfg), trials=trials.read())
    return recipe, result


def stage_table(run_dir: Path) -> str:
    from nasplug.pipeline.stage import ORDER

    rows = []
    for stage in ORDER:
        record = RunLayout(run_dir).read_stage(stage)
        if record is not None:
            rows.append([stage, record.get("wall_s")])
    return markdown_table(["stage", "wall time (s)"], rows) if rows else ""


def render_report(run_dir: str | Path, k: int = 10, draw: bool = False) -> tuple[str, str]:
    """(report.md text, the table printed in the terminal). With ``draw`` the sections draw
    their plots into the run (the report stage); without, nothing is written."""
    from nasplug.pipeline.stage import RunView, all_stages

    run_dir = Path(run_dir)
    recipe, _ = load_run(run_dir)
    view = RunView(run_dir, recipe, _space(recipe, run_dir), k, _task(recipe), draw=draw)
    parts = [f"# nasplug run: {recipe.get('name', run_dir.name)}", ""]
    if recipe.get("description"):
        parts += [str(recipe["description"]), ""]
    printed: list[str] = []
    for stage in all_stages():
        lines, table = stage.report(view)
        parts += lines
        if table and stage.name == "retrain":
            printed = [table]  # the found-vs-baseline table says more than the search's top list
        elif table:
            printed.append(table)
    if recipe.get("expected"):
        parts += ["## The paper's numbers", "", "```yaml", yaml.safe_dump(recipe["expected"], sort_keys=False).strip(),
                  "```", ""]
    stages = stage_table(run_dir)
    if stages:
        parts += ["## Wall time per stage", "", stages, ""]
    return "\n".join(parts), "\n\n".join(printed)


def _space(recipe: dict[str, Any], run_dir: Path) -> Any:
    """The run's space if it can be built (for its arch format and metrics), else None; with
    the run's latency table or measured latencies when it has them (``latency_ms`` among its metrics)."""
    try:
        from nasplug.pipeline.context import build_space
        from nasplug.recipe import Component

        space = build_space(Component.model_validate(recipe["space"]), _task(recipe) if recipe.get("task") else None)
    except Exception:
        return None
    from nasplug.pipeline.latency import attach_run_latency

    return attach_run_latency(space, recipe, run_dir, read_only=True)  # a damaged table is one line naming it


def _task(recipe: dict[str, Any]) -> Any:
    """The run's task if it can be built (for its primary metric; its data are not read), else None."""
    try:
        from nasplug.pipeline.context import build_task
        from nasplug.recipe import Component

        return build_task(Component.model_validate(recipe["task"]))
    except Exception:
        return None
