"""The elastic-BERT search space: depth, hidden width, and heads and FFN width per layer.

The super-transformer family of DynaBERT (Hou et al. 2020), AutoTinyBERT (Yin et al. 2021)
and HAT (Wang et al. 2020): a BERT encoder whose ``depth`` keeps the first layers, whose
``hidden`` width is shared by all layers, and whose layer i picks ``heads{i}`` heads of a
fixed ``head_size`` and an FFN width ``ffn{i}``. A layer's choices exist only when
``depth > i`` (conditional choices), so ``size()`` counts models. Trained with the ``mlm``
task; the vocabulary size and the sequence length follow the task's.

Text form: ``d4 h128 a2.2.4.4 f256.512.512.512`` (depth, hidden, heads and FFN width of the
layers kept), or the arch's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nasplug.arch import Arch, Value
from nasplug.conditions import at_least
from nasplug.errors import NasplugError
from nasplug.space import SearchSpace

TEXT = re.compile(r"^d(\d+) h(\d+) a([\d.]+) f([\d.]+)$")


def _options(field: str, values: Sequence[int] | None, default: Sequence[int]) -> tuple[int, ...]:
    values = tuple(default if values is None else values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise NasplugError(f"space.{field}: expected a non-empty list of positive integers, got {list(values)!r}")
    if len(set(values)) != len(values):
        raise NasplugError(f"space.{field}: {list(values)} repeats an option")
    return tuple(sorted(values))


class ElasticBertSpace(SearchSpace):
    """BERT encoders choosing depth, hidden width, and heads and FFN width per layer (DynaBERT, HAT).

    Args:
        layers: the most layers; ``depths``: the depths to choose from (default 1..layers).
        hidden, heads, ffn: the options of the hidden width, of each layer's heads and FFN width.
        head_size: features per head (the same in every layer and arch).
        vocab_size, seq_len: follow the task when left out (defaults 30522 and 128 without one).
        type_vocab_size, dropout, layer_norm_eps, initializer_range: as in ``BertConfig``.
        init_from: a local Hugging Face BERT folder (``BertForMaskedLM`` or ``BertModel``):
            the supernet starts as that model, so its largest arch *is* it (its sizes must be
            the largest options). ``reorder``: first sort heads and FFN neurons by importance
            on the task's training data (DynaBERT), so the first k are the most important.
    """

    name = "elastic-bert"

    def __init__(self, layers: int = 12, depths: Sequence[int] | None = None,
                 hidden: Sequence[int] = (256, 512, 768), heads: Sequence[int] = (4, 8, 12),
                 ffn: Sequence[int] = (1024, 2048, 3072), head_size: int = 64, vocab_size: int | None = None,
                 seq_len: int | None = None, type_vocab_size: int = 2, dropout: float = 0.1,
                 layer_norm_eps: float = 1e-12, initializer_range: float = 0.02, init_from: str | None = None,
                 reorder: bool = False) -> None:
        if isinstance(layers, bool) or not isinstance(layers, int) or not 1 <= layers <= 64:
            raise NasplugError(f"space.layers: expected an integer in 1..64, got {layers!r}")
        self.layers = layers
        self.depths = _options("depths", depths, range(1, layers + 1))
        if self.depths[-1] > layers:
            raise NasplugError(f"space.depths: {self.depths[-1]} is more than layers ({layers})")
        self.hidden, self.heads, self.ffn = (_options(k, v, v) for k, v in (("hidden", hidden), ("heads", heads),
                                                                             ("ffn", ffn)))
        self.head_size = _options("head_size", [head_size], [head_size])[0]
        self.vocab_size = _options("vocab_size", [vocab_size or 30522], [30522])[0]
        self.seq_len = _options("seq_len", [seq_len or 128], [128])[0]
        self.type_vocab_size, self.dropout = type_vocab_size, dropout
        self.layer_norm_eps, self.initializer_range = layer_norm_eps, initializer_range
        self.init_from, self.reorder = init_from, reorder
        if reorder and init_from is None:
            raise NasplugError("space.reorder: re-orders a pre-trained model's heads and neurons; set space.init_from")
        self._choices: dict[str, tuple[Value, ...]] = {"depth": self.depths, "hidden": self.hidden}
        for i in range(self.depths[-1]):
            self._choices |= {f"heads{i}": self.heads, f"ffn{i}": self.ffn}
        self._conditions = {f"{kind}{i}": at_least("depth", i + 1) for i in range(self.depths[-1])
                            for kind in ("heads", "ffn") if i + 1 > self.depths[0]}

    # ------------------------------------------------------------------ choices
    def choices(self) -> dict[str, Sequence[Value]]:
        return self._choices

    def conditions(self) -> dict[str, Any]:
        return self._conditions

    def metrics(self, arch: Arch) -> dict[str, float]:
        """``params`` of the standalone ``BertForMaskedLM`` (decoder tied to the embeddings)."""
        depth, h = int(arch["depth"]), int(arch["hidden"])
        params = (self.vocab_size + self.seq_len + self.type_vocab_size) * h + 2 * h  # embeddings + LayerNorm
        for i in range(depth):
            inner, f = int(arch[f"heads{i}"]) * self.head_size, int(arch[f"ffn{i}"])
            params += 4 * h * inner + 3 * inner + h + 2 * h + 2 * h * f + f + h + 2 * h
        params += h * h + h + 2 * h + self.vocab_size  # MLM transform, its LayerNorm, the output bias
        return {"params": float(params)}

    def format(self, arch: Arch) -> str:
        depth = int(arch["depth"])
        heads = ".".join(str(arch[f"heads{i}"]) for i in range(depth))
        return f"d{depth} h{arch['hidden']} a{heads} f{'.'.join(str(arch[f'ffn{i}']) for i in range(depth))}"

    def parse(self, text: str) -> Arch:
        match = TEXT.match(" ".join(text.split()))
        if match is None:
            return super().parse(text)
        depth, hidden = int(match[1]), int(match[2])
        heads, ffn = match[3].split("."), match[4].split(".")
        if len(heads) != depth or len(ffn) != depth:
            raise NasplugError(f"arch: {text!r} gives {len(heads)} heads and {len(ffn)} FFN widths for depth {depth}")
        arch: Arch = {"depth": depth, "hidden": hidden}
        for i in range(self.depths[-1]):
            arch[f"heads{i}"] = int(heads[i]) if i < depth else self.heads[0]
            arch[f"ffn{i}"] = int(ffn[i]) if i < depth else self.ffn[0]
        return self.validate(arch)

    # ------------------------------------------------------------------ models
    def config(self) -> Any:
        """The :class:`~.modeling.ElasticBertConfig` of the supernet (the largest sizes)."""
        from nasplug.spaces.elastic_bert.modeling import ElasticBertConfig

        layers, heads, ffn = self.depths[-1], self.heads[-1], self.ffn[-1]
        return ElasticBertConfig(
            layer_heads=[heads] * layers, layer_ffn=[ffn] * layers, head_size=self.head_size,
            vocab_size=self.vocab_size, hidden_size=self.hidden[-1], num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=self.seq_len,
            type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout, pad_token_id=0,
            layer_norm_eps=self.layer_norm_eps, initializer_range=self.initializer_range, hidden_act="gelu",
            attn_implementation="sdpa")

    def build_supernet(self, seed: int | None = None) -> Any:
        """The supernet with BERT's initialisation from ``seed``, or ``init_from``'s weights."""
        from nasplug.spaces.elastic_bert.hf import build_supernet

        return build_supernet(self, seed)

    def build(self, arch: Arch, head: str | None = None, seed: int | None = None) -> Any:
        """A fresh ``BertModel`` (``head`` None) or ``BertForMaskedLM`` (``"mlm"``) of ``arch``,
        or their :mod:`.modeling` subclasses; BERT's initialisation drawn from ``seed``."""
        from nasplug.spaces.elastic_bert.convert import fresh

        return fresh(self.config(), self.canonical(self.validate(arch)), head, seed)

    def warm_start(self, supernet: Any, task: Any) -> None:
        """With ``reorder``: DynaBERT's importance re-ordering of heads and FFN neurons,
        measured on the task's training data (see :mod:`.reorder`)."""
        if self.reorder:
            from nasplug.spaces.elastic_bert.reorder import reorder_by_importance

            reorder_by_importance(supernet, task)

    def export_model(self, model: Any, arch: Arch, folder: Any, facts: dict[str, Any]) -> None:
        """A Hugging Face folder: plain BERT's ``config.json``, or an elastic-BERT config with
        ``auto_map`` and ``modeling_elastic_bert.py`` (torch and transformers only), beside the
        model's ``model.safetensors``; and a model card."""
        from nasplug.spaces.elastic_bert.hf import export_model

        export_model(model, folder, {**facts, "arch_json": arch})

    # ------------------------------------------------------------------ latency
    def latency_lengths(self) -> tuple[int, int]:
        """The space's ``seq_len``, twice: it is also the longest the model takes
        (:class:`~nasplug.cost.table.LatencyParts`)."""
        return self.seq_len, self.seq_len

    def latency_context(self) -> tuple[str, ...]:
        """``("hidden",)``: every layer runs at the shared hidden width, so a layer's heads and
        FFN entries are measured per width (:class:`~nasplug.cost.table.LatencyContext`)."""
        from nasplug.spaces.elastic_bert.latency import CONTEXT

        return CONTEXT

    def latency_block(self, choice: str, option: Value, batch_size: int, seq_len: int,
                      context: Mapping[str, Value] | None = None) -> Any:
        """Half a layer alone at the context's width; None for depth and hidden (see ``latency.py``)."""
        from nasplug.spaces.elastic_bert.latency import block

        return block(self, choice, option, batch_size, seq_len, context)

    def latency_model(self, arch: Arch, batch_size: int, seq_len: int) -> Any:
        """The extracted encoder of ``arch`` (:class:`~nasplug.cost.table.LatencyParts`)."""
        from nasplug.spaces.elastic_bert.latency import model

        return model(self, self.validate(arch), batch_size, seq_len)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "layers": self.depths[-1], "hidden": list(self.hidden), "heads": list(self.heads),
                "ffn": list(self.ffn), "head_size": self.head_size}
