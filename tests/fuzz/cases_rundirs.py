"""Fuzz cases: damaged run directories (trials logs, checkpoints, stage markers and result
files) and resumes that are refused (a changed recipe, no ``--resume``)."""

from __future__ import annotations

from typing import Any

from cases_base import (
    FOLDER,
    RANK_CORR,
    RESUME_TINY,
    RESUME_TOY,
    SHOW,
    TOY_TEXT,
    Case,
    Transform,
    edit_line,
    insert_line,
    rng_bytes,
    torn,
    truncate_half,
)


# ---------------------------------------------------------------------- damaged checkpoint files
def reshaped_safetensors(data: bytes) -> bytes:
    """The same tensor names, the first tensor with another shape."""
    import torch
    from safetensors.torch import load, save

    tensors = load(data)
    first = sorted(tensors)[0]
    tensors[first] = torch.zeros(3, 5)
    return save(tensors)


def torch_bytes(obj: Any) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def malicious_pickle(data: bytes) -> bytes:
    """A pickle that runs ``touch @MARKER@``-like code when loaded without weights_only.

    The marker path is not known here, so it touches a fixed name in the working directory
    (the case folder); the test checks that it does not exist.
    """
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, ("touch PICKLE-MARKER",))

    return pickle.dumps({"format": 1, "step": 24, "x": Evil()})


# ---------------------------------------------------------------------- trials logs, checkpoints, run files
TRIAL_DAMAGE: list[tuple[str, Transform]] = [
    ("garbage", insert_line(3, b"this is not json {")),
    ("nonutf8", insert_line(3, b'{"arch": "\xff\xfe\xfd"}')),
    ("nonutf8-inline", lambda b: b.replace(b'"status":"ok"', b'"status":"o\xffk"', 1)),
    ("str-score", edit_line(2, lambda r: r.update(score="high"))),
    ("unknown-status", edit_line(2, lambda r: r.update(status="weird"))),
    ("list-line", edit_line(2, lambda r: [1, 2, 3])),
    ("missing-arch", edit_line(2, lambda r: r.pop("arch"))),
    ("null-arch", edit_line(2, lambda r: r.update(arch=None))),
    ("nan-score", lambda b: edit_line(2, lambda r: r.update(score=float("nan"), metrics={"score": float("nan")}))(b)),
    ("foreign-arch", edit_line(2, lambda r: r["arch"].update(s0="evil"))),
    ("extra-key", edit_line(2, lambda r: r.update(evil=1))),
    ("bool-asked", edit_line(2, lambda r: r.update(asked=True))),
    ("null-canonical", edit_line(2, lambda r: r.update(canonical=None))),
    ("list-canonical", edit_line(2, lambda r: r.update(canonical=[1, 2]))),
    ("nested-canonical", edit_line(2, lambda r: r.update(canonical={"s0": {"deep": 1}}))),
]


def trials_logs() -> list[Case]:
    """A damaged trials.jsonl met by ``run --resume`` (the search replays it) and ``show``."""
    cases = []
    for i, (name, transform) in enumerate(TRIAL_DAMAGE):
        cases.append(Case(f"trials-resume-{i}", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                          damage=(("trials.jsonl", transform),)))
        if name != "foreign-arch":  # show does not replay: an arch the space lacks is only shown
            cases.append(Case(f"trials-show-{i}", SHOW, r"trials\.jsonl", base="toy_run",
                              damage=(("trials.jsonl", transform),)))
    # a torn last line is what a kill leaves: repaired on --resume (the run then equals an
    # uninterrupted one), shown as it is by show (which must not repair anything)
    cases.append(Case("trials-torn-0", RESUME_TOY, base="toy_unsearched", damage=(("trials.jsonl", torn),),
                      contract="repaired"))
    cases.append(Case("trials-torn-1", SHOW, base="toy_run", damage=(("trials.jsonl", torn),), contract="read-only"))
    # a folder where the log should be: one line on resume, shown without a search by show
    cases.append(Case("trials-folder-0", RESUME_TOY, r"trials\.jsonl: the search log is not a file",
                      base="toy_unsearched", damage=(("trials.jsonl", FOLDER),)))
    cases.append(Case("trials-folder-1", SHOW, base="toy_run", damage=(("trials.jsonl", FOLDER),),
                      contract="read-only"))
    # show reads a run and writes nothing, not even plots (a run may sit on a read-only share)
    for i, (log, transform) in enumerate([("supernet/metrics.jsonl", torn), ("supernet/metrics.jsonl", insert_line(
            2, b"not json")), ("retrain/found/metrics.jsonl", truncate_half), ("supernet/metrics.jsonl", b""),
            ("supernet_heldout.png", None), ("architectures.png", None)]):
        cases.append(Case(f"show-training-log-{i}", SHOW, base="tiny_run", damage=((log, transform),),
                          contract="read-only"))
    # only blank lines: refused, or treated as an empty log that the run redoes exactly
    cases.append(Case("trials-blank-0", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                      damage=(("trials.jsonl", b"\n\n\n\n"),), contract="repaired-or-refused"))
    cases.append(Case("trials-blank-1", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                      damage=(("trials.jsonl", b"   \n \t\n\n"),), contract="repaired-or-refused"))
    return cases


