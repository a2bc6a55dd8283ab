"""Reading a latency table's entries back from ``lut.json`` (version 1 or 2; see
:mod:`nasplug.cost.table`): every damaged field is one NasplugError line naming the file and
the field."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from nasplug.arch import Value
from nasplug.errors import NasplugError

Entries = dict[str, list[tuple[Value, float]]]
SCALARS = (str, int, float, bool)


def read_groups(data: dict[str, Any], where: str) -> tuple[tuple[str, ...], list[tuple[dict[str, Value], Entries]]]:
    """``(context, groups)`` of a table file's ``data`` (its version already checked)."""
    if data["version"] == 1:
        if "context" in data:
            raise NasplugError(f"{where}: context: only a version 2 table has a latency context; got version 1")
        return (), [({}, read_entries(data.get("entries"), where, "entries"))]
    context = data.get("context")
    if (not isinstance(context, list) or not context or not all(isinstance(c, str) and c for c in context)
            or len(set(context)) != len(context)):
        raise NasplugError(f"{where}: context: expected a non-empty list of distinct choice names, got {context!r}")
    raw = data.get("entries")
    if not isinstance(raw, list) or not raw:
        raise NasplugError(f"{where}: entries: expected a non-empty list of {{context, entries}} (version 2)")
    groups: list[tuple[dict[str, Value], Entries]] = []
    for i, item in enumerate(raw):
        at = f"entries[{i}]"
        if not isinstance(item, dict) or set(item) != {"context", "entries"}:
            raise NasplugError(f"{where}: {at}: expected a mapping with exactly context and entries")
        values = item["context"]
        if (not isinstance(values, dict) or set(values) != set(context)
                or not all(isinstance(v, SCALARS) for v in values.values())):
            raise NasplugError(f"{where}: {at}.context: expected a value for each of {', '.join(context)}, got "
                               f"{values!r}")
        if any(values == v and _types(values) == _types(v) for v, _ in groups):
            raise NasplugError(f"{where}: {at}.context: {values!r} is given twice")
        entries = read_entries(item["entries"], where, f"{at}.entries")
        if groups and list(entries) != list(groups[0][1]):
            raise NasplugError(f"{where}: {at}.entries: expected the choices of entries[0] "
                               f"({', '.join(groups[0][1])}), got {', '.join(entries)}")
        if set(entries) & set(context):
            raise NasplugError(f"{where}: {at}.entries: {sorted(set(entries) & set(context))[0]!r} is a context "
                               "choice; it has no entries")
        groups.append((values, entries))
    return tuple(context), groups


def read_entries(raw: Any, where: str, at: str) -> Entries:
    """``choice -> [(option, ms), ...]`` from ``raw`` (``at``: the field's name in messages)."""
    if not isinstance(raw, dict) or not raw:
        raise NasplugError(f"{where}: {at}: expected a non-empty mapping of choice -> [[option, ms], ...]")
    entries: Entries = {}
    for choice, pairs in raw.items():
        if not isinstance(pairs, list) or not pairs:
            raise NasplugError(f"{where}: {at}.{choice}: expected a non-empty list of [option, ms]")
        for pair in pairs:
            if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], SCALARS)
                    or not finite(pair[1]) or pair[1] < 0):
                raise NasplugError(f"{where}: {at}.{choice}: expected [option, ms >= 0] pairs, got {pair!r}")
        entries[choice] = [(p[0], float(p[1])) for p in pairs]
    return entries


def _types(values: dict[str, Value]) -> dict[str, type]:
    return {k: type(v) for k, v in values.items()}


def finite(value: Any) -> TypeGuard[int | float]:
    """True for a finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
