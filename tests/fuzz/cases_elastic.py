"""Fuzz cases of issue 24's inputs: the sampler section (``supernet.sampler: {name: sandwich,
...}``), the elastic-bert space's settings (sizes, ``init_from``, ``reorder``, a vocabulary or
length that disagrees with the task's) and the ``canonical`` field of a trials log."""

from __future__ import annotations

from typing import Any

from cases_base import Case, numbered, recipe_case, tiny

ELASTIC = {"name": "elastic-bert", "layers": 2, "hidden": [16, 32], "heads": [1, 2], "ffn": [32, 64], "head_size": 16}


def elastic(**changes: Any) -> dict[str, Any]:
    """The tiny pipeline recipe on a tiny elastic-bert space, with dotted-key changes."""
    return tiny(space=dict(ELASTIC), **{"retrain.baselines": {}}, **changes)


def sampler_settings() -> list[Case]:
    """``supernet.sampler`` as a component: unknown settings, wrong types, bad ranges."""
    items = [
        (tiny(**{"supernet.sampler": {"name": "sandwich", "randm": 2}}), r"randm"),
        (tiny(**{"supernet.sampler": {"name": "sandwich", "random": -1}}), r"supernet\.sampler\.random"),
        (tiny(**{"supernet.sampler": {"name": "sandwich", "random": 10**9}}), r"supernet\.sampler\.random"),
        (tiny(**{"supernet.sampler": {"name": "sandwich", "random": "2"}}), r"supernet\.sampler\.random"),
        (tiny(**{"supernet.sampler": {"name": "sandwich", "distill": "yes"}}), r"supernet\.sampler\.distill"),
        (tiny(**{"supernet.sampler": {"name": "fair", "random": 2}}), r"random"),
        (tiny(**{"supernet.sampler": {"name": "sandwhich"}}), r"sandwhich"),
        (tiny(**{"supernet.sampler": ["sandwich"]}), r"sampler"),
        (tiny(**{"supernet.sampler": {"random": 2}}), r"sampler"),
        (tiny(**{"task.name": "electra", "search.metric": "disc_acc",
                 "supernet.sampler": {"name": "sandwich"}}), r"distill"),
    ]
    return numbered("sampler-settings", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def elastic_settings() -> list[Case]:
    """The elastic-bert space's settings: refused naming the field before anything is written."""
    items = [
        (elastic(**{"space.hidden": []}), r"space\.hidden"),
        (elastic(**{"space.heads": [0, 2]}), r"space\.heads"),
        (elastic(**{"space.ffn": [64, 64]}), r"space\.ffn"),
        (elastic(**{"space.layers": 0}), r"space\.layers"),
        (elastic(**{"space.depths": [1, 5]}), r"space\.depths"),
        (elastic(**{"space.head_size": True}), r"space\.head_size"),
        (elastic(**{"space.vocab_size": 100}), r"space\.vocab_size"),
        (elastic(**{"space.seq_len": 16}), r"space\.seq_len"),
        (elastic(**{"space.reorder": True}), r"space\.reorder"),
        (elastic(**{"space.init_from": "@CASE@/no-such-bert"}), r"space\.init_from"),
        (elastic(**{"task.name": "electra", "search.metric": "disc_acc"}), r"discriminator_logits"),
        (elastic(arch="d9 h32 a1 f32"), r"arch"),
    ]
    return numbered("elastic-settings", items, lambda cid, raw, names: recipe_case(cid, raw, names))
