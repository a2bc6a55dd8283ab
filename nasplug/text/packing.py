"""Tokenise documents and pack them into fixed-length rows, with an on-disk cache.

Called once per run before training: ``build_dataset(cfg, tokenizer, seq_len, cache_dir)``
loads the corpus, splits it by documents, tokenises both parts with the fast tokenizer's
batched encoding and packs them. The result is cached (safetensors, written atomically)
under a key made of the corpus fingerprint, the tokenizer hash, ``seq_len`` and the packing
mode, so a second run with the same inputs loads it at once without tokenising.

Row layouts (``seq_len`` = L, body = L - 2 tokens):
  * ``stream`` (default; RoBERTa's FULL-SENTENCES): documents back to back, a ``[SEP]``
    between consecutive documents, cut every ``body`` tokens; each row is
    ``[CLS] body [SEP]``. Only the last row may be short: ``[CLS] rest [SEP] [PAD]...``.
  * ``document``: rows never cross a document: each document is cut into rows of ``body``
    tokens, and its last row is ``[CLS] rest [SEP]`` padded with ``[PAD]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from nasplug.errors import NasplugError
from nasplug.text.corpus import CorpusConfig, corpus_fingerprint, load_documents, split_heldout
from nasplug.text.tokenizer import TokenInfo, token_info, tokenizer_hash

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the packing changes: it is part of the cache key
Packing = Literal["stream", "document"]


@dataclass
class PackedData:
    """Packed token ids, ready for batching and masking.

    Attributes:
        train: int32 tensor [N_train, seq_len]; each row starts with [CLS] and its last
            non-pad token is [SEP].
        heldout: int32 tensor [N_heldout, seq_len] from documents disjoint from train's.
        tokens: the special ids and vocabulary size of the tokenizer that made them.
        meta: counts (documents, tokens), the cache key and the packing mode.
    """

    train: torch.Tensor
    heldout: torch.Tensor
    tokens: TokenInfo
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        """Row length L."""
        return int(self.train.shape[1])


def tokenize_documents(
    docs: Dataset | Sequence[str], tokenizer: PreTrainedTokenizerFast, batch_size: int = 512
) -> list[np.ndarray]:
    """Token ids of each document (no special tokens), one int32 array per document.

    Uses the fast tokenizer's batched encoding (Rust, multi-threaded). Called by
    :func:`build_dataset` on a cache miss only.
    """
    out: list[np.ndarray] = []
    if hasattr(docs, "iter") and hasattr(docs, "column_names"):
        batches = (b["text"] for b in docs.iter(batch_size=batch_size))
    else:
        batches = (list(docs[i : i + batch_size]) for i in range(0, len(docs), batch_size))
    for texts in batches:
        ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)["input_ids"]
        out.extend(np.asarray(x, dtype=np.int32) for x in ids)
    return out


def pack(docs: Sequence[np.ndarray], seq_len: int, tokens: TokenInfo, packing: Packing = "stream") -> torch.Tensor:
    """Pack tokenised documents into an int32 tensor [rows, seq_len]; see the module doc.

    Deterministic: rows follow the document order. Empty documents are skipped.
    """
    if seq_len < 3:
        raise NasplugError(f"seq_len: {seq_len} is too short; rows need [CLS], a token and [SEP]")
    docs = [d for d in docs if len(d)]
    if packing == "stream":
        return torch.from_numpy(_pack_stream(docs, seq_len, tokens))
    if packing == "document":
        return torch.from_numpy(_pack_documents(docs, seq_len, tokens))
    raise NasplugError(f"packing: {packing!r} is not a mode; allowed: stream, document")


def _pack_stream(docs: Sequence[np.ndarray], seq_len: int, tokens: TokenInfo) -> np.ndarray:
    body = seq_len - 2
    if not docs:
        return np.empty((0, seq_len), dtype=np.int32)
    sep = np.array([tokens.sep_id], dtype=np.int32)
    stream = np.concatenate([p for d in docs for p in (d, sep)][:-1])  # a [SEP] between documents
    n_full, rest = divmod(len(stream), body)
    out = np.full((n_full + (rest > 0), seq_len), tokens.pad_id, dtype=np.int32)
    out[:, 0] = tokens.cls_id
    out[:n_full, 1:-1] = stream[: n_full * body].reshape(n_full, body)
    out[:n_full, -1] = tokens.sep_id
    if rest:  # the one short row: [CLS] rest [SEP] [PAD]...
        out[-1, 1 : 1 + rest] = stream[n_full * body :]
        out[-1, 1 + rest] = tokens.sep_id
    return out


def _pack_documents(docs: Sequence[np.ndarray], seq_len: int, tokens: TokenInfo) -> np.ndarray:
    body = seq_len - 2
    if not docs:
        return np.empty((0, seq_len), dtype=np.int32)
    sizes = np.array([len(d) for d in docs])
    chunks = -(-sizes // body)  # rows per document
    starts = np.cumsum(sizes) - sizes
    stream = np.concatenate(docs)
    doc_of = np.repeat(np.arange(len(docs)), sizes)
    pos = np.arange(len(stream)) - np.repeat(starts, sizes)  # position inside its document
    row = (np.cumsum(chunks) - chunks)[doc_of] + pos // body
    n_rows = int(chunks.sum())
    out = np.full((n_rows, seq_len), tokens.pad_id, dtype=np.int32)
    out[:, 0] = tokens.cls_id
    out[row, 1 + pos % body] = stream
    out[np.arange(n_rows), 1 + np.bincount(row, minlength=n_rows)] = tokens.sep_id
    return out


def cache_key(cfg: CorpusConfig, tokenizer: PreTrainedTokenizerFast, seq_len: int, packing: Packing) -> str:
    """The packed-data cache key: corpus fingerprint + tokenizer hash + seq_len + packing."""
    ident = [CACHE_VERSION, corpus_fingerprint(cfg), tokenizer_hash(tokenizer), seq_len, packing]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def build_dataset(
    cfg: CorpusConfig,
    tokenizer: PreTrainedTokenizerFast,
    seq_len: int,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    packing: Packing = "stream",
    datasets_cache_dir: str | os.PathLike[str] | None = None,
) -> PackedData:
    """Load, split, tokenise and pack a corpus, or load the result from ``cache_dir``.

    Called once per run (pre-training, search evaluation, retraining). The held-out part
    is ``cfg.heldout_fraction`` of the documents (seeded by ``cfg.seed``).

    Args:
        cfg: the corpus settings.
        tokenizer: a fast tokenizer with [PAD] [CLS] [SEP] [MASK] [UNK].
        seq_len: row length L, special tokens included.
        cache_dir: folder of the packed-data cache; None disables caching.
        packing: ``stream`` or ``document`` (see the module docstring).
        datasets_cache_dir: where `datasets` keeps its Arrow copies of local files.

    Raises:
        NasplugError: anything ``load_documents`` raises, or a corpus too small for one row.
    """
    tokens = token_info(tokenizer)
    path = None
    if cache_dir is not None:
        key = cache_key(cfg, tokenizer, seq_len, packing)
        path = Path(cache_dir) / f"packed-{key[:24]}.safetensors"
        cached = _load_cached(path, key, tokens)
        if cached is not None:
            return cached
    start = time.perf_counter()
    docs = load_documents(cfg, datasets_cache_dir)
    train_docs, held_docs = split_heldout(docs, cfg.heldout_fraction, cfg.seed)
    train_ids = tokenize_documents(train_docs, tokenizer)
    held_ids = tokenize_documents(held_docs, tokenizer)
    train, held = pack(train_ids, seq_len, tokens, packing), pack(held_ids, seq_len, tokens, packing)
    if len(train) == 0:
        raise NasplugError(f"corpus.source: {cfg.source!r} yields no tokens for training")
    meta = {
        "key": key if path is not None else None,
        "packing": packing,
        "train_documents": len(train_docs),
        "heldout_documents": len(held_docs),
        "train_tokens": int(sum(len(x) for x in train_ids)),
        "heldout_tokens": int(sum(len(x) for x in held_ids)),
    }
    log.info("packed %d train rows and %d held-out rows of %d tokens in %.1fs",
             len(train), len(held), seq_len, time.perf_counter() - start)
    data = PackedData(train=train, heldout=held, tokens=tokens, meta=meta)
    if path is not None:
        _save_cached(path, data)
    return data


def _save_cached(path: Path, data: PackedData) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    meta = {"meta": json.dumps(data.meta), "tokens": json.dumps(data.tokens.to_dict())}
    try:
        save_file({"train": data.train.contiguous(), "heldout": data.heldout.contiguous()}, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("cached packed data at %s", path)


def _load_cached(path: Path, key: str, tokens: TokenInfo) -> PackedData | None:
    """The cached data, or None when absent or unusable (then it is rebuilt)."""
    if not path.exists():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["meta"])
            stored = TokenInfo.from_dict(json.loads(f.metadata()["tokens"]))
            train, held = f.get_tensor("train"), f.get_tensor("heldout")
    except Exception as e:  # a truncated or foreign file: rebuild rather than fail
        log.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    if meta.get("key") != key or stored != tokens:
        log.warning("ignoring cache %s: made for other inputs", path)
        return None
    log.info("loaded packed data from cache %s (%d train rows)", path, len(train))
    return PackedData(train=train, heldout=held, tokens=tokens, meta=meta)
