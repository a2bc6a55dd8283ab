"""The fuzz cases of issue 15: bad inputs a hostile user would try, one family per category.

A :class:`Case` is one CLI command plus what it needs: files written into the case folder
(recipes, data), a run directory copied from a session fixture and damaged, environment
variables. Placeholders in argv, file contents, env values and the expected regex:
``@CASE@`` (the case folder), ``@RUN@`` (the copied run directory), ``@TOY@`` (the toy
recipe of the session runs), ``@TINY@`` (tests/data/tiny-pipeline.yaml), ``@MARKER@`` (a file
a shell command smuggled into a recipe would create), ``@CWD@`` (the working directory).

Every generated value is fixed (seeded ``random.Random``), so ids and inputs are stable.
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

Transform = bytes | None | Callable[[bytes], bytes]
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


def safetensors_bytes(tensors: dict[str, Any]) -> bytes:
    from safetensors.torch import save

    return save(tensors)


def reshaped_safetensors(data: bytes) -> bytes:
    """The same tensor names, the first tensor with another shape."""
    import torch
    from safetensors.torch import load, save

    tensors = load(data)
    first = sorted(tensors)[0]
    tensors[first] = torch.zeros(3, 5)
    return save(tensors)


def torch_bytes(obj: Any) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def malicious_pickle(data: bytes) -> bytes:
    """A pickle that runs ``touch @MARKER@``-like code when loaded without weights_only.

    The marker path is not known here, so it touches a fixed name in the working directory
    (the case folder); the test checks that it does not exist.
    """
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return (os.system, ("touch PICKLE-MARKER",))

    return pickle.dumps({"format": 1, "step": 24, "x": Evil()})


def billion_laughs(target: str) -> str:
    """A toy recipe whose ``target`` key is an alias that expands to 9**9 strings."""
    lines = ["expected:", '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    raw = toy()
    raw.pop("expected", None)
    body = dump({k: v for k, v in raw.items() if k != target})
    if target == "expected":
        return "\n".join(lines) + "\n  boom: *l8\n" + body
    return "\n".join(lines) + f"\n{target}: *l8\n" + body


# ---------------------------------------------------------------------- recipes
def recipe_garbage() -> list[Case]:
    """Files that are not a recipe at all: random bytes, binary, other encodings, empty,
    the wrong top-level type, malformed YAML, paths that are not files."""
    big = "name: big\ndescription: '" + "x" * (2 << 20) + "'\n"
    contents: list[tuple[bytes | str, str]] = [
        (rng_bytes(1, 200), r"r\.yaml"),
        (rng_bytes(2, 4000), r"r\.yaml"),
        (rng_bytes(3, 17), r"r\.yaml"),
        (rng_text(4, 300), r"r\.yaml"),
        (rng_text(5, 2000), r"r\.yaml"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, r"r\.yaml"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, r"r\.yaml"),
        (b"\x00" * 128, r"r\.yaml"),
        (TOY_TEXT.replace("toy-evolution, tiny", "caf\xe9").encode("latin-1"), r"r\.yaml"),
        (TOY_TEXT.encode("utf-16"), r"r\.yaml"),
        (TOY_TEXT.encode() + b"\xff\xfe\n", r"r\.yaml"),
        (b"", r"r\.yaml"),
        (b"   \n\n\t\n", r"r\.yaml"),
        (b"# only a comment\n", r"r\.yaml"),
        (b"---\n...\n", r"r\.yaml"),
        (b"- name: toy\n- seed: 0\n", r"r\.yaml"),
        (b"42\n", r"r\.yaml"),
        (b"just a string\n", r"r\.yaml"),
        (b"~\n", r"r\.yaml"),
        (b"{}\n", r"r\.yaml.*name|name.*r\.yaml"),
        (TOY_TEXT + "---\n" + TOY_TEXT, r"r\.yaml"),
        (b"name: [unclosed\n", r"r\.yaml"),
        (b"name: a\n  bad: indent\n", r"r\.yaml"),
        (b"\tname: tab\n", r"r\.yaml"),
        (b"key: : :\n", r"r\.yaml"),
        (b"name: 'unterminated\n", r"r\.yaml"),
        (b"{{{{\n", r"r\.yaml"),
        (big, r"r\.yaml"),
    ]
    cases = numbered("recipe-garbage", contents, lambda cid, content, names: recipe_case(cid, content, names))
    paths = [("@CASE@/missing.yaml", r"missing\.yaml"), ("@CASE@", r"@CASE@"), ("/dev/null", r"/dev/null"),
             ("/proc/self/status", r"/proc/self/status")]
    cases += numbered("recipe-path", paths, lambda cid, path, names: Case(cid, ("-q", "run", path, "--out", OUT), names))
    return cases


def recipe_dup_key() -> list[Case]:
    """A key given twice (YAML keeps the last one without a word): refused, naming the key."""
    texts = [
        ("name: first\n" + TOY_TEXT, r"r\.yaml.*name"),
        (TOY_TEXT + "name: toy-fuzz\n", r"r\.yaml.*name"),
        (TOY_TEXT.replace("  budget: 30\n", "  budget: 30\n  budget: 3000\n"), r"r\.yaml.*budget"),
        (TOY_TEXT.replace("space:\n  name: toy\n", "space:\n  name: toy\n  slots: 4\n"), r"r\.yaml.*slots"),
        (TOY_TEXT.replace("    name: evolution\n", "    name: evolution\n    name: random\n"), r"r\.yaml.*name"),
        (TOY_TEXT + "seed: '0'\n", r"r\.yaml.*seed"),
        (TOY_TEXT.replace("name: toy-fuzz\n", '"name": toy-fuzz\nname: other\n'), r"r\.yaml.*name"),
        (TOY_TEXT.replace("evaluator:\n  name: toy\n", "evaluator: {name: toy, name: toy}\n"), r"r\.yaml.*name"),
    ]
    cases = numbered("recipe-dup-key", texts, lambda cid, text, names: recipe_case(cid, text, names))
    cases.append(recipe_case("recipe-dup-key-8", TOY_TEXT, r"--set.*space", "--set", "space={name: toy, name: toy}"))
    return cases


def recipe_alias() -> list[Case]:
    """YAML anchors and aliases, including the billion laughs in name, description, seed and
    expected: refused (or at least never expanded into a hang)."""
    texts = [
        (TOY_TEXT + "expected: {a: &a 1, b: *a}\n", r"r\.yaml.*(alias|anchor)"),
        (TOY_TEXT.replace("search:\n", "base: &base {budget: 30}\nsearch:\n  <<: *base\n", 1), r"r\.yaml"),
        (TOY_TEXT.replace("space:\n  name: toy\n  slots: 8\n  seed: 0\n", "space: &s\n  name: toy\n  slots: 8\n  seed: 0\n")
         + "expected: {s: *s}\n", r"r\.yaml.*(alias|anchor)"),
        (TOY_TEXT + "description2: *nothing\n", r"r\.yaml"),
        (billion_laughs("name"), r"r\.yaml.*(alias|anchor)"),
        (billion_laughs("description"), r"r\.yaml.*(alias|anchor)"),
        (billion_laughs("seed"), r"r\.yaml.*(alias|anchor)"),
        (billion_laughs("expected"), r"r\.yaml.*(alias|anchor)"),
    ]
    cases = numbered("recipe-alias", texts, lambda cid, text, names: recipe_case(cid, text, names))
    cases.append(recipe_case("recipe-alias-8", TOY_TEXT, r"--set.*description", "--set",
                             "description=[&a [lol, lol, lol], *a, *a, *a]"))
    return cases


def recipe_deep() -> list[Case]:
    """Deeply nested YAML (flow and block style, in several keys): one line, no RecursionError."""
    block = "expected:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(300)) + "  " * 301 + "leaf: 1\n"
    texts = [
        (TOY_TEXT + "description2: " + "[" * 100 + "]" * 100 + "\n", r"r\.yaml"),
        (TOY_TEXT.replace("description: toy-evolution, tiny", "description: " + "[" * 1000 + "]" * 1000), r"r\.yaml"),
        (TOY_TEXT + "expected: " + "[" * 100000 + "]" * 100000 + "\n", r"r\.yaml"),
        (TOY_TEXT + "expected: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", r"r\.yaml"),
        (TOY_TEXT + block, r"r\.yaml"),
        (TOY_TEXT.replace("space:\n  name: toy\n", "space:\n  name: toy\n  extra: " + "[" * 60 + "]" * 60 + "\n"),
         r"r\.yaml"),
    ]
    cases = numbered("recipe-deep", texts, lambda cid, text, names: recipe_case(cid, text, names))
    cases.append(recipe_case("recipe-deep-6", TOY_TEXT, r"--set.*description", "--set",
                             "description=" + "[" * 5000 + "]" * 5000))
    return cases


def recipe_tags() -> list[Case]:
    """Tags beyond plain values, mappings and lists (!!binary, !!python/..., custom)."""
    texts = [
        (TOY_TEXT.replace("description: toy-evolution, tiny", "description: !!binary aGVsbG8="), r"r\.yaml.*(tag|binary)"),
        (TOY_TEXT.replace("name: toy-fuzz", 'name: !!python/object/apply:os.system ["touch @MARKER@"]'),
         r"r\.yaml.*(tag|python)"),
        (TOY_TEXT.replace("space:\n  name: toy\n  slots: 8\n  seed: 0\n", "space: !!python/name:os.system\n"),
         r"r\.yaml.*(tag|python)"),
        (TOY_TEXT + "expected: !!set {a, b}\n", r"r\.yaml.*(tag|set)"),
        (TOY_TEXT + "expected: !!omap [{a: 1}]\n", r"r\.yaml.*(tag|omap)"),
        (TOY_TEXT.replace("description: toy-evolution, tiny", "description: !custom foo"), r"r\.yaml.*(tag|custom)"),
        (TOY_TEXT + "expected: {date: !!timestamp 2001-12-14}\n", r"r\.yaml.*(tag|timestamp)"),
        (TOY_TEXT.replace("search:\n", "search: !!python/object:nasplug.recipe.SearchConfig\n", 1), r"r\.yaml.*(tag|python)"),
        (TOY_TEXT.replace("seed: 0\nspace", "seed: !!float 0\nspace"), r"seed"),
        (TOY_TEXT.replace("name: toy-fuzz", "name: !!python/object/new:subprocess.Popen [[touch, '@MARKER@']]"),
         r"r\.yaml.*(tag|python)"),
    ]
    return numbered("recipe-tag", texts, lambda cid, text, names: recipe_case(cid, text, names, marker=True))


def recipe_unknown_key() -> list[Case]:
    """Keys the recipe does not know, at every level: refused naming the key, before any
    training (the LV-BERT ones would otherwise train the supernet first)."""
    toys = [
        (toy(nmae="x"), r"nmae"),
        (toy(**{"search.budgt": 5}), r"budgt"),
        (toy(**{"search.strategy.popsize": 5}), r"popsize"),
        (toy(**{"space.slotz": 5}), r"slotz"),
        (toy(**{"evaluator.nois": 0.1}), r"nois"),
        (toy(**{"search.constraints": [{"name": "max_metric", "metrc": "params", "limit": 1}]}), r"metrc"),
        (toy(**{"search.strategy": {"name": "random", "populaton": 4}}), r"populaton"),
    ]
    tinies = [
        (tiny(**{"supernet.stepz": 5}), r"stepz"),
        (tiny(**{"task.corpuz": {}}), r"corpuz"),
        (tiny(**{"retrain.stepz": 5}), r"stepz"),
        (tiny(**{"glue.epochz": 1}), r"epochz"),
        (tiny(**{"evaluator.batchez": 2}), r"batchez"),
        (tiny(**{"task.tokenizer.vocab_sise": 320}), r"vocab_sise"),
        (tiny(**{"search.strategy.popsize": 6}), r"popsize"),
    ]
    return numbered("recipe-unknown-key", toys + tinies, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_wrong_type() -> list[Case]:
    """Values of the wrong type (strings for numbers, lists for mappings, ...)."""
    items = [
        (toy(name=123), r"name"),
        (toy(name=["a"]), r"name"),
        (toy(seed="abc"), r"seed"),
        (toy(seed=1.5), r"seed"),
        (toy(**{"search.budget": "100"}), r"budget"),
        (toy(**{"search.budget": 1.5}), r"budget"),
        (toy(**{"search.budget": [1]}), r"budget"),
        (toy(**{"search.metric": 5}), r"metric"),
        (toy(**{"search.direction": "up"}), r"direction"),
        (toy(space="toy"), r"space"),
        (toy(space=["toy"]), r"space"),
        (toy(search=5), r"search"),
        (toy(**{"search.constraints": {"a": 1}}), r"constraints"),
        (toy(evaluator=3), r"evaluator"),
        (toy(**{"space.seed": "x"}), r"seed"),
        (toy(**{"search.strategy.mutation_prob": "high"}), r"mutation_prob"),
        (toy(description=[1, 2]), r"description"),
        (toy(**{"search.strategy": "evolution"}), r"strategy"),
        (toy(**{"space.name": 5}), r"name"),
        (toy(**{"search.metric": "no_such_metric"}), r"metric"),
        (tiny(**{"supernet.lr": "fast"}), r"lr"),
        (tiny(**{"task.seq_len": "32"}), r"seq_len"),
        (tiny(**{"retrain.baselines": ["a", "b"]}), r"baselines"),
        (tiny(**{"glue.tasks": "RTE"}), r"tasks"),
        (tiny(**{"space.hidden": "32"}), r"hidden"),
        (tiny(**{"glue.tasks": ["NOPE"]}), r"NOPE"),
    ]
    return numbered("recipe-wrong-type", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_bool() -> list[Case]:
    """Booleans where numbers belong (YAML's true would otherwise be taken as 1)."""
    items = [
        (toy(**{"search.budget": True}), r"budget"),
        (toy(**{"search.batch_size": True}), r"batch_size"),
        (toy(**{"search.top_k": True}), r"top_k"),
        (toy(seed=True), r"seed"),
        (toy(seed=False), r"seed"),
        (toy(**{"space.slots": True}), r"slots"),
        (toy(**{"space.seed": False}), r"seed"),
        (toy(**{"space.width": True}), r"width"),
        (toy(**{"search.strategy.population": True}), r"population"),
        (toy(**{"search.strategy.parents": True}), r"parents"),
        (toy(**{"search.strategy.mutation_prob": True}), r"mutation_prob"),
        (toy(**{"search.strategy.generations": True}), r"generations"),
        (toy(**{"evaluator.noise": True}), r"noise"),
        (tiny(**{"supernet.steps": True}), r"steps"),
        (tiny(**{"supernet.batch_size": True}), r"batch_size"),
        (tiny(**{"supernet.lr": True}), r"lr"),
        (tiny(**{"evaluator.batches": True}), r"batches"),
        (tiny(**{"evaluator.batch_size": True}), r"batch_size"),
        (tiny(**{"task.seq_len": True}), r"seq_len"),
        (tiny(**{"space.hidden": True}), r"hidden"),
        (tiny(**{"space.slots": True}), r"slots"),
        (tiny(**{"space.vocab_size": True}), r"vocab_size"),
        (tiny(**{"retrain.steps": True}), r"steps"),
        (tiny(**{"glue.epochs": True}), r"epochs"),
        (tiny(**{"glue.seeds": [True]}), r"seeds"),
    ]
    return numbered("recipe-bool", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_huge() -> list[Case]:
    """Huge integers (100 and 5000 digits) and huge sizes, budgets and populations: refused
    with the limit in the message, never a ValueError, an allocation failure or a hang."""
    d100 = int("9" * 100)
    texts = [
        (TOY_TEXT.replace("budget: 30", f"budget: {d100}"), r"budget"),
        (TOY_TEXT.replace("budget: 30", "budget: " + "9" * 5000), r"budget|r\.yaml"),
        (TOY_TEXT.replace("seed: 0\nspace", f"seed: {d100}\nspace"), r"seed"),
        (TOY_TEXT.replace("seed: 0\nspace", "seed: " + "9" * 5000 + "\nspace"), r"seed|r\.yaml"),
        (TOY_TEXT.replace("slots: 8", f"slots: {d100}"), r"slots"),
        (TOY_TEXT.replace("population: 10", f"population: {10**18}"), r"population"),
        (TOY_TEXT.replace("population: 10", f"population: {d100}"), r"population"),
        (TOY_TEXT.replace("budget: 30", f"budget: {10**18}"), r"budget"),
        (TOY_TEXT.replace("parents: 3", f"parents: {10**18}"), r"parents"),
        (TOY_TEXT.replace("generations: 20", f"generations: {d100}"), r"generations"),
        (TOY_TEXT.replace("top_k: 5", f"top_k: {d100}"), r"top_k"),
        (TOY_TEXT.replace("batch_size: 10", f"batch_size: {d100}"), r"batch_size"),
    ]
    assert all(text != TOY_TEXT for text, _ in texts)
    tinies = [
        (tiny(**{"space.hidden": 10**12}), r"hidden"),
        (tiny(**{"space.slots": 10**6}), r"slots"),
        (tiny(**{"space.vocab_size": 10**12}), r"vocab_size"),
        (tiny(**{"space.max_positions": 10**12}), r"max_positions"),
        (tiny(**{"space.ffn": 10**12}), r"ffn"),
        (tiny(**{"space.embedding": 10**12}), r"embedding"),
        (tiny(**{"space.seq_len": 10**12}), r"seq_len"),
        (tiny(**{"task.seq_len": 10**12}), r"seq_len"),
        (tiny(**{"task.tokenizer.vocab_size": 10**12}), r"vocab_size"),
        (tiny(**{"supernet.steps": 10**18}), r"steps"),
        (tiny(**{"supernet.batch_size": 10**12}), r"batch_size"),
        (tiny(**{"evaluator.batches": 10**18}), r"batches"),
        (tiny(**{"evaluator.batch_size": 10**12}), r"batch_size"),
        (tiny(**{"retrain.steps": 10**18}), r"steps"),
        (tiny(**{"glue.epochs": 10**12}), r"epochs"),
        (tiny(**{"glue.max_len": 10**12}), r"max_len"),
        (tiny(**{"space.hidden": int("3" * 100)}), r"hidden"),
    ]
    cases = numbered("recipe-huge", texts, lambda cid, text, names: recipe_case(cid, text, names))
    cases += numbered("recipe-huge-size", tinies, lambda cid, raw, names: recipe_case(cid, raw, names))
    return cases


def recipe_nonpositive() -> list[Case]:
    """Zero and negative sizes, budgets, batches and steps."""
    items = [
        (toy(**{"search.budget": 0}), r"budget"),
        (toy(**{"search.budget": -1}), r"budget"),
        (toy(**{"search.batch_size": 0}), r"batch_size"),
        (toy(**{"search.batch_size": -5}), r"batch_size"),
        (toy(**{"search.top_k": 0}), r"top_k"),
        (toy(**{"space.slots": 0}), r"slots"),
        (toy(**{"space.slots": -1}), r"slots"),
        (toy(**{"space.width": 0}), r"width"),
        (toy(**{"search.strategy.population": 0}), r"population"),
        (toy(**{"search.strategy.population": -1}), r"population"),
        (toy(**{"search.strategy.parents": 0}), r"parents"),
        (toy(**{"search.strategy.mutation_prob": -0.5}), r"mutation_prob"),
        (tiny(**{"evaluator.batches": 0}), r"batches"),
        (tiny(**{"evaluator.batches": -1}), r"batches"),
        (tiny(**{"evaluator.batch_size": 0}), r"batch_size"),
        (tiny(**{"supernet.steps": 0}), r"steps"),
        (tiny(**{"supernet.steps": -1}), r"steps"),
        (tiny(**{"supernet.batch_size": 0}), r"batch_size"),
        (tiny(**{"space.hidden": 0}), r"hidden"),
        (tiny(**{"space.hidden": -32}), r"hidden"),
        (tiny(**{"space.vocab_size": 0}), r"vocab_size"),
        (tiny(**{"task.seq_len": 0}), r"seq_len"),
        (tiny(**{"task.seq_len": -1}), r"seq_len"),
        (tiny(**{"retrain.steps": 0}), r"steps"),
        (tiny(**{"glue.epochs": 0}), r"epochs"),
        (tiny(**{"glue.seeds": []}), r"seeds"),
        (tiny(**{"retrain.seeds": []}), r"seeds"),
    ]
    return numbered("recipe-nonpositive", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_unknown_name() -> list[Case]:
    """Names that resolve to nothing: unknown registry names, missing modules and attributes."""
    items = [
        (toy(**{"space.name": "nosuch"}), r"nosuch"),
        (toy(**{"search.strategy.name": "evolutin"}), r"evolutin"),
        (toy(**{"evaluator.name": "nope"}), r"nope"),
        (toy(**{"search.constraints": [{"name": "nope_constraint"}]}), r"nope_constraint"),
        (toy(**{"space.name": "nosuch_module_xyz:Space"}), r"nosuch_module_xyz"),
        (toy(**{"space.name": "os:nosuchattr"}), r"nosuchattr"),
        (toy(**{"space.name": "nasplug:"}), r"nasplug:"),
        (toy(**{"space.name": ":Space"}), r":Space"),
        (toy(**{"space.name": ""}), r"space"),
        (tiny(**{"task.name": "nope_task"}), r"nope_task"),
        (tiny(**{"supernet.sampler": "nope_sampler"}), r"nope_sampler"),
    ]
    return numbered("recipe-unknown-name", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_code() -> list[Case]:
    """``module:attr`` paths to things that are not plugins (os:system, builtins:eval,
    subprocess:Popen, open, ...): refused before anything is called; the marker file a
    called path would create must not exist."""
    marker = "@MARKER@"
    touch = f"touch {marker}"
    items = [
        (toy(space={"name": "os:system", "command": touch}), r"space.*os:system|os:system"),
        (toy(evaluator={"name": "os:system", "command": touch}), r"os:system"),
        (toy(**{"search.strategy": {"name": "os:system", "command": touch}}), r"os:system"),
        (toy(**{"search.constraints": [{"name": "os:system", "command": touch}]}), r"os:system"),
        (toy(evaluator={"name": "subprocess:Popen", "args": ["touch", marker]}), r"subprocess:Popen"),
        (toy(evaluator={"name": "subprocess:run", "args": ["touch", marker]}), r"subprocess:run"),
        (toy(space={"name": "builtins:open", "file": marker, "mode": "w"}), r"builtins:open"),
        (toy(space={"name": "io:open", "file": marker, "mode": "w"}), r"io:open"),
        (toy(evaluator={"name": "builtins:exec", "source": f"open({marker!r}, 'w')"}), r"builtins:exec"),
        (toy(evaluator={"name": "builtins:eval", "source": f"open({marker!r}, 'w')"}), r"builtins:eval"),
        (toy(space={"name": "nasplug.io:atomic_write_text", "path": marker, "text": "x"}), r"atomic_write_text"),
        (toy(space={"name": "pathlib:Path.touch", "self": marker}), r"Path\.touch"),
        (tiny(task={"name": "os:system", "command": touch}), r"os:system"),
        (toy(space={"name": "posix:system", "command": touch}), r"posix:system"),
        (toy(space={"name": "shutil:copyfile", "src": "@TOY@", "dst": marker}), r"shutil:copyfile"),
    ]
    return numbered("recipe-code", items, lambda cid, raw, names: recipe_case(cid, raw, names, marker=True))


def recipe_path_names() -> list[Case]:
    """Names that become folder names: the recipe's name (default --out runs/<name>), baseline
    and init_from names: nothing may be written outside runs/ (or anywhere: refused)."""
    no_out = ("-q", "run", RECIPE)
    items = [
        (toy(name="../../escape"), r"name"),
        (toy(name="../../../escape"), r"name"),
        (toy(name="@CASE@/absolute"), r"name"),
        (toy(name=".."), r"name"),
        (toy(name=""), r"name"),
        (toy(name="a/../../../b"), r"name"),
    ]
    cases = numbered("path-name", items, lambda cid, raw, names: Case(cid, no_out, names, files=(("r.yaml", dump(raw)),)))
    cases.append(Case("path-name-6", ("-q", "run", "@TOY@", "--set", "name=../../x"), r"name"))
    cases.append(Case("path-name-7", ("-q", "compare", RECIPE, "--strategies", "random", "--seeds", "1", "--budget", "3"),
                      r"name", files=(("r.yaml", dump(toy(name="../../../cmp"))),)))
    baselines = [
        (tiny(**{"retrain.baselines": {"../evil": "interleaved"}}), r"evil"),
        (tiny(**{"retrain.baselines": {"@CASE@/abs": "interleaved"}}), r"abs"),
        (tiny(**{"retrain.baselines": {"..": "interleaved"}}), r"baselines"),
        (tiny(**{"retrain.baselines": {"a/b": "interleaved"}}), r"baselines"),
        (tiny(**{"retrain.baselines": {"": "interleaved"}}), r"baselines"),
        (tiny(**{"glue.init_from": {"../evil": "@CASE@/nowhere"}}), r"evil|init_from"),
    ]
    cases += numbered("path-baseline", baselines, lambda cid, raw, names: recipe_case(cid, raw, names))
    return cases


def arch_strings() -> list[Case]:
    """Bad architecture strings: the recipe's fixed ``arch`` and baselines."""
    toys = ["", "skip", ",".join(["foo"] * 8), "{", '{"s0": "skip"}', "[1,2]", "skip," * 10000, "skip,linear,,,,,,",
            "\x00" * 8]
    cases = numbered("arch-toy", toys, lambda cid, text: recipe_case(cid, toy(arch=text), r"arch"))
    tinies = ["XYZ", "CC", "CCCC", "[0,1,7]", "[", "ZZZ", "C" * 5000, "interleaved2", "ÄÖÜ", "[-1,0,0]",
              '{"L00": "conv", "L01": "conv", "L02": "nope"}']
    cases += numbered("arch-tiny", tinies, lambda cid, text: recipe_case(cid, tiny(arch=text), r"arch"))
    baselines = ["QQQ", "", "C" * 5000, "[0,1]", "{}"]
    cases += numbered("arch-baseline", baselines,
                      lambda cid, text: recipe_case(cid, tiny(**{"retrain.baselines": {"b": text}}), r"baselines"))
    return cases


# ---------------------------------------------------------------------- command line
def cli_set() -> list[Case]:
    """``--set``: no '=', empty key, bad YAML, 100/5000-digit numbers, a.b with a scalar a."""
    items = [
        ("search.budget", r"--set"),
        ("=5", r"--set"),
        (" =5", r"--set"),
        ("..=5", r"--set"),
        ("search..budget=5", r"--set"),
        ("search.budget=[1,", r"budget"),
        ("search.budget=" + "9" * 100, r"budget"),
        ("search.budget=" + "9" * 5000, r"budget"),
        ("seed=" + "9" * 5000, r"seed"),
        ("name.x=1", r"--set.*name"),
        ("seed.a=1", r"--set.*seed"),
        ("search.budget.x=1", r"--set.*budget"),
        ("search.nope=1", r"nope"),
        ("space.slots=true", r"slots"),
        ("seed=1e400", r"seed"),
        ("search.budget=.nan", r"budget"),
        ("search.budget=!!binary aGVsbG8=", r"budget|binary|tag"),
        ("search.budget=!!python/object/apply:os.system ['touch @MARKER@']", r"budget|python|tag"),
        ("description=" + "x" * 10001, r"description"),
        ("search={budget: 5, budget: 6}", r"search|budget"),
        ("space.slots=-3", r"slots"),
    ]
    return numbered("set", items, lambda cid, value, names: Case(cid, ("-q", "run", "@TOY@", "--out", OUT, "--set", value),
                                                                  names, marker=True))


def cli_stages() -> list[Case]:
    """``--stages``: empty, only commas, unknown, duplicated, not applying to the recipe."""
    items = [("", r"--stages"), (",", r"--stages"), (" , ", r"--stages"), ("nope", r"nope"),
             ("search,search", r"--stages.*search"), ("search,nope", r"nope"), ("SEARCH", r"SEARCH"),
             ("search;report", r"search;report"), ("retrain", r"retrain"), ("supernet", r"supernet")]
    cases = numbered("stages", items, lambda cid, value, names: Case(cid, ("-q", "run", "@TOY@", "--out", OUT,
                                                                          "--stages", value), names))
    # LV-BERT: a stage whose inputs an earlier stage makes, on an empty run directory
    cases.append(Case("stages-10", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "glue"), r"retrain"))
    cases.append(Case("stages-11", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "search"), r"supernet"))
    cases.append(Case("stages-12", ("-q", "run", "@TINY@", "--out", OUT, "--stages", "retrain"), r"search|top\.json"))
    return cases


def cli_out() -> list[Case]:
    """``--out`` that cannot be a run directory: a file, /dev/null, /proc, under a file,
    unwritable; for run, compare and rank-corr."""
    a_file = (("file", "not a folder\n"),)
    runs = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("/proc/nasplug-fuzz", r"--out"),
            ("/proc/self", r"--out"), ("@CASE@/file/sub", r"--out"), ("@CASE@/ro/sub", r"--out"),
            ("/dev/null/sub", r"--out"), ("/sys/nasplug-fuzz", r"--out")]
    cases = numbered("out-run", runs, lambda cid, out, names: Case(cid, ("-q", "run", "@TOY@", "--out", out), names,
                                                                   files=a_file, readonly=("ro",)))
    compares = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("@CASE@/file/sub", r"--out"),
                ("/proc/nasplug-fuzz", r"--out")]
    cases += numbered("out-compare", compares,
                      lambda cid, out, names: Case(cid, ("-q", "compare", "@TOY@", "--strategies", "random", "--seeds",
                                                         "1", "--budget", "3", "--out", out), names, files=a_file))
    rank = [("@CASE@/file", r"--out"), ("/dev/null", r"--out"), ("@CASE@/file/sub", r"--out")]
    cases += numbered("out-rankcorr", rank,
                      lambda cid, out, names: Case(cid, ("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2",
                                                         "--out", out), names, files=a_file, base="tiny_run"))
    return cases


