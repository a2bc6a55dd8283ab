"""PNG plots of a run: search curve, choice frequency by position, arch strip, training curves.

Everything is drawn with matplotlib's Agg backend (no display needed) and written
atomically. Plots are generic over archs (dicts of choices), so any space gets them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from nasplug.arch import Arch  # noqa: E402
from nasplug.io import save_png  # noqa: E402
from nasplug.search import SearchResult  # noqa: E402

#: The palette: an option takes the colour of its place among the plot's options sorted by
#: name, unless the space names its own colours (a ``colors`` mapping: option -> colour).
CYCLE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]




def _color(option: Any, options: Sequence[Any], colors: Mapping[str, str] | None = None) -> str:
    return (colors or {}).get(str(option)) or CYCLE[list(options).index(option) % len(CYCLE)]


def search_curve(result: SearchResult, path: str | Path, title: str = "search") -> Path:
    """Every evaluation's score (dots) and the best so far (line) against evaluations."""
    scores = [float(t.score) for t in result.scored]  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(range(1, len(scores) + 1), scores, s=6, alpha=0.35, color="#8C8C8C", label="evaluated")
    ax.plot(range(1, len(scores) + 1), result.best_so_far(), color="#C44E52", lw=2, label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"{result.metric} ({result.direction})")
    ax.set_title(title)
    ax.legend(loc="lower right" if result.direction == "maximize" else "upper right")
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def choice_frequency(archs: Sequence[Arch], choices: Mapping[str, Sequence[Any]], path: str | Path,
                     title: str = "choices among the top candidates", colors: Mapping[str, str] | None = None) -> Path:
    """Stacked bars: how often each option appears at each position among ``archs``
    (``colors``: the space's own option -> colour, if it has one)."""
    keys = list(choices)
    options = sorted({o for opts in choices.values() for o in opts}, key=str)
    counts = [Counter(a[k] for a in archs) for k in keys]
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(keys) + 2), 3.8))
    bottom = [0.0] * len(keys)
    for option in options:
        share = [c.get(option, 0) / max(len(archs), 1) for c in counts]
        ax.bar(range(len(keys)), share, bottom=bottom, color=_color(option, options, colors), label=str(option),
               width=0.85)
        bottom = [b + s for b, s in zip(bottom, share)]
    ax.set_xticks(range(len(keys)), keys, rotation=90 if len(keys) > 12 else 0, fontsize=8)
    ax.set_ylabel(f"share of top {len(archs)}")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend(
        ncol=len(options), loc="upper center", bbox_to_anchor=(0.5, -0.18 if len(keys) > 12 else -0.1), frameon=False
    )
    return save_png(fig, path)


def arch_strips(rows: Mapping[str, Arch], choices: Mapping[str, Sequence[Any]], path: str | Path,
                title: str = "architectures", colors: Mapping[str, str] | None = None) -> Path:
    """One coloured strip per named arch: a cell per position, coloured by option
    (``colors``: the space's own option -> colour, if it has one)."""
    keys = list(choices)
    options = sorted({o for opts in choices.values() for o in opts}, key=str)
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(keys) + 2.5), 0.55 * len(rows) + 0.9))
    for r, arch in enumerate(rows.values()):
        for i, key in enumerate(keys):
            value = arch[key]
            ax.add_patch(plt.Rectangle((i, -r - 0.9), 0.95, 0.8, color=_color(value, options, colors)))
            ax.text(i + 0.47, -r - 0.5, str(value)[:1].upper(), ha="center", va="center", fontsize=7, color="white")
    ax.set_xlim(0, len(keys))
    ax.set_ylim(-len(rows), 0)
    ax.set_yticks([-r - 0.5 for r in range(len(rows))], list(rows))
    ax.set_xticks([i + 0.47 for i in range(len(keys))], [str(i) for i in range(len(keys))], fontsize=7)
    ax.set_xlabel("position")
    ax.set_title(title)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=_color(o, options, colors)) for o in options]
    ax.legend(handles, [str(o) for o in options], ncol=len(options), loc="upper center",
              bbox_to_anchor=(0.5, -0.35 - 0.05 * len(rows)), frameon=False)
    return save_png(fig, path)


def training_curves(series: Mapping[str, Sequence[Mapping[str, Any]]], metric: str, path: str | Path,
                    title: str | None = None, x: str = "step") -> Path:
    """``metric`` against ``x`` for several runs (records from metrics.jsonl files)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, records) in enumerate(series.items()):
        points = [(r[x], r[metric]) for r in records if metric in r and x in r]
        if points:
            ax.plot(*zip(*points), label=name, color=CYCLE[i % len(CYCLE)], lw=1.6)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_png(fig, path)


def pareto_front(points: Sequence[Sequence[float]], on_front: Sequence[bool], objectives: Sequence[Any],
                 path: str | Path) -> Path:
    """Every evaluated arch (grey) and the Pareto front (red), in the metrics' own units: one
    panel for two objectives, one per pair of objectives for more (``objectives``: each with
    ``metric`` and ``direction``)."""
    pairs = [(i, j) for i in range(len(objectives)) for j in range(i + 1, len(objectives))]
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.0 * rows), squeeze=False)
    for ax, (i, j) in zip(axes.flat, pairs):
        rest = [p for p, f in zip(points, on_front) if not f]
        front = sorted((p for p, f in zip(points, on_front) if f), key=lambda p: (p[i], p[j]))
        ax.scatter([p[i] for p in rest], [p[j] for p in rest], s=8, alpha=0.4, color="#8C8C8C", label="evaluated")
        ax.scatter([p[i] for p in front], [p[j] for p in front], s=22, color="#C44E52", label="Pareto front",
                   zorder=3)
        if len(objectives) == 2 and front:
            ax.plot([p[i] for p in front], [p[j] for p in front], color="#C44E52", lw=1, alpha=0.6)
        ax.set_xlabel(f"{objectives[i].metric} ({objectives[i].direction})")
        ax.set_ylabel(f"{objectives[j].metric} ({objectives[j].direction})")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize="small")
    fig.suptitle(f"{sum(on_front)} non-dominated of {len(points)} evaluated architectures")
    return save_png(fig, path)


def anytime(curve: Sequence[float], path: str | Path, ylabel: str, title: str) -> Path:
    """One value per scored evaluation (e.g. the front's hypervolume) against evaluations."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(range(1, len(curve) + 1), curve, color="#4C72B0", lw=2)
    ax.set_xlabel("evaluations")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return save_png(fig, path)
