"""Contract test suites that plugin authors reuse (like optuna.testing's sampler suites).

Subclass in your own tests and provide the fixtures::

    from nasplug.testing import SpaceContract

    class TestMySpace(SpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace(slots=4)

Every test here states one promise of the interface; a space, strategy or evaluator plugin
that breaks it fails with a message naming the promise.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

try:
    import pytest
except ImportError:  # the suites are pytest classes; the rest of nasplug does not need pytest
    raise ImportError("nasplug.testing needs pytest (pip install pytest, or nasplug[dev])") from None

from nasplug.arch import Arch, arch_from_json, arch_key, arch_to_json
from nasplug.errors import NasplugError
from nasplug.objectives import Objective
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy

#: Spaces with at most this many arch names have their models counted by brute force.
BRUTE_FORCE_LIMIT = 50_000


class SpaceContract:
    """Promises every SearchSpace keeps. Provide a ``space`` fixture."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        raise NotImplementedError("define a `space` fixture returning the space under test")

    def test_choices_are_named_and_nonempty(self, space: SearchSpace) -> None:
        choices = space.choices()
        assert choices, "a space needs at least one choice"
        for key, options in choices.items():
            assert isinstance(key, str) and len(options) >= 1
            assert len(set(map(repr, options))) == len(options), f"choice {key} repeats an option"

    def test_samples_are_valid_and_seeded(self, space: SearchSpace) -> None:
        first = [space.sample(random.Random(7)) for _ in range(5)]
        again = [space.sample(random.Random(7)) for _ in range(5)]
        assert [arch_key(a) for a in first] == [arch_key(a) for a in again], "same seed must give the same samples"
        for arch in first:
            assert space.validate(arch) == arch

    def test_validate_names_the_problem(self, space: SearchSpace) -> None:
        arch = space.sample(random.Random(0))
        key = next(iter(arch))
        missing = {k: v for k, v in arch.items() if k != key}
        with pytest.raises(NasplugError, match=key):
            space.validate(missing)
        with pytest.raises(NasplugError, match="no_such_choice"):
            space.validate({**arch, "no_such_choice": 1})
        with pytest.raises(NasplugError, match=key):
            space.validate({**arch, key: "__not_an_option__"})

    def test_mutate_and_crossover_stay_in_the_choices(self, space: SearchSpace) -> None:
        rng = random.Random(1)
        a, b = space.sample(rng), space.sample(rng)
        for child in (space.mutate(a, rng, 0.5), space.crossover(a, b, rng)):
            assert set(child) == set(space.choices())
            for key, value in child.items():
                assert value in space.choices()[key]
        assert space.mutate(a, rng, 0.0) == a, "mutation with p=0 must not change the arch"

    def test_arch_text_round_trips(self, space: SearchSpace) -> None:
        arch = space.sample(random.Random(2))
        assert arch_from_json(arch_to_json(arch)) == arch
        assert space.parse(space.format(arch)) == arch

    def test_size_counts_the_models(self, space: SearchSpace) -> None:
        total = 1
        for options in space.choices().values():
            total *= len(options)
        if not space.conditions():
            assert space.size() == total
        elif total <= BRUTE_FORCE_LIMIT:
            distinct = {arch_key(space.canonical(dict(zip(space.choices(), values))))
                        for values in itertools.product(*space.choices().values())}
            assert space.size() == len(distinct), "size() must count distinct models (canonical archs)"
        else:
            pytest.skip(f"{total:,} arch names: too many to count by brute force")

    def test_canonical_names_one_model_once(self, space: SearchSpace) -> None:
        rng = random.Random(3)
        choices = space.choices()
        for _ in range(20):
            raw = {key: rng.choice(list(options)) for key, options in choices.items()}
            once = space.canonical(raw)
            assert set(once) == set(choices) and space.canonical(once) == once, "canonical() must be idempotent"
        a, b = space.sample(rng), space.sample(rng)
        for arch in (a, space.mutate(a, rng, 0.5), space.crossover(a, b, rng)):
            assert space.canonical(arch) == arch, "sample, mutate and crossover must return canonical archs"

    def test_one_canonical_form_builds_one_model(self, space: SearchSpace) -> None:
        if not space.conditions():
            pytest.skip("space has no conditional choices")
        try:
            space.build_supernet()
        except NotImplementedError:
            pytest.skip("space has no supernet")
        check_canonical_models(space)

    def test_supernet_extract_matches_routed_forward(self, space: SearchSpace) -> None:
        try:
            space.build_supernet()
        except NotImplementedError:
            pytest.skip("space has no supernet")
        check_extract_matches(space)


