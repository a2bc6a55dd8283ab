"""Latency tables with a latency context, on a tiny elastic-BERT space (hidden 32/64, 2-3
layers): entries measured per ``hidden`` width and looked up under an arch's own width, the
prediction as the hand sum of the active layers' entries plus the constant, a table of
another hidden set refused in one line, the version 2 file read back (LV-BERT's stays
version 1), the two commands and the latency stage with a two-objective search on the
elastic-bert-micro recipe at tiny sizes. Also: a prediction is never negative (a fake clock
that makes the fitted constant negative). No timing is checked."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from pathlib import Path

import pytest

from nasplug.cli import main
from nasplug.cost import measure
from nasplug.cost.attach import with_latency
from nasplug.cost.measure import Device
from nasplug.cost.table import LatencyTable, build_table, load_table
from nasplug.errors import NasplugError
from nasplug.pipeline import run_recipe
from nasplug.recipe import load_recipe
from nasplug.spaces.elastic_bert.latency import block
from nasplug.spaces.elastic_bert.space import ElasticBertSpace
from nasplug.spaces.toy import OPS, ToySpace

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py
REPO = Path(__file__).resolve().parents[2]
MICRO = REPO / "recipes" / "elastic-bert-micro.yaml"
MICRO_TINY = ["space.layers=3", "space.depths=[2, 3]", "space.hidden=[32, 64]", "space.heads=[1, 2]",
              "space.ffn=[32, 64]", "task.corpus.source=synthetic", "task.corpus.synthetic_documents=120",
              "task.tokenizer.vocab_size=320", "task.seq_len=32"]
QUICK = Device(seq_len=16, warmup=0, repeats=1, calls=1)
SPEC = {"name": "elastic-bert", "layers": 3, "depths": [2, 3], "hidden": [32, 64], "heads": [1, 2], "ffn": [32, 64],
        "head_size": 16, "vocab_size": 100, "seq_len": 16}


def tiny_space(**changes) -> ElasticBertSpace:
    return ElasticBertSpace(**{**{k: v for k, v in SPEC.items() if k != "name"}, **changes})


@pytest.fixture(scope="module")
def table() -> LatencyTable:
    return build_table(tiny_space(), QUICK, SPEC, calibrate=3, seed=0)


def test_entries_are_measured_per_hidden_width_and_the_context_has_none(table: LatencyTable) -> None:
    space = tiny_space()
    assert table.context == ("hidden",)
    assert [values for values, _ in table.groups] == [{"hidden": 32}, {"hidden": 64}]
    layers = [f"{kind}{i}" for i in range(3) for kind in ("heads", "ffn")]
    for _, entries in table.groups:
        assert sorted(entries) == sorted(["depth", *layers])  # hidden is the key, not an entry
        assert entries["depth"] == [(2, 0.0), (3, 0.0)]  # depth runs no block of its own
        for choice in layers:
            assert [o for o, _ in entries[choice]] == list(space.choices()[choice])
            assert all(ms > 0 for _, ms in entries[choice])
    with pytest.raises(NasplugError, match="depend on hidden"):
        _ = table.entries  # a context table has no single set of entries


@pytest.mark.parametrize("hidden", [32, 64])
def test_each_block_runs_at_its_context_s_width(hidden: int) -> None:
    space = tiny_space()
    for choice, option in (("heads1", 2), ("ffn1", 64)):
        out = block(space, choice, option, 2, 8, {"hidden": hidden})()
        out = out[0] if isinstance(out, tuple) else out
        assert tuple(out.shape) == (2, 8, hidden)
    assert block(space, "depth", 3, 1, 8, {"hidden": hidden}) is None
    assert block(space, "hidden", hidden, 1, 8) is None
    with pytest.raises(NasplugError, match="depends on hidden"):
        block(space, "heads0", 1, 1, 8)


def test_the_prediction_is_the_hand_sum_of_the_active_layers_under_the_arch_s_width(table: LatencyTable) -> None:
    space = tiny_space()
    fixed = dataclasses.replace(table, constant_ms=0.25)  # a known positive constant: nothing is clamped
    for text in ("d2 h32 a1.2 f64.32", "d3 h64 a2.1.2 f32.64.64", "d2 h64 a2.2 f64.64"):
        arch = space.parse(text)
        h = arch["hidden"]
        entries = next(e for v, e in fixed.groups if v == {"hidden": h})
        ms = dict(entries["depth"])[arch["depth"]]
        for i in range(arch["depth"]):
            ms += dict(entries[f"heads{i}"])[arch[f"heads{i}"]] + dict(entries[f"ffn{i}"])[arch[f"ffn{i}"]]
        assert fixed.predict(arch, space) == pytest.approx(ms + 0.25)
        assert table.predict(arch, space) == pytest.approx(max(0.0, ms + table.constant_ms))
    # a layer beyond the depth adds nothing, whatever it would pick
    short = space.parse("d2 h64 a1.1 f32.32")
    other = {**short, "heads2": 2, "ffn2": 64}
    assert (short["heads2"], short["ffn2"]) != (2, 64)
    assert fixed.predict(other, space) == fixed.predict(short, space)
    deep = {**other, "depth": 3}
    extra = fixed.entry("heads2", 2, deep) + fixed.entry("ffn2", 64, deep)
    assert fixed.predict(deep, space) == pytest.approx(fixed.predict(short, space) + extra)
    # the same heads and FFN widths at the other width read the other entries
    narrow = {**short, "hidden": 32}
    assert fixed.blocks_ms(narrow, space) == pytest.approx(sum(
        fixed.entry(k, short[k], {"hidden": 32}) for k in ("depth", "heads0", "ffn0", "heads1", "ffn1")))


def test_a_table_of_another_hidden_set_is_refused_in_one_line(table: LatencyTable) -> None:
    with pytest.raises(NasplugError, match=r"^latency table: no entries for hidden=48; the table was measured for "
                                           r"another space \('elastic-bert'\)") as missing:
        with_latency(tiny_space(hidden=[32, 48]), table)
    with pytest.raises(NasplugError, match=r"entries for hidden=64, which space 'elastic-bert' does not have"):
        with_latency(tiny_space(hidden=[32]), table)
    with pytest.raises(NasplugError, match="no entry for depth=4"):
        with_latency(tiny_space(layers=4, depths=[2, 3, 4]), table)
    with pytest.raises(NasplugError, match=r"no entry for heads0=4"):
        with_latency(tiny_space(heads=[1, 2, 4]), table)
    assert "\n" not in str(missing.value)
    with pytest.raises(NasplugError, match=r"^latency table: its entries depend on hidden; give the arch's value"):
        table.entry("heads0", 1)  # looked up without the arch's width
    space = with_latency(tiny_space(), table)
    assert space.metrics(space.parse("d2 h32 a1.2 f64.32"))["latency_ms"] == table.predict(
        space.parse("d2 h32 a1.2 f64.32"), space)


def test_the_version_2_file_reads_back_and_a_context_free_table_stays_version_1(table, tmp_path) -> None:
    table.save(tmp_path / "lut.json")
    data = json.loads((tmp_path / "lut.json").read_text())
    assert data["version"] == 2 and data["context"] == ["hidden"]
    assert [g["context"] for g in data["entries"]] == [{"hidden": 32}, {"hidden": 64}]
    again = load_table(tmp_path / "lut.json")
    assert again.to_json() == table.to_json()
    arch = tiny_space().parse("d3 h64 a2.1.2 f32.64.64")
    assert again.predict(arch, tiny_space()) == table.predict(arch, tiny_space())
    flat = build_table(ToyLatency(), QUICK, {"name": "toy"}, calibrate=1).to_json()
    assert flat["version"] == 1 and "context" not in flat and isinstance(flat["entries"], dict)
    assert set(flat) == {"version", "space", "device", "machine", "measured_at", "constant_ms", "entries",
                         "calibration"}


def test_the_commands_measure_and_check_the_micro_recipe(tmp_path: Path, capsys) -> None:
    lut = tmp_path / "lut.json"
    quick = ["--seq-len", "16", "--warmup", "0", "--repeats", "1", "--calls", "1"]
    sets = [x for s in MICRO_TINY for x in ("--set", s)]
    assert main(["-q", "latency-table", str(MICRO), *sets, *quick, "--calibrate", "2", "--out", str(lut)]) == 0
    assert "7 choices x 2 values of hidden" in capsys.readouterr().out
    data = json.loads(lut.read_text())
    assert data["space"]["name"] == "elastic-bert" and data["space"]["vocab_size"] == 320
    assert data["context"] == ["hidden"] and len(data["entries"]) == 2
    assert main(["-q", "latency-check", str(lut), "--archs", "4", "--out", str(tmp_path / "check")]) == 0
    check = json.loads((tmp_path / "check" / "latency_check.json").read_text())
    assert check["archs"] == 4 and all(r["arch"].startswith("d") for r in check["rows"])
    space = ElasticBertSpace(**{k: v for k, v in data["space"].items() if k != "name"})
    table = load_table(lut)
    for row in check["rows"]:
        assert row["predicted_ms"] == pytest.approx(table.predict(space.parse(row["arch"]), space))
    capsys.readouterr()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**data, "entries": data["entries"][:1]}))
    assert main(["-q", "latency-check", str(other), "--archs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no entries for hidden=64" in err[0]


def test_the_latency_stage_and_a_two_objective_search_run_on_elastic_bert(tmp_path: Path) -> None:
    sets = [*MICRO_TINY, "search.metric=null", "search.direction=null", "search.objectives=[mlm_acc, latency_ms]",
            "search.constraints=[]", "latency={seq_len: 16, warmup: 0, repeats: 1, calls: 1, calibrate: 2}",
            "supernet.steps=4", "supernet.batch_size=4", "supernet.eval_every=0", "supernet.checkpoint_every=2",
            "supernet.log_every=2", "evaluator.batches=1", "evaluator.batch_size=8", "search.budget=8",
            "search.batch_size=4", "search.strategy={name: evolution, population: 4, parents: 2, mutations: 2, "
            "crossovers: 2}"]
    out = tmp_path / "run"
    run_recipe(load_recipe(MICRO, sets), out, stages=["latency", "supernet", "search"], progress=False)
    table = load_table(out / "latency_table.json")
    assert table.context == ("hidden",)
    space = ElasticBertSpace(**{k: v for k, v in table.space.items() if k != "name"})
    trials = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    scored = [t for t in trials if t["status"] in ("ok", "cached")]
    assert scored
    for t in scored:
        assert t["metrics"]["latency_ms"] == pytest.approx(table.predict(t["arch"], space))
    front = json.loads((out / "pareto.json").read_text())
    assert [o["metric"] for o in front["objectives"]] == ["mlm_acc", "latency_ms"]
    assert front["objectives"][1]["direction"] == "minimize"


class ToyLatency(ToySpace):
    """The toy space with latency parts whose calls only move a fake clock: a block costs
    2 ms per position of its option in ``OPS`` (0, 2, 4, ... ms), a whole model 0.5 ms
    whatever it holds, so archs with cheap blocks predict below 0 once the constant is fitted."""

    def __init__(self, clock: list[float] | None = None) -> None:
        super().__init__(slots=3)
        self.clock = clock if clock is not None else [0.0]

    def _tick(self, ms: float):
        def run() -> None:
            self.clock[0] += ms / 1000.0
        return run

    def latency_block(self, choice, option, batch_size, seq_len):
        return self._tick(2.0 * OPS.index(option))

    def latency_model(self, arch, batch_size, seq_len):
        return self._tick(0.5)

    def latency_lengths(self) -> tuple[int, int]:
        return 16, 16


def test_a_prediction_is_never_negative_and_the_build_warns_once(monkeypatch, caplog) -> None:
    clock = [0.0]
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    space = ToyLatency(clock)
    with caplog.at_level(logging.WARNING, logger="nasplug"):
        table = build_table(space, Device(warmup=1, repeats=3, calls=2), {"name": "toy"}, calibrate=5)
    for pairs in table.entries.values():
        assert [ms for _, ms in pairs] == pytest.approx([2.0 * OPS.index(o) for o, _ in pairs])
    sums = [sum(2.0 * OPS.index(a[k]) for k in a) for a in (space.parse(c["arch"]) for c in table.calibration)]
    assert table.constant_ms == pytest.approx(statistics.median(0.5 - s for s in sums))
    low = [c for c in table.calibration if c["blocks_ms"] + table.constant_ms <= 0]
    assert low, "the fake costs make some calibration archs predict below 0"
    for c in table.calibration:
        raw = c["blocks_ms"] + table.constant_ms
        assert table.predict(space.parse(c["arch"]), space) == pytest.approx(max(0.0, raw))
        assert table.predict(space.parse(c["arch"]), space) >= 0.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "latency table of space 'toy'" in message and f"{len(low)} of 5 calibration archs predict <= 0 ms" in message
    assert "--repeats" in message and "--seq-len" in message and "clamped at 0" in message
    caplog.clear()
    clock[0] = 0.0
    with caplog.at_level(logging.WARNING, logger="nasplug"):
        calm = build_table(ToyLatency(clock), Device(warmup=0, repeats=1, calls=1), {"name": "toy"}, calibrate=1)
    assert calm.constant_ms + calm.calibration[0]["blocks_ms"] == pytest.approx(0.5)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING], "no warning when every arch predicts > 0"


class BadContext(ToyLatency):
    def latency_context(self) -> tuple[str, ...]:
        return ("s9",)


def test_a_context_that_is_no_choice_of_the_space_is_one_line() -> None:
    with pytest.raises(NasplugError, match=r"^space 'toy': latency_context names 's9', which is no unconditional "
                                           r"choice; allowed: s0, s1, s2$"):
        build_table(BadContext(), QUICK, {"name": "toy"}, calibrate=1)
    conditional = tiny_space()
    assert "heads2" in conditional.conditions()
    conditional.latency_context = lambda: ("heads2",)  # an instance attribute: this space only
    with pytest.raises(NasplugError, match="latency_context names 'heads2', which is no unconditional choice"):
        build_table(conditional, QUICK, SPEC, calibrate=1)
