"""SupernetEvaluator: score an arch with weights inherited from a trained supernet.

Candidates are compared on identical inputs: the held-out set is masked once (same
positions, same replacements) and every arch sees the same batches. Metrics are held-out
MLM accuracy and loss (plus ELECTRA generator/discriminator accuracy when a generator is
given) and the space's analytic ``params`` / ``flops``.

Shared-prefix evaluation: archs that agree on their first k layers also agree on the hidden
states after layer k. ``evaluate_batch`` sorts the routes, walks them like a prefix tree (a
stack of hidden states, one per depth) and runs only the layers past the common prefix with
the previous route. Across calls, a :class:`~nasplug.oneshot.prefix_cache.PrefixCache` per held-out
batch keeps the states of the best archs scored so far, so the children of those archs in
the next call start from their parents' states. The arithmetic is the same, call for call,
as running each arch alone, so the metrics are bit-identical to one-by-one evaluation.

The supernet must offer ``route(arch) -> list[kind]``, ``embed(ids, token_type_ids)``,
``run_layer(i, kind, hidden, attention_mask)`` and ``mlm_logits(hidden, labels)`` (the
LV-BERT supernet does).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.text.masking import IGNORE_INDEX, MaskedBatch
from nasplug.oneshot.prefix_cache import PrefixCache, Route
from nasplug.space import SearchSpace

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16")
DIRECTIONS = ("maximize", "minimize")


@dataclass
class _Sums:
    """Running totals for one arch over the held-out batches."""

    correct: int = 0
    total: int = 0
    loss: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, value: float) -> None:
        self.extra[key] = self.extra.get(key, 0.0) + value


@dataclass
class _Lane:
    """One network run over one held-out input: the unit the prefix walk advances together."""

    net: Any
    ids: torch.Tensor
    mask: torch.Tensor | None
    score: Callable[[_Sums, torch.Tensor], None]  # adds this lane's figures for the last hidden state


class SupernetEvaluator:
    """``arch -> metrics`` on fixed, pre-masked held-out batches.

    Args:
        supernet: the trained supernet (put in eval mode here).
        batches: pre-masked held-out batches (``nasplug.text.masking.fixed_heldout_batches``).
        space: adds its analytic metrics (``params``, ``flops``) to every result.
        pad_id: padding id, to build attention masks (None: no padding in the rows).
        precision: "fp32", or "bf16" autocast (faster on hardware with bf16 units; check
            with ``nasplug rank-corr`` that it leaves rankings unchanged).
        prefix_sharing: share hidden states of common prefixes within and across
            ``evaluate_batch`` calls (False: run every arch alone).
        generator: the ELECTRA generator supernet; adds ``gen_mlm_acc`` and ``disc_acc``.
        replacements: for ELECTRA, a fixed id per masked position of every batch (same
            shapes as the batches' labels); the discriminator must spot them.
        keep: keep the hidden states of this many best archs between calls (0: none).
        cache_mb: most memory those kept states may take, in MiB (split over the batches).
        rank_metric, rank_direction: what "best" means for ``keep`` (default: the MLM
            accuracy, ``gen_mlm_acc`` for ELECTRA, maximized). The pipeline passes the
            search's metric, so the kept archs are the ones evolution picks as parents.

    The kept states assume frozen weights: the evaluator drops them when a parameter of the
    supernet or generator is replaced, moved or changed in place (an optimizer step,
    ``load_state_dict``); after writing through ``.data``, call :meth:`clear_cache`. Each
    held-out batch keeps its own best archs, chosen as they are scored and ranked on the
    batches scored so far (final figures once the call ends), so the sets can differ a
    little between batches; that costs speed, never exactness.
    """

    def __init__(self, supernet: Any, batches: Sequence[MaskedBatch], space: SearchSpace | None = None,
                 pad_id: int | None = None, precision: str = "fp32", prefix_sharing: bool = True,
                 generator: Any = None, replacements: Sequence[torch.Tensor] | None = None,
                 keep: int = 10, cache_mb: float = 4096, rank_metric: str | None = None,
                 rank_direction: str = "maximize") -> None:
        if precision not in PRECISIONS:
            raise NasplugError(f"evaluator.precision: {precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}")
        if rank_direction not in DIRECTIONS:
            raise NasplugError(f"evaluator.rank_direction: {rank_direction!r} is not allowed; "
                               f"allowed: {', '.join(DIRECTIONS)}")
        if keep < 0 or cache_mb < 0:
            field_name = "keep" if keep < 0 else "cache_mb"
            raise NasplugError(f"evaluator.{field_name}: must be >= 0 (0 keeps nothing between calls)")
        self.supernet = supernet.eval()
        self.generator = generator.eval() if generator is not None else None
        self.batches = list(batches)
        self.replacements = list(replacements) if replacements is not None else None
        self.space, self.pad_id = space, pad_id
        self.precision, self.prefix_sharing = precision, prefix_sharing
        self.device = next(supernet.parameters()).device
        self.rank_metric = rank_metric or ("gen_mlm_acc" if generator is not None else "mlm_acc")
        allowed = heldout_metric_names(generator is not None, replacements is not None)
        if self.rank_metric not in allowed:
            raise NasplugError(f"evaluator.rank_metric: {self.rank_metric!r} is not measured here; "
                               f"allowed: {', '.join(allowed)}")
        budget = cache_mb * 2**20 / max(len(self.batches), 1)
        self.caches = [PrefixCache(keep if prefix_sharing else 0, budget, rank_direction == "maximize")
                       for _ in self.batches]
        self._groups: list[list[_Lane]] | None = None
        self._weights: tuple[Any, ...] | None = None
        self._warned_small = False

    def __call__(self, arch: Arch) -> dict[str, float]:
        return self.evaluate_batch([arch])[0]

    def evaluate_batch(self, archs: Sequence[Arch]) -> list[dict[str, float]]:
        """Metrics for each arch, in order (shared prefixes computed once)."""
        routes = [tuple(self.supernet.route(a)) for a in archs]
        sums = [_Sums() for _ in archs]
        self._drop_stale_states()
        with torch.inference_mode(), self._autocast():
            for lanes, cache in zip(self._lane_groups(), self.caches):
                self._walk(lanes, cache, archs, routes, sums)
        final = {route: self._rank_score(s) for route, s in zip(routes, sums)}
        for cache in self.caches:  # offers ranked on the batches scored so far; keep ranking on all
            cache.rescore(final)
            cache.end_call()  # drop states only this call's later routes could resume from
        self._warn_if_nothing_fits()
        return [self._metrics(arch, s) for arch, s in zip(archs, sums)]

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

    # ------------------------------------------------------------------ the prefix walk
    def _walk(self, lanes: list[_Lane], cache: PrefixCache, archs: Sequence[Arch], routes: list[Route],
              sums: list[_Sums]) -> None:
        """Run every arch through one held-out batch's lanes and add its figures to ``sums``.

        Without prefix sharing this is the plain routed forward, one arch at a time. With it,
        sorted order puts routes with long common prefixes next to each other, and
        ``stack[k]`` holds the hidden states (one per lane) after k layers of the current
        route; layers the cache holds for this route's prefix are taken from it.
        """
        def visit(i: int, states: list[torch.Tensor]) -> None:
            for lane, hidden in zip(lanes, states):
                lane.score(sums[i], hidden)

        if not self.prefix_sharing:
            for i, arch in enumerate(archs):
                states = []
                for lane in lanes:
                    with lane.net.using(arch):
                        states.append(lane.net(lane.ids, lane.mask))
                visit(i, states)
            return
        order = sorted(range(len(routes)), key=routes.__getitem__)
        stack = [[lane.net.embed(lane.ids) for lane in lanes]]
        previous: Route = ()
        for i in order:
            route = routes[i]
            common = 0
            while common < len(previous) and previous[common] == route[common]:
                common += 1
            del stack[common + 1:]
            stack.extend(cache.resume(route, common))
            for depth in range(len(stack) - 1, len(route)):
                stack.append([lane.net.run_layer(depth, route[depth], hidden, lane.mask)
                              for lane, hidden in zip(lanes, stack[-1])])
            visit(i, stack[-1])
            cache.offer(route, self._rank_score(sums[i]), stack)
            previous = route

    def _lane_groups(self) -> list[list[_Lane]]:
        """Per held-out batch, its lanes: the MLM run, or ELECTRA's generator and discriminator runs."""
        if self._groups is None:
            self._groups = [self._lanes(b, batch) for b, batch in enumerate(self.batches)]
        return self._groups

    def _lanes(self, b: int, batch: MaskedBatch) -> list[_Lane]:
        ids = batch.input_ids.to(self.device)
        labels = batch.labels.to(self.device)
        mask = None if self.pad_id is None else (ids != self.pad_id).long()
        if self.generator is None:
            return [_Lane(self.supernet, ids, mask, functools.partial(_score_mlm, self.supernet, labels=labels))]
        # ELECTRA: the discriminator's MLM head is untrained; score generator + discriminator
        lanes = [_Lane(self.generator, ids, mask, functools.partial(_score_mlm, self.generator, labels=labels))]
        if self.replacements is None:
            return lanes
        masked = labels != IGNORE_INDEX
        original = torch.where(masked, labels, ids)
        corrupted = torch.where(masked, self.replacements[b].to(self.device), original)
        is_replaced = (corrupted != original).float()
        valid = torch.ones_like(is_replaced, dtype=torch.bool) if mask is None else mask.bool()
        score = functools.partial(_score_disc, self.supernet, is_replaced=is_replaced, valid=valid)
        return [*lanes, _Lane(self.supernet, corrupted, mask, score)]

    def _drop_stale_states(self) -> None:
        """Kept states are only valid for the weights that made them: drop them when any
        parameter was replaced, moved or changed in place since the last call."""
        nets = [self.supernet] if self.generator is None else [self.supernet, self.generator]
        try:
            weights = tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device)
                            for net in nets for p in net.parameters())
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
    def _heldout_metrics(self, s: _Sums) -> dict[str, float]:
        prefix = "gen_" if self.generator is not None else ""  # ELECTRA: the MLM figures are the generator's
        out = {f"{prefix}mlm_acc": s.correct / max(s.total, 1), f"{prefix}mlm_loss": s.loss / max(s.total, 1)}
        if "disc_total" in s.extra:
            out["disc_acc"] = s.extra["disc_correct"] / max(s.extra["disc_total"], 1.0)
        return out

    def _rank_score(self, s: _Sums) -> float | None:
        """The arch's rank for the cache, on the batches scored so far (None: not rankable)."""
        return self._heldout_metrics(s).get(self.rank_metric)

    def _metrics(self, arch: Arch, s: _Sums) -> dict[str, float]:
        out = self._heldout_metrics(s)
        if self.space is not None:
            out.update(self.space.metrics(arch))
        return out

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def heldout_metric_names(electra: bool, replacements: bool = True) -> tuple[str, ...]:
    """The held-out metrics a SupernetEvaluator reports (and may rank kept archs by)."""
    if not electra:
        return ("mlm_acc", "mlm_loss")
    return ("gen_mlm_acc", "gen_mlm_loss", "disc_acc") if replacements else ("gen_mlm_acc", "gen_mlm_loss")


