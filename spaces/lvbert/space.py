"""``LVBertSpace``: one choice per sub-layer slot among ``conv``, ``attn``, ``ffn``.

Recipe keys map 1:1 onto the constructor::

    space:
      name: lvbert
      size: small          # small | medium | base, or null with custom dims
      slots: 24
      allowed: [attn, ffn] # sub-space of layer types (names or letters C/A/F)
      counts: {conv: 8, attn: [6, 10]}   # exact count or [min, max] (null = unbounded)
      max_params: 13.0e+6  # encoder parameters (embeddings + projection + sub-layers)
      max_flops: null      # forward FLOPs per sequence of seq_len tokens
      seq_len: 128

Choices are ``L00 .. L23`` with values ``conv`` / ``attn`` / ``ffn``. Parameters and FLOPs
depend only on how many layers of each type an arch has, so the set of valid count vectors
is enumerated once: the constructor rejects constraint settings that leave nothing valid, and
:meth:`sample` draws uniformly from the valid archs exactly (no rejection loop).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from nasplug.arch import Arch, Value
from nasplug.errors import NasplugError
from nasplug.space import SearchSpace
from nasplug.spaces.lvbert.codec import (
    FROM_LETTER,
    LAYER_TYPES,
    NAMED,
    arch_from_layers,
    arch_from_text,
    arch_to_layers,
    arch_to_string,
    slot_key,
)
from nasplug.spaces.lvbert.sizes import SEQ_LEN, LVBertDims


class LVBertSpace(SearchSpace):
    """The LV-BERT search space (a sequence of ``slots`` sub-layer types) and its sub-spaces.

    Args:
        size: ``small``, ``medium`` or ``base`` (LVBERT.md), or None with custom ``hidden``.
        slots: Number of sub-layer slots (24 in LV-BERT).
        allowed: Layer types a slot may take (default all three).
        counts: Per-type bounds: ``{type: n}`` (exactly n) or ``{type: [min, max]}``.
        max_params, max_flops: Budgets on :meth:`metrics` (None: unbounded).
        seq_len: Sequence length the FLOPs are counted at (default 128, capped by max_positions).
        vocab_size, max_positions, type_vocab_size, hidden, heads, ffn, embedding,
        generator_hidden: Custom dims overriding the named size.
    """

    name = "lvbert"
    #: Plot colours of the layer types (the report's architecture strips).
    colors = {"conv": "#4C72B0", "attn": "#DD8452", "ffn": "#55A868"}

    def __init__(
        self,
        size: str | None = "small",
        slots: int = 24,
        allowed: Sequence[str] | str | None = None,
        counts: Mapping[str, Any] | None = None,
        max_params: float | str | None = None,
        max_flops: float | str | None = None,
        seq_len: int | None = None,
        vocab_size: int | None = None,
        max_positions: int | None = None,
        type_vocab_size: int | None = None,
        hidden: int | None = None,
        heads: int | None = None,
        ffn: int | None = None,
        embedding: int | None = None,
        generator_hidden: int | None = None,
    ) -> None:
        self.dims = LVBertDims.from_size(
            size, slots=slots, vocab_size=vocab_size, max_positions=max_positions,
            type_vocab_size=type_vocab_size, hidden=hidden, heads=heads, ffn=ffn, embedding=embedding,
            generator_hidden=generator_hidden,
        )
        self.size_name = size
        self.slots = self.dims.slots
        if seq_len is None:
            seq_len = min(SEQ_LEN, self.dims.max_positions)
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or not 1 <= seq_len <= self.dims.max_positions:
            raise NasplugError(f"seq_len: expected an integer in 1..{self.dims.max_positions}, got {seq_len!r}")
        self.seq_len = seq_len
        self.allowed = _parse_allowed(allowed)
        self.counts = _parse_counts(counts, self.allowed, self.slots)
        self.max_params = _parse_budget("max_params", max_params)
        self.max_flops = _parse_budget("max_flops", max_flops)
        self._choices = {slot_key(i, self.slots): self.allowed for i in range(self.slots)}
        self._layer_params = {k: self.dims.layer_params(k) for k in LAYER_TYPES}
        self._layer_flops = {k: self.dims.layer_flops(k, seq_len) for k in LAYER_TYPES}
        self._vectors, self._cumulative = self._enumerate_valid_counts()

    # ------------------------------------------------------------------ choices and checks
    def choices(self) -> dict[str, Sequence[Value]]:
        return self._choices

    def count_metrics(self, counts: Mapping[str, int]) -> dict[str, int]:
        """``params`` and ``flops`` of any arch with these per-type layer counts."""
        params = self.dims.embedding_params() + sum(n * self._layer_params[k] for k, n in counts.items())
        flops = self.dims.embedding_flops(self.seq_len) + sum(n * self._layer_flops[k] for k, n in counts.items())
        return {"params": params, "flops": flops}

    def metrics(self, arch: Arch) -> dict[str, float]:
        """Analytic ``params`` (encoder, no heads) and ``flops`` (forward, one sequence of
        ``seq_len`` tokens, multiply-add = 2 FLOPs); see :mod:`nasplug.spaces.lvbert.sizes`."""
        return self.count_metrics(Counter(arch_to_layers(arch)))  # type: ignore[return-value]

    def violation(self, arch: Arch) -> str | None:
        found = Counter(arch[key] for key in self._choices)
        for kind in LAYER_TYPES:
            if kind not in self.allowed and found[kind]:
                return f"allowed: {kind!r} is not allowed; allowed: {', '.join(self.allowed)}"
            low, high = self.counts[kind]
            if not low <= found[kind] <= high:
                return f"counts.{kind}: {found[kind]} {kind} layers; allowed {_bounds(low, high, self.slots)}"
        metrics = self.count_metrics(found)
        if self.max_params is not None and metrics["params"] > self.max_params:
            return f"max_params: {metrics['params']:,} params > limit {self.max_params:,.0f}"
        if self.max_flops is not None and metrics["flops"] > self.max_flops:
            return f"max_flops: {metrics['flops']:,} FLOPs > limit {self.max_flops:,.0f}"
        return None

    # ------------------------------------------------------------------ sampling
    def _enumerate_valid_counts(self) -> tuple[list[tuple[int, ...]], list[int]]:
        """Every per-type count vector meeting all constraints, with the cumulative number of
        archs (multinomial coefficients) for exact uniform sampling."""
        n = self.slots
        ranges = [range(self.counts[k][0], self.counts[k][1] + 1) for k in LAYER_TYPES[:-1]]
        by_counts, by_params, vectors = 0, 0, []
        for head in itertools.product(*ranges):
            last = n - sum(head)
            low, high = self.counts[LAYER_TYPES[-1]]
            if not low <= last <= high:
                continue
            vector = (*head, last)
            by_counts += 1
            metrics = self.count_metrics(dict(zip(LAYER_TYPES, vector, strict=True)))
            if self.max_params is not None and metrics["params"] > self.max_params:
                continue
            by_params += 1
            if self.max_flops is not None and metrics["flops"] > self.max_flops:
                continue
            vectors.append(vector)
        if not by_counts:
            lows = sum(lo for lo, _ in self.counts.values())
            highs = sum(hi for _, hi in self.counts.values())
            raise NasplugError(
                f"counts: no split of slots={n} meets the bounds (minimums sum to {lows}, maximums of "
                f"the allowed types ({', '.join(self.allowed)}) sum to {highs})"
            )
        if not by_params:
            raise NasplugError(f"max_params: {self.max_params:,.0f} is below every arch in the space "
                               f"(smallest: {self._smallest('params'):,} params)")
        if not vectors:
            raise NasplugError(f"max_flops: {self.max_flops:,.0f} is below every arch meeting the other "
                               f"constraints (smallest: {self._smallest('flops'):,} FLOPs)")
        cumulative = list(itertools.accumulate(math.factorial(n) // math.prod(math.factorial(c) for c in v)
                                               for v in vectors))
        return vectors, cumulative

    def _smallest(self, metric: str) -> int:
        best = None
        for head in itertools.product(*(range(lo, hi + 1) for lo, hi in list(self.counts.values())[:-1])):
            last = self.slots - sum(head)
            low, high = self.counts[LAYER_TYPES[-1]]
            if low <= last <= high:
                counts = dict(zip(LAYER_TYPES, (*head, last), strict=True))
                metrics = self.count_metrics(counts)
                if metric == "flops" and self.max_params is not None and metrics["params"] > self.max_params:
                    continue
                best = metrics[metric] if best is None else min(best, metrics[metric])
        return best or 0

    def num_valid(self) -> int:
        """Number of archs meeting every constraint (``size()`` ignores constraints)."""
        return self._cumulative[-1]

    def sample(self, rng: random.Random) -> Arch:
        """Uniform over the valid archs: pick a count vector weighted by its number of
        arrangements, then a uniformly random arrangement. Deterministic for a seeded ``rng``."""
        index = bisect.bisect_right(self._cumulative, rng.randrange(self._cumulative[-1]))
        layers = [kind for kind, n in zip(LAYER_TYPES, self._vectors[index], strict=True) for _ in range(n)]
        rng.shuffle(layers)
        return arch_from_layers(layers)

    def unconstrained(self) -> LVBertSpace:
        """The same dims and slots with every layer type allowed and no count or budget
        constraint (retrain baselines such as ``interleaved`` live here)."""
        fields = {
            f: getattr(self.dims, f)
            for f in (
                "hidden",
                "heads",
                "ffn",
                "embedding",
                "vocab_size",
                "max_positions",
                "type_vocab_size",
                "generator_hidden",
            )
        }
        return LVBertSpace(size=None, slots=self.slots, seq_len=self.seq_len, **fields)

    def mutate(self, arch: Arch, rng: random.Random, p: float = 0.1) -> Arch:
        """With per-type count bounds, mutate by swapping layers: each slot, with probability
        ``p``, trades its type with another slot of a different type, so the counts (and hence
        params and FLOPs) stay valid. Without count bounds: the generic per-slot mutation."""
        if all(self.counts[k] == (0, self.slots) for k in self.allowed):
            return super().mutate(arch, rng, p)
        keys = list(self._choices)
        child = dict(arch)
        for key in keys:
            if rng.random() < p:
                others = [k for k in keys if child[k] != child[key]]
                if others:
                    other = rng.choice(others)
                    child[key], child[other] = child[other], child[key]
        return child

    # ------------------------------------------------------------------ codecs
    def parse(self, text: str) -> Arch:
        """Letters (``CCAF...``, any case), official ints (``[0,0,1,...]`` / ``0,0,1,...``), a
        JSON dict, or a named order (``interleaved``: ``AFAF...``, ``sandwich``: ``AA..FF..``)
        -> a validated arch."""
        named = NAMED.get(text.strip().lower()) if isinstance(text, str) else None
        arch = arch_from_text(named(self.slots) if named is not None else text)
        if len(arch) != self.slots:
            raise NasplugError(f"arch: {len(arch)} layers given, the space has slots={self.slots}")
        return self.validate(arch)

    def format(self, arch: Arch) -> str:
        """The compact letter string, e.g. ``CCAFFACFFACCAFCFACFCAAFA``."""
        return arch_to_string(arch)

    # ------------------------------------------------------------------ models
    def config(self, arch: Arch | None = None, **kwargs: Any) -> Any:
        """``LVBertConfig`` with this space's dims (and ``arch``'s layers, default interleaved)."""
        from nasplug.spaces.lvbert.config import LVBertConfig

        layers = None if arch is None else arch_to_layers(self.validate(arch))
        return LVBertConfig.from_dims(self.dims, layers=layers, **kwargs)

    def build_supernet(self, **kwargs: Any) -> Any:
        """``LVBertSupernet`` holding the allowed types in every slot; ``kwargs`` go to it
        (``mlm_head``, ``discriminator_head``, ``num_labels``, ``embeddings``, ``seed``)."""
        from nasplug.spaces.lvbert.supernet import LVBertSupernet

        return LVBertSupernet(self.config(), num_slots=self.slots, kinds=self.allowed, **kwargs)

    def build(self, arch: Arch, head: str | None = None, seed: int | None = None, **config_kwargs: Any) -> Any:
        """Standalone model of ``arch`` with fresh weights.

        Args:
            head: None (``LVBertModel``), ``"mlm"``, ``"discriminator"`` or ``"classification"``.
            seed: Initialise from ``torch.Generator().manual_seed(seed)`` (None: global RNG).
            config_kwargs: Extra config fields, e.g. ``num_labels=3``.
        """
        from nasplug.spaces.lvbert.model import HEAD_MODELS

        if head not in HEAD_MODELS:
            raise NasplugError(f"head: {head!r} is not a head; allowed: None, {', '.join(h for h in HEAD_MODELS if h)}")
        model = HEAD_MODELS[head](self.config(arch, **config_kwargs))
        if seed is not None:
            import torch

            from nasplug.spaces.lvbert.layers import init_module

            generator = torch.Generator().manual_seed(seed)
            order: list[Any] = []
            model.apply(order.append)  # children first, like the HF init
            for module in order:
                init_module(module, model.config.initializer_range, generator)
        return model

    def export_model(self, model: Any, arch: Arch, folder: Any, facts: dict[str, Any]) -> None:
        """A Hugging Face folder: ``config.json`` with ``auto_map``, self-contained
        ``configuration_lvbert.py`` / ``modeling_lvbert.py`` and a model card, beside the
        model's ``model.safetensors`` (see :mod:`nasplug.spaces.lvbert.export`)."""
        from nasplug.layout import RunLayout
        from nasplug.spaces.lvbert.export import export_model, glue_scores, model_card

        export_model(model, folder)
        tuned = facts.get("run_dir") and facts.get("glue_tuned")  # GLUE fine-tuned these very weights
        glue = glue_scores(RunLayout(facts["run_dir"]).glue(str(facts.get("model")))) if tuned else {}
        model_card(folder, {**facts, "glue": glue})

    def latency_lengths(self) -> tuple[int, int]:
        """The FLOPs' sequence length and ``max_positions`` (:class:`~nasplug.cost.table.LatencyParts`)."""
        return self.seq_len, self.dims.max_positions

    def latency_block(self, choice: str, option: Value, batch_size: int, seq_len: int) -> Any:
        """One sub-layer alone (:class:`~nasplug.cost.table.LatencyParts`; see ``latency.py``)."""
        from nasplug.spaces.lvbert.latency import block

        return block(self, choice, option, batch_size, seq_len)

    def latency_model(self, arch: Arch, batch_size: int, seq_len: int) -> Any:
        """The extracted encoder of ``arch`` (:class:`~nasplug.cost.table.LatencyParts`)."""
        from nasplug.spaces.lvbert.latency import model

        return model(self, self.validate(arch), batch_size, seq_len)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "valid": self.num_valid(), "size_name": self.size_name,
                "allowed": list(self.allowed), "dims": self.dims.as_dict()}


