"""PrefixCache: the best routes' states, shared prefixes stored once, within a byte budget."""

from __future__ import annotations

import torch

from nasplug.oneshot.prefix_cache import PrefixCache


def stack_for(route, value=0.0):
    """stack[d]: one lane's state after d layers (4 floats = 16 bytes each)."""
    return [[torch.full((4,), value + d)] for d in range(len(route) + 1)]


def test_keeps_the_best_and_evicts_the_worst():
    cache = PrefixCache(keep=2, budget_bytes=10_000, maximize=True)
    a, b, c = ("x", "y"), ("x", "z"), ("w", "y")
    assert cache.offer(a, 0.5, stack_for(a))
    assert cache.offer(b, 0.7, stack_for(b))
    assert not cache.offer(c, 0.1, stack_for(c)), "worse than both kept routes"
    assert cache.offer(c, 0.9, stack_for(c))
    assert set(cache.kept) == {b, c}
    held = cache.resume(a, 0)
    assert len(held) == 1 and torch.equal(held[0][0], torch.full((4,), 1.0)), "('x',) is still held through b"
    assert cache.resume(a, 1) == []


def test_shared_prefixes_are_stored_once_and_freed_with_their_last_route():
    cache = PrefixCache(keep=3, budget_bytes=10_000)
    a, b = ("x", "y", "z"), ("x", "y", "w")
    cache.offer(a, 1.0, stack_for(a))
    cache.offer(b, 2.0, stack_for(b))
    assert cache.nbytes == 4 * 16  # x, xy, xyz, xyw
    cache._drop(a)
    assert cache.nbytes == 3 * 16 and len(cache.resume(a, 0)) == 2
    cache._drop(b)
    assert cache.nbytes == 0 and cache.resume(b, 0) == []


def test_budget_and_minimize():
    cache = PrefixCache(keep=5, budget_bytes=3 * 16, maximize=False)
    a, b = ("x", "y"), ("w", "v")
    assert cache.offer(a, 2.0, stack_for(a))
    assert cache.offer(b, 1.0, stack_for(b)), "lower is better: b pushes a out to fit"
    assert set(cache.kept) == {b} and cache.nbytes == 2 * 16
    assert not cache.offer(("q", "r", "s", "t"), 0.0, stack_for(("q", "r", "s", "t"))), "larger than the budget"


def test_unrankable_scores_and_keep_zero_hold_nothing():
    cache = PrefixCache(keep=2, budget_bytes=10_000)
    assert not cache.offer(("x",), None, stack_for(("x",)))
    assert not cache.offer(("x",), float("nan"), stack_for(("x",)))
    assert not PrefixCache(keep=0, budget_bytes=10_000).offer(("x",), 1.0, stack_for(("x",)))
    assert cache.nbytes == 0


def test_a_route_that_cannot_fit_evicts_nothing():
    cache = PrefixCache(keep=3, budget_bytes=4 * 16)
    good, poor = ("a", "b"), ("c", "d")
    cache.offer(good, 3.0, stack_for(good))
    cache.offer(poor, 1.0, stack_for(poor))
    wide = ("e", "f", "g")  # 3 new states: fits only if both held routes went, and `good` ranks above it
    assert not cache.offer(wide, 2.0, stack_for(wide))
    assert set(cache.kept) == {good, poor} and cache.nbytes == 4 * 16
    assert not cache.too_small
    assert not cache.offer(("h", "i", "j", "k", "l"), 9.0, stack_for(("h", "i", "j", "k", "l")))
    assert cache.too_small


def test_rescore_reorders_what_goes_first():
    cache = PrefixCache(keep=2, budget_bytes=10_000)
    a, b, c = ("a",), ("b",), ("c",)
    cache.offer(a, 1.0, stack_for(a))
    cache.offer(b, 2.0, stack_for(b))
    cache.rescore({a: 5.0, ("z",): 9.0})
    assert cache.kept == {a: 5.0, b: 2.0}
    cache.offer(c, 3.0, stack_for(c))
    assert set(cache.kept) == {a, c}


def test_random_offers_keep_the_accounting_exact():
    import random

    rng = random.Random(0)
    for trial in range(30):
        keep, budget = rng.randint(1, 4), 16 * rng.randint(2, 12)
        cache = PrefixCache(keep=keep, budget_bytes=budget, maximize=trial % 2 == 0)
        for _ in range(40):
            route = tuple(rng.choice("ab") for _ in range(rng.randint(1, 4)))
            held_before = cache.kept
            took = cache.offer(route, rng.random(), stack_for(route))
            held = {r[:d] for r in [*cache.kept, *cache.retired] for d in range(1, len(r) + 1)}
            assert cache.nbytes == 16 * len(held) <= budget
            assert len(cache.kept) <= keep and not set(cache.kept) & set(cache.retired)
            if not took and route not in held_before:
                assert cache.kept == held_before, "a refused route changes nothing"
            if rng.random() < 0.2:  # a call ends
                cache.end_call()
                kept_nodes = {r[:d] for r in cache.kept for d in range(1, len(r) + 1)}
                assert cache.nbytes == 16 * len(kept_nodes) and cache.retired == []


def test_a_parent_pushed_out_keeps_its_states_until_the_call_ends():
    cache = PrefixCache(keep=1, budget_bytes=10_000)
    parent, better = ("a", "b", "c"), ("x", "y")
    cache.offer(parent, 1.0, stack_for(parent))
    cache.end_call()
    assert cache.offer(better, 2.0, stack_for(better))
    assert cache.kept == {better: 2.0} and cache.retired == [parent]
    assert len(cache.resume(parent, 0)) == 3, "later routes of the call may still resume from it"
    cache.end_call()
    assert cache.resume(parent, 0) == [] and cache.nbytes == 2 * 16


def test_a_route_pushed_out_in_the_call_that_offered_it_goes_at_once():
    cache = PrefixCache(keep=1, budget_bytes=10_000)
    parent, first, second = ("a",), ("b", "c"), ("d",)
    cache.offer(parent, 1.0, stack_for(parent))
    cache.end_call()
    cache.offer(first, 2.0, stack_for(first))
    cache.offer(second, 3.0, stack_for(second))
    assert cache.kept == {second: 3.0} and cache.retired == [parent]
    assert cache.resume(first, 0) == [] and cache.nbytes == 2 * 16


def test_retired_states_go_first_when_bytes_are_needed():
    cache = PrefixCache(keep=2, budget_bytes=6 * 16)
    a, b, c, d = ("a", "a"), ("b", "b"), ("c", "c"), ("d", "d")
    cache.offer(a, 1.0, stack_for(a))
    cache.offer(b, 2.0, stack_for(b))
    cache.end_call()
    cache.offer(c, 3.0, stack_for(c))
    assert cache.retired == [a] and cache.nbytes == 6 * 16
    assert cache.offer(d, 4.0, stack_for(d))
    assert cache.retired == [b], "the oldest retired route made room"
    assert cache.nbytes == 6 * 16 and cache.resume(a, 0) == []


def test_a_retired_route_offered_again_is_kept_again():
    cache = PrefixCache(keep=1, budget_bytes=10_000)
    a, b = ("a", "b"), ("c",)
    cache.offer(a, 1.0, stack_for(a))
    cache.end_call()
    cache.offer(b, 2.0, stack_for(b))
    assert cache.retired == [a]
    assert cache.offer(a, 3.0, stack_for(a))
    assert cache.kept == {a: 3.0} and cache.retired == [] and cache.nbytes == 2 * 16
