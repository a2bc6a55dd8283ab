"""The dynamic convolution's two ways of mixing, timed side by side: the loop over the K taps
and the band-matrix product (``spaces/lvbert/layers.py``), forward alone and forward +
backward, fp32 and bf16, at the sizes nasplug runs (the demo's hidden 64 / 1 head, ELECTRA-small's
256 / 4 heads, base 768 / 12 heads) and sequence lengths 64-512.

``BAND_MAX_LEN`` and ``_mix_as_band`` follow this table: the band where it is faster. The last
two columns time the softmax over the K taps: torch's kernel and ``tap_softmax`` (written out in
fp32, which the layer uses).

    .venv/bin/python benchmarks/conv_mixing.py [--threads 1] [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from nasplug.spaces.lvbert.layers import _mix_band, _mix_taps, tap_softmax

SHAPES = ((64, 64, 64, 1), (32, 64, 256, 4), (16, 128, 256, 4), (32, 128, 256, 4), (16, 256, 256, 4),
          (8, 256, 768, 12), (8, 512, 768, 12))  # batch, length, hidden, heads
KERNEL = 9


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def time_one(value: torch.Tensor, weights: torch.Tensor, n: int, repeats: int) -> dict[str, float]:
    """ms of each mixing, forward alone and forward + backward, and of the two softmaxes."""
    times = {}
    for name, mix in (("taps", _mix_taps), ("band", _mix_band)):
        times[f"fwd {name}"] = median_ms(lambda m=mix: m(value, weights, n, KERNEL), repeats)

        def step(m: Callable[..., torch.Tensor] = mix) -> None:
            v, w = value.clone().requires_grad_(), weights.clone().requires_grad_()
            m(v, w, n, KERNEL).float().sum().backward()

        times[f"train {name}"] = median_ms(step, max(3, repeats // 2))
    logits = weights.float().log()
    times["torch softmax"] = median_ms(lambda: torch.softmax(logits.to(value.dtype), -1), repeats)
    times["tap_softmax"] = median_ms(lambda: tap_softmax(logits.to(value.dtype)), repeats)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"dynamic-convolution mixing, K={KERNEL}, median of {args.repeats}, ms, {args.threads} thread(s); "
          "ratio = band / taps (below 1: the band is faster)")
    print(f"{'B':>3} {'T':>4} {'H':>4} {'N':>3} dtype    | {'fwd taps':>9} {'band':>7} {'ratio':>6} | "
          f"{'fwd+bwd taps':>12} {'band':>7} {'ratio':>6} | max |band - taps| | softmax over K: torch  written out")
    for b, t, h, n in SHAPES:
        for dtype in (torch.float32, torch.bfloat16):
            value = torch.randn(b, t, h, generator=gen).to(dtype)
            weights = torch.softmax(torch.randn(b, t, n, KERNEL, generator=gen), -1).to(dtype)
            diff = (_mix_band(value, weights, n, KERNEL).float() - _mix_taps(value, weights, n, KERNEL).float())
            ms = time_one(value, weights, n, args.repeats)
            print(f"{b:>3} {t:>4} {h:>4} {n:>3} {str(dtype)[6:]:<8} | {ms['fwd taps']:9.2f} {ms['fwd band']:7.2f} "
                  f"{ms['fwd band'] / ms['fwd taps']:6.2f} | {ms['train taps']:12.2f} {ms['train band']:7.2f} "
                  f"{ms['train band'] / ms['train taps']:6.2f} | {diff.abs().max().item():17.1e} | "
                  f"{ms['torch softmax']:21.2f} {ms['tap_softmax']:12.2f}")


if __name__ == "__main__":
    main()
