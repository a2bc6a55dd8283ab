"""Fuzz cases: the machine settings (``threads``, ``--threads``, ``precision``) and their
record in ``run.json``, read back on resume."""

from __future__ import annotations

import json

from cases_base import OUT, RESUME_TINY, RESUME_TOY, Case, numbered, recipe_case, tiny, toy


def machine_settings() -> list[Case]:
    """Thread counts and precisions that are not allowed, in the recipe and on the command line."""
    items = [
        (toy(threads=0), r"threads"),
        (toy(threads=-2), r"threads"),
        (toy(threads="2"), r"threads"),
        (toy(threads=True), r"threads"),
        (toy(threads=1.5), r"threads"),
        (toy(threads=10**6), r"threads"),
        (toy(threads=int("9" * 100)), r"threads"),
        (tiny(**{"supernet.precision": "fp16"}), r"precision"),
        (tiny(**{"retrain.precision": True}), r"precision"),
        (tiny(**{"evaluator.precision": "fp16"}), r"precision"),
    ]
    cases = numbered("machine-recipe", items, lambda cid, raw, names: recipe_case(cid, raw, names))
    flags = [("0", r"threads"), ("-3", r"threads"), ("100000", r"threads")]
    cases += numbered("machine-flag", flags, lambda cid, value, names: Case(
        cid, ("-q", "run", "@TOY@", "--out", OUT, "--threads", value), names))
    return cases


def machine_record() -> list[Case]:
    """A damaged ``machine`` record in run.json, met by ``run --resume`` (refused naming the
    file), and a resume that changes the evaluator's precision (refused naming the key)."""
    records = [
        {"machine": "fast"},
        {"machine": {"precision": {"auto": "fp16", "reason": "x"}, "threads": {"value": 1}}},
        {"machine": {"precision": {"auto": "bf16"}, "threads": {"value": 1}}},
        {"machine": {"precision": {"auto": "bf16", "reason": "x"}, "threads": {"value": 0}}},
        {"machine": {"precision": {"auto": "bf16", "reason": "x"}, "threads": {"value": True}}},
        {"machine": {"precision": {"auto": "bf16", "reason": "x"}}},
        {"machine": {"precision": {"auto": "bf16", "reason": "x", "evaluator": "fp16"}, "threads": {"value": 1}}},
        {"machine": {"precision": {"auto": "bf16", "reason": "x", "evaluator": 3}, "threads": {"value": 1}}},
        {"machine": {"precision": "bf16", "threads": {"value": 1}}},
    ]
    cases = [Case(f"machine-runjson-{i}", RESUME_TOY, r"run\.json", base="toy_run",
                  damage=(("run.json", json.dumps(record).encode()),)) for i, record in enumerate(records)]
    cases.append(Case("machine-resume-precision", (*RESUME_TINY, "--set", "evaluator.precision=bf16"),
                      r"evaluator\.precision", base="tiny_mid_supernet", data=True))
    return cases
