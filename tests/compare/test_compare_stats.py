"""The comparison statistics on hand-made curves, where every number is known."""

from __future__ import annotations

import math

import pytest

from nasplug.compare.stats import (
    band,
    compare_pair,
    default_budgets,
    evals_to_target,
    holm,
    median_evals,
    pairwise_tests,
    summarize,
    value_at,
)

CURVES = {
    "a": {0: [1.0, 2.0, 3.0, 4.0], 1: [2.0, 2.0, 2.0, 5.0], 2: [0.0, 3.0, 3.0, 3.0]},
    "b": {0: [1.0, 1.0, 1.0, 1.0], 1: [2.0, 2.0, 2.0, 2.0], 2: [0.0, 0.0, 6.0]},  # seed 2 stopped early
}


def test_default_budgets():
    assert default_budgets(500) == [50, 125, 250, 500]
    assert default_budgets(300) == [30, 75, 150, 300]
    assert default_budgets(10) == [1, 3, 5, 10]
    assert default_budgets(2) == [1, 2]


def test_value_at_and_evals_to_target():
    assert value_at([1.0, 2.0], 1) == 1.0 and value_at([1.0, 2.0], 5) == 2.0  # carried forward
    assert math.isnan(value_at([], 3))
    assert evals_to_target([1.0, 2.0, 3.0], 2.0, "maximize") == 2
    assert evals_to_target([1.0, 2.0, 3.0], 3.5, "maximize") is None
    assert evals_to_target([5.0, 4.0, 1.0], 4.0, "minimize") == 2
    assert evals_to_target([1.0, 2.0, 3.0], 3.0, "maximize", budget=2) is None
    assert median_evals([3, None, 5]) == 5.0
    assert median_evals([3, None, None]) is None  # the median run never got there
    assert median_evals([2, 4]) == 3.0


def test_summary_numbers():
    summary = summarize(CURVES, 4, direction="maximize", budgets=[2, 4], target=3.0)
    a, b = summary["strategies"]["a"], summary["strategies"]["b"]
    assert summary["budgets"] == [2, 4] and summary["target"] == {"value": 3.0, "source": "given"}
    assert a["at"][0]["mean"] == pytest.approx(7 / 3) and a["at"][0]["std"] == pytest.approx(math.sqrt(1 / 3))
    assert a["at"][1]["mean"] == 4.0 and a["at"][1]["std"] == 1.0 and a["at"][1]["median"] == 4.0
    assert b["at"][1]["mean"] == 3.0  # seed 2's last value (6.0) carried to budget 4
    assert a["evals_to_target"] == {"median": 3.0, "reached": 3, "per_seed": {"0": 3, "1": 4, "2": 2}}
    assert b["evals_to_target"]["median"] is None and b["evals_to_target"]["reached"] == 1
    assert "regret_mean" not in a["at"][0]


def test_summary_defaults_regret_and_minimize():
    summary = summarize(CURVES, 4, direction="maximize")  # target = median final best over all runs
    assert summary["target"] == {"value": 3.5, "source": "median final best over all runs"}
    truth = summarize(CURVES, 4, direction="maximize", optimum=6.0, budgets=[4])
    assert truth["target"]["value"] == 6.0
    assert truth["strategies"]["a"]["at"][0]["regret_mean"] == 2.0
    assert truth["strategies"]["b"]["at"][0]["regret_std"] == pytest.approx(math.sqrt(7))
    down = {"m": {0: [5.0, 3.0, 1.0], 1: [4.0, 4.0, 2.0]}}
    low = summarize(down, 3, direction="minimize", optimum=1.0, target=2.0)
    assert low["strategies"]["m"]["at"][-1]["regret_mean"] == 0.5
    assert low["strategies"]["m"]["evals_to_target"]["per_seed"] == {"0": 3, "1": 3}


def test_wilcoxon_known_case_and_holm():
    x = {s: float(s) for s in range(8)}
    y = {s: float(s) + 1.0 for s in range(8)}
    row = compare_pair(x, y, "maximize")
    assert row["test"] == "wilcoxon" and row["n"] == 8
    assert row["p"] == pytest.approx(2 / 2**8)  # exact: all eight differences have one sign
    assert row["better"] == "b" and row["mean_diff"] == -1.0
    assert compare_pair(x, y, "minimize")["better"] == "a"
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    rows = pairwise_tests({"x": x, "y": y, "z": dict(y)}, "maximize")
    assert [(r["a"], r["b"]) for r in rows] == [("x", "y"), ("x", "z"), ("y", "z")]
    assert rows[0]["p_holm"] == pytest.approx(3 * 2 / 2**8) and rows[0]["significant"]
    assert rows[0]["better"] == "y"
    assert rows[2]["p"] == 1.0 and rows[2]["note"] == "identical on every seed" and rows[2]["better"] is None


def test_mann_whitney_when_seeds_differ():
    row = compare_pair({0: 1.0, 1: 2.0, 2: 3.0}, {5: 4.0, 6: 5.0, 7: 6.0}, "maximize")
    assert row["test"] == "mannwhitneyu" and row["p"] == pytest.approx(0.1)
    same = compare_pair({0: 1.0, 1: 1.0}, {5: 1.0}, "maximize")
    assert same["p"] == 1.0 and same["note"] == "all values identical"


def test_band_is_a_t_interval():
    mean, lo, hi = band([[1.0, 2.0], [3.0, 2.0]])
    assert list(mean) == [2.0, 2.0]
    assert hi[0] - mean[0] == pytest.approx(12.7062047 * 1.0, rel=1e-6)  # t(0.975, 1) * sd / sqrt(2)
    assert lo[1] == hi[1] == 2.0
    single, lo1, hi1 = band([[1.0, 2.0]])
    assert list(lo1) == list(hi1) == [1.0, 2.0]
