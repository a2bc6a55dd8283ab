"""Hidden states of the best archs, kept from one ``evaluate_batch`` call to the next.

Within one call the supernet evaluator already computes every distinct route prefix once.
Across calls, most candidates of a search are close relatives of archs scored earlier:
evolution's children copy their parents up to the first mutated slot, and the parents are
the best archs seen so far. ``PrefixCache`` keeps, for the ``keep`` best-ranked archs,
the hidden state after every prefix of their route, so a child starts from its deepest
cached prefix instead of from the embeddings.

The states are the exact tensors the walk computed, so resuming from them gives the same
arithmetic as running the whole route: metrics stay bit-identical to one-by-one
evaluation. Prefixes shared by kept archs are stored once (reference counts), and the
cache never holds more than ``budget_bytes``: when an arch does not fit, the worst-ranked
kept archs go first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

Route = tuple[str, ...]
States = list[torch.Tensor]  # one hidden state [B, T, H] per lane of the walk


class PrefixCache:
    """``route prefix -> hidden states after it`` for the ``keep`` best archs offered.

    Args:
        keep: how many of the best archs to hold (0: hold nothing).
        budget_bytes: most bytes of hidden states held at once.
        maximize: higher scores rank better (else lower).
    """

    def __init__(self, keep: int, budget_bytes: float, maximize: bool = True) -> None:
        self.keep, self.budget, self.maximize = keep, budget_bytes, maximize
        self._nodes: dict[Route, States] = {}
        self._refs: dict[Route, int] = {}
        self._kept: dict[Route, float] = {}
        self.too_small = False  # set when a route alone exceeded the budget and was refused
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def kept(self) -> dict[Route, float]:
        """The held routes and the scores they were offered with."""
        return dict(self._kept)

    def clear(self) -> None:
        self._nodes.clear()
        self._refs.clear()
        self._kept.clear()
        self.nbytes = 0

    def resume(self, route: Route, depth: int) -> list[States]:
        """The cached states after ``route[:d]`` for d = depth + 1, depth + 2, ... while cached.

        Every prefix of a held route is held, so this is the run of states the walk can
        take instead of computing layers ``depth .. depth + len(result) - 1``.
        """
        found = []
        for d in range(depth + 1, len(route) + 1):
            states = self._nodes.get(route[:d])
            if states is None:
                break
            found.append(states)
        return found

    def offer(self, route: Route, score: float | None, stack: Sequence[States]) -> bool:
        """Hold ``route``'s states (``stack[d]``: after d layers) if it ranks among the best.

        Makes room by dropping held routes ranked below it, worst first, and only when that
        makes it fit; otherwise nothing changes. Returns whether the route is held afterwards.
        """
        if self.keep <= 0 or score is None or not math.isfinite(score) or route in self._kept:
            return route in self._kept
        worse = sorted((r for r, s in self._kept.items() if self._better(score, s)),
                       key=lambda r: self._kept[r], reverse=not self.maximize)  # worst first
        victims = self._victims(route, stack, worse)
        if victims is None:
            return False
        for victim in victims:
            self._drop(victim)
        for d in range(1, len(route) + 1):
            prefix = route[:d]
            if prefix not in self._nodes:
                self._nodes[prefix] = list(stack[d])
                self.nbytes += _nbytes(stack[d])
            self._refs[prefix] = self._refs.get(prefix, 0) + 1
        self._kept[route] = score
        return True

    def rescore(self, scores: dict[Route, float]) -> None:
        """Update held routes' scores (e.g. to final figures once every batch is scored)."""
        for route, score in scores.items():
            if route in self._kept and score is not None and math.isfinite(score):
                self._kept[route] = score

    # ------------------------------------------------------------------ internals
    def _better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def _victims(self, route: Route, stack: Sequence[States], worse: list[Route]) -> list[Route] | None:
        """The fewest of ``worse`` (worst first) to drop so ``route`` fits; None if it can't."""
        prefixes = {route[:d]: d for d in range(1, len(route) + 1)}
        if sum(_nbytes(stack[d]) for d in prefixes.values()) > self.budget:
            self.too_small = True
            return None
        count = len(self._kept) + 1
        total = self.nbytes + sum(_nbytes(stack[d]) for p, d in prefixes.items() if p not in self._nodes)
        refs = dict(self._refs) if worse else self._refs
        for n in range(len(worse) + 1):
            if n:  # what dropping worse[n - 1] frees (nodes the new route shares stay)
                victim = worse[n - 1]
                count -= 1
                for d in range(1, len(victim) + 1):
                    refs[victim[:d]] -= 1
                    if refs[victim[:d]] == 0 and victim[:d] not in prefixes:
                        total -= _nbytes(self._nodes[victim[:d]])
            if count <= self.keep and total <= self.budget:
                return worse[:n]
        return None

    def _drop(self, route: Route) -> None:
        del self._kept[route]
        for d in range(1, len(route) + 1):
            prefix = route[:d]
            self._refs[prefix] -= 1
            if self._refs[prefix] == 0:
                del self._refs[prefix]
                self.nbytes -= _nbytes(self._nodes.pop(prefix))


def _nbytes(states: States) -> int:
    return sum(t.numel() * t.element_size() for t in states)
