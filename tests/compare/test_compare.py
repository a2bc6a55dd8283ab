"""``nasplug compare`` on the toy space: ground truth, determinism, shared cache, resume, CLI."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
from pathlib import Path

import pytest

from nasplug.compare import add_compare_parser, cmd_compare, compare, resolve_strategies
from nasplug.compare.cache import JsonlCache
from nasplug.errors import NasplugError
from nasplug.recipe import Component, validate_recipe
from nasplug.spaces.toy import ToyObjective, ToySpace

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = ["random", "evolution", "regularized"]
SMALL_EVOLUTION = {"name": "evolution", "population": 12, "parents": 4, "mutations": 5, "crossovers": 5,
                   "generations": 30}


@pytest.fixture(autouse=True)
def _no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync costs ~5 ms here and the logs write one per trial; durability is not under test."""
    monkeypatch.setattr(os, "fsync", lambda fd: None)


def make_recipe(slots: int = 5, seed: int = 0, **search):
    return validate_recipe({"name": "cmp", "space": {"name": "toy", "slots": slots, "seed": seed},
                            "evaluator": {"name": "toy"},
                            "search": {"strategy": SMALL_EVOLUTION, "batch_size": 8, **search}})


class CountingObjective(ToyObjective):
    def __init__(self, space: ToySpace) -> None:
        super().__init__(space)
        self.calls: list[str] = []

    def __call__(self, arch):
        self.calls.append(json.dumps(arch, sort_keys=True))
        return super().__call__(arch)


def numbers(out: Path) -> dict:
    """comparison.json without the wall-clock / cache-usage block (the only part allowed to vary)."""
    data = json.loads((out / "comparison.json").read_text())
    data.pop("runtime")
    return data


