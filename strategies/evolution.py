"""Evolutionary search: SPOS-style generations, and regularized (aging) evolution.

``Evolution`` follows single-path one-shot NAS (Guo et al., ECCV 2020): a random first
population, then each generation takes the top-k archs found so far as parents and makes
``mutations`` mutants and ``crossovers`` crossovers, refilling with random archs when no new
valid child turns up. Defaults are the SPOS reference values: population 50, top-10
parents, 25 + 25 children, mutation probability 0.1, 20 generations.

With two or more objectives ``Evolution`` is NSGA-II-style (Deb et al., 2002): the parent
pool is the ``parents`` best archs scored so far by non-dominated sorting and crowding
distance ((mu + lambda) survival: the pool and the generation's new archs compete), and each
parent of a mutation or crossover is the better of two drawn from the pool (binary
tournament). Rejected and failed archs are constraint-dominated by every scored one: they
never enter the pool. With one objective it is exactly the SPOS evolution above.

``RegularizedEvolution`` is aging evolution (Real et al., AAAI 2019): tournament selection
from a sliding window of the most recent archs; the oldest dies each step.
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import count
from typing import Annotated

from pydantic import Field

from nasplug.arch import Arch, arch_key
from nasplug.errors import NasplugError
from nasplug.pareto import losses, select
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.strategy import Strategy, Told

#: A population-like setting: at least 1; the bound is far beyond any search, small enough never to hang.
Size = Annotated[int, Field(ge=1, le=1_000_000)]
#: A number of children of one kind per generation (the sum is checked against the population).
Children = Annotated[int, Field(ge=0, le=1_000_000)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class Evolution(Strategy):
    """Generational evolution with a top-k parent pool (SPOS defaults); NSGA-II-style with
    several objectives (see the module docstring)."""

    name = "evolution"
    vector_tell = True

    @checked("strategy")
    def __init__(self, space: SearchSpace, seed: int = 0, population: Size = 50, parents: Size = 10,
                 mutations: Children = 25, crossovers: Children = 25, mutation_prob: Probability = 0.1,
                 generations: Size = 20, max_tries: Size = 50) -> None:
        super().__init__(space, seed)
        if mutations + crossovers > population:  # the one bound that depends on another argument
            raise NasplugError(f"strategy.mutations + crossovers: must be at most population ({population}), "
                               f"got {mutations} + {crossovers}")
        self.population, self.parents = population, parents
        self.mutations, self.crossovers, self.mutation_prob = mutations, crossovers, mutation_prob
        self.generations, self.max_tries = generations, max_tries
        self.generation = 0
        self.queue: deque[tuple[Arch, str]] = deque()
        self.origin: dict[str, str] = {}  # key -> "random" / "mutation" / "crossover", current generation
        self.seen: set[str] = set()
        self.top: list[tuple[float, int, Arch]] = []  # min-heap of (score, -order, arch), size <= parents
        self.order = count()
        self.replacements_left = 0
        # several objectives: the pool (best first) and the archs scored since it was chosen
        self.pool: list[tuple[tuple[float, ...], Arch]] = []
        self.newcomers: list[tuple[tuple[float, ...], Arch]] = []

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def memory_hint(self) -> int:
        """Children are bred from the ``parents`` best archs scored so far."""
        return self.parents

    # ------------------------------------------------------------------ ask/tell
    def ask(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` children of the current generation (fewer at a generation's end)."""
        if not self.queue and self.generation < self.generations:
            self._next_generation()
        out = []
        while self.queue and len(out) < n:
            out.append(self.queue.popleft()[0])
        return out

    def tell(self, arch: Arch, score: Told) -> None:
        key = arch_key(arch)
        self.seen.add(key)
        values = self.told_values(score)
        if values is None:
            origin = self.origin.get(key)
            if origin is not None and self.replacements_left > 0:  # skip it: propose another like it
                self.replacements_left -= 1
                self._enqueue([self._child(origin)])
            return
        if self.multi:
            self.newcomers.append((losses(self.objectives, values), arch))
            return
        item = (self.objectives[0].sign * values[0], -next(self.order), arch)
        if len(self.top) < self.parents:
            heapq.heappush(self.top, item)
        elif item[:2] > self.top[0][:2]:
            heapq.heapreplace(self.top, item)

    # ------------------------------------------------------------------ generations
    def _next_generation(self) -> None:
        self.generation += 1
        self.origin.clear()
        self.replacements_left = 10 * self.population
        if self.multi:  # NSGA-II survival over the pool and the archs scored since
            candidates = self.pool + self.newcomers
            self.pool = [candidates[i] for i in select([c[0] for c in candidates], self.parents)]
            self.newcomers = []
        if not self.top and not self.pool:  # first generation (or nothing scored yet): all random
            self._enqueue([self._child("random") for _ in range(self.population)])
            return
        children = [self._child("mutation") for _ in range(self.mutations)]
        children += [self._child("crossover") for _ in range(self.crossovers)]
        children += [self._child("random") for _ in range(self.population - len(children))]
        self._enqueue(children)

    def _enqueue(self, children: list[tuple[Arch, str] | None]) -> None:
        for child in children:
            if child is not None:
                self.queue.append(child)

    def _child(self, origin: str) -> tuple[Arch, str] | None:
        """A new valid arch made by ``origin``; falls back to random, None if the space is spent."""
        if self.multi:
            parents = [arch for _, arch in self.pool]
        else:
            parents = [arch for _, _, arch in sorted(self.top, reverse=True)]
        for kind in (origin, "random") if origin != "random" else ("random",):
            for _ in range(self.max_tries):
                if kind == "mutation" and parents:
                    child = self.space.mutate(self._pick(parents), self.rng, self.mutation_prob)
                elif kind == "crossover" and len(parents) >= 2:
                    a, b = (self._pick(parents), self._pick(parents)) if self.multi else self.rng.sample(parents, 2)
                    child = self.space.crossover(a, b, self.rng)
                elif kind == "random":
                    child = self.space.sample(self.rng)
                else:
                    break
                key = arch_key(child)
                if key not in self.seen and self.space.is_valid(child):
                    self.seen.add(key)
                    self.origin[key] = origin
                    return child, origin
        return None

    def _pick(self, parents: list[Arch]) -> Arch:
        """One parent: uniform (one objective, as SPOS), or NSGA-II's binary tournament on the
        pool ordered best first (several objectives)."""
        if not self.multi:
            return self.rng.choice(parents)
        return parents[min(self.rng.randrange(len(parents)), self.rng.randrange(len(parents)))]


