"""Tokenising GLUE splits once, padding per batch, and batched prediction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from nasplug.glue.tasks import GlueTask

Encoded = dict[str, list[Any]]
"""``input_ids``, ``token_type_ids`` (lists of ids per example), ``label`` and ``idx``."""


def cap(ds: datasets.Dataset, limit: int | None) -> datasets.Dataset:
    """A fixed subset (the same for every seed and run), in the original order."""
    if limit is None or len(ds) <= limit:
        return ds
    keep = np.sort(np.random.default_rng(0).permutation(len(ds))[:limit])
    return ds.select(keep.tolist())


def encode(tokenizer: Any, ds: datasets.Dataset, spec: GlueTask, max_len: int,
           swap: bool = False) -> Encoded:
    """Tokenize once: lists of ids per example (padding happens per batch)."""
    cols = ["sentence1", "sentence2"] if spec.is_pair else ["sentence1"]
    texts = [list(ds[c]) for c in (reversed(cols) if swap else cols)]
    enc = tokenizer(*texts, truncation=True, max_length=max_len)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids") or [[0] * len(x) for x in ids]
    return {"input_ids": ids, "token_type_ids": types, "label": list(ds["label"]),
            "idx": list(ds["idx"])}


def concat(a: Encoded, b: Encoded) -> Encoded:
    """Examples of ``a`` then those of ``b``."""
    return {k: a[k] + b[k] for k in a}


def batches(enc: Encoded, order: Sequence[int], size: int, pad_id: int,
            regression: bool, device: str) -> Iterator[dict[str, torch.Tensor]]:
    """Padded batches of the examples in ``order`` (padding to the longest in the batch)."""
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        width = max(len(enc["input_ids"][i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)  # [B, T]
        types = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(enc["input_ids"][i])
            ids[r, :n] = torch.tensor(enc["input_ids"][i])
            types[r, :n] = torch.tensor(enc["token_type_ids"][i])
            mask[r, :n] = 1
        labels = torch.tensor([enc["label"][i] for i in rows],
                              dtype=torch.float32 if regression else torch.long)
        yield {k: v.to(device) for k, v in
               {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                "labels": labels}.items()}


def logits_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Run the model; accept an HF-style output with ``.logits`` or a bare tensor."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"])
    return out.logits if hasattr(out, "logits") else out  # [B, num_labels]


@torch.no_grad()
def predict(model: nn.Module, enc: Encoded, spec: GlueTask, batch_size: int, pad_id: int,
            device: str) -> np.ndarray:
    """Class ids (or scores for STS-B) for every encoded example, in order."""
    model.eval()
    out = [logits_of(model, b).float().cpu()
           for b in batches(enc, range(len(enc["input_ids"])), batch_size, pad_id,
                            spec.is_regression, device)]
    logits = torch.cat(out) if out else torch.zeros((0, spec.num_labels))
    return (logits[:, 0] if spec.is_regression else logits.argmax(-1)).numpy()
