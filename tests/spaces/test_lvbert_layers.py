"""LV-BERT layers and models: exact parameter counts, the convolution's maths, padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasplug.spaces.lvbert import (
    LVBERT_SMALL_SEARCHED,
    LVBertConfig,
    LVBertDims,
    LVBertDynamicConv,
    LVBertModel,
    LVBertSpace,
    arch_from_string,
    interleaved,
    make_layer,
)

PER_LAYER = {
    "small": {"attn": 263_680, "ffn": 526_080, "conv": 275_236},
    "medium": {"attn": 592_128, "ffn": 1_182_336, "conv": 616_374},
    "base": {"attn": 2_363_904, "ffn": 4_723_968, "conv": 2_453_868},
}


def tiny(layers: str = "CAF", **kwargs) -> LVBertConfig:
    return LVBertConfig.from_size(None, hidden=32, heads=2, layers=layers, vocab_size=100, max_positions=64, **kwargs)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- parameter counts
@pytest.mark.parametrize("size", ["small", "medium", "base"])
def test_built_sub_layers_have_the_lvbert_md_counts(size):
    config = LVBertConfig.from_size(size)
    dims = LVBertDims.from_size(size)
    for kind, expected in PER_LAYER[size].items():
        assert n_params(make_layer(kind, config)) == expected == dims.layer_params(kind)


def test_conv_parameter_shapes_are_the_official_ones():
    conv = make_layer("conv", LVBertConfig.from_size("small"))
    shapes = {name: tuple(p.shape) for name, p in conv.named_parameters()}
    assert shapes["depthwise"] == (256, 1, 9)  # depthwise 9 x 256, no bias
    assert shapes["kernel.weight"] == (36, 256) and shapes["kernel.bias"] == (36,)
    assert shapes["pointwise.weight"] == (256, 256) and shapes["pointwise.bias"] == (256,)
    assert "depthwise.bias" not in shapes


@pytest.mark.parametrize("layers, expected", [(LVBERT_SMALL_SEARCHED, 12_525_856), (interleaved(24), 13_483_008)])
def test_built_reference_models_match_the_analytic_counts(layers, expected):
    model = LVBertModel(LVBertConfig.from_size("small", layers=layers))
    assert n_params(model) == expected
    assert LVBertSpace().metrics(arch_from_string(layers))["params"] == expected


def test_named_constructors_hold_the_reference_sequences():
    assert "".join(k[0].upper() for k in LVBertConfig.lvbert_small().layers) == LVBERT_SMALL_SEARCHED
    electra = LVBertConfig.electra_small_interleaved()
    assert electra.layers == ["attn", "ffn"] * 12 and electra.hidden_size == 256
    assert electra.num_hidden_layers == 24 and electra.embedding_size == 128


def test_medium_embeddings_project_128_to_384():
    model = LVBertModel(LVBertConfig.from_size("medium", layers="F"))
    assert tuple(model.embeddings_project.weight.shape) == (384, 128)
    assert n_params(model) == LVBertDims.from_size("medium").params(["ffn"])
    base = LVBertConfig.from_size("base", layers="F")
    assert LVBertModel(base).embeddings_project is None


# ---------------------------------------------------------------------------- the dynamic conv
def reference_dynamic_conv(layer: LVBertDynamicConv, x: torch.Tensor) -> torch.Tensor:
    """The official algorithm written position by position (slow, obviously correct)."""
    b, t, h = x.shape
    n, k = layer.num_heads, layer.kernel_size
    d, half = h // n, k // 2
    v = layer.glu_linear(x) * torch.sigmoid(layer.glu_gate(x))
    w = layer.depthwise.view(h, k)
    span = torch.zeros_like(v)
    for pos in range(t):
        for j in range(k):
            src = pos + j - half
            if 0 <= src < t:
                span[:, pos] += v[:, src] * w[:, j]
    kernel = torch.softmax(layer.kernel(layer.pointwise(span)).view(b, t, n, k), dim=-1)
    out = torch.zeros(b, t, n, d)
    for pos in range(t):
        for j in range(k):
            src = pos + j - half
            if 0 <= src < t:
                out[:, pos] += v[:, src].view(b, n, d) * kernel[:, pos, :, j, None]
    return layer.layer_norm(x + layer.output(out.reshape(b, t, h)))


@pytest.mark.parametrize("mixing", ["band", "taps"])
def test_dynamic_conv_matches_the_position_by_position_algorithm(mixing, monkeypatch):
    from nasplug.spaces.lvbert import layers

    used = []
    for name in ("_mix_band", "_mix_taps"):
        real = getattr(layers, name)
        monkeypatch.setattr(layers, name, lambda *a, real=real, name=name: used.append(name) or real(*a))
    limit = 64 if mixing == "band" else 0
    monkeypatch.setattr(layers, "BAND_MAX_LEN", {"reduced": limit, "fp32": limit})
    torch.manual_seed(0)
    layer = LVBertModel(tiny("C")).layers[0].eval()
    x = torch.randn(2, 11, 32)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), reference_dynamic_conv(layer, x), atol=1e-5, rtol=1e-5)
    assert used == [f"_mix_{mixing}"]


def test_the_conv_mixes_as_a_band_where_that_was_measured_faster(monkeypatch):
    """bf16 up to T = 128 and fp32 up to 64 (benchmarks/conv_mixing.py); the tap loop beyond,
    and in a traced graph."""
    from nasplug.spaces.lvbert import layers

    bf16, fp32 = torch.zeros(1, dtype=torch.bfloat16), torch.zeros(1)
    assert layers._mix_as_band(bf16, 128) and not layers._mix_as_band(bf16, 129)
    assert layers._mix_as_band(fp32, 64) and not layers._mix_as_band(fp32, 65)
    monkeypatch.setattr(layers, "_tracing", lambda: True)
    assert not layers._mix_as_band(bf16, 8)


def test_band_and_tap_mixing_agree_and_the_band_rounds_once_in_bf16():
    """The two mixings are the same sum: equal in fp32; in bf16 the band (one product, fp32
    accumulation) is closer to the fp32 result than the loop, which rounds after every tap."""
    from nasplug.spaces.lvbert.layers import _mix_band, _mix_taps

    gen = torch.Generator().manual_seed(0)
    value = torch.randn(3, 20, 32, generator=gen)
    weights = torch.softmax(torch.randn(3, 20, 4, 9, generator=gen), -1)
    exact = _mix_taps(value.double(), weights.double(), 4, 9)
    torch.testing.assert_close(_mix_band(value, weights, 4, 9).double(), exact, atol=1e-6, rtol=1e-6)
    low = (value.bfloat16(), weights.bfloat16())
    band_error = (_mix_band(*low, 4, 9).double() - exact).abs().mean()
    taps_error = (_mix_taps(*low, 4, 9).double() - exact).abs().mean()
    assert band_error < 0.7 * taps_error


def test_attention_matches_explicit_softmax_attention():
    torch.manual_seed(0)
    layer = LVBertModel(tiny("A")).layers[0].eval()
    x = torch.randn(2, 6, 32)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2]).bool()

    def heads(y):
        return y.view(2, 6, 2, 16).transpose(1, 2)

    with torch.no_grad():
        q, k, v = heads(layer.query(x)), heads(layer.key(x)), heads(layer.value(x))
        scores = q @ k.transpose(-1, -2) / 4.0 + (~mask[:, None, None, :]) * -1e9
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 6, 32)
        expected = layer.layer_norm(x + layer.output(context))
        torch.testing.assert_close(layer(x, mask), expected, atol=1e-5, rtol=1e-5)


def test_feed_forward_is_post_layernorm_residual_gelu():
    torch.manual_seed(0)
    layer = LVBertModel(tiny("F")).layers[0].eval()
    x = torch.randn(2, 5, 32)
    with torch.no_grad():
        expected = layer.layer_norm(x + layer.output(F.gelu(layer.intermediate(x))))
        torch.testing.assert_close(layer(x), expected)


# ---------------------------------------------------------------------------- padding
@pytest.mark.parametrize("kind", ["conv", "attn", "ffn"])
def test_padding_does_not_change_real_tokens_for_each_layer_type(kind):
    torch.manual_seed(0)
    layer = LVBertModel(tiny(kind[0].upper())).layers[0].eval()
    lengths = [7, 4]
    x = torch.randn(2, 10, 32)  # the padded batch: positions >= length are padding
    mask = torch.arange(10)[None, :] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        padded = layer(x, mask)
        for row, length in enumerate(lengths):
            alone = layer(x[row : row + 1, :length], None)
            torch.testing.assert_close(padded[row, :length], alone[0], atol=1e-5, rtol=0)


def test_padding_leak_would_be_visible_without_the_mask():
    """Guards the test above: the conv window really reaches the padding."""
    torch.manual_seed(0)
    layer = LVBertModel(tiny("C")).layers[0].eval()
    x = torch.randn(1, 10, 32)
    with torch.no_grad():
        unmasked = layer(x, None)[0, :7]
        alone = layer(x[:, :7], None)[0]
    assert (unmasked - alone).abs().max() > 1e-3


def test_padding_invariance_of_the_whole_model():
    torch.manual_seed(0)
    model = LVBertModel(tiny("CAFCAF")).eval()
    ids = torch.randint(1, 100, (2, 12))
    lengths = [12, 5]
    mask = (torch.arange(12)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = ids * mask  # pad id 0 after the real tokens
    with torch.no_grad():
        padded = model(ids, attention_mask=mask).last_hidden_state
        for row, length in enumerate(lengths):
            alone = model(ids[row : row + 1, :length]).last_hidden_state
            torch.testing.assert_close(padded[row, :length], alone[0], atol=1e-5, rtol=0)


def test_sequence_longer_than_positions_is_a_clear_error():
    from nasplug.errors import NasplugError

    model = LVBertModel(tiny("F"))
    with pytest.raises(NasplugError, match="sequence length 65 exceeds max_position_embeddings=64"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_config_rejects_bad_layers_and_dims_in_one_line():
    from nasplug.errors import NasplugError

    with pytest.raises(NasplugError, match=r"layers: letter 2 is 'Q'"):
        LVBertConfig(layers="CAQ")
    with pytest.raises(NasplugError, match=r"layers\[1\]: 'rnn' is not a layer type"):
        LVBertConfig(layers=["conv", "rnn"])
    with pytest.raises(NasplugError, match=r"heads: 3 does not divide hidden=256"):
        LVBertConfig(num_attention_heads=3)


# ---------------------------------------------------------------------------- bf16 training path
MATRIX_OPS = ("mm", "bmm", "addmm", "baddbmm", "convolution", "convolution_backward")


def test_bf16_train_step_multiplies_in_bf16_with_cheap_masks_and_an_fp32_loss():
    """Under bf16 autocast in training (dropout on), every matrix product of a conv + attention
    + FFN model, forward and backward, takes bf16 operands (SDPA's math path would run attention
    in fp32), attention's softmax stays bf16, no mask is drawn element by element
    (``bernoulli_``), and the MLM loss's log-softmax is fp32."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[str, tuple[torch.dtype, ...]]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            dtypes = tuple(a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point())
            self.seen.append((func.overloadpacket.__name__, dtypes))
            return func(*args, **(kwargs or {}))

    from nasplug.spaces.lvbert import LVBertSupernet

    model = LVBertSupernet(tiny("CAF"), seed=0, discriminator_head=False).extract(arch_from_string("CAF"), head="mlm")
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 100, (2, 16), generator=gen)
    labels = torch.where(torch.rand(2, 16, generator=gen) < 0.3, ids, torch.full_like(ids, -100))
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16), Ops() as ops:
        model.train()(ids, torch.ones_like(ids), labels=labels).loss.backward()
    products = [(name, dtypes) for name, dtypes in ops.seen if name in MATRIX_OPS]
    assert {name for name, _ in products} >= {"mm", "bmm", "addmm", "convolution"}
    assert all(set(dtypes) == {torch.bfloat16} for _, dtypes in products), products
    names = [name for name, _ in ops.seen]
    assert "bernoulli_" not in names and "random_" in names
    assert [dtypes for name, dtypes in ops.seen if name == "_log_softmax"] == [(torch.float32,)]
    # attention's softmax stays bf16 (the conv's 9-tap softmax is written out in fp32)
    assert [dtypes for name, dtypes in ops.seen if name == "_softmax"] == [(torch.bfloat16,)]
    assert not [dtypes for name, dtypes in ops.seen if name == "_softmax_backward_data" and dtypes[0] != torch.bfloat16]