class RegularizedEvolution(Strategy):
    """Aging evolution: mutate the best of ``sample_size`` random members; the oldest dies."""

    name = "regularized"

    @checked("strategy")
    def __init__(self, space: SearchSpace, seed: int = 0, population: Size = 50, sample_size: Size = 10,
                 mutation_prob: Probability = 0.1, max_tries: Size = 50) -> None:
        super().__init__(space, seed)
        if sample_size > population:  # the one bound that depends on another argument
            raise NasplugError(f"strategy.sample_size: must be at most population ({population}), got {sample_size}")
        self.population_size, self.sample_size = population, sample_size
        self.mutation_prob, self.max_tries = mutation_prob, max_tries
        self.population: deque[tuple[Arch, float]] = deque()
        self.seen: set[str] = set()
        self.proposed = 0

    def ask(self, n: int = 1) -> list[Arch]:
        out = []
        for _ in range(n):
            self.proposed += 1
            if self.proposed <= self.population_size or not self.population:
                out.append(self._fresh(lambda: self.space.sample(self.rng)))
                continue
            members = list(self.population)
            contenders = self.rng.sample(members, min(self.sample_size, len(members)))
            parent = max(contenders, key=lambda m: m[1])[0]
            out.append(self._fresh(lambda parent=parent: self.space.mutate(parent, self.rng, self.mutation_prob)))
        return out

    def tell(self, arch: Arch, score: Told) -> None:
        self.seen.add(arch_key(arch))
        if score is None:
            return
        if not isinstance(score, (int, float)):
            raise TypeError("regularized evolution optimises one objective: tell it one number (higher is better)")
        self.population.append((arch, float(score)))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def _fresh(self, make) -> Arch:  # type: ignore[no-untyped-def]
        """A valid arch from ``make`` not proposed before, if one turns up in max_tries."""
        child = make()
        for _ in range(self.max_tries):
            if arch_key(child) not in self.seen and self.space.is_valid(child):
                break
            child = make()
        if not self.space.is_valid(child):
            child = self.space.sample(self.rng)
        self.seen.add(arch_key(child))
        return child
