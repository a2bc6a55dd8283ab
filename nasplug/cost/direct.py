"""Direct latency measurement as a search metric: each arch's extracted model timed once.

With ``latency: {measure: direct}`` a run's space gives ``latency_ms`` by timing the extracted
model of each arch it is asked about (:meth:`~nasplug.cost.table.LatencyParts.latency_model`,
the fastest of the device's rounds), instead of predicting it from a table: exact for the archs it
sees, but it costs a measurement per arch (a few dozen forward calls) and is as noisy as the
machine is.

Measured values are not repeatable, so each one is measured once per run and kept: every
measurement is appended (flushed and fsynced) to ``latency_measured.jsonl`` in the run
directory with its arch, device settings and machine, and read back by a resumed run, whose
search then replays the values it saw, constraints included. Values asked for before the run
has started (a check on a sampled arch) are kept in memory and written with the first value
asked for once it has. A torn last line (a crash mid-write) is dropped, and cut just before the
next append; lines measured with other device settings are ignored. Only the run measures, on
one process (``nasplug rank-corr``, ``export`` and the report read its values); under torchrun
use a table.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.cost.measure import Device, machine_name, measure_many
from nasplug.errors import NasplugError
from nasplug.io import JsonlLineError, append_jsonl, read_jsonl
from nasplug.space import SearchSpace

log = logging.getLogger(__name__)


class MeasuredLatencies:
    """``latency_ms`` of archs of ``space`` measured on ``device``, kept in ``path``.

    Args:
        space: a space with latency parts (:func:`~nasplug.cost.table.parts_of`).
        device: how each model is timed.
        path: the JSON-lines file of the measurements (read now; appended to).
        started: whether the run has started (a callable: values are written only then).
        read_only: never measure (the report): an arch measured by nobody has no value.
    """

    def __init__(self, space: SearchSpace, device: Device, path: Path, started: Any = None,
                 read_only: bool = False) -> None:
        from nasplug.cost.table import parts_of

        self.parts = parts_of(space)
        self.space, self.device, self.path, self.read_only = space, device, Path(path), read_only
        self.started = started if started is not None else (lambda: True)
        self.values: dict[str, float] = {}
        self._pending: list[dict[str, Any]] = []
        self._repaired = False
        self._load()

    def _load(self) -> None:
        records = read_measurements(self.path)  # repaired (a torn line cut) only before the first append
        mine = self.device.to_json()
        other = [r for r in records if r["device"] != mine]
        if other:
            log.warning("%s: %d measurement(s) made with other device settings are ignored", self.path, len(other))
        self.values = {r["key"]: r["latency_ms"] for r in records if r["device"] == mine}

    def get(self, arch: Arch) -> float | None:
        """The arch's measured latency in ms (measured now when nobody has; None when read-only)."""
        arch = self.space.canonical(arch)  # one model, one measurement (conditional choices)
        key = arch_key(arch)
        if key not in self.values:
            if self.read_only:
                return None
            call = self.parts.latency_model(arch, self.device.batch_size, self.device.seq_len)
            self.values[key] = measure_many([call], self.device)[0]
            self._pending.append({"key": key, "arch": self.space.format(arch), "latency_ms": self.values[key],
                                  "device": self.device.to_json(), "machine": machine_name()})
        if self._pending and not self.read_only and self.started():
            if not self._repaired:
                read_measurements(self.path, repair=True)
                self._repaired = True
            for record in self._pending:
                append_jsonl(self.path, record)
            self._pending.clear()
        return self.values[key]


def read_measurements(path: Path, repair: bool = False) -> list[dict[str, Any]]:
    """The records of a ``latency_measured.jsonl`` (NasplugError, one line naming the file and
    the line, when one is damaged; a torn last line is dropped, and cut with ``repair``)."""
    try:
        return read_jsonl(path, _record, repair=repair)
    except JsonlLineError as exc:
        raise NasplugError(f"{path}: {exc}; the run's measured latencies are damaged") from None
    except OSError as exc:
        raise NasplugError(f"{path}: cannot read the measured latencies ({exc.strerror or exc})") from None


def _record(raw: Any, index: int) -> dict[str, Any]:
    """One line of ``latency_measured.jsonl``, checked (ValueError naming the field)."""
    if not isinstance(raw, dict):
        raise ValueError(f"expected an object, got {type(raw).__name__}")
    for name, kind in (("key", str), ("arch", str), ("machine", str), ("device", dict)):
        if not isinstance(raw.get(name), kind):
            raise ValueError(f"{name}: expected a {kind.__name__}, got {raw.get(name)!r}")
    ms = raw.get("latency_ms")
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
        raise ValueError(f"latency_ms: expected a finite number >= 0, got {ms!r}")
    return {**raw, "latency_ms": float(ms)}
