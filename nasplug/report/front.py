"""The Pareto front of a search with several objectives: ``pareto.json``, its two plots
(``pareto.png``, ``hypervolume.png``) and its report section.

``pareto.json`` holds exactly the non-dominated archs among the scored trials of
``trials.jsonl`` (each arch once, at its first trial), best first in the first objective,
with every metric; the hypervolume of that front and after each scored trial (the anytime
curve); and the reference point that bounds it: the recipe's ``search.reference_point``, else
the worst value of each objective over the scored archs. It is a pure function of the log,
so a resumed search writes the same file as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nasplug.io import atomic_write_json
from nasplug.layout import RunLayout
from nasplug.objectives import Objective, describe, reference_values
from nasplug.pareto import hypervolume_curve, losses, nadir
from nasplug.report.table import fmt, markdown_table
from nasplug.search import SearchResult
from nasplug.trials import Trial

RECIPE_REFERENCE = "the recipe's search.reference_point"
WORST_REFERENCE = "the worst value of each objective over the scored archs"


def _own_units(objectives: tuple[Objective, ...], point: tuple[float, ...]) -> dict[str, float]:
    """A loss vector back in the metrics' own units."""
    return {o.metric: -o.sign * x for o, x in zip(objectives, point, strict=True)}


def reference_point(result: SearchResult, given: Mapping[str, float] | None) -> tuple[tuple[float, ...], str]:
    """The hypervolume's reference as a loss vector, and where it comes from."""
    values = reference_values(result.objectives, given)
    if values is not None:
        return losses(result.objectives, values), RECIPE_REFERENCE
    return nadir([losses(result.objectives, result.values(t)) for t in result.distinct()]), WORST_REFERENCE


def front_data(result: SearchResult, fmt_arch: Callable[[Any], str],
               given: Mapping[str, float] | None) -> dict[str, Any]:
    """What ``pareto.json`` holds (see the module docstring); ``result`` has scored trials."""
    objectives = result.objectives
    reference, source = reference_point(result, given)
    front = sorted(result.front(), key=lambda t: -result.sign() * result.values(t)[0])
    curve = hypervolume_curve([losses(objectives, result.values(t)) for t in result.scored], reference)
    return {
        "objectives": [o.to_json() for o in objectives],
        "reference_point": _own_units(objectives, reference), "reference_source": source,
        "hypervolume": curve[-1], "scored": len(result.scored), "distinct": len(result.distinct()),
        "front": [_entry(result, t, fmt_arch) for t in front],
        "hypervolume_curve": curve,
    }


def _entry(result: SearchResult, trial: Trial, fmt_arch: Callable[[Any], str]) -> dict[str, Any]:
    values = dict(zip((o.metric for o in result.objectives), result.values(trial), strict=True))
    return {"trial": trial.number, "arch": trial.arch, "text": fmt_arch(trial.arch), "values": values,
            "metrics": trial.metrics}


def write_front(result: SearchResult, fmt_arch: Callable[[Any], str], run_dir: Path,
                given: Mapping[str, float] | None) -> dict[str, Any]:
    """Write ``pareto.json``, ``pareto.png`` and ``hypervolume.png``; return the data."""
    from nasplug.report import plots

    layout = RunLayout(run_dir)
    data = front_data(result, fmt_arch, given)
    atomic_write_json(layout.pareto, data)
    points = [result.values(t) for t in result.distinct()]
    on_front = {t.number for t in result.front()}
    plots.pareto_front(points, [t.number in on_front for t in result.distinct()], result.objectives,
                       layout.plot(layout.PARETO_PLOT))
    plots.anytime(data["hypervolume_curve"], layout.plot(layout.HYPERVOLUME_PLOT), "hypervolume of the front",
                  f"hypervolume over the search (reference: {source_short(data['reference_source'])})")
    return data


def source_short(source: str) -> str:
    return "recipe" if source == RECIPE_REFERENCE else "worst values seen"


def front_section(view: Any, result: SearchResult, fmt_arch: Callable[[Any], str]) -> tuple[list[str], str]:
    """The search section's lines for several objectives, and the front table."""
    data = view.layout.read_pareto()
    counts = {s: sum(t.status == s for t in result.trials) for s in ("ok", "cached", "rejected", "failed")}
    lines = ["## Search", "", f"Objectives: {describe(result.objectives)}.", "",
             f"Trials: {len(result.trials)} ({', '.join(f'{n} {s}' for s, n in counts.items() if n)})", ""]
    if data is None:
        return lines + ["The Pareto front is written when the search finishes.", ""], ""
    reference = ", ".join(f"{k} = {fmt(v, 6)}" for k, v in data["reference_point"].items())
    lines += [f"Pareto front: {len(data['front'])} of {data['distinct']} distinct scored archs are non-dominated; "
              f"hypervolume {fmt(data['hypervolume'], 6)} (reference point {reference}: "
              f"{data['reference_source']}).", ""]
    layout = view.layout
    for png, alt in ((layout.PARETO_PLOT, "Pareto front"), (layout.HYPERVOLUME_PLOT, "hypervolume over the search")):
        if layout.plot(png).is_file():
            lines += [f"![{alt}]({png})", ""]
    table = front_table(data, fmt_arch, view.top_k)
    return lines + ["### The front (best first in the first objective)", "", table, ""], table


def front_table(data: dict[str, Any], fmt_arch: Callable[[Any], str], k: int) -> str:
    names = [o["metric"] for o in data["objectives"]]
    rows = [[i + 1, e["trial"], fmt_arch(e["arch"])] + [e["values"].get(n) for n in names]
            for i, e in enumerate(data["front"][:max(k, 20)])]
    return markdown_table(["#", "trial", "arch", *names], rows)
