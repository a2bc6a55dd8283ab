"""Conditional choices: one name per model, sizes that count models, searches and ground truth
that score each model once, and logs that read the same with and without the new field."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from nasplug.arch import arch_key
from nasplug.compare.cache import ground_truth
from nasplug.conditions import Condition, at_least, count_models, every_model, one_of
from nasplug.registry import STRATEGIES
from nasplug.search import search
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy
from nasplug.testing import SpaceContract, renamed
from nasplug.trials import Trial, TrialLog


class Mini(SearchSpace):
    """depth 1-3 with a width per layer; an op whose kernel exists only for convolutions; and a
    group count that exists only when the (conditional) third width is wide: conditions on
    conditions."""

    name = "mini"

    def choices(self):
        return {"depth": (1, 2, 3), "w0": (4, 8, 16), "w1": (4, 8, 16), "w2": (4, 8, 16), "op": ("conv", "pool"),
                "kernel": (3, 5), "groups": (1, 2)}

    def conditions(self):
        return {"w1": at_least("depth", 2), "w2": at_least("depth", 3), "kernel": one_of("op", ["conv"]),
                "groups": Condition(("w2",), lambda arch: arch["w2"] >= 8, "w2 >= 8")}


def brute_force_models(space: SearchSpace) -> set[str]:
    choices = space.choices()
    return {arch_key(space.canonical(dict(zip(choices, values)))) for values in itertools.product(*choices.values())}


class TestMiniContract(SpaceContract):
    @pytest.fixture
    def space(self):
        return Mini()


def test_canonical_fixes_each_inactive_choice_at_its_first_option() -> None:
    space = Mini()
    arch = {"depth": 2, "w0": 8, "w1": 16, "w2": 16, "op": "pool", "kernel": 5, "groups": 2}
    assert space.canonical(arch) == {"depth": 2, "w0": 8, "w1": 16, "w2": 4, "op": "pool", "kernel": 3, "groups": 1}
    deep = {**arch, "depth": 3, "op": "conv"}
    assert space.canonical(deep) == deep  # every choice active: unchanged
    assert space.canonical({**deep, "w2": 4}) == {**deep, "w2": 4, "groups": 1}  # groups hangs on w2's value


def test_size_counts_distinct_models_against_brute_force() -> None:
    space = Mini()
    models = brute_force_models(space)
    assert space.size() == count_models(space) == len(models)
    # by hand: op/kernel give 3 (conv 3, conv 5, pool); depth 1: 3 widths, 2: 9, 3: 27 + the 18 wide w2 with 2 groups
    assert len(models) == 3 * (3 + 9 + 27 + 18)
    listed = [arch_key(a) for a in every_model(space)]
    assert len(listed) == len(set(listed)) and set(listed) == models


def test_spaces_without_conditions_are_untouched() -> None:
    from nasplug.spaces.toy import ToySpace

    space = ToySpace(slots=4)
    arch = space.sample(random.Random(0))
    assert space.canonical(arch) is arch and space.size() == 4**4
    rng, again = random.Random(5), random.Random(5)  # the draws of the code before conditions existed
    old = [{k: again.choice(list(o)) for k, o in space.choices().items()} for _ in range(20)]
    assert [space.sample(rng) for _ in range(20)] == old
    parent = old[0]
    child = space.mutate(parent, random.Random(9), 0.5)
    rng = random.Random(9)
    expected = dict(parent)
    for key, options in space.choices().items():
        if rng.random() < 0.5:
            expected[key] = rng.choice(options)
    assert child == expected


def test_mutation_gives_new_layers_random_widths() -> None:
    space = Mini()
    shallow = space.canonical({"depth": 1, "w0": 8, "w1": 4, "w2": 4, "op": "pool", "kernel": 3, "groups": 1})
    widths = {space.mutate(shallow, random.Random(seed), 1.0)["w1"] for seed in range(40)}
    assert widths == {4, 8, 16}  # not only the first option


def test_crossover_takes_an_active_value_over_an_inactive_one() -> None:
    space = Mini()
    a = space.canonical({"depth": 1, "w0": 8, "w1": 4, "w2": 4, "op": "pool", "kernel": 3, "groups": 1})
    b = {"depth": 3, "w0": 16, "w1": 16, "w2": 16, "op": "conv", "kernel": 5, "groups": 2}
    for seed in range(20):
        child = space.crossover(a, b, random.Random(seed))
        assert space.canonical(child) == child
        if child["depth"] >= 2:
            assert child["w1"] == 16  # inactive in a: b's value, never a's placeholder


class Counting:
    """An evaluator that remembers how often each canonical arch was scored."""

    def __init__(self, space: SearchSpace) -> None:
        self.space, self.calls = space, {}

    def __call__(self, arch):
        key = arch_key(self.space.canonical(arch))
        self.calls[key] = self.calls.get(key, 0) + 1
        return {"score": sum(hash(str(v)) % 7 for v in self.space.canonical(arch).values()) / 10}


@pytest.mark.parametrize("name", ["random", "evolution", "regularized", "optuna:TPESampler"])
def test_a_search_evaluates_no_model_twice(name: str) -> None:
    space = Mini()
    kwargs = {"population": 10, "parents": 3, "mutations": 4, "crossovers": 4} if name == "evolution" else {}
    evaluator = Counting(space)
    result = search(STRATEGIES.build(name, space=space, seed=1, **kwargs), evaluator, budget=60, archs_per_ask=10,
                    space=space)
    assert len(result.scored) == 60
    assert max(evaluator.calls.values()) == 1, "a model was evaluated twice"
    for trial in result.trials:
        assert trial.key == arch_key(space.canonical(trial.arch))


class Renamer(Strategy):
    """Proposes each model twice: first canonically, then under another name."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.last = None

    def ask(self, n: int = 1):
        out = []
        for _ in range(n):
            if self.last is None:
                self.last = self.space.sample(self.rng)
                out.append(self.last)
            else:
                out.append(renamed(self.space, self.last, self.rng) if self.last["depth"] < 3 else self.last)
                self.last = None
        return out

    def tell(self, arch, score) -> None:
        pass


