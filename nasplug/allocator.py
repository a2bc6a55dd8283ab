"""Let glibc keep freed memory for reuse in CPU runs.

PyTorch's CPU tensors come from ``malloc``. With glibc's defaults a block of a few MB (one
layer's activations) is often mapped from the kernel and handed back when freed, so the
next activation page-faults its memory in again: about a million page faults per call
scoring 20 ELECTRA-small-sized archs, 40% fewer with this setting, and calls 4-8% faster
(`benchmarks/malloc_tuning.py`, side by side; the rest are blocks over glibc's 32 MiB
ceiling, such as the vocabulary logits). PyTorch's CPU performance guide recommends
an allocator that keeps memory (jemalloc or tcmalloc); on glibc the same effect comes from
two ``mallopt`` settings. The process then keeps its peak memory until it exits, which is
what a training or search job wants.

The ``nasplug`` command calls :func:`keep_freed_memory` at start; a library user may call
it too. ``NASPLUG_MALLOC_TUNING=0`` turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 2**31 - 1


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MiB from the heap and never trim it; True if glibc took it."""
    if os.environ.get("NASPLUG_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no glibc (e.g. musl): leave the allocator alone
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
