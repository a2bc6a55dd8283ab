"""Rank-correlation statistics for ``nasplug rank-corr``: Kendall tau, Spearman rho, bootstrap
intervals and top-k agreement between two score vectors over the same archs.

Pure numpy / scipy, no torch: called once per ``rank_correlation`` call, after every arch has
its supernet score and its standalone score on the compared metric. Tau and rho compare the two
orders as they are; top-k agreement takes "higher is better" vectors (the caller flips the sign
of a metric to minimise, such as a loss).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from nasplug.errors import NasplugError


def _tau_rho(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """(tau-b, its p-value, rho, its p-value); NaN where an input is constant."""
    from scipy import stats

    if np.ptp(x) == 0 or np.ptp(y) == 0:  # scipy would warn and return NaN: say so quietly
        return math.nan, math.nan, math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the small-sample notes of the exact tests
        tau = stats.kendalltau(x, y)
        rho = stats.spearmanr(x, y)
    return float(tau.statistic), float(tau.pvalue), float(rho.statistic), float(rho.pvalue)


def rank_stats(standalone: Sequence[float], supernet: Sequence[float], *, resamples: int = 2000, seed: int = 0,
               confidence: float = 0.95) -> dict[str, Any]:
    """Kendall tau-b and Spearman rho between two scores of the same archs, with p-values and
    bootstrap percentile confidence intervals.

    The bootstrap resamples the N (standalone, supernet) pairs with replacement
    (``numpy.random.Generator`` seeded with ``seed``, so the intervals are reproducible) and
    recomputes both coefficients. Resamples where either vector is constant have no rank
    correlation (scipy gives NaN) and are skipped; their number is reported. With fewer than
    ten usable resamples the interval is NaN (JSON: null).

    Args:
        standalone: the standalone held-out accuracy of each arch.
        supernet: the supernet's score of each arch, in the same order.
        resamples: bootstrap resamples.
        seed: seeds the bootstrap generator.
        confidence: the interval's coverage, e.g. 0.95 -> the 2.5 and 97.5 percentiles.

    Returns:
        ``{"n", "kendall_tau": {"estimate", "p_value", "ci_low", "ci_high"},
        "spearman_rho": {...}, "bootstrap": {"resamples", "used", "skipped_constant",
        "confidence", "seed"}}``. A constant input gives NaN estimates.

    Raises:
        NasplugError: vectors of different lengths, fewer than 3 pairs, non-finite scores,
            or a confidence outside (0, 1).
    """
    x, y = np.asarray(supernet, dtype=float), np.asarray(standalone, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise NasplugError(f"rank-corr: {len(y)} standalone scores but {len(x)} supernet scores")
    if len(x) < 3:
        raise NasplugError(f"--archs: rank correlation needs at least 3 archs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise NasplugError("rank-corr: a score is NaN or infinite; check the training logs of the archs")
    if not 0.0 < confidence < 1.0:
        raise NasplugError(f"confidence: {confidence} must be in (0, 1)")
    n = len(x)
    tau, tau_p, rho, rho_p = _tau_rho(x, y)
    rng = np.random.default_rng(seed)
    taus, rhos, skipped = [], [], 0
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        t, _, r, _ = _tau_rho(x[idx], y[idx])
        if math.isnan(t) or math.isnan(r):
            skipped += 1
            continue
        taus.append(t)
        rhos.append(r)
    tail = 100.0 * (1.0 - confidence) / 2.0

    def interval(values: list[float]) -> tuple[float, float]:
        if len(values) < 10:
            return math.nan, math.nan
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return float(low), float(high)

    tau_ci, rho_ci = interval(taus), interval(rhos)
    return {
        "n": n,
        "kendall_tau": {"estimate": tau, "p_value": tau_p, "ci_low": tau_ci[0], "ci_high": tau_ci[1]},
        "spearman_rho": {"estimate": rho, "p_value": rho_p, "ci_low": rho_ci[0], "ci_high": rho_ci[1]},
        "bootstrap": {"resamples": resamples, "used": len(taus), "skipped_constant": skipped,
                      "confidence": confidence, "seed": seed, "method": "percentile"},
    }


def top_k_agreement(standalone: Sequence[float], supernet: Sequence[float],
                    ks: Sequence[int] | None = None) -> dict[str, Any]:
    """How well the supernet's best picks match the standalone best.

    Ties are broken by position (the earlier arch ranks first), the same in both orders.

    Args:
        standalone, supernet: scores of the same archs, higher is better.
        ks: the k of each top-k overlap (default 1, 3, 5 and N // 4, those below N).

    Returns:
        ``{"top1_match": bool, "top1_regret": standalone best minus the standalone score of
        the supernet's top pick, "top1_standalone_rank": 1-based standalone rank of that pick,
        "overlap": {k: fraction of the supernet's top k that are in the standalone top k}}``;
        every value None when all the supernet's scores are equal (no pick to judge).
    """
    n = len(standalone)
    by_standalone = sorted(range(n), key=lambda i: (-standalone[i], i))
    by_supernet = sorted(range(n), key=lambda i: (-supernet[i], i))
    if ks is None:
        ks = sorted({k for k in (1, 3, 5, n // 4) if 1 <= k < n})
    if len(set(supernet)) <= 1:  # every arch scored alike: the predictor picks nothing
        return {"top1_match": None, "top1_regret": None, "top1_standalone_rank": None,
                "overlap": {str(k): None for k in ks}}
    pick = by_supernet[0]
    return {
        "top1_match": pick == by_standalone[0],
        "top1_regret": float(standalone[by_standalone[0]] - standalone[pick]),
        "top1_standalone_rank": by_standalone.index(pick) + 1,
        "overlap": {str(k): len(set(by_standalone[:k]) & set(by_supernet[:k])) / k for k in ks},
    }


def noise_ceiling(per_seed: Sequence[Sequence[float]], *, resamples: int = 2000, seed: int = 0,
                  confidence: float = 0.95) -> dict[str, Any]:
    """How well standalone training agrees with itself: the mean Kendall tau-b between the
    scores of every pair of seeds (K seeds: K (K - 1) / 2 pairs), with a bootstrap percentile
    interval over the archs (each resample draws N archs with replacement, the same draws for
    every pair; resamples where a pair's scores are constant are skipped and counted).

    No predictor can be expected to agree with one seed's ranking better than another seed
    does: this is the ceiling a predictor's tau against a single seed is judged by.

    Args:
        per_seed: ``per_seed[k][i]``: the standalone score of arch i trained with seed k.

    Returns:
        ``{"estimate", "ci_low", "ci_high", "pairs": [{"seeds": [j, k], "tau": ...}],
        "bootstrap": {...}}``; NaN estimates with fewer than two seeds or constant scores.
    """
    from itertools import combinations

    y = np.asarray(per_seed, dtype=float)
    pairs = list(combinations(range(len(y)), 2))
    if not pairs or y.shape[1] < 3:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "pairs": [],
                "bootstrap": {"resamples": 0, "used": 0, "skipped_constant": 0, "confidence": confidence,
                              "seed": seed, "method": "percentile"}}

    def taus(idx: np.ndarray) -> list[float]:
        return [_tau_rho(y[j][idx], y[k][idx])[0] for j, k in pairs]

    full = taus(np.arange(y.shape[1]))
    rng = np.random.default_rng(seed)
    means, skipped = [], 0
    for _ in range(resamples):
        sample = taus(rng.integers(0, y.shape[1], size=y.shape[1]))
        if any(math.isnan(t) for t in sample):
            skipped += 1
            continue
        means.append(float(np.mean(sample)))
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = (np.percentile(means, [tail, 100.0 - tail]) if len(means) >= 10 else (math.nan, math.nan))
    return {"estimate": float(np.mean(full)), "ci_low": float(low), "ci_high": float(high),
            "pairs": [{"seeds": [j, k], "tau": t} for (j, k), t in zip(pairs, full)],
            "bootstrap": {"resamples": resamples, "used": len(means), "skipped_constant": skipped,
                          "confidence": confidence, "seed": seed, "method": "percentile"}}


def ranked_last(values: Sequence[float]) -> tuple[list[float], int]:
    """``values`` with every non-finite one replaced by a value below all finite ones (a
    predictor that gives an arch no score ranks it last), and how many were replaced."""
    finite = [v for v in values if math.isfinite(v)]
    floor = (min(finite) - 1.0) if finite else 0.0
    return [v if math.isfinite(v) else floor for v in values], len(values) - len(finite)


def predictor_stats(predicted: Sequence[float], reference: Sequence[float], per_seed: Sequence[Sequence[float]],
                    ceiling: float, *, resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """A predictor against the standalone scores, every vector "higher is better".

    Args:
        predicted: the predictor's score of each arch (non-finite ones rank last).
        reference: the standalone score of each arch (the mean over seeds).
        per_seed: the standalone scores of each seed (``per_seed[k][i]``).
        ceiling: the noise ceiling's estimate (NaN with one seed).

    Returns:
        :func:`rank_stats` of (reference, predicted) plus ``top_k`` (:func:`top_k_agreement`),
        ``tau_vs_seeds`` (the mean tau against each single seed: what the ceiling bounds),
        ``of_ceiling`` (that mean over the ceiling) and ``unscored`` (archs ranked last).
    """
    values, unscored = ranked_last(predicted)
    out = rank_stats(reference, values, resamples=resamples, seed=seed)
    out["top_k"] = top_k_agreement(list(reference), values)
    vs_seeds = [_tau_rho(np.asarray(values), np.asarray(y, dtype=float))[0] for y in per_seed]
    out["tau_vs_seeds"] = float(np.mean(vs_seeds)) if vs_seeds else math.nan
    usable = len(per_seed) >= 2 and math.isfinite(ceiling) and ceiling > 0
    out["of_ceiling"] = out["tau_vs_seeds"] / ceiling if usable else math.nan
    out["unscored"] = unscored
    return out
