"""Count constraints in search: only 8/8/8 archs are proposed and scored; baselines may lie outside."""

from __future__ import annotations

import random
from collections import Counter

from nasplug.search import search
from nasplug.spaces.lvbert import LVBertSpace, interleaved
from nasplug.strategies.evolution import Evolution
from nasplug.strategies.random import RandomSearch


def attn_score(arch):
    """A cheap stand-in objective: attention late is good."""
    return {"score": sum(i for i, (k, v) in enumerate(sorted(arch.items())) if v == "attn")}


def test_exactly_888_counts_yield_only_888_archs():
    space = LVBertSpace(size="small", counts={"conv": 8, "attn": 8, "ffn": 8})
    for strategy in (Evolution(space, seed=0, population=20, parents=5, mutations=10, crossovers=10),
                     RandomSearch(space, seed=0)):
        result = search(strategy, attn_score, budget=60, archs_per_ask=20, space=space)
        assert len(result.scored) == 60
        for trial in result.trials:
            if trial.scored:
                assert Counter(trial.arch.values()) == {"conv": 8, "attn": 8, "ffn": 8}


def test_swap_mutation_keeps_counts_and_changes_the_arch():
    space = LVBertSpace(size="small", counts={"conv": 8, "attn": 8, "ffn": 8})
    rng = random.Random(0)
    parent = space.sample(rng)
    children = [space.mutate(parent, rng, 0.1) for _ in range(50)]
    assert all(Counter(c.values()) == Counter(parent.values()) for c in children)
    assert sum(c != parent for c in children) >= 40


def test_unconstrained_space_takes_the_interleaved_baseline():
    space = LVBertSpace(size="small", counts={"conv": 8, "attn": 8, "ffn": 8})
    assert not space.is_valid(space.unconstrained().parse(interleaved(24)))
    free = space.unconstrained()
    assert free.metrics(free.parse(interleaved(24)))["params"] == 13_483_008