def logged_archs(out: Path) -> list[str]:
    keys = []
    for path in sorted((out / "runs").glob("*/seed*/trials.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if record["status"] in ("ok", "cached"):
                keys.append(json.dumps(record["arch"], sort_keys=True))
    return keys


def test_ground_truth_optimum_and_zero_regret_at_full_budget(tmp_path):
    space = ToySpace(slots=5, seed=3)  # 4^5 = 1024 archs
    best_arch, best_score = space.optimum()
    evaluator = CountingObjective(space)
    result = compare(make_recipe(seed=3), ["random"], 2, 1024, tmp_path / "gt", ground_truth=True, progress=False,
                     strategy_args=["random.max_tries=100000"], evaluator=evaluator)
    truth = result.ground_truth
    assert truth is not None and truth.arch == best_arch and truth.optimum == pytest.approx(best_score, rel=1e-12)
    assert len(truth.scores) == 1024 and len(evaluator.calls) == 1024  # the runs added no evaluation
    assert result.data["ground_truth"]["arch_text"] == space.format(best_arch)
    for run in result.data["runs"]:
        assert run["scored"] == 1024 and run["final_regret"] == 0.0 and run["final_rank"] == 1
    assert len(set(logged_archs(tmp_path / "gt"))) == 1024  # random search enumerated the space
    full = result.summary["strategies"]["random"]["at"][-1]
    assert full["budget"] == 1024 and full["regret_mean"] == 0.0 and full["regret_std"] == 0.0
    assert result.summary["target"]["source"] == "ground-truth optimum"
    early = result.summary["strategies"]["random"]["at"][0]
    assert early["budget"] == 102 and early["regret_mean"] > 0


def test_ground_truth_minimize_and_size_limit(tmp_path):
    recipe = make_recipe(slots=4, direction="minimize")
    result = compare(recipe, ["random", "regularized"], 2, 40, tmp_path / "min", ground_truth=True, progress=False)
    space = ToySpace(slots=4)
    worst = min(space.objective(dict(zip(space.choices(), ops, strict=True)))
                for ops in itertools.product(*space.choices().values()))
    assert result.ground_truth.optimum == worst
    assert all(run["final_regret"] >= 0 for run in result.data["runs"])
    assert all(row["regret_mean"] >= 0 for s in result.summary["strategies"].values() for row in s["at"])
    with pytest.raises(NasplugError, match="has 1,024 archs, more than --max-ground-truth 1,000"):
        compare(make_recipe(), ["random"], 1, 10, tmp_path / "big", ground_truth=True, max_ground_truth=1000,
                progress=False)
    assert not (tmp_path / "big").exists()  # refused before anything was written


def test_same_seeds_same_numbers(tmp_path):
    for name in ("a", "b"):
        compare(make_recipe(), STRATEGIES, 3, 60, tmp_path / name, progress=False)
    first = numbers(tmp_path / "a")
    assert first == numbers(tmp_path / "b")
    assert [r["seed"] for r in first["runs"]] == [0, 1, 2] * 3
    compare(make_recipe(), STRATEGIES, [3, 4, 5], 60, tmp_path / "c", progress=False)
    assert numbers(tmp_path / "c")["runs"] != first["runs"]


def test_shared_cache_scores_each_arch_once(tmp_path):
    evaluator = CountingObjective(ToySpace(slots=5))
    out = tmp_path / "cache"
    result = compare(make_recipe(), STRATEGIES, 2, 80, out, progress=False, evaluator=evaluator)
    scored = logged_archs(out)
    assert len(scored) == 3 * 2 * 80
    assert len(evaluator.calls) == len(set(evaluator.calls)) == len(set(scored)) < len(scored)
    assert len((out / "cache.jsonl").read_text().splitlines()) == len(set(scored))
    assert result.data["runtime"]["evaluator_calls"] == len(evaluator.calls)
    cache = JsonlCache(out / "cache.jsonl")
    assert all(cache[key]["score"] == ToyObjective(ToySpace(slots=5))(json.loads(key))["score"] for key in cache)


def test_resume_after_truncated_and_deleted_logs(tmp_path):
    out = tmp_path / "resume"
    compare(make_recipe(), STRATEGIES, 2, 50, out, progress=False)
    before = numbers(out)
    log = out / "runs" / "evolution" / "seed1" / "trials.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:17]) + lines[17][:25])  # 17 trials and a torn 18th
    (out / "runs" / "regularized" / "seed0" / "trials.jsonl").unlink()
    with pytest.raises(NasplugError, match="pass --resume"):
        compare(make_recipe(), STRATEGIES, 2, 50, out, progress=False)
    evaluator = CountingObjective(ToySpace(slots=5))
    result = compare(make_recipe(), STRATEGIES, 2, 50, out, resume=True, progress=False, evaluator=evaluator)
    assert numbers(out) == before
    assert evaluator.calls == []  # everything came from the shared cache
    assert len(log.read_text().splitlines()) == len(lines)
    # A larger budget continues every run instead of starting over; a smaller one reads prefixes.
    bigger = compare(make_recipe(), STRATEGIES, 2, 70, out, resume=True, progress=False)
    assert all(
        r["scored"] == 70 and r["curve"][:50] == b["curve"]
        for r, b in zip(bigger.data["runs"], before["runs"], strict=True)
    )
    assert result.data["runs"] == before["runs"]


def test_resume_refuses_a_changed_recipe(tmp_path):
    out = tmp_path / "changed"
    compare(make_recipe(), ["random"], 1, 10, out, progress=False)
    with pytest.raises(NasplugError, match="space differs"):
        compare(make_recipe(seed=1), ["random"], 1, 10, out, resume=True, progress=False)
    with pytest.raises(NasplugError, match="strategy 'random' had arguments"):
        compare(
            make_recipe(), ["random"], 1, 10, out, resume=True, progress=False, strategy_args=["random.max_tries=5"]
        )


def test_strategy_resolution_and_errors(tmp_path):
    specs = resolve_strategies(["random", "evolution"], ["evolution.population=30", "random.max_tries=7"],
                               Component(name="evolution", population=12, parents=4))
    assert specs["evolution"].kwargs() == {"population": 30, "parents": 4}
    assert specs["random"].kwargs() == {"max_tries": 7}
    for args, message in ((["evolution.population"], "expected NAME.KEY=VALUE"),
                          (["regularized.population=3"], "not one of --strategies")):
        with pytest.raises(NasplugError, match=message):
            resolve_strategies(["random", "evolution"], args)
    with pytest.raises(NasplugError, match="listed twice"):
        resolve_strategies(["random", "random"])
    with pytest.raises(NasplugError, match="unknown strategy 'evolutoin'; did you mean 'evolution'"):
        compare(make_recipe(), ["random", "evolutoin"], 2, 10, tmp_path / "typo", progress=False)
    with pytest.raises(NasplugError, match="strategy.population"):
        compare(make_recipe(), ["evolution"], 2, 10, tmp_path / "typo", progress=False,
                strategy_args=["evolution.population=0"])
    assert not (tmp_path / "typo").exists()  # nothing written before the arguments were checked


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nasplug")
    add_compare_parser(parser.add_subparsers(dest="command"))
    return cmd_compare(parser.parse_args(argv))


def test_cli_prints_tables_and_writes_files(tmp_path, capsys):
    out = tmp_path / "cli"
    code = run_cli(["compare", str(REPO / "recipes" / "compare-toy.yaml"), "--strategies", "random", "evolution",
                    "--seeds", "3", "--budget", "40", "--ground-truth", "--out", str(out), "--set", "space.slots=4",
                    "--budgets", "10", "40", "--strategy-args", "evolution.parents=3"])
    assert code == 0
    text = capsys.readouterr().out
    assert "| strategy" in text and "score @10" in text and "regret @40" in text and "wilcoxon" in text
    data = json.loads((out / "comparison.json").read_text())
    assert data["config"]["batch_size"] == 10 and data["summary"]["budgets"] == [10, 40]
    assert data["config"]["strategy_specs"]["evolution"]["parents"] == 3
    assert (out / "anytime.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "comparison.md").read_text()
    assert "## Pairwise tests" in md and "## Regret" in md and "anytime.png" in md
    with pytest.raises(NasplugError) as exc:
        run_cli(["compare", str(REPO / "recipes" / "compare-toy.yaml"), "--strategies", "random", "--seeds", "0"])
    assert "--seeds: must be >= 1" in str(exc.value) and "\n" not in str(exc.value)


def test_exhausted_strategy_is_finished_and_carried_forward(tmp_path):
    out = tmp_path / "short"
    recipe = make_recipe(slots=2)  # 16 archs: evolution with 1 generation of 4 stops early
    result = compare(recipe, ["evolution"], 2, 12, out, progress=False,
                     strategy_args=["evolution.population=4", "evolution.mutations=1", "evolution.crossovers=1",
                                    "evolution.generations=1"])
    assert [r["scored"] for r in result.data["runs"]] == [4, 4]
    assert result.summary["strategies"]["evolution"]["at"][-1]["mean"] == pytest.approx(
        sum(r["final"] for r in result.data["runs"]) / 2)
    assert "stopped proposing before the budget" in (out / "comparison.md").read_text()
    shutil.copytree(out, tmp_path / "again")
    again = compare(recipe, ["evolution"], 2, 12, tmp_path / "again", resume=True, progress=False,
                    strategy_args=["evolution.population=4", "evolution.mutations=1", "evolution.crossovers=1",
                                   "evolution.generations=1"])
    assert again.data["runs"] == result.data["runs"]


def test_a_cache_line_cut_just_before_its_newline_is_kept_and_the_next_append_is_readable(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = JsonlCache(path)
    cache.add_many([("a", {"score": 1.0}), ("b", {"score": 2.0})], origin="random/seed0")
    path.write_bytes(path.read_bytes().rstrip(b"\n"))  # the crash fell just before the last newline
    cache = JsonlCache(path)
    assert dict(cache) == {"a": {"score": 1.0}, "b": {"score": 2.0}} and cache.origin["b"] == "random/seed0"
    cache["c"] = {"score": 3.0}
    again = JsonlCache(path)
    assert dict(again) == {"a": {"score": 1.0}, "b": {"score": 2.0}, "c": {"score": 3.0}}
    path.write_bytes(path.read_bytes() + b'{"key": "d", "metr')  # a torn line: dropped and cut
    assert len(JsonlCache(path)) == 3 and path.read_bytes().endswith(b"}\n")
    path.write_bytes(b'{"key": "a"}\n' + path.read_bytes())
    with pytest.raises(NasplugError, match=r"cache.jsonl:1: not a cache record \(KeyError\)"):
        JsonlCache(path)
