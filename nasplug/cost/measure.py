"""Direct latency measurement: the fastest of timed rounds of forward calls on a named device.

The development machines are shared and noisy, so :func:`measure_many` interleaves: each
round times every item once (a few calls each), in a shuffled order, and an item's latency is
the minimum (or median) over rounds. A burst of load then spreads over all items instead of landing on one.
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nasplug.errors import NasplugError

#: The metric name every latency goes by (milliseconds per forward call of one batch).
LATENCY_METRIC = "latency_ms"
DEVICES = ("cpu",)
#: ``wall``: elapsed time (what a user waits on an idle machine); ``thread``: CPU time of the
#: measuring thread (``time.thread_time``; with one torch thread every op runs in it), which
#: leaves out the time other processes hold the core: on a shared, loaded machine the wall
#: time of a long call grows with the load while a short call often runs unpreempted.
CLOCKS = ("wall", "thread")
#: How the rounds' samples of one item become its latency. ``min`` (the default): the fastest
#: round, what the model costs when nothing else interferes (noise only ever adds time). Measured
#: on the shared VM of the development machine (30 LV-BERT-small models, 25 rounds, idle): two
#: measurements of the same models agreed on their order at Kendall tau 0.76 by their minimum
#: against 0.20 by their median, and a table checked with three passes reached 0.80 by the
#: minimum against 0.68 by the median (``benchmarks/latency_table.py``, README).
STATISTICS = ("median", "min")


@dataclass(frozen=True)
class Device:
    """Where and how a latency is measured.

    Args:
        name: ``cpu`` (the only device measured so far).
        threads: torch intra-op threads during the measurement.
        batch_size: sequences per forward call (the CLI's ``--batch``).
        seq_len: tokens per sequence.
        warmup: untimed calls per item before its first timed round.
        repeats: timed rounds; the latency is their minimum (or median: ``statistic``).
        calls: forward calls per timed round (their mean is one sample).
        clock: ``wall`` or ``thread`` (see :data:`CLOCKS`; ``thread`` needs ``threads: 1``).
        statistic: ``min`` (default) or ``median`` of the rounds (see :data:`STATISTICS`).
    """

    name: str = "cpu"
    threads: int = 1
    batch_size: int = 1
    seq_len: int = 128
    warmup: int = 3
    repeats: int = 15
    calls: int = 3
    clock: str = "wall"
    statistic: str = "min"

    def __post_init__(self) -> None:
        if self.name not in DEVICES:
            raise NasplugError(f"--device: {self.name!r} is not measured; allowed: {', '.join(DEVICES)}")
        if self.clock not in CLOCKS:
            raise NasplugError(f"--clock: {self.clock!r} is not a clock; allowed: {', '.join(CLOCKS)}")
        if self.statistic not in STATISTICS:
            raise NasplugError(f"--statistic: {self.statistic!r} is not allowed; allowed: {', '.join(STATISTICS)}")
        bounds = {"threads": (1, 1024), "batch_size": (1, 65536), "seq_len": (1, 1 << 20), "warmup": (0, 10_000),
                  "repeats": (1, 10_000), "calls": (1, 10_000)}
        for field, (low, high) in bounds.items():
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise NasplugError(f"--{field.replace('_', '-')}: expected an integer in {low}..{high}, got {value!r}")
        if self.clock == "thread" and self.threads != 1:
            raise NasplugError(f"--clock: thread measures one thread's CPU time; it needs --threads 1, got "
                               f"{self.threads}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str) -> Device:
        """The device stored in a file (NasplugError naming ``where`` when it is damaged)."""
        if not isinstance(data, dict):
            raise NasplugError(f"{where}: device: expected a mapping, got {type(data).__name__}")
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            raise NasplugError(f"{where}: device.{extra[0]}: unknown field; allowed: {', '.join(sorted(known))}")
        try:
            return cls(**{"statistic": "median", **data})  # files written before the setting: the median
        except (NasplugError, TypeError) as exc:
            raise NasplugError(f"{where}: device: {exc}") from None


def machine_name() -> str:
    """The machine a latency was measured on: host name, processor and CPU count."""
    import os

    cpu = platform.processor() or platform.machine()
    return f"{platform.node()} ({cpu}, {os.cpu_count()} CPUs, {platform.system()})"


Call = Callable[[], Any]


def measure_many(calls: Sequence[Call], device: Device, seed: int = 0,
                 progress: Callable[[int], None] | None = None) -> list[float]:
    """Latency in ms of each no-argument ``call`` (a forward pass on fixed inputs).

    Each call is warmed up ``device.warmup`` times; then ``device.repeats`` rounds each time
    every call ``device.calls`` times in a shuffled order (``seed``); the result is the
    minimum (or, ``device.statistic: median``, the median) over rounds of each call's mean time.
    torch runs with ``device.threads`` threads and without autograd; the previous thread count
    is restored. glibc keeps freed memory (:func:`~nasplug.allocator.keep_freed_memory`), as in
    every ``nasplug`` command, so a call does not page-fault its activations in again.
    """
    import torch

    from nasplug.allocator import keep_freed_memory

    keep_freed_memory()

    before = torch.get_num_threads()
    torch.set_num_threads(device.threads)
    rng = random.Random(seed)
    clock = time.thread_time if device.clock == "thread" else time.perf_counter
    samples: list[list[float]] = [[] for _ in calls]
    try:
        with torch.inference_mode():
            for call in calls:
                for _ in range(device.warmup):
                    call()
            order = list(range(len(calls)))
            for r in range(device.repeats):
                rng.shuffle(order)
                for i in order:
                    start = clock()
                    for _ in range(device.calls):
                        calls[i]()
                    samples[i].append((clock() - start) * 1000.0 / device.calls)
                if progress is not None:
                    progress(r + 1)
    finally:
        torch.set_num_threads(before)
    pick = min if device.statistic == "min" else statistics.median
    return [pick(s) for s in samples]
