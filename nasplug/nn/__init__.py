"""Shared-weight building blocks for supernets: op choices and elastic-width layers.

A supernet built from these gets routing and ``extract(arch)`` from
:class:`nasplug.supernet.Supernet` for free::

    class MySupernet(Supernet):
        def __init__(self):
            super().__init__()
            self.conv = ElasticConv2d(1, 32, 3, padding=1, out_key="width")
            self.bn = ElasticBatchNorm2d((8, 16, 32), "width")
            self.cell = OpChoice("op", {"conv": ..., "skip": nn.Identity()})
            self.head = ElasticLinear(32, 10, in_key="width")
"""

from __future__ import annotations

from nasplug.nn.choice import Choosable, OpChoice, choose_all, freeze
from nasplug.nn.elastic import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear

__all__ = ["Choosable", "ElasticBatchNorm2d", "ElasticConv2d", "ElasticLinear", "OpChoice", "choose_all", "freeze"]
