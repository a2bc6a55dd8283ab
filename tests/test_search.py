"""The search loop: budget, cache, constraints, failures, log and resume by replay."""

from __future__ import annotations

import pytest

from nasplug.errors import NasplugError
from nasplug.objectives import Objective
from nasplug.search import search
from nasplug.spaces.toy import ToyObjective, ToySpace
from nasplug.strategies.evolution import Evolution
from nasplug.strategies.random import RandomSearch
from nasplug.trials import TrialLog


class CountingEvaluator:
    def __init__(self, space: ToySpace) -> None:
        self.inner = ToyObjective(space)
        self.calls: list[str] = []

    def __call__(self, arch):
        self.calls.append(str(sorted(arch.items())))
        return self.inner(arch)


@pytest.fixture
def space() -> ToySpace:
    return ToySpace(slots=6, seed=1)


def test_budget_counts_scored_trials(space):
    result = search(Evolution(space, seed=0), ToyObjective(space), budget=73, archs_per_ask=50)
    assert len(result.scored) == 73


def test_same_seed_same_log_bytes(space, tmp_path):
    for name in ("a", "b"):
        search(Evolution(space, seed=4), ToyObjective(space), 120, archs_per_ask=50,
               log_path=tmp_path / f"{name}.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    other = tmp_path / "c.jsonl"
    search(Evolution(space, seed=5), ToyObjective(space), 120, archs_per_ask=50, log_path=other)
    assert other.read_bytes() != (tmp_path / "a.jsonl").read_bytes()


def test_each_distinct_arch_is_evaluated_once(space):
    class Repeater(RandomSearch):  # proposes the same few archs again and again
        def ask(self, n=1):
            return [dict(self.space.sample(__import__("random").Random(i % 3))) for i in range(n)]

    evaluator = CountingEvaluator(space)
    result = search(Repeater(space), evaluator, budget=12, archs_per_ask=4)
    assert len(evaluator.calls) == len(set(evaluator.calls)) == 3
    assert sum(t.status == "cached" for t in result.trials) == 9
    scores = {t.key: t.score for t in result.trials}
    assert all(t.score == scores[t.key] for t in result.trials)


def test_rejected_archs_never_reach_the_evaluator(space):
    evaluator = CountingEvaluator(space)

    def no_skip_first(arch):
        return "s0 is skip" if arch["s0"] == "skip" else None

    result = search(RandomSearch(space, seed=0), evaluator, budget=40, archs_per_ask=8, constraints=[no_skip_first])
    rejected = [t for t in result.trials if t.status == "rejected"]
    assert rejected and all(t.reason == "s0 is skip" for t in rejected)
    assert not any("'s0', 'skip'" in call for call in evaluator.calls)
    assert len(result.scored) == 40


def test_constraints_that_reject_everything_stop_with_a_clear_error(space):
    with pytest.raises(NasplugError, match="rejected"):
        search(RandomSearch(space), ToyObjective(space), 10, constraints=[lambda a: "never"], max_rejections=50)


def test_failed_evaluations_are_logged_and_told_as_none(space):
    told = []

    class Spy(RandomSearch):
        def tell(self, arch, score):
            told.append(score)
            super().tell(arch, score)

    def flaky(arch):
        if arch["s1"] == "relu":
            raise RuntimeError("out of memory")
        return {"score": 1.0}

    result = search(Spy(space, seed=0), flaky, budget=20, archs_per_ask=5)
    failed = [t for t in result.trials if t.status == "failed"]
    assert failed and all("out of memory" in t.reason for t in failed)
    assert told.count(None) == len(failed)


def test_minimize_flips_the_sign_for_a_one_objective_strategy(space):
    told = []

    class Spy(RandomSearch):  # written to the one-objective interface: higher is better
        vector_tell = False

        def tell(self, arch, score):
            told.append(score)

    result = search(Spy(space), lambda a: {"loss": 2.5}, budget=3, metric="loss", direction="minimize")
    assert told == [-2.5] * 3 and result.best.score == 2.5


def test_a_vector_strategy_hears_the_values_in_their_own_units(space):
    told = []

    class Spy(RandomSearch):
        def tell(self, arch, score):
            told.append(score)

    objectives = (Objective("loss", "minimize"), Objective("params", "minimize"))
    result = search(Spy(space), lambda a: {"loss": 2.5, "params": 7.0}, budget=3, objectives=objectives)
    assert told == [(2.5, 7.0)] * 3 and result.best.score == 2.5
    assert result.objectives == objectives and result.metric == "loss"


def test_missing_metric_is_a_clear_error(space):
    with pytest.raises(NasplugError, match="no 'acc'"):
        search(RandomSearch(space), ToyObjective(space), 3, metric="acc")


@pytest.mark.parametrize("budget", [0, -5])
def test_non_positive_budget(space, budget):
    with pytest.raises(NasplugError, match="budget"):
        search(RandomSearch(space), ToyObjective(space), budget)


@pytest.mark.parametrize("cut", [0, 1, 49, 50, 77])
def test_resume_replays_to_the_same_log(space, tmp_path, cut):
    full = tmp_path / "full.jsonl"
    search(Evolution(space, seed=2), ToyObjective(space), 150, archs_per_ask=50, log_path=full)
    lines = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:cut]))
    result = search(Evolution(space, seed=2), ToyObjective(space), 150, archs_per_ask=50, log_path=part, resume=True)
    assert part.read_bytes() == full.read_bytes()
    assert len(result.scored) == 150


