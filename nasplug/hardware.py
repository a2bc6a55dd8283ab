"""What the machine offers: the numeric precision and the CPU thread count a run uses.

``precision: auto`` (the default of the training sections and of the inherited-weights
evaluator) resolves once to ``bf16`` where the device multiplies bf16 matrices faster than
fp32 ones, and to ``fp32`` elsewhere:

* CUDA: a GPU with native bf16 (compute capability 8.0 or later: A100, H100, ...);
* CPU with AMX (``amx_tile``, Sapphire Rapids and later): bf16;
* CPU with ``avx512_bf16`` but no AMX: measured, once per process (:func:`cpu_bf16_speedup`,
  a few tenths of a second at most): bf16 when its matrix products run at least
  :data:`BF16_MIN_SPEEDUP` times as fast as fp32's. The flag alone does not tell: on the
  Xeon development machines of earlier stops bf16 products ran at about half of fp32's speed,
  on the AMD EPYC (Zen 4) ones at 2.2-2.5 times (``benchmarks/step.py`` prints both peaks);
* any other CPU: fp32.

``threads`` (the recipe's top-level key, ``--threads``) is the number of CPU threads torch
uses; by default 1 (or ``$OMP_NUM_THREADS`` when it is set): ``benchmarks/threads.py``
measured that a second thread buys little on an idle 2-core machine and costs several times
over when another process is busy on a core, since every op then waits at a barrier for a
descheduled thread. Results depend on the thread count in their last bits (a matrix product
splits its sums by thread), so a run records the count it used in ``run.json`` and a resumed
run keeps it.

The pipeline resolves both once per run (:mod:`nasplug.pipeline.machine`) and records the
choice and the reason; :func:`resolve_precision` is also what the training loop and the
evaluator call when they are given ``auto`` directly.
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

import torch

from nasplug.errors import NasplugError

#: What a ``precision`` setting may say.
PRECISION_SETTINGS = ("auto", "fp32", "bf16")
#: Threads when neither the recipe, ``--threads`` nor ``$OMP_NUM_THREADS`` says (benchmarks/threads.py).
DEFAULT_THREADS = 1
MAX_THREADS = 1024
#: ``auto`` picks bf16 on a CPU without AMX when its bf16 products are at least this much faster.
BF16_MIN_SPEEDUP = 1.25
#: The matrix product the CPU probe times in both precisions: (m, k, n), about 1 GFLOP.
BF16_PROBE_SHAPE = (1024, 512, 1024)


@dataclass(frozen=True)
class Choice:
    """A resolved setting and why: ``value`` is what the run uses."""

    value: str | int
    reason: str


def fast_bf16(device: torch.device | str) -> Choice:
    """``Choice(True|False, reason)``: whether ``device`` multiplies bf16 faster than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        name = torch.cuda.get_device_name(index)
        fast = major >= 8
        return Choice(fast, f"{name} (compute capability {major}.{minor}) "
                            f"{'has' if fast else 'lacks'} native bf16 matrix units")
    if device.type == "cpu":
        amx = _cpu_flag("_is_amx_tile_supported")
        if amx:
            return Choice(True, "the CPU has AMX (bf16 tile matrix units)")
        if _cpu_flag("_is_avx512_bf16_supported"):
            speedup = cpu_bf16_speedup()
            fast = speedup >= BF16_MIN_SPEEDUP
            return Choice(fast, f"the CPU has avx512_bf16 but no AMX, and its bf16 matrix products measured "
                                f"{speedup:.2f}x as fast as fp32's ({'at least' if fast else 'under'} "
                                f"{BF16_MIN_SPEEDUP}x)")
        return Choice(False, "the CPU has neither AMX nor avx512_bf16")
    return Choice(False, f"no bf16 speed rule for device type {device.type!r}")


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup() -> float:
    """bf16 / fp32 throughput of a :data:`BF16_PROBE_SHAPE` matrix product on one core of this
    CPU: the best of five timings of each, taken in turns (fp32, bf16, fp32, ...) after a
    warm-up, so that a burst of other work slows both alike, on one thread, so that a busy
    second core does not decide. Measured once per process."""
    m, k, n = BF16_PROBE_SHAPE
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=gen), torch.randn(k, n, generator=gen)
    pairs = {dtype: (a.to(dtype), b.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(pairs, math.inf)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for x, y in pairs.values():
            x @ y  # warm-up: kernel choice, packing buffers
        for _ in range(5):
            for dtype, (x, y) in pairs.items():
                start = time.perf_counter()
                x @ y
                best[dtype] = min(best[dtype], time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return best[torch.float32] / max(best[torch.bfloat16], 1e-9)


def _cpu_flag(name: str) -> bool:
    probe = getattr(torch.cpu, name, None)  # torch's cpuinfo queries (private, hence guarded)
    try:
        return bool(probe()) if callable(probe) else False
    except RuntimeError:
        return False


def resolve_precision(setting: str, device: torch.device | str, field: str = "precision") -> Choice:
    """``Choice("fp32"|"bf16", reason)`` for a ``precision`` setting on ``device``."""
    if setting not in PRECISION_SETTINGS:
        raise NasplugError(f"{field}: {setting!r} is not allowed; allowed: {', '.join(PRECISION_SETTINGS)}")
    if setting != "auto":
        return Choice(setting, "set in the recipe")
    fast = fast_bf16(device)
    return Choice("bf16" if fast.value else "fp32", f"auto: {fast.reason}")


def check_threads(value: object, field: str = "threads") -> int:
    """``value`` as a thread count; NasplugError naming ``field`` unless it is an int in range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        raise NasplugError(f"{field}: must be an integer between 1 and {MAX_THREADS}, got {value!r}")
    return value


def default_threads() -> Choice:
    """The thread count when nothing sets one: ``$OMP_NUM_THREADS`` if set, else
    :data:`DEFAULT_THREADS`."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            return Choice(check_threads(int(env), "OMP_NUM_THREADS"), "from $OMP_NUM_THREADS")
        except ValueError:
            raise NasplugError(f"OMP_NUM_THREADS: must be an integer between 1 and {MAX_THREADS}, "
                               f"got {env[:20]!r}") from None
    return Choice(DEFAULT_THREADS, "the default (benchmarks/threads.py: a second thread costs several times over "
                                   "when another process is busy on a core)")
