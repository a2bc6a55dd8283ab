"""Report sections for the training stages: supernet, found vs baselines, GLUE vs the paper.

Each section reads only files in the run directory (so ``nasplug show`` works on any run,
finished or not) and returns Markdown lines plus, where it draws one, a PNG beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nasplug.report.table import markdown_table


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line of a run that was killed
    return records


def supernet_section(run_dir: Path) -> list[str]:
    from nasplug.report import plots

    records = read_jsonl(run_dir / "supernet" / "metrics.jsonl")
    if not records:
        return []
    steps = [r for r in records if "loss" in r and "event" not in r]
    evals = [r for r in records if r.get("event") in ("eval", "end") and "heldout_mlm_acc" in r]
    lines = ["## Supernet pre-training (single-path one-shot)", ""]
    if steps:
        plots.training_curves({"supernet (train)": steps}, "loss", run_dir / "supernet_loss.png", "supernet training loss")
        lines += ["![supernet loss](supernet_loss.png)", ""]
    if evals:
        plots.training_curves({"supernet (held-out, mean of eval archs)": evals}, "heldout_mlm_acc",
                              run_dir / "supernet_heldout.png", "supernet held-out MLM accuracy")
        last = evals[-1]
        baseline = last.get("unigram_baseline")
        lines += [f"Held-out MLM accuracy at step {last['step']}: {last['heldout_mlm_acc']:.4f}"
                  + (f" (unigram baseline {baseline:.4f})" if baseline is not None else ""), "",
                  "![supernet held-out accuracy](supernet_heldout.png)", ""]
    return lines


def retrain_results(run_dir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Name -> held-out figures of each finished retrain (``done`` False while unfinished)."""
    results = {}
    for name in names:
        result_file = run_dir / "retrain" / name / "result.json"
        result = json.loads(result_file.read_text()) if result_file.is_file() else {}
        heldout = {k: v for k, v in (result.get("heldout") or {}).items() if k != "per_arch"}
        results[name] = {"done": bool(result), **heldout}
    return results


def retrain_section(run_dir: Path, archs: dict[str, Any], space: Any) -> tuple[list[str], str]:
    """Found vs baselines after retraining: a table, the strip plot, the curves."""
    from nasplug.report import plots

    if not archs:
        return [], ""
    rows = retrain_results(run_dir, list(archs))
    table_rows = []
    for name, arch in archs.items():
        metrics = space.metrics(arch) if space is not None else {}
        r = rows.get(name, {})
        table_rows.append([name, space.format(arch) if space is not None else json.dumps(arch), metrics.get("params"),
                           metrics.get("flops"), r.get("heldout_mlm_acc"), r.get("heldout_mlm_loss"),
                           "done" if r.get("done") else "not trained"])
    table = markdown_table(["model", "architecture", "params", "FLOPs/seq", "held-out MLM acc", "held-out MLM loss",
                            "status"], table_rows)
    lines = ["## Found architecture vs baselines (retrained from scratch, same steps)", "", table, ""]
    if space is not None:
        plots.arch_strips(archs, space.choices(), run_dir / "architectures.png", title="layer types by position")
        lines += ["![architectures](architectures.png)", ""]
    series = {name: [r for r in read_jsonl(run_dir / "retrain" / name / "metrics.jsonl") if "loss" in r and "event" not in r]
              for name in archs}
    if any(series.values()):
        plots.training_curves(series, "loss", run_dir / "retrain_loss.png", "pre-training loss (retrained)")
        lines += ["![retrain loss](retrain_loss.png)", ""]
    return lines, table


def glue_section(run_dir: Path, names: list[str], expected: dict[str, Any] | None) -> tuple[list[str], str]:
    """Per-task dev scores (median over seeds) of each model, the two averages, the paper's numbers."""
    from nasplug.glue import ELECTRA_DEV_METRIC, ELECTRA_SMALL_DEV

    root = run_dir / "glue"
    if not root.is_dir():
        return [], ""
    reference = dict((expected or {}).get("glue_dev") or {})
    ref_name = (expected or {}).get("glue_dev_name", "paper")
    if not reference:
        reference, ref_name = dict(ELECTRA_SMALL_DEV["scores"]), "ELECTRA-Small dev (Clark et al.)"
    per_model = {n: {p.stem: json.loads(p.read_text()) for p in sorted((root / n).glob("*.json")) if p.stem != "scores"}
                 for n in names if (root / n).is_dir()}
    scores = {n: json.loads((root / n / "scores.json").read_text()) for n in names if (root / n / "scores.json").is_file()}
    from nasplug.glue import TASK_NAMES

    seen = {t for results in per_model.values() for t in results} | set(reference)
    tasks = [t for t in TASK_NAMES if t in seen]
    rows = []
    for task in tasks:
        metric = ELECTRA_DEV_METRIC.get(task, "accuracy")
        row: list[Any] = [task, metric]
        for n in per_model:
            result = per_model[n].get(task)
            if result is None:
                row.append("not run")
            elif result.get("status") == "missing":
                row.append("missing")
            else:
                row.append((result.get("median") or {}).get(metric))
        row.append(reference.get(task))
        rows.append(row)
    for conv in ("electra_dev", "leaderboard"):
        row = [f"average ({conv})", ""]
        for n in per_model:
            s = scores.get(n, {}).get(conv, {})
            row.append(s.get("score") if s.get("score") is not None else f"partial: {len(s.get('missing') or [])} missing")
        row.append(expected.get("glue_dev_average") if expected and conv == "electra_dev" else None)
        rows.append(row)
    table = markdown_table(["task", "metric", *per_model, ref_name], rows)
    return ["## GLUE dev (median over fine-tuning seeds)", "", table, ""], table