# ---------------------------------------------------------------------- data
def corpora() -> list[Case]:
    """Corpora that are missing, empty, or folders without text files (a fresh LV-BERT run)."""
    def corpus(source: str) -> str:
        return f"task.corpus={{source: '{source}', heldout_fraction: 0.1}}"

    items = [
        ("@CASE@/no-such-corpus.txt", (), r"corpus.*no-such-corpus"),
        ("@CASE@/empty.txt", (("empty.txt", b""),), r"corpus.*empty\.txt"),
        ("@CASE@/blank.txt", (("blank.txt", b"\n\n   \n\t\n"),), r"corpus.*blank\.txt"),
        ("@CASE@/folder", (("folder/readme.md", b"# not a corpus\n"), ("folder/data.bin", b"\x00\x01")),
         r"corpus.*folder"),
        ("@CASE@/latin1.txt", (("latin1.txt", "Caf\xe9 au lait. " .encode("latin-1") * 200),), r"corpus.*latin1\.txt"),
        ("@CASE@/emptydir", (("emptydir/empty.txt", b""),), r"corpus.*emptydir"),
        ("@CASE@/bad.jsonl", (("bad.jsonl", b"{not json\n[1,2]\n"),), r"corpus.*bad\.jsonl"),
    ]
    return [Case(f"corpus-{i}", ("-q", "run", "@TINY@", "--out", OUT, "--set", corpus(src)), names, files=files,
                 keep_case_dir=False) for i, (src, files, names) in enumerate(items)]


