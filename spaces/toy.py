"""The toy space: a template to copy and the fast test bed.

``slots`` positions each pick one of four small ops. The objective is analytic: a per-slot
term plus an interaction between neighbouring slots, drawn once from ``seed``. The pairwise
terms make it non-separable (the best op for a slot depends on its neighbours), yet the
chain structure gives the exact optimum by dynamic programming, so tests know the answer.

The supernet is real (tiny linear ops on vectors of width ``width``) so the Supernet
contract, ``extract(arch)(x) == supernet.using(arch)(x)``, is exercised cheaply.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn as nn
from pydantic import Field

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet

OPS = ("skip", "linear", "relu", "tanh")


class ToySpace(SearchSpace):
    """``slots`` choices among ``OPS``; objective = unary + neighbour-interaction terms."""

    name = "toy"

    @checked("space")  # the bounds in the signature hold for Python callers too
    def __init__(self, slots: Annotated[int, Field(ge=1, le=32)] = 8, seed: int = 0, interaction: float = 1.0,
                 width: Annotated[int, Field(ge=1)] = 8) -> None:
        self.slots, self.width, self.seed = slots, width, seed
        self._choices = {f"s{i}": OPS for i in range(slots)}
        rng = random.Random(seed)
        k = len(OPS)
        self.unary = [[rng.gauss(0.0, 1.0) for _ in range(k)] for _ in range(slots)]
        self.pair = [
            [[interaction * rng.gauss(0.0, 1.0) for _ in range(k)] for _ in range(k)] for _ in range(slots - 1)
        ]

    def choices(self) -> dict[str, Sequence[str]]:
        return self._choices

    def objective(self, arch: Arch) -> float:
        """The analytic score of ``arch`` (higher is better)."""
        idx = [OPS.index(str(arch[f"s{i}"])) for i in range(self.slots)]
        total = sum(self.unary[i][j] for i, j in enumerate(idx))
        total += sum(self.pair[i][idx[i]][idx[i + 1]] for i in range(self.slots - 1))
        return total

    def optimum(self) -> tuple[Arch, float]:
        """The exact best arch and its score, by dynamic programming along the chain."""
        k = len(OPS)
        best = list(self.unary[0])  # best[j]: best score of slots 0..i with slot i = op j
        back: list[list[int]] = []
        for i in range(1, self.slots):
            step = [max(range(k), key=lambda p, j=j: best[p] + self.pair[i - 1][p][j]) for j in range(k)]
            best = [best[step[j]] + self.pair[i - 1][step[j]][j] + self.unary[i][j] for j in range(k)]
            back.append(step)
        j = max(range(k), key=lambda j: best[j])
        score, idx = best[j], [j]
        for step in reversed(back):
            j = step[j]
            idx.append(j)
        arch = {f"s{i}": OPS[j] for i, j in enumerate(reversed(idx))}
        return arch, score

    def pareto_front(self) -> list[tuple[Arch, float, float]]:
        """The exact front of (``score``: maximised, ``params``: minimised) as ``(arch, score,
        params)``, best score first: for each number of non-skip ops, the best arch with exactly
        that many (dynamic programming along the chain), kept where no smaller model scores as
        well. Scores are :meth:`objective`'s, bit for bit."""
        k, n = len(OPS), self.slots
        best = [[-math.inf] * (n + 1) for _ in range(k)]  # best[j][c]: slots 0..i, slot i = op j, c non-skip
        for j in range(k):
            best[j][int(OPS[j] != "skip")] = self.unary[0][j]
        back: list[list[list[int]]] = []  # back[i-1][j][c]: the op of slot i-1 on that best path
        for i in range(1, n):
            step, pointers = [[-math.inf] * (n + 1) for _ in range(k)], [[0] * (n + 1) for _ in range(k)]
            for j in range(k):
                extra = int(OPS[j] != "skip")
                for c in range(extra, n + 1):
                    q = max(range(k), key=lambda q: best[q][c - extra] + self.pair[i - 1][q][j])
                    step[j][c] = best[q][c - extra] + self.pair[i - 1][q][j] + self.unary[i][j]
                    pointers[j][c] = q
            best = step
            back.append(pointers)
        front: list[tuple[Arch, float, float]] = []
        for c in range(n + 1):  # fewer params first: keep a size only if it scores better
            j = max(range(k), key=lambda j: best[j][c])
            if best[j][c] == -math.inf:
                continue
            ops, count = [j], c
            for pointers in reversed(back):  # slot i's op and count -> slot i-1's op on that path
                previous = pointers[ops[-1]][count]
                count -= int(OPS[ops[-1]] != "skip")
                ops.append(previous)
            arch = {f"s{i}": OPS[o] for i, o in enumerate(reversed(ops))}
            score, params = self.objective(arch), self.metrics(arch)["params"]
            if not front or score > front[-1][1]:
                front.append((arch, score, params))
        return sorted(front, key=lambda p: -p[1])

    def format(self, arch: Arch) -> str:
        """Compact form: the ops in slot order, comma-separated (``skip,linear,...``)."""
        return ",".join(str(arch[key]) for key in self._choices)

    def parse(self, text: str) -> Arch:
        """Accept the compact form or JSON."""
        if text.lstrip().startswith("{"):
            return super().parse(text)
        ops = [op.strip() for op in text.split(",")]
        if len(ops) != self.slots:
            raise NasplugError(f"arch: expected {self.slots} comma-separated ops, got {len(ops)}")
        return self.validate({f"s{i}": op for i, op in enumerate(ops)})

    def metrics(self, arch: Arch) -> dict[str, float]:
        linear = self.width * self.width + self.width
        return {"params": float(sum(linear for v in arch.values() if v != "skip"))}

    def build_supernet(self) -> ToySupernet:
        return ToySupernet(self)

    def build(self, arch: Arch) -> nn.Module:
        self.validate(arch)
        return nn.Sequential(*(make_op(str(arch[f"s{i}"]), self.width) for i in range(self.slots)))


