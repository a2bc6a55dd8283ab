"""Fuzz cases: files that are not a well-formed recipe (garbage, duplicate keys, YAML aliases,
deep nesting, tags)."""

from __future__ import annotations

from cases_base import OUT, TOY_TEXT, Case, dump, numbered, recipe_case, rng_bytes, rng_text, toy


# ---------------------------------------------------------------------- building blocks
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
    cases += numbered(
        "recipe-path", paths, lambda cid, path, names: Case(cid, ("-q", "run", path, "--out", OUT), names)
    )
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
        (
            TOY_TEXT.replace(
                "space:\n  name: toy\n  slots: 8\n  seed: 0\n", "space: &s\n  name: toy\n  slots: 8\n  seed: 0\n"
            )
            + "expected: {s: *s}\n",
            r"r\.yaml.*(alias|anchor)",
        ),
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
        (
            TOY_TEXT.replace("description: toy-evolution, tiny", "description: !!binary aGVsbG8="),
            r"r\.yaml.*(tag|binary)",
        ),
        (
            TOY_TEXT.replace("name: toy-fuzz", 'name: !!python/object/apply:os.system ["touch @MARKER@"]'),
            r"r\.yaml.*(tag|python)",
        ),
        (
            TOY_TEXT.replace("space:\n  name: toy\n  slots: 8\n  seed: 0\n", "space: !!python/name:os.system\n"),
            r"r\.yaml.*(tag|python)",
        ),
        (TOY_TEXT + "expected: !!set {a, b}\n", r"r\.yaml.*(tag|set)"),
        (TOY_TEXT + "expected: !!omap [{a: 1}]\n", r"r\.yaml.*(tag|omap)"),
        (TOY_TEXT.replace("description: toy-evolution, tiny", "description: !custom foo"), r"r\.yaml.*(tag|custom)"),
        (TOY_TEXT + "expected: {date: !!timestamp 2001-12-14}\n", r"r\.yaml.*(tag|timestamp)"),
        (
            TOY_TEXT.replace("search:\n", "search: !!python/object:nasplug.recipe.SearchConfig\n", 1),
            r"r\.yaml.*(tag|python)",
        ),
        (TOY_TEXT.replace("seed: 0\nspace", "seed: !!float 0\nspace"), r"seed"),
        (
            TOY_TEXT.replace("name: toy-fuzz", "name: !!python/object/new:subprocess.Popen [[touch, '@MARKER@']]"),
            r"r\.yaml.*(tag|python)",
        ),
    ]
    return numbered("recipe-tag", texts, lambda cid, text, names: recipe_case(cid, text, names, marker=True))
