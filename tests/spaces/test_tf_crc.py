"""CRC-32C of official checkpoints: google-crc32c's C code (the ``fast`` extra) when installed,
the numpy fallback otherwise; both give the same value."""

from __future__ import annotations

import random

import pytest

from nasplug.spaces.lvbert import tf_format

SIZES = [0, 1, 7, 63, 64, 65, 1000, 4096, 100_003, 1 << 20]


def test_the_numpy_crc32c_matches_the_standard_check_value() -> None:
    assert tf_format.crc32c_numpy(b"123456789") == 0xE3069283  # CRC-32C's published check value
    assert tf_format.crc32c_numpy(b"") == 0


@pytest.mark.parametrize("size", SIZES)
def test_the_c_and_the_numpy_crc32c_agree(size: int) -> None:
    google_crc32c = pytest.importorskip("google_crc32c")
    data = random.Random(size).randbytes(size)
    assert tf_format.crc32c_numpy(data) == google_crc32c.value(data)
    for view in (data, bytearray(data), memoryview(data)):  # the checkpoint reader passes each kind
        assert tf_format.crc32c(view) == tf_format.crc32c_numpy(data)


def test_the_c_crc32c_is_used_when_installed() -> None:
    google_crc32c = pytest.importorskip("google_crc32c")
    if google_crc32c.implementation != "c":
        pytest.skip("google-crc32c without its C extension: the numpy code is faster")
    assert tf_format._FAST is google_crc32c.value
