"""CRC-32C of a checkpoint-sized buffer: google-crc32c's C code (the ``fast`` extra) against
the numpy fallback, measured side by side in one run.

Target: the C code is at least 20x faster (a base-size official checkpoint: well under a
second instead of tens of seconds). Run: ``.venv/bin/python benchmarks/crc32c.py [--mb 200]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from nasplug.spaces.lvbert import tf_format


def best_of(fn, data: bytes, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="buffer size in MB (default 200)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if tf_format._FAST is None:
        print("google-crc32c (C) is not installed: pip install 'nasplug[fast]'")
        return 1
    data = os.urandom(args.mb << 20)
    assert tf_format.crc32c(data) == tf_format.crc32c_numpy(data)
    fast = best_of(tf_format.crc32c, data, args.repeats)
    slow = best_of(tf_format.crc32c_numpy, data, args.repeats)
    print(f"{args.mb} MB: google-crc32c {fast:.3f} s, numpy {slow:.3f} s, ratio {slow / fast:.1f}x (target >= 20x)")
    return 0 if slow / fast >= 20 else 1


if __name__ == "__main__":
    sys.exit(main())
