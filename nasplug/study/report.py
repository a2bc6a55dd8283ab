"""The study's table, tests and plot: ``study.json``, ``study.md``, ``study.png``.

Per row and figure, the value at seed k is the mean over the row's archs at seed k (one arch
for a searched or fixed row, N for a random row); the row shows the mean and standard
deviation of those K values. Each row is tested against the reference row with a paired
t-test over the seeds (the same seed gives both models the same data order), Holm-corrected
over the rows; with K = 3 seeds a t-test is the only paired test with any power (Wilcoxon's
smallest two-sided p is 0.25), and it assumes roughly normal differences: read p-values
with that in mind.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from nasplug.arch import Arch
from nasplug.io import atomic_write_json, atomic_write_text, save_png
from nasplug.report.table import markdown_table
from nasplug.study.plan import downstream_figures

Results = dict[str, list[dict[int, dict[str, float]]]]


def per_seed(runs: list[dict[int, dict[str, float]]], key: str, seeds: list[int]) -> list[float]:
    """The row's value at each seed: the mean over its archs (NaN when any is missing)."""
    out = []
    for seed in seeds:
        values = [r[seed][key] for r in runs if seed in r and key in r[seed]]
        out.append(statistics.fmean(values) if len(values) == len(runs) and values else math.nan)
    return out


def paired_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided paired t-test p-value (None when it is undefined)."""
    pairs = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
    if len(pairs) < 2 or all(x == y for x, y in pairs):
        return None
    from scipy import stats

    diffs = [x - y for x, y in pairs]
    if statistics.pstdev(diffs) == 0:
        return 0.0
    return float(stats.ttest_rel([x for x, _ in pairs], [y for _, y in pairs]).pvalue)


def summarize(cfg: Any, space: Any, task: Any, archs: dict[str, list[Arch]], results: Results,
              downstream: dict[str, str] | None = None, headlines: list[str] | None = None) -> dict[str, Any]:
    """Every row's figures (mean, std, per seed), its size metrics, and the tests.

    The headline is ``study.metric`` (checked before training: a metric of ``task``, or one
    of the ``downstream`` figures, name -> direction), else the task's primary metric; a
    task metric is read on the held-out split (``heldout_<metric>``). The plot has a panel
    for the headline and one for each downstream stage's ``headlines`` the runs measured."""
    from nasplug.compare.stats import holm

    downstream = downstream or {}
    seeds = list(cfg.seeds)
    keys = sorted({k for runs in results.values() for r in runs for f in r.values() for k in f})
    metric = cfg.metric or task.primary_metric()
    headline = metric if metric in downstream and metric not in task.metrics else f"heldout_{metric}"
    rows: dict[str, Any] = {}
    for name, runs in results.items():
        sizes = [space.metrics(a) for a in archs[name]]
        figures = {}
        for key in keys:
            values = per_seed(runs, key, seeds)
            finite = [v for v in values if math.isfinite(v)]
            figures[key] = {"per_seed": values, "mean": statistics.fmean(finite) if finite else None,
                            "std": statistics.stdev(finite) if len(finite) > 1 else None}
        arch_means = [statistics.fmean([r[s][headline] for s in seeds if s in r and headline in r[s]])
                      for r in runs if any(headline in f for f in r.values())]
        rows[name] = {
            "archs": [space.format(a) for a in archs[name]],
            "figures": figures,
            "arch_means": arch_means,
            **{m: statistics.fmean(s[m] for s in sizes) for m in ("params", "flops") if all(m in s for s in sizes)},
        }
    reference = cfg.reference
    tests = {}
    if reference is not None:
        others = [n for n in rows if n != reference]
        raw = [paired_p(rows[n]["figures"].get(headline, {}).get("per_seed", []),
                        rows[reference]["figures"].get(headline, {}).get("per_seed", [])) for n in others]
        adjusted = holm([p if p is not None else 1.0 for p in raw])
        for name, p, adj in zip(others, raw, adjusted):
            tests[name] = {"p_value": p, "p_holm": None if p is None else adj}
    direction = task.metrics.get(metric) or downstream.get(metric, "maximize")
    panels = [headline, *(k for k in headlines or [] if k != headline and k in keys)]
    return {"seeds": seeds, "metric": metric, "headline": headline, "direction": direction, "reference": reference,
            "columns": keys, "rows": rows, "tests": tests, "panels": panels}


