"""The outputs of ``nasplug rank-corr``: ``rank_corr.json``, ``.md`` and ``.png``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nasplug.io import atomic_write_json, atomic_write_text


def _clean(value: Any) -> Any:
    """NaN -> None everywhere, so the JSON is strict (NaN is not JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt_coef(entry: dict[str, Any]) -> str:
    def f(v: float | None) -> str:
        return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    return f"{f(entry['estimate'])} [{f(entry['ci_low'])}, {f(entry['ci_high'])}] (p = {f(entry['p_value'])})"


def summary_lines(result: dict[str, Any]) -> list[str]:
    """Kendall / Spearman / top-1 lines, for the Markdown file and the terminal."""
    conf = round(100 * result["bootstrap"]["confidence"])
    top = result["top_k"]
    overlap = ", ".join(f"top-{k} {v:.2f}" for k, v in top["overlap"].items())
    return [
        f"Kendall tau: {_fmt_coef(result['kendall_tau'])}",
        f"Spearman rho: {_fmt_coef(result['spearman_rho'])}",
        f"{conf}% bootstrap percentile intervals, {result['bootstrap']['used']} of {result['bootstrap']['resamples']} "
        f"resamples usable ({result['bootstrap']['skipped_constant']} with a constant score skipped)",
        f"Supernet's top pick is standalone rank {top['top1_standalone_rank']} of {result['archs']} "
        f"(regret {top['top1_regret']:.4g}); overlap {overlap}",
    ]


def table(result: dict[str, Any]) -> str:
    """Markdown table of the archs, best supernet score first (lowest, for a loss)."""
    from nasplug.report.table import markdown_table

    pairs = result["pairs"]
    sign = -1.0 if result.get("direction") == "minimize" else 1.0
    sa_rank = {
        p["index"]: r for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["standalone"], p["index"])), 1)
    }
    rows = [[r, sa_rank[p["index"]], p["index"], p["arch"], f"{p['supernet']:.6g}", f"{p['standalone']:.6g}",
             p["supernet_metrics"].get("params")]
            for r, p in enumerate(sorted(pairs, key=lambda p: (-sign * p["supernet"], p["index"])), 1)]
    m = result["metric"]
    return markdown_table(["supernet rank", "standalone rank", "#", "arch", f"supernet {m}", f"standalone {m}",
                           "params"], rows)


def write_outputs(result: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """``rank_corr.json`` / ``.md`` / ``.png`` in ``out_dir`` (each written atomically)."""
    files = {"json": out_dir / "rank_corr.json", "md": out_dir / "rank_corr.md", "png": out_dir / "rank_corr.png"}
    md = [f"# Rank correlation: supernet vs standalone ({result['metric']})", "",
          f"Run `{result['run_dir']}`: {result['archs']} archs (seed {result['seed']}), each trained standalone "
          f"for {result['steps']} steps; both scored on the same {result['evaluator']['heldout_batches']} "
          "pre-masked held-out batches.", ""]
    md += [f"- {line}" for line in summary_lines(result)]
    md += ["", "![supernet score vs standalone accuracy](rank_corr.png)", "", table(result), ""]
    scatter(result, files["png"])
    atomic_write_text(files["md"], "\n".join(md))
    out = {k: str(v) for k, v in files.items()}
    atomic_write_json(files["json"], _clean({**result, "files": out}))
    return out


def scatter(result: dict[str, Any], path: Path) -> Path:
    """Supernet score (x) against standalone score (y), each point labelled by its index."""
    import io

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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    from nasplug.io import atomic_write

    return atomic_write(path, lambda fh: fh.write(buffer.getvalue()))
