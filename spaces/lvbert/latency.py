"""LV-BERT's latency parts (:class:`nasplug.cost.table.LatencyParts`): one sub-layer alone,
and the extracted encoder, each on fixed random inputs, in eval mode, with fixed weights."""

from __future__ import annotations

from typing import Any

import torch

from nasplug.arch import Arch, Value
from nasplug.errors import NasplugError
from nasplug.spaces.lvbert.layers import init_module, make_layer


def _check_len(space: Any, seq_len: int) -> None:
    if seq_len > space.dims.max_positions:
        raise NasplugError(f"--seq-len: {seq_len} is longer than the space's max_positions "
                           f"({space.dims.max_positions})")


def block(space: Any, choice: str, option: Value, batch_size: int, seq_len: int) -> Any:
    """Sub-layer ``option`` (conv / attn / ffn) on hidden states [batch_size, seq_len, H]; every
    slot holds the same modules, so each position's entry is measured on its own copy."""
    _check_len(space, seq_len)
    if choice not in space.choices():
        raise NasplugError(f"arch: unknown choice {choice!r}")
    config = space.config()
    layer = make_layer(str(option), config).eval()
    generator = torch.Generator().manual_seed(0)
    layer.apply(lambda m: init_module(m, config.initializer_range, generator))
    hidden = torch.randn(batch_size, seq_len, config.hidden_size, generator=generator)
    return lambda: layer(hidden, None)


def model(space: Any, arch: Arch, batch_size: int, seq_len: int) -> Any:
    """The encoder of ``arch`` (``LVBertModel``: embeddings, projection, sub-layers; no head),
    as the search extracts it, on token ids [batch_size, seq_len] without padding."""
    _check_len(space, seq_len)
    encoder = space.build(arch, seed=0).eval()
    ids = torch.randint(space.dims.vocab_size, (batch_size, seq_len), generator=torch.Generator().manual_seed(0))
    return lambda: encoder(ids, return_dict=True)
