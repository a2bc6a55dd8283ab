"""nasplug.nn.fastexp: ``exp_`` is ``torch.exp`` up to the rounding of ``x log2 e``, in place,
on the whole fp32 range the log-sum-exps see (underflow to subnormals and zero included), and
leaves other dtypes to ``torch.exp_``."""

from __future__ import annotations

import torch

from nasplug.nn.fastexp import LOG2E, exp_


def test_fp32_matches_torch_exp_in_place() -> None:
    x = torch.linspace(-80.0, 10.0, 10_001)
    want = torch.exp(x.double())
    out = exp_(x)
    assert out is x and out.dtype == torch.float32
    relative = ((out.double() - want) / want).abs()
    # |x log2 e| <= 116 here: its fp32 rounding moves the result by at most 116 * 2**-24 * ln 2
    # relative, plus exp2's own error
    assert float(relative.max()) < 116 * 2.0**-24 * 0.7 + 2 * 2.0**-23
    assert torch.equal(out, torch.exp2(torch.linspace(-80.0, 10.0, 10_001) * LOG2E))  # the exp2 kernel


def test_fp32_underflow_gives_subnormals_and_zero() -> None:
    x = torch.tensor([-87.0, -95.0, -103.0, -110.0, float("-inf")])
    out = exp_(x.clone())
    want = torch.exp(x)
    assert bool((out >= 0).all()) and out[-1] == 0 and out[-2] == 0
    assert torch.allclose(out, want, rtol=1e-3, atol=2.0**-149)


def test_other_dtypes_take_torch_exp() -> None:
    x = torch.linspace(-20.0, 5.0, 257)
    for dtype in (torch.bfloat16, torch.float64):
        y = x.to(dtype)
        assert torch.equal(exp_(y.clone()), torch.exp(y))
