"""Trials and the append-only ``trials.jsonl`` log.

One JSON object per line, written, flushed and fsynced per trial, so a crash loses at most
the trial being written. A torn last line (the crash hit mid-write) is dropped on read.
The log holds no wall-clock times: the same seed gives the same bytes, which is what lets
resume be checked against an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError

log = logging.getLogger(__name__)

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

    @property
    def key(self) -> str:
        return arch_key(self.arch)

    @property
    def scored(self) -> bool:
        return self.status in ("ok", "cached")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Trial:
        return cls(**record)


class TrialLog:
    """Append-only JSONL file of trials."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def read(self, repair: bool = False) -> list[Trial]:
        """All complete trials. With ``repair``, a torn last line is cut from the file."""
        if not self.path.is_file():
            return []
        data = self.path.read_bytes()
        trials: list[Trial] = []
        good_end = 0
        lines = data.split(b"\n")
        for lineno, line in enumerate(lines, start=1):
            if not line.strip():
                good_end += len(line) + 1
                continue
            is_last = lineno == len(lines) or all(not rest.strip() for rest in lines[lineno:])
            try:
                trial = Trial.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                if is_last and not data.endswith(b"\n"):
                    log.warning("%s: dropping a torn last line (the previous run stopped mid-write)", self.path)
                    break
                raise NasplugError(f"{self.path}:{lineno}: not a trial record ({exc})") from None
            trials.append(trial)
            good_end += len(line) + 1
        if repair and good_end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(min(good_end, len(data)))
                fh.flush()
                os.fsync(fh.fileno())
        return trials

    def append(self, trial: Trial) -> None:
        """Write one trial durably (flush + fsync) before the strategy hears of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(trial.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
