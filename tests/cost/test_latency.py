"""Latency tables and measurement (nasplug.cost) on a tiny LV-BERT space: the median of
interleaved rounds on a fake clock, the table's entries and constant, its file read back, a
table of another space refused, predicted latency as a space metric that constraints read,
and the two commands. Nothing here checks a timing: the figures are checked for how they are
computed, on whatever the machine measured."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from nasplug.cli import main
from nasplug.constraints import MaxMetric
from nasplug.cost import measure
from nasplug.cost.attach import with_latency
from nasplug.cost.check import agreement, check_table
from nasplug.cost.measure import Device, measure_many
from nasplug.cost.table import LatencyTable, build_table, load_table, parts_of
from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.space import LVBertSpace
from nasplug.spaces.toy import ToySpace

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py
TINY = Path(__file__).resolve().parents[1] / "data" / "tiny-pipeline.yaml"
QUICK = Device(seq_len=16, warmup=0, repeats=1, calls=1)


def tiny_space(slots: int = 3) -> LVBertSpace:
    return LVBertSpace(size=None, hidden=32, heads=1, ffn=64, embedding=32, slots=slots, vocab_size=320,
                       max_positions=32, seq_len=32)


class FakeClock:
    """Seconds that advance only when a fake call runs: call ``i``'s ``j``-th run takes
    ``(i + 1) * (1 + j % 3)`` ms."""

    def __init__(self) -> None:
        self.now = 0.0
        self.runs: dict[int, int] = {}

    def __call__(self) -> float:
        return self.now

    def call(self, i: int):
        def run() -> None:
            j = self.runs.get(i, 0)
            self.runs[i] = j + 1
            self.now += (i + 1) * (1 + j % 3) / 1000.0
        return run


@pytest.mark.parametrize("clock", ["wall", "thread"])
def test_measure_many_is_the_median_over_rounds_of_each_call_s_mean(clock: str, monkeypatch) -> None:
    fake, other = FakeClock(), FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", fake if clock == "wall" else other)
    monkeypatch.setattr(measure.time, "thread_time", fake if clock == "thread" else other)
    device = Device(warmup=1, repeats=5, calls=2, clock=clock, statistic="median")
    got = measure_many([fake.call(0), fake.call(1), fake.call(2)], device, seed=3)
    for i, ms in enumerate(got):
        # after one warm-up run, round r runs invocations 1 + 2r and 2 + 2r
        samples = [(i + 1) * ((1 + (1 + 2 * r) % 3) + (1 + (2 + 2 * r) % 3)) / 2 for r in range(5)]
        assert ms == pytest.approx(statistics.median(samples))
    assert fake.runs == {0: 11, 1: 11, 2: 11}


def test_the_min_statistic_is_the_fastest_round(monkeypatch) -> None:
    fake = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", fake)
    device = Device(warmup=1, repeats=5, calls=2)  # the default: the fastest round
    got = measure_many([fake.call(0), fake.call(1)], device, seed=3)
    for i, ms in enumerate(got):
        samples = [(i + 1) * ((1 + (1 + 2 * r) % 3) + (1 + (2 + 2 * r) % 3)) / 2 for r in range(5)]
        assert ms == pytest.approx(min(samples)) and min(samples) < statistics.median(samples)
    assert Device().statistic == "min" and Device.from_json(Device().to_json(), "f").statistic == "min"
    old = {k: v for k, v in Device().to_json().items() if k != "statistic"}
    assert Device.from_json(old, "f").statistic == "median", "a file written before the setting was measured so"
    with pytest.raises(NasplugError, match=r"^--statistic: 'mean' is not allowed; allowed: median, min$"):
        Device(statistic="mean")


def test_device_settings_are_checked() -> None:
    with pytest.raises(NasplugError, match="--clock: thread measures one thread's CPU time"):
        Device(threads=2, clock="thread")
    with pytest.raises(NasplugError, match="--repeats"):
        Device(repeats=0)
    with pytest.raises(NasplugError, match="--device: 'gpu'"):
        Device(name="gpu")


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return build_table(tiny_space(), QUICK, {"name": "lvbert", **_dims()}, calibrate=3, seed=1)


def _dims() -> dict:
    return {"size": None, "hidden": 32, "heads": 1, "ffn": 64, "embedding": 32, "slots": 3, "vocab_size": 320,
            "max_positions": 32, "seq_len": 32}


def test_the_table_has_every_option_at_every_position_and_a_fitted_constant(table: LatencyTable, tmp_path) -> None:
    space = tiny_space()
    assert list(table.entries) == list(space.choices())
    for choice, options in space.choices().items():
        assert [o for o, _ in table.entries[choice]] == list(options)
        assert all(ms > 0 for _, ms in table.entries[choice])
    calib = table.calibration
    assert len(calib) == 3 and len({c["arch"] for c in calib}) == 3
    for c in calib:
        arch = space.parse(c["arch"])
        assert c["blocks_ms"] == pytest.approx(sum(table.entry(k, arch[k]) for k in space.choices()))
    assert table.constant_ms == pytest.approx(statistics.median(c["measured_ms"] - c["blocks_ms"] for c in calib))
    arch = space.parse("CAF")
    keys = list(space.choices())
    expected = sum(table.entry(k, v) for k, v in zip(keys, ("conv", "attn", "ffn"))) + table.constant_ms
    assert table.predict(arch) == pytest.approx(max(0.0, expected))  # never negative (a tiny model, a fitted constant)
    assert "CPUs" in table.machine and table.device == QUICK
    table.save(tmp_path / "lut.json")
    again = load_table(tmp_path / "lut.json")
    assert again.to_json() == table.to_json() and again.predict(arch) == table.predict(arch)


def test_a_table_of_another_space_is_one_line(table: LatencyTable) -> None:
    with pytest.raises(NasplugError, match="latency table: no entry for L0?3="):
        with_latency(tiny_space(slots=4), table)
    with pytest.raises(NasplugError, match="has no latency parts"):
        parts_of(ToySpace(slots=3))


def test_predicted_latency_is_a_minimised_space_metric_that_constraints_read(table: LatencyTable) -> None:
    space, plain = with_latency(tiny_space(), table), tiny_space()
    arch = space.parse("CAF")
    assert space.metrics(arch) == {**plain.metrics(arch), "latency_ms": table.predict(arch)}
    assert space.metric_directions["latency_ms"] == "minimize" and "latency_ms" not in plain.metric_directions
    assert "latency_ms" not in LVBertSpace.metric_directions
    cheap = min((space.parse(a) for a in ("CCC", "AAA", "FFF")), key=table.predict)
    limit = table.predict(cheap)
    bound = MaxMetric(space, "latency_ms", limit)
    assert bound(cheap) is None
    dear = max((space.parse(a) for a in ("CCC", "AAA", "FFF")), key=table.predict)
    assert bound(dear) is not None and "latency_ms" in bound(dear)


def test_agreement_is_kendall_tau_and_mean_absolute_percentage_error() -> None:
    got = agreement([1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 4.0, 4.5])
    assert got["kendall_tau"] == pytest.approx(1.0)
    assert got["mape_pct"] == pytest.approx(100 * (0 + 0 + 0.25 + 0.5 / 4.5) / 4)
    assert agreement([3.0, 2.0, 1.0], [1.0, 2.0, 3.0])["kendall_tau"] == pytest.approx(-1.0)


def test_check_table_measures_other_archs_than_the_calibration(table: LatencyTable) -> None:
    result = check_table(table, 4, seed=0, space=tiny_space())
    assert result["archs"] == 4 and len({r["arch"] for r in result["rows"]}) == 4
    space = tiny_space()
    for row in result["rows"]:
        assert row["predicted_ms"] == pytest.approx(table.predict(space.parse(row["arch"])))
        assert row["measured_ms"] > 0
    expected = agreement([r["predicted_ms"] for r in result["rows"]], [r["measured_ms"] for r in result["rows"]])
    assert result["kendall_tau"] == expected["kendall_tau"] and result["mape_pct"] == expected["mape_pct"]


def test_the_check_compares_with_the_mean_of_fresh_passes_and_the_passes_with_each_other(
        table: LatencyTable, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasplug.cost import check

    passes = [[1.0, 2.0, 3.0, 4.0], [1.5, 1.0, 3.5, 4.5], [2.0, 1.5, 3.0, 5.0]]  # ms per arch, per pass
    built: list[int] = []
    parts = check.parts_of

    def counting_parts(space):  # every pass builds its own models
        real = parts(space)

        class Counted:
            def latency_model(self, *args):
                built.append(1)
                return real.latency_model(*args)
        return Counted()

    monkeypatch.setattr(check, "parts_of", counting_parts)
    monkeypatch.setattr(check, "measure_many", lambda models, device, seed=0, progress=None: passes[seed])
    result = check_table(table, 4, seed=0, space=tiny_space(), passes=3)
    assert len(built) == 12, "three passes of four freshly built models"
    mean = [sum(p[i] for p in passes) / 3 for i in range(4)]
    assert [r["measured_ms"] for r in result["rows"]] == pytest.approx(mean)
    assert [r["passes_ms"] for r in result["rows"]] == [list(x) for x in zip(*passes, strict=True)]
    expected = agreement([r["predicted_ms"] for r in result["rows"]], mean)
    assert result["kendall_tau"] == pytest.approx(expected["kendall_tau"])
    pairs = [(0, 1), (0, 2), (1, 2)]
    taus = [agreement(passes[a], passes[b])["kendall_tau"] for a, b in pairs]  # tau is symmetric
    assert result["repeatability_tau"] == pytest.approx(sum(taus) / 3) and result["passes"] == 3
    single = check_table(table, 4, seed=0, space=tiny_space(), passes=1)
    assert "repeatability_tau" not in single and [r["measured_ms"] for r in single["rows"]] == passes[0]
    with pytest.raises(NasplugError, match=r"^--passes: expected an integer in 1\.\.100, got 0$"):
        check_table(table, 4, space=tiny_space(), passes=0)


def test_the_commands_write_a_table_and_check_it(tmp_path: Path, capsys) -> None:
    lut = tmp_path / "lut.json"
    quick = ["--seq-len", "16", "--warmup", "0", "--repeats", "1", "--calls", "1"]
    assert main(["-q", "latency-table", str(TINY), *quick, "--calibrate", "2", "--out", str(lut)]) == 0
    data = json.loads(lut.read_text())
    assert data["space"]["name"] == "lvbert" and data["space"]["slots"] == 3 and data["device"]["seq_len"] == 16
    assert main(["-q", "latency-check", str(lut), "--archs", "3", "--out", str(tmp_path / "check")]) == 0
    out = capsys.readouterr().out
    assert "Kendall tau" in out and "MAPE" in out and "repeatability: Kendall tau" in out
    check = json.loads((tmp_path / "check" / "latency_check.json").read_text())
    assert check["archs"] == 3 and (tmp_path / "check" / "latency_check.png").stat().st_size > 0
    assert main(["-q", "latency-table", str(TINY), "--seq-len", "64", "--out", str(tmp_path / "x.json")]) == 2
    assert "--seq-len: 64 is longer than the space's max_positions (32)" in capsys.readouterr().err
