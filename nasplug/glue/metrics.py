"""GLUE metrics (scikit-learn, scipy) and the two GLUE averages.

All values are percentages (x100), as in the papers and on the leaderboard.

A *result dict* maps a task name to its metrics, e.g.
``{"CoLA": {"mcc": 57.0}, "MRPC": {"f1": 90.1, "accuracy": 86.0},
"MNLI": {"accuracy_m": 81.3, "accuracy_mm": 81.0}, ...}``. MNLI's keys carry the suffix of
the dev set they were measured on (``_m`` matched, ``_mm`` mismatched). A fine-tuning result
from :func:`nasplug.glue.finetune` may stand in for a task's metrics (its ``median`` is used).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from nasplug.errors import NasplugError
from nasplug.glue.tasks import get_task

__all__ = ["CONVENTIONS", "compute_metrics", "glue_score"]


def compute_metrics(task: str, predictions: Sequence[Any] | np.ndarray,
                    labels: Sequence[Any] | np.ndarray) -> dict[str, float]:
    """Score predictions on one labelled split.

    Args:
        task: task name (any spelling).
        predictions: class ids, or logits ``[N, num_labels]`` (argmax is taken); for STS-B
            the predicted scores (``[N]`` or ``[N, 1]``).
        labels: gold class ids (or scores for STS-B).

    Returns:
        ``{"mcc"}`` for CoLA and AX (AX's R3 is the 3-class Matthews correlation),
        ``{"f1", "accuracy"}`` for MRPC and QQP (F1 of the positive class 1),
        ``{"pearson", "spearman"}`` for STS-B, ``{"accuracy"}`` otherwise; in percent.

    Raises:
        NasplugError: lengths differ, nothing to score, or the labels are hidden (-1).
    """
    spec = get_task(task)
    preds = np.asarray(predictions)
    gold = np.asarray(labels)
    if spec.is_regression:
        preds = preds.reshape(len(preds), -1)[:, 0] if preds.ndim == 2 else preds
        preds, gold = preds.astype(np.float64), gold.astype(np.float64)
    elif preds.ndim == 2:
        preds = preds.argmax(axis=-1)
    if preds.shape != gold.shape or gold.ndim != 1 or len(gold) == 0:
        raise NasplugError(f"glue {spec.name} metrics: predictions {preds.shape} and labels "
                           f"{gold.shape} must be two non-empty vectors of the same length")
    if not spec.is_regression and np.any(gold < 0):
        raise NasplugError(f"glue {spec.name} metrics: labels contain -1 (an unlabelled test "
                           "split); score a validation split instead")
    if spec.is_regression:
        with warnings.catch_warnings():  # constant predictions -> NaN, which we report as is
            warnings.simplefilter("ignore")
            return {"pearson": 100.0 * float(pearsonr(preds, gold)[0]),
                    "spearman": 100.0 * float(spearmanr(preds, gold)[0])}
    out: dict[str, float] = {}
    if "mcc" in spec.metrics:
        out["mcc"] = 100.0 * float(matthews_corrcoef(gold, preds))
    if "f1" in spec.metrics:
        out["f1"] = 100.0 * float(f1_score(gold, preds, pos_label=1, zero_division=0.0))
    if "accuracy" in spec.metrics:
        out["accuracy"] = 100.0 * float(accuracy_score(gold, preds))
    return out


ELECTRA_DEV_SOURCE = (
    "ELECTRA (Clark et al., ICLR 2020, Sec. 3.1 and the google-research/electra README): "
    "GLUE dev, eight tasks without WNLI; Matthews correlation for CoLA, Spearman for STS-B, "
    "accuracy for the others (MRPC and QQP included); MNLI on dev-matched; unweighted mean."
)
LEADERBOARD_SOURCE = (
    "GLUE leaderboard score (Wang et al., ICLR 2019: macro-average of per-task scores, a task "
    "with two metrics contributing their unweighted mean). Nine tasks: MNLI-m and MNLI-mm form "
    "one task (the mean of the two) and AX is not averaged; this reading reproduces the "
    "server's scores of BERT-large (80.5), MT-DNN (82.7) and MT-DNN no-fine-tune (81.7) as "
    "listed in the GLUE test table of the MT-DNN paper (Liu et al. 2019); counting MNLI-m/mm as two "
    "tasks does not."
)

CONVENTIONS: dict[str, dict[str, Any]] = {
    "electra_dev": {
        "source": ELECTRA_DEV_SOURCE,
        "metrics": {
            "CoLA": ("mcc",), "SST-2": ("accuracy",), "MRPC": ("accuracy",),
            "STS-B": ("spearman",), "QQP": ("accuracy",), "MNLI": ("accuracy_m",),
            "QNLI": ("accuracy",), "RTE": ("accuracy",),
        },
    },
    "leaderboard": {
        "source": LEADERBOARD_SOURCE,
        "metrics": {
            "CoLA": ("mcc",), "SST-2": ("accuracy",), "MRPC": ("f1", "accuracy"),
            "STS-B": ("pearson", "spearman"), "QQP": ("f1", "accuracy"),
            "MNLI": ("accuracy_m", "accuracy_mm"), "QNLI": ("accuracy",),
            "RTE": ("accuracy",), "WNLI": ("accuracy",),
        },
    },
}
"""Which metrics of which tasks each average takes (task score = mean of its metrics)."""


def _task_metrics(value: Any) -> Mapping[str, Any] | None:
    """A task's metric dict from a plain dict or a fine-tuning result (None if missing)."""
    if not isinstance(value, Mapping):
        return None
    if value.get("status") in ("missing", "failed"):
        return None
    if "median" in value and isinstance(value["median"], Mapping):
        return value["median"]
    return value


def _usable(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def glue_score(results: Mapping[str, Any], convention: str = "electra_dev") -> dict[str, Any]:
    """Average a result dict under one of the two conventions.

    Args:
        results: task name (any spelling) -> metric dict (or a fine-tuning result).
        convention: ``"electra_dev"`` (eight tasks, one metric each, as in the ELECTRA and
            LV-BERT dev tables) or ``"leaderboard"`` (the GLUE server's score).

    Returns:
        A JSON-serialisable dict: ``score`` (None unless every task is present),
        ``status`` (``"ok"``, ``"partial"``, ``"missing"``), ``tasks`` (per-task scores
        used), ``missing`` (tasks or metrics absent, each named), ``mean_of_available``
        and ``available`` (the mean over present tasks, for information only: never the
        score), ``convention`` and ``source``.

    Raises:
        NasplugError: unknown convention or task name.
    """
    if convention not in CONVENTIONS:
        raise NasplugError(f"glue_score convention: unknown {convention!r}; "
                           f"allowed: {', '.join(CONVENTIONS)}")
    by_task = {get_task(name).name: value for name, value in results.items()}
    conv = CONVENTIONS[convention]
    tasks: dict[str, float] = {}
    missing: list[str] = []
    for task, keys in conv["metrics"].items():
        metrics = _task_metrics(by_task.get(task))
        if metrics is None:
            missing.append(f"{task} (no result)")
            continue
        absent = [k for k in keys if not _usable(metrics.get(k))]
        if absent:
            missing.append(f"{task} ({', '.join(absent)} missing)")
            continue
        tasks[task] = float(np.mean([metrics[k] for k in keys]))
    available = float(np.mean(list(tasks.values()))) if tasks else None
    return {
        "convention": convention,
        "score": None if missing else available,
        "status": "ok" if not missing else ("partial" if tasks else "missing"),
        "tasks": tasks,
        "missing": missing,
        "mean_of_available": available,
        "available": list(tasks),
        "source": conv["source"],
    }
