"""Pareto fronts, non-dominated sorting, crowding distance, hypervolume and IGD against brute
force; the toy space's exact front against enumeration."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from nasplug.objectives import Objective
from nasplug.pareto import (
    crowding_distance,
    dominates,
    hypervolume,
    hypervolume_curve,
    igd,
    losses,
    nadir,
    nondominated,
    nondominated_sort,
    select,
)


def random_points(rng: random.Random, n: int, d: int, levels: int = 6) -> list[tuple[float, ...]]:
    """Points on a coarse grid, so ties and duplicates are common."""
    return [tuple(float(rng.randrange(levels)) for _ in range(d)) for _ in range(n)]


def brute_front(points: list[tuple[float, ...]]) -> list[int]:
    return [i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)]


def brute_hypervolume(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    """Sum of the grid cells (between consecutive distinct coordinates) a point dominates."""
    axes = [sorted({p[m] for p in points if p[m] < ref[m]} | {ref[m]}) for m in range(len(ref))]
    total = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        low = [axes[m][c] for m, c in enumerate(cell)]
        if any(all(p[m] <= low[m] for m in range(len(ref))) for p in points):
            total += math.prod(axes[m][c + 1] - axes[m][c] for m, c in enumerate(cell))
    return total


@pytest.mark.parametrize("d", [2, 3, 4])
def test_nondominated_equals_brute_force(d: int) -> None:
    rng = random.Random(d)
    for n in (0, 1, 2, 7, 40):
        points = random_points(rng, n, d)
        assert nondominated(points) == brute_front(points)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_hypervolume_equals_brute_force(d: int) -> None:
    rng = random.Random(10 + d)
    for n in (1, 3, 12, 30):
        points = random_points(rng, n, d, levels=8)
        ref = tuple(float(rng.randrange(4, 9)) for _ in range(d))  # some points lie outside it
        assert hypervolume(points, ref) == pytest.approx(brute_hypervolume(points, ref), abs=1e-12)
    assert hypervolume([], (1.0, 1.0)) == 0.0
    assert hypervolume([(0.0, 0.0)], (2.0, 3.0)) == 6.0


def test_hypervolume_curve_is_the_hypervolume_of_each_prefix() -> None:
    rng = random.Random(3)
    points = [(rng.random(), rng.random()) for _ in range(50)]
    ref = nadir(points)
    curve = hypervolume_curve(points, ref)
    assert curve == pytest.approx([hypervolume(points[:i], ref) for i in range(1, 51)], abs=1e-12)
    assert all(a <= b for a, b in itertools.pairwise(curve))


def test_nondominated_sort_layers_and_crowding() -> None:
    rng = random.Random(5)
    points = random_points(rng, 30, 2)
    fronts = nondominated_sort(points)
    assert sorted(i for f in fronts for i in f) == list(range(30))
    rest = list(range(30))
    for front in fronts:  # each front is the non-dominated set of what the earlier fronts left
        sub = [points[i] for i in rest]
        assert front == [rest[i] for i in brute_front(sub)]
        rest = [i for i in rest if i not in front]
    line = [(0.0, 4.0), (1.0, 2.0), (3.0, 1.0), (4.0, 0.0)]
    crowd = crowding_distance(line, [0, 1, 2, 3])
    assert crowd[0] == crowd[3] == math.inf
    assert crowd[1] == pytest.approx(3 / 4 + 3 / 4) and crowd[2] == pytest.approx(3 / 4 + 2 / 4)
    assert select(line + [(5.0, 5.0)], 3) == [0, 3, 1]  # ends first, then the most crowded-apart


def test_igd_and_losses() -> None:
    exact = [(0.0, 1.0), (1.0, 0.0)]
    assert igd(exact, exact) == 0.0
    assert igd([(0.0, 1.0)], exact) == pytest.approx(math.sqrt(2) / 2)  # one point at distance sqrt(2)
    assert igd([], exact) == math.inf
    objectives = (Objective("acc", "maximize"), Objective("params", "minimize"))
    assert losses(objectives, (0.9, 1000.0)) == (-0.9, 1000.0)


def test_the_toy_front_is_the_exact_front() -> None:
    from nasplug.spaces.toy import OPS, ToyObjective, ToySpace

    for slots, seed in ((5, 0), (6, 3)):
        space = ToySpace(slots=slots, seed=seed)
        score = ToyObjective(space)
        archs = [{f"s{i}": op for i, op in enumerate(ops)} for ops in itertools.product(OPS, repeat=slots)]
        points = [(-score(a)["score"], score(a)["params"]) for a in archs]
        front = sorted({points[i] for i in nondominated(points)})
        dp = sorted(space.pareto_front(), key=lambda e: e[2])
        assert [(-s, p) for _, s, p in dp] == sorted(front, key=lambda e: e[1])
        for arch, s, p in space.pareto_front():
            assert score(arch) == {"score": s, "params": p}