def _cell(entry: dict[str, Any] | None) -> Any:
    if not entry or entry.get("mean") is None:
        return None
    std = entry.get("std")
    return f"{entry['mean']:.4g}" + (f" ± {std:.2g}" if std is not None else "")


def table(summary: dict[str, Any]) -> str:
    """Markdown table: rows, size, every figure as mean ± std, p-value against the reference."""
    columns = [c for c in summary["columns"] if not c.endswith("_per_s")]
    sizes = [m for m in ("params", "flops") if any(row.get(m) is not None for row in summary["rows"].values())]
    headers = ["row", "archs", *sizes, *[c.replace("_", " ") for c in columns],
               f"p vs {summary['reference']} (Holm)"]
    out = []
    for name, row in summary["rows"].items():
        test = summary["tests"].get(name, {})
        p = test.get("p_value")
        pcell = "reference" if name == summary["reference"] else (
            "-" if p is None else f"{p:.3g} ({test['p_holm']:.3g})")
        archs = row["archs"][0] if len(row["archs"]) == 1 else f"{len(row['archs'])} random"
        out.append([name, archs, *[row.get(m) for m in sizes], *[_cell(row["figures"].get(c)) for c in columns], pcell])
    return markdown_table(headers, out)


def plot(summary: dict[str, Any], path: Path) -> Path:
    """One row per line: the mean over seeds with a ±1 std bar, each seed (and, for a random
    row, each arch's mean) as a small dot; the reference row's mean as a dashed line. A
    second panel shows the downstream headline (GLUE: its average) when the study has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = summary.get("panels") or [summary["headline"]]
    names = list(summary["rows"])
    fig, axes = plt.subplots(1, len(keys), figsize=(6.5 * len(keys), 0.55 * len(names) + 1.6), squeeze=False,
                             sharey=True)
    for i, (ax, key) in enumerate(zip(axes[0], keys)):
        _panel(ax, summary, names, key)
        if i:  # the rows are named once, on the left: later panels share the axis
            ax.tick_params(axis="y", labelleft=False)
    return save_png(fig, path)


def _panel(ax: Any, summary: dict[str, Any], names: list[str], key: str) -> None:
    for y, name in enumerate(names):
        row = summary["rows"][name]
        entry = row["figures"].get(key, {})
        seeds = [v for v in entry.get("per_seed", []) if math.isfinite(v)]
        ax.scatter(seeds, [y] * len(seeds), s=12, color="#8C8C8C", zorder=2, label="seeds" if y == 0 else None)
        if len(row["arch_means"]) > 1 and key == summary["headline"]:
            ax.scatter(row["arch_means"], [y + 0.18] * len(row["arch_means"]), s=12, marker="^", color="#DD8452",
                       zorder=2, label="random archs (mean over seeds)")
        if entry.get("mean") is not None:
            ax.errorbar(entry["mean"], y, xerr=entry.get("std") or 0, fmt="o", color="#4C72B0", capsize=4, zorder=3)
    ref = summary["rows"].get(summary["reference"] or "", {}).get("figures", {}).get(key, {})
    if ref.get("mean") is not None:
        ax.axvline(ref["mean"], ls="--", color="#C44E52", lw=1, label=f"{summary['reference']} (mean)")
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first row on top (idempotent on a shared axis, unlike invert_yaxis)
    ax.set_xlabel(f"{key}, mean ± std over {len(summary['seeds'])} seeds")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")


def write_study(ctx: Any, cfg: Any, archs: dict[str, list[Arch]], results: Results, folder: Path) -> dict[str, Any]:
    """Write study.json / study.md / study.png; return the summary."""
    summary = summarize(cfg, ctx.space, ctx.retrain_task, archs, results, *downstream_figures(ctx))
    text = table(summary)
    md = [f"# Study: {ctx.recipe.name}", "",
          f"{len(summary['rows'])} rows, {len(summary['seeds'])} seeds each (seeds {summary['seeds']}); every row "
          f"trained from scratch with the same settings. Headline: {summary['headline']}. p: two-sided paired t-test "
          f"against {summary['reference']} over the seeds, Holm-corrected over the rows.", "",
          "![study](study.png)", "", text, ""]
    plot(summary, folder / "study.png")
    atomic_write_text(folder / "study.md", "\n".join(md))
    atomic_write_json(folder / "study.json", {**summary, "table": text})
    return {**summary, "table": text}
