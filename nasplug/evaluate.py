"""The evaluator protocol: ``arch -> dict[str, float]`` of metrics.

Any callable works. Two optional abilities are declared as protocols, which an evaluator
has by defining the method (no registration, no base class):

* :class:`BatchEvaluator`: ``evaluate_batch(archs)``, when scoring many candidates together
  is cheaper (e.g. shared prefixes in the LV-BERT supernet); the search loop uses it.
* :class:`Closeable`: ``close()``, for an evaluator holding memory between calls; the
  search stage calls it when the search ends.

How a recipe's ``evaluator:`` section becomes an evaluator is
:class:`nasplug.pipeline.evaluator_plugin.EvaluatorPlugin`'s job.
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


@runtime_checkable
class BatchEvaluator(Protocol):
    """An evaluator that scores several archs in one call (cheaper than one by one)."""

    def __call__(self, arch: Arch) -> Metrics: ...

    def evaluate_batch(self, archs: Sequence[Arch]) -> Sequence[Metrics]:
        """Metrics of each arch, in order; the same as calling the evaluator on each. Called
        by the search loop once per batch of distinct new archs (under torchrun: per shard)."""
        ...


@runtime_checkable
class Closeable(Protocol):
    """An evaluator that holds memory between calls (kept hidden states) and can free it."""

    def close(self) -> None:
        """Release what the evaluator keeps between calls; called once, when the search ends
        (the evaluator still works afterwards, starting cold)."""
        ...


def evaluate_batch(evaluator: Evaluator, archs: Sequence[Arch]) -> list[Metrics | BaseException]:
    """Evaluate ``archs`` in order; a failed evaluation yields its exception, not a crash.

    Uses ``evaluator.evaluate_batch`` when the evaluator is a :class:`BatchEvaluator`. Only
    ``Exception``s are caught: KeyboardInterrupt and SystemExit still stop the run.
    """
    if isinstance(evaluator, BatchEvaluator) and len(archs) > 1:
        try:
            return list(evaluator.evaluate_batch(list(archs)))
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