def checkpoints() -> list[Case]:
    """Damaged training checkpoints (latest.json, model.safetensors, state.pt) met by
    ``run --resume`` in the supernet and the retrain stage."""
    step = "supernet/checkpoint/step-*"
    latest = "supernet/checkpoint/latest.json"
    items: list[tuple[str, Transform, str]] = [
        (latest, b"", r"latest\.json"),
        (latest, b"[1, 2]", r"latest\.json"),
        (latest, b"garbage{", r"latest\.json"),
        (latest, b"{}", r"latest\.json"),
        (latest, b'{"step": 24, "dir": "step-99999999"}', r"latest\.json|step-99999999"),
        (latest, b'{"step": 24, "dir": "../../.."}', r"latest\.json"),
        (latest, b'{"step": 24, "dir": 5}', r"latest\.json"),
        (latest, b'{"step": "x", "dir": null}', r"latest\.json"),
        (latest, b"\xff\xfe\x00garbage", r"latest\.json"),
        (f"{step}/model.safetensors", truncate_half, r"model\.safetensors"),
        (f"{step}/model.safetensors", rng_bytes(7, 3000), r"model\.safetensors"),
        (f"{step}/model.safetensors", b"", r"model\.safetensors"),
        (f"{step}/model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", r"model\.safetensors"),
        (f"{step}/model.safetensors", reshaped_safetensors, r"model\.safetensors"),
        (f"{step}/model.safetensors", lambda b: b"\xff" * 8 + b[8:], r"model\.safetensors"),
        (f"{step}/state.pt", rng_bytes(8, 3000), r"state\.pt"),
        (f"{step}/state.pt", truncate_half, r"state\.pt"),
        (f"{step}/state.pt", b"", r"state\.pt"),
        (f"{step}/state.pt", lambda b: torch_bytes({"format": 1, "step": 24}), r"state\.pt"),
        (f"{step}/state.pt", lambda b: torch_bytes([1, 2, 3]), r"state\.pt"),
        (f"{step}/state.pt", malicious_pickle, r"state\.pt"),
        (f"{step}/state.pt", None, r"state\.pt|step-"),
    ]
    cases = [Case(f"ckpt-supernet-{i}", RESUME_TINY, names, base="tiny_mid_supernet", damage=((path, t),), data=True,
                  marker=True)
             for i, (path, t, names) in enumerate(items)]
    rstep = "retrain/found/checkpoint/step-*"
    retrain = [("retrain/found/checkpoint/latest.json", b"[]", r"latest\.json"),
               (f"{rstep}/model.safetensors", truncate_half, r"model\.safetensors"),
               (f"{rstep}/state.pt", rng_bytes(9, 500), r"state\.pt")]
    cases += [Case(f"ckpt-retrain-{i}", RESUME_TINY, names, base="tiny_mid_retrain", damage=((path, t),), data=True)
              for i, (path, t, names) in enumerate(retrain)]
    weights = [(truncate_half, r"model\.safetensors"), (rng_bytes(10, 2000), r"model\.safetensors"),
               (reshaped_safetensors, r"model\.safetensors")]
    cases += [Case(f"ckpt-weights-{i}", RESUME_TINY, names, base="tiny_mid_search",
                   damage=(("supernet/model.safetensors", t),), data=True) for i, (t, names) in enumerate(weights)]
    return cases


