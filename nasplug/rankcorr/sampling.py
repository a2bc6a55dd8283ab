"""Which archs rank-corr compares: uniform draws, or draws stratified over a metric of the space.

Uniform (the default): the first N distinct archs of ``random.Random(seed)``, so a rerun with
a larger N keeps every arch of the smaller one. Uniform draws crowd where the space is dense
(most LV-BERT orders have a middling number of feed-forward layers), so a ranking can look
bad on archs that barely differ; stratified draws (``--stratify params``) span the space as a
paper's comparison does: a pool of distinct uniform draws is sorted by the metric (an analytic
one of the space, such as ``params`` or ``flops``: nothing is trained) and cut into N bins of
equal count, and one arch is drawn from each bin.
"""

from __future__ import annotations

import random
from typing import Any

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError

#: Stratified draws pick from a pool of this many distinct draws per arch wanted.
POOL_PER_ARCH = 25


def sample_archs(space: Any, n: int, seed: int, *, exhausted_ok: bool = False) -> list[Arch]:
    """The first ``n`` distinct archs drawn with ``random.Random(seed)`` (valid by construction);
    with ``exhausted_ok``, fewer when the space has no more to give in ``1000 * n`` draws."""
    rng, seen, archs = random.Random(seed), set(), []
    for _ in range(1000 * n):
        arch = space.sample(rng)
        if arch_key(arch) not in seen:
            seen.add(arch_key(arch))
            archs.append(arch)
            if len(archs) == n:
                return archs
    if exhausted_ok:
        return archs
    raise NasplugError(
        f"--archs: only {len(archs)} distinct archs found in {1000 * n} draws; the space is too small for {n}"
    )


def stratified_archs(space: Any, n: int, seed: int, metric: str) -> list[Arch]:
    """``n`` archs, one from each of ``n`` equal-count bins of a pool of distinct draws sorted
    by ``metric`` (ties kept in draw order); NasplugError when the space has no such analytic
    metric or too few archs."""
    pool = sample_archs(space, POOL_PER_ARCH * n, seed, exhausted_ok=True)
    if len(pool) < n:
        raise NasplugError(f"--archs: only {len(pool)} distinct archs found; the space is too small for {n}")
    check_stratify(space, metric, pool[0])
    values = [float(space.metrics(a)[metric]) for a in pool]
    order = sorted(range(len(pool)), key=lambda i: (values[i], i))
    rng = random.Random(f"{seed}:stratified:{metric}")
    picked = []
    for b in range(n):  # bin b holds the ranks [b * len / n, (b + 1) * len / n)
        low, high = b * len(order) // n, (b + 1) * len(order) // n
        picked.append(pool[order[rng.randrange(low, high)]])
    return picked


def check_stratify(space: Any, metric: str, arch: Arch, field: str = "--stratify") -> None:
    """NasplugError unless ``metric`` is a numeric analytic metric of the space (of ``arch``)."""
    metrics = space.metrics(arch)
    value = metrics.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        allowed = ", ".join(k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
        raise NasplugError(f"{field}: {metric!r} is not an analytic metric of space {space.name!r}; "
                           f"allowed: {allowed or 'none (the space measures nothing without training)'}")
