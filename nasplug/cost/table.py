"""Latency tables: each option of each choice measured once at its position, on one device.

An arch's predicted latency is the sum of the entries of the options it picks (active
choices only, for a space with conditions) plus one measured constant: the median, over a
few calibration archs, of the extracted model's measured latency minus its sum. The constant
holds what no block carries (embeddings, the calls between blocks).

A space offers what the table needs through :class:`LatencyParts` (two methods); the table
file (``lut.json``) records the space it was measured for, the device settings, the machine's
name and the calibration, so ``nasplug latency-check`` rebuilds the space from the file alone.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from nasplug.arch import Arch, Value
from nasplug.cost.measure import Device, machine_name, measure_many
from nasplug.errors import NasplugError
from nasplug.io import atomic_write_json
from nasplug.space import SearchSpace

VERSION = 1
Call = Callable[[], Any]


@runtime_checkable
class LatencyParts(Protocol):
    """What a space built from layer choices offers for latency tables and measurement.

    Both methods return a no-argument callable that runs a forward pass on fixed inputs made
    once (so timing it measures the model, not the input); the callable's result is ignored.
    """

    def latency_block(self, choice: str, option: Value, batch_size: int, seq_len: int) -> Call | None:
        """Called once per (choice, option) when a table is measured: the block that ``option``
        puts at ``choice``'s position, alone, on inputs of ``batch_size`` x ``seq_len`` tokens
        (None: the option runs nothing, e.g. a skipped layer; its entry is 0)."""
        ...

    def latency_model(self, arch: Arch, batch_size: int, seq_len: int) -> Call:
        """The extracted model of ``arch`` on ``batch_size`` x ``seq_len`` tokens (direct measurement)."""
        ...

    def latency_lengths(self) -> tuple[int, int]:
        """The sequence length measured when the recipe names none, and the longest the model takes."""
        ...


def parts_of(space: SearchSpace) -> LatencyParts:
    """``space`` as :class:`LatencyParts` (NasplugError naming the space when it is not)."""
    if not isinstance(space, LatencyParts):
        raise NasplugError(f"space {space.name!r}: has no latency parts (latency_block, latency_model, "
                           "latency_lengths); latency tables and measurement work for spaces built from layer "
                           "choices (lvbert)")
    return space


@dataclass
class LatencyTable:
    """A measured table: ``entries[choice]`` holds ``(option, ms)`` pairs; ``constant_ms``."""

    space: dict[str, Any]
    device: Device
    machine: str
    entries: dict[str, list[tuple[Value, float]]]
    constant_ms: float
    calibration: list[dict[str, Any]] = field(default_factory=list)
    measured_at: str = ""

    def entry(self, choice: str, option: Value) -> float:
        for value, ms in self.entries.get(choice, ()):
            if value == option and type(value) is type(option):
                return ms
        raise NasplugError(f"latency table: no entry for {choice}={option!r}; the table was measured for another "
                           f"space ({self.space.get('name')!r}); measure it again with nasplug latency-table")

    def check_space(self, space: SearchSpace, where: str = "latency table") -> None:
        """NasplugError (one line) unless the table has an entry for every option of ``space``."""
        choices = space.choices()
        for choice, options in choices.items():
            for option in options:
                self.entry(choice, option)
        extra = [k for k in self.entries if k not in choices]
        if extra:
            raise NasplugError(f"{where}: entry {extra[0]!r} is no choice of space {space.name!r}; the table was "
                               "measured for another space; measure it again with nasplug latency-table")

    def blocks_ms(self, arch: Arch, space: SearchSpace | None = None) -> float:
        """Sum of the entries of ``arch``'s options (only the active choices when ``space`` has conditions)."""
        on: Mapping[str, bool] = {}
        if space is not None and space.conditions():
            from nasplug.conditions import active

            on = active(space, arch)
        return sum(self.entry(k, arch[k]) for k in self.entries if on.get(k, True))

    def predict(self, arch: Arch, space: SearchSpace | None = None) -> float:
        """Predicted latency in ms: the blocks' sum plus the measured constant."""
        return self.blocks_ms(arch, space) + self.constant_ms

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "space": self.space, "device": self.device.to_json(), "machine": self.machine,
                "measured_at": self.measured_at, "constant_ms": self.constant_ms,
                "entries": {k: [[v, ms] for v, ms in pairs] for k, pairs in self.entries.items()},
                "calibration": self.calibration}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return atomic_write_json(path, self.to_json())


