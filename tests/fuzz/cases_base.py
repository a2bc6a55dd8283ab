"""What every fuzz case family shares: the :class:`Case` type, the toy recipe, recipe and
damage helpers, and the commands run on a copied run directory.

A :class:`Case` is one CLI command plus what it needs: files written into the case folder
(recipes, data), a run directory copied from a session fixture and damaged, environment
variables. Placeholders in argv, file contents, env values and the expected regex:
``@CASE@`` (the case folder), ``@RUN@`` (the copied run directory), ``@TOY@`` (the toy
recipe of the session runs), ``@TINY@`` (tests/data/tiny-pipeline.yaml), ``@MARKER@`` (a file
a shell command smuggled into a recipe would create), ``@CWD@`` (the working directory).

Every generated value is fixed (seeded ``random.Random``), so ids and inputs are stable. The
families are in the ``cases_*`` modules next to this one; :mod:`fuzzcases` gathers them.
"""

from __future__ import annotations

import copy
import json
import random
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
TINY_RECIPE = REPO / "tests" / "data" / "tiny-pipeline.yaml"

#: The toy-evolution recipe at a size that searches in a fraction of a second.
TOY: dict[str, Any] = {
    "name": "toy-fuzz",
    "description": "toy-evolution, tiny",
    "seed": 0,
    "space": {"name": "toy", "slots": 8, "seed": 0},
    "evaluator": {"name": "toy"},
    "search": {"strategy": {"name": "evolution", "population": 10, "parents": 3, "mutations": 4, "crossovers": 4,
                            "mutation_prob": 0.1, "generations": 20},
               "budget": 30, "batch_size": 10, "metric": "score", "direction": "maximize", "top_k": 5},
}
#: `nasplug compare` arguments of the shared comparison (after the recipe).
COMPARE_ARGS = ("--strategies", "random", "evolution", "--seeds", "2", "--budget", "12")

#: A damage that replaces the file with an empty folder of the same name.
FOLDER = "folder"
Transform = bytes | str | None | Callable[[bytes], bytes]
DELETE = object()


@dataclass(frozen=True)
class Case:
    """One bad input and the command that meets it.

    Contracts (``contract``):
      ``refused``: exit 2, exactly one stderr line ``nasplug: error: ...`` matching
      ``names``, no traceback, within the timeout; the run directory (``base``) and the case
      folder (recipes, --out, the working directory) byte-identical afterwards (unless
      ``keep_case_dir`` is False: data errors found while a fresh run starts).
      ``repaired``: exit 0 and every damaged file equal to its undamaged bytes afterwards (a
      torn last line of a log is cut, the run completes as if uninterrupted).
      ``repaired-or-refused``: either of the two.
      ``read-only``: a reading command (``show``) succeeds and changes nothing.
      ``glue-missing``: exit 0 and the task recorded as missing (the documented contract).
    """

    cid: str
    argv: tuple[str, ...]
    names: str = ""
    files: tuple[tuple[str, bytes | str], ...] = ()
    base: str | None = None
    damage: tuple[tuple[str, Transform], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    contract: str = "refused"
    keep_case_dir: bool = True
    marker: bool = False
    data: bool = False  # reads the shared data folder (LV-BERT GLUE)
    readonly: tuple[str, ...] = ()  # folders of the case made read-only (mode 555)

    @property
    def family(self) -> str:
        return self.cid.rsplit("-", 1)[0]

    @property
    def category(self) -> str:
        return self.family.split("-", 1)[0]


# ---------------------------------------------------------------------- building blocks
def set_dotted(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is DELETE:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return raw


def toy(**changes: Any) -> dict[str, Any]:
    """The toy recipe with dotted-key changes: ``toy(**{"search.budget": True})``."""
    raw = copy.deepcopy(TOY)
    for key, value in changes.items():
        set_dotted(raw, key, value)
    return raw


def tiny(**changes: Any) -> dict[str, Any]:
    raw = yaml.safe_load(TINY_RECIPE.read_text())
    for key, value in changes.items():
        set_dotted(raw, key, value)
    return raw


def dump(raw: Any) -> str:
    return yaml.safe_dump(raw, sort_keys=False, width=10**9)


TOY_TEXT = dump(TOY)
RECIPE = "@CASE@/r.yaml"
OUT = "@CASE@/out"
RUN_CASE_RECIPE = ("-q", "run", RECIPE, "--out", OUT)


def recipe_case(cid: str, recipe: dict[str, Any] | str | bytes, names: str, *more: str, **kw: Any) -> Case:
    """``nasplug run r.yaml --out out`` on a recipe written into the case folder."""
    content = recipe if isinstance(recipe, (str, bytes)) else dump(recipe)
    return Case(cid, (*RUN_CASE_RECIPE, *more), names, files=(("r.yaml", content),), **kw)


def numbered(family: str, items: Iterable[Any], make: Callable[..., Case]) -> list[Case]:
    return [make(f"{family}-{i}", *item) if isinstance(item, tuple) else make(f"{family}-{i}", item)
            for i, item in enumerate(items)]


def edit_line(index: int, edit: Callable[[dict[str, Any]], Any]) -> Callable[[bytes], bytes]:
    """A transform of a JSON-lines file: line ``index`` decoded, edited, encoded back."""
    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        record = json.loads(lines[index])
        result = edit(record)
        lines[index] = json.dumps(record if result is None else result).encode()
        return b"\n".join(lines)
    return apply


def insert_line(index: int, text: bytes) -> Callable[[bytes], bytes]:
    def apply(data: bytes) -> bytes:
        lines = data.split(b"\n")
        return b"\n".join([*lines[:index], text, *lines[index:]])
    return apply


def torn(data: bytes) -> bytes:
    """The last line cut in the middle, as a kill during its write leaves it."""
    body = data.rstrip(b"\n")
    last = body.rfind(b"\n")
    return body[: last + 1 + (len(body) - last - 1) // 2]


def truncate_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def rng_bytes(seed: int, n: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def rng_text(seed: int, n: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(string.printable) for _ in range(n))


# ---------------------------------------------------------------------- commands on a copied run directory
RESUME_TOY = ("-q", "run", "@TOY@", "--out", "@RUN@", "--resume")
RESUME_TINY = ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume")
#: The tiny run searched against directly measured latency (the ``tiny_direct`` base run).
DIRECT_SETS = ("search.metric=null", "search.objectives=[mlm_acc, latency_ms]", "search.budget=6",
               "latency={measure: direct, seq_len: 8, warmup: 0, repeats: 1, calls: 1}")
DIRECT_STAGES = ("--stages", "latency,supernet,search", *(a for s in DIRECT_SETS for a in ("--set", s)))
SHOW = ("-q", "show", "@RUN@")
RANK_CORR = ("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2")
COMPARE_RESUME = ("-q", "compare", "@TOY@", *COMPARE_ARGS, "--out", "@RUN@", "--resume")