def make_op(op: str, width: int) -> nn.Module:
    """One toy op on vectors of size ``width``: [B, width] -> [B, width]."""
    if op == "skip":
        return nn.Identity()
    if op == "linear":
        return nn.Linear(width, width)
    return nn.Sequential(nn.Linear(width, width), nn.ReLU() if op == "relu" else nn.Tanh())


class ToySupernet(Supernet):
    """Every slot holds all four ops; the active arch picks one per slot."""

    def __init__(self, space: ToySpace) -> None:
        super().__init__()
        self.space = space
        self.slots = nn.ModuleList(
            nn.ModuleDict({op: make_op(op, space.width) for op in OPS}) for _ in range(space.slots)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, width]
        arch = self.require_active()
        for i, slot in enumerate(self.slots):
            x = slot[str(arch[f"s{i}"])](x)
        return x

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor]:
        return (torch.randn(batch, self.space.width, generator=torch.Generator().manual_seed(seed)),)

    def extract(self, arch: Arch) -> nn.Module:
        self.space.validate(arch)
        return nn.Sequential(*(copy.deepcopy(slot[str(arch[f"s{i}"])]) for i, slot in enumerate(self.slots)))


class ToyObjective:
    """Evaluator for the toy space: the analytic objective as ``score``, plus ``params``."""

    #: ``score`` is the analytic objective (higher is better); ``params`` is the space's.
    metric_directions = {"score": "maximize"}

    def __init__(self, space: ToySpace, noise: float = 0.0, seed: int = 0) -> None:
        if not isinstance(space, ToySpace):
            raise NasplugError("evaluator 'toy': needs the toy space (space.name: toy)")
        self.space, self.noise, self.seed = space, noise, seed

    def __call__(self, arch: Arch) -> dict[str, float]:
        score = self.space.objective(arch)
        if self.noise:  # deterministic per arch: the same arch always gets the same noise
            score += random.Random(f"{self.seed}:{sorted(arch.items())}").gauss(0.0, self.noise)
        return {"score": score, **self.space.metrics(arch)}