def build_table(space: SearchSpace, device: Device, spec: Mapping[str, Any], calibrate: int = 5, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> LatencyTable:
    """Measure every option of every choice of ``space`` on ``device``, then the constant on
    ``calibrate`` random archs (drawn with ``seed``). ``spec``: how to rebuild the space
    (its registered name and constructor arguments), stored in the table."""
    if calibrate < 1:
        raise NasplugError(f"--calibrate: expected at least 1 arch, got {calibrate}")
    parts = parts_of(space)
    keys: list[tuple[str, Value]] = []
    calls: list[Call] = []
    for choice, options in space.choices().items():
        for option in options:
            call = parts.latency_block(choice, option, device.batch_size, device.seq_len)
            keys.append((choice, option))
            calls.append(call if call is not None else _nothing)
    if progress:
        progress(f"measuring {len(calls)} blocks")
    times = measure_many(calls, device, seed=seed)
    entries: dict[str, list[tuple[Value, float]]] = {}
    for (choice, option), ms, call in zip(keys, times, calls, strict=True):
        entries.setdefault(choice, []).append((option, 0.0 if call is _nothing else ms))
    table = LatencyTable(space=dict(spec), device=device, machine=machine_name(), entries=entries, constant_ms=0.0,
                         measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    archs = distinct_archs(space, calibrate, random.Random(f"calibrate-{seed}"))
    if progress:
        progress(f"measuring {len(archs)} calibration archs")
    models = [parts.latency_model(a, device.batch_size, device.seq_len) for a in archs]
    measured = measure_many(models, device, seed=seed)
    sums = [table.blocks_ms(a, space) for a in archs]
    table.constant_ms = statistics.median(m - s for m, s in zip(measured, sums, strict=True))
    table.calibration = [{"arch": space.format(a), "measured_ms": m, "blocks_ms": s}
                         for a, m, s in zip(archs, measured, sums, strict=True)]
    return table


def _nothing() -> None:
    return None


def distinct_archs(space: SearchSpace, n: int, rng: random.Random) -> list[Arch]:
    from nasplug.arch import arch_key

    seen: dict[str, Arch] = {}
    for _ in range(100 * n):
        arch = space.sample(rng)
        seen.setdefault(arch_key(arch), arch)
        if len(seen) == n:
            break
    return list(seen.values())


def load_table(path: str | os.PathLike[str]) -> LatencyTable:
    """Read a table back (NasplugError, one line naming the file and the field, when it is damaged)."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise NasplugError(f"{where}: no latency table here; write one with nasplug latency-table")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise NasplugError(f"{where}: not a readable JSON latency table ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise NasplugError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("version") != VERSION:
        raise NasplugError(f"{where}: version: expected {VERSION}, got {data.get('version')!r}")
    space = data.get("space")
    if not isinstance(space, dict) or not isinstance(space.get("name"), str):
        raise NasplugError(f"{where}: space: expected a mapping with a name")
    entries = _read_entries(data.get("entries"), where)
    constant = data.get("constant_ms")
    if not isinstance(constant, (int, float)) or not _finite(constant):
        raise NasplugError(f"{where}: constant_ms: expected a finite number, got {constant!r}")
    calibration = data.get("calibration", [])
    if not isinstance(calibration, list):
        raise NasplugError(f"{where}: calibration: expected a list")
    return LatencyTable(space=space, device=Device.from_json(data.get("device"), where),
                        machine=str(data.get("machine", "")), entries=entries, constant_ms=float(constant),
                        calibration=calibration, measured_at=str(data.get("measured_at", "")))


def _read_entries(raw: Any, where: str) -> dict[str, list[tuple[Value, float]]]:
    if not isinstance(raw, dict) or not raw:
        raise NasplugError(f"{where}: entries: expected a non-empty mapping of choice -> [[option, ms], ...]")
    entries: dict[str, list[tuple[Value, float]]] = {}
    for choice, pairs in raw.items():
        if not isinstance(pairs, list) or not pairs:
            raise NasplugError(f"{where}: entries.{choice}: expected a non-empty list of [option, ms]")
        for pair in pairs:
            if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], (str, int, float, bool))
                    or not _finite(pair[1]) or pair[1] < 0):
                raise NasplugError(f"{where}: entries.{choice}: expected [option, ms >= 0] pairs, got {pair!r}")
        entries[choice] = [(p[0], float(p[1])) for p in pairs]
    return entries


def _finite(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
