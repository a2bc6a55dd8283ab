"""Latency tables: each option of each choice measured once at its position, on one device.

An arch's predicted latency is the sum of the entries of the options it picks (active
choices only, for a space with conditions) plus one measured constant: the median, over a
few calibration archs, of the extracted model's measured latency minus its sum. The constant
holds what no block carries (embeddings, the calls between blocks). A prediction is never
negative: it is clamped at 0, and :func:`build_table` warns when a calibration arch would
predict 0 or less (the constant came out too negative: measure with more repeats or longer
sequences).

Where a block's cost depends on other choices (elastic-BERT: every layer's heads and FFN run
at the arch's shared ``hidden`` width), the space declares those choices as its **latency
context** (:class:`LatencyContext`); the table then measures each option at each position
once per combination of context values, and looks an arch's entries up under its own context
values. The context choices themselves have no entries. A space without the declaration
(LV-BERT) has one set of entries. The constant is one for all context values (fitted on
calibration archs of mixed widths), although embeddings too grow with the width.

A space offers what the table needs through :class:`LatencyParts`; the table file
(``lut.json``) records the space it was measured for, the device settings, the machine's
name and the calibration, so ``nasplug latency-check`` rebuilds the space from the file alone.
Format: version 1 (no context: ``entries`` maps choice -> ``[[option, ms], ...]``) or version
2 (``context``: the context choices; ``entries``: a list of ``{"context": {choice: value},
"entries": {choice: [[option, ms], ...]}}``, one per combination). A table is written in the
lowest version that holds it, so a context-free table's file is what it always was.
"""

from __future__ import annotations

import datetime
import itertools
import json
import logging
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

VERSION = 1  # no latency context
VERSION_CONTEXT = 2  # entries per combination of context values
Call = Callable[[], Any]
Entries = dict[str, list[tuple[Value, float]]]
log = logging.getLogger(__name__)


@runtime_checkable
class LatencyParts(Protocol):
    """What a space built from layer choices offers for latency tables and measurement.

    Both methods return a no-argument callable that runs a forward pass on fixed inputs made
    once (so timing it measures the model, not the input); the callable's result is ignored.
    """

    def latency_block(self, choice: str, option: Value, batch_size: int, seq_len: int) -> Call | None:
        """Called once per (choice, option) when a table is measured: the block that ``option``
        puts at ``choice``'s position, alone, on inputs of ``batch_size`` x ``seq_len`` tokens
        (None: the option runs nothing, e.g. a skipped layer; its entry is 0). A space that
        declares a :class:`LatencyContext` is also given ``context=`` (a dict: each context
        choice's value), once per combination, and is never asked for the context choices."""
        ...

    def latency_model(self, arch: Arch, batch_size: int, seq_len: int) -> Call:
        """The extracted model of ``arch`` on ``batch_size`` x ``seq_len`` tokens (direct measurement)."""
        ...

    def latency_lengths(self) -> tuple[int, int]:
        """The sequence length measured when the recipe names none, and the longest the model takes."""
        ...


@runtime_checkable
class LatencyContext(Protocol):
    """Optional, beside :class:`LatencyParts`: the choices a block's cost depends on."""

    def latency_context(self) -> tuple[str, ...]:
        """Called when a table is measured or checked: the choices whose values change the
        cost of the other choices' blocks (e.g. a width shared by every layer). They must be
        choices without conditions; the table measures every combination of their options."""
        ...


def context_of(space: SearchSpace) -> tuple[str, ...]:
    """The latency context ``space`` declares (``()`` when it declares none); checked against its choices."""
    if not isinstance(space, LatencyContext):
        return ()
    names = tuple(space.latency_context())
    free = [k for k in space.choices() if k not in space.conditions()]
    for name in names:
        if name not in free:
            raise NasplugError(f"space {space.name!r}: latency_context names {name!r}, which is no unconditional "
                               f"choice; allowed: {', '.join(free)}")
    return names


def contexts(space: SearchSpace, names: tuple[str, ...]) -> list[dict[str, Value]]:
    """Every combination of the options of the context choices ``names`` (``[{}]`` for none)."""
    choices = space.choices()
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(choices[n] for n in names))]


Block = tuple[dict[str, Value], str, Value, "Call | None"]


def block_calls(space: SearchSpace, batch_size: int, seq_len: int) -> list[Block]:
    """``(context, choice, option, call)`` for every block a table measures (the context choices excluded)."""
    parts, names = parts_of(space), context_of(space)
    rows: list[Block] = []
    for where in contexts(space, names):
        extra = {"context": where} if names else {}
        for choice, options in space.choices().items():
            if choice in names:
                continue
            for option in options:
                rows.append((where, choice, option, parts.latency_block(choice, option, batch_size, seq_len, **extra)))
    return rows


