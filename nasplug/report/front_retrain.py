"""The report's "retrained front" section: the supernet's predicted front beside the same
archs retrained from scratch (``retrain.pareto``), and the rank agreement between the two.

For each objective the retrained models measure (held-out figures, mean over seeds) the
section gives Kendall tau between the supernet's values and the retrained ones over the
retrained front models; analytic objectives (``params``, ``latency_ms``) are the same number
on both sides. The plot draws the predicted front (every front arch), the retrained front
models at their retrained values (an arrow from each one's predicted point) and the baselines.
"""

from __future__ import annotations

import statistics
from typing import Any

from nasplug.layout import RunLayout
from nasplug.objectives import Objective
from nasplug.report.table import fmt, markdown_table
from nasplug.runfiles import read_json

PLOT = RunLayout.PARETO_RETRAINED_PLOT


def _retrained(view: Any, name: str) -> dict[str, float]:
    from nasplug.report.sections import model_runs, retrain_seeds

    runs = []
    for folder in model_runs(view.layout, name, retrain_seeds(view.recipe))[0]:
        heldout = (read_json(folder / "result.json") or {}).get("heldout")
        if isinstance(heldout, dict):
            runs.append({k: float(v) for k, v in heldout.items() if isinstance(v, (int, float))})
    keys = [k for k in (runs[0] if runs else {}) if all(k in r for r in runs)]
    return {k: statistics.fmean(r[k] for r in runs) for k in keys}


def _value(objective: Objective, predicted: dict[str, Any], figures: dict[str, float]) -> float | None:
    """The retrained value of an objective: a held-out figure, else the (analytic) metric itself."""
    if f"heldout_{objective.metric}" in figures:
        return figures[f"heldout_{objective.metric}"]
    return predicted.get(objective.metric) if figures else None


def retrained_front_section(view: Any) -> list[str]:
    """Markdown lines (empty when the run retrains no front)."""
    from nasplug.report.sections import _drawn, retrained_archs

    retrain = view.recipe.get("retrain")
    if not isinstance(retrain, dict) or not retrain.get("pareto"):
        return []
    data = view.layout.read_pareto()
    if data is None:
        return []
    objectives = [Objective(o["metric"], o["direction"]) for o in data["objectives"]]
    on_front = {_key(e["arch"]): e for e in data["front"]}
    rows, baselines = [], []
    for name, arch in retrained_archs(view).items():
        figures = _retrained(view, name)
        entry = on_front.get(_key(arch))
        if entry is None:
            if figures:
                metrics = view.space.metrics(arch) if view.space is not None else {}
                baselines.append((name, [_value(o, metrics, figures) for o in objectives]))
            continue
        rows.append((name, entry, [_value(o, {**entry["metrics"], **entry["values"]}, figures) for o in objectives]))
    if not rows:
        return []
    lines = ["## The front retrained", "",
             f"{len(rows)} archs spread along the supernet's front, retrained from scratch with the baselines "
             "(same steps and seeds): predicted = the supernet's value, retrained = the held-out figure of the "
             "retrained model (mean over seeds).", ""]
    headers = ["model", "arch"] + [f"{o.metric} {side}" for o in objectives for side in ("predicted", "retrained")]
    table = [[name, view.space.format(e["arch"]) if view.space is not None else e.get("text")]
             + [x for o, v in zip(objectives, values, strict=True) for x in (e["values"][o.metric], v)]
             for name, e, values in rows]
    lines += [markdown_table(headers, table), ""]
    lines += _agreement(objectives, rows)
    if len(objectives) >= 2 and _drawn(view, PLOT, lambda path: _plot(path, objectives, data, rows, baselines)):
        lines += [f"![predicted and retrained front]({PLOT})", ""]
    return lines


def _key(arch: Any) -> str:
    import json

    return json.dumps(arch, sort_keys=True)


def _agreement(objectives: list[Objective], rows: list[Any]) -> list[str]:
    from scipy.stats import kendalltau

    lines = []
    for i, o in enumerate(objectives):
        pairs = [(e["values"][o.metric], v[i]) for _, e, v in rows if v[i] is not None]
        if len(pairs) < 2 or all(p == r for p, r in pairs):
            continue  # analytic: the same number on both sides
        tau = float(kendalltau([p for p, _ in pairs], [r for _, r in pairs]).statistic)
        lines.append(f"Rank agreement on {o.metric} (supernet against retrained, {len(pairs)} models): "
                     f"Kendall tau {fmt(tau, 3)}.")
    return lines + [""] if lines else []


def _plot(path: Any, objectives: list[Objective], data: dict[str, Any], rows: list[Any], baselines: list[Any]) -> None:
    """Draw ``pareto_retrained.png`` (the report stage only: ``nasplug show`` writes nothing)."""
    from nasplug.io import save_png
    from nasplug.report.plots import plt

    x, y = objectives[1], objectives[0]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    front = sorted((e["values"][x.metric], e["values"][y.metric]) for e in data["front"])
    ax.plot([p[0] for p in front], [p[1] for p in front], "o-", color="#C44E52", ms=4, lw=1, alpha=0.7,
            label="supernet's front (predicted)")
    for name, e, values in rows:
        if values[0] is None or values[1] is None:
            continue
        ax.annotate("", xy=(values[1], values[0]), xytext=(e["values"][x.metric], e["values"][y.metric]),
                    arrowprops={"arrowstyle": "->", "color": "#8C8C8C", "lw": 0.8})
        ax.scatter([values[1]], [values[0]], s=40, color="#4C72B0", zorder=3)
        ax.annotate(name, (values[1], values[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    for name, values in baselines:
        if values[0] is not None and values[1] is not None:
            ax.scatter([values[1]], [values[0]], s=40, marker="s", color="#55A868", zorder=3)
            ax.annotate(name, (values[1], values[0]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.scatter([], [], s=40, color="#4C72B0", label="retrained front models")
    ax.set_xlabel(f"{x.metric} ({x.direction})")
    ax.set_ylabel(f"{y.metric} ({y.direction})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    save_png(fig, path)
