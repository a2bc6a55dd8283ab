"""Published GLUE dev numbers to print beside ours (from /work/shared/LVBERT.md).

Each table is a plain JSON-serialisable dict; :func:`reference_results` turns one into a
result dict that :func:`nasplug.glue.glue_score` accepts (``electra_dev`` convention).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = [
    "ELECTRA_BASE_DEV",
    "ELECTRA_DEV_METRIC",
    "ELECTRA_SMALL_DEV",
    "ELECTRA_SMALL_OWT_DEV",
    "REFERENCES",
    "reference_results",
]

_SOURCE = ("google-research/electra README, GLUE dev set, median over many fine-tuning "
           "seeds; CoLA Matthews corr., STS Spearman, others accuracy (MNLI matched)")

ELECTRA_DEV_METRIC: dict[str, str] = {
    "CoLA": "mcc", "SST-2": "accuracy", "MRPC": "accuracy", "STS-B": "spearman",
    "QQP": "accuracy", "MNLI": "accuracy_m", "QNLI": "accuracy", "RTE": "accuracy",
}
"""The single metric each task reports in the ELECTRA dev table."""


def _table(model: str, values: tuple[float, ...], note: str = "") -> dict[str, Any]:
    return {
        "model": model,
        "split": "dev",
        "convention": "electra_dev",
        "source": _SOURCE + (f"; {note}" if note else ""),
        "scores": dict(zip(ELECTRA_DEV_METRIC, values, strict=True)),
    }


ELECTRA_SMALL_DEV = _table("ELECTRA-Small", (57.0, 91.2, 88.0, 87.5, 89.0, 81.3, 88.4, 66.7))
ELECTRA_SMALL_OWT_DEV = _table("ELECTRA-Small-OWT", (56.8, 88.3, 87.4, 86.8, 88.3, 78.9, 87.9, 68.5),
                               "1M steps on OpenWebText")
ELECTRA_BASE_DEV = _table("ELECTRA-Base", (67.7, 95.1, 89.5, 91.2, 91.5, 88.8, 93.2, 82.7))

REFERENCES: dict[str, dict[str, Any]] = {
    t["model"]: t for t in (ELECTRA_SMALL_DEV, ELECTRA_SMALL_OWT_DEV, ELECTRA_BASE_DEV)
}


def reference_results(table: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A reference table as a result dict, e.g. ``{"CoLA": {"mcc": 57.0}, ...}``."""
    return {task: {ELECTRA_DEV_METRIC[task]: value}
            for task, value in copy.deepcopy(table["scores"]).items()}
