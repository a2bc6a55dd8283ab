"""Constraints: callables ``arch -> reason | None`` checked before any evaluation.

Analytic constraints read the space's cheap metrics (``space.metrics(arch)``), so a candidate
over a parameter or FLOPs budget never reaches the (expensive) evaluator. Combination
constraints that define the space itself (e.g. per-type counts) belong in
``SearchSpace.violation`` instead, where samplers honour them too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.space import SearchSpace

Constraint = Callable[[Arch], "str | None"]


class _MetricBound:
    op = "<="

    def __init__(self, space: SearchSpace, metric: str, limit: float) -> None:
        self.space = space
        self.metric = metric
        self.limit = float(limit)

    def _value(self, arch: Arch) -> float:
        metrics = self.space.metrics(arch)
        if self.metric not in metrics:
            known = ", ".join(metrics) or "(none)"
            raise NasplugError(
                f"constraint metric {self.metric!r}: space {self.space.name!r} has no such analytic metric; "
                f"known: {known}"
            )
        return float(metrics[self.metric])

    def __repr__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


class MaxMetric(_MetricBound):
    """Reject archs whose analytic ``metric`` exceeds ``limit`` (e.g. params <= 14e6)."""

    def __call__(self, arch: Arch) -> str | None:
        value = self._value(arch)
        return None if value <= self.limit else f"{self.metric} {value:g} > {self.limit:g}"


class MinMetric(_MetricBound):
    """Reject archs whose analytic ``metric`` is below ``limit``."""

    op = ">="

    def __call__(self, arch: Arch) -> str | None:
        value = self._value(arch)
        return None if value >= self.limit else f"{self.metric} {value:g} < {self.limit:g}"


def first_violation(arch: Arch, space: SearchSpace | None, constraints: Sequence[Constraint]) -> str | None:
    """The first reason ``arch`` is rejected (space validity, then each constraint), or None."""
    if space is not None:
        try:
            space.validate(arch)
        except NasplugError as exc:
            return str(exc)
    for constraint in constraints:
        reason = constraint(arch)
        if reason is not None:
            return reason
    return None
