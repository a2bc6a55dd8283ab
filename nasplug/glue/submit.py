"""Test-set prediction files in the layout the GLUE server (gluebenchmark.com) accepts.

One TSV per entry of :data:`SUBMISSION_FILES`, header ``index<TAB>prediction``, one row per
test example. MNLI, AX, QNLI and RTE take label names (``entailment``, ``neutral``,
``contradiction``, ``not_entailment``); CoLA, SST-2, MRPC, QQP and WNLI take the integer
labels of their TSV files; STS-B takes a score clipped to [0, 5] (three decimals). This is
the format jiant writes with ``strict_glue_format``. The server wants the files zipped
together at the top level of the archive; :func:`write_submission` writes the zip too.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nasplug.errors import NasplugError
from nasplug.glue.tasks import TEST_SIZES, GlueTask, get_task
from nasplug.io import atomic_write, atomic_write_text

__all__ = ["SUBMISSION_FILES", "submission_names", "write_submission"]

logger = logging.getLogger(__name__)

SUBMISSION_FILES: dict[str, str] = {
    "CoLA": "CoLA", "SST-2": "SST-2", "MRPC": "MRPC", "STS-B": "STS-B", "QQP": "QQP",
    "MNLI-m": "MNLI", "MNLI-mm": "MNLI", "QNLI": "QNLI", "RTE": "RTE", "WNLI": "WNLI",
    "AX": "AX",
}
"""Submission name (file ``<name>.tsv``) -> the task whose labels it uses."""

HEADER = "index\tprediction"


def _unpack(name: str, preds: Any) -> tuple[list[int], list[Any]]:
    """Accept a list (index = position), ``{"index": [...], "prediction": [...]}`` or
    ``{index: prediction}``."""
    if isinstance(preds, Mapping) and "prediction" in preds:
        index = [int(i) for i in preds.get("index", range(len(preds["prediction"])))]
        values = list(preds["prediction"])
    elif isinstance(preds, Mapping):
        index = sorted(int(i) for i in preds)
        values = [preds[i] for i in index]
    else:
        values = list(np.asarray(preds).tolist()) if isinstance(preds, np.ndarray) else list(preds)
        index = list(range(len(values)))
    if len(index) != len(values):
        raise NasplugError(f"glue submission {name}: {len(index)} indices but "
                           f"{len(values)} predictions")
    if len(set(index)) != len(index):
        raise NasplugError(f"glue submission {name}: duplicate indices")
    return index, values


def _format(name: str, task: GlueTask, value: Any) -> str:
    if task.is_regression:
        return f"{min(max(float(value), 0.0), 5.0):.3f}"
    if isinstance(value, str):
        if value not in task.labels:
            raise NasplugError(f"glue submission {name}: label {value!r} not in {list(task.labels)}")
        label_id = task.labels.index(value)
    else:
        label_id = int(value)
        if not 0 <= label_id < len(task.labels):
            raise NasplugError(f"glue submission {name}: class id {label_id} outside "
                               f"0..{len(task.labels) - 1}")
    return task.labels[label_id] if task.submit_names else str(label_id)


def write_submission(predictions_by_task: Mapping[str, Any], out_dir: str | os.PathLike[str],
                     *, check_counts: bool = True, zip_name: str | None = "submission.zip"
                     ) -> dict[str, Any]:
    """Write the GLUE server's prediction files.

    Args:
        predictions_by_task: submission name (a key of :data:`SUBMISSION_FILES`, e.g.
            ``"MNLI-m"``; single-file tasks may also be given by any task spelling) ->
            predictions: class ids or label names (scores for STS-B), as a list in test-file
            order, a ``{"index": [...], "prediction": [...]}`` dict (what
            :func:`nasplug.glue.finetune` returns), or an ``{index: prediction}`` dict.
        out_dir: folder for the ``.tsv`` files (created if needed).
        check_counts: require the row count of the real test set (:data:`TEST_SIZES`).
        zip_name: also write this zip of the files (None: no zip).

    Returns:
        ``{"out_dir", "files": {name: {"path", "rows"}}, "missing": [names not given],
        "status": "ok" | "partial", "zip": path or None}``; a missing file is named there
        (and logged), since the server needs all eleven.

    Raises:
        NasplugError: unknown name, wrong row count, bad label or class id.
    """
    out = Path(out_dir)
    rows: dict[str, str] = {}
    counts: dict[str, int] = {}
    for given, preds in predictions_by_task.items():
        name = given if given in SUBMISSION_FILES else _submission_name(given)
        task = get_task(SUBMISSION_FILES[name])
        index, values = _unpack(name, preds)
        if check_counts and len(index) != TEST_SIZES[name]:
            raise NasplugError(f"glue submission {name}: {len(index)} predictions, the test "
                               f"set has {TEST_SIZES[name]} rows")
        lines = [HEADER] + [f"{i}\t{_format(name, task, v)}" for i, v in zip(index, values, strict=True)]
        rows[name] = "\n".join(lines) + "\n"
        counts[name] = len(index)
    files: dict[str, dict[str, Any]] = {}
    for name in SUBMISSION_FILES:  # a fixed order, so the zip is reproducible
        if name in rows:
            path = atomic_write_text(out / f"{name}.tsv", rows[name])
            files[name] = {"path": str(path), "rows": counts[name]}
    missing = [name for name in SUBMISSION_FILES if name not in rows]
    if missing:
        logger.warning("glue submission: no predictions for %s; the server needs all of %s",
                       missing, list(SUBMISSION_FILES))
    zip_path = None
    if zip_name and rows:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in files:
                info = zipfile.ZipInfo(f"{name}.tsv", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, rows[name])
        zip_path = str(atomic_write(out / zip_name, lambda fh: fh.write(buf.getvalue())))
    return {"out_dir": str(out), "files": files, "missing": missing,
            "status": "partial" if missing else "ok", "zip": zip_path}


def _submission_name(given: str) -> str:
    task = get_task(given)
    names = [n for n, t in SUBMISSION_FILES.items() if t == task.name]
    if len(names) != 1:
        raise NasplugError(f"glue submission: {given!r} is ambiguous; use one of {names}")
    return names[0]


def submission_names(tasks: Sequence[str]) -> list[str]:
    """The submission files the given tasks produce (MNLI -> MNLI-m and MNLI-mm)."""
    return [n for n, t in SUBMISSION_FILES.items() if t in {get_task(x).name for x in tasks}]
