"""A resumed run with another ``search.budget``: a larger one continues the finished search
from its log (the log then equals an uninterrupted run's with that budget), a smaller one is
one line, and ``recipe.yaml`` records the new budget only once the command succeeded."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nasplug.cli import main
from nasplug.errors import NasplugError

RECIPE = """\
name: t
seed: 0
space: {name: toy, slots: 6}
evaluator: {name: toy}
search:
  strategy: {name: evolution, population: 10, parents: 3, mutations: 4, crossovers: 4}
  budget: 30
  batch_size: 10
"""


@pytest.fixture
def recipe(tmp_path: Path) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    return str(path)


def run(recipe: str, out: Path, budget: int, resume: bool = True) -> int:
    return main(["-q", "run", recipe, "--out", str(out), "--set", f"search.budget={budget}",
                 *(["--resume"] if resume else [])])


def stored_budget(out: Path) -> int:
    return yaml.safe_load((out / "recipe.yaml").read_text())["search"]["budget"]


def scored(out: Path) -> int:
    return (out / "trials.jsonl").read_text().count('"status":"ok"') + \
        (out / "trials.jsonl").read_text().count('"status":"cached"')


def test_a_larger_budget_continues_the_search_as_an_uninterrupted_run(recipe, tmp_path, capsys) -> None:
    direct, out = tmp_path / "direct", tmp_path / "run"
    assert run(recipe, direct, 50, resume=False) == 0
    assert run(recipe, out, 30, resume=False) == 0
    assert scored(out) == 30
    assert run(recipe, out, 50) == 0
    assert scored(out) == 50 and stored_budget(out) == 50
    assert (out / "trials.jsonl").read_bytes() == (direct / "trials.jsonl").read_bytes()
    assert (out / "top.json").read_bytes() == (direct / "top.json").read_bytes()
    capsys.readouterr()


def test_a_smaller_budget_is_one_line_and_changes_nothing(recipe, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert run(recipe, out, 30, resume=False) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert run(recipe, out, 20) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "search.budget: 20 is below the 30 architectures" in err, err
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_an_extension_that_fails_keeps_the_old_budget_and_the_next_resume_finishes_it(recipe, tmp_path, capsys,
                                                                                        monkeypatch) -> None:
    import nasplug.pipeline.search as stage

    direct, out = tmp_path / "direct", tmp_path / "run"
    assert run(recipe, direct, 60, resume=False) == 0
    assert run(recipe, out, 30, resume=False) == 0
    real = stage.search

    def failing(*args, **kwargs):
        def stop(trial, result):
            if len(result.trials) >= 45:
                raise NasplugError("disk full (a test)")
        return real(*args, **{**kwargs, "callbacks": [*kwargs["callbacks"], stop]})

    monkeypatch.setattr(stage, "search", failing)
    assert run(recipe, out, 60) == 2
    assert stored_budget(out) == 30, "recipe.yaml is rewritten only when the command succeeds"
    assert not (out / "stages" / "search.json").exists(), "an unfinished extension is an unfinished search"
    monkeypatch.setattr(stage, "search", real)
    assert run(recipe, out, 30) == 2, "the log has more than 30 scored now"
    assert run(recipe, out, 60) == 0
    assert stored_budget(out) == 60
    assert (out / "trials.jsonl").read_bytes() == (direct / "trials.jsonl").read_bytes()
    capsys.readouterr()


def test_stages_without_the_search_cannot_take_a_larger_budget(recipe, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert run(recipe, out, 30, resume=False) == 0
    capsys.readouterr()
    assert main(["-q", "run", recipe, "--out", str(out), "--set", "search.budget=40", "--resume",
                 "--stages", "report"]) == 2
    assert "add search to --stages" in capsys.readouterr().err
    assert stored_budget(out) == 30
