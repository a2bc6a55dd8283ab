"""The fuzz cases of issue 15: bad inputs a hostile user would try, one family per category.

The families live next to this module, by role: :mod:`cases_recipes` (files that are not a
well-formed recipe), :mod:`cases_settings` (recipes with bad settings), :mod:`cases_cli`
(the command line), :mod:`cases_data` (corpora, GLUE folders), :mod:`cases_rundirs` (damaged
run directories, refused resumes) and :mod:`cases_compare` (compare, rank-corr); the
:class:`Case` type, its placeholders and the helpers they share are in :mod:`cases_base`.
This module gathers them into :data:`CASES` (in a fixed order, ids unique) and picks the
real-subprocess sample.
"""

from __future__ import annotations

import random

from cases_base import COMPARE_ARGS, TINY_RECIPE, TOY, Case
from cases_cli import cli_out, cli_set, cli_stages
from cases_compare import compare_runs, rank_corr
from cases_cost import cli_export_front, cli_latency, measured_latencies, recipe_latency
from cases_data import corpora, glue_folders
from cases_elastic import elastic_settings, sampler_settings
from cases_machine import machine_record, machine_settings
from cases_objectives import pareto_files, recipe_objectives
from cases_recipes import recipe_alias, recipe_deep, recipe_dup_key, recipe_garbage, recipe_tags
from cases_rundirs import checkpoints, no_resume, resume_changed, run_files, trials_logs
from cases_settings import (
    arch_strings,
    recipe_bool,
    recipe_code,
    recipe_huge,
    recipe_nonpositive,
    recipe_path_names,
    recipe_rank_corr,
    recipe_snapshots,
    recipe_unknown_key,
    recipe_unknown_name,
    recipe_wrong_type,
)

__all__ = ["CASES", "COMPARE_ARGS", "TINY_RECIPE", "TOY", "Case", "all_cases", "heavy", "subprocess_sample"]


def all_cases() -> list[Case]:
    cases = [*recipe_garbage(), *recipe_dup_key(), *recipe_alias(), *recipe_deep(), *recipe_tags(),
             *recipe_unknown_key(), *recipe_wrong_type(), *recipe_bool(), *recipe_huge(), *recipe_nonpositive(),
             *recipe_unknown_name(), *recipe_code(), *recipe_path_names(), *arch_strings(), *cli_set(), *cli_stages(),
             *cli_out(), *corpora(), *glue_folders(), *trials_logs(), *checkpoints(), *run_files(), *compare_runs(),
             *rank_corr(), *resume_changed(), *no_resume(), *sampler_settings(), *elastic_settings(),
             *recipe_objectives(), *pareto_files(), *recipe_snapshots(), *recipe_rank_corr(), *recipe_latency(),
             *cli_latency(), *cli_export_front(), *measured_latencies(),
             *machine_settings(), *machine_record()]
    ids = [c.cid for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"duplicate case ids: {sorted(duplicates)}"
    return cases


CASES = all_cases()


def heavy(case: Case) -> bool:
    """Does the case import the LV-BERT space (seconds of imports per process)?"""
    contents = [c.encode() if isinstance(c, str) else c for _, c in case.files]
    return ((case.base or "").startswith("tiny") or "@TINY@" in case.argv
            or any(b"name: lvbert" in c for c in contents))


def subprocess_sample(cases: list[Case], light: int = 17, heavy_n: int = 3, seed: int = 15) -> list[Case]:
    """The cases for the real-subprocess run: one from each of ``light`` + ``heavy_n``
    families chosen with ``seed``, most of them cheap to start (a toy recipe), a few on
    LV-BERT (whose imports alone take seconds), in case order."""
    rng = random.Random(seed)
    picked: set[str] = set()
    for want_heavy, n in ((False, light), (True, heavy_n)):
        by_family: dict[str, list[Case]] = {}
        for case in cases:
            if heavy(case) == want_heavy and case.family not in {c.split("@")[0] for c in picked}:
                by_family.setdefault(case.family, []).append(case)
        for family in rng.sample(sorted(by_family), min(n, len(by_family))):
            picked.add(f"{family}@{rng.choice(by_family[family]).cid}")
    chosen = {p.split("@")[1] for p in picked}
    return [c for c in cases if c.cid in chosen]
