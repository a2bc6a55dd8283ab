"""``latency: {measure: direct}``: each arch's extracted model measured once, kept in
``latency_measured.jsonl`` and read back, so a resumed search replays the values it saw.
The clock is a fake (``measure_many`` patched): values are what the test says they are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasplug.cost import direct
from nasplug.cost.attach import with_measured_latency
from nasplug.cost.direct import MeasuredLatencies
from nasplug.cost.measure import Device
from nasplug.errors import NasplugError
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe
from nasplug.spaces.lvbert.space import LVBertSpace

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "data" / "tiny-pipeline.yaml"
DEVICE = Device(seq_len=8, warmup=0, repeats=1, calls=1)

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def tiny_space() -> LVBertSpace:
    return LVBertSpace(size=None, hidden=32, heads=1, ffn=64, embedding=32, slots=3, vocab_size=64, max_positions=16,
                       seq_len=16)


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``measure_many`` patched: the n-th model ever measured takes 10 + n ms; returns the
    list of how many models each call measured."""
    calls: list[int] = []

    def measure_many(models: list[object], device: Device, seed: int = 0) -> list[float]:
        calls.append(len(models))
        return [10.0 + len(calls) - 1 + i for i in range(len(models))]

    monkeypatch.setattr(direct, "measure_many", measure_many)
    return calls


def test_each_arch_is_measured_once_and_read_back_by_the_next_run(tmp_path: Path, fake_clock: list[int]) -> None:
    path = tmp_path / "latency_measured.jsonl"
    space = tiny_space()
    measured = MeasuredLatencies(space, DEVICE, path)
    a, b = space.parse("CAF"), space.parse("FFA")
    assert measured.get(a) == 10.0 and measured.get(b) == 11.0
    assert measured.get(a) == 10.0, "a second ask reads the kept value"
    assert fake_clock == [1, 1]
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["arch"] for x in lines] == ["CAF", "FFA"] and [x["latency_ms"] for x in lines] == [10.0, 11.0]
    assert lines[0]["device"] == DEVICE.to_json() and lines[0]["machine"]
    again = MeasuredLatencies(tiny_space(), DEVICE, path)
    assert again.get(a) == 10.0 and again.get(b) == 11.0 and fake_clock == [1, 1], "nothing measured again"
    other = MeasuredLatencies(tiny_space(), Device(seq_len=16, warmup=0, repeats=1, calls=1), path)
    assert other.get(a) == 12.0, "a measurement made with other device settings is not reused"


def test_values_asked_before_the_run_starts_are_written_once_it_has(tmp_path: Path, fake_clock: list[int]) -> None:
    path, started = tmp_path / "run" / "latency_measured.jsonl", [False]
    space = tiny_space()
    measured = MeasuredLatencies(space, DEVICE, path, started=lambda: started[0])
    assert measured.get(space.parse("CAF")) == 10.0
    assert not path.exists(), "nothing written into a run that has not started"
    started[0] = True
    assert measured.get(space.parse("CAF")) == 10.0
    assert [json.loads(x)["arch"] for x in path.read_text().splitlines()] == ["CAF"]


def test_a_torn_last_line_is_dropped_and_a_damaged_one_is_one_line(tmp_path: Path, fake_clock: list[int]) -> None:
    path = tmp_path / "latency_measured.jsonl"
    space = tiny_space()
    MeasuredLatencies(space, DEVICE, path).get(space.parse("CAF"))
    good = path.read_bytes()
    path.write_bytes(good + b'{"key": "x", "arch"')  # a crash mid-write
    again = MeasuredLatencies(space, DEVICE, path)
    assert again.get(space.parse("CAF")) == 10.0
    assert path.read_bytes() == good + b'{"key": "x", "arch"', "reading repairs nothing"
    assert again.get(space.parse("FFA")) == 11.0
    lines = path.read_bytes().splitlines(keepends=True)
    assert lines[0] == good and json.loads(lines[1])["arch"] == "FFA", "the torn line is cut before the next append"
    record = json.loads(good)
    for field, value in (("latency_ms", -1), ("latency_ms", "fast"), ("device", 3), ("arch", None)):
        path.write_text(json.dumps({**record, field: value}) + "\n" + good.decode())
        with pytest.raises(NasplugError, match=rf"latency_measured\.jsonl: line 1: {field}") as err:
            MeasuredLatencies(space, DEVICE, path)
        assert "\n" not in str(err.value)


def test_the_space_gives_latency_ms_and_read_only_measures_nothing(tmp_path: Path, fake_clock: list[int]) -> None:
    path = tmp_path / "latency_measured.jsonl"
    space = with_measured_latency(tiny_space(), MeasuredLatencies(tiny_space(), DEVICE, path))
    arch = space.parse("ACF")
    assert space.metrics(arch)["latency_ms"] == 10.0
    assert space.metric_directions["latency_ms"] == "minimize"
    assert "params" in space.metrics(arch), "the space's own metrics are kept"
    report = with_measured_latency(tiny_space(), MeasuredLatencies(tiny_space(), DEVICE, path, read_only=True))
    assert report.metrics(arch)["latency_ms"] == 10.0
    assert "latency_ms" not in report.metrics(report.parse("FFF")), "read-only: an arch nobody measured has none"
    assert fake_clock == [1]


