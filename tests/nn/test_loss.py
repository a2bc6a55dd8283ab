"""nasplug.nn.loss: the block-wise cross-entropy equals torch's in value and gradient, in fp32
and in bf16 (gradient computed in fp32, rounded once), and leaves small inputs to torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nasplug.nn import loss


@pytest.fixture
def blockwise_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny inputs take the block loop, several blocks of 3 rows (the last one partial)."""
    monkeypatch.setattr(loss, "MIN_VALUES", {})
    monkeypatch.setattr(loss, "MIN_VALUES_REDUCED", 0)
    monkeypatch.setattr(loss, "BLOCK_VALUES", 3 * 37)


def _logits(dtype: torch.dtype, n: int = 11, vocab: int = 37, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, vocab, generator=gen) * 4).to(dtype).requires_grad_()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_blockwise_matches_torch_in_value_and_gradient(blockwise_always: None, dtype: torch.dtype,
                                                       reduction: str) -> None:
    logits = _logits(dtype)
    targets = torch.randint(0, 37, (11,), generator=torch.Generator().manual_seed(1))
    got = loss.cross_entropy(logits, targets, reduction)  # type: ignore[arg-type]
    (grad,) = torch.autograd.grad(got * 3.0, logits)
    reference = logits.detach().float().requires_grad_()
    want = F.cross_entropy(reference, targets, reduction=reduction)
    (want_grad,) = torch.autograd.grad(want * 3.0, reference)
    assert got.dtype == torch.float32 and got.shape == ()
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    assert grad.dtype == dtype
    if dtype == torch.float32:
        torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-7)
    else:  # the fp32 gradient rounded once: at most one bf16 step (2**-8 relative) from torch's, rounded
        assert torch.all((grad.float() - want_grad.bfloat16().float()).abs() <= want_grad.abs() * 2**-8 + 1e-12)


def test_per_row_upstream_gradients_weight_each_row(blockwise_always: None) -> None:
    logits = _logits(torch.float32, n=7)
    targets = torch.arange(7)
    weights = torch.linspace(-1.0, 2.0, 7)
    per_row = loss._BlockwiseCrossEntropy.apply(logits, targets)
    (grad,) = torch.autograd.grad(per_row, logits, weights)
    reference = logits.detach().requires_grad_()
    (want,) = torch.autograd.grad(F.cross_entropy(reference, targets, reduction="none"), reference, weights)
    torch.testing.assert_close(per_row, F.cross_entropy(logits.detach(), targets, reduction="none"))
    torch.testing.assert_close(grad, want, rtol=1e-5, atol=1e-7)


def test_minus_infinity_logits_get_no_probability(blockwise_always: None) -> None:
    logits = _logits(torch.float32, n=4).detach()
    logits[:, 5:] = float("-inf")
    logits.requires_grad_()
    targets = torch.tensor([0, 1, 2, 3])
    got = loss.cross_entropy(logits, targets)
    (grad,) = torch.autograd.grad(got, logits)
    assert torch.isfinite(got) and torch.all(grad[:, 5:] == 0)
    assert got.item() == pytest.approx(F.cross_entropy(logits.detach(), targets).item(), rel=1e-6)


def test_small_logits_and_other_devices_stay_with_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the block loop ran")

    monkeypatch.setattr(loss._BlockwiseCrossEntropy, "apply", refuse)
    logits = _logits(torch.bfloat16)  # 407 values: far below the threshold
    got = loss.cross_entropy(logits, torch.zeros(11, dtype=torch.long))
    assert got.dtype == torch.float32
    monkeypatch.setattr(loss, "MIN_VALUES_REDUCED", 0)
    with pytest.raises(AssertionError, match="block loop"):
        loss.cross_entropy(logits, torch.zeros(11, dtype=torch.long))


def test_an_unknown_reduction_is_refused() -> None:
    with pytest.raises(ValueError, match="reduction"):
        loss.cross_entropy(_logits(torch.float32), torch.zeros(11, dtype=torch.long), "none")  # type: ignore[arg-type]


def test_fp64_logits_stay_in_fp64() -> None:
    logits = _logits(torch.float64)
    got = loss.cross_entropy(logits, torch.zeros(11, dtype=torch.long))
    assert got.dtype == torch.float64