def _score_mlm(net: Any, sums: _Sums, hidden: torch.Tensor, labels: torch.Tensor) -> None:
    logits = net.mlm_logits(hidden, labels).float()  # [N_masked, V]
    target = labels[labels != IGNORE_INDEX]
    # max(-1).indices: the first maximal index, as argmax, at half its cost on CPU
    sums.correct += int((logits.max(-1).indices == target).sum())
    sums.total += int(target.numel())
    sums.loss += float(F.cross_entropy(logits, target, reduction="sum"))


def _score_disc(net: Any, sums: _Sums, hidden: torch.Tensor, is_replaced: torch.Tensor, valid: torch.Tensor) -> None:
    pred = (net.discriminator_logits(hidden).float() > 0).float()
    sums.add("disc_correct", float(((pred == is_replaced) & valid).sum()))
    sums.add("disc_total", float(valid.sum()))


def supernet_evaluator(space: SearchSpace, context: Any, batches: int = 8, batch_size: int = 64,
                       precision: str = "fp32", prefix_sharing: bool = True, seed: int = 0,
                       keep: int | None = None, cache_mb: float = 4096) -> SupernetEvaluator:
    """The ``supernet`` evaluator of a recipe: the trained supernet of this run, scored on
    ``batches`` held-out batches of ``batch_size`` rows, masked once with ``seed``.

    Between calls it keeps the hidden states of the ``keep`` best archs by the search's
    metric (within ``cache_mb`` MiB), so children start from their parents' states; by
    default as many as the strategy's ``parents`` (10 when it has none).

    Called by the pipeline's search stage (and ``nasplug compare`` / ``rank-corr``) after the
    supernet stage has written ``supernet/model.safetensors``.
    """
    from nasplug.oneshot.checkpoint import load_weights
    from nasplug.text.masking import fixed_heldout_batches
    from nasplug.text.prepare import prepare_data

    folder = context.run_dir / "supernet"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise NasplugError(f"evaluator 'supernet': no trained supernet at {weights}; run the supernet stage first")
    data = prepare_data(context)
    supernet = context.extras.get("supernet")
    if supernet is None:
        from nasplug.distributed import device_for

        supernet = space.build_supernet(seed=context.recipe.seed)  # type: ignore[call-arg]
        load_weights(supernet, weights)
        train_device = context.recipe.supernet.device if context.recipe.supernet is not None else "auto"
        supernet = supernet.to(device_for(train_device))
    held = fixed_heldout_batches(data.heldout, data.tokens, batch_size, seed=seed, num_batches=batches)
    generator = replacements = None
    train_cfg = context.recipe.supernet
    if train_cfg is not None and train_cfg.objective == "electra":
        from nasplug.text.objectives import build_generator
        from nasplug.oneshot.train import derive_seed

        generator = build_generator(supernet, derive_seed(train_cfg.seed, "generator"))
        load_weights(generator, folder / "generator.safetensors")
        gen = torch.Generator().manual_seed(seed + 1)
        maskable = [i for i in range(data.tokens.vocab_size) if i not in set(data.tokens.special_ids)]
        table = torch.tensor(maskable)
        replacements = [table[torch.randint(len(maskable), b.labels.shape, generator=gen)] for b in held]
    search = context.recipe.search
    if keep is None:
        parents = search.strategy.kwargs().get("parents") if search is not None else None
        keep = parents if isinstance(parents, int) and parents > 0 else 10  # the strategy reports bad values
    rank = {}
    if search is not None and search.metric in heldout_metric_names(generator is not None, replacements is not None):
        rank = {"rank_metric": search.metric, "rank_direction": search.direction}
    return SupernetEvaluator(supernet, held, space=space, pad_id=data.tokens.pad_id, precision=precision,
                             prefix_sharing=prefix_sharing, generator=generator, replacements=replacements,
                             keep=keep, cache_mb=cache_mb, **rank)


supernet_evaluator.needs_run_context = True  # type: ignore[attr-defined]
