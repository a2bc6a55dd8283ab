"""Fuzz cases of issue 23 part B: the ``latency:`` section and ``retrain.pareto`` of a recipe,
the flags of ``nasplug latency-table`` / ``latency-check`` / ``export --pareto --max-params
--max-latency``, and a damaged latency table read back (version 1, and version 2 with a
latency context: its ``context`` and each ``entries[i].context`` / ``entries[i].entries``)."""

from __future__ import annotations

import json
from typing import Any

from cases_base import DIRECT_STAGES, RESUME_TINY, SHOW, Case, edit_line, numbered, recipe_case, tiny, torn, toy

GOOD_TABLE: dict[str, Any] = {
    "version": 1, "space": {"name": "lvbert", "size": None, "hidden": 32, "heads": 1, "ffn": 64, "embedding": 32,
                            "slots": 3, "vocab_size": 320, "max_positions": 32, "seq_len": 32},
    "device": {"name": "cpu", "threads": 1, "batch_size": 1, "seq_len": 32, "warmup": 0, "repeats": 1, "calls": 1,
               "clock": "wall"},
    "machine": "m", "measured_at": "", "constant_ms": 0.5, "calibration": [],
    "entries": {f"L{i}": [["conv", 0.1], ["attn", 0.2], ["ffn", 0.3]] for i in range(3)},
}

_LAYERS = {f"{kind}{i}": [[1, 0.1], [2, 0.2]] if kind == "heads" else [[32, 0.1], [64, 0.3]]
           for i in range(3) for kind in ("heads", "ffn")}
GOOD_TABLE_V2: dict[str, Any] = {
    **GOOD_TABLE, "version": 2,
    "space": {"name": "elastic-bert", "layers": 3, "depths": [2, 3], "hidden": [32, 64], "heads": [1, 2],
              "ffn": [32, 64], "head_size": 16, "vocab_size": 100, "seq_len": 16},
    "device": {**GOOD_TABLE["device"], "seq_len": 16}, "context": ["hidden"],
    "entries": [{"context": {"hidden": h}, "entries": {"depth": [[2, 0.0], [3, 0.0]], **_LAYERS}} for h in (32, 64)],
}


