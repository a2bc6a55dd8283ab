"""Trials and the append-only ``trials.jsonl`` log.

One JSON object per line, written, flushed and fsynced per trial, so a crash loses at most
the trial being written. A torn last line (the crash hit mid-write) is dropped on read, and
cut on resume (see :func:`nasplug.io.read_jsonl`).
The log holds no wall-clock times: the same seed gives the same bytes, which is what lets
resume be checked against an uninterrupted run.

In a space with conditional choices a proposed arch may name a model under another name: its
trial then also holds ``canonical``, the model's one name (what the cache, ``top`` and the
retrain stage use); a second proposal of a model already scored is a ``cached`` trial. The
field is written only when it differs from ``arch``, so logs of spaces without conditions
are what they always were, and logs without it read as before.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.io import JsonlLineError, append_jsonl, read_jsonl

#: Statuses a trial can have. Only "ok" and "cached" carry a score and count toward budget.
STATUSES = ("ok", "cached", "rejected", "failed")


@dataclass
class Trial:
    """One proposed architecture and what became of it."""

    number: int  # position in the log, from 0
    batch: int  # which ask() produced it
    asked: int  # the n passed to that ask(): replay must ask the same
    arch: Arch
    status: str  # one of STATUSES
    score: float | None = None  # the objective metric as measured (not sign-flipped)
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str | None = None  # why it was rejected or failed
    canonical: Arch | None = None  # the model's one name, when ``arch`` names it otherwise

    @property
    def key(self) -> str:
        """The canonical arch's key: trials with one key are one model."""
        return arch_key(self.arch if self.canonical is None else self.canonical)

    @property
    def model_arch(self) -> Arch:
        """The canonical arch (``arch`` itself unless the space says otherwise)."""
        return self.arch if self.canonical is None else self.canonical

    @property
    def scored(self) -> bool:
        return self.status in ("ok", "cached")

    def record(self) -> dict[str, Any]:
        """The trial as a log record (what :meth:`to_json` writes)."""
        record = asdict(self)
        if self.canonical is None:  # logs of spaces without conditions keep their bytes
            del record["canonical"]
        return record

    def to_json(self) -> str:
        return json.dumps(self.record(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Trial:
        return cls(**record)


FIELDS = {"number", "batch", "asked", "arch", "status", "score", "metrics", "reason"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _trial(record: Any, index: int) -> Trial:
    """A log record checked field by field (NasplugError naming the first bad one)."""
    if not isinstance(record, dict) or set(record) - {"canonical"} != FIELDS:
        raise NasplugError("not a trial record (expected the fields " + ", ".join(sorted(FIELDS)) + ")")
    if record["number"] != index or not isinstance(record["number"], int) or isinstance(record["number"], bool):
        raise NasplugError(f"trial number {record['number']!r} where {index} was expected")
    for name in ("batch", "asked"):
        value = record[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "asked" else 0):
            raise NasplugError(f"{name}: {value!r} is not a valid count")
    if record["status"] not in STATUSES:
        raise NasplugError(f"status: {record['status']!r} is not one of {', '.join(STATUSES)}")
    for name in ("arch", "canonical") if "canonical" in record else ("arch",):
        arch = record[name]
        if not isinstance(arch, dict) or not all(isinstance(v, (str, int, float, bool)) for v in arch.values()):
            raise NasplugError(f"{name}: not a mapping of choices to plain values")
    score = record["score"]
    if score is not None and not _number(score):
        raise NasplugError(f"score: {score!r} is not a number")
    if record["status"] in ("ok", "cached") and (score is None or not math.isfinite(score)):
        raise NasplugError(f"score: a {record['status']} trial needs a finite score, got {score!r}")
    metrics = record["metrics"]
    if not isinstance(metrics, dict) or not all(_number(v) for v in metrics.values()):
        raise NasplugError("metrics: not a mapping of names to numbers")
    if record["reason"] is not None and not isinstance(record["reason"], str):
        raise NasplugError("reason: not text")
    return Trial.from_dict(record)


class TrialLog:
    """Append-only JSONL file of trials."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        """True when the file holds anything but whitespace (a log to resume or refuse)."""
        return self.path.is_file() and self.path.stat().st_size > 0 and bool(self.path.read_bytes().strip())

    def read(self, repair: bool = False) -> list[Trial]:
        """All complete trials, each checked. A torn last line (a write cut by a crash) and
        blank lines after the last trial are dropped; with ``repair`` the file is cut after the
        last trial (which gets its newline if the cut fell just before it), so the resumed log
        continues exactly where the interrupted one stopped.

        Raises:
            NasplugError: a line that is not a trial record nasplug wrote (naming the line).
        """
        try:
            return read_jsonl(self.path, _trial, repair=repair)
        except JsonlLineError as exc:
            if exc.cause is None:
                raise NasplugError(f"{self.path}:{exc.lineno}: a blank line inside the log, which nasplug never "
                                   "writes; the log was edited: restore it or delete it") from None
            reason = (
                exc.cause if isinstance(exc.cause, NasplugError) else f"not a trial record ({type(exc.cause).__name__})"
            )
            raise NasplugError(f"{self.path}:{exc.lineno}: {reason}; the log was damaged or edited: restore it, "
                               "or delete it to search again from the start") from None

    def append(self, trial: Trial) -> None:
        """Write one trial durably (flush + fsync) before the strategy hears of it."""
        append_jsonl(self.path, trial.record())  # the bytes of to_json(); a refused write is WriteFailed