def archs_covering_every_option(space: SearchSpace, seed: int = 0, tries: int = 500) -> list[Arch]:
    """Valid archs such that every option of every choice appears in at least one (options
    the space's constraints exclude everywhere are left out)."""
    rng = random.Random(seed)
    archs: dict[str, Arch] = {}
    for key, options in space.choices().items():
        for option in options:
            arch = {**space.sample(rng), key: option}
            for _ in range(tries):
                if space.is_valid(arch):
                    archs.setdefault(arch_key(arch), arch)
                    break
                arch = space.sample(rng)
                if arch[key] != option:
                    arch = {**arch, key: option}
    return list(archs.values())


def randomize_state(module: Any, seed: int = 0) -> None:
    """Give every parameter and floating-point buffer random values (running variances stay
    positive), as training would: a supernet fresh from its constructor has BatchNorm
    statistics of 0 and 1 that a broken ``extract`` would reproduce by accident."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        for name, buffer in module.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
            elif name.endswith("num_batches_tracked"):
                buffer.fill_(7)


def check_extract_matches(space: SearchSpace, seed: int = 0) -> None:
    """``extract(arch)(x) == supernet.using(arch)(x)`` exactly, in eval mode, with trained-like
    (random) weights and buffers, for archs covering every option of every choice."""
    import torch

    supernet = space.build_supernet()
    randomize_state(supernet, seed)
    supernet.eval()
    for i, arch in enumerate(archs_covering_every_option(space, seed)):
        inputs = supernet.example_input(batch=2, seed=seed + i)
        with torch.no_grad(), supernet.using(arch):
            routed = supernet(*inputs)
        standalone = supernet.extract(arch).eval()
        with torch.no_grad():
            alone = standalone(*inputs)
        routed_t = routed if isinstance(routed, torch.Tensor) else routed[0]
        alone_t = alone if isinstance(alone, torch.Tensor) else getattr(alone, "last_hidden_state", alone[0])
        assert torch.equal(routed_t, alone_t), (
            f"extract(arch)(x) must equal supernet.using(arch)(x) exactly (weights and buffers, e.g. BatchNorm "
            f"statistics, included); they differ for {space.format(arch)} by "
            f"{(routed_t.float() - alone_t.float()).abs().max().item():.3g}")


def renamed(space: SearchSpace, arch: Arch, rng: random.Random) -> Arch:
    """``arch`` with every inactive choice redrawn: another name of the same model."""
    from nasplug.conditions import active

    flags = active(space, arch)
    return {key: value if flags[key] else rng.choice(list(space.choices()[key])) for key, value in arch.items()}


def check_canonical_models(space: SearchSpace, seed: int = 0, archs: int = 6) -> None:
    """Archs with one canonical form build one model: with trained-like (random) weights, the
    routed supernet and the extracted model give exactly the same output under every name."""
    import torch

    supernet = space.build_supernet()
    randomize_state(supernet, seed)
    supernet.eval()
    rng = random.Random(seed)
    for i in range(archs):
        arch = space.sample(rng)
        other = renamed(space, arch, rng)
        assert space.canonical(other) == arch, f"{space.format(other)} must have the canonical form {arch}"
        inputs = supernet.example_input(batch=2, seed=seed + i)
        outputs = []
        for name in (arch, other):
            with torch.no_grad(), supernet.using(name):
                routed = supernet(*inputs)
            alone = supernet.extract(name).eval()
            with torch.no_grad():
                outputs += [_first(routed), _first(alone(*inputs))]
        for out in outputs[1:]:
            assert torch.equal(outputs[0], out), (
                f"{space.format(arch)} and {space.format(other)} have one canonical form but build different models")


def _first(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    hidden = getattr(out, "last_hidden_state", None)
    return out[0] if hidden is None else hidden


class StrategyContract:
    """Promises every Strategy keeps. Provide ``make_strategy(space, seed)`` and ``space``."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        from nasplug.spaces.toy import ToySpace

        return ToySpace(slots=6, seed=0)

    @pytest.fixture
    def make_strategy(self) -> Callable[[SearchSpace, int], Strategy]:
        raise NotImplementedError("define a `make_strategy` fixture: (space, seed) -> Strategy")

    @staticmethod
    def _drive(strategy: Strategy, space: SearchSpace, rounds: int, batch: int) -> list[str]:
        """Ask/tell like the search loop, scoring with a fixed pseudo-objective."""
        keys = []
        for _ in range(rounds):
            archs = strategy.ask(batch)
            for arch in archs:
                keys.append(arch_key(arch))
                strategy.tell(arch, float(sum(len(str(v)) * (i + 1) for i, v in enumerate(arch.values()))))
        return keys

    def test_asks_are_valid_archs(self, make_strategy: Callable[..., Strategy], space: SearchSpace) -> None:
        strategy = make_strategy(space, 0)
        archs = strategy.ask(5)
        assert 1 <= len(archs) <= 5
        for arch in archs:
            space.validate(arch)

    def test_same_seed_same_proposals(self, make_strategy: Callable[..., Strategy], space: SearchSpace) -> None:
        a = self._drive(make_strategy(space, 3), space, rounds=6, batch=4)
        b = self._drive(make_strategy(space, 3), space, rounds=6, batch=4)
        assert a == b, "a strategy must be deterministic for a seed and a sequence of tells"

    def test_memory_hint_is_a_count_or_none(self, make_strategy: Callable[..., Strategy], space: SearchSpace) -> None:
        hint = make_strategy(space, 0).memory_hint()
        assert hint is None or (isinstance(hint, int) and not isinstance(hint, bool) and hint >= 0), \
            f"memory_hint() must be None or a count of archs, got {hint!r}"

    def test_survives_failed_trials(self, make_strategy: Callable[..., Strategy], space: SearchSpace) -> None:
        strategy = make_strategy(space, 0)
        for _ in range(3):
            for arch in strategy.ask(4):
                strategy.tell(arch, None)
        for arch in strategy.ask(2):
            space.validate(arch)

    def test_finds_good_archs_with_the_search_loop(
        self, make_strategy: Callable[..., Strategy], space: SearchSpace
    ) -> None:
        from nasplug.search import search
        from nasplug.spaces.toy import ToyObjective, ToySpace

        if not isinstance(space, ToySpace):
            pytest.skip("needs the toy objective")
        result = search(make_strategy(space, 0), ToyObjective(space), budget=40, archs_per_ask=8)
        assert len(result.scored) == 40
        assert result.best is not None and result.best.score is not None


