"""Reading nasplug's files back, validated: a damaged file is one clear line.

Every file nasplug reads back from a run (``top.json``, ``result.json``, ``test.json``,
``stages/*.json``, ``metrics.jsonl``, ...) goes through these helpers (directly, or through the
readers of :class:`~nasplug.layout.RunLayout`, which knows where each file is), so garbage, the
wrong JSON type, or bytes that are not UTF-8 give a NasplugError naming the file and what to
do, never a traceback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError

MAX_BYTES = 256 << 20


def read_json(path: Path, expect: type = dict, what: str = "") -> Any:
    """The JSON value in ``path`` (None when the file does not exist)."""
    if not path.exists():
        return None
    hint = what or "delete it to have the stage that wrote it run again (with --resume)"
    try:
        if path.stat().st_size > MAX_BYTES:
            raise NasplugError(f"{path}: too large to be a nasplug file; {hint}")
        value = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise NasplugError(f"{path}: unreadable or damaged ({reason}); {hint}") from None
    if not isinstance(value, expect):
        raise NasplugError(f"{path}: expected a JSON {expect.__name__}, found a {type(value).__name__}; {hint}")
    return value


def read_log_leniently(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log, one per line, for reports: torn or foreign lines (a killed write)
    are skipped, never an error (the stages read their own logs with :func:`nasplug.io.read_jsonl`)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

