"""Reading YAML that users write (recipes, ``--set`` values) strictly and safely.

On top of PyYAML's safe loader: a repeated key is an error (YAML would keep the last one
without a word); anchors and aliases are refused (``*x`` shares a node, and nested aliases
expand exponentially when the recipe is validated or written back: the "billion laughs");
nesting is capped; only the plain tags (str, int, float, bool, null, map, seq) are allowed;
files are capped in size and must be UTF-8. Every problem is one NasplugError line.

Numbers are read as YAML 1.2 reads them: PyYAML follows YAML 1.1, where a float needs a dot
and a signed exponent, so ``lr: 1e-3`` would be the string ``"1e-3"`` (and then refused as a
learning rate). :data:`FLOAT_12` adds the 1.2 forms (``1e-3``, ``1E5``, ``-2.5e-4``, ``-.5``);
:func:`safe_dump` quotes strings that look like them, so what it writes reads back the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from nasplug.errors import NasplugError

MAX_BYTES = 1 << 20  # a recipe is a page of settings, not data
MAX_DEPTH = 32
ALLOWED_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq"))


class _Problem(Exception):
    def __init__(self, message: str, node: Node | None = None) -> None:
        super().__init__(message)
        self.mark = None if node is None else node.start_mark


class StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys, deep nesting or exotic tags."""

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Problem(f"YAML aliases (*{event.anchor}) are not allowed in recipes; write the value out",
                           ScalarNode("", "", event.start_mark))
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise _Problem(f"YAML anchors (&{event.anchor}) are not allowed in recipes; write the value out",
                           ScalarNode("", "", event.start_mark))
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Problem(f"nested more than {MAX_DEPTH} levels deep", ScalarNode("", "", event.start_mark))
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:  # type: ignore[override]
        if node.tag not in ALLOWED_TAGS:
            raise _Problem(
                f"the tag {node.tag!r} is not allowed in recipes (plain values, mappings and lists only)", node
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (dict, list)):
                raise _Problem("a mapping key must be a plain value", key_node)
            if key in seen:
                raise _Problem(f"key {key!r} appears twice (YAML would silently keep the last one)", key_node)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:  # type: ignore[override]
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # more digits than Python converts
            raise _Problem(f"the number {node.value[:20]}... has too many digits", node) from None


StrictLoader.add_constructor("tag:yaml.org,2002:int", StrictLoader.construct_yaml_int)

#: Floats of YAML 1.2's core schema that YAML 1.1 reads as strings: an exponent without a dot
#: or without a sign (``1e-3``, ``1E5``, ``2.5e4``), or a signed leading dot (``-.5``). Plain
#: integers stay integers: the int resolver is tried first, and this needs a dot or an exponent.
FLOAT_12 = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$
    |^[-+]\.[0-9][0-9_]*$""", re.X)
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings :class:`StrictLoader` would read as 1.2 floats."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+0123456789."))


def safe_dump(data: Any, sort_keys: bool = False) -> str:
    """``yaml.safe_dump`` whose output :func:`safe_load_recipe` reads back as the same values."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=sort_keys)


def _load(text: str) -> Any:
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def safe_load_recipe(path: Path) -> Any:
    """The YAML document in ``path``, strictly parsed; NasplugError naming the file otherwise."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise NasplugError(f"recipe {path}: {size:,} bytes; a recipe may have at most {MAX_BYTES:,}")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise NasplugError(f"recipe {path}: not UTF-8 text") from None
    except OSError as exc:
        raise NasplugError(f"recipe {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return _load(text)
    except _Problem as exc:
        raise NasplugError(f"recipe {path}{_where(exc.mark)}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise NasplugError(f"recipe {path}: malformed YAML{_where(mark)}: {problem}") from None
    except RecursionError:
        raise NasplugError(f"recipe {path}: nested too deeply") from None


def parse_override_value(text: str, key: str) -> Any:
    """The value of ``--set key=text``, read as YAML (``200`` -> int, ``[a, b]`` -> list);
    text that is not valid YAML stays a string."""
    if len(text) > 10_000:
        raise NasplugError(f"--set {key}: the value is {len(text):,} characters long; at most 10,000")
    try:
        return _load(text)
    except _Problem as exc:
        raise NasplugError(f"--set {key}: {exc}") from None
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise NasplugError(f"--set {key}: nested too deeply") from None


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists are leaves)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}
