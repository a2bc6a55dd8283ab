"""Seeds derived per purpose and step, so every random choice of a run is reproducible alone."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, stream: str, *parts: int) -> int:
    """An independent 56-bit seed per (run seed, stream name, step, ...): stable everywhere."""
    text = ":".join([str(seed), stream, *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")


def auxiliary_seed(train_seed: int) -> int:
    """The seed a training run with ``train_seed`` initialises the task's auxiliary modules
    with (ELECTRA's generator): whoever rebuilds them to load their trained weights passes
    the same seed, so the modules are built the same way."""
    return derive_seed(train_seed, "generator")
