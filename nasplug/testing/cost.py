"""The contract of :class:`~nasplug.cost.table.LatencyParts`: what a space offers for latency
tables and direct measurement. Subclass with a ``space`` fixture (a tiny space: every option
is built and run)::

    class TestMyLatency(LatencyPartsContract):
        @pytest.fixture
        def space(self):
            return MySpace(hidden=32, slots=3)

Timings are never checked (the machine may be loaded): only that everything runs (under
every combination of a declared latency context) and that the table's prediction is the sum
of the active choices' entries under the arch's context values plus its constant, never
below 0.
"""

from __future__ import annotations

import random

import pytest

from nasplug.conditions import active
from nasplug.cost.measure import Device
from nasplug.cost.table import LatencyParts, block_calls, build_table, context_of, contexts
from nasplug.space import SearchSpace

#: One untimed-cheap measurement per item: enough to run everything once.
QUICK = Device(seq_len=8, warmup=0, repeats=1, calls=1)


class LatencyPartsContract:
    """Promises of a space implementing :class:`~nasplug.cost.table.LatencyParts`."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        raise NotImplementedError("provide a `space` fixture")

    def test_it_declares_the_parts(self, space: SearchSpace) -> None:
        assert isinstance(space, LatencyParts), "latency_block and latency_model are both needed"

    def test_every_option_at_every_position_runs_alone(self, space: SearchSpace) -> None:
        rows = block_calls(space, QUICK.batch_size, QUICK.seq_len)  # every context value, if one is declared
        names = context_of(space)
        expected = sum(len(o) for k, o in space.choices().items() if k not in names)
        assert len(rows) == expected * len(contexts(space, names)), "one block per option per context value"
        for where, choice, option, call in rows:
            assert set(where) == set(names), f"latency_block({choice}, {option!r}) measured without its context"
            assert call is None or callable(call), f"latency_block({choice}, {option!r}) is no callable or None"
            if call is not None:
                call()

    def test_the_extracted_model_runs_for_sampled_archs(self, space: SearchSpace) -> None:
        rng = random.Random(0)
        for _ in range(3):
            call = space.latency_model(space.sample(rng), QUICK.batch_size, QUICK.seq_len)  # type: ignore[attr-defined]
            assert callable(call), "latency_model returns a no-argument callable"
            call()

    def test_a_table_predicts_its_active_entries_sum_plus_its_constant(self, space: SearchSpace) -> None:
        table = build_table(space, QUICK, {"name": space.name}, calibrate=2)
        table.check_space(space)
        assert len(table.calibration) == 2
        for seed in range(3):
            arch = space.sample(random.Random(seed))
            on = active(space, arch)
            blocks = sum(table.entry(k, arch[k], arch) for k in table.choice_names() if on[k])
            assert table.predict(arch, space) == pytest.approx(max(0.0, blocks + table.constant_ms))
