"""Elastic multi-head self-attention: the first k heads of shared Q, K, V and output weights.

Heads have a fixed size (``head_size``); a choice of ``k`` heads uses the first
``k * head_size`` rows of Q, K and V and the same columns of the output projection, as
DynaBERT, AutoTinyBERT and HAT do; the hidden width may be elastic too. Attention runs in
``torch.nn.functional.scaled_dot_product_attention``.

Frozen, the block is Hugging Face transformers' ``SiglipAttention`` (a plain bidirectional
multi-head attention with q/k/v/out projections, no residual, no normalisation) holding
copies of the chosen rows: the same call (``attn(hidden_states, attention_mask)`` ->
``(output, None)``) and, in eval mode, the same numbers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.arch import Arch
from nasplug.errors import NasplugError
from nasplug.nn.choice import Choosable, freeze
from nasplug.nn.elastic import ElasticLinear


class ElasticMultiheadAttention(Choosable):
    """Self-attention over ``hidden`` features with up to ``heads`` heads of ``head_size``.

    Args:
        hidden: the largest hidden width (input and output features).
        heads: the most heads; the arch's ``heads_key`` picks how many are used (None: all).
        head_size: features per head (the queries are scaled by ``head_size ** -0.5``).
        hidden_key: the choice of the hidden width (None: fixed at ``hidden``).
        dropout: attention-probability dropout in training.

    Call: ``attn(x, attention_mask=None) -> (y, None)``; x and y are ``[B, T, hidden_now]``;
    ``attention_mask`` is what SDPA takes, broadcastable to ``[B, heads, T, T]``: bool (True:
    attend) or additive float.

    Example::

        attn = ElasticMultiheadAttention(64, 4, 16, heads_key="heads0", hidden_key="hidden")
        y, _ = attn(x, mask[:, None, None, :].bool())  # arch {"heads0": 2, "hidden": 48, ...}
        frozen = attn.freeze(arch, {})                   # transformers SiglipAttention, 2 heads
    """

    def __init__(self, hidden: int, heads: int, head_size: int, heads_key: str | None,
                 hidden_key: str | None = None, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if heads < 1 or head_size < 1:
            raise NasplugError(f"ElasticMultiheadAttention: heads and head_size must be >= 1, got {heads}, {head_size}")
        self.hidden, self.heads, self.head_size, self.dropout = hidden, heads, head_size, dropout
        self.keys = tuple(k for k in (hidden_key, heads_key) if k is not None)
        inner = heads * head_size
        self.q, self.k, self.v = (ElasticLinear(hidden, inner, bias, in_key=hidden_key, out_key=heads_key,
                                                out_unit=head_size) for _ in range(3))
        self.out = ElasticLinear(inner, hidden, bias, in_key=heads_key, out_key=hidden_key, in_unit=head_size)

    def choose(self, arch: Arch) -> None:
        for layer in (self.q, self.k, self.v, self.out):
            layer.choose(arch)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, None]:
        # the steps of transformers' SiglipAttention with its SDPA kernel, so the frozen block
        # gives the same numbers
        input_shape = hidden_states.shape[:-1]
        shape = (*input_shape, -1, self.head_size)
        q = self.q(hidden_states).view(shape).transpose(1, 2)  # [B, k, T, d]
        k = self.k(hidden_states).view(shape).transpose(1, 2)
        v = self.v(hidden_states).view(shape).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask,
                                             dropout_p=self.dropout if self.training else 0.0,
                                             scale=self.head_size ** -0.5, is_causal=False)
        out = out.transpose(1, 2).contiguous().reshape(*input_shape, -1).contiguous()  # [B, T, k * d]
        return self.out(out), None

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Module:
        from transformers import SiglipVisionConfig
        from transformers.models.siglip.modeling_siglip import SiglipAttention

        heads = self.q._widths(arch)[1] // self.head_size
        config = SiglipVisionConfig(hidden_size=heads * self.head_size, num_attention_heads=heads,
                                  attention_dropout=self.dropout)
        config._attn_implementation = "sdpa"
        with torch.device("meta"):  # its own projections are replaced below: no memory, no RNG draw
            frozen = SiglipAttention(config)
        frozen.q_proj, frozen.k_proj, frozen.v_proj, frozen.out_proj = (
            freeze(layer, arch, memo) for layer in (self.q, self.k, self.v, self.out))
        frozen.train(self.training)
        return frozen


__all__ = ["ElasticMultiheadAttention"]