def parts_of(space: SearchSpace) -> LatencyParts:
    """``space`` as :class:`LatencyParts` (NasplugError naming the space when it is not)."""
    if not isinstance(space, LatencyParts):
        raise NasplugError(f"space {space.name!r}: has no latency parts (latency_block, latency_model, "
                           "latency_lengths); latency tables and measurement work for spaces built from layer "
                           "choices (lvbert, elastic-bert)")
    return space


@dataclass
class LatencyTable:
    """A measured table: ``groups`` holds one ``(context values, entries)`` pair per combination
    of the ``context`` choices' values (one pair with ``{}`` when there is no context); an
    entries mapping holds ``choice -> [(option, ms), ...]``; ``constant_ms`` is the fitted constant."""

    space: dict[str, Any]
    device: Device
    machine: str
    groups: list[tuple[dict[str, Value], Entries]]
    constant_ms: float
    calibration: list[dict[str, Any]] = field(default_factory=list)
    measured_at: str = ""
    context: tuple[str, ...] = ()

    @property
    def entries(self) -> Entries:
        """The entries of a table without context (NasplugError for a table with one: use :meth:`group`)."""
        if self.context:
            raise NasplugError(f"latency table: its entries depend on {', '.join(self.context)}; look them up "
                               "under an arch's values (LatencyTable.group)")
        return self.groups[0][1]

    def choice_names(self) -> list[str]:
        """The choices that have entries (the context choices have none)."""
        return list(self.groups[0][1]) if self.groups else []

    def group(self, where: Mapping[str, Value]) -> Entries:
        """The entries measured under the context values ``where`` (extra keys are ignored)."""
        missing = [name for name in self.context if name not in where]
        if missing:
            raise NasplugError(f"latency table: its entries depend on {', '.join(missing)}; give the arch's value "
                               f"(the table's context: {', '.join(self.context)})")
        want = {name: where[name] for name in self.context}
        for values, entries in self.groups:
            if all(_same(values[k], v) for k, v in want.items()):
                return entries
        said = ", ".join(f"{k}={v!r}" for k, v in want.items())
        raise NasplugError(f"latency table: no entries for {said}; the table was measured for another space "
                           f"({self.space.get('name')!r}); measure it again with nasplug latency-table")

    def entry(self, choice: str, option: Value, where: Mapping[str, Value] | None = None) -> float:
        """The entry of ``choice=option`` (under the context values ``where``, for a table with a context)."""
        for value, ms in self.group(where or {}).get(choice, ()):
            if _same(value, option):
                return ms
        raise NasplugError(f"latency table: no entry for {choice}={option!r}; the table was measured for another "
                           f"space ({self.space.get('name')!r}); measure it again with nasplug latency-table")

    def check_space(self, space: SearchSpace, where: str = "latency table") -> None:
        """NasplugError (one line) unless the table has an entry for every option of ``space``
        under every combination of its context values, and nothing else."""
        declared = context_of(space)
        if declared != self.context:
            raise NasplugError(f"{where}: measured with the context {list(self.context)}, but space {space.name!r} "
                               f"declares {list(declared)}; measure it again with nasplug latency-table")
        combos = contexts(space, declared)
        for combo in combos:
            for choice, options in space.choices().items():
                for option in options if choice not in declared else ():
                    self.entry(choice, option, combo)
        if len(self.groups) != len(combos):
            extra = [v for v, _ in self.groups if not any(all(_same(v[k], c[k]) for k in c) for c in combos)]
            said = ", ".join(f"{k}={x!r}" for k, x in (extra[0] if extra else {}).items())
            raise NasplugError(f"{where}: entries for {said or 'a repeated context'}, which space {space.name!r} "
                               "does not have; measure it again with nasplug latency-table")
        unknown = [k for k in self.choice_names() if k not in space.choices() or k in declared]
        if unknown:
            raise NasplugError(f"{where}: entry {unknown[0]!r} is no choice of space {space.name!r}; the table was "
                               "measured for another space; measure it again with nasplug latency-table")

    def blocks_ms(self, arch: Arch, space: SearchSpace | None = None) -> float:
        """Sum of the entries of ``arch``'s options under its context values (only the active
        choices when ``space`` has conditions)."""
        on: Mapping[str, bool] = {}
        if space is not None and space.conditions():
            from nasplug.conditions import active

            on = active(space, arch)
        entries = self.group(arch)
        return sum(self.entry(k, arch[k], arch) for k in entries if on.get(k, True))

    def predict(self, arch: Arch, space: SearchSpace | None = None) -> float:
        """Predicted latency in ms: the blocks' sum plus the measured constant, clamped at 0
        (a latency is never negative; :func:`build_table` warns when its calibration reaches 0)."""
        return max(0.0, self.blocks_ms(arch, space) + self.constant_ms)

    def to_json(self) -> dict[str, Any]:
        def pairs(entries: Entries) -> dict[str, list[list[Any]]]:
            return {k: [[v, ms] for v, ms in rows] for k, rows in entries.items()}

        head = {"space": self.space, "device": self.device.to_json(), "machine": self.machine,
                "measured_at": self.measured_at, "constant_ms": self.constant_ms}
        if not self.context:
            return {"version": VERSION, **head, "entries": pairs(self.entries), "calibration": self.calibration}
        return {"version": VERSION_CONTEXT, **head, "context": list(self.context),
                "entries": [{"context": dict(v), "entries": pairs(e)} for v, e in self.groups],
                "calibration": self.calibration}

    def save(self, path: str | os.PathLike[str]) -> Path:
        return atomic_write_json(path, self.to_json())


