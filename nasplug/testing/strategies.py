"""Contract suites for strategies: one objective and several."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nasplug.arch import arch_key
from nasplug.errors import NasplugError
from nasplug.objectives import Objective
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy


class _StrategyFixtures:
    """The fixtures both strategy contracts take: a small toy space, and the subclass's factory."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        from nasplug.spaces.toy import ToySpace

        return ToySpace(slots=6, seed=0)

    @pytest.fixture
    def make_strategy(self) -> Callable[[SearchSpace, int], Strategy]:
        raise NotImplementedError("define a `make_strategy` fixture: (space, seed) -> Strategy")


class StrategyContract(_StrategyFixtures):
    """Promises every Strategy keeps. Provide ``make_strategy(space, seed)`` and ``space``."""

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


class MultiObjectiveStrategyContract(_StrategyFixtures):
    """Promises every Strategy keeps when a search has two objectives (the toy space's
    ``score``, maximised, against its ``params``, minimised). Provide ``make_strategy(space,
    seed)``. A strategy that optimises one objective (``vector_tell = False``) must refuse two
    in one line (:meth:`Strategy.set_objectives`); the other promises are then skipped."""

    OBJECTIVES = (Objective("score", "maximize"), Objective("params", "minimize"))

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
