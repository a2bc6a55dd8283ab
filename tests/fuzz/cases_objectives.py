"""Fuzz cases: the objectives of a search (``search.objectives``, ``directions``,
``reference_point``, a metric nobody declares a direction for) and a damaged ``pareto.json``."""

from __future__ import annotations

from typing import Any

from cases_base import SHOW, Case, numbered, recipe_case, toy


def two(**changes: Any) -> dict[str, Any]:
    """The toy recipe searching score against params (no metric/direction: objectives instead)."""
    return toy(**{"search.metric": None, "search.direction": None, "search.objectives": ["score", "params"],
                  **changes})


def recipe_objectives() -> list[Case]:
    """Objectives, directions and reference points that cannot be used: one line naming the key."""
    items = [
        (toy(**{"search.objectives": []}), r"search\.objectives"),
        (toy(**{"search.objectives": "score"}), r"search\.objectives"),
        (toy(**{"search.objectives": [5, "params"]}), r"search\.objectives"),
        (toy(**{"search.objectives": [""]}), r"search\.objectives"),
        (toy(**{"search.objectives": [f"m{i}" for i in range(17)]}), r"search\.objectives"),
        (two(**{"search.objectives": ["score", "score"]}), r"search\.objectives: 'score' is listed twice"),
        (two(**{"search.objectives": ["score", "size"]}), r"search\.directions\.size: no direction is declared"),
        (two(**{"search.metric": "score"}), r"search\.metric: give either"),
        (two(**{"search.direction": "minimize"}), r"search\.direction: with search\.objectives"),
        (two(**{"search.directions": {"params": "up"}}), r"search\.directions"),
        (two(**{"search.directions": "minimize"}), r"search\.directions"),
        (two(**{"search.directions": {"size": "minimize"}}), r"search\.directions\.size: not one of the objectives"),
        (two(**{"search.directions": {"params": True}}), r"search\.directions"),
        (toy(**{"search.metric": "size", "search.direction": None}), r"search\.direction: no direction is declared"),
        (two(**{"search.reference_point": {"score": "x", "params": 1}}), r"search\.reference_point"),
        (two(**{"search.reference_point": {"score": float("nan"), "params": 1}}), r"search\.reference_point"),
        (two(**{"search.reference_point": {"score": 1.0}}), r"search\.reference_point: no value for objective"),
        (two(**{"search.reference_point": {"score": 1, "params": 1, "acc": 2}}), r"search\.reference_point\.acc"),
        (two(**{"search.reference_point": [1, 2]}), r"search\.reference_point"),
        (two(**{"search.strategy": {"name": "regularized"}}), r"search\.objectives: strategy 'regularized'"),
        (two(**{"search.strategy": {"name": "nni"}}), r"search\.objectives: strategy 'nni'"),
    ]
    return numbered("recipe-objectives", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def pareto_files() -> list[Case]:
    """A damaged ``pareto.json`` met by ``nasplug show`` of a two-objective run: one line naming it."""
    damage = [b"garbage{", b"[1, 2]", b"\xff\xfe\xfd", b'{"front": 5}', b'{"front": [{"arch": {}}]}',
              b'{"front": [{"values": {}, "arch": []}]}']
    return [Case(f"pareto-{i}", SHOW, r"pareto\.json", base="pareto_run", damage=(("pareto.json", content),))
            for i, content in enumerate(damage)]
