"""LV-BERT against the LatencyParts contract (nasplug.testing.LatencyPartsContract), at tiny size."""

from __future__ import annotations

import pytest

from nasplug.spaces.lvbert.space import LVBertSpace
from nasplug.testing import LatencyPartsContract

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class TestLVBertLatencyParts(LatencyPartsContract):
    @pytest.fixture
    def space(self) -> LVBertSpace:
        return LVBertSpace(size=None, hidden=32, heads=1, ffn=64, embedding=32, slots=3, vocab_size=320,
                           max_positions=32, seq_len=32)
