"""Elastic-BERT archs as transformers models: configs, fresh models, extraction.

An arch whose layers all have the same heads and FFN width, with heads x head size equal to
the hidden width, is a plain ``BertConfig`` (``transformers.BertModel`` /
``BertForMaskedLM``: loads anywhere, no remote code); any other arch is an
:class:`~.modeling.ElasticBertConfig` with the BERT subclasses of :mod:`.modeling`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.nn import freeze
from nasplug.spaces.elastic_bert.modeling import ElasticBertConfig, ElasticBertForMaskedLM, ElasticBertModel

HEADS = (None, "mlm")


def layer_sizes(arch: Arch) -> tuple[int, int, list[int], list[int]]:
    """``(depth, hidden, heads per layer, FFN width per layer)`` of the layers ``arch`` keeps."""
    depth = int(arch["depth"])
    return (depth, int(arch["hidden"]), [int(arch[f"heads{i}"]) for i in range(depth)],
            [int(arch[f"ffn{i}"]) for i in range(depth)])


def is_plain(arch: Arch, head_size: int) -> bool:
    """True when ``arch`` is a plain Hugging Face BERT (see the module docstring)."""
    _, hidden, heads, ffn = layer_sizes(arch)
    return len(set(heads)) == 1 and len(set(ffn)) == 1 and heads[0] * head_size == hidden


def arch_config(base: ElasticBertConfig, arch: Arch) -> Any:
    """The transformers config of ``arch`` (the supernet's ``base`` gives the fixed settings)."""
    from transformers import BertConfig

    depth, hidden, heads, ffn = layer_sizes(arch)
    common = dict(vocab_size=base.vocab_size, hidden_size=hidden, num_hidden_layers=depth,
                  max_position_embeddings=base.max_position_embeddings, type_vocab_size=base.type_vocab_size,
                  layer_norm_eps=base.layer_norm_eps, hidden_dropout_prob=base.hidden_dropout_prob,
                  attention_probs_dropout_prob=base.attention_probs_dropout_prob, pad_token_id=base.pad_token_id,
                  initializer_range=base.initializer_range, hidden_act="gelu", attn_implementation="sdpa")
    if is_plain(arch, base.head_size):
        return BertConfig(num_attention_heads=heads[0], intermediate_size=ffn[0], **common)
    return ElasticBertConfig(layer_heads=heads, layer_ffn=ffn, head_size=base.head_size, num_attention_heads=1,
                             intermediate_size=max(ffn), **common)


def model_class(config: Any, head: str | None) -> type[nn.Module]:
    from transformers import BertForMaskedLM, BertModel

    if head not in HEADS:
        raise NasplugError(f"head: {head!r} is not a head of elastic-bert models; allowed: None, mlm")
    elastic = isinstance(config, ElasticBertConfig)
    if head == "mlm":
        return ElasticBertForMaskedLM if elastic else BertForMaskedLM
    return ElasticBertModel if elastic else BertModel


def fresh(base: ElasticBertConfig, arch: Arch, head: str | None, seed: int | None) -> nn.Module:
    """A model of ``arch`` with transformers' BERT initialisation, drawn from ``seed`` (the
    global RNG is left as it was; None: drawn from it)."""
    config = arch_config(base, arch)
    cls = model_class(config, head)
    kwargs = {"add_pooling_layer": False} if head is None else {}
    if seed is None:
        return cls(config, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(config, **kwargs)


def standalone(supernet: Any, arch: Arch, head: str | None) -> nn.Module:
    """``arch`` extracted from ``supernet`` (routed through it by the caller): a model of
    :func:`fresh`'s class whose every weight is replaced by a copy of the supernet's slice
    (nasplug.nn's frozen blocks), in the supernet's train/eval mode."""
    model = fresh(supernet.config, arch, head, seed=0)
    bert = model.bert if head == "mlm" else model
    memo: dict[Any, Any] = {}
    emb = bert.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        setattr(emb, name, freeze(getattr(supernet, name), arch, memo))
    emb.LayerNorm = freeze(supernet.embedding_norm, arch, memo)
    for layer, block in zip(bert.encoder.layer, supernet.layers, strict=True):
        attn = freeze(block.attention, arch, memo)  # q/k/v/out as nn.Linear
        layer.attention.self.query, layer.attention.self.key, layer.attention.self.value = (
            attn.q_proj, attn.k_proj, attn.v_proj)
        layer.attention.output.dense = attn.out_proj
        layer.attention.output.LayerNorm = freeze(block.attention_norm, arch, memo)
        ffn = freeze(block.ffn, arch, memo)  # Linear, GELU, Linear
        layer.intermediate.dense, layer.output.dense = ffn[0], ffn[2]
        layer.output.LayerNorm = freeze(block.ffn_norm, arch, memo)
    if head == "mlm":
        predictions = model.cls.predictions
        predictions.transform.dense = freeze(supernet.transform, arch, memo)
        predictions.transform.LayerNorm = freeze(supernet.transform_norm, arch, memo)
        predictions.decoder = freeze(supernet.decoder, arch, memo)  # tied to the word embeddings by the memo
        predictions.bias = predictions.decoder.bias
    return model.train(supernet.training)
