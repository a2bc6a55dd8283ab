"""Fuzz cases: ``nasplug compare`` (damaged or changed comparisons, bad arguments) and
``nasplug rank-corr``."""

from __future__ import annotations

import json
from collections.abc import Callable

from cases_base import (
    COMPARE_ARGS,
    COMPARE_RESUME,
    OUT,
    RANK_CORR,
    Case,
    edit_line,
    insert_line,
    rng_bytes,
    torn,
    truncate_half,
)


def compare_runs() -> list[Case]:
    """`nasplug compare`: damaged logs, config and cache on --resume, a changed setup on
    --resume, bad --target / --seeds / --budget / --strategies."""
    log = "runs/random/seed0/trials.jsonl"
    damaged = [
        (log, insert_line(2, b"garbage {"), r"trials\.jsonl"),
        (log, insert_line(2, b"\xff\xfe\xfd"), r"trials\.jsonl"),
        (log, edit_line(1, lambda r: r.update(score="high")), r"trials\.jsonl"),
        (log, edit_line(1, lambda r: r.update(status="weird")), r"trials\.jsonl"),
        ("compare-config.json", b"garbage{", r"compare-config\.json"),
        ("compare-config.json", b"[1, 2]", r"compare-config\.json"),
        ("cache.jsonl", insert_line(1, b"\xff\xfe garbage"), r"cache\.jsonl"),
        ("cache.jsonl", edit_line(0, lambda r: [1]), r"cache\.jsonl"),
    ]
    cases = [Case(f"compare-damaged-{i}", COMPARE_RESUME, names, base="compare_run", damage=((path, t),))
             for i, (path, t, names) in enumerate(damaged)]
    cases.append(Case("compare-torn-0", COMPARE_RESUME, base="compare_run", damage=((log, torn),), contract="repaired"))
    changed = [
        (("--set", "search.metric=params"), r"metric"),
        (("--set", "search.direction=minimize"), r"direction"),
        (("--batch-size", "3"), r"batch_size|batch-size"),
        (("--set", "evaluator.noise=0.5"), r"evaluator"),
        (("--set", "space.seed=1"), r"space"),
        (("--strategy-args", "evolution.population=12"), r"evolution"),
    ]
    cases += [Case(f"compare-changed-{i}", (*COMPARE_RESUME, *more), names, base="compare_run")
              for i, (more, names) in enumerate(changed)]
    cases.append(
        Case(
            "compare-noresume-0",
            ("-q", "compare", "@TOY@", *COMPARE_ARGS, "--out", "@RUN@"),
            r"--resume|@RUN@",
            base="compare_run",
        )
    )
    fresh = ("-q", "compare", "@TOY@", "--strategies", "random", "--seeds", "1", "--budget", "3", "--out", OUT)
    bad_args = [
        (("--target", "nan"), r"--target"),
        (("--target", "inf"), r"--target"),
        (("--target=-inf",), r"--target"),
        (("--seeds", "0"), r"--seeds"),
        (("--seeds", "-1"), r"--seeds"),
        (("--budget", "0"), r"--budget"),
        (("--budgets", "0"), r"--budgets"),
        (("--batch-size", "0"), r"--batch-size"),
        (("--strategies", "os:system"), r"os:system"),
        (("--strategies", "random", "random"), r"random"),
        (
            ("--strategy-args", "random.seed=!!python/object/apply:os.system ['touch @MARKER@']"),
            r"strategy-args|seed|tag",
        ),
        (("--strategy-args", "nosuch.x=1"), r"nosuch"),
        (("--budget", "9" * 100), r"--budget"),
        (("--from-run", "@CASE@/nowhere"), r"--from-run"),
    ]
    cases += [
        Case(f"compare-args-{i}", (*fresh, *more), names, marker=True) for i, (more, names) in enumerate(bad_args)
    ]
    return cases


