"""The rank-corr tables and curves beside ``rank_corr.md``: ``predictors.md``, ``budget.md/.png``
and ``eval_cost.md/.png`` (each with its ``.json``), read from the record of one call."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nasplug.io import atomic_write_json, atomic_write_text
from nasplug.report.table import markdown_table


def _f(value: Any, digits: int = 2) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def tau_cell(row: dict[str, Any]) -> str:
    tau = row["kendall_tau"]
    return f"{_f(tau['estimate'])} [{_f(tau['ci_low'])}, {_f(tau['ci_high'])}]"


def _seconds(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _overlap(row: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v:.2f}" for k, v in row["top_k"]["overlap"].items() if v is not None)


def _pick_cells(top: dict[str, Any], n: int) -> list[str]:
    """The top pick's standalone rank and regret; "undefined" when every score tied."""
    if top["top1_standalone_rank"] is None:
        return ["undefined (all scores equal)", ""]
    return [f"{top['top1_standalone_rank']} of {n}", f"{top['top1_regret']:.4g}"]


def predictors_table(result: dict[str, Any]) -> str:
    """One row per predictor: tau [95% CI], rho, top-k overlap, the standalone rank and regret
    of its top pick, tau against single seeds as a fraction of the noise ceiling, cost."""
    n = result["archs"]
    rows = [[r["label"], tau_cell(r), _f(r["spearman_rho"]["estimate"]), _overlap(r),
             *_pick_cells(r["top_k"], n),
             _f(r["of_ceiling"]), _seconds(r["seconds_per_arch"]), _seconds(r.get("one_off_s"))]
            for r in result["predictors"]]
    ceiling = result["noise_ceiling"]
    if result["num_seeds"] >= 2:
        rows.append([f"noise ceiling (seed vs seed, {result['num_seeds']} seeds)", tau_cell({"kendall_tau": ceiling}),
                     "", "", "", "", "1.00", "", ""])
    return markdown_table(["predictor", "Kendall tau [95% CI]", "Spearman rho", "top-k overlap", "top pick",
                           "regret", "tau / ceiling", "s per arch", "one-off s"], rows)


def budget_table(result: dict[str, Any]) -> str:
    rows = [[r["step"], tau_cell(r), _f(r["spearman_rho"]["estimate"]), _f(r["of_ceiling"]),
             *_pick_cells(r["top_k"], result["archs"]),
             _seconds(r.get("one_off_s"))] for r in result["budget"]]
    return markdown_table(["supernet step", "Kendall tau [95% CI]", "Spearman rho", "tau / ceiling", "top pick",
                           "regret", "training s (~)"], rows)


def eval_cost_table(result: dict[str, Any]) -> str:
    rows = [[v["description"], p["batches"], tau_cell(p), _f(p["spearman_rho"]["estimate"]), _f(p["of_ceiling"]),
             _seconds(p["seconds_per_arch"])] for v in result["eval_cost"] for p in v["curve"]]
    return markdown_table(["evaluator", "held-out batches", "Kendall tau [95% CI]", "Spearman rho", "tau / ceiling",
                           "s per arch"], rows)


def _plot(path: Path, series: list[tuple[str, list[float], list[dict[str, Any]]]], xlabel: str, title: str,
          ceiling: dict[str, Any] | None, log_x: bool = False) -> None:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nasplug.io import save_png

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, xs, rows) in enumerate(series):
        xs = [x * (1.0 + 0.025 * (i - (len(series) - 1) / 2)) for x in xs]  # side by side: bars do not overlap
        est = [_num(r["kendall_tau"]["estimate"]) for r in rows]  # written JSON holds null for nan
        low = [_num(r["kendall_tau"]["ci_low"]) for r in rows]
        high = [_num(r["kendall_tau"]["ci_high"]) for r in rows]
        ax.errorbar(xs, est, yerr=[[_nz(e - lo) for e, lo in zip(est, low)], [_nz(h - e) for e, h in zip(est, high)]],
                    marker="o", capsize=3, label=label)
    if ceiling is not None and not math.isnan(_num(ceiling["estimate"])):
        ax.axhline(ceiling["estimate"], color="#555555", linestyle="--", label="noise ceiling (seed vs seed)")
        if not (math.isnan(_num(ceiling["ci_low"])) or math.isnan(_num(ceiling["ci_high"]))):
            ax.axhspan(ceiling["ci_low"], ceiling["ci_high"], color="#999999", alpha=0.15)
    if log_x:
        ax.set_xscale("log", base=2)
    ticks = sorted({x for _, xs, _ in series for x in xs})
    ax.set_xticks(ticks, [f"{x:,}" for x in ticks])
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Kendall tau vs standalone (95% CI)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_png(fig, path)


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _nz(value: float) -> float:
    return 0.0 if value is None or math.isnan(value) else max(value, 0.0)


def write_tables(result: dict[str, Any], layout: Any) -> dict[str, str]:
    """The files of the predictors, budget and evaluation-cost parts the result has."""
    files: dict[str, str] = {}
    ceiling = result["noise_ceiling"] if result["num_seeds"] >= 2 else None
    head = (f"{result['archs']} archs ({result['sample']}), {result['steps']} standalone steps x {result['num_seeds']} "
            f"seed(s), {result['metric']} on {result['evaluator']['heldout_batches']} held-out batches.")
    if len(result["predictors"]) > 1:
        files["predictors_md"] = str(atomic_write_text(layout.output("predictors", "md"), "\n".join([
            "# Predictors against standalone training", "", head, "", predictors_table(result), ""])))
        files["predictors_json"] = str(atomic_write_json(layout.output("predictors", "json"), result["predictors"]))
    if result["budget"]:
        png = layout.output("budget", "png")
        _plot(png, [("this run's supernet", [r["step"] for r in result["budget"]], result["budget"])],
              "supernet training steps", f"training-budget curve ({head[:60]}...)", ceiling)
        files["budget_md"] = str(atomic_write_text(layout.output("budget", "md"), "\n".join([
            "# Training-budget curve", "", head, "", budget_table(result), "", "![budget](budget.png)", ""])))
        files["budget_json"] = str(atomic_write_json(layout.output("budget", "json"), result["budget"]))
        files["budget_png"] = str(png)
    if result["eval_cost"]:
        png = layout.output("eval_cost", "png")
        _plot(png, [(v["description"], [p["batches"] for p in v["curve"]], v["curve"]) for v in result["eval_cost"]],
              "held-out batches", "evaluation-cost curve", ceiling, log_x=True)
        files["eval_cost_md"] = str(atomic_write_text(layout.output("eval_cost", "md"), "\n".join([
            "# Evaluation-cost curve", "", head, "", eval_cost_table(result), "", "![eval cost](eval_cost.png)", ""])))
        files["eval_cost_json"] = str(atomic_write_json(layout.output("eval_cost", "json"), result["eval_cost"]))
        files["eval_cost_png"] = str(png)
    return files
