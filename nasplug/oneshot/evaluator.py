"""The inherited-weights evaluator: score an arch with the weights of a trained supernet.

Candidates are compared on identical inputs: the task's fixed held-out batches (for text:
masked once, same positions and replacements for every arch). Metrics are the task's
held-out figures plus the space's analytic ones (``params``, ``flops``).

Optional BatchNorm recalibration (SPOS, Guo et al. 2020): the running statistics a supernet
accumulated while training mixed every path, so before scoring an arch its BatchNorm layers
are reset and re-estimated on a few fixed training batches through that arch (the weights do
not change, and the supernet's own statistics are restored afterwards).

Shared-prefix evaluation, where the supernet exposes its layers (:class:`LayeredSupernet`:
``route(arch) -> kinds``, ``embed(...)``, ``run_layer(i, kind, hidden, ...)``; LV-BERT does)
and the task gives its runs as lanes (:class:`PrefixLaneTask`: ``task.prefix_lanes``): archs
that agree on their first k layers also agree on the hidden states after layer k.
``evaluate_batch`` sorts the routes, walks them like a prefix tree (a stack of hidden
states, one per depth) and runs only the layers past the common prefix with the previous
route. Across calls, a :class:`~nasplug.oneshot.prefix_cache.PrefixCache` per held-out batch keeps the states of the
best archs scored so far, so evolution's children start from their parents' states. The
arithmetic is the same, call for call, as running each arch alone, so the metrics are
bit-identical to one-by-one evaluation.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

import torch
from pydantic import Field

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.hardware import resolve_precision
from nasplug.oneshot.prefix_cache import PrefixCache, Route
from nasplug.oneshot.recalibrate import BatchNormRecalibration
from nasplug.registry import checked
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet
from nasplug.task import Sums, Task, add_sums

log = logging.getLogger(__name__)


@runtime_checkable
class LayeredSupernet(Protocol):
    """A supernet that exposes its layers, so archs sharing a route prefix share its states.

    LV-BERT's supernet is one; a supernet that hides them (the few-shot split sets them to
    None: its copies share no embedding) is scored one arch at a time, with the same results.
    """

    def route(self, arch: Arch) -> Sequence[str]:
        """The layer kinds ``arch`` runs, in order (its route through the layers)."""
        ...

    def embed(self, *inputs: Any) -> Any:
        """Hidden states before the first layer, from a lane's ``embed_args``."""
        ...

    def run_layer(self, index: int, kind: str, hidden: Any, *args: Any) -> Any:
        """Hidden states after layer ``index`` run as ``kind``, from a lane's ``layer_args``."""
        ...


@runtime_checkable
class PrefixLaneTask(Protocol):
    """A task that gives its held-out runs as lanes the prefix walk can step layer by layer
    (the text tasks do: the MLM run, and ELECTRA's generator and discriminator runs)."""

    def prefix_lanes(self, supernet: Any, batches: Sequence[Any], aux: Mapping[str, Any],
                     device: torch.device) -> list[list[Any]]:
        """Per held-out batch, its lanes (``embed_args``, ``layer_args``, ``score``)."""
        ...