def test_a_duplicate_reuses_the_first_score_marked_in_the_log_and_replays(tmp_path: Path) -> None:
    space = Mini()
    evaluator = Counting(space)
    log = tmp_path / "trials.jsonl"
    result = search(Renamer(space, 3), evaluator, budget=20, archs_per_ask=4, space=space, log_path=log)
    assert max(evaluator.calls.values()) == 1
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for first, second in zip(records[::2], records[1::2]):
        assert second["status"] == "cached" and second["score"] == first["score"]
        if second["arch"] != first["arch"]:  # another name of the first model: its one name is logged
            assert second["canonical"] == first["arch"]
    assert any("canonical" in r for r in records) and not any("canonical" in r for r in records[::2])
    keys = {t.key for t in result.scored}
    assert len(result.top(20)) == len(keys) == len(evaluator.calls) >= 8  # top lists models, not names
    # resume by replay: cut the log after 7 trials, continue, and get the same bytes
    full = log.read_bytes()
    log.write_bytes(b"".join(full.splitlines(keepends=True)[:7]))
    search(Renamer(space, 3), Counting(space), budget=20, archs_per_ask=4, space=space, log_path=log, resume=True)
    assert log.read_bytes() == full


def test_old_logs_without_the_field_still_read(tmp_path: Path) -> None:
    old = {"arch": {"s0": "relu"}, "asked": 1, "batch": 0, "metrics": {"score": 1.0}, "number": 0, "reason": None,
           "score": 1.0, "status": "ok"}
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(old) + "\n")
    (trial,) = TrialLog(path).read()
    assert trial.canonical is None and trial.key == arch_key({"s0": "relu"})
    assert json.loads(trial.to_json()) == old  # written back byte for byte the same fields
    named = Trial(number=1, batch=0, asked=1, arch={"a": 1, "b": 2}, status="cached", score=1.0,
                  canonical={"a": 1, "b": 0})
    path.write_text(json.dumps(old) + "\n" + named.to_json() + "\n")
    assert TrialLog(path).read()[1].key == arch_key({"a": 1, "b": 0})
    path.write_text(json.dumps({**old, "canonical": None}) + "\n")
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match="canonical"):
        TrialLog(path).read()


def test_ground_truth_scores_each_model_once() -> None:
    space = Mini()
    evaluator = Counting(space)
    truth = ground_truth(space, evaluator, {}, metric="score", direction="maximize")
    assert len(truth.scores) == space.size() == len(evaluator.calls)
    assert max(evaluator.calls.values()) == 1