class MultiObjectiveStrategyContract:
    """Promises every Strategy keeps when a search has two objectives (the toy space's
    ``score``, maximised, against its ``params``, minimised). Provide ``make_strategy(space,
    seed)``. A strategy that optimises one objective (``vector_tell = False``) must refuse two
    in one line (:meth:`Strategy.set_objectives`); the other promises are then skipped."""

    OBJECTIVES = (Objective("score", "maximize"), Objective("params", "minimize"))

    @pytest.fixture
    def space(self) -> SearchSpace:
        from nasplug.spaces.toy import ToySpace

        return ToySpace(slots=6, seed=0)

    @pytest.fixture
    def make_strategy(self) -> Callable[[SearchSpace, int], Strategy]:
        raise NotImplementedError("define a `make_strategy` fixture: (space, seed) -> Strategy")

    def _search(self, make: Callable[..., Strategy], space: SearchSpace, seed: int, log: Any = None,
                resume: bool = False, budget: int = 40, reject: bool = False) -> Any:
        from nasplug.search import search
        from nasplug.spaces.toy import ToyObjective

        strategy = make(space, seed)
        if not strategy.vector_tell:
            pytest.skip(f"{type(strategy).__name__} optimises one objective")
        constraints = [lambda a: "s0 is skip" if a["s0"] == "skip" else None] if reject else []
        return search(strategy, ToyObjective(space), budget, objectives=self.OBJECTIVES, archs_per_ask=8,
                      constraints=constraints, log_path=log, resume=resume)

    def test_two_objectives_are_taken_or_refused_in_one_line(self, make_strategy: Callable[..., Strategy],
                                                             space: SearchSpace) -> None:
        strategy = make_strategy(space, 0)
        if strategy.vector_tell:
            strategy.set_objectives(self.OBJECTIVES)
            assert strategy.objectives == self.OBJECTIVES
            return
        with pytest.raises(NasplugError) as exc:
            strategy.set_objectives(self.OBJECTIVES)
        assert "optimises one objective" in str(exc.value) and "\n" not in str(exc.value)

    def test_same_seed_same_trials(self, make_strategy: Callable[..., Strategy], space: SearchSpace,
                                   tmp_path: Any) -> None:
        self._search(make_strategy, space, 3, tmp_path / "a.jsonl")
        self._search(make_strategy, space, 3, tmp_path / "b.jsonl")
        assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes(), \
            "a strategy must be deterministic for a seed and a sequence of tells"

    def test_resume_by_replay_gives_the_same_trials(self, make_strategy: Callable[..., Strategy],
                                                    space: SearchSpace, tmp_path: Any) -> None:
        full, cut = tmp_path / "full.jsonl", tmp_path / "cut.jsonl"
        self._search(make_strategy, space, 1, full, reject=True)
        cut.write_bytes(b"".join(full.read_bytes().splitlines(keepends=True)[:19]))  # mid-batch, as a crash leaves it
        self._search(make_strategy, space, 1, cut, resume=True, reject=True)
        assert cut.read_bytes() == full.read_bytes(), "a replayed strategy must propose what it proposed before"

    def test_rejected_archs_are_survived_and_never_scored(self, make_strategy: Callable[..., Strategy],
                                                          space: SearchSpace) -> None:
        result = self._search(make_strategy, space, 2, reject=True, budget=32)
        assert len(result.scored) == 32, "the search must reach its budget while a constraint rejects archs"
        assert all(t.arch["s0"] != "skip" for t in result.scored)
        assert all(t.arch["s0"] != "skip" for t in result.front()), "a rejected arch is never on the front"


