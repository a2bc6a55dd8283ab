"""The report stage: ``report.md`` (and PNG plots) from the run directory's files."""

from __future__ import annotations

from typing import Any

from nasplug.io import atomic_write_text
from nasplug.pipeline.context import RunContext
from nasplug.pipeline.stage import Stage


class ReportStage(Stage):
    name = "report"
    incremental = True

    def applies(self, recipe: Any) -> bool:
        return True

    def run(self, ctx: RunContext) -> dict[str, Any]:
        from nasplug.report import render_report

        k = ctx.recipe.search.top_k if ctx.recipe.search else 10
        text, table = render_report(ctx.run_dir, k=k, draw=True)
        atomic_write_text(ctx.layout.report, text)
        ctx.extras["report_table"] = table
        return {"report": ctx.layout.report.name}