def test_a_search_on_measured_latency_replays_the_same_values_on_resume(tmp_path: Path,
                                                                         fake_clock: list[int]) -> None:
    sets = ["search.metric=null", "search.objectives=[mlm_acc, latency_ms]", "search.budget=8",
            "latency={measure: direct, seq_len: 16, warmup: 0, repeats: 1, calls: 1}"]
    out = tmp_path / "run"
    run_recipe(load_recipe(TINY, sets), out, stages=["latency", "supernet", "search"], progress=False)
    assert not (out / "latency_table.json").exists()
    kept = {json.loads(x)["arch"]: json.loads(x)["latency_ms"] for x in
            (out / "latency_measured.jsonl").read_text().splitlines()}
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    space = tiny_space()
    for t in trials:
        if t["status"] in ("ok", "cached"):
            assert t["metrics"]["latency_ms"] == kept[space.format(t["arch"])]
    assert len(set(kept.values())) == len(kept) > 2, "each arch measured once, with its own value"
    measured = sum(fake_clock)
    (out / "stages" / "search.json").unlink()  # the search runs again on resume: a replay of its log
    lines = (out / "trials.jsonl").read_text().splitlines(keepends=True)
    (out / "trials.jsonl").write_text("".join(lines[:3]))  # as if killed after three trials
    run_recipe(load_recipe(TINY, sets), out, resume=True, stages=["latency", "search"], progress=False)
    assert [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()] == trials
    assert sum(fake_clock) == measured, "the resumed search measured nothing again"
    from nasplug.report import render_report

    text = render_report(out)[0]
    assert "## Latency measured" in text and f"each of the {len(kept)} archs" in text


def test_only_the_run_measures_other_commands_read(tmp_path: Path, fake_clock: list[int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from nasplug.pipeline.context import RunContext

    sets = ["search.metric=null", "search.objectives=[mlm_acc, latency_ms]", "search.budget=6",
            "latency={measure: direct, seq_len: 16, warmup: 0, repeats: 1, calls: 1}"]
    out = tmp_path / "run"
    run_recipe(load_recipe(TINY, sets), out, stages=["latency", "supernet", "search"], progress=False)
    log = out / "latency_measured.jsonl"
    before, measured = log.read_bytes(), sum(fake_clock)
    reader = RunContext(recipe=load_recipe(TINY, sets), run_dir=out, progress=False)  # rank-corr, export
    kept = json.loads(before.splitlines()[0])
    assert reader.space.metrics(reader.space.parse(kept["arch"]))["latency_ms"] == kept["latency_ms"]
    unseen = next(a for a in ("AAA", "CCC", "FFF", "ACA", "CFC") if a.encode() not in before)
    assert "latency_ms" not in reader.space.metrics(reader.space.parse(unseen))
    log.write_bytes(before + b'{"key": "torn')
    with pytest.raises(NasplugError, match="--resume"):  # refused: the run's files stay as they were
        run_recipe(load_recipe(TINY, sets), out, stages=["latency", "supernet", "search"], progress=False)
    assert log.read_bytes() == before + b'{"key": "torn' and sum(fake_clock) == measured
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(NasplugError, match=r"^latency\.measure: direct measures each arch in one process"):
        _ = RunContext(recipe=load_recipe(TINY, sets), run_dir=out, measures_latency=True).space


def test_compare_refuses_a_latency_objective_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasplug.cli import main

    recipe = tmp_path / "r.yaml"
    import yaml

    raw = yaml.safe_load(TINY.read_text())
    raw["search"] = {**{k: v for k, v in raw["search"].items() if k != "metric"},
                     "objectives": ["mlm_acc", "latency_ms"]}
    raw["latency"] = {"measure": "direct", "seq_len": 16}
    recipe.write_text(yaml.safe_dump(raw))
    assert main(["-q", "compare", str(recipe), "--strategies", "random", "--seeds", "1", "--budget", "4",
                 "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nasplug: error: latency: nasplug compare measures no latency_ms"), err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("key", ["calibrate: 3", "table: lut.json", "seed: 1"])
def test_table_keys_are_refused_with_direct_measurement(key: str) -> None:
    from nasplug.pipeline.latency import latency_config

    name = key.split(":")[0]
    with pytest.raises(NasplugError, match=rf"^latency\.{name}: belongs to a latency table"):
        latency_config({"measure": "direct", name: key.split(": ")[1]})
    with pytest.raises(NasplugError, match=r"latency\.measure"):
        latency_config({"measure": "sometimes"})
