"""Fuzz cases: the command line (``--set``, ``--stages``, ``--out``)."""

from __future__ import annotations

from cases_base import OUT, Case, numbered


def cli_set() -> list[Case]:
    """``--set``: no '=', empty key, bad YAML, 100/5000-digit numbers, a.b with a scalar a."""
    items = [
        ("search.budget", r"--set"),
        ("=5", r"--set"),
        (" =5", r"--set"),
        ("..=5", r"--set"),
        ("search..budget=5", r"--set"),
        ("search.budget=[1,", r"budget"),
        ("search.budget=" + "9" * 100, r"budget"),
        ("search.budget=" + "9" * 5000, r"budget"),
        ("seed=" + "9" * 5000, r"seed"),
        ("name.x=1", r"--set.*name"),
        ("seed.a=1", r"--set.*seed"),
        ("search.budget.x=1", r"--set.*budget"),
        ("search.nope=1", r"nope"),
        ("space.slots=true", r"slots"),
        ("seed=1e400", r"seed"),
        ("search.budget=.nan", r"budget"),
        ("search.budget=!!binary aGVsbG8=", r"budget|binary|tag"),
        ("search.budget=!!python/object/apply:os.system ['touch @MARKER@']", r"budget|python|tag"),
        ("description=" + "x" * 10001, r"description"),
        ("search={budget: 5, budget: 6}", r"search|budget"),
        ("space.slots=-3", r"slots"),
    ]
    cases = numbered(
        "set",
        items,
        lambda cid, value, names: Case(cid, ("-q", "run", "@TOY@", "--out", OUT, "--set", value), names, marker=True),
    )
    # tracking (TensorBoard / MLflow): backends by name, a section that is a mapping, a sane period
    for i, (value, names) in enumerate([("tracking.report_to=[wandb]", r"tracking.report_to"),
                                        ("tracking=tensorboard", r"tracking"),
                                        ("tracking.every_s=0", r"tracking.every_s"),
                                        ("tracking.nope=1", r"tracking.nope"),
                                        ("tracking.mlflow_tracking_uri=''", r"tracking.mlflow_tracking_uri")]):
        cases.append(Case(f"set-tracking-{i}", ("-q", "run", "@TOY@", "--out", OUT, "--set", value), names,
                          marker=True))
    # task.language (the model cards' language): an ISO 639 code or null
    for i, value in enumerate(["task.language=english", "task.language=5", "task.language=''", "task.language=EN"]):
        cases.append(Case(f"set-language-{i}", ("-q", "run", "@TINY@", "--out", OUT, "--set", value),
                          r"task.*language", marker=True))
    return cases


def cli_stages() -> list[Case]:
    """``--stages``: empty, only commas, unknown, duplicated, not applying to the recipe."""
    items = [("", r"--stages"), (",", r"--stages"), (" , ", r"--stages"), ("nope", r"nope"),
             ("search,search", r"--stages.*search"), ("search,nope", r"nope"), ("SEARCH", r"SEARCH"),
             ("search;report", r"search;report"), ("retrain", r"retrain"), ("supernet", r"supernet")]
    cases = numbered("stages", items, lambda cid, value, names: Case(cid, ("-q", "run", "@TOY@", "--out", OUT,
                                                                          "--stages", value), names))
    # LV-BERT: a stage whose inputs an earlier stage makes, on an empty run directory
    cases.append(Case("stages-10", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "glue"), r"retrain"))
    cases.append(Case("stages-11", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "search"), r"supernet"))
    cases.append(Case("stages-12", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "retrain"), r"search|top\.json"))
    return cases


def cli_out() -> list[Case]:
    """``--out`` that cannot be a run directory: a file, /dev/null, /proc, under a file,
    unwritable; for run, compare and rank-corr."""
    a_file = (("file", "not a folder\n"),)
    runs = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("/proc/nasplug-fuzz", r"--out"),
            ("/proc/self", r"--out"), ("@CASE@/file/sub", r"--out"), ("@CASE@/ro/sub", r"--out"),
            ("/dev/null/sub", r"--out"), ("/sys/nasplug-fuzz", r"--out")]
    cases = numbered("out-run", runs, lambda cid, out, names: Case(cid, ("-q", "run", "@TOY@", "--out", out), names,
                                                                   files=a_file, readonly=("ro",)))
    compares = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("@CASE@/file/sub", r"--out"),
                ("/proc/nasplug-fuzz", r"--out")]
    cases += numbered("out-compare", compares,
                      lambda cid, out, names: Case(cid, ("-q", "compare", "@TOY@", "--strategies", "random", "--seeds",
                                                         "1", "--budget", "3", "--out", out), names, files=a_file))
    rank = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("@CASE@/file/sub", r"--out")]
    cases += numbered("out-rankcorr", rank,
                      lambda cid, out, names: Case(cid, ("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2",
                                                         "--out", out), names, files=a_file, base="tiny_run"))
    return cases
