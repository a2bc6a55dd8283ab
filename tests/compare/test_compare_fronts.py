"""``nasplug compare`` with two objectives on the toy space: hypervolume and IGD per run
against the exact front, their statistics, resume, and a one-objective strategy refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nasplug.cli import main
from nasplug.compare import compare
from nasplug.errors import NasplugError
from nasplug.objectives import Objective
from nasplug.pareto import hypervolume, igd, losses, nondominated
from nasplug.recipe import validate_recipe
from nasplug.spaces.toy import ToySpace

TWO = (Objective("score", "maximize"), Objective("params", "minimize"))
EVOLUTION = {"name": "evolution", "population": 10, "parents": 5, "mutations": 4, "crossovers": 4, "generations": 30}


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not under test here


def make_recipe(**search):
    return validate_recipe({"name": "fronts", "space": {"name": "toy", "slots": 5, "seed": 1},
                            "evaluator": {"name": "toy"},
                            "search": {"strategy": EVOLUTION, "batch_size": 10, "objectives": ["score", "params"],
                                       **search}})


@pytest.fixture(scope="module")
def fronts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fronts") / "cmp"
    compare(make_recipe(), ["random", "evolution"], 3, 40, out, ground_truth=True, progress=False)
    return out


def run_points(out: Path, strategy: str, seed: int) -> list[tuple[float, ...]]:
    lines = (out / "runs" / strategy / f"seed{seed}" / "trials.jsonl").read_text().splitlines()
    scored = [json.loads(line) for line in lines if json.loads(line)["status"] in ("ok", "cached")][:40]
    return [losses(TWO, (t["metrics"]["score"], t["metrics"]["params"])) for t in scored]


def test_hypervolume_and_igd_of_each_run_against_the_exact_front(fronts: Path) -> None:
    data = json.loads((fronts / "comparison.json").read_text())
    space = ToySpace(slots=5, seed=1)
    exact = sorted(losses(TWO, (s, p)) for _, s, p in space.pareto_front())
    info = data["fronts"]
    assert info["exact_front"]["size"] == len(exact)
    assert sorted(losses(TWO, (p["score"], p["params"])) for p in info["exact_front"]["points"]) == exact
    assert info["reference_source"].startswith("the worst value of each objective over the whole space")
    ref = losses(TWO, (info["reference_point"]["score"], info["reference_point"]["params"]))
    assert info["exact_front"]["hypervolume"] == pytest.approx(hypervolume(exact, ref))
    for run in data["runs"]:
        points = run_points(fronts, run["strategy"], run["seed"])
        found = [points[i] for i in nondominated(points)]
        assert run["final"] == pytest.approx(hypervolume(found, ref)) and run["curve"][-1] == run["final"]
        assert run["final_igd"] == pytest.approx(igd(found, exact))
        assert run["final"] <= info["exact_front"]["hypervolume"] + 1e-9


def test_the_tables_and_tests_are_there(fronts: Path) -> None:
    data = json.loads((fronts / "comparison.json").read_text())
    for summary in (data["summary"], data["fronts"]["igd"]):
        assert set(summary["strategies"]) == {"random", "evolution"}
        (test,) = summary["tests"]
        assert test["test"] == "wilcoxon" and test["n"] == 3 and 0 < test["p_holm"] <= 1
    finals = [r["final"] for r in data["runs"] if r["strategy"] == "evolution"]
    assert data["summary"]["strategies"]["evolution"]["at"][-1]["mean"] == pytest.approx(sum(finals) / 3)
    md = (fronts / "comparison.md").read_text()
    assert "## Hypervolume of the front found" in md and "## IGD against the exact front" in md
    assert "## Pairwise tests on the IGD at budget 40" in md and (fronts / "anytime.png").is_file()


def test_a_resumed_comparison_gives_the_same_numbers(fronts: Path, tmp_path: Path) -> None:
    import shutil

    again = tmp_path / "again"
    shutil.copytree(fronts, again)
    log = again / "runs" / "evolution" / "seed1" / "trials.jsonl"
    log.write_text("".join(log.read_text().splitlines(keepends=True)[:13]))
    (again / "runs" / "evolution" / "seed1" / "run.json").unlink()
    compare(make_recipe(), ["random", "evolution"], 3, 40, again, ground_truth=True, progress=False, resume=True)

    def numbers(out: Path) -> dict:
        data = json.loads((out / "comparison.json").read_text())
        data.pop("runtime")
        return data

    assert numbers(again) == numbers(fronts)


def test_a_one_objective_strategy_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(NasplugError, match="strategy 'regularized' optimises one objective"):
        compare(make_recipe(), ["random", "regularized"], 2, 10, tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nspace: {name: toy, slots: 4}\nevaluator: {name: toy}\n"
                      "search: {objectives: [score, params], batch_size: 5}\n")
    code = main(["-q", "compare", str(recipe), "--strategies", "random", "nni", "--seeds", "2", "--budget", "10",
                 "--out", str(tmp_path / "y")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "strategy 'nni' optimises one objective" in err


def test_the_cli_prints_the_hypervolume_and_igd_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\nspace: {name: toy, slots: 4}\nevaluator: {name: toy}\n"
                      "search: {objectives: [score, params], batch_size: 5}\n")
    assert main(["-q", "compare", str(recipe), "--strategies", "random", "evolution", "--seeds", "2", "--budget",
                 "20", "--ground-truth", "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "hypervolume of the front found" in out and "IGD against the exact front" in out
    assert "| evolution" in out and "hypervolume @20" in out and "IGD @20" in out
