"""Token embeddings shared by the standalone models and the supernet.

``LVBertEmbeddings`` is word + position + token type embeddings, LayerNorm and dropout at the
embedding size E. The E -> H projection (``embeddings_project``, present when E != H) lives in
the model, not here, because ELECTRA shares this module between the discriminator and a
narrower generator, and each of them projects E to its own hidden size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from nasplug.errors import NasplugError
from nasplug.nn.dropout import Dropout

if TYPE_CHECKING:
    from nasplug.spaces.lvbert.config import LVBertConfig


class LVBertEmbeddings(nn.Module):
    """Word, position and token-type embeddings, LayerNorm, dropout: ids [B, T] -> [B, T, E]."""

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        e = config.embedding_size
        # No padding_idx: the official code trains the [PAD] row like any other (it is masked).
        self.word_embeddings = nn.Embedding(config.vocab_size, e)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, e)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, e)
        self.layer_norm = nn.LayerNorm(e, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        t = input_ids.shape[1]
        if t > self.position_embeddings.num_embeddings:
            raise NasplugError(
                f"input_ids: sequence length {t} exceeds max_position_embeddings="
                f"{self.position_embeddings.num_embeddings}"
            )
        x = self.word_embeddings(input_ids)  # [B, T, E]
        # Positions 0..T-1 for every row: a slice broadcast over the batch, no index tensor.
        x = x + self.position_embeddings.weight[:t]
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))
