"""Reading a run directory's files back, validated: a damaged file is one clear line.

Every file nasplug reads back from a run (``top.json``, ``result.json``, ``test.json``,
``stages/*.json``, ``metrics.jsonl``, ...) goes through these helpers, so garbage, the wrong
JSON type, or bytes that are not UTF-8 give a NasplugError naming the file and what to do,
never a traceback.
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


def read_top(run_dir: Path) -> list[dict[str, Any]]:
    """``top.json``: the best archs of the search, best first ([] when there is none)."""
    path = run_dir / "top.json"
    top = read_json(path, list, "run the search stage again (delete it, then --resume)")
    if top is None:
        return []
    for entry in top:
        if not isinstance(entry, dict) or not isinstance(entry.get("arch"), dict):
            raise NasplugError(f"{path}: an entry has no 'arch' mapping; delete it and rerun the search stage "
                               "(--resume replays the search log)")
    return top


def finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def use_run_plugins(run_dir: Path) -> None:
    """Make the modules of a run's plugins importable again: its recipe's folder (``run.json``)."""
    from nasplug.registry import add_import_dir

    info = read_json(run_dir / "run.json")
    folder = info.get("recipe_dir") if isinstance(info, dict) else None
    if isinstance(folder, str) and Path(folder).is_dir():
        add_import_dir(folder)