class EvaluatorPluginContract:
    """Promises every :class:`~nasplug.pipeline.evaluator_plugin.EvaluatorPlugin` keeps.

    Provide ``plugin`` (built with its settings) and ``ctx``: a ``RunContext`` of a recipe it
    scores; for a plugin that ``needs_context``, one whose run directory holds what earlier
    stages wrote (e.g. a trained supernet). A plugin that does not declare ``needs_context``
    is built once more in an empty run directory: it must not need the run's outputs.
    """

    @pytest.fixture
    def plugin(self) -> Any:
        raise NotImplementedError("define a `plugin` fixture returning the EvaluatorPlugin under test")

    @pytest.fixture
    def ctx(self) -> Any:
        raise NotImplementedError("define a `ctx` fixture: the RunContext of a run the plugin scores")

    @staticmethod
    def _archs(ctx: Any, n: int = 3) -> list[Arch]:
        rng = random.Random(0)
        return [ctx.space.sample(rng) for _ in range(n)]

    def test_check_accepts_the_run(self, plugin: Any, ctx: Any) -> None:
        plugin.check(ctx)

    def test_metrics_are_finite_numbers_and_deterministic(self, plugin: Any, ctx: Any) -> None:
        import math

        archs = self._archs(ctx)
        first = [dict(plugin.build(ctx)(a)) for a in archs]
        for metrics in first:
            assert metrics and all(isinstance(k, str) for k in metrics)
            assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values()), metrics
        assert [dict(plugin.build(ctx)(a)) for a in archs] == first, "the same arch must get the same metrics"

    def test_optional_abilities_keep_their_promises(self, plugin: Any, ctx: Any) -> None:
        from nasplug.evaluate import BatchEvaluator, Closeable

        archs = self._archs(ctx)
        evaluator = plugin.build(ctx, memory_hint=2)
        alone = [dict(evaluator(a)) for a in archs]
        if isinstance(evaluator, BatchEvaluator):
            assert [dict(m) for m in evaluator.evaluate_batch(archs)] == alone, "evaluate_batch must equal one by one"
        closeable = isinstance(evaluator, Closeable)
        if closeable:
            evaluator.close()
            assert [dict(evaluator(a)) for a in archs] == alone, "a closed evaluator still scores the same"

    def test_needs_context_is_declared(self, plugin: Any, ctx: Any, tmp_path: Any) -> None:
        from nasplug.pipeline import RunContext

        if plugin.needs_context:
            pytest.skip("reads the run directory, as it declares")
        bare = RunContext(recipe=ctx.recipe, run_dir=tmp_path / "empty", progress=False)
        arch = self._archs(ctx, 1)[0]
        assert dict(plugin.build(bare)(arch)) == dict(plugin.build(ctx)(arch))
