"""Named sizes and analytic parameter / FLOP counts (pure Python, no model built).

The three sizes of LV-BERT (official code, see shared/LVBERT.md):

======  ======  =====  =========  =========  ================
size    hidden  heads  FFN inner  embedding  generator hidden
======  ======  =====  =========  =========  ================
small   256     4      1024       128        64
medium  384     6      1536       128        128
base    768     12     3072       768        256
======  ======  =====  =========  =========  ================

Vocabulary 30522, 512 positions, 2 token types, 24 sub-layer slots, kernel 9.

Counting conventions (the same numbers the built models have, checked by the tests):

* ``params``: embeddings (word + position + token type + LayerNorm) + the embedding projection
  (only when ``embedding != hidden``) + the sub-layers. No MLM / discriminator / task head.
* ``flops``: one forward pass over one sequence of ``seq_len`` tokens, a multiply-add counted
  as 2 FLOPs, counting every matrix product: the linear layers (``2*T*in*out``), attention
  scores and the weighted sum (``2 * 2*T*T*H``), the dynamic convolution's depthwise
  convolution and kernel application (``2 * 2*T*H*K``), and the embedding projection.
  Not counted: embedding look-ups, biases, LayerNorm, softmax, activations, dropout,
  residual adds, heads (all small next to the products above).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.codec import LAYER_TYPES

SIZES: dict[str, dict[str, int]] = {
    "small": {"hidden": 256, "heads": 4, "ffn": 1024, "embedding": 128, "generator_hidden": 64},
    "medium": {"hidden": 384, "heads": 6, "ffn": 1536, "embedding": 128, "generator_hidden": 128},
    "base": {"hidden": 768, "heads": 12, "ffn": 3072, "embedding": 768, "generator_hidden": 256},
}
VOCAB_SIZE = 30522
MAX_POSITIONS = 512
TYPE_VOCAB_SIZE = 2
KERNEL_SIZE = 9
NUM_SLOTS = 24
SEQ_LEN = 128


@dataclass(frozen=True)
class LVBertDims:
    """The structural numbers of an LV-BERT model (everything but the layer sequence).

    Build one with :meth:`from_size`; ``LVBertConfig.from_dims`` turns it into a Hugging Face
    config. Fields use the short names of the recipe keys.
    """

    hidden: int = 256
    heads: int = 4
    ffn: int = 1024
    embedding: int = 128
    slots: int = NUM_SLOTS
    vocab_size: int = VOCAB_SIZE
    max_positions: int = MAX_POSITIONS
    type_vocab_size: int = TYPE_VOCAB_SIZE
    kernel_size: int = KERNEL_SIZE
    generator_hidden: int | None = 64

    @classmethod
    def from_size(cls, size: str | None = "small", **custom: Any) -> LVBertDims:
        """Named size (``small``, ``medium``, ``base``) with optional custom overrides.

        ``size=None`` starts from scratch: ``hidden`` is then required, ``heads`` defaults to
        ``hidden // 64`` (at least 1), ``ffn`` to ``4 * hidden`` and ``embedding`` to ``hidden``.
        Overrides set to None are ignored, so recipe keys left empty keep the size's value.
        """
        custom = {k: v for k, v in custom.items() if v is not None}
        unknown = sorted(set(custom) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise NasplugError(f"{unknown[0]}: unknown dimension; allowed: {', '.join(cls.__dataclass_fields__)}")
        if size is None:
            if "hidden" not in custom:
                raise NasplugError("hidden: required when size is not given (or set size: small, medium or base)")
            hidden = _positive_int("hidden", custom["hidden"], LIMITS["hidden"])
            base = {"hidden": hidden, "heads": max(1, hidden // 64), "ffn": 4 * hidden, "embedding": hidden,
                    "generator_hidden": None}
        elif size in SIZES:
            base = dict(SIZES[size])
        else:
            raise NasplugError(f"size: unknown size {size!r}; allowed: {', '.join(SIZES)} (or custom dims)")
        if "hidden" in custom and size is not None and "generator_hidden" not in custom:
            base["generator_hidden"] = None  # the named size's generator does not fit a custom width
        dims = cls(**{**base, **custom})
        dims.check()
        return dims

    def check(self) -> None:
        """Raise NasplugError naming the first bad dimension (with the limit when too large)."""
        for name in ("hidden", "heads", "ffn", "embedding", "slots", "vocab_size", "max_positions",
                     "type_vocab_size", "kernel_size"):
            _positive_int(name, getattr(self, name), LIMITS[name])
        if self.generator_hidden is not None:
            _positive_int("generator_hidden", self.generator_hidden, LIMITS["hidden"])
        if self.hidden % self.heads:
            raise NasplugError(f"heads: {self.heads} does not divide hidden={self.hidden}")
        if self.kernel_size % 2 == 0:
            raise NasplugError(f"kernel_size: must be odd (centred window), got {self.kernel_size}")

    def replace(self, **changes: Any) -> LVBertDims:
        """A copy with some fields changed (checked)."""
        dims = dataclasses.replace(self, **changes)
        dims.check()
        return dims

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ------------------------------------------------------------------ parameters
    def layer_params(self, kind: str) -> int:
        """Parameters of one sub-layer of type ``kind`` (including its LayerNorm)."""
        h, k = self.hidden, self.kernel_size
        linear = h * h + h
        norm = 2 * h
        if kind == "attn":
            return 4 * linear + norm  # query, key, value, output
        if kind == "ffn":
            return (h * self.ffn + self.ffn) + (self.ffn * h + h) + norm
        if kind == "conv":
            glu = 2 * linear  # glu_linear, glu_gate
            depthwise = h * k  # no bias
            pointwise = linear
            kernel = h * self.heads * k + self.heads * k  # one k-tap kernel per head
            return glu + depthwise + pointwise + kernel + linear + norm  # + output
        raise NasplugError(f"layer: {kind!r} is not a layer type; allowed: {', '.join(LAYER_TYPES)}")

    def embedding_params(self) -> int:
        """Word + position + token type embeddings, LayerNorm, and the projection if any."""
        e = self.embedding
        table = (self.vocab_size + self.max_positions + self.type_vocab_size) * e + 2 * e
        project = e * self.hidden + self.hidden if e != self.hidden else 0
        return table + project

    def params(self, layers: Iterable[str]) -> int:
        """Parameters of the encoder with this layer sequence (no heads)."""
        return self.embedding_params() + sum(self.layer_params(kind) for kind in layers)

    def params_from_counts(self, counts: Mapping[str, int]) -> int:
        """Same as :meth:`params`, from the number of layers of each type."""
        return self.embedding_params() + sum(n * self.layer_params(kind) for kind, n in counts.items())

    # ------------------------------------------------------------------ FLOPs
    def layer_flops(self, kind: str, seq_len: int = SEQ_LEN) -> int:
        """Forward FLOPs of one sub-layer over one sequence (see the module docstring)."""
        t, h, k = seq_len, self.hidden, self.kernel_size
        linear = 2 * t * h * h
        if kind == "attn":
            return 4 * linear + 2 * (2 * t * t * h)  # projections + scores + weighted sum
        if kind == "ffn":
            return 2 * (2 * t * h * self.ffn)
        if kind == "conv":
            kernel = 2 * t * h * self.heads * k
            window = 2 * (2 * t * h * k)  # depthwise span conv + dynamic kernel application
            return 4 * linear + kernel + window  # glu x2, pointwise, output
        raise NasplugError(f"layer: {kind!r} is not a layer type; allowed: {', '.join(LAYER_TYPES)}")

    def embedding_flops(self, seq_len: int = SEQ_LEN) -> int:
        """The embedding projection's FLOPs (look-ups are free by convention)."""
        return 2 * seq_len * self.embedding * self.hidden if self.embedding != self.hidden else 0

    def flops(self, layers: Iterable[str], seq_len: int = SEQ_LEN) -> int:
        """Forward FLOPs of the encoder over one sequence of ``seq_len`` tokens."""
        return self.embedding_flops(seq_len) + sum(self.layer_flops(kind, seq_len) for kind in layers)

    def flops_from_counts(self, counts: Mapping[str, int], seq_len: int = SEQ_LEN) -> int:
        return self.embedding_flops(seq_len) + sum(n * self.layer_flops(kind, seq_len) for kind, n in counts.items())

    # ------------------------------------------------------------------ ELECTRA generator
    def generator(self) -> LVBertDims:
        """Dims of the ELECTRA generator: hidden per the size table (or hidden // 4 for custom
        dims), heads = hidden / 64 (at least 1), FFN 4 x hidden, same embeddings."""
        hidden = self.generator_hidden or max(1, self.hidden // 4)
        heads = max(1, hidden // 64)
        while hidden % heads:
            heads -= 1
        return dataclasses.replace(self, hidden=hidden, heads=heads, ffn=4 * hidden, generator_hidden=None)


#: Largest values accepted: far beyond LV-BERT-large (hidden 1024, FFN 4096, 30522 tokens), small
#: enough that a typo fails in one line instead of trying to allocate terabytes. A table rather than
#: bounds in pydantic hints (as plugin arguments have): this module is copied into exported Hugging
#: Face folders, which load without nasplug or pydantic (spaces/lvbert/export.py).
LIMITS = {"hidden": 16_384, "heads": 1024, "ffn": 65_536, "embedding": 16_384, "slots": 256,
          "vocab_size": 1_000_000, "max_positions": 65_536, "type_vocab_size": 64, "kernel_size": 255}


def _positive_int(name: str, value: Any, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise NasplugError(f"{name}: expected a positive integer, got {shown}")
    if value > limit:
        raise NasplugError(f"{name}: {value if value < 10**12 else 'a huge number'} is more than the limit {limit:,}")
    return value
