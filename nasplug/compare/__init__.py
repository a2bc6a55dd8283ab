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

import importlib
from typing import Any

from nasplug.compare.cli import add_compare_parser, cmd_compare  # the CLI entry points, re-exported

#: Imported when first used (torch, the search loop): building the CLI's parser imports this package.
_LAZY = {"ComparisonResult": "nasplug.compare.comparison", "compare": "nasplug.compare.comparison",
         "resolve_strategies": "nasplug.compare.plan"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["ComparisonResult", "add_compare_parser", "cmd_compare", "compare", "resolve_strategies"]
