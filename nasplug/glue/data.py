"""Loading GLUE tasks from a local TSV folder or from the Hugging Face hub.

Every split comes back as a :class:`datasets.Dataset` with the same columns whatever the
source: ``idx`` (int), ``sentence1`` (str), ``sentence2`` (str, pair tasks only) and ``label``
(class id as a ``ClassLabel``, -1 on test splits; float for STS-B). A split that is not there
is reported in :attr:`TaskData.missing` with the reason, never dropped silently.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from nasplug.errors import NasplugError
from nasplug.glue.tasks import TASK_NAMES, GlueTask, SplitLayout, get_task

__all__ = ["HUB_DATASET", "TaskData", "load_glue", "load_task", "read_tsv"]

logger = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"
"""The hub repository read when ``source == "hub"``."""

# A few corrupt rows are tolerated (and logged) in big files, as the hub's loader does for
# QQP; more than this fraction means the file is not in the expected layout.
_BAD_ROW_FRACTION = 0.001


@dataclass
class TaskData:
    """The splits of one task that could be loaded, and why the others could not.

    Attributes:
        task: canonical task name.
        source: ``"hub"`` or the folder read.
        splits: split name -> dataset (columns ``idx``, ``sentence1``[, ``sentence2``], ``label``).
        missing: split name -> reason it is missing (file not found, hub unreachable, ...).
        skipped: split name -> number of corrupt rows skipped (logged with line numbers).
    """

    task: str
    source: str
    splits: dict[str, datasets.Dataset] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``"ok"`` (all requested splits), ``"partial"`` or ``"missing"`` (none)."""
        if not self.missing:
            return "ok"
        return "partial" if self.splits else "missing"

    def require(self, split: str) -> datasets.Dataset:
        """The split, or a NasplugError saying why it is missing."""
        if split in self.splits:
            return self.splits[split]
        reason = self.missing.get(split, "not requested when loading")
        raise NasplugError(f"glue {self.task}: split {split!r} is missing ({reason}); "
                           f"available: {', '.join(self.splits) or 'none'}")

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description: status, row counts, missing reasons."""
        return {
            "task": self.task,
            "source": self.source,
            "status": self.status,
            "rows": {name: len(ds) for name, ds in self.splits.items()},
            "missing": dict(self.missing),
            "skipped": dict(self.skipped),
        }


def _features(task: GlueTask) -> datasets.Features:
    cols: dict[str, Any] = {"idx": datasets.Value("int32"), "sentence1": datasets.Value("string")}
    if task.is_pair:
        cols["sentence2"] = datasets.Value("string")
    cols["label"] = (datasets.Value("float32") if task.is_regression
                     else datasets.ClassLabel(names=list(task.labels)))
    return datasets.Features(cols)


class NonFiniteLabel(ValueError):
    """A regression target that parses but is NaN or infinite."""


def _parse_label(task: GlueTask, raw: str) -> int | float:
    """Label text -> id (by name, or an integer already in range) or float (STS-B)."""
    raw = raw.strip()
    if task.is_regression:
        value = float(raw)
        if not math.isfinite(value):  # not a corrupt row to skip: it would poison every loss
            raise NonFiniteLabel(f"score {raw!r} is not a finite number")
        return value
    if raw in task.labels:
        return task.labels.index(raw)
    value = int(raw)
    if not 0 <= value < len(task.labels):
        raise ValueError(f"label {value} out of range")
    return value


def read_tsv(path: str | os.PathLike[str], task: str | GlueTask, layout: SplitLayout
             ) -> tuple[datasets.Dataset, int]:
    """Read one GLUE TSV file without any quote handling (the files contain bare quotes).

    Args:
        path: the file.
        task: task name or table entry (labels, pair or single).
        layout: columns of this split.

    Returns:
        The dataset and the number of corrupt rows skipped.

    Raises:
        NasplugError: the file is not UTF-8, lacks a named column, or has too many rows
            with missing fields or unparsable labels; the message names the file.
    """
    spec = task if isinstance(task, GlueTask) else get_task(task)
    path = Path(path)
    try:
        # utf-8-sig drops the BOM that MRPC files start with.
        lines = path.read_text(encoding="utf-8-sig").split("\n")
    except UnicodeDecodeError as err:
        raise NasplugError(f"glue {spec.name}: {path} is not UTF-8 text ({err})") from err
    if lines and lines[-1] == "":
        lines.pop()  # final newline (CoLA dev has none; both are fine)
    lines = [line.rstrip("\r") for line in lines]
    first_line = 1
    if layout.header:
        if not lines:
            raise NasplugError(f"glue {spec.name}: {path} is empty; expected a header row")
        header, lines, first_line = lines[0].split("\t"), lines[1:], 2
        wanted = [*layout.text, *([layout.label] if layout.label is not None else []),
                  *([layout.index] if layout.index else [])]
        absent = [c for c in wanted if c not in header]
        if absent:
            raise NasplugError(f"glue {spec.name}: {path} has no column(s) {absent}; "
                               f"header is {header}, expected columns {wanted}")
        pos = {name: header.index(name) for name in wanted}
    else:
        pos = {c: int(c) for c in (*layout.text, layout.label) if c is not None}
    need = max(pos.values()) + 1
    text_pos = [pos[c] for c in layout.text]
    cols: dict[str, list[Any]] = {"idx": [], "sentence1": [], "sentence2": [], "label": []}
    bad: list[int] = []
    first_error = ""
    for row, line in enumerate(lines):
        fields = line.split("\t")
        try:
            if len(fields) < need:
                raise ValueError(f"{len(fields)} fields, need {need}")
            idx = int(fields[pos[layout.index]]) if layout.index else row
            label = (_parse_label(spec, fields[pos[layout.label]]) if layout.label is not None
                     else (-1.0 if spec.is_regression else -1))
        except NonFiniteLabel as err:
            raise NasplugError(
                f"glue {spec.name}: {path} line {row + first_line}: {err}; fix or remove the row"
            ) from None
        except ValueError as err:
            bad.append(row + first_line)
            if len(bad) == 1:
                first_error = str(err)
            continue
        cols["idx"].append(idx)
        cols["label"].append(label)
        for name, p in zip(("sentence1", "sentence2"), text_pos, strict=False):
            cols[name].append(fields[p])
    if not spec.is_pair:
        del cols["sentence2"]
    if not lines:
        raise NasplugError(f"glue {spec.name}: {path} has no data rows; restore the file or remove it "
                           "(a missing split is reported as missing)")
    if bad:
        where = f"line {bad[0]}: {first_error}"
        if len(bad) > _BAD_ROW_FRACTION * len(lines):
            raise NasplugError(f"glue {spec.name}: {path} is malformed: {len(bad)} of "
                               f"{len(lines)} rows unreadable (first at {where})")
        logger.warning("glue %s: skipped %d corrupt row(s) of %s (lines %s; first at %s)",
                       spec.name, len(bad), path, bad[:10], where)
    return datasets.Dataset.from_dict(cols, features=_features(spec)), len(bad)


def _load_local(spec: GlueTask, root: Path, splits: Sequence[str], data: TaskData) -> None:
    folder = root / spec.folder
    for split in splits:
        layout = spec.splits[split]
        path = folder / layout.file
        if not path.is_file():
            data.missing[split] = f"file not found: {path}"
            continue
        data.splits[split], skipped = read_tsv(path, spec, layout)
        if skipped:
            data.skipped[split] = skipped


def _load_hub(spec: GlueTask, splits: Sequence[str], data: TaskData) -> None:
    try:
        hub = datasets.load_dataset(HUB_DATASET, spec.hub_config)
    except Exception as err:  # offline, not cached, hub down: all report the same way
        reason = f"hub {HUB_DATASET}/{spec.hub_config} unavailable: {type(err).__name__}: {err}"
        data.missing.update({split: reason for split in splits})
        return
    rename = dict(zip(spec.hub_text, ("sentence1", "sentence2"), strict=False))
    for split in splits:
        if split not in hub:
            data.missing[split] = f"hub {HUB_DATASET}/{spec.hub_config} has no split {split!r}"
            continue
        ds = hub[split].rename_columns({k: v for k, v in rename.items() if k != v})
        keep = ["idx", "sentence1", *(["sentence2"] if spec.is_pair else []), "label"]
        data.splits[split] = ds.select_columns(keep).cast(_features(spec))


def load_task(task: str, source: str | os.PathLike[str], splits: Sequence[str] | None = None
              ) -> TaskData:
    """Load one task's splits.

    Args:
        task: any spelling of a task name (``"SST-2"``, ``"sst2"``, ``"ax"``).
        source: ``"hub"`` for ``datasets.load_dataset("nyu-mll/glue", config)``, or a folder
            in the standard GLUE TSV layout (``<source>/<TaskFolder>/train.tsv``, ...).
        splits: which splits (hub names); default all of the task's splits.

    Returns:
        A :class:`TaskData`; splits that could not be found are in ``missing`` with a reason.

    Raises:
        NasplugError: unknown task or split, a source folder that does not exist, or a
            malformed file (the message names it).
    """
    spec = get_task(task)
    wanted = list(spec.splits) if splits is None else list(splits)
    unknown = [s for s in wanted if s not in spec.splits]
    if unknown:
        raise NasplugError(f"glue {spec.name}: unknown split(s) {unknown}; "
                           f"allowed: {', '.join(spec.splits)}")
    if str(source) == "hub":
        data = TaskData(spec.name, "hub")
        _load_hub(spec, wanted, data)
    else:
        root = Path(source)
        if not root.is_dir():
            raise NasplugError(f"glue source: folder {root} does not exist; "
                               "give a folder in the GLUE TSV layout or 'hub'")
        data = TaskData(spec.name, str(root))
        _load_local(spec, root, wanted, data)
    for split, reason in data.missing.items():
        logger.warning("glue %s: split %s missing: %s", spec.name, split, reason)
    return data


def load_glue(source: str | os.PathLike[str], tasks: Sequence[str] | None = None
              ) -> dict[str, TaskData]:
    """Load several tasks (default: all nine and AX) from one source, keyed by canonical name."""
    names = [get_task(t).name for t in (tasks or TASK_NAMES)]
    return {name: load_task(name, source) for name in names}
