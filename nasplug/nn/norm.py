"""Elastic normalisation and embeddings: one set of weights, the first k features for width k.

Unlike :class:`~nasplug.nn.ElasticBatchNorm2d` (one BatchNorm per width), these slice one
set of affine weights and statistics, as Once-for-all's dynamic BatchNorm and the elastic
BERTs (DynaBERT, AutoTinyBERT) do: the statistics of the first k features are those features'
own. Frozen, each becomes the plain ``nn.LayerNorm`` / ``nn.BatchNorm1d`` / ``nn.Embedding``
of the chosen width, holding copies of the first k features.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasplug.arch import Arch
from nasplug.nn.choice import shared_copy
from nasplug.nn.elastic import _Elastic


class _Features(_Elastic):
    """A layer over the last (LayerNorm, Embedding) or channel (BatchNorm) features, whose
    width is the arch's ``key``: ``in_now`` is the width in use."""

    def _setup_features(self, features: int, key: str | None) -> None:
        self._setup(features, features, key, None)
        self.key = key

    def _k(self, arch: Arch) -> int:
        return self._width(arch, self.key, self.in_max, "feature")


class ElasticLayerNorm(_Features):
    """``nn.LayerNorm(features)`` over the first ``arch[key]`` features.

    Example::

        norm = ElasticLayerNorm(64, "hidden")      # in a supernet; arch {"hidden": 48, ...}
        y = norm(x)                                # x: [..., 48] -> [..., 48]
        frozen = norm.freeze({"hidden": 48}, {})   # nn.LayerNorm(48) with the first 48 weights
    """

    def __init__(self, features: int, key: str | None, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self._setup_features(features, key)
        self.eps = eps
        ref = nn.LayerNorm(features, eps=eps, elementwise_affine=elementwise_affine, bias=bias)
        self.weight, self.bias = ref.weight, ref.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., k] -> [..., k]
        k = self.in_now
        weight = None if self.weight is None else self.weight[:k]
        bias = None if self.bias is None else self.bias[:k]
        return F.layer_norm(x, (k,), weight, bias, self.eps)

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.LayerNorm:
        k = self._k(arch)
        layer = nn.LayerNorm(k, eps=self.eps, elementwise_affine=self.weight is not None, bias=self.bias is not None,
                             device=_device(self), dtype=_dtype(self))
        if self.weight is not None:
            layer.weight = shared_copy(self.weight, memo, k)
        if self.bias is not None:
            layer.bias = shared_copy(self.bias, memo, k)
        return layer


class ElasticBatchNorm1d(_Features):
    """``nn.BatchNorm1d(features)`` over the first ``arch[key]`` features: one set of affine
    weights and running statistics, of which a width-k arch uses (and in training updates)
    the first k.

    Example::

        bn = ElasticBatchNorm1d(64, "width0")      # x: [B, k] or [B, k, L]
        frozen = bn.freeze({"width0": 32}, {})     # nn.BatchNorm1d(32), statistics included
    """

    def __init__(self, features: int, key: str | None, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self._setup_features(features, key)
        self.eps, self.momentum, self.affine, self.track_running_stats = eps, momentum, affine, track_running_stats
        ref = nn.BatchNorm1d(features, eps, momentum, affine, track_running_stats)
        self.weight, self.bias = ref.weight, ref.bias
        self.register_buffer("running_mean", ref.running_mean)
        self.register_buffer("running_var", ref.running_var)
        self.register_buffer("num_batches_tracked", ref.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, k] or [B, k, L]
        # nn.BatchNorm1d's own rules, on views of the first k features (updated in place)
        k, factor = self.in_now, 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return F.batch_norm(x, self.running_mean[:k] if track and self.running_mean is not None else None,
                            self.running_var[:k] if track and self.running_var is not None else None,
                            None if self.weight is None else self.weight[:k],
                            None if self.bias is None else self.bias[:k], use_batch, factor, self.eps)

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.BatchNorm1d:
        k = self._k(arch)
        layer = nn.BatchNorm1d(k, self.eps, self.momentum, self.affine, self.track_running_stats,
                               device=_device(self), dtype=_dtype(self))
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(self, name) is not None:
                setattr(layer, name, shared_copy(getattr(self, name), memo, k))
        if self.num_batches_tracked is not None:
            layer.num_batches_tracked = shared_copy(self.num_batches_tracked, memo)
        return layer


class ElasticEmbedding(_Features):
    """``nn.Embedding(num_embeddings, embedding_dim)`` whose vectors are the first
    ``arch[key]`` dimensions of one table (a lookup, then a slice: no copy of the table).

    Example::

        emb = ElasticEmbedding(1000, 64, "hidden")  # ids [B, T] -> [B, T, arch["hidden"]]
        frozen = emb.freeze({"hidden": 32}, {})     # nn.Embedding(1000, 32)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, key: str | None,
                 padding_idx: int | None = None) -> None:
        super().__init__()
        self._setup_features(embedding_dim, key)
        ref = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
        self.num_embeddings, self.padding_idx, self.weight = num_embeddings, ref.padding_idx, ref.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [...] -> [..., k]
        return F.embedding(ids, self.weight, self.padding_idx)[..., : self.in_now]

    def freeze(self, arch: Arch, memo: dict[Any, Any]) -> nn.Embedding:
        k = self._k(arch)
        layer = nn.utils.skip_init(nn.Embedding, self.num_embeddings, k, padding_idx=self.padding_idx,
                                   device=_device(self), dtype=_dtype(self))
        layer.weight = shared_copy(self.weight, memo, None, k)
        return layer


def _device(module: nn.Module) -> torch.device:
    return next(iter(module.parameters()), torch.empty(0)).device


def _dtype(module: nn.Module) -> torch.dtype:
    return next(iter(module.parameters()), torch.empty(0)).dtype


__all__ = ["ElasticBatchNorm1d", "ElasticEmbedding", "ElasticLayerNorm"]
