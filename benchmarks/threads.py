"""One CPU thread against N, on an idle machine and beside busy processes: the default of ``threads``.

For each workload, each load and each thread count, interleaved (so drifting load from
other users hits every cell alike), it times train steps (forward + backward + AdamW) of an
LV-BERT model routed through the supernet, with the real MLM loss on random tokens:

* ``quickstart``: the demo's supernet (hidden 64, 8 slots, vocabulary 2048), batch 32 x 64;
* ``small``: ELECTRA-small dimensions (hidden 256, 24 slots, vocabulary 30522), batch 8 x 128.

Loads: ``idle`` (nothing started by this script; the machine's load average is printed, as
other users may be running), and ``busy`` (``--busy`` processes spinning on a core each,
started by this script, default 1: "one other busy process"). Threads: 1 and ``--threads``
(default: every core, ``os.cpu_count()``). It prints seconds per step (median of the
repeats) and the ratio N threads / 1 thread per load.

``--demo`` instead runs the whole demo (``nasplug run recipes/quickstart.yaml``) once per
(load, thread count) in a fresh process and prints its wall time: acceptance asks the demo
with one busy process to finish within 1.5x of its idle time at the default thread count.

    .venv/bin/python benchmarks/threads.py [--repeats 5] [--busy 1] [--threads N]
    NASPLUG_DATA_DIR=../shared/data .venv/bin/python benchmarks/threads.py --demo [--thread-counts 1,2] [--out DIR]

On a quiet machine both parts are what to rerun before changing ``DEFAULT_THREADS``
(``nasplug/hardware.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from nasplug.spaces.lvbert import LVBertConfig, LVBertSupernet, arch_from_string, interleaved, mlm_loss

REPO = Path(__file__).resolve().parents[1]
SPIN = "while True: pass"


@contextlib.contextmanager
def busy(n: int) -> Iterator[None]:
    """``n`` processes spinning on a core each, stopped (by their own ids) on exit."""
    procs = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)  # let the scheduler place them
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def workload(name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    """A train-step closure of the named size (weights, batch and optimizer built once)."""
    if name == "quickstart":
        config = LVBertConfig(vocab_size=2048, hidden_size=64, embedding_size=64, num_attention_heads=1,
                              intermediate_size=256, max_position_embeddings=64, layers=["attn"] * 8)
        slots, batch, seq = 8, 32, 64
    else:
        config, slots, batch, seq = LVBertConfig.from_size("small", slots=24), 24, 8, 128
    supernet = LVBertSupernet(config, num_slots=slots, seed=seed, discriminator_head=False).train()
    supernet.activate(arch_from_string(interleaved(slots)))
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch, seq), generator=gen)
    labels = torch.where(torch.rand(batch, seq, generator=gen) < 0.15, ids, torch.full_like(ids, -100))
    optimizer = torch.optim.AdamW(supernet.parameters(), lr=1e-4)

    def step() -> None:
        loss = mlm_loss(supernet.mlm_logits(supernet(ids), labels), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def steps(args: argparse.Namespace) -> None:
    counts = [1, args.threads]
    print(f"threads benchmark: {os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f} (1 min), "
          f"torch {torch.__version__}, {args.repeats} repeats of {args.steps} steps, interleaved")
    print(f"{'workload':<11} {'load':<7} " + " ".join(f"{f'{n} thr s/step':>13}" for n in counts)
          + f"   {counts[1]} thr / 1 thr")
    for name in ("quickstart", "small"):
        step = workload(name)
        for load, n_busy in (("idle", 0), ("busy", args.busy)):
            times: dict[int, list[float]] = {n: [] for n in counts}
            with busy(n_busy):
                for threads in counts:  # warm-up at each count
                    torch.set_num_threads(threads)
                    step()
                for _ in range(args.repeats):
                    for threads in counts:
                        torch.set_num_threads(threads)
                        start = time.perf_counter()
                        for _ in range(args.steps):
                            step()
                        times[threads].append((time.perf_counter() - start) / args.steps)
            med = {n: statistics.median(v) for n, v in times.items()}
            label = load if load == "idle" else f"busy x{n_busy}"
            print(f"{name:<11} {label:<7} " + " ".join(f"{med[n]:13.3f}" for n in counts)
                  + f"   {med[counts[1]] / med[1]:9.2f}")


def demo(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.thread_counts.split(",")]
    print(f"demo benchmark: nasplug run recipes/quickstart.yaml, {os.cpu_count()} CPUs, load average before "
          f"{os.getloadavg()[0]:.2f}; wall seconds per (load, threads)")
    walls: dict[tuple[str, int], float] = {}
    for load, n_busy in (("idle", 0), ("busy", args.busy)):
        for threads in counts:
            with tempfile.TemporaryDirectory() as tmp, busy(n_busy):
                env = {**os.environ, "NASPLUG_CACHE": os.environ.get("NASPLUG_CACHE", str(Path(tmp) / "cache"))}
                env.pop("OMP_NUM_THREADS", None)
                out = (Path(args.out) if args.out else Path(tmp)) / f"{load}-t{threads}"
                cmd = [sys.executable, "-m", "nasplug", "-q", "run", str(REPO / "recipes" / "quickstart.yaml"),
                       "--out", str(out), "--threads", str(threads)]
                start = time.perf_counter()
                try:
                    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, timeout=args.timeout).returncode
                except subprocess.TimeoutExpired:
                    done = None  # cut at the timeout: shown as inf
                wall = time.perf_counter() - start
                walls[(load, threads)] = wall if done == 0 else float("inf") if done is None else float("nan")
            print(f"  {load if load == 'idle' else f'busy x{n_busy}':<8} threads {threads}: "
                  f"{walls[(load, threads)]:7.1f} s", flush=True)
    for threads in counts:
        print(f"threads {threads}: busy / idle = {walls[('busy', threads)] / walls[('idle', threads)]:.2f} "
              f"(target <= 1.5 at the default)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="train steps per timed repeat")
    parser.add_argument("--busy", type=int, default=1, help="spinning processes for the busy load")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="N, compared with 1")
    parser.add_argument("--demo", action="store_true", help="time the whole demo instead of train steps")
    parser.add_argument("--thread-counts", default="1,2", help="with --demo: the thread counts to run")
    parser.add_argument("--timeout", type=float, default=1800, help="with --demo: seconds before a run is cut")
    parser.add_argument("--out", help="with --demo: keep the run directories here (<load>-t<threads>)")
    args = parser.parse_args()
    if args.demo:
        demo(args)
    else:
        steps(args)


if __name__ == "__main__":
    main()
