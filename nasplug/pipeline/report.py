"""The report stage: a Markdown summary of the run (later stages add plots and GLUE)."""

from __future__ import annotations

from typing import Any

from nasplug.io import atomic_write_text
from nasplug.pipeline import RunContext, add_stage
from nasplug.report import render_report


@add_stage("report", applies=lambda recipe: True)
def run_report_stage(ctx: RunContext) -> dict[str, Any]:
    k = ctx.recipe.search.top_k if ctx.recipe.search else 10
    text, table = render_report(ctx.run_dir, k=k)
    atomic_write_text(ctx.run_dir / "report.md", text)
    ctx.extras["report_table"] = table
    return {"report": "report.md"}
