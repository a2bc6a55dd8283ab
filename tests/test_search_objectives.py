"""Objectives with declared directions: resolution, one-line errors, what a run stores, and
runs stored before directions were declared still resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nasplug.cli import main
from nasplug.errors import NasplugError
from nasplug.objectives import Objective, merge_declarations, resolve, resolved_fields
from nasplug.pipeline import RunContext, run_recipe
from nasplug.recipe import SearchConfig, load_recipe, validate_recipe

DECLARED = {"acc": "maximize", "loss": "minimize", "params": "minimize"}


def cfg(**keys) -> SearchConfig:
    return SearchConfig.model_validate(keys)


def test_each_direction_comes_from_the_declaration() -> None:
    assert resolve(cfg(metric="loss"), DECLARED, "acc") == (Objective("loss", "minimize"),)
    assert resolve(cfg(), DECLARED, "acc") == (Objective("acc", "maximize"),)  # the task's default metric
    assert resolve(cfg(objectives=["acc", "params"]), DECLARED, None) == (
        Objective("acc", "maximize"), Objective("params", "minimize"))


def test_the_recipe_may_override_a_declared_direction() -> None:
    assert resolve(cfg(metric="loss", direction="maximize"), DECLARED, None) == (Objective("loss", "maximize"),)
    got = resolve(cfg(objectives=["acc", "params"], directions={"params": "maximize"}), DECLARED, None)
    assert got == (Objective("acc", "maximize"), Objective("params", "maximize"))
    assert resolve(cfg(metric="odd", direction="minimize"), DECLARED, None) == (Objective("odd", "minimize"),)


@pytest.mark.parametrize(("keys", "field"), [
    ({"metric": "odd"}, "search.direction: no direction is declared for metric 'odd'"),
    ({"objectives": ["acc", "odd"]}, "search.directions.odd: no direction is declared for objective 'odd'"),
    ({"objectives": ["acc"], "metric": "acc"}, "search.metric: give either"),
    ({"objectives": ["acc", "loss"], "direction": "minimize"}, "search.direction: with search.objectives"),
    ({"objectives": ["acc", "acc"]}, "search.objectives: 'acc' is listed twice"),
    ({"objectives": ["acc", "loss"], "directions": {"params": "minimize"}}, "search.directions.params: not one of"),
    ({}, "search.metric: required"),
])
def test_what_cannot_be_resolved_is_one_line_naming_the_field(keys, field) -> None:
    with pytest.raises(NasplugError) as exc:
        resolve(cfg(**keys), DECLARED, None)
    assert str(exc.value).startswith(field) and "\n" not in str(exc.value)


def test_two_producers_disagreeing_on_a_direction_is_an_error() -> None:
    with pytest.raises(NasplugError, match="set search.directions.params"):
        merge_declarations([("task 't'", {"params": "maximize"}), ("space 's'", {"params": "minimize"})])
    assert merge_declarations([("a", {"x": "maximize"}), ("b", {"x": "maximize", "y": "minimize"})]) == {
        "x": "maximize", "y": "minimize"}


def test_a_run_stores_its_objectives_spelt_out(tmp_path: Path) -> None:
    recipe = validate_recipe({"name": "r", "space": {"name": "toy", "slots": 4}, "evaluator": {"name": "toy"},
                              "search": {"strategy": {"name": "random"}, "budget": 3, "batch_size": 3,
                                         "objectives": ["score", "params"]}})
    assert RunContext(recipe=recipe, run_dir=tmp_path).objectives == (
        Objective("score", "maximize"), Objective("params", "minimize"))
    run_recipe(recipe, tmp_path / "run", progress=False)
    stored = yaml.safe_load((tmp_path / "run" / "recipe.yaml").read_text())["search"]
    assert stored["objectives"] == ["score", "params"]
    assert stored["directions"] == {"score": "maximize", "params": "minimize"}
    assert resolved_fields((Objective("acc", "maximize"),)) == {
        "metric": "acc", "direction": "maximize", "objectives": None, "directions": None}


TOY = """\
name: t
space: {name: toy, slots: 5}
evaluator: {name: toy}
search:
  strategy: {name: evolution, population: 8, parents: 3, mutations: 3, crossovers: 3}
  budget: 24
  batch_size: 8
"""


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_undeclared_direction_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(TOY)
    # the toy evaluator declares score, the space params: "size" nobody declares
    err = one_line_error(capsys, ["-q", "run", str(path), "--out", str(tmp_path / "a"), "--set", "search.metric=size"])
    assert "search.direction: no direction is declared for metric 'size'" in err
    err = one_line_error(capsys, ["-q", "run", str(path), "--out", str(tmp_path / "b"),
                                  "--set", "search.objectives=[score, size]"])
    assert "search.directions.size" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_one_objective_strategy_refuses_two_objectives(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(TOY)
    err = one_line_error(capsys, ["-q", "run", str(path), "--out", str(tmp_path / "a"), "--set",
                                  "search.objectives=[score, params]", "--set", "search.strategy={name: regularized}"])
    assert "search.objectives: strategy 'regularized' optimises one objective and 2 are named" in err


def _old_style(run_dir: Path, **search: str) -> None:
    """The run's recipe.yaml as nasplug wrote it before objectives: metric and direction only."""
    stored = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    for key in ("objectives", "directions", "reference_point"):
        stored["search"].pop(key)
    stored["search"].update(search)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))


def _interrupt(run_dir: Path, keep: int) -> bytes:
    """Cut the search log after ``keep`` trials and forget that the search finished."""
    log = run_dir / "trials.jsonl"
    full = log.read_bytes()
    log.write_bytes(b"".join(full.splitlines(keepends=True)[:keep]))
    for name in ("stages/search.json", "stages/report.json", "top.json"):
        (run_dir / name).unlink(missing_ok=True)
    return full


def test_a_run_stored_before_directions_resumes(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(TOY)
    run = tmp_path / "run"
    run_recipe(load_recipe(path), run, progress=False)
    _old_style(run)  # stored then: metric: score, direction: maximize (the old defaults, filled in)
    full = _interrupt(run, keep=10)
    run_recipe(load_recipe(path), run, resume=True, progress=False)  # the user's recipe, which names neither
    assert (run / "trials.jsonl").read_bytes() == full


def test_an_old_run_that_maximised_a_loss_resumes_with_its_stored_recipe(tmp_path: Path) -> None:
    """Before directions were declared, a minimised metric without ``direction:`` was stored as
    maximize. That run resumes as it was from its stored recipe; the fixed recipe (which now
    minimises) is a different experiment and is refused in one line naming the key."""
    path = tmp_path / "r.yaml"
    path.write_text(TOY + "  metric: params\n  direction: maximize\n")
    run = tmp_path / "run"
    run_recipe(load_recipe(path), run, progress=False)
    _old_style(run)
    full = _interrupt(run, keep=10)
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(TOY + "  metric: params\n")
    with pytest.raises(NasplugError, match=r"^--resume: search.direction differs"):
        run_recipe(load_recipe(fixed), run, resume=True, progress=False)
    run_recipe(load_recipe(run / "recipe.yaml"), run, resume=True, progress=False)
    assert (run / "trials.jsonl").read_bytes() == full
    assert json.loads((run / "top.json").read_text())[0]["metrics"]["params"] == max(
        json.loads(line)["metrics"]["params"] for line in full.splitlines())
