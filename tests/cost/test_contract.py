"""LV-BERT and elastic-BERT (a latency context: hidden) against the LatencyParts contract
(nasplug.testing.LatencyPartsContract), at tiny size."""

from __future__ import annotations

import pytest

from nasplug.spaces.elastic_bert.space import ElasticBertSpace
from nasplug.spaces.lvbert.space import LVBertSpace
from nasplug.testing import LatencyPartsContract

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class TestLVBertLatencyParts(LatencyPartsContract):
    @pytest.fixture
    def space(self) -> LVBertSpace:
        return LVBertSpace(size=None, hidden=32, heads=1, ffn=64, embedding=32, slots=3, vocab_size=320,
                           max_positions=32, seq_len=32)


class TestElasticBertLatencyParts(LatencyPartsContract):
    @pytest.fixture
    def space(self) -> ElasticBertSpace:
        return ElasticBertSpace(layers=3, depths=[2, 3], hidden=[32, 64], heads=[1, 2], ffn=[32, 64], head_size=16,
                                vocab_size=100, seq_len=16)