def rank_corr() -> list[Case]:
    """`nasplug rank-corr` on runs that cannot answer and with bad numbers."""
    items = [
        (("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2"), "toy_run", r"supernet"),
        (("-q", "rank-corr", "@CASE@/nowhere", "--archs", "3", "--steps", "2"), None, r"nowhere"),
        (("-q", "rank-corr", "@TOY@", "--archs", "3", "--steps", "2"), None, r"toy\.yaml|RUN_DIR"),
        ((*RANK_CORR[:-4], "--archs", "2", "--steps", "2"), "tiny_run", r"--archs"),
        ((*RANK_CORR[:-4], "--archs", "3", "--steps", "0"), "tiny_run", r"--steps"),
        ((*RANK_CORR[:-4], "--archs", str(10**18), "--steps", "2"), "tiny_run", r"--archs"),
        ((*RANK_CORR[:-4], "--archs", "3", "--steps", str(10**18)), "tiny_run", r"steps"),
        ((*RANK_CORR, "--metric", "nope"), "tiny_run", r"nope"),
        ((*RANK_CORR, "--batches", "0"), "tiny_run", r"--batches"),
        ((*RANK_CORR, "--set", "retrain.lr=fast"), "tiny_run", r"lr"),
        ((*RANK_CORR, "--set", "retrain.steps=" + "9" * 5000), "tiny_run", r"steps"),
        ((*RANK_CORR, "--resamples", "5"), "tiny_run", r"--resamples"),
    ]
    cases = [Case(f"rankcorr-{i}", argv, names, base=base, data=bool(base and base.startswith("tiny")))
             for i, (argv, base, names) in enumerate(items)]
    weights = [(truncate_half, r"model\.safetensors"), (rng_bytes(12, 1000), r"model\.safetensors")]
    cases += [Case(f"rankcorr-weights-{i}", RANK_CORR, names, base="tiny_run",
                   damage=(("supernet/model.safetensors", t),), data=True) for i, (t, names) in enumerate(weights)]
    return [*cases, *rank_corr_flags(), *rank_corr_caches()]


def with_key(key: str, value: object) -> Callable[[bytes], bytes]:
    """A JSON file with ``key`` set to ``value`` (the rest as it was)."""
    return lambda data: json.dumps({**json.loads(data), key: value}).encode()


def rank_corr_flags() -> list[Case]:
    """The flags of issue 25 (seeds, jobs, predictors, stratified draws, snapshots, other runs)."""
    items = [
        ((*RANK_CORR, "--seeds", "0"), r"--seeds"),
        ((*RANK_CORR, "--seeds", "101"), r"--seeds"),
        ((*RANK_CORR, "--jobs", "0"), r"--jobs"),
        ((*RANK_CORR, "--jobs", str(10**9)), r"--jobs"),
        ((*RANK_CORR, "--predictors", "nope"), r"--predictors: 'nope'"),
        ((*RANK_CORR, "--predictors", "params,,short:0"), r"--predictors: 'short:0'"),
        ((*RANK_CORR, "--predictors", "short:2"), r"--predictors: 'short:2'"),
        ((*RANK_CORR, "--predictors", "short:" + "9" * 400), r"--predictors"),
        ((*RANK_CORR, "--predictors", "short,short:1"), r"--predictors: short training is named twice"),
        ((*RANK_CORR, "--stratify", "mlm_acc"), r"--stratify: 'mlm_acc'"),
        ((*RANK_CORR, "--stratify", "\x00"), r"--stratify"),
        ((*RANK_CORR, "--checkpoints"), r"--checkpoints"),
        ((*RANK_CORR, "--compare", "@CASE@/nowhere"), r"nowhere"),
        ((*RANK_CORR, "--compare", "@TOY@"), r"toy\.yaml|RUN_DIR"),
    ]
    return [Case(f"rankcorr-flags-{i}", argv, names, base="tiny_run", data=True) for i, (argv, names) in
            enumerate(items)]


def rank_corr_caches() -> list[Case]:
    """Damaged files rank-corr reads back: one line naming the file, the run as it was."""
    argv = (*RANK_CORR[:-4], "--archs", "3", "--steps", "2", "--seeds", "2", "--predictors", "synflow")
    files = [
        ("rank_corr/scores/supernet.json", rng_bytes(31, 300), r"supernet\.json"),
        ("rank_corr/scores/supernet.json", truncate_half, r"supernet\.json"),
        ("rank_corr/scores/supernet.json", b"[1, 2]", r"supernet\.json"),
        ("rank_corr/standalone/*/steps-2/seed-1/score.json", truncate_half, r"score\.json"),
        ("rank_corr/standalone/*/steps-2/seed-1/score.json", with_key("per_batch", 3), r"score\.json"),
        ("rank_corr/scores/supernet.json", with_key("archs", {"x": {"per_batch": [1]}}), r"supernet\.json"),
        ("rank_corr/standalone/*/steps-2/seed-0/arch.json", rng_bytes(32, 100), r"arch\.json"),
        ("rank_corr/standalone/*/steps-2/seed-0/arch.json", b'{"arch": "AAA", "arch_dict": {"L00": "attn"}}',
         r"holds arch"),
        ("rank_corr/predictors/synflow.json", rng_bytes(33, 200), r"synflow\.json"),
        ("rank_corr/predictors/synflow.json", b'{"settings": 1, "scores": []}', r"synflow\.json"),
    ]
    return [Case(f"rankcorr-cache-{i}", argv, names, base="tiny_rankcorr", damage=((path, t),), data=True)
            for i, (path, t, names) in enumerate(files)]
