"""Optuna strategy: determinism, replay, failures, invalid archs, storage, names, and search quality."""

from __future__ import annotations  # noqa: I001 (ruff takes nasplug.spaces/strategies, mapped dirs, for third-party)

import logging
import statistics

import optuna
import pytest
from optuna.trial import TrialState

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.registry import STRATEGIES, build_callable
from nasplug.search import search
from nasplug.spaces.toy import ToyObjective, ToySpace
from nasplug.strategies.optuna import OptunaStrategy, available_samplers
from nasplug.strategies.random import RandomSearch


@pytest.fixture
def space():
    return ToySpace(slots=8, seed=0)


def drive(strategy, space, rounds=5, batch=6, fail_every=0):
    """Ask/tell like the loop; every ``fail_every``-th arch is told None."""
    keys = []
    for _ in range(rounds):
        for arch in strategy.ask(batch):
            keys.append(arch_key(arch))
            failed = fail_every and len(keys) % fail_every == 0
            strategy.tell(arch, None if failed else space.objective(arch))
    return keys


@pytest.mark.parametrize("sampler", ["TPESampler", "RandomSampler", "NSGAIISampler"])
def test_same_seed_same_asks_other_seed_other_asks(space, sampler):
    # 30 trials: past TPE's 10 random start-up trials, so the model-based part is covered.
    a = drive(OptunaStrategy(space, seed=4, sampler=sampler), space, fail_every=7)
    b = drive(OptunaStrategy(space, seed=4, sampler=sampler), space, fail_every=7)
    c = drive(OptunaStrategy(space, seed=5, sampler=sampler), space, fail_every=7)
    assert a == b
    assert a != c


def failing_objective(space):
    objective = ToyObjective(space)

    def evaluate(arch):
        if arch["s1"] == "relu" and arch["s2"] == "skip":
            raise RuntimeError("diverged")
        return objective(arch)

    return evaluate


def no_tanh_first(arch):
    return "s0 may not be tanh" if arch["s0"] == "tanh" else None


@pytest.mark.parametrize("cut", [19, 24])
def test_resume_replays_to_the_same_log(space, tmp_path, cut):
    """Rejected and failed trials included: they are replayed as FAIL tells."""
    def run(path, resume=False):
        return search(OptunaStrategy(space, seed=2), failing_objective(space), 40, archs_per_ask=8,
                      constraints=[no_tanh_first], log_path=path, resume=resume)

    full = tmp_path / "full.jsonl"
    result = run(full)
    statuses = {t.status for t in result.trials}
    assert {"rejected", "failed", "ok"} <= statuses, statuses
    lines = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:cut]))
    resumed = run(part, resume=True)
    assert part.read_bytes() == full.read_bytes()
    assert len(resumed.scored) == 40


