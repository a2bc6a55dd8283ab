"""``torch.exp`` against :func:`nasplug.nn.fastexp.exp_` (``exp2`` of ``x log2 e``), and the
block-wise cross-entropy's forward + backward with each, timed side by side in one run.

The inputs are what the log-sum-exps see: ``x - max(x)`` over a vocabulary, 600 rows of 2,048
values (the demo's held-out scoring) with the logits' standard deviation ``--spread``-ed, so
small spreads stay in range and large ones underflow (where MKL's ``vsExp``, torch's fp32 exp
on CPU, slowed down 15x on an AMD EPYC core), and the ELECTRA-small MLM loss (608 x 30,522
logits, bf16 and fp32).

    .venv/bin/python benchmarks/cpu_exp.py [--threads 1] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from unittest import mock

import torch

from nasplug.nn import loss
from nasplug.nn.fastexp import exp_


def interleaved_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median ms of each function, the functions taking turns."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def cross_entropy_step(logits: torch.Tensor, targets: torch.Tensor,
                       exp: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Forward + backward of the block-wise cross-entropy with ``exp`` as its exponential."""
    with mock.patch.object(loss, "exp_", exp):
        loss.cross_entropy(logits, targets).backward()
    logits.grad = None


def time_exp(x: torch.Tensor, repeats: int) -> dict[str, float]:
    """ms of ``torch.exp`` and of ``exp_`` (less the copy it works on) over ``x``."""
    scratch = torch.empty_like(x)
    ms = interleaved_ms({"torch.exp": lambda: torch.exp(x, out=scratch), "exp_": lambda: exp_(scratch.copy_(x)),
                         "copy": lambda: scratch.copy_(x)}, repeats)
    return {"torch.exp": ms["torch.exp"], "exp_": ms["exp_"] - ms["copy"]}


def time_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, repeats: int) -> dict[str, float]:
    return interleaved_ms({"torch.exp": lambda: cross_entropy_step(logits, targets, torch.Tensor.exp_),
                           "exp_": lambda: cross_entropy_step(logits, targets, exp_)}, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{args.threads} threads, medians of {args.repeats} interleaved repeats")
    print("\nexp of x - max(x), 600 x 2048 fp32:")
    base = torch.randn(600, 2048, generator=gen)
    for spread in (1.0, 3.0, 10.0, 30.0):
        x = base * spread
        x -= x.amax(-1, keepdim=True)
        ms = time_exp(x, args.repeats)
        print(f"  logits std {spread:4.0f} (min {float(x.min()):7.1f}): torch.exp {ms['torch.exp']:6.2f} ms, "
              f"exp_ {ms['exp_']:5.2f} ms  ({ms['torch.exp'] / ms['exp_']:.1f}x)")
    print("\nblock-wise cross-entropy, 608 x 30522, forward + backward:")
    targets = torch.randint(0, 30522, (608,), generator=gen)
    for dtype in (torch.bfloat16, torch.float32):
        for spread in (3.0, 30.0):
            logits = (torch.randn(608, 30522, generator=gen) * spread).to(dtype).requires_grad_()
            ms = time_cross_entropy(logits, targets, args.repeats)
            print(f"  {str(dtype).removeprefix('torch.'):8s} logits std {spread:3.0f}: with torch.exp "
                  f"{ms['torch.exp']:6.1f} ms, with exp_ {ms['exp_']:6.1f} ms  ({ms['torch.exp'] / ms['exp_']:.2f}x)")


if __name__ == "__main__":
    main()
