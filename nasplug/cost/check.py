"""``nasplug latency-check``: a table's predictions against direct measurement.

Draws ``n`` distinct random archs of the table's space (not the calibration ones: another
seed), measures each extracted model on the table's device (interleaved rounds, the fastest of each; see
:func:`~nasplug.cost.measure.measure_many`) in two passes or more, and reports Kendall tau and
the mean absolute percentage error of the predictions against the mean measurement, with a
scatter plot, and the measurement's own repeatability (tau between the passes): random archs
of a space often differ by a few per cent, and when two measurements of the same models
disagree on their order, no table can be shown to order them much better.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasplug.cost.measure import machine_name, measure_many
from nasplug.cost.table import LatencyTable, distinct_archs, parts_of
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json, save_png
from nasplug.space import SearchSpace


def table_space(table: LatencyTable) -> SearchSpace:
    """The space a table was measured for, rebuilt from the spec it stores."""
    from nasplug.registry import SPACES, build_plugin

    spec = dict(table.space)
    name = spec.pop("name")
    return build_plugin(SPACES, name, spec, field="space", kind=SearchSpace)


def check_table(table: LatencyTable, n: int, seed: int = 0, space: SearchSpace | None = None,
                progress: Callable[[int], None] | None = None, passes: int = 2) -> dict[str, Any]:
    """Predicted against measured latency of ``n`` random archs; the figures and the rows.

    The archs are measured ``passes`` times, each pass on freshly built models (their own
    memory), and compared with the mean over passes. With two passes or more the result also
    holds ``repeatability_tau``: Kendall tau between the passes (their mean over pairs), the
    agreement of single measurements with each other: a rough noise floor (the mean of K passes
    is less noisy than one, so a table may score above it against the mean, but not far).
    """
    if not 3 <= n <= 10_000:
        raise NasplugError(f"--archs: expected 3..10000 archs, got {n}")
    if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= 100:
        raise NasplugError(f"--passes: expected an integer in 1..100, got {passes!r}")
    space = space if space is not None else table_space(table)
    table.check_space(space)
    parts = parts_of(space)
    archs = distinct_archs(space, n, random.Random(f"check-{seed}"))
    if len(archs) < 3:
        raise NasplugError(f"--archs: the space has only {len(archs)} distinct archs; need at least 3")
    device = table.device
    runs = []
    for k in range(passes):
        models = [parts.latency_model(a, device.batch_size, device.seq_len) for a in archs]
        runs.append(measure_many(models, device, seed=seed + k, progress=progress))
        del models
    measured = [sum(values) / passes for values in zip(*runs, strict=True)]
    predicted = [table.predict(a, space) for a in archs]
    rows = [{"arch": space.format(a), "predicted_ms": p, "measured_ms": m, "passes_ms": [r[i] for r in runs]}
            for i, (a, p, m) in enumerate(zip(archs, predicted, measured, strict=True))]
    result = {"archs": len(rows), "passes": passes, "device": device.to_json(), "table_machine": table.machine,
              "machine": machine_name(), **agreement(predicted, measured)}
    if passes >= 2:
        tau = repeatability(runs)
        result["repeatability_tau"] = tau if math.isfinite(tau) else None  # None: a pass with every value tied
    return {**result, "rows": rows}


def repeatability(runs: list[list[float]]) -> float:
    """Mean Kendall tau between every two passes of the same archs' measurements."""
    from itertools import combinations

    from scipy.stats import kendalltau

    taus = [float(kendalltau(a, b).statistic) for a, b in combinations(runs, 2)]
    return sum(taus) / len(taus)


def agreement(predicted: list[float], measured: list[float]) -> dict[str, float]:
    """Kendall tau (tau-b, scipy) and mean absolute % error of ``predicted`` against ``measured``."""
    from scipy.stats import kendalltau

    tau = float(kendalltau(predicted, measured).statistic)
    mape = 100.0 * sum(abs(p - m) / m for p, m in zip(predicted, measured, strict=True)) / len(measured)
    return {"kendall_tau": tau, "mape_pct": mape}


def write_check(result: dict[str, Any], folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``latency_check.json`` and ``latency_check.png`` (measured against predicted, y = x) in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "latency_check.json", "plot": folder / "latency_check.png"}
    atomic_write_json(paths["json"], result)
    _plot(result, paths["plot"])
    return paths


def _plot(result: dict[str, Any], path: Path) -> None:

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pred = [r["predicted_ms"] for r in result["rows"]]
    meas = [r["measured_ms"] for r in result["rows"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(meas, pred, s=18, color="#4C72B0")
    low, high = min(pred + meas), max(pred + meas)
    ax.plot([low, high], [low, high], color="#8C8C8C", linewidth=1, linestyle="--")
    d = result["device"]
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("table-predicted latency (ms)")
    ceiling = (f"; between {result['passes']} passes {result['repeatability_tau']:.3f}"
               if result.get("repeatability_tau") is not None else "")
    ax.set_title(f"{d['name']}, {d['threads']} thread(s), batch {d['batch_size']}, seq {d['seq_len']}\n"
                 f"Kendall tau {result['kendall_tau']:.3f}, MAPE {result['mape_pct']:.1f}%{ceiling}", fontsize=9)
    save_png(fig, path)
