"""A small Transformer space written to the text-model interface alone (tests only).

``TinyTextSpace``: depth 1-2 of attention + FFN layers with a choice of heads and FFN width
per layer, built from nasplug.nn's blocks; its supernet (and the models extracted from it,
which keep its class) have ``encode`` and ``masked_logits``, nothing LV-BERT-specific.
``NoLogitsSpace`` is the same without ``masked_logits`` (the preflight must name it).
"""

from __future__ import annotations

import torch
from torch import nn

from nasplug.conditions import at_least
from nasplug.nn import ElasticDepth, ElasticEmbedding, ElasticFFN, ElasticLayerNorm, ElasticMultiheadAttention
from nasplug.space import SearchSpace
from nasplug.supernet import Supernet


class TinyTextSpace(SearchSpace):
    name = "tiny-text"

    def __init__(self, vocab_size: int = 64, seq_len: int = 32, hidden: int = 16, layers: int = 2) -> None:
        self.vocab_size, self.seq_len, self.hidden, self.layers = vocab_size, seq_len, hidden, layers
        self._choices = {"depth": tuple(range(1, layers + 1)),
                         **{f"{k}{i}": o for i in range(layers) for k, o in (("heads", (1, 2)), ("ffn", (16, 32)))}}

    def choices(self):
        return self._choices

    def conditions(self):
        return {f"{k}{i}": at_least("depth", i + 1) for i in range(1, self.layers) for k in ("heads", "ffn")}

    def build_supernet(self):
        return TinySupernet(self)


class Layer(nn.Module):
    def __init__(self, hidden: int, i: int) -> None:
        super().__init__()
        self.attn = ElasticMultiheadAttention(hidden, 2, hidden // 2, f"heads{i}")
        self.ffn = ElasticFFN(hidden, 32, f"ffn{i}")
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)

    def forward(self, x, mask):
        x = self.norm1(x + self.attn(x, mask)[0])
        return self.norm2(x + self.ffn(x))


class TinySupernet(Supernet):
    def __init__(self, space: TinyTextSpace) -> None:
        super().__init__()
        self.tokens = ElasticEmbedding(space.vocab_size, space.hidden, None)
        self.positions = nn.Embedding(space.seq_len, space.hidden)
        self.layers = ElasticDepth([Layer(space.hidden, i) for i in range(space.layers)], "depth")
        self.norm = ElasticLayerNorm(space.hidden, None)
        self.decoder = nn.Linear(space.hidden, space.vocab_size)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        self.require_active()
        x = self.tokens(input_ids) + self.positions.weight[: input_ids.shape[1]]
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)

    def encode(self, input_ids, attention_mask=None, token_type_ids=None):
        return self(input_ids, attention_mask, token_type_ids)

    def masked_logits(self, hidden, labels):
        return self.decoder(hidden if labels is None else hidden[labels != -100])

    def example_input(self, batch: int = 2, seed: int = 0):
        return (torch.randint(0, self.decoder.out_features, (batch, 8), generator=torch.Generator().manual_seed(seed)),
                torch.ones(batch, 8, dtype=torch.long))


class NoLogits(TinySupernet):
    masked_logits = None  # the interface's second method is missing


class NoLogitsSpace(TinyTextSpace):
    name = "no-logits"

    def build_supernet(self):
        return NoLogits(self)
