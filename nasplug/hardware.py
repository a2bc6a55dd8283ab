"""What the machine offers: the numeric precision and the CPU thread count a run uses.

``precision: auto`` (the default of the training sections and of the inherited-weights
evaluator) resolves once to ``bf16`` where the device multiplies bf16 matrices faster than
fp32 ones, and to ``fp32`` elsewhere:

* CUDA: a GPU with native bf16 (compute capability 8.0 or later: A100, H100, ...);
* CPU: AMX (``amx_tile``, Sapphire Rapids and later). A CPU with ``avx512_bf16`` but no AMX
  does *not* qualify: on such a Xeon (the 2-core development machine) bf16 matrix products
  run at about half of fp32's speed and a bf16 train step is slower than an fp32 one
  (``benchmarks/step.py`` prints both peaks and both steps side by side).

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

import os
from dataclasses import dataclass

import torch

from nasplug.errors import NasplugError

#: What a ``precision`` setting may say.
PRECISION_SETTINGS = ("auto", "fp32", "bf16")
#: Threads when neither the recipe, ``--threads`` nor ``$OMP_NUM_THREADS`` says (benchmarks/threads.py).
DEFAULT_THREADS = 1
MAX_THREADS = 1024


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
            return Choice(False, "the CPU has avx512_bf16 but no AMX: bf16 matrix products run at about half of "
                                 "fp32's speed on such a CPU (benchmarks/step.py)")
        return Choice(False, "the CPU has neither AMX nor avx512_bf16")
    return Choice(False, f"no bf16 speed rule for device type {device.type!r}")


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