def run_files() -> list[Case]:
    """Damaged stage markers, top.json, result.json, recipe.yaml and run.json, met by
    ``show``, ``run --resume`` and ``rank-corr``."""
    cases: list[Case] = []
    stage_items = [
        (SHOW, "toy_run", "stages/search.json", b"garbage{"),
        (RESUME_TOY, "toy_run", "stages/search.json", b"garbage{"),
        (SHOW, "toy_run", "stages/report.json", b"[1, 2]"),
        (RESUME_TOY, "toy_run", "stages/report.json", b"\xff\xfe"),
        (SHOW, "tiny_run", "stages/supernet.json", b"{\"stage\": "),
        (RESUME_TINY, "tiny_run", "stages/glue.json", b"\"just a string\""),
    ]
    cases += [
        Case(f"stagefile-{i}", argv, r"stages/\w+\.json", base=base, damage=((path, t),), data=base.startswith("tiny"))
        for i, (argv, base, path, t) in enumerate(stage_items)
    ]
    top_items = [
        (RESUME_TINY, "tiny_mid_retrain", b"garbage{"),
        (RESUME_TINY, "tiny_mid_retrain", b"[1, \"junk\", null]"),
        (RESUME_TINY, "tiny_mid_retrain", b"{\"rank\": 1}"),
        (RESUME_TINY, "tiny_mid_retrain", b"[{\"rank\": 1, \"arch\": {\"L00\": \"zzz\"}}]"),
        (RESUME_TINY, "tiny_mid_retrain", b"\xff\xfe\xfd"),
        (SHOW, "tiny_run", b"garbage{"),
    ]
    cases += [Case(f"top-{i}", argv, r"top\.json", base=base, damage=(("top.json", t),), data=True)
              for i, (argv, base, t) in enumerate(top_items)]
    result_items = [
        (RESUME_TINY, "tiny_unmarked_retrain", b"garbage{"),
        (RESUME_TINY, "tiny_unmarked_retrain", b"[1, 2]"),
        (RESUME_TINY, "tiny_unmarked_retrain", b"\xff\xfe"),
        (SHOW, "tiny_run", b"garbage{"),
        (SHOW, "tiny_run", b"{\"heldout\": \"x\"}"),
    ]
    cases += [
        Case(f"result-{i}", argv, r"result\.json", base=base, damage=(("retrain/found/result.json", t),), data=True)
        for i, (argv, base, t) in enumerate(result_items)
    ]
    recipe_damage: list[tuple[str, bytes]] = [
        ("binary", rng_bytes(11, 300)),
        ("list", b"- a\n- b\n"),
        ("garbage", b"name: [unclosed\n"),
        ("nonutf8", b"name: caf\xe9\n"),
        ("empty", b""),
        ("alias", TOY_TEXT.encode() + b"expected: {a: &a 1, b: *a}\n"),
    ]
    for i, (_, content) in enumerate(recipe_damage):
        cases.append(
            Case(f"runrecipe-show-{i}", SHOW, r"recipe\.yaml", base="toy_run", damage=(("recipe.yaml", content),))
        )
        cases.append(Case(f"runrecipe-resume-{i}", RESUME_TOY, r"recipe\.yaml", base="toy_run",
                          damage=(("recipe.yaml", content),)))
    for i, (_, content) in enumerate(recipe_damage[:3]):
        cases.append(Case(f"runrecipe-rankcorr-{i}", RANK_CORR, r"recipe\.yaml", base="tiny_run",
                          damage=(("recipe.yaml", content),), data=True))
    runjson = [(SHOW, b"garbage{"), (RESUME_TOY, b"[1]"), (SHOW, b"\xff\xfe")]
    cases += [Case(f"runjson-{i}", argv, r"run\.json", base="toy_run", damage=(("run.json", t),))
              for i, (argv, t) in enumerate(runjson)]
    return cases


# ---------------------------------------------------------------------- refused resumes
def resume_changed() -> list[Case]:
    """A resumed run whose recipe changed something that alters results: refused naming the
    key, and the run left as it was (recipe.yaml and run.json included)."""
    toys = [
        ("search.batch_size=7", r"batch_size"),
        ("search.metric=params", r"metric"),
        ("search.direction=minimize", r"direction"),
        ("evaluator.noise=0.5", r"evaluator"),
        ("evaluator={name: toy, noise: 0.1, seed: 2}", r"evaluator"),
        ("seed=1", r"seed"),
        ("space.slots=7", r"slots"),
        ("space.seed=3", r"seed"),
        ("search.strategy.population=12", r"population"),
        ("search.strategy.name=random", r"strategy"),
        ("search.constraints=[{name: max_metric, metric: params, limit: 400}]", r"constraints"),
    ]
    cases = [Case(f"resume-changed-toy-{i}", (*RESUME_TOY, "--set", change), names, base="toy_run")
             for i, (change, names) in enumerate(toys)]
    cases += [Case(f"resume-changed-toyhalf-{i}", (*RESUME_TOY, "--set", change), names, base="toy_unsearched")
              for i, (change, names) in enumerate(toys[:3])]
    tinies = [
        ("task.tokenizer.vocab_size=300", r"vocab_size"),
        ("space.vocab_size=400", r"vocab_size"),
        ("task.name=electra", r"task|search.direction"),  # mlm_acc is not an ELECTRA metric
        ("task.seq_len=16", r"seq_len"),
        ("supernet.steps=30", r"steps"),
        ("evaluator.batches=3", r"batches"),
        ("retrain.steps=20", r"steps"),
        ("seed=1", r"seed"),
        ("search.batch_size=5", r"batch_size"),
        ("task.corpus.synthetic_documents=151", r"synthetic_documents|corpus"),
    ]
    cases += [
        Case(f"resume-changed-tiny-{i}", (*RESUME_TINY, "--set", change), names, base="tiny_mid_supernet", data=True)
        for i, (change, names) in enumerate(tinies)
    ]
    return cases


def no_resume() -> list[Case]:
    """``nasplug run RECIPE --out EXISTING_RUN`` without --resume (with or without --stages):
    refused, nothing moved, rewritten or deleted."""
    items = [
        (("-q", "run", "@TOY@", "--out", "@RUN@"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--stages", "search"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--stages", "report"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@"), "toy_unsearched"),
        (("-q", "run", "@TINY@", "--out", "@RUN@"), "tiny_run"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "supernet"), "tiny_mid_supernet"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "glue"), "tiny_before_glue"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "retrain"), "tiny_mid_retrain"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--set", "seed=5"), "toy_run"),
    ]
    return [Case(f"noresume-{i}", argv, r"--resume", base=base, data=base.startswith("tiny"))
            for i, (argv, base) in enumerate(items)]
