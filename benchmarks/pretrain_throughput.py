"""Pre-training throughput: tokens/s and achieved FLOP/s as a fraction of measured matmul peak.

Runs the real loop (:func:`nasplug.oneshot.train.pretrain`, MLM, random token data) for

* the CPU-sized supernet: hidden 128, 12 slots, vocabulary 8192, sequence 64, batch 32, a
  fresh uniformly sampled arch every step;
* LV-BERT-small: the searched sequence ``CCAFFACFFACCAFCFACFCAAFA`` as a standalone model,
  vocabulary 30522, sequence 128 (batch 32 here by default; the paper's is 128);

in fp32 and under bf16 autocast, and measures in the same run the machine's fp32 and bf16
matmul peak (best of several square matmuls). Training FLOPs per step = 3 x forward FLOPs
(forward + backward), forward = the space's analytic encoder FLOPs (``LVBertSpace.metrics``:
every matrix product) + the MLM head at the masked positions. Tokens/s and FLOP/s are medians
over the timed steps (the first ``--warmup`` steps are dropped).

Usage::

    .venv/bin/python benchmarks/pretrain_throughput.py            # ~5-10 minutes on 2 cores
    .venv/bin/python benchmarks/pretrain_throughput.py --steps 4 --warmup 1 --only cpu   # quick
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from nasplug.oneshot.train import TrainConfig, pretrain
from nasplug.spaces.lvbert import LVBERT_SMALL_SEARCHED, LVBertSpace, arch_from_string
from nasplug.text.packing import PackedData
from nasplug.text.tokenizer import TokenInfo


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """Best FLOP/s of an n x n x n matmul in ``dtype`` (2 n^3 FLOPs per product)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    torch.mm(a, b)  # warm-up (kernel selection, AMX tile configuration)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def random_data(vocab: int, seq: int, rows: int, seed: int = 0) -> PackedData:
    """Uniform random ids (throughput does not depend on the text) framed by [CLS] ... [SEP]."""
    tokens = TokenInfo(vocab_size=vocab, pad_id=0, unk_id=1, cls_id=2, sep_id=3, mask_id=4, special_ids=(0, 1, 2, 3, 4))
    ids = torch.randint(5, vocab, (rows, seq), generator=torch.Generator().manual_seed(seed), dtype=torch.int32)
    ids[:, 0], ids[:, -1] = 2, 3
    return PackedData(train=ids[: rows - 64], heldout=ids[rows - 64 :], tokens=tokens)


def step_flops(space: LVBertSpace, arch: dict[str, Any], batch: int, seq: int, mask_prob: float) -> float:
    """Training FLOPs of one step: 3 x (encoder forward + MLM head at the masked positions)."""
    dims = space.dims
    head = 2 * (dims.hidden * dims.embedding + dims.embedding * dims.vocab_size)  # per masked token
    forward = batch * space.metrics(arch)["flops"] + batch * seq * mask_prob * head
    return 3 * forward


def measure(name: str, space: LVBertSpace, *, supernet: bool, batch: int, seq: int, precision: str, steps: int,
            warmup: int, peaks: dict[str, float]) -> dict[str, Any]:
    cfg = TrainConfig(steps=steps, batch_size=batch, lr=1e-4, warmup_steps=0, log_every=1, eval_batches=1,
                      eval_archs=1, precision=precision, device="cpu", seed=0)
    data = random_data(space.dims.vocab_size, seq, rows=batch * (steps + 1) + 64)
    with tempfile.TemporaryDirectory() as run_dir:
        if supernet:
            model = space.build_supernet(seed=0)
            pretrain(model, data, cfg, run_dir, space=space, progress=False)
        else:
            arch = arch_from_string(LVBERT_SMALL_SEARCHED)
            model = space.build(arch, head="mlm", seed=0)
            pretrain(model, data, cfg, run_dir, progress=False)
        records = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "event" not in r][warmup:]
    tokens_per_s = statistics.median(r["tokens_per_s"] for r in records)
    flops_per_s = []
    for r in records:
        arch = space.parse(r["arch"]) if "arch" in r else arch_from_string(LVBERT_SMALL_SEARCHED)
        seconds = batch * seq / r["tokens_per_s"]
        flops_per_s.append(step_flops(space, arch, batch, seq, cfg.mask_prob) / seconds)
    achieved = statistics.median(flops_per_s)
    return {"model": name, "precision": precision, "batch": batch, "seq": seq, "tokens_per_s": tokens_per_s,
            "gflop_per_s": achieved / 1e9, "frac_fp32_peak": achieved / peaks["fp32"],
            "frac_bf16_peak": achieved / peaks["bf16"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="steps per measurement (warm-up included)")
    parser.add_argument("--warmup", type=int, default=2, help="steps dropped from the statistics")
    parser.add_argument("--small-batch", type=int, default=32, help="batch of the LV-BERT-small runs")
    parser.add_argument("--only", choices=["cpu", "small"], default=None, help="measure one model only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; matmul peak (2048^3): "
          f"fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    cpu_space = LVBertSpace(size=None, slots=12, hidden=128, vocab_size=8192, max_positions=64, seq_len=64)
    small_space = LVBertSpace(size="small", slots=24, seq_len=128)
    runs = []
    if args.only in (None, "cpu"):
        runs += [("cpu-supernet (h128, 12 slots, SPOS)", cpu_space, True, 32, 64)]
    if args.only in (None, "small"):
        runs += [("lvbert-small (searched, standalone)", small_space, False, args.small_batch, 128)]
    print(f"{'model':38s} {'prec':5s} {'batch':>5s} {'seq':>4s} {'tokens/s':>10s} {'GFLOP/s':>9s} "
          f"{'/fp32 peak':>10s} {'/bf16 peak':>10s}")
    for name, space, supernet, batch, seq in runs:
        for precision in ("fp32", "bf16"):
            r = measure(name, space, supernet=supernet, batch=batch, seq=seq, precision=precision,
                        steps=args.steps, warmup=args.warmup, peaks=peaks)
            print(f"{r['model']:38s} {r['precision']:5s} {r['batch']:5d} {r['seq']:4d} {r['tokens_per_s']:10.0f} "
                  f"{r['gflop_per_s']:9.1f} {r['frac_fp32_peak']:10.1%} {r['frac_bf16_peak']:10.1%}", flush=True)


if __name__ == "__main__":
    main()
