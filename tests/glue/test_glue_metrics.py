"""GLUE metrics against hand-computed values, and the two GLUE averages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nasplug.errors import NasplugError
from nasplug.glue import (
    ELECTRA_BASE_DEV,
    ELECTRA_SMALL_DEV,
    ELECTRA_SMALL_OWT_DEV,
    compute_metrics,
    glue_score,
    reference_results,
)


def test_cola_mcc_by_hand() -> None:
    # gold 1 1 1 0 0 0, predicted 1 1 0 0 0 1: TP=2 FN=1 TN=2 FP=1
    # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (4 - 1) / sqrt(3^4) = 1/3
    m = compute_metrics("CoLA", [1, 1, 0, 0, 0, 1], [1, 1, 1, 0, 0, 0])
    assert m == {"mcc": pytest.approx(100 / 3)}


def test_mrpc_f1_and_accuracy_by_hand() -> None:
    # gold 1 1 1 1 0 0, predicted 1 1 1 0 1 0: TP=3 FN=1 FP=1 TN=1
    # accuracy 4/6; precision 3/4, recall 3/4 -> F1 3/4
    m = compute_metrics("mrpc", [1, 1, 1, 0, 1, 0], [1, 1, 1, 1, 0, 0])
    assert m == {"f1": pytest.approx(75.0), "accuracy": pytest.approx(400 / 6)}
    assert compute_metrics("QQP", [1, 1, 1, 0, 1, 0], [1, 1, 1, 1, 0, 0]) == m


def test_logits_are_argmaxed() -> None:
    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0]])  # -> 1, 0, 1
    assert compute_metrics("SST-2", logits, [1, 0, 0]) == {"accuracy": pytest.approx(200 / 3)}
    assert compute_metrics("rte", [0, 1], [0, 1]) == {"accuracy": 100.0}


def test_stsb_pearson_spearman_by_hand() -> None:
    # x = 1 2 3 10, y = 1 3 2 4. Deviations from the means (4, 2.5): dx = -3 -2 -1 6,
    # dy = -1.5 .5 -.5 1.5; sum dx*dy = 13, sum dx^2 = 50, sum dy^2 = 5 -> r = 13 / sqrt(250).
    # Ranks of x are 1 2 3 4 and of y 1 3 2 4: rank deviations -1.5 -.5 .5 1.5 and
    # -1.5 .5 -.5 1.5 -> rho = (2.25 - .25 - .25 + 2.25) / 5 = 0.8.
    m = compute_metrics("STS-B", np.array([[1.0], [2.0], [3.0], [10.0]]), [1.0, 3.0, 2.0, 4.0])
    assert m["pearson"] == pytest.approx(100 * 13 / math.sqrt(250))
    assert m["spearman"] == pytest.approx(80.0)


def test_ax_r3_is_three_class_mcc_by_hand() -> None:
    # gold 0 1 2 0 1 2, predicted 0 1 2 0 2 1: c=4 correct of s=6, true and predicted counts
    # 2 2 2. R3 = (c*s - sum p_k t_k) / sqrt((s^2 - sum p_k^2)(s^2 - sum t_k^2))
    #           = (24 - 12) / sqrt(24 * 24) = 0.5
    assert compute_metrics("AX", [0, 1, 2, 0, 2, 1], [0, 1, 2, 0, 1, 2]) == {"mcc": pytest.approx(50.0)}


def test_metric_errors_name_the_problem() -> None:
    with pytest.raises(NasplugError, match="same length"):
        compute_metrics("CoLA", [1, 0], [1, 0, 1])
    with pytest.raises(NasplugError, match="test"):
        compute_metrics("RTE", [0, 1], [-1, -1])
    with pytest.raises(NasplugError, match="allowed: CoLA"):
        compute_metrics("SQuAD", [0], [0])


FULL = {
    "CoLA": {"mcc": 60.0},
    "SST-2": {"accuracy": 90.0},
    "MRPC": {"f1": 90.0, "accuracy": 86.0},
    "STS-B": {"pearson": 88.0, "spearman": 87.0},
    "QQP": {"f1": 70.0, "accuracy": 88.0},
    "MNLI": {"accuracy_m": 84.0, "accuracy_mm": 83.0},
    "QNLI": {"accuracy": 91.0},
    "RTE": {"accuracy": 70.0},
    "WNLI": {"accuracy": 65.0},
    "AX": {"mcc": 30.0},
}


def test_electra_dev_average() -> None:
    # CoLA 60, SST 90, MRPC acc 86, STS spearman 87, QQP acc 88, MNLI-m 84, QNLI 91, RTE 70
    s = glue_score(FULL, "electra_dev")
    assert s["score"] == pytest.approx(656 / 8)
    assert s["status"] == "ok" and s["missing"] == []
    assert "WNLI" not in s["tasks"] and "AX" not in s["tasks"]
    json.dumps(s)


def test_leaderboard_average() -> None:
    # 60 + 90 + (90+86)/2 + (88+87)/2 + (70+88)/2 + (84+83)/2 + 91 + 70 + 65 = 714 over 9 tasks
    s = glue_score(FULL, "leaderboard")
    assert s["score"] == pytest.approx(714 / 9)
    assert s["tasks"]["MNLI"] == pytest.approx(83.5)
    assert len(s["tasks"]) == 9


@pytest.mark.parametrize(
    ("row", "score"),
    [
        # GLUE server rows (test set), from the MT-DNN paper's GLUE table / XLM README.
        ((60.5, 94.9, (89.3, 85.4), (87.6, 86.5), (72.1, 89.3), (86.7, 85.9), 92.7, 70.1, 65.1), 80.5),
        ((62.5, 95.6, (91.1, 88.2), (89.5, 88.8), (72.7, 89.6), (86.7, 86.0), 93.1, 81.4, 65.1), 82.7),
    ],
)
def test_leaderboard_average_reproduces_published_scores(row: tuple, score: float) -> None:
    cola, sst, mrpc, sts, qqp, mnli, qnli, rte, wnli = row
    results = {
        "cola": {"mcc": cola}, "sst2": {"accuracy": sst},
        "mrpc": {"f1": mrpc[0], "accuracy": mrpc[1]},
        "stsb": {"pearson": sts[0], "spearman": sts[1]},
        "qqp": {"f1": qqp[0], "accuracy": qqp[1]},
        "mnli": {"accuracy_m": mnli[0], "accuracy_mm": mnli[1]},
        "qnli": {"accuracy": qnli}, "rte": {"accuracy": rte}, "wnli": {"accuracy": wnli},
    }
    assert round(glue_score(results, "leaderboard")["score"], 1) == score


def test_missing_tasks_are_reported_never_averaged_silently() -> None:
    partial = {k: v for k, v in FULL.items() if k != "QQP"}
    partial["MNLI"] = {"accuracy_m": 84.0}
    dev = glue_score(partial, "electra_dev")
    assert dev["score"] is None and dev["status"] == "partial"
    assert dev["missing"] == ["QQP (no result)"]
    assert dev["mean_of_available"] == pytest.approx((656 - 88) / 7)
    board = glue_score(partial, "leaderboard")
    assert board["score"] is None
    assert board["missing"] == ["QQP (no result)", "MNLI (accuracy_mm missing)"]
    # a fine-tuning result whose data was missing counts as missing too
    partial["QQP"] = {"status": "missing", "median": {}}
    assert glue_score(partial, "electra_dev")["missing"] == ["QQP (no result)"]
    nothing = glue_score({}, "leaderboard")
    assert nothing["status"] == "missing" and len(nothing["missing"]) == 9


def test_finetune_results_use_their_median() -> None:
    results = {k: {"status": "ok", "median": v, "per_seed": []} for k, v in FULL.items()}
    assert glue_score(results)["score"] == pytest.approx(82.0)


def test_unknown_convention() -> None:
    with pytest.raises(NasplugError, match="allowed: electra_dev, leaderboard"):
        glue_score(FULL, "superglue")


def test_reference_tables() -> None:
    small = glue_score(reference_results(ELECTRA_SMALL_DEV), "electra_dev")
    assert small["score"] == pytest.approx(649.1 / 8)
    assert ELECTRA_SMALL_DEV["scores"]["MNLI"] == 81.3
    assert ELECTRA_SMALL_OWT_DEV["scores"]["RTE"] == 68.5
    assert ELECTRA_BASE_DEV["scores"]["CoLA"] == 67.7
    assert "google-research/electra" in ELECTRA_BASE_DEV["source"]
    json.dumps([ELECTRA_SMALL_DEV, ELECTRA_SMALL_OWT_DEV, ELECTRA_BASE_DEV])