def test_resume_drops_a_torn_last_line(space, tmp_path):
    full = tmp_path / "full.jsonl"
    search(RandomSearch(space, seed=2), ToyObjective(space), 30, archs_per_ask=4, log_path=full)
    data = full.read_bytes()
    part = tmp_path / "part.jsonl"
    lines = data.splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:10]) + lines[10][:17])  # the crash hit mid-write
    search(RandomSearch(space, seed=2), ToyObjective(space), 30, archs_per_ask=4, log_path=part, resume=True)
    assert part.read_bytes() == data


def test_resume_after_a_cut_just_before_the_last_newline(space, tmp_path):
    """The last trial is whole but its newline was lost: resume keeps it, restores the
    newline, and the next trial starts a line of its own (the log then equals the uninterrupted one)."""
    full = tmp_path / "full.jsonl"
    search(RandomSearch(space, seed=2), ToyObjective(space), 30, archs_per_ask=4, log_path=full)
    data = full.read_bytes()
    lines = data.splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:10]) + lines[10].rstrip(b"\n"))
    assert len(TrialLog(part).read()) == 11
    search(RandomSearch(space, seed=2), ToyObjective(space), 30, archs_per_ask=4, log_path=part, resume=True)
    assert part.read_bytes() == data
    assert len(TrialLog(part).read()) == len(lines)


def test_resume_with_another_seed_is_a_clear_error(space, tmp_path):
    log = tmp_path / "t.jsonl"
    search(RandomSearch(space, seed=1), ToyObjective(space), 10, log_path=log)
    with pytest.raises(NasplugError, match="now proposes"):
        search(RandomSearch(space, seed=2), ToyObjective(space), 20, log_path=log, resume=True)


def test_existing_log_without_resume_is_refused(space, tmp_path):
    log = tmp_path / "t.jsonl"
    search(RandomSearch(space), ToyObjective(space), 5, log_path=log)
    with pytest.raises(NasplugError, match="--resume"):
        search(RandomSearch(space), ToyObjective(space), 5, log_path=log)


def test_log_records_are_complete(space, tmp_path):
    log = tmp_path / "t.jsonl"
    search(Evolution(space, seed=0), ToyObjective(space), 60, archs_per_ask=50, log_path=log)
    trials = TrialLog(log).read()
    assert [t.number for t in trials] == list(range(len(trials)))
    assert {t.batch for t in trials} == {0, 1}
    assert all(t.status == "ok" and t.score == t.metrics["score"] for t in trials)


def test_best_so_far_is_monotone(space):
    result = search(RandomSearch(space, seed=3), ToyObjective(space), 50, archs_per_ask=7)
    curve = result.best_so_far()
    assert len(curve) == 50 and all(b >= a for a, b in zip(curve, curve[1:]))
    assert curve[-1] == result.best.score == max(t.score for t in result.scored)
