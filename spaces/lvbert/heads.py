"""Output heads (MLM, ELECTRA discriminator, sequence classification) and layer-wise LR decay.

The heads are shared by the supernet and the standalone models under the same attribute
names (``mlm_head``, ``discriminator_head``, ``classifier``), so weight copying stays a plain
key mapping. :func:`layer_index` gives every parameter name its depth for the layer-wise
learning-rate decay of the GLUE fine-tuner.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from nasplug.nn.dropout import Dropout
from nasplug.nn.loss import cross_entropy
from nasplug.spaces.lvbert.layers import glorot

if TYPE_CHECKING:
    from nasplug.spaces.lvbert.config import LVBertConfig

IGNORE_INDEX = -100


class LVBertMLMHead(nn.Module):
    """ELECTRA generator head: dense H -> E, GELU, LayerNorm, decoder E -> V.

    ``decoder.weight`` is tied to the word embeddings (the owner assigns the shared Parameter);
    ``decoder.bias`` is the head's own output bias.
    """

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.act = ACT2FN[config.hidden_act]
        self.layer_norm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., H] -> vocabulary logits [..., V]."""
        return self.decoder(self.layer_norm(self.act(self.dense(hidden))))

    def masked_logits(self, hidden: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Logits only where ``labels != -100``: [N_masked, V] in row-major (b, t) order.

        With ``labels=None`` every position is scored: [B, T, V]. Skipping the unmasked 85% of
        positions is what makes the V-wide decoder cheap.
        """
        if labels is None:
            return self(hidden)
        return self(hidden[labels != IGNORE_INDEX])  # [N, H] -> [N, V]


class LVBertDiscriminatorHead(nn.Module):
    """ELECTRA replaced-token-detection head: dense H -> H, GELU, dense H -> 1, per token."""

    def __init__(self, config: LVBertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = ACT2FN[config.hidden_act]
        # official discriminator_predictions/dense_1: no initializer, so TF's Glorot uniform
        self.dense_prediction = glorot(nn.Linear(config.hidden_size, 1))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T, H] -> logit of "replaced" per token [B, T]."""
        return self.dense_prediction(self.act(self.dense(hidden))).squeeze(-1)


class LVBertClassificationHead(nn.Module):
    """The official fine-tuning head (ELECTRA ``classification_tasks.py``): dropout on the
    [CLS] vector, then one dense layer H -> num_labels (``task_specific``), Glorot uniform
    (``tf.layers.dense`` without an initializer). No hidden layer, no pooler."""

    def __init__(self, config: LVBertConfig, num_labels: int | None = None) -> None:
        super().__init__()
        dropout = config.classifier_dropout
        self.dropout = Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.out_proj = glorot(nn.Linear(config.hidden_size, num_labels or config.num_labels))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T, H] -> [B, num_labels] from the [CLS] position."""
        return self.out_proj(self.dropout(hidden[:, 0]))


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of masked-position logits [N, V] against ``labels`` [B, T].

    Zero (with a graph) when nothing is masked, instead of NaN.
    """
    targets = labels[labels != IGNORE_INDEX]
    if targets.numel() == 0:
        return logits.sum() * 0.0
    return cross_entropy(logits, targets)


def discriminator_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """ELECTRA RTD loss: mean binary cross-entropy over real tokens (``mask`` True / 1)."""
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
    keep = mask.bool()
    return F.binary_cross_entropy_with_logits(logits[keep], labels[keep].to(logits.dtype))


def sequence_loss(logits: torch.Tensor, labels: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Regression (MSE) when ``num_labels == 1``, else cross-entropy."""
    if num_labels == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype))
    return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))


_SLOT = re.compile(r"(?:^|\.)(?:layers|slots)\.(\d+)\.")


def layer_index(param_name: str, num_slots: int) -> int:
    """Depth of a parameter for layer-wise learning-rate decay, as the official fine-tuning
    code (ELECTRA ``optimization.py: _get_layer_lrs``) assigns it.

    With ``n = ceil(num_slots / 2)`` blocks (two sub-layers form one official
    ``encoder/layer_{b}``: 12 blocks of 24 sub-layers): 0 for the embeddings (including
    ``embeddings_project``); ``1 + i // 2`` for sub-layer slot ``i``; ``n + 2`` for the task
    layer, heads and anything else. No parameter has depth ``n + 1``: the official code gives
    the task layer ``n + 2``, so with ``lr * decay ** (n + 2 - depth)`` the task layer gets
    ``lr``, the top block ``lr * decay ** 2`` (0.64) and the embeddings ``decay ** (n + 2)``.
    Works for standalone names (``lvbert.layers.3.query.weight``) and supernet names
    (``slots.3.attn.query.weight``).
    """
    match = _SLOT.search(param_name)
    if match:
        return 1 + int(match.group(1)) // 2
    if any(part.startswith("embeddings") for part in param_name.split(".")):
        return 0
    return top_depth(num_slots)


def top_depth(num_slots: int) -> int:
    """The task layer's depth ``n + 2`` (``n = ceil(num_slots / 2)`` blocks)."""
    return 2 + math.ceil(num_slots / 2)


def num_layer_groups(num_slots: int) -> int:
    """Number of depths ``0 .. n + 2`` (depth ``n + 1`` is unused, as in the official code)."""
    return 1 + top_depth(num_slots)