def recipe_latency() -> list[Case]:
    """``latency:`` and ``retrain.pareto`` settings that cannot be used: one line naming the key."""
    two = {"search.metric": None, "search.objectives": ["mlm_acc", "latency_ms"]}
    items = [
        (tiny(latency=5), r"latency"),
        (tiny(latency={"threads": 0}), r"latency\.threads"),
        (tiny(latency={"clock": "sundial"}), r"latency\.clock"),
        (tiny(latency={"clock": "thread", "threads": 2}), r"latency\.clock"),
        (tiny(latency={"seq_len": 4096}), r"latency\.seq_len"),
        (tiny(latency={"repeats": "many"}), r"latency\.repeats"),
        (tiny(latency={"nope": 1}), r"latency\.nope"),
        (tiny(latency={"table": "@CASE@/missing.json"}), r"latency\.table"),
        (tiny(latency={"device": "gpu"}), r"latency\.device"),
        (tiny(latency={"statistic": "mean"}), r"latency\.statistic"),
        (toy(latency={}), r"latency|space 'toy'"),
        (tiny(latency={"measure": "sometimes"}), r"latency\.measure"),
        (tiny(latency={"measure": "direct", "calibrate": 3}), r"latency\.calibrate: belongs to a latency table"),
        (tiny(latency={"measure": "direct", "table": "lut.json"}), r"latency\.table: belongs to a latency table"),
        (tiny(latency={"measure": "direct", "seq_len": 4096}), r"latency\.seq_len"),
        (toy(latency={"measure": "direct"}), r"space 'toy': has no latency parts"),
        (tiny(**{"retrain.pareto": 0}), r"retrain\.pareto"),
        (tiny(**{"retrain.pareto": "three"}), r"retrain\.pareto"),
        (tiny(**{"retrain.pareto": 2}), r"retrain\.pareto: needs a search with two or more"),
        (tiny(**two), r"search\.(objectives|directions)"),
        (tiny(**two, latency={}, **{"retrain.pareto": 2, "retrain.baselines": {"pareto-1": "interleaved"}}),
         r"retrain\.baselines\.pareto-1"),
    ]
    return numbered("recipe-latency", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def cli_latency() -> list[Case]:
    """Bad flags of ``latency-table`` and ``latency-check``, and damaged tables read back."""
    table = ("-q", "latency-table", "@TINY@", "--out", "@CASE@/lut.json", "--repeats", "1", "--warmup", "0")
    flags = [(("--threads", "0"), r"--threads"), (("--clock", "sundial"), r"--clock"),
             (("--clock", "thread", "--threads", "2"), r"--clock"), (("--seq-len", "100000"), r"--seq-len"),
             (("--batch", "-1"), r"--batch"), (("--calibrate", "0"), r"--calibrate"),
             (("--device", "tpu"), r"--device"), (("--statistic", "mean"), r"--statistic")]
    cases = numbered("latency-table", flags, lambda cid, more, names: Case(cid, (*table, *more), names))
    cases.append(Case("latency-table-toy", ("-q", "latency-table", "@TOY@", "--out", "@CASE@/lut.json"),
                      r"space 'toy'"))
    cases.append(Case("latency-table-dir", ("-q", "latency-table", "@TINY@", "--out", "@CASE@/d"), r"--out",
                      files=(("d/keep", "x"),)))

    def damaged(**changes: Any) -> str:
        return json.dumps({**GOOD_TABLE, **changes})

    bad = [("garbage{", r"lut\.json"), ("[1, 2]", r"lut\.json"), (damaged(version=7), r"version"),
           (damaged(entries={}), r"entries"), (damaged(entries={"L0": [["conv", -1]]}), r"entries\.L0"),
           (damaged(entries={"L0": [["conv"]]}), r"entries\.L0"), (damaged(constant_ms="fast"), r"constant_ms"),
           (damaged(constant_ms=float("inf")), r"constant_ms"), (damaged(device={"name": "cpu", "threads": 0}),
                                                               r"device"),
           (damaged(device={"spin": 1}), r"device\.spin"),
           (damaged(device={**GOOD_TABLE["device"], "statistic": "mean"}), r"device.*statistic"),
           (damaged(space={"name": "nope"}), r"space|nope"),
           (damaged(space=[]), r"space"), (damaged(entries={"Z9": [["conv", 1.0]]}), r"Z9|no entry|entry")]
    cases += numbered("latency-check", bad, lambda cid, content, names: Case(
        cid, ("-q", "latency-check", "@CASE@/lut.json", "--archs", "3", "--out", "@CASE@/o"), names,
        files=(("lut.json", content),)))
    cases += numbered("latency-check-v2", _damaged_v2(), lambda cid, content, names: Case(
        cid, ("-q", "latency-check", "@CASE@/lut.json", "--archs", "3", "--out", "@CASE@/o"), names,
        files=(("lut.json", content),)))
    good = (("lut.json", json.dumps(GOOD_TABLE)),)
    cases.append(Case("latency-check-archs", ("-q", "latency-check", "@CASE@/lut.json", "--archs", "1"), r"--archs",
                      files=good))
    for i, passes in enumerate(("0", "101", "-1")):
        cases.append(Case(f"latency-check-passes-{i}", ("-q", "latency-check", "@CASE@/lut.json", "--archs", "3",
                                                         "--passes", passes, "--out", "@CASE@/o"), r"--passes",
                          files=good))
    cases.append(Case("latency-check-missing", ("-q", "latency-check", "@CASE@/none.json"), r"none\.json"))
    return cases


def _damaged_v2() -> list[tuple[str, str]]:
    """Version 2 tables (a latency context) damaged one field at a time, and tables of another context."""
    first, second = GOOD_TABLE_V2["entries"]

    def v2(**changes: Any) -> str:
        return json.dumps({**GOOD_TABLE_V2, **changes})

    def group(**changes: Any) -> dict[str, Any]:
        return {**first, **changes}

    no_context = {k: v for k, v in GOOD_TABLE_V2.items() if k != "context"}
    return [
        (json.dumps(no_context), r"context"), (v2(context=[]), r"context"), (v2(context=["hidden", "hidden"]),
                                                                            r"context"),
        (v2(context=[3]), r"context"), (v2(context="hidden"), r"context"),
        (v2(entries={"hidden": 1}), r"entries: expected a non-empty list"), (v2(entries=[]), r"entries"),
        (v2(entries=[5]), r"entries\[0\]"), (v2(entries=[{"context": {"hidden": 32}}]), r"entries\[0\]"),
        (v2(entries=[group(context={"width": 32})]), r"entries\[0\]\.context"),
        (v2(entries=[group(context={"hidden": [32]})]), r"entries\[0\]\.context"),
        (v2(entries=[first, first]), r"entries\[1\]\.context: .* twice"),
        (v2(entries=[first, {**second, "entries": {"depth": [[2, 0.0]]}}]), r"entries\[1\]\.entries"),
        (v2(entries=[group(entries={**first["entries"], "heads0": [[1, -0.1]]})]), r"entries\[0\]\.entries\.heads0"),
        (v2(entries=[group(entries={**first["entries"], "hidden": [[32, 0.1]]})]), r"context choice"),
        (v2(entries=[first]), r"no entries for hidden=64"),
        (v2(context=["depth"], entries=[{"context": {"depth": d}, "entries": _LAYERS} for d in (2, 3)]),
         r"measured with the context \['depth'\]"),
        (json.dumps({**GOOD_TABLE, "context": ["hidden"]}), r"context: only a version 2 table"),
        (json.dumps({**GOOD_TABLE, "space": GOOD_TABLE_V2["space"]}), r"measured with the context \[\]"),
    ]


def cli_export_front() -> list[Case]:
    """``export --pareto / --max-params / --max-latency`` that cannot be done."""
    out = ("--out", "@CASE@/e")
    items = [(("--max-params", "-5"), r"--max-params"), (("--max-params", "nan"), r"--max-params"),
             (("--max-latency", "0"), r"--max-latency"),
             (("--pareto", "--max-params", "5"), r"--pareto: give one of"),
             (("--pareto", "--model", "found"), r"--model"), (("--pareto",), r"retrain\.pareto")]
    return numbered("export-front", items, lambda cid, more, names: Case(
        cid, ("-q", "export", "@RUN@", *more, *out), names, base="pareto_run"))


def measured_latencies() -> list[Case]:
    """A damaged ``latency_measured.jsonl`` (``latency.measure: direct``) met by ``show``: one
    line naming the file and the line; a torn last line (a kill mid-write) is shown as it is."""
    log = "latency_measured.jsonl"
    damage = [edit_line(0, lambda r: r.update(latency_ms=-3)), edit_line(0, lambda r: r.update(latency_ms="fast")),
              edit_line(0, lambda r: r.update(device=[1])), edit_line(0, lambda r: r.pop("key")),
              lambda data: b"not json\n" + data]
    cases = [Case(f"latency-measured-{i}", SHOW, r"latency_measured\.jsonl: line 1", base="tiny_direct",
                  damage=((log, transform),)) for i, transform in enumerate(damage)]
    cases += [Case(f"latency-measured-resume-{i}", (*RESUME_TINY, *DIRECT_STAGES), r"latency_measured\.jsonl: line 1",
                   base="tiny_direct", damage=((log, transform),)) for i, transform in enumerate(damage[:2])]
    cases.append(Case("latency-measured-torn", SHOW, base="tiny_direct", damage=((log, torn),), contract="read-only"))
    return cases
