"""Atomic file writes (a temp file in the same folder, fsync, then rename over the target)
and append-only JSONL logs.

A crash leaves either the old file or the new one, never half of one. An append can be cut
by a crash; :func:`read_jsonl` drops the torn line and, with ``repair``, leaves the file
ready for the next append.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from nasplug.errors import WriteFailed

log = logging.getLogger(__name__)


def _umask() -> int:
    """The process's umask (read from /proc where it can be, so no thread sees it changed)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shareable(path: str | os.PathLike[str]) -> None:
    """Give a file or folder made by :mod:`tempfile` (0600 / 0700 whatever the umask) the mode
    ``open`` / ``mkdir`` would have given it: 0644 / 0755 under umask 022. A written model or
    run can then be served and shared as any other file."""
    full = 0o777 if os.path.isdir(path) else 0o666
    os.chmod(path, full & ~_umask())


def make_temp_dir(parent: str | os.PathLike[str], prefix: str, suffix: str = "") -> Path:
    """``tempfile.mkdtemp`` in ``parent`` with the umask's folder mode (see :func:`shareable`)."""
    tmp = tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent)
    shareable(tmp)
    return Path(tmp)


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(fh)`` on a temp file next to ``path``, then atomically replace ``path``.

    Raises:
        WriteFailed: the file system refused (a full disk, permissions): one line naming ``path``.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would keep the file from anyone else
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, WriteFailed):
            raise WriteFailed.of(path, exc) from exc
        raise
    _fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """fsync a folder (its entries: a rename into it is durable after this); best effort."""
    _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda fh: fh.write(data))


#: What a write killed half-way leaves (never a finished file): ``.NAME.XXXX.tmp`` (a temp file
#: of :func:`atomic_write`, a checkpoint folder being written), ``.NAME.tmp-XXXX`` (a tokenizer
#: being saved), ``.NAME.old-PID`` (a tokenizer being replaced).
LEFTOVER = re.compile(r"^\..+(\.tmp|\.tmp-[A-Za-z0-9_]+|\.old-[0-9]+)$")


def remove_leftovers(root: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed writes left anywhere under ``root`` (see :data:`LEFTOVER`); returns
    what was removed. Called when a run resumes, before anything writes into it."""
    removed: list[Path] = []
    for folder, dirs, files in os.walk(root):
        for name in [d for d in dirs if LEFTOVER.match(d)]:
            shutil.rmtree(Path(folder, name), ignore_errors=True)
            dirs.remove(name)
            removed.append(Path(folder, name))
        for name in files:
            if LEFTOVER.match(name):
                Path(folder, name).unlink(missing_ok=True)
                removed.append(Path(folder, name))
    if removed:
        log.info("removed %d file(s) left by an interrupted write under %s", len(removed), root)
    return removed


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def save_png(fig: Any, path: str | os.PathLike[str]) -> Path:
    """A matplotlib figure as a PNG (120 dpi, tight), written atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(path, lambda fh: fh.write(buffer.getvalue()))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line durably (flush + fsync); WriteFailed when the file system refuses."""
    path = Path(path)
    line = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise WriteFailed.of(path, exc) from exc


class JsonlLineError(ValueError):
    """A line of a JSONL log that is not a record: ``lineno`` (from 1) and ``cause`` (the
    exception the line raised, None for a blank line between records)."""

    def __init__(self, lineno: int, cause: BaseException | None) -> None:
        super().__init__(f"line {lineno}: " + ("a blank line between records" if cause is None else str(cause)))
        self.lineno, self.cause = lineno, cause


def read_jsonl(path: str | os.PathLike[str], parse: Callable[[Any, int], Any] | None = None, *,
               repair: bool = False, blank_lines: bool = False) -> list[Any]:
    """The records of an append-only JSONL file (written by :func:`append_jsonl` or alike).

    Each line is ``json.loads``-ed and passed to ``parse(record, index)`` (which may check it
    and raise ValueError, TypeError, KeyError or AttributeError). The last line, when the file
    does not end with a newline, is the write a crash cut: dropped with a warning if it does
    not parse, kept if it does (the cut fell just before its newline). Blank lines after the
    last record are ignored; blank lines between records are an error unless ``blank_lines``.

    With ``repair`` the file is made ready for the next append (fsynced): the torn line and
    trailing blank lines are cut, and a newline is added after a last record that lacks one,
    so the next record never lands on the same line.

    Raises:
        JsonlLineError: a line (not the torn last one) that is not a record.
    """
    path = Path(path)
    if not path.is_file():
        return []
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: list[Any] = []
    good_end, offset, blank_at = 0, 0, None
    for lineno, line in enumerate(lines, start=1):
        offset += len(line) + 1
        if not line.strip():
            blank_at = blank_at or lineno
            continue
        try:
            record = json.loads(line)
            if parse is not None:
                record = parse(record, len(records))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # JSON, UTF-8 and field errors
            if lineno == len(lines):  # no newline after it: the last write never finished
                log.warning("%s: dropping a torn last line (the previous run stopped mid-write)", path)
                break
            raise JsonlLineError(lineno, exc) from None
        if blank_at is not None and not blank_lines:
            raise JsonlLineError(blank_at, None)
        blank_at = None
        records.append(record)
        good_end = min(offset, len(data))
    if repair:
        _repair_tail(path, data, good_end)
    return records


def _repair_tail(path: Path, data: bytes, good_end: int) -> None:
    """Cut ``data`` (the file's bytes) after its last good record at ``good_end``, ending it
    with a newline."""
    missing_newline = good_end > 0 and data[good_end - 1:good_end] != b"\n"
    if good_end == len(data) and not missing_newline:
        return
    with open(path, "r+b") as fh:
        fh.truncate(good_end)
        if missing_newline:
            fh.seek(good_end)
            fh.write(b"\n")
        fh.flush()
        os.fsync(fh.fileno())
