"""``nasplug compare``: several strategies x several seeds against one evaluator, fairly.

Every (strategy, seed) run is a plain :func:`nasplug.search.search` with its own log
(``OUT/runs/<strategy>/seed<k>/trials.jsonl``), and all runs share one evaluation cache
(``OUT/cache.jsonl``), so an arch is scored once however many runs propose it. Resume is
per run: a finished run is read back from its log, an unfinished one is replayed and
continued by ``search(resume=True)``. Ground-truth mode first scores the whole space through
the same cache and reports regret against the true optimum. The outputs, written atomically:
``comparison.json`` (everything), ``comparison.md`` (tables + method) and ``anytime.png``.
See :mod:`nasplug.compare.stats` for the statistics.
"""

from __future__ import annotations

from nasplug.compare.cli import add_compare_parser, cmd_compare  # the CLI entry points, re-exported
from nasplug.compare.comparison import ComparisonResult, compare
from nasplug.compare.plan import resolve_strategies

__all__ = ["ComparisonResult", "add_compare_parser", "cmd_compare", "compare", "resolve_strategies"]
