"""A run with two objectives: pareto.json holds exactly the non-dominated trials of
trials.jsonl (checked by brute force), its hypervolume is that front's, the report shows it,
and a resumed search writes the same front."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nasplug.errors import NasplugError
from nasplug.pareto import hypervolume
from nasplug.pipeline import run_recipe
from nasplug.recipe import validate_recipe


def recipe(**search):
    return validate_recipe({
        "name": "pareto", "seed": 0, "space": {"name": "toy", "slots": 6, "seed": 2}, "evaluator": {"name": "toy"},
        "search": {"strategy": {"name": "evolution", "population": 16, "parents": 6, "mutations": 6,
                                "crossovers": 6, "mutation_prob": 0.2},
                   "budget": 96, "batch_size": 16, "objectives": ["score", "params"],
                   "constraints": [{"name": "max_metric", "metric": "params", "limit": 360}], **search}})


def brute_front(trials: list[dict]) -> list[int]:
    """Trial numbers of the non-dominated archs (each at its first scored trial), by brute force."""
    first: dict[str, dict] = {}
    for t in trials:
        if t["status"] in ("ok", "cached"):
            first.setdefault(json.dumps(t["arch"], sort_keys=True), t)
    points = {t["number"]: (-t["metrics"]["score"], t["metrics"]["params"]) for t in first.values()}

    def dominated(p):
        return any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points.values())

    return sorted(n for n, p in points.items() if not dominated(p))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pareto") / "run"
    run_recipe(recipe(), out, progress=False)
    return out


def test_pareto_json_is_exactly_the_non_dominated_trials(run: Path) -> None:
    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert any(t["status"] == "rejected" for t in trials)  # the constraint bit: rejected archs are in the log
    data = json.loads((run / "pareto.json").read_text())
    front = sorted(e["trial"] for e in data["front"])
    assert front == brute_front(trials) and len(front) >= 3
    by_number = {t["number"]: t for t in trials}
    for entry in data["front"]:
        trial = by_number[entry["trial"]]
        assert entry["arch"] == trial["arch"] and entry["metrics"] == trial["metrics"]
        assert entry["values"] == {"score": trial["metrics"]["score"], "params": trial["metrics"]["params"]}
    scores = [e["values"]["score"] for e in data["front"]]
    assert scores == sorted(scores, reverse=True)  # best first in the first objective
    assert data["objectives"] == [{"metric": "score", "direction": "maximize"},
                                  {"metric": "params", "direction": "minimize"}]


def test_the_hypervolume_is_the_fronts_and_grows_over_the_search(run: Path) -> None:
    data = json.loads((run / "pareto.json").read_text())
    scored = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    scored = [t for t in scored if t["status"] in ("ok", "cached")]
    worst = (-min(t["metrics"]["score"] for t in scored), max(t["metrics"]["params"] for t in scored))
    assert data["reference_point"] == {"score": -worst[0], "params": worst[1]}
    points = [(-e["values"]["score"], e["values"]["params"]) for e in data["front"]]
    assert data["hypervolume"] == pytest.approx(hypervolume(points, worst), rel=1e-12) and data["hypervolume"] > 0
    curve = data["hypervolume_curve"]
    assert len(curve) == len(scored) == 96 and curve[-1] == data["hypervolume"]
    assert all(a <= b for a, b in zip(curve, curve[1:])) and curve[0] < curve[-1]


def test_the_report_shows_the_front(run: Path) -> None:
    report = (run / "report.md").read_text()
    assert "Objectives: score (maximize), params (minimize)." in report
    assert "![Pareto front](pareto.png)" in report and "![hypervolume over the search](hypervolume.png)" in report
    data = json.loads((run / "pareto.json").read_text())
    assert f"Pareto front: {len(data['front'])} of {data['distinct']} distinct scored archs" in report
    assert (run / "pareto.png").stat().st_size > 1000 and (run / "hypervolume.png").stat().st_size > 1000
    top = json.loads((run / "top.json").read_text())  # the front first, best first in the first objective
    assert [t["arch"] for t in top[: len(data["front"])]] == [e["arch"] for e in data["front"]]


def test_a_resumed_search_writes_the_same_front(run: Path, tmp_path: Path) -> None:
    import shutil

    again = tmp_path / "again"
    shutil.copytree(run, again)
    lines = (again / "trials.jsonl").read_bytes().splitlines(keepends=True)
    (again / "trials.jsonl").write_bytes(b"".join(lines[:37]))
    for name in ("stages/search.json", "stages/report.json", "pareto.json", "top.json"):
        (again / name).unlink()
    run_recipe(recipe(), again, resume=True, progress=False)
    for name in ("trials.jsonl", "pareto.json", "top.json"):
        assert (again / name).read_bytes() == (run / name).read_bytes(), name


def test_a_reference_point_from_the_recipe(tmp_path: Path) -> None:
    out = tmp_path / "ref"
    run_recipe(recipe(budget=32, reference_point={"score": -20.0, "params": 1000}), out, progress=False)
    data = json.loads((out / "pareto.json").read_text())
    assert data["reference_point"] == {"score": -20.0, "params": 1000.0}
    assert data["reference_source"] == "the recipe's search.reference_point"
    points = [(-e["values"]["score"], e["values"]["params"]) for e in data["front"]]
    assert data["hypervolume"] == pytest.approx(hypervolume(points, (20.0, 1000.0)))
    with pytest.raises(NasplugError, match=r"^search.reference_point: no value for objective 'params'"):
        run_recipe(recipe(reference_point={"score": 0.0}), tmp_path / "bad", progress=False)
    with pytest.raises(NasplugError, match=r"^search.reference_point.acc: not one of the objectives"):
        run_recipe(recipe(reference_point={"score": 0.0, "params": 1, "acc": 1}), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists() and math.isfinite(data["hypervolume"])


def test_three_objectives_give_the_3d_front_and_a_panel_per_pair(tmp_path: Path) -> None:
    from nasplug.objectives import Objective
    from nasplug.pareto import dominates, losses
    from nasplug.report.front import write_front
    from nasplug.search import search
    from nasplug.spaces.toy import ToyObjective, ToySpace
    from nasplug.strategies.random import RandomSearch

    space = ToySpace(slots=5, seed=4)
    toy = ToyObjective(space)
    three = (Objective("score", "maximize"), Objective("params", "minimize"), Objective("tanh", "maximize"))
    evaluate = lambda arch: {**toy(arch), "tanh": float(sum(v == "tanh" for v in arch.values()))}  # noqa: E731
    result = search(RandomSearch(space, seed=0), evaluate, 60, archs_per_ask=10, objectives=three)
    data = write_front(result, space.format, tmp_path, None)
    points = {t.number: losses(three, result.values(t)) for t in result.distinct()}
    brute = sorted(n for n, p in points.items() if not any(dominates(q, p) for q in points.values()))
    assert sorted(e["trial"] for e in data["front"]) == brute and len(brute) >= 4
    ref = tuple(max(p[m] for p in points.values()) for m in range(3))
    assert data["hypervolume"] == pytest.approx(hypervolume([points[n] for n in brute], ref))
    from matplotlib.image import imread

    height, width = imread(tmp_path / "pareto.png").shape[:2]
    assert width > 2.5 * height  # three panels side by side: (score, params), (score, tanh), (params, tanh)
