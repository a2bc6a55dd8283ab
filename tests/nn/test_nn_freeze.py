"""Freezing a supernet built from the shared-weight blocks: routing and RNG untouched, ties kept."""

from __future__ import annotations

import torch
from torch import nn

from nasplug.nn import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear, OpChoice
from nasplug.supernet import Supernet


class Tiny(Supernet):
    """Conv (elastic width) -> BN per width -> op choice -> a linear head used twice, and a
    head tied to the embedding-like ``table`` (the same weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = ElasticConv2d(1, 8, 3, padding=1, out_key="width")
        self.bn = ElasticBatchNorm2d((4, 8), "width")
        self.cell = OpChoice("op", {"relu": nn.ReLU(), "tanh": nn.Tanh()})
        self.mix = ElasticLinear(8, 8, in_key="width", out_key="width")
        self.again = self.mix  # one module in two places
        self.table = nn.Embedding(6, 8)
        self.head = ElasticLinear(8, 6, in_key="width")
        self.head.weight = self.table.weight  # tied: [6, 8]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, 4, 4] -> [B, 6]
        self.require_active()
        h = self.cell(self.bn(self.conv(x))).mean((2, 3))
        return self.head(self.again(self.mix(h)))

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor]:
        return (torch.randn(batch, 1, 4, 4, generator=torch.Generator().manual_seed(seed)),)


A = {"width": 8, "op": "relu"}
B = {"width": 4, "op": "tanh"}


def _tiny() -> Tiny:
    torch.manual_seed(0)
    return Tiny().eval()


def test_extract_keeps_the_routing_it_found() -> None:
    net = _tiny()
    with net.using(A):
        net.extract(B)
        assert net.active == A
        assert net.conv.out_now == 8 and net.cell.chosen == "relu"  # the blocks too, not just the label
        (x,) = net.example_input()
        assert net(x).shape == (2, 6)
    net.activate(B)
    net.extract(A)
    assert net.active == B and net.conv.out_now == 4


def test_extract_draws_nothing_from_the_global_rng() -> None:
    net = _tiny()
    before = torch.random.get_rng_state()
    for arch in (A, B):
        net.extract(arch)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_extract_matches_the_routed_supernet() -> None:
    net = _tiny()
    (x,) = net.example_input()
    for arch in (A, B):
        with torch.no_grad(), net.using(arch):
            want = net(x)
        assert torch.equal(net.extract(arch).eval()(x), want)


def test_tied_and_reused_weights_stay_tied() -> None:
    net = _tiny()
    full = net.extract(A)
    assert full.again is full.mix  # a module used twice is one module in the copy
    assert full.head.weight is full.table.weight  # full width: tied to the embedding as in the supernet
    assert full.head.weight is not net.table.weight  # ... and a copy, not the supernet's tensor
    narrow = net.extract(B)
    assert narrow.again is narrow.mix and narrow.mix.weight.shape == (4, 4)
    assert narrow.head.weight.shape == (6, 4) and narrow.table.weight.shape == (6, 8)
    names = [n for n, _ in full.named_parameters()]
    assert "again.weight" not in names and "head.weight" not in names  # shared parameters listed once


def test_two_elastic_layers_on_one_weight_share_the_slice() -> None:
    a = ElasticLinear(8, 8, in_key="width", out_key="width")
    b = ElasticLinear(8, 8, in_key="width", out_key="width")
    b.weight, b.bias = a.weight, a.bias
    from nasplug.nn import freeze

    pair = freeze(nn.ModuleList([a, b]), {"width": 4})
    assert pair[0].weight is pair[1].weight and pair[0].bias is pair[1].bias
    assert pair[0].weight.shape == (4, 4) and pair[0].weight.requires_grad
