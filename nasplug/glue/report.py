"""The GLUE section of a run's report: per-task dev scores of each model beside the paper's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nasplug.layout import RunLayout
from nasplug.report.table import markdown_table
from nasplug.runfiles import read_json


def glue_section(run_dir: Path, names: list[str], expected: dict[str, Any] | None) -> tuple[list[str], str]:
    """Per-task dev scores (median over seeds) of each model, the two averages, the paper's numbers."""
    from nasplug.glue import ELECTRA_DEV_METRIC, ELECTRA_SMALL_DEV

    layout = RunLayout(run_dir)
    if not layout.glue().is_dir():
        return [], ""
    reference = dict((expected or {}).get("glue_dev") or {})
    ref_name = (expected or {}).get("glue_dev_name", "paper")
    if not reference:
        reference, ref_name = dict(ELECTRA_SMALL_DEV["scores"]), "ELECTRA-Small dev (Clark et al.)"
    per_model = {n: {p.stem: read_json(p) for p in sorted(layout.glue(n).glob("*.json")) if p.stem != "scores"}
                 for n in names if layout.glue(n).is_dir()}
    scores = {n: read_json(layout.glue_scores(n)) for n in names if layout.glue_scores(n).is_file()}
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
            elif result.get("status") in ("missing", "failed"):
                row.append(result["status"])
            else:
                row.append((result.get("median") or {}).get(metric))
        row.append(reference.get(task))
        rows.append(row)
    for conv in ("electra_dev", "leaderboard"):
        row = [f"average ({conv})", ""]
        for n in per_model:
            s = scores.get(n, {}).get(conv, {})
            row.append(
                s.get("score") if s.get("score") is not None else f"partial: {len(s.get('missing') or [])} missing"
            )
        row.append(expected.get("glue_dev_average") if expected and conv == "electra_dev" else None)
        rows.append(row)
    table = markdown_table(["task", "metric", *per_model, ref_name], rows)
    return ["## GLUE dev (median over fine-tuning seeds)", "", table, ""], table