class InheritedWeights:
    """``arch -> metrics`` with the supernet's weights, on the task's fixed held-out batches.

    Args:
        supernet: the trained supernet (put in eval mode here).
        task: the task it was trained on (prepared).
        batches: the task's fixed held-out batches (``task.heldout_batches``).
        space: adds its analytic metrics (``params``, ``flops``) to every result.
        aux: the task's trained auxiliary modules (ELECTRA: the generator supernet).
        precision: "fp32", "bf16" (autocast), or "auto": bf16 where the device has fast bf16
            matrix units (:mod:`nasplug.hardware`). ``benchmarks/eval_throughput.py`` prints the
            Kendall tau between the bf16 and fp32 rankings of the same candidates. fp32 here;
            the pipeline's :class:`nasplug.pipeline.evaluators.SupernetEvaluator` defaults to
            ``auto``. The task's scoring head decides in fp32 under bf16 too
            (:mod:`nasplug.text.bf16_vocab`).
        prefix_sharing: share hidden states of common prefixes within and across
            ``evaluate_batch`` calls, where the supernet and task allow (False: every arch alone).
        keep: keep the hidden states of this many best archs between calls (0: none).
        cache_mb: most memory those kept states may take, in MiB (split over the batches).
        rank_metric, rank_direction: what "best" means for ``keep`` (default: the task's
            primary metric and its direction). The pipeline passes the search's metric, so
            the kept archs are the ones evolution picks as parents.
        recalibration: BatchNorm recalibration before each arch is scored (None: off).

    The kept states assume frozen weights: the evaluator drops them when a parameter of the
    supernet or an auxiliary module is replaced, moved or changed in place; after writing
    through ``.data``, call :meth:`clear_cache`.
    """

    @checked("evaluator")
    def __init__(self, supernet: Any, task: Task, batches: Sequence[Any], space: SearchSpace | None = None,
                 aux: Mapping[str, Any] | None = None, precision: Literal["auto", "fp32", "bf16"] = "fp32",
                 prefix_sharing: bool = True, keep: Annotated[int, Field(ge=0)] = 10,
                 cache_mb: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 4096, rank_metric: str | None = None,
                 rank_direction: Literal["maximize", "minimize"] | None = None,
                 recalibration: BatchNormRecalibration | None = None) -> None:
        device = next(supernet.parameters()).device
        resolved = str(resolve_precision(precision, device, "evaluator.precision").value)
        self.rank_metric = rank_metric or task.primary_metric()
        if self.rank_metric not in task.metrics:
            raise NasplugError(f"evaluator.rank_metric: {self.rank_metric!r} is not measured here; "
                               f"allowed: {', '.join(task.metrics)}")
        direction = rank_direction or task.metrics[self.rank_metric]
        self.supernet = supernet.eval()
        self.aux = {k: m.eval() for k, m in (aux or {}).items()}
        self.task, self.batches, self.space, self.precision = task, list(batches), space, resolved
        self.recalibration = recalibration
        self.device = device
        self.prefix_sharing = (prefix_sharing and recalibration is None and isinstance(supernet, LayeredSupernet)
                               and isinstance(task, PrefixLaneTask))
        budget = cache_mb * 2**20 / max(len(self.batches), 1)
        self.caches = [PrefixCache(keep if self.prefix_sharing else 0, budget, direction == "maximize")
                       for _ in self.batches]
        self._lanes: list[list[Any]] | None = None
        self._weights: tuple[Any, ...] | None = None
        self._warned_small = False
        self.batch_seconds: list[float] = [0.0] * len(self.batches)  # of the last evaluate_sums call
        self.setup_seconds = 0.0

    def __call__(self, arch: Arch) -> dict[str, float]:
        return self.evaluate_batch([arch])[0]

    def evaluate_batch(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """Metrics for each arch, in order (shared prefixes computed once where possible)."""
        return [self._metrics(arch, add_sums(parts)) for arch, parts in zip(archs, self.evaluate_sums(archs))]

    def evaluate_sums(self, archs: Sequence[Arch]) -> list[list[Sums]]:
        """Per arch, the task's sums on each held-out batch, in order: their totals
        (:func:`~nasplug.task.add_sums`) give :meth:`evaluate_batch`'s metrics exactly, and the
        first b of them the metrics on b batches. Afterwards :attr:`batch_seconds` holds the
        wall time of each batch over all ``archs`` and :attr:`setup_seconds` the time spent
        before the first batch (BatchNorm recalibration)."""
        self.batch_seconds = [0.0] * len(self.batches)
        self.setup_seconds = 0.0
        if not self.prefix_sharing:
            return [self._evaluate_alone(arch) for arch in archs]
        routes = [tuple(self.supernet.route(a)) for a in archs]
        parts: list[list[Sums]] = [[{} for _ in self.batches] for _ in archs]
        self._drop_stale_states()
        with torch.inference_mode(), self._autocast():
            for b, (lanes, cache) in enumerate(zip(self._lane_groups(), self.caches)):
                t0 = time.perf_counter()
                self._walk(lanes, cache, routes, [p[b] for p in parts])
                self.batch_seconds[b] = time.perf_counter() - t0
        final = {route: self._rank_score(add_sums(p)) for route, p in zip(routes, parts)}
        for cache in self.caches:  # offers ranked on one batch; keep ranking on all of them
            cache.rescore(final)
            cache.end_call()  # drop states only this call's later routes could resume from
        self._warn_if_nothing_fits()
        return parts

    def clear_cache(self) -> None:
        """Forget the hidden states kept between calls (needed after changing weights
        through ``.data``, which the evaluator cannot see)."""
        for cache in self.caches:
            cache.clear()

    def close(self) -> None:
        """Release the kept states (the search stage calls this when the search ends)."""
        self.clear_cache()

    @property
    def cache_bytes(self) -> int:
        """Bytes of hidden states kept between calls."""
        return sum(cache.nbytes for cache in self.caches)

    # ------------------------------------------------------------------ one arch alone
    def _evaluate_alone(self, arch: Arch) -> list[Sums]:
        nets = [self.supernet, *(m for m in self.aux.values() if isinstance(m, Supernet))]
        with contextlib.ExitStack() as stack:
            t0 = time.perf_counter()
            for net in nets:
                stack.enter_context(net.using(arch))
            if self.recalibration is not None:
                stack.enter_context(self.recalibration.applied(self.supernet, self.task, self.aux))
            self.setup_seconds += time.perf_counter() - t0
            parts = []
            with torch.inference_mode(), self._autocast():
                for b, batch in enumerate(self.batches):
                    t0 = time.perf_counter()
                    parts.append(self.task.evaluate(self.supernet, [batch], self.aux, self.device))
                    self.batch_seconds[b] += time.perf_counter() - t0
            return parts

    # ------------------------------------------------------------------ the prefix walk
    def _walk(self, lanes: list[Any], cache: PrefixCache, routes: list[Route], sums: list[Sums]) -> None:
        """Run every route through one held-out batch's lanes and add its figures to ``sums``.

        Sorted order puts routes with long common prefixes next to each other, and
        ``stack[k]`` holds the hidden states (one per lane) after k layers of the current
        route; layers the cache holds for this route's prefix are taken from it.
        """
        order = sorted(range(len(routes)), key=routes.__getitem__)
        stack = [[lane.net.embed(*lane.embed_args) for lane in lanes]]
        previous: Route = ()
        for i in order:
            route = routes[i]
            common = 0
            while common < len(previous) and previous[common] == route[common]:
                common += 1
            del stack[common + 1:]
            stack.extend(cache.resume(route, common))
            for depth in range(len(stack) - 1, len(route)):
                stack.append([lane.net.run_layer(depth, route[depth], hidden, *lane.layer_args)
                              for lane, hidden in zip(lanes, stack[-1])])
            for lane, hidden in zip(lanes, stack[-1]):
                lane.score(sums[i], hidden)
            cache.offer(route, self._rank_score(sums[i]), stack)
            previous = route

    def _lane_groups(self) -> list[list[Any]]:
        """Per held-out batch, its lanes (built once: the inputs live on the device)."""
        if self._lanes is None:
            assert isinstance(self.task, PrefixLaneTask)  # prefix_sharing is only on for such tasks
            self._lanes = self.task.prefix_lanes(self.supernet, self.batches, self.aux, self.device)
        return self._lanes

    def _drop_stale_states(self) -> None:
        """Kept states are only valid for the weights that made them: drop them when any
        parameter or buffer (BatchNorm statistics, say) was replaced, moved or changed in
        place since the last call."""
        nets = [self.supernet, *self.aux.values()]
        try:
            weights = tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device)
                            for net in nets for p in (*net.parameters(), *net.buffers()))
        except RuntimeError:  # inference tensors have no version counter: keep nothing between calls
            weights = None
        if weights is None or weights != self._weights:
            self.clear_cache()
        self._weights = weights

    def _warn_if_nothing_fits(self) -> None:
        if not self._warned_small and any(cache.too_small for cache in self.caches):
            self._warned_small = True
            log.warning("evaluator.cache_mb: one arch's hidden states for a held-out batch exceed the budget "
                        "per batch (%.0f MiB); raise cache_mb to keep the best archs' states between calls",
                        self.caches[0].budget / 2**20)

    # ------------------------------------------------------------------ scoring
    def _rank_score(self, sums: Sums) -> float | None:
        """The arch's rank for the cache, on the batches scored so far (None: not rankable)."""
        return self.task.figures(sums).get(self.rank_metric)

    def _metrics(self, arch: Arch, sums: Sums) -> dict[str, float]:
        out = self.task.figures(sums)
        if self.space is not None:
            out.update(self.space.metrics(arch))
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()
