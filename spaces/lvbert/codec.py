"""Layer sequences and their codecs: arch dict <-> compact letters <-> official int list.

An LV-BERT candidate is a sequence of sub-layer types, one per slot. Three spellings exist:

* the arch dict used everywhere in nasplug: ``{"L00": "conv", "L01": "conv", "L02": "attn", ...}``
  (keys are the zero-padded slot index, at least two digits);
* the compact string, one letter per slot: ``"CCAFFACFFACCAFCFACFCAAFA"``
  (C = dynamic convolution, A = self-attention, F = feed-forward; case-insensitive on input);
* the official int list of yuweihao/LV-BERT: ``[0, 0, 1, 2, ...]`` (0 conv, 1 attention,
  2 feed-forward).

Pure Python (no torch), so strategies and recipe validation can use it cheaply. Every error a
user can cause raises :class:`nasplug.errors.NasplugError` with one line naming the problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from nasplug.arch import Arch
from nasplug.errors import NasplugError

#: The three sub-layer types, in the official int order (0 conv, 1 attention, 2 feed-forward).
LAYER_TYPES: tuple[str, ...] = ("conv", "attn", "ffn")
LETTERS: dict[str, str] = {"conv": "C", "attn": "A", "ffn": "F"}
FROM_LETTER: dict[str, str] = {v: k for k, v in LETTERS.items()}

#: The searched LV-BERT-small sequence (pretrain.sh / finetune.sh of the official code).
LVBERT_SMALL_SEARCHED = "CCAFFACFFACCAFCFACFCAAFA"
LVBERT_SMALL_SEARCHED_INTS: tuple[int, ...] = (
    0, 0, 1, 2, 2, 1, 0, 2, 2, 1, 0, 0, 1, 2, 0, 2, 1, 0, 2, 0, 1, 1, 2, 1,
)  # fmt: skip

_KEY = re.compile(r"^L(\d+)$")
_ALLOWED_LETTERS = "C (conv), A (attn), F (ffn)"


def interleaved(slots: int = 24) -> str:
    """The ELECTRA/BERT-style sequence ``AFAF...`` (attention, feed-forward, repeated)."""
    if slots < 1:
        raise NasplugError(f"slots: must be at least 1, got {slots}")
    return ("AF" * slots)[:slots]


def sandwich(slots: int = 24) -> str:
    """All attention first, then all feed-forward: ``AA...AFF...F`` (the "sandwich" order of
    the LV-BERT paper's Figure 1, with as many of each type as :func:`interleaved`)."""
    if slots < 1:
        raise NasplugError(f"slots: must be at least 1, got {slots}")
    attn = (slots + 1) // 2
    return "A" * attn + "F" * (slots - attn)


#: Architectures known by name: ``space.parse("interleaved")``.
NAMED = {"interleaved": interleaved, "sandwich": sandwich}


def slot_key(index: int, slots: int) -> str:
    """Choice key of slot ``index`` in a space of ``slots`` slots: ``L00``, ``L01``, ..."""
    width = max(2, len(str(slots - 1)))
    return f"L{index:0{width}d}"


def check_layers(layers: Sequence[str], field: str = "layers") -> list[str]:
    """Return ``layers`` as a list after checking every entry is a layer type."""
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise NasplugError(f"{field}: expected a list of layer types, got {type(layers).__name__}")
    if not layers:
        raise NasplugError(f"{field}: needs at least one layer")
    for i, kind in enumerate(layers):
        if kind not in LAYER_TYPES:
            raise NasplugError(f"{field}[{i}]: {kind!r} is not a layer type; allowed: {', '.join(LAYER_TYPES)}")
    return list(layers)


def layers_from_string(text: str, field: str = "arch") -> list[str]:
    """``"CCAF"`` -> ``["conv", "conv", "attn", "ffn"]`` (case-insensitive, spaces ignored)."""
    letters = re.sub(r"[\s_\-]", "", text).upper()
    if not letters:
        raise NasplugError(f"{field}: empty layer string; use one letter per slot: {_ALLOWED_LETTERS}")
    layers = []
    for i, letter in enumerate(letters):
        if letter not in FROM_LETTER:
            raise NasplugError(f"{field}: letter {i} is {letter!r}; allowed: {_ALLOWED_LETTERS}")
        layers.append(FROM_LETTER[letter])
    return layers


def layers_to_string(layers: Sequence[str]) -> str:
    """``["conv", "attn"]`` -> ``"CA"``."""
    return "".join(LETTERS[kind] for kind in check_layers(layers))


def layers_from_ints(ints: Sequence[int] | str, field: str = "arch") -> list[str]:
    """Official encoding -> layer types. Accepts ``[0, 1, 2]``, ``"[0,1,2]"`` or ``"0,1,2"``."""
    if isinstance(ints, str):
        body = ints.strip().removeprefix("[").removesuffix("]")
        parts = [p for p in re.split(r"[\s,]+", body) if p]
        if not parts:
            raise NasplugError(f"{field}: empty int list; use 0 (conv), 1 (attn), 2 (ffn)")
        try:
            ints = [int(p) for p in parts]
        except ValueError:
            bad = next(p for p in parts if not p.lstrip("-").isdigit())
            raise NasplugError(f"{field}: {bad!r} is not an integer; allowed: 0 (conv), 1 (attn), 2 (ffn)") from None
    layers = []
    for i, code in enumerate(ints):
        if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < len(LAYER_TYPES):
            raise NasplugError(f"{field}[{i}]: {code!r} is not a layer code; allowed: 0 (conv), 1 (attn), 2 (ffn)")
        layers.append(LAYER_TYPES[code])
    if not layers:
        raise NasplugError(f"{field}: empty int list; use 0 (conv), 1 (attn), 2 (ffn)")
    return layers


def layers_to_ints(layers: Sequence[str]) -> list[int]:
    """Layer types -> official int list (0 conv, 1 attention, 2 feed-forward)."""
    return [LAYER_TYPES.index(kind) for kind in check_layers(layers)]


def parse_layers(spec: str | Sequence[str] | Sequence[int], field: str = "layers") -> list[str]:
    """Any spelling of a sequence -> layer types: letters, ints (list or text), or type names.

    Used by :class:`~nasplug.spaces.lvbert.config.LVBertConfig` and the space's ``parse``.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text[:1].isdigit() or text.startswith("["):
            return layers_from_ints(text, field)
        return layers_from_string(text, field)
    if isinstance(spec, Sequence) and spec and all(isinstance(v, int) and not isinstance(v, bool) for v in spec):
        return layers_from_ints(list(spec), field)
    return check_layers(spec, field)


# ---------------------------------------------------------------------------- arch dicts
def arch_from_layers(layers: Sequence[str]) -> Arch:
    """``["conv", "attn"]`` -> ``{"L00": "conv", "L01": "attn"}``."""
    layers = check_layers(layers)
    return {slot_key(i, len(layers)): kind for i, kind in enumerate(layers)}


def arch_to_layers(arch: Arch) -> list[str]:
    """Arch dict -> layer types in slot order; checks the keys are ``L00 .. L{n-1}``."""
    if not isinstance(arch, dict):
        raise NasplugError(f"arch: expected a dict of choices, got {type(arch).__name__}")
    slots = len(arch)
    layers = []
    for i in range(slots):
        key = slot_key(i, slots)
        if key not in arch:
            bad = next((k for k in arch if not _KEY.match(str(k))), None)
            hint = f"unknown key {bad!r}" if bad is not None else f"missing key {key!r}"
            raise NasplugError(f"arch: {hint}; keys are L00 .. {slot_key(slots - 1, slots)}")
        layers.append(arch[key])
    return check_layers(layers, field="arch")


def arch_from_string(text: str) -> Arch:
    """Compact letters -> arch: ``"CCAF"`` -> ``{"L00": "conv", ..., "L03": "ffn"}``."""
    return arch_from_layers(layers_from_string(text))


def arch_to_string(arch: Arch) -> str:
    """Arch -> compact letters (``"CCAF..."``)."""
    return layers_to_string(arch_to_layers(arch))


def arch_from_ints(ints: Sequence[int] | str) -> Arch:
    """Official int list (0 conv, 1 attention, 2 feed-forward) -> arch."""
    return arch_from_layers(layers_from_ints(ints))


def arch_to_ints(arch: Arch) -> list[int]:
    """Arch -> official int list."""
    return layers_to_ints(arch_to_layers(arch))


def arch_from_text(text: str) -> Arch:
    """Any text spelling -> arch: letters, ints (``[0,1,2]`` or ``0,1,2``) or a JSON dict.

    The result is not checked against a space's slot count or constraints; use
    :meth:`LVBertSpace.parse` for that.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        from nasplug.arch import arch_from_json

        return arch_from_json(stripped)
    if stripped.startswith("[") and '"' in stripped:
        try:
            names = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise NasplugError(f"arch: not valid JSON ({exc.msg} at column {exc.colno})") from None
        return arch_from_layers(check_layers(names, field="arch"))
    return arch_from_layers(parse_layers(stripped, field="arch"))