RTE_HEADER = b"index\tsentence1\tsentence2\tlabel\n"
STSB_HEADER = b"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"


def _rte_rows(label: bytes = b"entailment", n: int = 30) -> bytes:
    return b"".join(b"%d\tA man walks.\tA person walks.\t%s\n" % (i, label) for i in range(n))


def _stsb_rows(score: bytes = b"3.0", n: int = 30, bad_row: int = 5) -> bytes:
    rows = []
    for i in range(n):
        value = score if i == bad_row else b"%.1f" % (i % 6)
        rows.append(b"%d\tmain-captions\tMSRvid\t2012test\t%04d\tnone\tnone\tA man walks.\tA person walks.\t%s\n"
                    % (i, i, value))
    return b"".join(rows)


def glue_folders() -> list[Case]:
    """GLUE folders with bad TSVs (only a header, bad labels, NaN/inf STS-B scores, wrong
    columns), fine-tuned by ``--resume --stages glue`` on a retrained run."""
    good_rte = {"glue/RTE/train.tsv": RTE_HEADER + _rte_rows(), "glue/RTE/dev.tsv": RTE_HEADER + _rte_rows()}
    good_sts = {"glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(), "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows()}
    # RTE is fine-tuned first; the STS-B cases start from a run whose RTE results exist
    rte, sts = "tiny_before_glue", "tiny_rte_done"
    items: list[tuple[dict[str, bytes], str, str]] = [
        ({**good_rte, "glue/RTE/dev.tsv": RTE_HEADER}, rte, r"RTE.*dev\.tsv|dev\.tsv.*RTE"),
        ({**good_rte, "glue/RTE/train.tsv": RTE_HEADER}, rte, r"RTE.*train\.tsv|train\.tsv.*RTE"),
        ({**good_rte, "glue/RTE/dev.tsv": b""}, rte, r"dev\.tsv"),
        ({**good_rte, "glue/RTE/dev.tsv": b"index\tsentence1\tlabel\n" + b"0\ta\tentailment\n" * 5}, rte,
         r"dev\.tsv.*sentence2|sentence2.*dev\.tsv"),
        ({**good_rte, "glue/RTE/train.tsv": RTE_HEADER + _rte_rows(b"maybe")}, rte, r"train\.tsv.*label|label.*train\.tsv|maybe"),
        ({**good_rte, "glue/RTE/dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tcaf\xe9\tb\tentailment\n"
          .encode("latin-1")}, rte, r"dev\.tsv"),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"nan")}, sts, r"STS-B.*train\.tsv|nan|NaN"),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"inf")}, sts, r"STS-B.*train\.tsv|inf"),
        ({**good_sts, "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows(b"-inf")}, sts, r"STS-B.*dev\.tsv|inf"),
        ({**good_sts, "glue/STS-B/train.tsv": STSB_HEADER + _stsb_rows(b"abc")}, sts, r"STS-B.*train\.tsv|abc"),
        ({**good_sts, "glue/STS-B/dev.tsv": STSB_HEADER + _stsb_rows(b"NaN", bad_row=0)}, sts,
         r"STS-B.*dev\.tsv|nan|NaN"),
    ]
    cases = [Case(f"glue-{i}", ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume", "--stages", "glue"), names,
                  files=tuple(files.items()), base=base, env=(("NASPLUG_DATA_DIR", "@CASE@"),), data=True)
             for i, (files, base, names) in enumerate(items)]
    # the documented contract for an absent folder: the task is reported as missing (exit 0)
    cases.append(Case("glue-missing-0", ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume", "--stages", "glue"),
                      base="tiny_before_glue", env=(("NASPLUG_DATA_DIR", "@CASE@/nowhere"),), contract="glue-missing",
                      data=True))
    return cases


# ---------------------------------------------------------------------- run directories
RESUME_TOY = ("-q", "run", "@TOY@", "--out", "@RUN@", "--resume")
RESUME_TINY = ("-q", "run", "@TINY@", "--out", "@RUN@", "--resume")
SHOW = ("-q", "show", "@RUN@")
RANK_CORR = ("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2")
COMPARE_RESUME = ("-q", "compare", "@TOY@", *COMPARE_ARGS, "--out", "@RUN@", "--resume")

TRIAL_DAMAGE: list[tuple[str, Transform]] = [
    ("garbage", insert_line(3, b"this is not json {")),
    ("nonutf8", insert_line(3, b'{"arch": "\xff\xfe\xfd"}')),
    ("nonutf8-inline", lambda b: b.replace(b'"status":"ok"', b'"status":"o\xffk"', 1)),
    ("str-score", edit_line(2, lambda r: r.update(score="high"))),
    ("unknown-status", edit_line(2, lambda r: r.update(status="weird"))),
    ("list-line", edit_line(2, lambda r: [1, 2, 3])),
    ("missing-arch", edit_line(2, lambda r: r.pop("arch"))),
    ("null-arch", edit_line(2, lambda r: r.update(arch=None))),
    ("nan-score", lambda b: edit_line(2, lambda r: r.update(score=float("nan"), metrics={"score": float("nan")}))(b)),
    ("foreign-arch", edit_line(2, lambda r: r["arch"].update(s0="evil"))),
    ("extra-key", edit_line(2, lambda r: r.update(evil=1))),
    ("bool-asked", edit_line(2, lambda r: r.update(asked=True))),
]


def trials_logs() -> list[Case]:
    """A damaged trials.jsonl met by ``run --resume`` (the search replays it) and ``show``."""
    cases = []
    for i, (name, transform) in enumerate(TRIAL_DAMAGE):
        cases.append(Case(f"trials-resume-{i}", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                          damage=(("trials.jsonl", transform),)))
        if name != "foreign-arch":  # show does not replay: an arch the space lacks is only shown
            cases.append(Case(f"trials-show-{i}", SHOW, r"trials\.jsonl", base="toy_run",
                              damage=(("trials.jsonl", transform),)))
    # a torn last line is what a kill leaves: repaired on --resume (the run then equals an
    # uninterrupted one), shown as it is by show (which must not repair anything)
    cases.append(Case("trials-torn-0", RESUME_TOY, base="toy_unsearched", damage=(("trials.jsonl", torn),),
                      contract="repaired"))
    cases.append(Case("trials-torn-1", SHOW, base="toy_run", damage=(("trials.jsonl", torn),), contract="read-only"))
    # only blank lines: refused, or treated as an empty log that the run redoes exactly
    cases.append(Case("trials-blank-0", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                      damage=(("trials.jsonl", b"\n\n\n\n"),), contract="repaired-or-refused"))
    cases.append(Case("trials-blank-1", RESUME_TOY, r"trials\.jsonl", base="toy_unsearched",
                      damage=(("trials.jsonl", b"   \n \t\n\n"),), contract="repaired-or-refused"))
    return cases


def checkpoints() -> list[Case]:
    """Damaged training checkpoints (latest.json, model.safetensors, state.pt) met by
    ``run --resume`` in the supernet and the retrain stage."""
    step = "supernet/checkpoint/step-*"
    latest = "supernet/checkpoint/latest.json"
    items: list[tuple[str, Transform, str]] = [
        (latest, b"", r"latest\.json"),
        (latest, b"[1, 2]", r"latest\.json"),
        (latest, b"garbage{", r"latest\.json"),
        (latest, b"{}", r"latest\.json"),
        (latest, b'{"step": 24, "dir": "step-99999999"}', r"latest\.json|step-99999999"),
        (latest, b'{"step": 24, "dir": "../../.."}', r"latest\.json"),
        (latest, b'{"step": 24, "dir": 5}', r"latest\.json"),
        (latest, b'{"step": "x", "dir": null}', r"latest\.json"),
        (latest, b"\xff\xfe\x00garbage", r"latest\.json"),
        (f"{step}/model.safetensors", truncate_half, r"model\.safetensors"),
        (f"{step}/model.safetensors", rng_bytes(7, 3000), r"model\.safetensors"),
        (f"{step}/model.safetensors", b"", r"model\.safetensors"),
        (f"{step}/model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}", r"model\.safetensors"),
        (f"{step}/model.safetensors", reshaped_safetensors, r"model\.safetensors"),
        (f"{step}/model.safetensors", lambda b: b"\xff" * 8 + b[8:], r"model\.safetensors"),
        (f"{step}/state.pt", rng_bytes(8, 3000), r"state\.pt"),
        (f"{step}/state.pt", truncate_half, r"state\.pt"),
        (f"{step}/state.pt", b"", r"state\.pt"),
        (f"{step}/state.pt", lambda b: torch_bytes({"format": 1, "step": 24}), r"state\.pt"),
        (f"{step}/state.pt", lambda b: torch_bytes([1, 2, 3]), r"state\.pt"),
        (f"{step}/state.pt", malicious_pickle, r"state\.pt"),
        (f"{step}/state.pt", None, r"state\.pt|step-"),
    ]
    cases = [Case(f"ckpt-supernet-{i}", RESUME_TINY, names, base="tiny_mid_supernet", damage=((path, t),), data=True,
                  marker=True)
             for i, (path, t, names) in enumerate(items)]
    rstep = "retrain/found/checkpoint/step-*"
    retrain = [("retrain/found/checkpoint/latest.json", b"[]", r"latest\.json"),
               (f"{rstep}/model.safetensors", truncate_half, r"model\.safetensors"),
               (f"{rstep}/state.pt", rng_bytes(9, 500), r"state\.pt")]
    cases += [Case(f"ckpt-retrain-{i}", RESUME_TINY, names, base="tiny_mid_retrain", damage=((path, t),), data=True)
              for i, (path, t, names) in enumerate(retrain)]
    weights = [(truncate_half, r"model\.safetensors"), (rng_bytes(10, 2000), r"model\.safetensors"),
               (reshaped_safetensors, r"model\.safetensors")]
    cases += [Case(f"ckpt-weights-{i}", RESUME_TINY, names, base="tiny_mid_search",
                   damage=(("supernet/model.safetensors", t),), data=True) for i, (t, names) in enumerate(weights)]
    return cases


def run_files() -> list[Case]:
    """Damaged stage markers, top.json, result.json, recipe.yaml and run.json, met by
    ``show``, ``run --resume`` and ``rank-corr``."""
    cases: list[Case] = []
    stage_items = [
        (SHOW, "toy_run", "stages/search.json", b"garbage{"),
        (RESUME_TOY, "toy_run", "stages/search.json", b"garbage{"),
        (SHOW, "toy_run", "stages/report.json", b"[1, 2]"),
        (RESUME_TOY, "toy_run", "stages/report.json", b"\xff\xfe"),
        (SHOW, "tiny_run", "stages/supernet.json", b"{\"stage\": "),
        (RESUME_TINY, "tiny_run", "stages/glue.json", b"\"just a string\""),
    ]
    cases += [Case(f"stagefile-{i}", argv, r"stages/\w+\.json", base=base, damage=((path, t),), data=base.startswith("tiny"))
              for i, (argv, base, path, t) in enumerate(stage_items)]
    top_items = [
        (RESUME_TINY, "tiny_mid_retrain", b"garbage{"),
        (RESUME_TINY, "tiny_mid_retrain", b"[1, \"junk\", null]"),
        (RESUME_TINY, "tiny_mid_retrain", b"{\"rank\": 1}"),
        (RESUME_TINY, "tiny_mid_retrain", b"[{\"rank\": 1, \"arch\": {\"L00\": \"zzz\"}}]"),
        (RESUME_TINY, "tiny_mid_retrain", b"\xff\xfe\xfd"),
        (SHOW, "tiny_run", b"garbage{"),
    ]
    cases += [Case(f"top-{i}", argv, r"top\.json", base=base, damage=(("top.json", t),), data=True)
              for i, (argv, base, t) in enumerate(top_items)]
    result_items = [
        (RESUME_TINY, "tiny_unmarked_retrain", b"garbage{"),
        (RESUME_TINY, "tiny_unmarked_retrain", b"[1, 2]"),
        (RESUME_TINY, "tiny_unmarked_retrain", b"\xff\xfe"),
        (SHOW, "tiny_run", b"garbage{"),
        (SHOW, "tiny_run", b"{\"heldout\": \"x\"}"),
    ]
    cases += [Case(f"result-{i}", argv, r"result\.json", base=base, damage=(("retrain/found/result.json", t),), data=True)
              for i, (argv, base, t) in enumerate(result_items)]
    recipe_damage: list[tuple[str, bytes]] = [("binary", rng_bytes(11, 300)), ("list", b"- a\n- b\n"),
                                              ("garbage", b"name: [unclosed\n"), ("nonutf8", b"name: caf\xe9\n"),
                                              ("empty", b""), ("alias", TOY_TEXT.encode() + b"expected: {a: &a 1, b: *a}\n")]
    for i, (_, content) in enumerate(recipe_damage):
        cases.append(Case(f"runrecipe-show-{i}", SHOW, r"recipe\.yaml", base="toy_run", damage=(("recipe.yaml", content),)))
        cases.append(Case(f"runrecipe-resume-{i}", RESUME_TOY, r"recipe\.yaml", base="toy_run",
                          damage=(("recipe.yaml", content),)))
    for i, (_, content) in enumerate(recipe_damage[:3]):
        cases.append(Case(f"runrecipe-rankcorr-{i}", RANK_CORR, r"recipe\.yaml", base="tiny_run",
                          damage=(("recipe.yaml", content),), data=True))
    runjson = [(SHOW, b"garbage{"), (RESUME_TOY, b"[1]"), (SHOW, b"\xff\xfe")]
    cases += [Case(f"runjson-{i}", argv, r"run\.json", base="toy_run", damage=(("run.json", t),))
              for i, (argv, t) in enumerate(runjson)]
    return cases


def compare_runs() -> list[Case]:
    """`nasplug compare`: damaged logs, config and cache on --resume, a changed setup on
    --resume, bad --target / --seeds / --budget / --strategies."""
    log = "runs/random/seed0/trials.jsonl"
    damaged = [
        (log, insert_line(2, b"garbage {"), r"trials\.jsonl"),
        (log, insert_line(2, b"\xff\xfe\xfd"), r"trials\.jsonl"),
        (log, edit_line(1, lambda r: r.update(score="high")), r"trials\.jsonl"),
        (log, edit_line(1, lambda r: r.update(status="weird")), r"trials\.jsonl"),
        ("compare-config.json", b"garbage{", r"compare-config\.json"),
        ("compare-config.json", b"[1, 2]", r"compare-config\.json"),
        ("cache.jsonl", insert_line(1, b"\xff\xfe garbage"), r"cache\.jsonl"),
        ("cache.jsonl", edit_line(0, lambda r: [1]), r"cache\.jsonl"),
    ]
    cases = [Case(f"compare-damaged-{i}", COMPARE_RESUME, names, base="compare_run", damage=((path, t),))
             for i, (path, t, names) in enumerate(damaged)]
    cases.append(Case("compare-torn-0", COMPARE_RESUME, base="compare_run", damage=((log, torn),), contract="repaired"))
    changed = [
        (("--set", "search.metric=params"), r"metric"),
        (("--set", "search.direction=minimize"), r"direction"),
        (("--batch-size", "3"), r"batch_size|batch-size"),
        (("--set", "evaluator.noise=0.5"), r"evaluator"),
        (("--set", "space.seed=1"), r"space"),
        (("--strategy-args", "evolution.population=12"), r"evolution"),
    ]
    cases += [Case(f"compare-changed-{i}", (*COMPARE_RESUME, *more), names, base="compare_run")
              for i, (more, names) in enumerate(changed)]
    cases.append(Case("compare-noresume-0", ("-q", "compare", "@TOY@", *COMPARE_ARGS, "--out", "@RUN@"), r"--resume|@RUN@",
                      base="compare_run"))
    fresh = ("-q", "compare", "@TOY@", "--strategies", "random", "--seeds", "1", "--budget", "3", "--out", OUT)
    bad_args = [
        (("--target", "nan"), r"--target"),
        (("--target", "inf"), r"--target"),
        (("--target=-inf",), r"--target"),
        (("--seeds", "0"), r"--seeds"),
        (("--seeds", "-1"), r"--seeds"),
        (("--budget", "0"), r"--budget"),
        (("--budgets", "0"), r"--budgets"),
        (("--batch-size", "0"), r"--batch-size"),
        (("--strategies", "os:system"), r"os:system"),
        (("--strategies", "random", "random"), r"random"),
        (("--strategy-args", "random.seed=!!python/object/apply:os.system ['touch @MARKER@']"), r"strategy-args|seed|tag"),
        (("--strategy-args", "nosuch.x=1"), r"nosuch"),
        (("--budget", "9" * 100), r"--budget"),
        (("--from-run", "@CASE@/nowhere"), r"--from-run"),
    ]
    cases += [Case(f"compare-args-{i}", (*fresh, *more), names, marker=True) for i, (more, names) in enumerate(bad_args)]
    return cases


def rank_corr() -> list[Case]:
    """`nasplug rank-corr` on runs that cannot answer and with bad numbers."""
    items = [
        (("-q", "rank-corr", "@RUN@", "--archs", "3", "--steps", "2"), "toy_run", r"supernet"),
        (("-q", "rank-corr", "@CASE@/nowhere", "--archs", "3", "--steps", "2"), None, r"nowhere"),
        (("-q", "rank-corr", "@TOY@", "--archs", "3", "--steps", "2"), None, r"toy\.yaml|RUN_DIR"),
        ((*RANK_CORR[:-4], "--archs", "2", "--steps", "2"), "tiny_run", r"--archs"),
        ((*RANK_CORR[:-4], "--archs", "3", "--steps", "0"), "tiny_run", r"--steps"),
        ((*RANK_CORR[:-4], "--archs", str(10**18), "--steps", "2"), "tiny_run", r"--archs"),
        ((*RANK_CORR[:-4], "--archs", "3", "--steps", str(10**18)), "tiny_run", r"steps"),
        ((*RANK_CORR, "--metric", "nope"), "tiny_run", r"nope"),
        ((*RANK_CORR, "--batches", "0"), "tiny_run", r"--batches"),
        ((*RANK_CORR, "--set", "retrain.lr=fast"), "tiny_run", r"lr"),
        ((*RANK_CORR, "--set", "retrain.steps=" + "9" * 5000), "tiny_run", r"steps"),
        ((*RANK_CORR, "--resamples", "5"), "tiny_run", r"--resamples"),
    ]
    cases = [Case(f"rankcorr-{i}", argv, names, base=base, data=bool(base and base.startswith("tiny")))
             for i, (argv, base, names) in enumerate(items)]
    weights = [(truncate_half, r"model\.safetensors"), (rng_bytes(12, 1000), r"model\.safetensors")]
    cases += [Case(f"rankcorr-weights-{i}", RANK_CORR, names, base="tiny_run",
                   damage=(("supernet/model.safetensors", t),), data=True) for i, (t, names) in enumerate(weights)]
    return cases


def resume_changed() -> list[Case]:
    """A resumed run whose recipe changed something that alters results: refused naming the
    key, and the run left as it was (recipe.yaml and run.json included)."""
    toys = [
        ("search.batch_size=7", r"batch_size"),
        ("search.metric=params", r"metric"),
        ("search.direction=minimize", r"direction"),
        ("evaluator.noise=0.5", r"evaluator"),
        ("evaluator={name: toy, noise: 0.1, seed: 2}", r"evaluator"),
        ("seed=1", r"seed"),
        ("space.slots=7", r"slots"),
        ("space.seed=3", r"seed"),
        ("search.strategy.population=12", r"population"),
        ("search.strategy.name=random", r"strategy"),
        ("search.constraints=[{name: max_metric, metric: params, limit: 400}]", r"constraints"),
    ]
    cases = [Case(f"resume-changed-toy-{i}", (*RESUME_TOY, "--set", change), names, base="toy_run")
             for i, (change, names) in enumerate(toys)]
    cases += [Case(f"resume-changed-toyhalf-{i}", (*RESUME_TOY, "--set", change), names, base="toy_unsearched")
              for i, (change, names) in enumerate(toys[:3])]
    tinies = [
        ("task.tokenizer.vocab_size=300", r"vocab_size"),
        ("space.vocab_size=400", r"vocab_size"),
        ("task.name=electra", r"task"),
        ("task.seq_len=16", r"seq_len"),
        ("supernet.steps=30", r"steps"),
        ("evaluator.batches=3", r"batches"),
        ("retrain.steps=20", r"steps"),
        ("seed=1", r"seed"),
        ("search.batch_size=5", r"batch_size"),
        ("task.corpus.synthetic_documents=151", r"synthetic_documents|corpus"),
    ]
    cases += [Case(f"resume-changed-tiny-{i}", (*RESUME_TINY, "--set", change), names, base="tiny_mid_supernet", data=True)
              for i, (change, names) in enumerate(tinies)]
    return cases


def no_resume() -> list[Case]:
    """``nasplug run RECIPE --out EXISTING_RUN`` without --resume (with or without --stages):
    refused, nothing moved, rewritten or deleted."""
    items = [
        (("-q", "run", "@TOY@", "--out", "@RUN@"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--stages", "search"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--stages", "report"), "toy_run"),
        (("-q", "run", "@TOY@", "--out", "@RUN@"), "toy_unsearched"),
        (("-q", "run", "@TINY@", "--out", "@RUN@"), "tiny_run"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "supernet"), "tiny_mid_supernet"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "glue"), "tiny_before_glue"),
        (("-q", "run", "@TINY@", "--out", "@RUN@", "--stages", "retrain"), "tiny_mid_retrain"),
        (("-q", "run", "@TOY@", "--out", "@RUN@", "--set", "seed=5"), "toy_run"),
    ]
    return [Case(f"noresume-{i}", argv, r"--resume", base=base, data=base.startswith("tiny"))
            for i, (argv, base) in enumerate(items)]


def all_cases() -> list[Case]:
    cases = [*recipe_garbage(), *recipe_dup_key(), *recipe_alias(), *recipe_deep(), *recipe_tags(),
             *recipe_unknown_key(), *recipe_wrong_type(), *recipe_bool(), *recipe_huge(), *recipe_nonpositive(),
             *recipe_unknown_name(), *recipe_code(), *recipe_path_names(), *arch_strings(), *cli_set(), *cli_stages(),
             *cli_out(), *corpora(), *glue_folders(), *trials_logs(), *checkpoints(), *run_files(), *compare_runs(),
             *rank_corr(), *resume_changed(), *no_resume()]
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
