"""Tokenising GLUE splits once, padding per batch (or to a fixed length), batched prediction.

Sentence pairs carry their segment ids (0 for ``[CLS] A [SEP]``, 1 for ``B [SEP]``) from the
tokenizer; a tokenizer that gives none for a pair task is an error, not silent zeros.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import datasets
import numpy as np
import torch
from torch import nn

from nasplug.errors import NasplugError
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
    """Tokenize once: lists of ids per example (padding happens per batch). ``swap`` puts
    the second sentence first (training on both orders)."""
    cols = ["sentence1", "sentence2"] if spec.is_pair else ["sentence1"]
    texts = [list(ds[c]) for c in (reversed(cols) if swap else cols)]
    enc = tokenizer(*texts, truncation=True, max_length=max_len, return_token_type_ids=True)
    ids = enc["input_ids"]
    types = enc.get("token_type_ids")
    if types is None or len(types) != len(ids):
        if spec.is_pair:
            raise NasplugError(f"glue {spec.name}: the tokenizer returns no token_type_ids for sentence pairs; "
                               "use one whose pair template sets segment ids (e.g. one nasplug trained)")
        types = [[0] * len(x) for x in ids]
    return {"input_ids": ids, "token_type_ids": types, "label": list(ds["label"]),
            "idx": list(ds["idx"])}


def concat(a: Encoded, b: Encoded) -> Encoded:
    """Examples of ``a`` then those of ``b``."""
    return {k: a[k] + b[k] for k in a}


def batches(enc: Encoded, order: Sequence[int], batch_size: int, pad_id: int,
            regression: bool, device: str, *, pad_to: int | None = None,
            label_scale: float = 1.0) -> Iterator[dict[str, torch.Tensor]]:
    """Padded batches of the examples in ``order``: padding to the longest in the batch, or
    to ``pad_to`` tokens (the official code pads every example to max_len). Regression
    labels are divided by ``label_scale`` (STS-B: score / 5, as the official code trains)."""
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(enc["input_ids"][i]) for i in rows)
        width = max(width, pad_to or 0)
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
        if regression and label_scale != 1.0:
            labels = labels / label_scale
        yield {k: v.to(device) for k, v in
               {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                "labels": labels}.items()}


def logits_of(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Run the model; accept an HF-style output with ``.logits`` or a bare tensor."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"])
    return out if isinstance(out, torch.Tensor) else out.logits  # [B, num_labels]


@torch.no_grad()
def predict(model: nn.Module, enc: Encoded, spec: GlueTask, batch_size: int, pad_id: int,
            device: str, pad_to: int | None = None) -> np.ndarray:
    """Class ids (or scores for STS-B, on the label scale 0-5) for every encoded example, in order."""
    model.eval()
    out = [logits_of(model, b).float().cpu()
           for b in batches(enc, range(len(enc["input_ids"])), batch_size, pad_id,
                            spec.is_regression, device, pad_to=pad_to)]
    logits = torch.cat(out) if out else torch.zeros((0, spec.num_labels))
    return (logits[:, 0] * spec.label_scale if spec.is_regression else logits.argmax(-1)).numpy()