def _same(a: Value, b: Value) -> bool:
    return bool(a == b) and type(a) is type(b)


def build_table(space: SearchSpace, device: Device, spec: Mapping[str, Any], calibrate: int = 5, seed: int = 0,
                progress: Callable[[str], None] | None = None) -> LatencyTable:
    """Measure every option of every choice of ``space`` on ``device`` (under every combination
    of its latency context), then the constant on ``calibrate`` random archs (drawn with
    ``seed``). ``spec``: how to rebuild the space (its registered name and constructor
    arguments), stored in the table. Warns (logging) when a calibration arch would predict
    0 ms or less."""
    if calibrate < 1:
        raise NasplugError(f"--calibrate: expected at least 1 arch, got {calibrate}")
    parts = parts_of(space)
    rows = block_calls(space, device.batch_size, device.seq_len)
    calls = [call if call is not None else _nothing for *_, call in rows]
    if progress:
        progress(f"measuring {len(calls)} blocks")
    times = measure_many(calls, device, seed=seed)
    groups: list[tuple[dict[str, Value], Entries]] = []
    for (where, choice, option, _), ms, call in zip(rows, times, calls, strict=True):
        if not groups or groups[-1][0] != where:
            groups.append((where, {}))
        groups[-1][1].setdefault(choice, []).append((option, 0.0 if call is _nothing else ms))
    table = LatencyTable(space=dict(spec), device=device, machine=machine_name(), groups=groups, constant_ms=0.0,
                         measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                         context=context_of(space))
    archs = distinct_archs(space, calibrate, random.Random(f"calibrate-{seed}"))
    if progress:
        progress(f"measuring {len(archs)} calibration archs")
    models = [parts.latency_model(a, device.batch_size, device.seq_len) for a in archs]
    measured = measure_many(models, device, seed=seed)
    sums = [table.blocks_ms(a, space) for a in archs]
    table.constant_ms = statistics.median(m - s for m, s in zip(measured, sums, strict=True))
    table.calibration = [{"arch": space.format(a), "measured_ms": m, "blocks_ms": s}
                         for a, m, s in zip(archs, measured, sums, strict=True)]
    _warn_if_not_positive(table, space)
    return table


def _warn_if_not_positive(table: LatencyTable, space: SearchSpace) -> None:
    low = [c for c in table.calibration if c["blocks_ms"] + table.constant_ms <= 0]
    if low:
        d = table.device
        log.warning("latency table of space %r (%s, batch %d, seq %d): %d of %d calibration archs predict <= 0 ms "
                    "(e.g. %s: blocks %.4f ms + constant %.4f ms); predictions are clamped at 0; measure with more "
                    "--repeats or a longer --seq-len", space.name, d.name, d.batch_size, d.seq_len, len(low),
                    len(table.calibration), low[0]["arch"], low[0]["blocks_ms"], table.constant_ms)


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
    """Read a table back, version 1 or 2 (NasplugError, one line naming the file and the field, when it is damaged)."""
    from nasplug.cost.tablefile import finite, read_groups

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
    if data.get("version") not in (VERSION, VERSION_CONTEXT):
        raise NasplugError(f"{where}: version: expected {VERSION} or {VERSION_CONTEXT}, got {data.get('version')!r}")
    space = data.get("space")
    if not isinstance(space, dict) or not isinstance(space.get("name"), str):
        raise NasplugError(f"{where}: space: expected a mapping with a name")
    context, groups = read_groups(data, where)
    constant = data.get("constant_ms")
    if not finite(constant):
        raise NasplugError(f"{where}: constant_ms: expected a finite number, got {constant!r}")
    calibration = data.get("calibration", [])
    if not isinstance(calibration, list):
        raise NasplugError(f"{where}: calibration: expected a list")
    return LatencyTable(space=space, device=Device.from_json(data.get("device"), where),
                        machine=str(data.get("machine", "")), groups=groups, constant_ms=float(constant),
                        calibration=calibration, measured_at=str(data.get("measured_at", "")), context=context)