# ---------------------------------------------------------------------- argument parsing
def _parse_allowed(allowed: Sequence[str] | str | None) -> tuple[str, ...]:
    if allowed is None:
        return LAYER_TYPES
    items = [p for p in allowed.replace(",", " ").split()] if isinstance(allowed, str) else list(allowed)
    kinds = []
    for item in items:
        kind = item if item in LAYER_TYPES else FROM_LETTER.get(str(item).upper())
        if kind is None:
            raise NasplugError(f"allowed: {item!r} is not a layer type; allowed: {', '.join(LAYER_TYPES)}")
        kinds.append(kind)
    if not kinds:
        raise NasplugError(f"allowed: needs at least one layer type of {', '.join(LAYER_TYPES)}")
    return tuple(k for k in LAYER_TYPES if k in kinds)


def _parse_counts(counts: Mapping[str, Any] | None, allowed: tuple[str, ...], slots: int) -> dict[str, tuple[int, int]]:
    bounds = {k: ((0, slots) if k in allowed else (0, 0)) for k in LAYER_TYPES}
    if counts is None:
        return bounds
    if not isinstance(counts, Mapping):
        raise NasplugError(f"counts: expected a mapping like {{conv: 8, attn: [6, 10]}}, got {type(counts).__name__}")
    for kind, spec in counts.items():
        if kind not in LAYER_TYPES:
            raise NasplugError(f"counts.{kind}: not a layer type; allowed: {', '.join(LAYER_TYPES)}")
        if isinstance(spec, Mapping):
            spec = [spec.get("min"), spec.get("max")]
        if _is_int(spec):
            low, high = spec, spec
        elif isinstance(spec, Sequence) and not isinstance(spec, str) and len(spec) == 2 \
                and all(v is None or _is_int(v) for v in spec):
            low = 0 if spec[0] is None else spec[0]
            high = slots if spec[1] is None else spec[1]
        else:
            raise NasplugError(f"counts.{kind}: expected an integer or [min, max], got {spec!r}")
        if low < 0 or high < low:
            raise NasplugError(f"counts.{kind}: need 0 <= min <= max, got [{low}, {high}]")
        if kind not in allowed and low > 0:
            raise NasplugError(f"counts.{kind}: asks for at least {low} {kind} layers but {kind!r} is not in "
                               f"allowed ({', '.join(allowed)})")
        if kind in allowed:
            bounds[kind] = (low, min(high, slots))
    return bounds


def _parse_budget(field: str, value: float | str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise NasplugError(f"{field}: expected a positive number (e.g. 13e6) or null, got {value!r}")
    return number


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bounds(low: int, high: int, slots: int) -> str:
    if low == high:
        return f"exactly {low}"
    if low == 0:
        return f"at most {high}"
    if high >= slots:
        return f"at least {low}"
    return f"{low}..{high}"
