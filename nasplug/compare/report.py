"""Rendering a comparison: Markdown tables and the anytime plot (PNG, matplotlib Agg)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nasplug.compare.stats import band, padded
from nasplug.io import atomic_write
from nasplug.report.table import fmt, markdown_table


def _mean_std(mean: float, std: float | None) -> str:
    return fmt(mean) if std is None else f"{fmt(mean)} ± {fmt(std)}"


def _evals_cell(info: Mapping[str, Any], budget: int) -> str:
    return f">{budget}" if info["median"] is None else fmt(info["median"])


def score_table(summary: Mapping[str, Any], budget: int, metric: str, regret: bool = False) -> str:
    """Per strategy: mean ± std of the best score (or regret) at each budget, and evaluations
    to reach the target (median over seeds, with how many runs reached it)."""
    budgets = summary["budgets"]
    what = "regret" if regret else metric
    headers = ["strategy", "runs"] + [f"{what} @{b}" for b in budgets] + ["evals to target", "reached"]
    rows = []
    for name, info in summary["strategies"].items():
        cells = []
        for row in info["at"]:
            cells.append(
                _mean_std(row["regret_mean"], row["regret_std"]) if regret else _mean_std(row["mean"], row["std"])
            )
        evals = info["evals_to_target"]
        rows.append([name, info["runs"], *cells, _evals_cell(evals, budget), f"{evals['reached']}/{info['runs']}"])
    return markdown_table(headers, rows)


def tests_table(tests: Sequence[Mapping[str, Any]]) -> str:
    """One row per pair: the test, its sample size, raw and Holm-adjusted p, the better one."""
    rows = []
    for t in tests:
        better = t["better"] if t["better"] is not None else "tie"
        mark = "yes" if t["significant"] else "no"
        rows.append([t["a"], t["b"], t["test"], t["n"], t["p"], t["p_holm"], better, mark, t.get("note") or ""])
    return markdown_table(["a", "b", "test", "n", "p", "p (Holm)", "better mean", "significant", "note"], rows)


def render_markdown(data: Mapping[str, Any]) -> str:
    """``comparison.md``: the setup, the tables, and how to read them."""
    cfg, summary, truth = data["config"], data["summary"], data.get("ground_truth")
    budget, metric = cfg["budget"], cfg["metric"]
    seeds = cfg["seeds"]
    target = summary["target"]
    parts = [f"# Strategy comparison: {cfg['recipe']}", "",
             f"Objective: {metric} ({cfg['direction']}). Budget: {budget} scored evaluations per run, "
             f"batch size {cfg['batch_size']}. Seeds: {', '.join(map(str, seeds))} ({len(seeds)} per strategy). "
             f"Strategies: {', '.join(cfg['strategies'])}.", ""]
    if truth is not None:
        parts += [f"Ground truth: {truth['feasible']:,} feasible archs scored; optimum {metric} = "
                  f"{fmt(truth['optimum'], 8)} (`{truth['arch_text']}`).", ""]
    parts += [f"Target: {fmt(target['value'], 8)} ({target['source']}).", "",
              f"## Best {metric} found (mean ± std over seeds)", "", score_table(summary, budget, metric), ""]
    if truth is not None:
        parts += ["## Regret against the true optimum (mean ± std over seeds)", "",
                  score_table(summary, budget, metric, regret=True), ""]
    if summary["tests"]:
        parts += [f"## Pairwise tests on the best {metric} at budget {budget}", "", tests_table(summary["tests"]), ""]
    early = [f"{r['strategy']} seed {r['seed']} ({r['scored']})" for r in data["runs"] if r["scored"] < budget]
    parts += ["## Method", "",
              "- Every strategy and seed ran against the same evaluator through one shared cache "
              "(`cache.jsonl`): an arch is scored once, whichever run proposes it first, and the cache "
              "never changes a score. Each run is seeded with its seed number; strategy runs with the "
              "same seed are paired in the tests.",
              "- `@b` columns: best-so-far after b scored evaluations (cache hits count, as in `search()`); "
              "std is the sample standard deviation (ddof=1).",
              "- Evaluations to target: median over seeds of the first evaluation whose best-so-far reaches "
              f"the target; a run that never reaches it counts as infinitely late (shown as >{budget}).",
              "- Pairwise tests: two-sided Wilcoxon signed-rank on seed-paired final bests (Pratt's "
              "handling of zero differences), Mann-Whitney U where seeds differ; p-values Holm-corrected "
              f"over all pairs, significant at {summary['alpha']}. Identical samples get p = 1. With n seeds "
              f"the smallest possible two-sided Wilcoxon p is 2/2^n ({2 / 2 ** len(seeds):.3g} here).",
              "- `anytime.png`: mean best-so-far (regret in ground-truth mode, symlog axis) per strategy, "
              "band = 95% Student-t confidence interval of the mean over seeds."]
    if early:
        parts.append(f"- Runs whose strategy stopped proposing before the budget (scored): {', '.join(early)}; "
                     "their last best is carried forward.")
    parts += ["", "![anytime curves](anytime.png)", ""]
    return "\n".join(parts)


def plot_anytime(path: str | Path, curves: Mapping[str, Mapping[int, Sequence[float]]], budget: int, *,
                 metric: str, direction: str, optimum: float | None = None) -> Path:
    """Mean best-so-far per strategy with a 95% band; regret on a symlog axis when the optimum
    is known. Uses the object-oriented Agg API, so no global pyplot state is touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    x = list(range(1, budget + 1))
    sign = 1.0 if direction == "maximize" else -1.0
    smallest = math.inf
    for name, runs in curves.items():
        rows = [padded(runs[s], budget) for s in sorted(runs)]
        if optimum is not None:
            rows = [[sign * (optimum - v) for v in row] for row in rows]
        mean, lo, hi = band(rows)
        line = ax.plot(x, mean, label=f"{name} (n={len(rows)})", linewidth=1.5)[0]
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        positive = [v for v in mean if v > 0]
        smallest = min([smallest, *positive])
    ax.set_xlabel("scored evaluations")
    if optimum is not None:
        linthresh = 10 ** math.floor(math.log10(smallest)) if math.isfinite(smallest) else 1e-6
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(f"regret of best {metric} (symlog)")
    else:
        ax.set_ylabel(f"best {metric} so far ({direction})")
    ax.set_title("anytime performance: mean over seeds, 95% CI band")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
