"""nasplug.nn.dropout: cheap dropout masks (rate, scaling, gradients, reproducibility) and the
attention that uses them in training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasplug.nn.dropout import Dropout, attention, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_keep_rate_is_one_minus_p_in_every_lane(p: float) -> None:
    torch.manual_seed(0)
    keep = keep_mask((1 << 20, 4), p).float()  # the four 16-bit lanes of each draw are columns here
    sigma = (p * (1 - p) / (1 << 20)) ** 0.5
    assert torch.all((keep.mean(0) - (1 - p)).abs() < 5 * sigma), keep.mean(0)


def test_odd_shapes_and_the_rounding_of_p() -> None:
    torch.manual_seed(0)
    assert keep_mask((3, 5, 7), 0.3).shape == (3, 5, 7)
    assert keep_mask((1,), 1e-6).all()  # p below 1/131072 rounds to 0: nothing dropped
    assert not keep_mask((4096,), 1 - 1e-6).any()  # rounds to 1: everything dropped


def test_dropout_scales_kept_values_and_zeroes_the_rest() -> None:
    torch.manual_seed(1)
    x = torch.randn(64, 64)
    y = dropout(x, 0.25)
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * (1 / 0.75))
    assert 0.7 < kept.float().mean() < 0.8
    assert dropout(x, 0.25, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))


def test_bf16_values_are_scaled_in_fp32_then_rounded_once() -> None:
    torch.manual_seed(2)
    x = torch.randn(4096).bfloat16()
    y = dropout(x, 0.1)
    kept = y != 0
    assert y.dtype == torch.bfloat16
    assert torch.equal(y[kept], (x[kept].float() * (1 / 0.9)).bfloat16())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_and_gradients_are_those_of_the_written_out_formula(dtype: torch.dtype) -> None:
    """Bit for bit ``x * keep_mask(p) * (1 / (1 - p))`` (the mask as 0/1, the scale rounded once),
    whatever dtype the mask is converted to on the way."""
    x = torch.randn(64, 333, generator=torch.Generator().manual_seed(5)).to(dtype).requires_grad_()
    upstream = torch.randn(64, 333, generator=torch.Generator().manual_seed(6)).to(dtype)
    torch.manual_seed(3)
    got = dropout(x, 0.1)
    assert [t.dtype for t in got.grad_fn.saved_tensors] == [torch.uint8]  # one byte a value kept for the backward
    (got_grad,) = torch.autograd.grad(got, x, upstream)
    torch.manual_seed(3)
    want = x.mul(keep_mask(x.shape, 0.1)).mul_(1 / 0.9)
    (want_grad,) = torch.autograd.grad(want, x, upstream)
    assert got.dtype == dtype and torch.equal(got, want) and torch.equal(got_grad, want_grad)


def test_gradient_is_the_scaled_mask() -> None:
    torch.manual_seed(3)
    x = torch.randn(32, 32, requires_grad=True)
    y = dropout(x, 0.5)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_masks_follow_the_global_generator() -> None:
    x = torch.ones(1000)
    torch.manual_seed(7)
    a = dropout(x, 0.5)
    torch.manual_seed(7)
    b = dropout(x, 0.5)
    c = dropout(x, 0.5)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_module_is_a_drop_in_for_nn_dropout() -> None:
    layer = Dropout(0.1)
    assert dict(layer.state_dict()) == {} and repr(layer) == "Dropout(p=0.1)"
    x = torch.randn(8, 8)
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError):
        Dropout(1.5)


def test_attention_in_training_is_sdpa_with_the_mask_applied() -> None:
    gen = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 2, 6, 4, generator=gen) for _ in range(3))
    key_mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
    key_mask[1, ..., 4:] = False
    v_noisy = v.clone()
    v_noisy[1, :, 4:] = 1e6  # masked keys must not contribute
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
    got = attention(q, k, v_noisy, key_mask, dropout_p=1e-6)  # drops nothing (p rounds to 0)
    torch.testing.assert_close(got, want * (1 / (1 - 1e-6)), rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    dropped = attention(q, k, v, None, dropout_p=0.5)
    assert not torch.allclose(dropped, F.scaled_dot_product_attention(q, k, v))
    assert torch.equal(attention(q, k, v, key_mask, 0.0), want)


def test_no_graph_break_under_torch_compile() -> None:
    q = torch.randn(2, 2, 4, 8)
    explained = torch._dynamo.explain(lambda t: attention(t, t, t, None, 0.1) + dropout(t, 0.1))(q)
    assert explained.graph_break_count == 0, explained.break_reasons
