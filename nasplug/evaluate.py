"""The evaluator protocol: ``arch -> dict[str, float]`` of metrics.

Any callable works. An evaluator may also offer ``evaluate_batch(archs)`` when scoring many
candidates together is cheaper (e.g. shared prefixes in the LV-BERT supernet); the search
loop uses it when present. An evaluator holding memory between calls may offer ``close()``;
the search stage calls it when the search ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from nasplug.arch import Arch

Metrics = dict[str, float]
log = logging.getLogger(__name__)


@runtime_checkable
class Evaluator(Protocol):
    """Scores one architecture. Called by the search loop once per distinct arch."""

    def __call__(self, arch: Arch) -> Metrics: ...


def evaluate_batch(evaluator: Evaluator, archs: Sequence[Arch]) -> list[Metrics | BaseException]:
    """Evaluate ``archs`` in order; a failed evaluation yields its exception, not a crash.

    Uses ``evaluator.evaluate_batch`` when the evaluator has one. Only ``Exception``s are
    caught: KeyboardInterrupt and SystemExit still stop the run.
    """
    batch_fn = getattr(evaluator, "evaluate_batch", None)
    if batch_fn is not None and len(archs) > 1:
        try:
            return list(batch_fn(list(archs)))
        except Exception as exc:  # fall back to one by one so one bad arch fails alone
            log.warning("evaluate_batch failed (%s: %s); evaluating the %d archs one by one",
                        type(exc).__name__, exc, len(archs))
    results: list[Metrics | BaseException] = []
    for arch in archs:
        try:
            results.append(dict(evaluator(arch)))
        except Exception as exc:
            results.append(exc)
    return results


def is_finite(value: float | None) -> bool:
    """True for a real, finite number."""
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)
