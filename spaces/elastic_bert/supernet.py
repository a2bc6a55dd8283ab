"""The elastic-BERT supernet: one BERT at the largest sizes, routed through smaller ones.

Built from nasplug.nn's blocks (the DynaBERT / AutoTinyBERT / HAT super-transformer): the
hidden width is the first k features of every weight, layer i uses the first ``heads_i``
heads and the first ``ffn_i`` FFN neurons, ``depth`` keeps the first layers. Each step is
the one Hugging Face BERT takes (post-LayerNorm layers, GELU, SDPA attention with BERT's
mask, the MLM head tied to the token embeddings), in the same order, so ``extract(arch)``
gives a ``transformers.BertModel`` / ``BertForMaskedLM`` (or, for archs plain BERT cannot
express, the BERT subclasses of :mod:`.modeling`) that computes exactly what the routed
supernet computes.

Shapes: ids [B, T]; hidden [B, T, h] with h the arch's hidden width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nasplug.arch import Arch
from nasplug.nn import ElasticDepth, ElasticEmbedding, ElasticFFN, ElasticLayerNorm, ElasticLinear
from nasplug.nn import ElasticMultiheadAttention as Attention
from nasplug.supernet import Supernet


class ElasticBertLayer(nn.Module):
    """A post-LayerNorm BERT layer whose hidden width, heads and FFN width follow the arch."""

    def __init__(self, config: Any, index: int) -> None:
        super().__init__()
        hidden, eps, drop = config.hidden_size, config.layer_norm_eps, config.hidden_dropout_prob
        self.attention = Attention(hidden, config.num_attention_heads, config.head_size, f"heads{index}", "hidden",
                                   dropout=config.attention_probs_dropout_prob)
        self.attention_norm = ElasticLayerNorm(hidden, "hidden", eps=eps)
        self.ffn = ElasticFFN(hidden, config.intermediate_size, f"ffn{index}", "hidden", activation="gelu")
        self.ffn_norm = ElasticLayerNorm(hidden, "hidden", eps=eps)
        self.dropout = nn.Dropout(drop)

    def forward(self, hidden: torch.Tensor, mask: Any) -> torch.Tensor:
        hidden = self.attention_norm(self.dropout(self.attention(hidden, mask)[0]) + hidden)
        return self.ffn_norm(self.dropout(self.ffn(hidden)) + hidden)


class ElasticBertSupernet(Supernet):
    """BERT with every elastic-BERT arch inside; ``config`` holds the largest sizes (an
    :class:`~.modeling.ElasticBertConfig`)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.word_embeddings = ElasticEmbedding(config.vocab_size, hidden, "hidden", padding_idx=config.pad_token_id)
        self.position_embeddings = ElasticEmbedding(config.max_position_embeddings, hidden, "hidden")
        self.token_type_embeddings = ElasticEmbedding(config.type_vocab_size, hidden, "hidden")
        self.embedding_norm = ElasticLayerNorm(hidden, "hidden", eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layers = ElasticDepth([ElasticBertLayer(config, i) for i in range(config.num_hidden_layers)], "depth")
        self.transform = ElasticLinear(hidden, hidden, in_key="hidden", out_key="hidden")
        self.transform_act = nn.GELU()
        self.transform_norm = ElasticLayerNorm(hidden, "hidden", eps=config.layer_norm_eps)
        self.decoder = ElasticLinear(hidden, config.vocab_size, in_key="hidden")
        self.decoder.weight = self.word_embeddings.weight  # tied, as BertForMaskedLM's
        self.register_buffer("position_ids", torch.arange(config.max_position_embeddings)[None], persistent=False)

    # ------------------------------------------------------------------ forward
    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] -> embeddings [B, T, h] (word + segment, then + position, as BertEmbeddings)."""
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        hidden = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        hidden = hidden + self.position_embeddings(self.position_ids[:, : input_ids.shape[1]])
        return self.dropout(self.embedding_norm(hidden))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """ids [B, T] (0/1 mask [B, T]) -> last hidden state [B, T, h] of the active arch."""
        from transformers.masking_utils import create_bidirectional_mask

        self.require_active()
        hidden = self.embed(input_ids, token_type_ids)
        mask = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        return hidden

    # ------------------------------------------------------------------ the text-model interface
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self(input_ids, attention_mask, token_type_ids)

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits [N, V] at ``labels != -100`` (all positions, [B, T, V], without labels)."""
        if labels is not None:
            hidden = hidden[labels != -100]
        return self.decoder(self.transform_norm(self.transform_act(self.transform(hidden))))

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        t = min(12, self.config.max_position_embeddings)
        ids = torch.randint(1, self.config.vocab_size, (batch, t), generator=gen)
        mask = torch.ones(batch, t, dtype=torch.long)
        mask[-1, t // 2:] = 0
        types = (torch.arange(t) >= t // 2).long().expand(batch, t).contiguous()
        return ids * mask, mask, types

    # ------------------------------------------------------------------ standalone models
    def extract(self, arch: Arch, head: str | None = None) -> nn.Module:
        """``arch`` as a transformers BERT holding copies of its weights: ``BertModel``
        (``head`` None) or ``BertForMaskedLM`` (``"mlm"``); the :mod:`.modeling` subclasses
        where the layers differ in heads or FFN width, or heads x head size != hidden."""
        from nasplug.spaces.elastic_bert.convert import standalone

        with self.using(arch):  # checks the arch against every block
            return standalone(self, arch, head)
