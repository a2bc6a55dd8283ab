"""BERT models with their own number of heads and FFN width in each layer (torch and
transformers only: this file is copied as it is into exported model folders).

A Hugging Face ``BertForMaskedLM`` gives every layer ``hidden / heads`` features per head
and one FFN width. An elastic-BERT arch keeps a fixed head size and lets each layer choose
its heads and FFN width; :class:`ElasticBertConfig` records them (``layer_heads``,
``layer_ffn``, ``head_size``) and :class:`ElasticBertForMaskedLM` / :class:`ElasticBertModel`
are the BERT classes with each layer's projections resized to them, so the forward pass is
transformers' own. Load an exported folder with::

    AutoModelForMaskedLM.from_pretrained(folder, trust_remote_code=True)
"""

from __future__ import annotations

from typing import Any

from torch import nn
from transformers import BertConfig, BertForMaskedLM, BertModel


class ElasticBertConfig(BertConfig):
    """``BertConfig`` plus the heads and FFN width of each layer and the head size."""

    model_type = "elastic-bert"

    def __init__(self, layer_heads: list[int] | None = None, layer_ffn: list[int] | None = None,
                 head_size: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        layers = self.num_hidden_layers
        self.layer_heads = list(layer_heads) if layer_heads is not None else [self.num_attention_heads] * layers
        self.layer_ffn = list(layer_ffn) if layer_ffn is not None else [self.intermediate_size] * layers
        self.head_size = head_size
        if len(self.layer_heads) != layers or len(self.layer_ffn) != layers:
            raise ValueError(f"layer_heads and layer_ffn need {layers} entries (num_hidden_layers)")


def resize_layers(encoder: Any, heads: list[int], ffn: list[int], head_size: int) -> None:
    """Give layer i of a ``BertEncoder`` ``heads[i]`` heads of ``head_size`` features and an
    FFN of ``ffn[i]`` neurons (new, uninitialised projections where a size changes)."""
    for layer, n_heads, width in zip(encoder.layer, heads, ffn, strict=True):
        attn, out = layer.attention.self, layer.attention.output
        hidden, inner = out.dense.out_features, n_heads * head_size
        if attn.query.out_features != inner:
            attn.query, attn.key, attn.value = (nn.Linear(hidden, inner) for _ in range(3))
            out.dense = nn.Linear(inner, hidden)
        attn.num_attention_heads, attn.attention_head_size, attn.all_head_size = n_heads, head_size, inner
        attn.scaling = head_size**-0.5
        if layer.intermediate.dense.out_features != width:
            layer.intermediate.dense = nn.Linear(hidden, width)
            layer.output.dense = nn.Linear(width, hidden)


class ElasticBertModel(BertModel):
    """``BertModel`` with the per-layer sizes of an :class:`ElasticBertConfig`."""

    config_class = ElasticBertConfig

    def __init__(self, config: ElasticBertConfig, add_pooling_layer: bool = False) -> None:
        super().__init__(config, add_pooling_layer=add_pooling_layer)
        resize_layers(self.encoder, config.layer_heads, config.layer_ffn, config.head_size)
        self.post_init()  # initialises the resized projections like the rest


class ElasticBertForMaskedLM(BertForMaskedLM):
    """``BertForMaskedLM`` with the per-layer sizes of an :class:`ElasticBertConfig`."""

    config_class = ElasticBertConfig

    def __init__(self, config: ElasticBertConfig) -> None:
        super().__init__(config)
        resize_layers(self.bert.encoder, config.layer_heads, config.layer_ffn, config.head_size)
        self.post_init()
