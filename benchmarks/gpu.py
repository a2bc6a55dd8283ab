"""The GPU measurements of benchmarks/gpu.sh, one section after another (each printed as it ends).

1. environment: torch, CUDA, the card(s), nasplug's commit;
2. the card's measured bf16 matrix-product peak (8192^3, best of 5), beside its data-sheet
   dense bf16 peak where the card is known;
3. LV-BERT-small train steps in bf16 (autocast), batch 128 x 128, MLM, AdamW: the supernet
   routed through a fresh sampled arch every step, the standalone searched model, and HF
   ``BertForMaskedLM`` at the same dimensions; seconds per step, tokens/s, model FLOP/s and
   MFU against the measured and the data-sheet peaks (FLOPs as benchmarks/step.py counts them);
4. the same standalone and BERT steps with ``torch.compile`` (compile time printed apart);
5. the inherited-weights evaluator: candidates/s over two evolution generations (shared
   prefixes, bf16) against one-by-one fp32 on the first generation;
6. with two or more GPUs: a 2-process torchrun NCCL all-reduce smoke test.

``--dry-run`` runs every section on the CPU at tiny sizes (hidden 32, 4 slots, a few steps,
``torch.compile`` with the eager backend, the smoke test with gloo): what the test suite runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from step import model_flops  # noqa: E402  (benchmarks/ is not a package)

#: Data-sheet dense bf16 FLOP/s (no sparsity) of cards by a name fragment, most specific first.
DATASHEET_BF16 = (("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12),
                  ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10", 125e12))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def datasheet_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for fragment, peak in DATASHEET_BF16 if fragment in name), None)


def environment(device: torch.device) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True)
    cards = (f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(device)} (capability "
             f"{'.'.join(map(str, torch.cuda.get_device_capability(device)))})" if device.type == "cuda"
             else f"CPU ({torch.backends.cpu.get_cpu_capability()}), dry run")
    return (f"environment: torch {torch.__version__}, CUDA {torch.version.cuda}, {cards}, "
            f"nasplug {commit.stdout.strip() or 'unknown commit'}, python {sys.version.split()[0]}")


def measured_peak(device: torch.device, n: int) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    a @ b
    sync(device)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def per_step(step: Callable[[], None], device: torch.device, steps: int, warmup: int = 2) -> float:
    """Seconds per call of ``step`` (after ``warmup`` calls), device work included."""
    for _ in range(warmup):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / steps


def models(dims: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The supernet, the standalone searched model, HF BERT, a batch and each one's FLOPs."""
    from transformers import BertConfig, BertForMaskedLM

    from nasplug.spaces.lvbert import LVBERT_SMALL_SEARCHED, LVBertSpace, arch_from_string

    space = LVBertSpace(**dims["space"])
    supernet = space.build_supernet().to(device).train()
    arch = arch_from_string(LVBERT_SMALL_SEARCHED[: space.slots])
    standalone = supernet.extract(arch, head="mlm").train()
    config = space.config()
    bert = BertForMaskedLM(BertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=space.slots // 2,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        attn_implementation="sdpa")).to(device).train()
    gen = torch.Generator().manual_seed(0)
    batch, seq = dims["batch"], dims["seq"]
    ids = torch.randint(5, config.vocab_size, (batch, seq), generator=gen)
    labels = torch.where(torch.rand(batch, seq, generator=gen) < 0.15, ids, torch.full_like(ids, -100))
    ids, labels = ids.to(device), labels.to(device)
    shape = dict(tokens=batch * seq, seq_len=seq, masked=int((labels != -100).sum()), hidden=config.hidden_size,
                 ffn=config.intermediate_size, heads=config.num_attention_heads, vocab=config.vocab_size)
    sampled = sum(model_flops([kind] * space.slots, embedding=config.embedding_size, **shape)
                  for kind in space.allowed) / len(space.allowed)  # the mean over uniformly sampled archs
    flops = {"supernet": sampled,
             "standalone": model_flops(supernet.route(arch), embedding=config.embedding_size, **shape),
             "bert": model_flops(["attn", "ffn"] * (space.slots // 2), embedding=None, full_head=True, **shape)}
    return {"space": space, "supernet": supernet, "standalone": standalone, "bert": bert, "ids": ids,
            "labels": labels, "flops": flops}


def train_step(name: str, m: dict[str, Any], device: torch.device, module: Any = None) -> Callable[[], None]:
    """One bf16 train step of model ``name`` (``module``: a compiled stand-in), AdamW."""
    import random

    from nasplug.spaces.lvbert import mlm_loss

    net = module if module is not None else m[name]
    optimizer = torch.optim.AdamW(m[name].parameters(), lr=1e-4)
    rng = random.Random(0)
    ids, labels = m["ids"], m["labels"]

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            if name == "supernet":  # a fresh arch every step, as supernet training samples
                m["supernet"].activate(m["space"].sample(rng))
                loss = mlm_loss(m["supernet"].mlm_logits(m["supernet"](ids), labels), labels)
            elif name == "standalone":
                loss = net(ids, labels=labels).loss
            else:
                loss = net(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def steps_section(m: dict[str, Any], device: torch.device, steps: int, peaks: dict[str, float | None]) -> None:
    print(f"\nbf16 train steps (autocast), batch {m['ids'].shape[0]} x {m['ids'].shape[1]}, MLM, AdamW", flush=True)
    for name in ("supernet", "standalone", "bert"):
        seconds = per_step(train_step(name, m, device), device, steps)
        print("  " + throughput_line(name, seconds, m, peaks), flush=True)


def throughput_line(name: str, seconds: float, m: dict[str, Any], peaks: dict[str, float | None]) -> str:
    flops = 3 * m["flops"][name] / seconds
    mfu = "  ".join(f"MFU {100 * flops / peak:5.1f}% of the {what} peak" for what, peak in peaks.items() if peak)
    return (f"{name:<11} {seconds * 1e3:9.1f} ms/step  {m['ids'].numel() / seconds:10.0f} tokens/s  "
            f"{flops / 1e12:7.2f} TFLOP/s  {mfu}")


def compile_section(m: dict[str, Any], device: torch.device, steps: int, peaks: dict[str, float | None],
                    backend: str) -> None:
    print(f"\ntorch.compile (backend {backend}): the standalone model and BERT, bf16", flush=True)
    for name in ("standalone", "bert"):
        compiled = torch.compile(m[name], backend=backend)
        step = train_step(name, m, device, module=compiled)
        start = time.perf_counter()
        step()  # compiles
        sync(device)
        compile_s = time.perf_counter() - start
        seconds = per_step(step, device, steps, warmup=1)
        print(f"  {throughput_line(name, seconds, m, peaks)}  (first step {compile_s:.1f} s)", flush=True)


def evaluator_section(m: dict[str, Any], dims: dict[str, Any]) -> None:
    """Candidates/s over two evolution generations: shared prefixes in bf16 vs one by one in fp32."""
    from nasplug.strategies.evolution import Evolution
    from nasplug.text.masking import MaskedBatch
    from nasplug.text.tasks import text_evaluator

    supernet, space = m["supernet"].eval(), m["space"]
    ids, labels = m["ids"][: dims["eval_batch"]], m["labels"][: dims["eval_batch"]]
    data = [MaskedBatch(torch.where(labels != -100, torch.full_like(ids, 4), ids), labels)]
    shared = text_evaluator(supernet, data, space=space, precision="bf16", rank_metric="mlm_loss",
                            rank_direction="minimize")
    alone = text_evaluator(supernet, data, space=space, precision="fp32", prefix_sharing=False)
    n = dims["population"]
    evo = Evolution(space, seed=0, population=n, parents=max(2, n // 5), mutations=n // 2, crossovers=n // 2)
    device = next(supernet.parameters()).device
    shared_s = alone_s = 0.0
    for generation in range(2):
        archs = evo.ask(dims["population"])
        sync(device)
        start = time.perf_counter()
        results = shared.evaluate_batch(archs)
        sync(device)
        shared_s += time.perf_counter() - start
        if generation == 0:
            start = time.perf_counter()
            alone.evaluate_batch(archs)
            sync(device)
            alone_s = time.perf_counter() - start
        for arch, result in zip(archs, results):
            evo.tell(arch, -result["mlm_loss"])
    print(f"\nevaluator, {n} candidates per generation, held-out {ids.shape[0]} x {ids.shape[1]}: shared-prefix bf16 "
          f"{2 * n / shared_s:.2f} candidates/s over 2 generations, one-by-one fp32 {n / alone_s:.2f} candidates/s "
          f"(first generation): x{(2 * n / shared_s) / (n / alone_s):.2f}", flush=True)


def smoke_section(dry_run: bool) -> bool:
    """A 2-process torchrun all-reduce (NCCL on two GPUs, gloo in the dry run); True when it passed."""
    if not dry_run and torch.cuda.device_count() < 2:
        print(f"\ntorchrun NCCL smoke test: skipped ({torch.cuda.device_count()} GPU)", flush=True)
        return True
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
           "--smoke-worker"] + (["--dry-run"] if dry_run else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    ok = done.returncode == 0 and done.stdout.count("smoke ok") == 2
    tail = (done.stderr.strip().splitlines() or [""])[-1][:200]
    print(f"\ntorchrun {'gloo' if dry_run else 'NCCL'} smoke test, 2 processes: {'ok' if ok else 'FAILED ' + tail}",
          flush=True)
    return ok


def smoke_worker(dry_run: bool) -> None:
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    device = torch.device("cpu") if dry_run else torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("gloo" if dry_run else "nccl", device_id=None if dry_run else device)
    value = torch.full((1024,), float(rank + 1), device=device)
    dist.all_reduce(value)
    assert float(value[0]) == 3.0, float(value[0])
    dist.barrier()
    dist.destroy_process_group()
    print("smoke ok", flush=True)


FULL = {"space": {"size": "small", "slots": 24}, "batch": 128, "seq": 128, "steps": 10, "eval_batch": 64,
        "population": 50, "peak_n": 8192}
DRY = {"space": {"size": None, "slots": 4, "hidden": 32, "heads": 2, "ffn": 64, "embedding": 16, "vocab_size": 500,
                 "max_positions": 32, "seq_len": 16}, "batch": 4, "seq": 16, "steps": 2, "eval_batch": 2,
       "population": 6, "peak_n": 256}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every section on the CPU at tiny sizes")
    parser.add_argument("--smoke-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke_worker:
        smoke_worker(args.dry_run)
        return
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("gpu.py: no CUDA device here; run with --dry-run on a CPU")
    device = torch.device("cpu") if args.dry_run else torch.device("cuda", 0)
    dims = DRY if args.dry_run else FULL
    torch.set_num_threads(1 if args.dry_run else torch.get_num_threads())  # tiny CPU ops: threads only wait
    torch.manual_seed(0)
    print(environment(device), flush=True)
    peaks = {"measured": measured_peak(device, dims["peak_n"]), "data-sheet": datasheet_peak(device)}
    sheet = f"{peaks['data-sheet'] / 1e12:.0f}" if peaks["data-sheet"] else "unknown"
    print(f"bf16 matrix-product peak: measured {peaks['measured'] / 1e12:.1f} TFLOP/s ({dims['peak_n']}^3), "
          f"data sheet {sheet} TFLOP/s", flush=True)
    m = models(dims, device)
    steps_section(m, device, dims["steps"], peaks)
    compile_section(m, device, dims["steps"], peaks, "eager" if args.dry_run else "inductor")
    evaluator_section(m, dims)
    if not smoke_section(args.dry_run):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