def test_tap_softmax_is_softmax_in_fp32_with_its_gradient():
    from nasplug.spaces.lvbert.layers import tap_softmax

    gen = torch.Generator().manual_seed(0)
    logits = (5 * torch.randn(4, 7, 2, 9, generator=gen)).requires_grad_()
    upstream = torch.randn(4, 7, 2, 9, generator=gen)
    got = tap_softmax(logits)
    grad, = torch.autograd.grad((got * upstream).sum(), logits)
    want = torch.softmax(logits.double(), -1)
    want_grad, = torch.autograd.grad((want * upstream.double()).sum(), logits)
    torch.testing.assert_close(got.double(), want, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(grad, want_grad, atol=1e-6, rtol=1e-6)
    assert tap_softmax(logits.detach().bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("length", [16, 129])
def test_a_conv_held_in_bf16_mixes_in_bf16_either_way(length):
    """A model kept in bf16 (no autocast) runs both mixings (band up to T = 128, taps beyond)
    in bf16, and they agree with the fp32 layer to bf16's precision."""
    torch.manual_seed(0)
    layer = LVBertModel(tiny("C")).layers[0].eval()
    x = torch.randn(2, length, 32)
    with torch.no_grad():
        want = layer(x)
        got = layer.bfloat16()(x.bfloat16())
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=0.05)


@pytest.mark.parametrize("kind", ["attn", "conv"])
def test_evaluation_casts_a_layers_input_once_with_the_same_outputs(kind, monkeypatch):
    """Under autocast without autograd the attention and the convolution cast their input to
    bf16 once for their several products (autocast casts it per product): the same outputs,
    one cast of the input instead of 3 (attention) or 2 (convolution)."""
    from nasplug.spaces.lvbert import layers

    cast_once = layers.cast_once
    torch.manual_seed(0)
    layer = make_layer(kind, tiny()).eval()
    hidden = torch.randn(2, 8, 32)
    casts: list[int] = []
    real_to = torch.Tensor.to

    def counting_to(self, *args, **kwargs):
        if self is hidden and torch.bfloat16 in args:
            casts.append(1)
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        once = layer(hidden)
        monkeypatch.setattr(layers, "cast_once", lambda x: x)
        per_product = layer(hidden)
    assert casts == [1] and once.dtype == per_product.dtype == torch.float32
    assert torch.equal(once, per_product)
    assert cast_once(hidden) is hidden  # no autocast: as it is
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cast_once(hidden) is hidden  # autograd on: each product's cast sends its gradient back in fp32
        with torch.no_grad():
            assert cast_once(hidden).dtype == torch.bfloat16
