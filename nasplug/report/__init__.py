"""Reading a run directory back: summary tables for ``nasplug show`` and ``report.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nasplug.errors import NasplugError
from nasplug.search import SearchResult
from nasplug.report.table import markdown_table
from nasplug.trials import TrialLog


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], SearchResult | None]:
    """The run's resolved recipe (as a dict) and its search result, if it searched."""
    run_dir = Path(run_dir)
    recipe_file = run_dir / "recipe.yaml"
    if not recipe_file.is_file():
        raise NasplugError(f"{run_dir}: not a nasplug run directory (no recipe.yaml)")
    recipe = yaml.safe_load(recipe_file.read_text()) or {}
    search_cfg = recipe.get("search") or {}
    trials = TrialLog(run_dir / "trials.jsonl")
    result = None
    if trials.exists():
        result = SearchResult(metric=search_cfg.get("metric", "score"), direction=search_cfg.get("direction", "maximize"),
                              trials=trials.read())
    return recipe, result


def top_table(result: SearchResult, k: int = 10, formatter: Any = None) -> str:
    """The k best distinct archs with their metrics."""
    top = result.top(k)
    metric_names = sorted({m for t in top for m in t.metrics if m != result.metric})[:4]
    rows = []
    for rank, trial in enumerate(top, start=1):
        text = formatter(trial.arch) if formatter else json.dumps(trial.arch, sort_keys=True)
        rows.append([rank, trial.number, text, trial.score] + [trial.metrics.get(m) for m in metric_names])
    return markdown_table(["rank", "trial", "arch", result.metric] + metric_names, rows)


def stage_table(run_dir: Path) -> str:
    from nasplug.pipeline import ORDER

    rows = []
    for stage in ORDER:
        path = run_dir / "stages" / f"{stage}.json"
        if path.is_file():
            rows.append([stage, json.loads(path.read_text()).get("wall_s")])
    return markdown_table(["stage", "wall time (s)"], rows) if rows else ""


def render_report(run_dir: str | Path, k: int = 10) -> tuple[str, str]:
    """(report.md text, the table printed in the terminal)."""
    from nasplug.report import sections

    run_dir = Path(run_dir)
    recipe, result = load_run(run_dir)
    space = _space(recipe)
    formatter = space.format if space is not None else (lambda arch: json.dumps(arch, sort_keys=True))
    parts = [f"# nasplug run: {recipe.get('name', run_dir.name)}", ""]
    if recipe.get("description"):
        parts += [recipe["description"], ""]
    printed: list[str] = []
    parts += sections.supernet_section(run_dir)
    if result is not None and result.scored:
        best = result.best
        assert best is not None
        counts = {s: sum(t.status == s for t in result.trials) for s in ("ok", "cached", "rejected", "failed")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        table = top_table(result, k, formatter)
        parts += ["## Search", "", f"Best architecture: `{formatter(best.arch)}` with {result.metric} = {best.score:.6g}", "",
                  f"Trials: {len(result.trials)} ({summary})", ""]
        for png, alt in (("search_curve.png", "search curve"), ("top_choices.png", "choices of the top architectures")):
            if (run_dir / png).is_file():
                parts += [f"![{alt}]({png})", ""]
        parts += ["### Top architectures", "", table, ""]
        printed.append(table)
    archs = _retrained_archs(run_dir, recipe, result, space)
    lines, table = sections.retrain_section(run_dir, archs, space)
    parts += lines
    if table:
        printed = [table]  # the found-vs-baseline table says more than the search's top list
    lines, table = sections.glue_section(run_dir, list(archs), recipe.get("expected"))
    parts += lines
    if table:
        printed.append(table)
    if recipe.get("expected"):
        parts += ["## The paper's numbers", "", "```yaml", yaml.safe_dump(recipe["expected"], sort_keys=False).strip(), "```", ""]
    stages = stage_table(run_dir)
    if stages:
        parts += ["## Wall time per stage", "", stages, ""]
    return "\n".join(parts), "\n\n".join(printed)


def _retrained_archs(run_dir: Path, recipe: dict[str, Any], result: SearchResult | None, space: Any) -> dict[str, Any]:
    """Name -> arch of the models the retrain stage trains (found first), if it applies."""
    retrain = recipe.get("retrain")
    if retrain is None or space is None:
        return {}
    archs: dict[str, Any] = {}
    if recipe.get("arch"):
        archs["found"] = space.parse(recipe["arch"])
    elif result is not None and result.best is not None:
        archs["found"] = result.best.arch
    for name, text in (retrain.get("baselines") or {}).items():
        if text == "interleaved":
            from nasplug.spaces.lvbert import interleaved

            text = interleaved(len(space.choices()))
        archs[name] = space.unconstrained().parse(text)
    return archs


def _space(recipe: dict[str, Any]) -> Any:
    """The run's space if it can be built (for its arch format and metrics), else None."""
    try:
        from nasplug.pipeline import build_space
        from nasplug.recipe import Component

        return build_space(Component.model_validate(recipe["space"]))
    except Exception:
        return None