def test_none_is_told_as_a_failed_trial(space):
    strategy = OptunaStrategy(space, seed=0)
    archs = strategy.ask(3)
    strategy.tell(archs[0], None)
    strategy.tell(archs[1], float("nan"))
    strategy.tell(archs[2], 1.5)
    states = [t.state for t in strategy.study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    assert strategy.study.best_value == 1.5
    assert not strategy.pending


def test_repeated_archs_map_to_their_trials_in_order():
    tiny = ToySpace(slots=1, seed=0)  # four archs: repeats are certain in a batch of 12
    strategy = OptunaStrategy(tiny, seed=0, sampler="RandomSampler")
    archs = strategy.ask(12)
    assert len({arch_key(a) for a in archs}) < 12
    for i, arch in enumerate(archs):
        strategy.tell(arch, float(i))
    trials = strategy.study.get_trials()
    assert [t.value for t in trials] == [float(i) for i in range(12)]
    assert [t.params for t in trials] == archs


def test_an_arch_it_did_not_propose_is_added_as_a_finished_trial(space):
    strategy = OptunaStrategy(space, seed=0)
    arch = space.optimum()[0]
    strategy.tell(arch, 12.0)
    (trial,) = strategy.study.get_trials()
    assert trial.params == arch and trial.value == 12.0


class AtMostTwoSkips(ToySpace):
    def violation(self, arch):
        skips = sum(v == "skip" for v in arch.values())
        return f"counts.skip: {skips} > 2" if skips > 2 else None


def test_archs_outside_the_space_are_resampled_not_returned():
    space = AtMostTwoSkips(slots=8, seed=0)
    strategy = OptunaStrategy(space, seed=0)
    for _ in range(4):
        for arch in strategy.ask(10):
            assert space.is_valid(arch)
            strategy.tell(arch, space.objective(arch))
    invalid = [t for t in strategy.study.get_trials() if t.user_attrs.get("nasplug_invalid")]
    assert invalid and all(t.state == TrialState.FAIL for t in invalid)
    # With a single try the sampler's proposal is returned as it is: the loop rejects it.
    once = OptunaStrategy(space, seed=0, max_tries=1)
    assert any(not space.is_valid(a) for a in once.ask(40))


def test_unknown_sampler_lists_the_samplers_on_one_line(space):
    with pytest.raises(NasplugError) as info:
        OptunaStrategy(space, sampler="TPE")
    message = str(info.value)
    assert "unknown sampler 'TPE'" in message and "TPESampler" in message and "RandomSampler" in message
    assert "\n" not in message
    assert "BaseSampler" not in available_samplers() and "PartialFixedSampler" not in available_samplers()


@pytest.mark.parametrize("kwargs,match", [({"seed": 3}, "sampler_kwargs.seed"),
                                          ({"n_startup": 3}, "sampler_kwargs: TPESampler")])
def test_bad_sampler_arguments_name_the_field(space, kwargs, match):
    with pytest.raises(NasplugError, match=match):
        OptunaStrategy(space, sampler_kwargs=kwargs)


def test_sqlite_storage_holds_the_study_and_a_resume_continues_it(space, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    OptunaStrategy(space, seed=1, storage=url, study_name="toy")  # built to check a recipe: creates nothing
    assert optuna.get_all_study_names(url) == []
    first = OptunaStrategy(space, seed=1, storage=url, study_name="toy")
    keys = drive(first, space, rounds=2, batch=3, fail_every=3)  # sqlite: ~0.2 s per ask here
    stored = optuna.load_study(study_name="toy", storage=url)
    assert len(stored.trials) == 6
    assert sum(t.state == TrialState.FAIL for t in stored.trials) == 2
    assert [arch_key(t.params) for t in stored.trials] == keys
    # Built again (as on resume) and replayed, it continues the same study: no copy twice
    again = OptunaStrategy(space, seed=1, storage=url, study_name="toy")
    more = drive(again, space, rounds=3, batch=3, fail_every=3)
    assert more[:6] == keys
    assert optuna.get_all_study_names(url) == ["toy"]
    assert [arch_key(t.params) for t in optuna.load_study(study_name="toy", storage=url).trials] == more
    assert drive(OptunaStrategy(space, seed=1), space, rounds=3, batch=3, fail_every=3) == more  # = in memory


def test_a_study_of_another_search_is_left_alone(space, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    other = drive(OptunaStrategy(space, seed=1, storage=url, study_name="toy"), space, rounds=1, batch=3)
    ours = drive(OptunaStrategy(space, seed=2, storage=url, study_name="toy"), space, rounds=2, batch=3)
    assert sorted(optuna.get_all_study_names(url)) == ["toy", "toy-2"]
    assert [arch_key(t.params) for t in optuna.load_study(study_name="toy", storage=url).trials] == other
    assert [arch_key(t.params) for t in optuna.load_study(study_name="toy-2", storage=url).trials] == ours


def test_an_unusable_storage_is_one_line_when_the_strategy_is_built(space, tmp_path):
    with pytest.raises(NasplugError, match="strategy.storage: cannot open"):
        OptunaStrategy(space, storage=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}", study_name="x")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("sampler", ["GridSampler", "BruteForceSampler"])
def test_exhaustive_samplers_enumerate_the_space_then_stop(sampler):
    tiny = ToySpace(slots=2, seed=0)  # 16 archs; GridSampler gets them as its grid
    result = search(OptunaStrategy(tiny, seed=0, sampler=sampler), ToyObjective(tiny), 100, archs_per_ask=1)
    assert len(result.trials) == 16 == len({t.key for t in result.trials})


def test_registered_names_and_flat_sampler_arguments(space):
    tpe = build_callable(STRATEGIES.get("optuna:TPESampler"), {"space": space, "seed": 3, "n_startup_trials": 4},
                         field="search.strategy")
    assert isinstance(tpe, OptunaStrategy) and isinstance(tpe.sampler, optuna.samplers.TPESampler)
    assert tpe.sampler._n_startup_trials == 4
    for name, cls in [("optuna", optuna.samplers.TPESampler), ("optuna:RandomSampler", optuna.samplers.RandomSampler),
                      ("optuna:NSGAIISampler", optuna.samplers.NSGAIISampler)]:
        assert isinstance(STRATEGIES.build(name, space=space, seed=0).sampler, cls)


def test_optuna_info_logs_are_dropped_and_its_verbosity_kept(space, caplog):
    before = optuna.logging.get_verbosity()
    with caplog.at_level(logging.INFO):
        drive(OptunaStrategy(space, seed=0), space, rounds=2, batch=3)
    assert not [r for r in caplog.records if r.name.startswith("optuna") and r.levelno < logging.WARNING]
    assert optuna.logging.get_verbosity() == before


def mean_best(make, space, budget, batch, seeds):
    return statistics.mean(search(make(s), ToyObjective(space), budget, archs_per_ask=batch).best.score for s in seeds)


def test_tpe_beats_random_at_a_small_budget(space):
    # Measured over 6 seeds: TPE 10.5, random 8.1 (the optimum is 12.5).
    tpe = mean_best(lambda s: OptunaStrategy(space, seed=s), space, 60, 10, range(6))
    random_ = mean_best(lambda s: RandomSearch(space, seed=s), space, 60, 10, range(6))
    assert tpe > random_ + 1.0, (tpe, random_)


def test_study_user_attributes_hold_every_metric_of_the_trial(space, tmp_path):
    """What trials.jsonl holds, the study holds too: read back with optuna.load_study."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    strategy = OptunaStrategy(space, seed=0, storage=url, study_name="metrics")
    result = search(strategy, ToyObjective(space), budget=6, archs_per_ask=3, log_path=tmp_path / "trials.jsonl")
    stored = optuna.load_study(study_name="metrics", storage=url)
    complete = [t for t in stored.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6
    by_key = {t.key: t.metrics for t in result.scored}
    for trial in complete:
        metrics = by_key[arch_key(trial.params)]
        assert trial.user_attrs == metrics and set(metrics) == {"score", "params"}
        assert trial.value == metrics["score"]


def test_a_minimised_metric_is_a_minimize_study_of_the_runs_own_values(space, tmp_path):
    """optuna-dashboard and study.best_trial read like the run: no negated values."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    strategy = OptunaStrategy(space, seed=0, storage=url, study_name="loss")
    loss = lambda arch: {"loss": -space.objective(arch), "params": space.metrics(arch)["params"]}  # noqa: E731
    result = search(strategy, loss, budget=8, archs_per_ask=4, metric="loss", direction="minimize")
    stored = optuna.load_study(study_name="loss", storage=url)
    assert stored.direction == optuna.study.StudyDirection.MINIMIZE
    by_key = {t.key: t.score for t in result.scored}
    complete = [t for t in stored.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8 and all(t.value == by_key[arch_key(t.params)] for t in complete)
    assert stored.best_trial.value == min(by_key.values()) == result.best.score


@pytest.mark.parametrize("name", ["optuna:NSGAIISampler", "optuna:NSGAIIISampler", "optuna:TPESampler"])
def test_two_objectives_make_a_multi_objective_study(space, tmp_path, name):
    from nasplug.objectives import Objective

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    strategy = STRATEGIES.get(name)(space, seed=0, storage=url, study_name="mo")
    objectives = (Objective("score", "maximize"), Objective("params", "minimize"))
    result = search(strategy, ToyObjective(space), budget=12, archs_per_ask=4, objectives=objectives)
    stored = optuna.load_study(study_name="mo", storage=url)
    assert stored.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    by_key = {t.key: t.metrics for t in result.scored}
    complete = [t for t in stored.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 12
    for trial in complete:
        metrics = by_key[arch_key(trial.params)]
        assert trial.values == [metrics["score"], metrics["params"]] and trial.user_attrs == metrics
    best = {arch_key(t.params) for t in stored.best_trials}  # Optuna's own front is the run's front
    assert best == {t.key for t in result.front()}


def test_a_run_and_its_resumes_keep_one_study_that_holds_the_log(tmp_path, capsys):
    """`nasplug run` builds the strategy twice (the recipe check, the search) and each resume
    again: the storage must still hold one study, ``t``, with exactly the run's trials."""
    import json

    from nasplug.cli import main

    url = f"sqlite:///{tmp_path / 's.db'}"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""name: t
seed: 0
space: {{name: toy, slots: 6}}
evaluator: {{name: toy}}
search: {{strategy: {{name: optuna, storage: "{url}", study_name: t}}, budget: 12, batch_size: 4}}
""")
    out = tmp_path / "run"

    def stored_keys():
        assert optuna.get_all_study_names(url) == ["t"]
        return [arch_key(t.params) for t in optuna.load_study(study_name="t", storage=url).trials]

    def logged_keys():
        return [arch_key(json.loads(line)["arch"]) for line in (out / "trials.jsonl").read_text().splitlines()]

    assert main(["-q", "run", str(recipe), "--out", str(out)]) == 0
    assert stored_keys() == logged_keys() and len(logged_keys()) == 12
    assert main(["-q", "run", str(recipe), "--out", str(out), "--resume"]) == 0  # the search is done: skipped
    assert stored_keys() == logged_keys()
    # interrupted after 7 trials (the study got them all: a trial is logged before it is told)
    log = (out / "trials.jsonl").read_text().splitlines(keepends=True)
    (out / "trials.jsonl").write_text("".join(log[:7]))
    (out / "stages" / "search.json").unlink()
    assert main(["-q", "run", str(recipe), "--out", str(out), "--resume"]) == 0
    assert stored_keys() == logged_keys() and "".join(log) == (out / "trials.jsonl").read_text()
    capsys.readouterr()
