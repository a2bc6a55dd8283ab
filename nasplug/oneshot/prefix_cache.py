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
kept archs go first. Archs kept from earlier calls and pushed out of the best during a call
keep their states until the call ends (budget permitting): the call's later routes may still
resume from them.
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

    A route held since an earlier call and pushed out of the best by a newcomer is
    *retired*, not dropped: its states stay (within the budget) until :meth:`end_call`,
    because later routes of the same ``evaluate_batch`` call may still resume from it (a
    parent whose first child ranks above it still has children to come). Retired states go
    first when bytes are needed. A route offered in this call and pushed out in it is
    dropped at once: the call's later routes sort after it and never come back to it.
    """

    def __init__(self, keep: int, budget_bytes: float, maximize: bool = True) -> None:
        self.keep, self.budget, self.maximize = keep, budget_bytes, maximize
        self._nodes: dict[Route, States] = {}
        self._refs: dict[Route, int] = {}  # routes (kept or retired) holding each node
        self._kept_refs: dict[Route, int] = {}  # kept routes holding each node
        self._kept: dict[Route, float] = {}
        self._retired: dict[Route, None] = {}  # in the order they were retired
        self._from_earlier_calls: set[Route] = set()  # kept when the current call began
        self.too_small = False  # set when a route alone exceeded the budget and was refused
        self.nbytes = 0  # every node held
        self._kept_nbytes = 0  # nodes some kept route holds

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def kept(self) -> dict[Route, float]:
        """The held routes and the scores they were offered with."""
        return dict(self._kept)

    @property
    def retired(self) -> list[Route]:
        """Routes pushed out of the best whose states are still held, oldest first."""
        return list(self._retired)

    def clear(self) -> None:
        for table in (self._nodes, self._refs, self._kept_refs, self._kept, self._retired, self._from_earlier_calls):
            table.clear()
        self.nbytes = self._kept_nbytes = 0

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

        Makes room by pushing out held routes ranked below it, worst first, and only when
        that makes it fit; otherwise nothing changes. Returns whether the route is held
        afterwards.
        """
        if self.keep <= 0 or score is None or not math.isfinite(score) or route in self._kept:
            return route in self._kept
        worse = sorted((r for r, s in self._kept.items() if self._better(score, s)),
                       key=lambda r: self._kept[r], reverse=not self.maximize)  # worst first
        victims = self._victims(route, stack, worse)
        if victims is None:
            return False
        for victim in victims:
            if victim in self._from_earlier_calls:
                self._retire(victim)
            else:
                self._drop(victim)
        if route in self._retired:  # back among the best: hold it as a kept route again
            self._release(route)
        for d in range(1, len(route) + 1):
            prefix = route[:d]
            if prefix not in self._nodes:
                self._nodes[prefix] = list(stack[d])
                self.nbytes += _nbytes(stack[d])
            self._refs[prefix] = self._refs.get(prefix, 0) + 1
            if prefix not in self._kept_refs:
                self._kept_nbytes += _nbytes(self._nodes[prefix])
            self._kept_refs[prefix] = self._kept_refs.get(prefix, 0) + 1
        self._kept[route] = score
        while self.nbytes > self.budget:  # kept nodes fit (_victims saw to it): free retired ones
            self._release(next(iter(self._retired)))
        return True

    def rescore(self, scores: dict[Route, float | None]) -> None:
        """Update held routes' scores (e.g. to final figures once every batch is scored)."""
        for route, score in scores.items():
            if route in self._kept and score is not None and math.isfinite(score):
                self._kept[route] = score

    def end_call(self) -> None:
        """At the end of an ``evaluate_batch`` call: drop the retired routes' states; the
        routes held now are the ones the next call's routes may resume from."""
        while self._retired:
            self._release(next(iter(self._retired)))
        self._from_earlier_calls = set(self._kept)

    # ------------------------------------------------------------------ internals
    def _better(self, a: float, b: float) -> bool:
        return a > b if self.maximize else a < b

    def _victims(self, route: Route, stack: Sequence[States], worse: list[Route]) -> list[Route] | None:
        """The fewest of ``worse`` (worst first) to retire so ``route`` fits beside the kept
        routes (retired states can always be freed); None if it can't."""
        prefixes = {route[:d]: d for d in range(1, len(route) + 1)}
        if sum(_nbytes(stack[d]) for d in prefixes.values()) > self.budget:
            self.too_small = True
            return None
        count = len(self._kept) + 1
        total = self._kept_nbytes + sum(_nbytes(stack[d]) for p, d in prefixes.items() if p not in self._kept_refs)
        refs = dict(self._kept_refs) if worse else self._kept_refs
        for n in range(len(worse) + 1):
            if n:  # what retiring worse[n - 1] frees (nodes the new route shares stay)
                victim = worse[n - 1]
                count -= 1
                for d in range(1, len(victim) + 1):
                    refs[victim[:d]] -= 1
                    if refs[victim[:d]] == 0 and victim[:d] not in prefixes:
                        total -= _nbytes(self._nodes[victim[:d]])
            if count <= self.keep and total <= self.budget:
                return worse[:n]
        return None

    def _retire(self, route: Route) -> None:
        del self._kept[route]
        self._retired[route] = None
        for d in range(1, len(route) + 1):
            prefix = route[:d]
            self._kept_refs[prefix] -= 1
            if self._kept_refs[prefix] == 0:
                del self._kept_refs[prefix]
                self._kept_nbytes -= _nbytes(self._nodes[prefix])

    def _release(self, route: Route) -> None:
        del self._retired[route]
        for d in range(1, len(route) + 1):
            prefix = route[:d]
            self._refs[prefix] -= 1
            if self._refs[prefix] == 0:
                del self._refs[prefix]
                self.nbytes -= _nbytes(self._nodes.pop(prefix))

    def _drop(self, route: Route) -> None:
        self._retire(route)
        self._release(route)


def _nbytes(states: States) -> int:
    return sum(t.numel() * t.element_size() for t in states)
