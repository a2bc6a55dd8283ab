"""The elastic blocks: frozen == routed exactly (eval mode, trained-like weights and buffers),
frozen models hold only torch / transformers classes, training updates the shared statistics."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nasplug.nn import (
    ElasticBatchNorm1d,
    ElasticDepth,
    ElasticEmbedding,
    ElasticFFN,
    ElasticHead,
    ElasticLayerNorm,
    ElasticLinear,
    ElasticMultiheadAttention,
    OpChoice,
    freeze,
    shared_copy,
)
from nasplug.supernet import Supernet
from nasplug.testing import randomize_state

HIDDEN = (8, 16, 24, 32)
CHOICES = {"hidden": HIDDEN, "heads0": (1, 2, 3, 4), "heads1": (1, 2, 4), "ffn0": (8, 40, 64), "ffn1": (16, 64),
           "depth": (0, 1, 2), "w0": (4, 12), "w1": (8, 12), "act": ("relu", "tanh")}


class Blocks(Supernet):
    """Every elastic block in one supernet: an encoder (embedding, LayerNorm, depth of
    attention + FFN layers) and an MLP tail (depth of widths, BatchNorm1d, a head)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = ElasticEmbedding(40, 32, "hidden", padding_idx=0)
        self.norm = ElasticLayerNorm(32, "hidden")
        self.attn = ElasticDepth([ElasticMultiheadAttention(32, 4, 8, f"heads{i}", "hidden") for i in range(2)],
                                 "depth")
        self.ffn = nn.ModuleList(ElasticFFN(32, 64, f"ffn{i}", "hidden") for i in range(2))
        self.bn = ElasticBatchNorm1d(32, "hidden")
        widths = [nn.Sequential(ElasticLinear(32 if i == 0 else 12, 12, in_key="hidden" if i == 0 else f"w{i - 1}",
                                              out_key=f"w{i}"), OpChoice("act", {"relu": nn.ReLU(), "tanh": nn.Tanh()}))
                  for i in range(2)]
        self.mlp = ElasticDepth(widths, "depth")
        self.head = ElasticHead(32, 3, widths=["w0", "w1"], depth_key="depth", input_key="hidden")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # [B, T] -> [B, 3]
        mask = (ids != 0)[:, None, None, :]  # [B, 1, 1, T]
        h = self.norm(self.emb(ids))
        for i, layer in enumerate(self.attn):
            h = h + layer(h, mask)[0]
            h = h + self.ffn[i](h)
        pooled = self.bn(h.transpose(1, 2)).transpose(1, 2).mean(1)  # BatchNorm1d over [B, C, T]
        return self.head(self.mlp(pooled))

    def example_input(self, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor]:
        ids = torch.randint(1, 40, (batch, 6), generator=torch.Generator().manual_seed(seed))
        ids[0, 4:] = 0  # padding
        return (ids,)


def _archs(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{k: rng.choice(v) for k, v in CHOICES.items()} for _ in range(n)] + [
        {k: max(v) if k != "act" else v[0] for k, v in CHOICES.items()},
        {k: min(v) if k != "act" else v[1] for k, v in CHOICES.items()}]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frozen_equals_routed_exactly(seed: int) -> None:
    net = Blocks()
    randomize_state(net, seed)
    net.eval()
    for i, arch in enumerate(_archs(6, seed)):
        (ids,) = net.example_input(seed=seed * 10 + i)
        with torch.no_grad(), net.using(arch):
            want = net(ids)
        got = net.extract(arch).eval()(ids)
        assert torch.equal(got, want), f"{arch}: differs by {(got - want).abs().max()}"


def test_frozen_blocks_are_torch_and_transformers_modules() -> None:
    net = Blocks()
    arch = _archs(1)[0] | {"depth": 2}
    frozen = net.extract(arch)
    for name, module in frozen.named_modules():
        if module is frozen:
            continue  # the supernet's own class (its forward), not a block
        assert type(module).__module__.split(".")[0] in ("torch", "transformers"), f"{name}: {type(module)}"
    assert isinstance(frozen.attn, nn.Sequential) and len(frozen.attn) == 2
    assert type(frozen.attn[0]).__name__ == "SiglipAttention"
    assert isinstance(frozen.ffn[0], nn.Sequential) and frozen.ffn[0][0].out_features == arch["ffn0"]
    assert frozen.attn[1].q_proj.out_features == 8 * arch["heads1"]
    assert frozen.head.in_features == arch["w1"] and frozen.norm.normalized_shape == (arch["hidden"],)
    assert frozen.emb.weight.shape == (40, arch["hidden"]) and frozen.bn.running_mean.shape == (arch["hidden"],)


def test_depth_zero_keeps_no_block_and_the_head_reads_the_input() -> None:
    net = Blocks()
    arch = _archs(1)[0] | {"depth": 0}
    frozen = net.extract(arch)
    assert len(frozen.mlp) == 0 and frozen.head.in_features == arch["hidden"]
    assert frozen.head.weight.shape == (3, arch["hidden"])


def test_batchnorm1d_trains_the_first_k_statistics_in_place() -> None:
    bn = ElasticBatchNorm1d(8, "w")
    bn.choose({"w": 3})
    bn.train()
    bn(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)) + 4.0)
    assert (bn.running_mean[:3] > 0.2).all() and torch.equal(bn.running_mean[3:], torch.zeros(5))
    assert int(bn.num_batches_tracked) == 1
    ref = nn.BatchNorm1d(3)  # the same update as a plain BatchNorm1d of width 3
    ref(torch.randn(5, 3, generator=torch.Generator().manual_seed(0)) + 4.0)
    assert torch.equal(ref.running_mean, bn.running_mean[:3]) and torch.equal(ref.running_var, bn.running_var[:3])


def test_widths_outside_the_block_are_refused_by_name() -> None:
    from nasplug.errors import NasplugError

    net = Blocks()
    with pytest.raises(NasplugError, match="heads0"):
        net.activate(_archs(1)[0] | {"heads0": 5})
    with pytest.raises(NasplugError, match="depth"):
        net.activate(_archs(1)[0] | {"depth": 3})


def test_shared_copy_is_exported_and_keeps_ties() -> None:
    emb = ElasticEmbedding(10, 8, "h")
    head = ElasticLinear(8, 10, in_key="h")
    head.weight = emb.weight  # tied [10, 8]
    frozen = freeze(nn.ModuleList([emb, head]), {"h": 4})
    assert frozen[0].weight is frozen[1].weight and frozen[0].weight.shape == (10, 4)
    memo: dict = {}
    assert shared_copy(emb.weight, memo, None, 4) is shared_copy(emb.weight, memo, None, 4)


def test_frozen_attention_has_the_same_call_in_training_mode_shapes() -> None:
    attn = ElasticMultiheadAttention(16, 4, 4, "heads")
    attn.choose({"heads": 3})  # tells its projections too
    x = torch.randn(2, 5, 16)
    y, none = attn(x)
    frozen = attn.freeze({"heads": 3}, {})
    y2, none2 = frozen(x)
    assert y.shape == y2.shape == (2, 5, 16) and none is None and none2 is None
