"""The outputs of ``nasplug rank-corr``: ``rank_corr.json``, ``.md`` and ``.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nasplug.io import atomic_write_json, atomic_write_text


def clean_json(value: Any) -> Any:
    """NaN -> None everywhere, so the JSON is strict (NaN is not JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value


def _fmt_coef(entry: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    return f"{f(entry['estimate'])} [{f(entry['ci_low'])}, {f(entry['ci_high'])}] (p = {f(entry['p_value'])})"


def _pick_line(top: dict[str, Any], archs: int, overlap: str) -> str:
    if top["top1_standalone_rank"] is None:
        return "Supernet's top pick: undefined (every arch scored alike)"
    return (f"Supernet's top pick is standalone rank {top['top1_standalone_rank']} of {archs} "
            f"(regret {top['top1_regret']:.4g}); overlap {overlap}")


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Kendall / Spearman / top-1 lines (and the noise ceiling with K >= 2 seeds), for the
    Markdown file and the terminal."""
    conf = round(100 * result["bootstrap"]["confidence"])
    top = result["top_k"]
    overlap = ", ".join(f"top-{k} {v:.2f}" for k, v in top["overlap"].items() if v is not None)
    num_seeds = result.get("num_seeds", 1)
    against = f"the mean of {num_seeds} seeds" if num_seeds > 1 else "standalone training"
    lines = [
        f"Kendall tau (supernet vs {against}): {_fmt_coef(result['kendall_tau'])}",
        f"Spearman rho: {_fmt_coef(result['spearman_rho'])}",
        f"{conf}% bootstrap percentile intervals, {result['bootstrap']['used']} of {result['bootstrap']['resamples']} "
        f"resamples usable ({result['bootstrap']['skipped_constant']} with a constant score skipped)",
        _pick_line(top, result["archs"], overlap),
    ]
    if num_seeds > 1:
        ceiling = result["noise_ceiling"]
        f = _fmt_coef({**ceiling, "p_value": None}).removesuffix(" (p = nan)")
        pairs = len(ceiling["pairs"])
        lines.append(f"Noise ceiling (Kendall tau between standalone seeds, mean over {pairs} pair(s)): "
                     f"{f}; the supernet against single seeds: {_num(result['supernet_vs_seeds'])}, "
                     f"{_num(result['of_ceiling'])} of the ceiling")
    return lines


def _num(value: float | None) -> str:
    return "nan" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def table(result: dict[str, Any]) -> str:
    """Markdown table of the archs, best supernet score first (lowest, for a loss)."""
    from nasplug.report.table import markdown_table

    pairs = result["pairs"]
    sign = -1.0 if result.get("direction") == "minimize" else 1.0
    sa_rank = {
        p["index"]: r for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["standalone"], p["index"])), 1)
    }
    num_seeds = result.get("num_seeds", 1)
    rows = [[r, sa_rank[p["index"]], p["index"], p["arch"], f"{p['supernet']:.6g}", f"{p['standalone']:.6g}",
             *([" / ".join(f"{v:.4g}" for v in p["standalone_seeds"])] if num_seeds > 1 else []),
             p.get("params", p["supernet_metrics"].get("params"))]
            for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["supernet"], p["index"])), 1)]
    m = result["metric"]
    mean = f"standalone {m}" + (f" (mean of {num_seeds} seeds)" if num_seeds > 1 else "")
    return markdown_table(["supernet rank", "standalone rank", "#", "arch", f"supernet {m}", mean,
                           *(["per seed"] if num_seeds > 1 else []), "params"], rows)


def write_outputs(result: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """``rank_corr.json`` / ``.md`` / ``.png`` in ``out_dir``, and the predictors, budget and
    evaluation-cost files the result has (:mod:`nasplug.rankcorr.tables`), each atomically."""
    from nasplug.layout import RankCorrLayout
    from nasplug.rankcorr.tables import predictors_table, write_tables

    layout = RankCorrLayout(out_dir)
    files = {"json": layout.output("rank_corr", "json"), "md": layout.output("rank_corr", "md"),
             "png": layout.output("rank_corr", "png")}
    clean = clean_json(result)
    num_seeds = result.get("num_seeds", 1)
    md = [f"# Rank correlation: supernet vs standalone ({result['metric']})", "",
          f"Run `{result['run_dir']}`: {result['archs']} archs ({result.get('sample', 'uniform')}, seed "
          f"{result['seed']}), each trained standalone for {result['steps']} steps with {num_seeds} seed(s); all "
          f"scored on the same {result['evaluator']['heldout_batches']} pre-masked held-out batches.", ""]
    md += [f"- {line}" for line in summary_lines(result)]
    md += ["", "![supernet score vs standalone accuracy](rank_corr.png)", "", table(result), ""]
    if len(result.get("predictors", [])) > 1:
        md += ["## Predictors", "", predictors_table(clean), ""]
    more = write_tables(clean, layout)
    md += [f"See also [{Path(v).name}]({Path(v).name})" for k, v in more.items() if k.endswith("_md")]
    scatter(result, files["png"])
    atomic_write_text(files["md"], "\n".join(md) + "\n")
    out = {**{k: str(v) for k, v in files.items()}, **more}
    atomic_write_json(files["json"], clean_json({**result, "files": out}))
    return out


def scatter(result: dict[str, Any], path: Path) -> Path:
    """Supernet score (x) against standalone score (y), each point labelled by its index."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p["supernet"] for p in result["pairs"]]
    ys = [p["standalone"] for p in result["pairs"]]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(xs, ys, color="#4C72B0", zorder=3)
    for p in result["pairs"]:
        ax.annotate(str(p["index"]), (p["supernet"], p["standalone"]), textcoords="offset points", xytext=(4, 3),
                    fontsize=7, color="#555555")
    tau, rho = result["kendall_tau"], result["spearman_rho"]

    def f(v: float | None) -> str:
        return "nan" if v is None or math.isnan(v) else f"{v:.2f}"

    conf = round(100 * result["bootstrap"]["confidence"])
    ax.set_title(f"Kendall τ = {f(tau['estimate'])} [{f(tau['ci_low'])}, {f(tau['ci_high'])}] ({conf}% CI)\n"
                 f"Spearman ρ = {f(rho['estimate'])}, N = {result['archs']}, {result['steps']} steps", fontsize=9)
    ax.set_xlabel(f"supernet {result['metric']} (inherited weights)")
    ax.set_ylabel(f"standalone {result['metric']} (trained from scratch)")
    ax.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))  # close scores: long tick labels must not overlap
    ax.tick_params(axis="x", labelrotation=30)
    from nasplug.io import save_png

    return save_png(fig, path)
