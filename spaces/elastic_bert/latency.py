"""Elastic-BERT's latency parts (:class:`nasplug.cost.table.LatencyParts`): one encoder layer's
halves alone, and the extracted encoder, each on fixed random inputs, in eval mode, with
fixed weights.

A layer's cost depends on the arch's ``hidden`` width, so the space declares ``hidden`` as
its latency context (:class:`~nasplug.cost.table.LatencyContext`): ``heads{i}``'s block is the
attention half of a BERT layer at that width (self-attention, output projection, LayerNorm),
``ffn{i}``'s the FFN half (two projections, GELU, LayerNorm); together they are one encoder
layer. ``depth`` and ``hidden`` run no block of their own (None): ``hidden`` is the context,
and ``depth`` decides which layers' entries count (a layer beyond it is inactive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from nasplug.arch import Arch, Value
from nasplug.errors import NasplugError

CONTEXT = ("hidden",)


def _check_len(space: Any, seq_len: int) -> None:
    if seq_len > space.seq_len:
        raise NasplugError(f"--seq-len: {seq_len} is longer than the space's max_positions ({space.seq_len})")


def layer(space: Any, hidden: int, heads: int, ffn: int) -> Any:
    """One ``transformers`` BERT layer with ``heads`` heads and an FFN of ``ffn`` neurons at
    width ``hidden``: the class and sizes the extracted model's layer has (a plain
    ``BertLayer``, resized as :class:`~.modeling.ElasticBertModel` resizes it where plain BERT
    cannot express the sizes), with BERT's initialisation drawn from seed 0."""
    from transformers.models.bert.modeling_bert import BertEncoder

    from nasplug.spaces.elastic_bert.convert import arch_config
    from nasplug.spaces.elastic_bert.modeling import ElasticBertConfig, resize_layers

    config = arch_config(space.config(), {"depth": 1, "hidden": hidden, "heads0": heads, "ffn0": ffn})
    with torch.random.fork_rng(devices=[]):  # the global RNG is left as it was
        torch.manual_seed(0)
        encoder = BertEncoder(config)
        if isinstance(config, ElasticBertConfig):
            resize_layers(encoder, config.layer_heads, config.layer_ffn, config.head_size)
    return encoder.layer[0].eval()


def block(space: Any, choice: str, option: Value, batch_size: int, seq_len: int,
          context: Mapping[str, Value] | None = None) -> Any:
    """The attention (``heads{i}``) or FFN (``ffn{i}``) half of a layer at the context's
    ``hidden`` width, on hidden states [batch_size, seq_len, hidden]; None for ``depth`` and
    ``hidden``."""
    _check_len(space, seq_len)
    if choice not in space.choices():
        raise NasplugError(f"arch: unknown choice {choice!r}")
    if choice in ("depth", "hidden"):
        return None
    if context is None or "hidden" not in context:
        raise NasplugError(f"latency_block: {choice}'s cost depends on hidden; pass context={{'hidden': ...}}")
    hidden = int(context["hidden"])
    if hidden not in space.hidden:
        raise NasplugError(f"latency_block: hidden={hidden} is no option; allowed: {list(space.hidden)}")
    x = torch.randn(batch_size, seq_len, hidden, generator=torch.Generator().manual_seed(0))
    if choice.startswith("heads"):
        attention = layer(space, hidden, int(option), space.ffn[0]).attention
        return lambda: attention(x)
    halves = layer(space, hidden, space.heads[0], int(option))
    return lambda: halves.feed_forward_chunk(x)


def model(space: Any, arch: Arch, batch_size: int, seq_len: int) -> Any:
    """The encoder of ``arch`` (``BertModel`` or :class:`~.modeling.ElasticBertModel`, no head),
    as :meth:`~.space.ElasticBertSpace.build` and extraction make it, on token ids
    [batch_size, seq_len] without padding."""
    _check_len(space, seq_len)
    encoder = space.build(arch, seed=0).eval()
    ids = torch.randint(space.vocab_size, (batch_size, seq_len), generator=torch.Generator().manual_seed(0))
    return lambda: encoder(input_ids=ids, return_dict=True)
