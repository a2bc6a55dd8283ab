"""Helpers of the fuzz suite: run the CLI in-process (forked) or as a subprocess with a
timeout, fingerprint a run directory, and check the "one clear line, exit 2" contract.

In-process runs call :func:`nasplug.cli.main` exactly as ``python -m nasplug`` does, with
logging on the captured stderr as a terminal would show it, so a warning or a traceback
printed next to the error line counts against the case.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Seconds a case may take (in-process and subprocess alike).
CASE_TIMEOUT_S = 20
ERROR_PREFIX = "nasplug: error:"
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b.*")


@dataclass
class Outcome:
    """What one CLI invocation did."""

    rc: int | None  # None: it hung (killed at the timeout); negative: killed by that signal
    stdout: str
    stderr: str
    seconds: float

    @property
    def hung(self) -> bool:
        return self.rc is None

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        """A short account for assertion messages (the report lists these)."""
        if self.hung:
            return f"hung (killed after {self.seconds:.0f}s); stderr tail: {self.stderr[-300:]!r}"
        status = f"exit {self.rc}" if self.rc >= 0 else f"killed by {signal.Signals(-self.rc).name}"
        tail = ""
        if "Traceback (most recent call last):" in self.stderr:  # the exception line, not C++ frames after it
            found = [line for line in self.stderr.splitlines() if EXCEPTION_LINE.match(line)]
            tail = found[-1][:300] if found else self.stderr.strip().splitlines()[-1][:300]
        return (f"{status} after {self.seconds:.1f}s; stderr first lines: {self.lines[:3]}"
                + (f"; traceback's last line: {tail}" if tail else ""))


#: What a run imports, imported once here so that each forked case starts warm.
WARM_IMPORTS = ("nasplug.cli", "nasplug.pipeline", "nasplug.pipeline.supernet", "nasplug.pipeline.search",
                "nasplug.pipeline.retrain", "nasplug.pipeline.report", "nasplug.pipeline.evaluators",
                "nasplug.glue.stage", "nasplug.text.tasks", "nasplug.spaces.toy", "nasplug.spaces.lvbert",
                "nasplug.strategies.evolution", "nasplug.strategies.random", "nasplug.report", "nasplug.report.plots",
                "nasplug.compare", "nasplug.rankcorr", "nasplug.oneshot.train", "datasets", "tokenizers",
                "safetensors.torch", "matplotlib.pyplot")


def warm_imports() -> None:
    import importlib

    for name in WARM_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _child(argv: Sequence[str], out_fd: int, err_fd: int) -> None:
    """In the forked child: nasplug's main() with fds 1 and 2 on the capture files, as
    ``python -m nasplug`` would run it (default signals, a bare root logger, no
    faulthandler), then ``os._exit`` with its status."""
    code: object = 1
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
        import faulthandler

        faulthandler.disable()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        import nasplug

        sys.argv = [str(Path(nasplug.__file__).with_name("__main__.py")), *argv]  # as `python -m nasplug` sees it
        logging.getLogger().handlers = []
        logging.getLogger().setLevel(logging.WARNING)
        from nasplug.cli import main

        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter prints before exiting 1
            traceback.print_exc()
            code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def run_inprocess(argv: Sequence[str], timeout: float = CASE_TIMEOUT_S) -> Outcome:
    """``nasplug ARGV`` through :func:`nasplug.cli.main` in a fork of this process: no new
    interpreter or imports (fast), yet a crash in native code (an abort, a segfault) or a
    hang kills only the case, and nothing a case changes (import path, loggers, torch
    settings) leaks into the next one. Exit status, stdout and stderr (fd level, so native
    libraries' messages count too) come back."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        t0 = time.monotonic()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child exits in _child
            _child(argv, out.fileno(), err.fileno())
        rc: int | None = None
        delay = 0.002
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - t0 > timeout:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.01)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Outcome(rc, out.read().decode(errors="replace"), err.read().decode(errors="replace"), seconds)


def run_subprocess(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None,
                   timeout: int = CASE_TIMEOUT_S) -> Outcome:
    """``python -m nasplug ARGV`` in a child process (killed at the timeout)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "nasplug", *argv], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        rc = None
    return Outcome(rc, out.decode(errors="replace"), err.decode(errors="replace"), time.monotonic() - t0)


# ---------------------------------------------------------------------- run directories
def fingerprint(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and ``<dir>`` for every folder) under ``root``."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            out[str((base / name).relative_to(root)) + "/"] = "<dir>"
        for name in filenames:
            path = base / name
            rel = str(path.relative_to(root))
            if path.is_symlink() or not path.is_file():
                out[rel] = "<special>"
                continue
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two fingerprints."""
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    return [f"changed {k}" for k in changed] + [f"added {k}" for k in added] + [f"removed {k}" for k in removed]


# ---------------------------------------------------------------------- the contract
def assert_refused(outcome: Outcome, names: str, case_id: str = "") -> None:
    """Exit status 2, stderr exactly one line ``nasplug: error: ...`` matching ``names``
    (a regex: the field or file), no traceback, no hang."""
    where = f"[{case_id}] " if case_id else ""
    assert not outcome.hung, f"{where}{outcome.describe()}"
    assert "Traceback" not in outcome.stderr, f"{where}traceback: {outcome.describe()}"
    assert outcome.rc == 2, f"{where}expected exit status 2: {outcome.describe()}"
    assert len(outcome.lines) == 1, (
        f"{where}expected exactly one stderr line, got {len(outcome.lines)}: {outcome.lines[:6]}"
    )
    line = outcome.lines[0]
    assert line.startswith(ERROR_PREFIX), f"{where}the line does not start with {ERROR_PREFIX!r}: {line!r}"
    assert re.search(names, line), f"{where}the line does not name {names!r}: {line!r}"
