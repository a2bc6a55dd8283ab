"""Evolution: SPOS generation structure, and better than random at the same budget."""

from __future__ import annotations

import statistics

import pytest

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.search import search
from nasplug.spaces.toy import ToyObjective, ToySpace
from nasplug.strategies.evolution import Evolution, RegularizedEvolution
from nasplug.strategies.random import RandomSearch


def mean_best(make, space, budget, batch, seeds=range(10)):
    return statistics.mean(
        search(make(space, s), ToyObjective(space), budget, batch_size=batch).best.score for s in seeds
    )


@pytest.mark.parametrize("budget", [150, 300])
def test_evolution_beats_random_over_ten_seeds(budget):
    space = ToySpace(slots=8, seed=0)
    evolution = mean_best(lambda sp, s: Evolution(sp, seed=s), space, budget, 50)
    random_ = mean_best(lambda sp, s: RandomSearch(sp, seed=s), space, budget, 50)
    assert evolution > random_ + 0.5, (evolution, random_)


def test_regularized_evolution_beats_random():
    space = ToySpace(slots=8, seed=0)
    aging = mean_best(lambda sp, s: RegularizedEvolution(sp, seed=s), space, 300, 10)
    random_ = mean_best(lambda sp, s: RandomSearch(sp, seed=s), space, 300, 10)
    assert aging > random_ + 0.5, (aging, random_)


def test_generations_follow_spos():
    space = ToySpace(slots=8, seed=0)
    evo = Evolution(space, seed=0)
    objective = ToyObjective(space)
    first = evo.ask(100)
    assert len(first) == 50, "a generation is 50 archs; ask returns no more than what is left of it"
    for arch in first:
        evo.tell(arch, objective(arch)["score"])
    second = evo.ask(50)
    origins = [evo.origin[arch_key(a)] for a in second]
    assert origins.count("mutation") == 25 and origins.count("crossover") == 25
    parents = {arch_key(a) for a in sorted(first, key=lambda a: -objective(a)["score"])[:10]}
    for arch, origin in zip(second, origins):
        if origin == "mutation":  # one parent, a few genes changed
            assert min(sum(arch[k] != p[k] for k in arch) for p in map(eval_key, parents)) <= 4
    keys = [arch_key(a) for a in first + second]
    assert len(keys) == len(set(keys)), "no arch is proposed twice"


def eval_key(key):
    import json

    return json.loads(key)


def test_rejected_children_are_replaced():
    space = ToySpace(slots=8, seed=0)
    evo = Evolution(space, seed=0, population=20, mutations=10, crossovers=10)
    for arch in evo.ask(20):
        evo.tell(arch, 1.0)
    batch = evo.ask(20)
    evo.tell(batch[0], None)  # a constraint rejected it: a replacement is queued
    assert len(evo.ask(20)) == 1


def test_stops_after_its_generations():
    space = ToySpace(slots=6, seed=0)
    result = search(Evolution(space, seed=0, population=10, mutations=5, crossovers=5, generations=3),
                    ToyObjective(space), budget=1000, batch_size=10)
    assert len(result.scored) == 30


@pytest.mark.parametrize("kwargs", [dict(population=0), dict(mutations=40, crossovers=20), dict(mutation_prob=1.5)])
def test_bad_settings_name_the_field(kwargs):
    with pytest.raises(NasplugError, match="strategy."):
        Evolution(ToySpace(), **kwargs)


def test_random_search_enumerates_a_small_space():
    space = ToySpace(slots=4, seed=0)  # 256 archs
    result = search(RandomSearch(space, seed=0), ToyObjective(space), budget=256, batch_size=16)
    assert len({t.key for t in result.trials}) == 256
    assert result.best.score == space.optimum()[1]


def test_mutation_redraws_each_choice_uniformly_like_spos():
    """SPOS's mutation redraws a choice from all its options, so with p = 1 a choice keeps its
    value with probability 1/len(options) (here 1/4) rather than always changing."""
    import random

    space = ToySpace(slots=8, seed=0)
    rng = random.Random(0)
    parent = space.sample(rng)
    draws = 4000
    kept = sum(space.mutate(parent, rng, 1.0)["s0"] == parent["s0"] for _ in range(draws)) / draws
    assert abs(kept - 0.25) < 0.03, kept
    changed = sum(space.mutate(parent, rng, 0.1) != parent for _ in range(draws)) / draws
    assert abs(changed - (1 - (1 - 0.1 * 3 / 4) ** 8)) < 0.03, changed
