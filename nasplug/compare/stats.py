"""Statistics of a strategy comparison, computed from anytime curves alone.

A *curve* is the best objective value after each scored evaluation of one run (what
``SearchResult.best_so_far()`` returns), in the metric's own units. Everything here is a pure
function of the curves, so the same curves give the same numbers, bit for bit.

* Scores at several budgets: mean and sample standard deviation (ddof=1) over seeds, and
  regret (distance to the true optimum) when the optimum is known.
* Evaluations to reach a target: per run the first evaluation whose best-so-far reaches it;
  the median over seeds counts a run that never reaches it as infinitely late.
* Pairwise tests on the final bests: Wilcoxon signed-rank on seed-paired values (Pratt's
  treatment of zero differences), Mann-Whitney U when the seeds differ; Holm-corrected.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

Curves = Mapping[str, Mapping[int, Sequence[float]]]  # strategy -> seed -> best-so-far curve

ALPHA = 0.05


def default_budgets(budget: int, fractions: Sequence[float] = (0.1, 0.25, 0.5, 1.0)) -> list[int]:
    """10%, 25%, 50% and 100% of ``budget``, rounded half up, at least 1, without repeats."""
    return sorted({max(1, min(budget, int(f * budget + 0.5))) for f in fractions})


def value_at(curve: Sequence[float], evals: int) -> float:
    """Best-so-far after ``evals`` evaluations; a run that stopped early keeps its last best."""
    if not curve:
        return math.nan
    return float(curve[min(evals, len(curve)) - 1])


def padded(curve: Sequence[float], budget: int) -> list[float]:
    """``curve`` cut or extended (with its last value) to exactly ``budget`` points."""
    if not curve:
        return [math.nan] * budget
    return [float(v) for v in curve[:budget]] + [float(curve[-1])] * max(0, budget - len(curve))


def reaches(value: float, target: float, direction: str) -> bool:
    return value >= target if direction == "maximize" else value <= target


def evals_to_target(curve: Sequence[float], target: float, direction: str, budget: int | None = None) -> int | None:
    """The first evaluation (1-based) whose best-so-far reaches ``target``; None if never."""
    limit = len(curve) if budget is None else min(budget, len(curve))
    for i in range(limit):
        if reaches(curve[i], target, direction):
            return i + 1
    return None


def median_evals(evals: Sequence[int | None]) -> float | None:
    """Median with "never" as infinity; None when the median itself is "never"."""
    if not evals:
        return None
    median = float(np.median([math.inf if e is None else float(e) for e in evals]))
    return None if math.isinf(median) else median


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (ddof=1; None for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), (float(array.std(ddof=1)) if len(array) > 1 else None)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def compare_pair(a: Mapping[int, float], b: Mapping[int, float], direction: str) -> dict[str, Any]:
    """Two-sided test of strategy ``a`` against ``b`` on their final bests (keyed by seed).

    Seed-paired Wilcoxon when both have the same seeds, else Mann-Whitney U. All-equal
    samples get p = 1.0 with a note (scipy would raise or return nan there).
    """
    from scipy import stats

    sign = 1.0 if direction == "maximize" else -1.0
    xa, xb = [float(v) for v in a.values()], [float(v) for v in b.values()]
    diff = sign * (float(np.mean(xa)) - float(np.mean(xb)))
    out: dict[str, Any] = {"mean_diff": diff, "better": None if diff == 0 else ("a" if diff > 0 else "b")}
    paired = set(a) == set(b) and len(a) > 0
    if paired:
        seeds = sorted(a)
        x, y = [float(a[s]) for s in seeds], [float(b[s]) for s in seeds]
        out.update(test="wilcoxon", n=len(seeds))
        if all(u == v for u, v in zip(x, y, strict=True)):
            return {**out, "statistic": None, "p": 1.0, "note": "identical on every seed"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.wilcoxon(x, y, zero_method="pratt")
    else:
        out.update(test="mannwhitneyu", n=len(xa) + len(xb))
        if len(xa) == 0 or len(xb) == 0:
            return {**out, "statistic": None, "p": 1.0, "note": "no runs to compare"}
        if len(set(xa) | set(xb)) == 1:
            return {**out, "statistic": None, "p": 1.0, "note": "all values identical"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = stats.mannwhitneyu(xa, xb, alternative="two-sided")
    p = float(result.pvalue)
    note = None
    if not math.isfinite(p):
        p, note = 1.0, "test undefined (ties); reported as p = 1"
    return {**out, "statistic": float(result.statistic), "p": p, "note": note}


def pairwise_tests(
    finals: Mapping[str, Mapping[int, float]], direction: str, alpha: float = ALPHA
) -> list[dict[str, Any]]:
    """Every pair of strategies tested on final bests, with Holm-adjusted p-values."""
    rows = []
    for name_a, name_b in combinations(list(finals), 2):
        row = compare_pair(finals[name_a], finals[name_b], direction)
        better = row.pop("better")
        rows.append({"a": name_a, "b": name_b, **row, "better": {"a": name_a, "b": name_b}.get(better or "")})
    for row, adjusted in zip(rows, holm([r["p"] for r in rows]), strict=True):
        row["p_holm"] = adjusted
        row["significant"] = adjusted < alpha
    return rows


def summarize(curves: Curves, budget: int, *, direction: str, budgets: Sequence[int] | None = None,
              target: float | None = None, optimum: float | None = None) -> dict[str, Any]:
    """The numbers behind the comparison table.

    Args:
        curves: strategy -> seed -> best-so-far curve.
        budget: the full budget (curves are read at most this far).
        direction: ``maximize`` or ``minimize``.
        budgets: where to report scores (default :func:`default_budgets`).
        target: score to reach (default: ``optimum`` if known, else the median final best).
        optimum: the true optimum (ground-truth mode): adds regret.

    Returns:
        ``{"budgets", "target", "strategies": {name: {...}}, "tests": [...]}``, JSON-ready.
    """
    budgets = sorted({min(int(b), budget) for b in budgets}) if budgets else default_budgets(budget)
    finals = {name: {seed: value_at(c, budget) for seed, c in runs.items()} for name, runs in curves.items()}
    target_info: dict[str, Any]
    if target is not None:
        target_info = {"value": float(target), "source": "given"}
    elif optimum is not None:
        target_info = {"value": float(optimum), "source": "ground-truth optimum"}
    else:
        everything = [v for runs in finals.values() for v in runs.values()]
        target_info = {"value": float(np.median(everything)) if everything else math.nan,
                       "source": "median final best over all runs"}
    sign = 1.0 if direction == "maximize" else -1.0
    strategies: dict[str, Any] = {}
    for name, runs in curves.items():
        rows = []
        for b in budgets:
            values = [value_at(runs[s], b) for s in sorted(runs)]
            mean, std = mean_std(values)
            row: dict[str, Any] = {"budget": b, "mean": mean, "std": std, "median": float(np.median(values))}
            if optimum is not None:
                regret_mean, regret_std = mean_std([sign * (optimum - v) for v in values])
                row.update(regret_mean=regret_mean, regret_std=regret_std)
            rows.append(row)
        evals = {seed: evals_to_target(runs[seed], target_info["value"], direction, budget) for seed in sorted(runs)}
        strategies[name] = {
            "runs": len(runs),
            "at": rows,
            "evals_to_target": {"median": median_evals(list(evals.values())),
                                "reached": sum(e is not None for e in evals.values()),
                                "per_seed": {str(s): e for s, e in evals.items()}},
        }
    return {"budgets": budgets, "target": target_info, "strategies": strategies,
            "tests": pairwise_tests(finals, direction), "alpha": ALPHA}


def band(curves: Sequence[Sequence[float]], level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean curve and a Student-t confidence band for the mean (level ``level``), per point.

    ``curves`` must have equal lengths (see :func:`padded`). With one curve the band is the
    curve itself.
    """
    from scipy import stats

    array = np.asarray(curves, dtype=float)  # [runs, evals]
    mean = array.mean(axis=0)
    n = array.shape[0]
    if n < 2:
        return mean, mean.copy(), mean.copy()
    half = stats.t.ppf(0.5 + level / 2, n - 1) * array.std(axis=0, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half
