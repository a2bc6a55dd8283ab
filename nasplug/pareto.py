"""Pareto fronts of objective vectors: dominance, non-dominated sorting, crowding distance,
hypervolume and IGD. Pure Python, no torch, deterministic (ties keep input order).

Every function here works on *loss vectors*: tuples where lower is better in every
coordinate. :func:`losses` turns one value per objective (each in its metric's own units
and direction) into one, so a maximised accuracy and a minimised parameter count compare
alike; the results are reported back in the metrics' own units by the callers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nasplug.objectives import Objective

Point = Sequence[float]


def losses(objectives: Sequence[Objective], values: Sequence[float]) -> tuple[float, ...]:
    """One loss per objective: ``-value`` for a maximised metric, ``value`` for a minimised one."""
    return tuple(-o.sign * float(v) for o, v in zip(objectives, values, strict=True))


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` in every coordinate and better in at least one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def nondominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates, in input order (equal points are all
    kept: neither dominates the other). O(n log n) for two coordinates, O(n^2) otherwise."""
    if not points:
        return []
    if len(points[0]) != 2:
        return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    keep: list[int] = []
    best_y = math.inf  # lowest second coordinate among points with a strictly lower first one
    group_x, group_y = None, math.inf  # the run of points sharing the current first coordinate
    for i in order:
        x, y = points[i]
        if x != group_x:
            best_y, group_x, group_y = min(best_y, group_y), x, y
        if y < best_y and y <= group_y:  # dominated neither by an earlier x nor within its own x
            keep.append(i)
    return sorted(keep)


def nondominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Fronts of indices, best first (Deb et al. 2002's fast non-dominated sort); each front in
    input order."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]  # i -> the points i dominates
    count = [0] * n  # how many points dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts


def crowding_distance(points: Sequence[Point], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each index of ``front``: per coordinate, the gap between
    its two neighbours over the front's range; the two ends of each coordinate get infinity."""
    distance = dict.fromkeys(front, 0.0)
    if len(front) <= 2:
        return dict.fromkeys(front, math.inf)
    for m in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: (points[i][m], i))
        low, high = points[ordered[0]][m], points[ordered[-1]][m]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for prev, mid, nxt in zip(ordered, ordered[1:], ordered[2:]):
            distance[mid] += (points[nxt][m] - points[prev][m]) / (high - low)
    return distance


def select(points: Sequence[Point], k: int) -> list[int]:
    """NSGA-II survival: the ``k`` best indices by (front, larger crowding distance, index),
    best first."""
    ranked: list[int] = []
    for front in nondominated_sort(points):
        crowding = crowding_distance(points, front)
        ranked += sorted(front, key=lambda i: (-crowding[i], i))
        if len(ranked) >= k:
            break
    return ranked[:k]


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (exact, any number of
    coordinates: a sweep in two, slices along the last coordinate above). Points not strictly
    better than the reference in every coordinate add nothing."""
    inside = [tuple(map(float, p)) for p in points if all(x < r for x, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    ref = tuple(map(float, reference))
    if len(ref) == 1:
        return ref[0] - min(p[0] for p in inside)
    if len(ref) == 2:
        area, level = 0.0, ref[1]
        for x, y in sorted(inside):
            if y < level:
                area += (ref[0] - x) * (level - y)
                level = y
        return area
    inside.sort(key=lambda p: p[-1])
    volume = 0.0
    for i, point in enumerate(inside):
        top = inside[i + 1][-1] if i + 1 < len(inside) else ref[-1]
        if top > point[-1]:
            volume += hypervolume([p[:-1] for p in inside[: i + 1]], ref[:-1]) * (top - point[-1])
    return volume


def spans(front: Sequence[Point]) -> tuple[float, ...]:
    """Per coordinate, the range of ``front`` (1.0 where it is flat): IGD's scale."""
    return tuple((max(c) - min(c)) or 1.0 for c in zip(*front, strict=True))


def igd(found: Sequence[Point], exact: Sequence[Point], scale: Point | None = None) -> float:
    """Inverted generational distance: the mean, over the exact front's points, of the
    distance to the nearest found point, each coordinate divided by ``scale`` (default: the
    exact front's range, so objectives in different units weigh alike). 0 when every exact
    point was found; infinity when nothing was."""
    if not exact:
        raise ValueError("igd: the exact front is empty")
    if not found:
        return math.inf
    scale = spans(exact) if scale is None else scale
    total = 0.0
    for e in exact:
        total += min(math.sqrt(sum(((f[m] - e[m]) / scale[m]) ** 2 for m in range(len(e)))) for f in found)
    return total / len(exact)


def hypervolume_curve(points: Sequence[Point], reference: Point) -> list[float]:
    """The hypervolume of the first ``i`` points' front, for every ``i`` from 1 (an anytime
    curve: one value per evaluated point). The front is kept incrementally."""
    front: list[tuple[float, ...]] = []
    curve: list[float] = []
    volume = 0.0
    for point in points:
        p = tuple(map(float, point))
        if not any(dominates(q, p) or q == p for q in front):
            front = [q for q in front if not dominates(p, q)] + [p]
            volume = hypervolume(front, reference)
        curve.append(volume)
    return curve


def nadir(points: Sequence[Point]) -> tuple[float, ...]:
    """The worst value of each coordinate over ``points``: the default hypervolume reference."""
    return tuple(max(c) for c in zip(*points, strict=True))


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``0..n-1`` (both ends included; all when ``k >= n``):
    which points of a front of ``n`` (``retrain.pareto``) are retrained."""
    if k >= n:
        return list(range(n))
    if k == 1:
        return [0]
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]  # distinct: the step is >= 1
