"""Reading YAML that users write (recipes, ``--set`` values) strictly and safely.

On top of PyYAML's safe loader: a repeated key is an error (YAML would keep the last one
without a word); anchors and aliases are refused (``*x`` shares a node, and nested aliases
expand exponentially when the recipe is validated or written back: the "billion laughs");
nesting is capped; only the plain tags (str, int, float, bool, null, map, seq) are allowed;
files are capped in size and must be UTF-8. Every problem is one NasplugError line.
"""

from __future__ import annotations

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
            raise _Problem(f"the tag {node.tag!r} is not allowed in recipes (plain values, mappings and lists only)", node)
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
