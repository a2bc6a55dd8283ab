"""Architectures are plain dicts: one entry per named choice.

Values are JSON scalars (str, int, float, bool). The canonical key (sorted, compact JSON)
makes an arch hashable and is what caches and logs use to recognise repeats.
"""

from __future__ import annotations

import json
from typing import Any

from nasplug.errors import NasplugError

Value = str | int | float | bool
Arch = dict[str, Value]


def arch_key(arch: Arch) -> str:
    """Canonical, hashable text form of an arch (sorted keys, no spaces)."""
    return json.dumps(arch, sort_keys=True, separators=(",", ":"))


def arch_to_json(arch: Arch) -> str:
    """JSON text of an arch; inverse of :func:`arch_from_json`."""
    return arch_key(arch)


def arch_from_json(text: str) -> Arch:
    """Parse an arch from JSON text, checking it is a flat dict of scalars."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NasplugError(f"arch: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise NasplugError(f"arch: expected a JSON object, got {type(value).__name__}")
    for name, choice in value.items():
        if not isinstance(choice, (str, int, float, bool)):
            raise NasplugError(
                f"arch.{name}: expected a str/int/float/bool, got {type(choice).__name__}"
            )
    return value
