"""Shared-weight building blocks for supernets: op choices, elastic widths, depth and attention.

A supernet built from these gets routing and ``extract(arch)`` from
:class:`nasplug.supernet.Supernet` for free, and every block freezes into plain torch (or,
for attention, transformers) modules holding copies of the weights the arch uses::

    class MySupernet(Supernet):
        def __init__(self):
            super().__init__()
            self.conv = ElasticConv2d(1, 32, 3, padding=1, out_key="width")
            self.bn = ElasticBatchNorm2d((8, 16, 32), "width")
            self.cell = OpChoice("op", {"conv": ..., "skip": nn.Identity()})
            self.head = ElasticLinear(32, 10, in_key="width")

Blocks: :class:`OpChoice`; :class:`ElasticLinear`, :class:`ElasticConv2d` and
:class:`ElasticBatchNorm2d` (one BatchNorm per width); :class:`ElasticLayerNorm`,
:class:`ElasticBatchNorm1d` and :class:`ElasticEmbedding` (the first k features);
:class:`ElasticDepth` (the first d blocks), :class:`ElasticFFN` (intermediate width),
:class:`ElasticHead` (input width of the last active layer) and
:class:`ElasticMultiheadAttention` (the first k heads). :func:`shared_copy` is what a block's
``freeze`` uses to copy (a slice of) a weight so that tied weights stay tied.
"""

from __future__ import annotations

from nasplug.nn.attention import ElasticMultiheadAttention
from nasplug.nn.blocks import ElasticDepth, ElasticFFN, ElasticHead
from nasplug.nn.choice import Choosable, OpChoice, choose_all, freeze, shared_copy
from nasplug.nn.elastic import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear
from nasplug.nn.norm import ElasticBatchNorm1d, ElasticEmbedding, ElasticLayerNorm

__all__ = ["Choosable", "ElasticBatchNorm1d", "ElasticBatchNorm2d", "ElasticConv2d", "ElasticDepth", "ElasticEmbedding",
           "ElasticFFN", "ElasticHead", "ElasticLayerNorm", "ElasticLinear", "ElasticMultiheadAttention", "OpChoice",
           "choose_all", "freeze", "shared_copy"]
