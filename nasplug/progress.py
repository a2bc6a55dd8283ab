"""Progress for long work: a bar on a terminal, a log line now and then anywhere else.

Library code calls :func:`progress_bar`; the CLI decides whether progress is wanted. When
stderr is not a terminal (a log file, CI) a bar would write hundreds of carriage-return
updates, so the same calls then log one INFO line every ``every_s`` seconds instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger("nasplug.progress")


class _LogProgress:
    """The tqdm calls the library uses, reported as periodic log lines."""

    def __init__(self, total: int | None, initial: int, desc: str, unit: str, every_s: float) -> None:
        self.total, self.n, self.desc, self.unit, self.every_s = total, initial, desc, unit, every_s
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.initial = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self._emit(now)

    def set_postfix(self, values: dict[str, Any] | None = None, refresh: bool = True, **kw: Any) -> None:
        items = {**(values or {}), **kw}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def _emit(self, now: float) -> None:
        rate = (self.n - self.initial) / max(now - self.start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        log.info("%s: %d%s %s (%.3g %s/s)%s", self.desc, self.n, of, self.unit, rate, self.unit,
                 f" {self.postfix}" if self.postfix else "")

    def close(self) -> None:
        if self.n != self.initial:
            self._emit(time.monotonic())

    def __enter__(self) -> _LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _NoProgress(_LogProgress):
    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass


def progress_bar(total: int | None = None, initial: int = 0, desc: str = "", unit: str = "it", enabled: bool = True,
                 every_s: float = 30.0) -> Any:
    """A tqdm bar on a terminal, periodic log lines otherwise, nothing when not ``enabled``."""
    if not enabled:
        return _NoProgress(total, initial, desc, unit, every_s)
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return _LogProgress(total, initial, desc, unit, every_s)
