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
  * ``electra``: the official ELECTRA / LV-BERT example builder (:mod:`nasplug.text.examples`):
    lines of a document accumulated into ``[CLS] A [SEP] B [SEP]`` rows with segment ids
    0/1 (90% of rows have two segments), never crossing a document, 5% of rows shorter.

Segment ids (``PackedData.train_segments`` / ``heldout_segments``) exist for ``electra``
only; the other modes have one segment (None: all zero).
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
from nasplug.io import atomic_write
from nasplug.text.corpus import CorpusConfig, corpus_fingerprint, load_documents, split_heldout
from nasplug.text.tokenizer import TokenInfo, token_info, tokenizer_hash

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerFast

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when the packing changes: it is part of the cache key (2: segment ids)
Packing = Literal["stream", "document", "electra"]
PACKINGS = ("stream", "document", "electra")


@dataclass
class PackedData:
    """Packed token ids, ready for batching and masking.

    Attributes:
        train: int32 tensor [N_train, seq_len]; each row starts with [CLS] and its last
            non-pad token is [SEP].
        heldout: int32 tensor [N_heldout, seq_len] from documents disjoint from train's.
        tokens: the special ids and vocabulary size of the tokenizer that made them.
        meta: counts (documents, tokens), the cache key and the packing mode.
        train_segments, heldout_segments: int8 [N, seq_len] segment (token type) ids of
            the rows, 0 for ``[CLS] A [SEP]`` and padding, 1 for ``B [SEP]``; None when every
            row is one segment (packing ``stream`` / ``document``).
    """

    train: torch.Tensor
    heldout: torch.Tensor
    tokens: TokenInfo
    meta: dict[str, Any] = field(default_factory=dict)
    train_segments: torch.Tensor | None = None
    heldout_segments: torch.Tensor | None = None

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
    raise NasplugError(f"packing: {packing!r} is not a mode for pack(); allowed: stream, document "
                       "(electra packs lines: build_dataset)")


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


def cache_key(cfg: CorpusConfig, tokenizer: PreTrainedTokenizerFast, seq_len: int, packing: Packing,
              split_sentences: bool = False) -> str:
    """The packed-data cache key: corpus fingerprint + tokenizer hash + seq_len + packing
    (+ the sentence split of ``electra`` packing)."""
    mode = f"{packing}+sentences" if packing == "electra" and split_sentences else packing
    ident = [CACHE_VERSION, corpus_fingerprint(cfg), tokenizer_hash(tokenizer), seq_len, mode]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


def build_dataset(
    cfg: CorpusConfig,
    tokenizer: PreTrainedTokenizerFast,
    seq_len: int,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    packing: Packing = "stream",
    datasets_cache_dir: str | os.PathLike[str] | None = None,
    split_sentences: bool = False,
) -> PackedData:
    """Load, split, tokenise and pack a corpus, or load the result from ``cache_dir``.

    Called once per run (pre-training, search evaluation, retraining). The held-out part
    is ``cfg.heldout_fraction`` of the documents (seeded by ``cfg.seed``).

    Args:
        cfg: the corpus settings.
        tokenizer: a fast tokenizer with [PAD] [CLS] [SEP] [MASK] [UNK].
        seq_len: row length L, special tokens included.
        cache_dir: folder of the packed-data cache; None disables caching.
        packing: ``stream``, ``document`` or ``electra`` (see the module docstring).
        datasets_cache_dir: where `datasets` keeps its Arrow copies of local files.
        split_sentences: ``electra`` packing only: cut lines into sentences first (for
            corpora with one paragraph per line; see :func:`nasplug.text.examples.split_sentences`).

    Raises:
        NasplugError: anything ``load_documents`` raises, or a corpus too small for one row.
    """
    tokens = token_info(tokenizer)
    path = None
    if cache_dir is not None:
        key = cache_key(cfg, tokenizer, seq_len, packing, split_sentences)
        path = Path(cache_dir) / f"packed-{key[:24]}.safetensors"
        cached = _load_cached(path, key, tokens)
        if cached is not None:
            return cached
    start = time.perf_counter()
    docs = load_documents(cfg, datasets_cache_dir)
    train_docs, held_docs = split_heldout(docs, cfg.heldout_fraction, cfg.seed)
    segments: dict[str, torch.Tensor | None] = {"train": None, "heldout": None}
    if packing == "electra":
        # Seeds per split: the held-out rows do not depend on how much training text there is.
        (train, segments["train"], n_train), (held, segments["heldout"], n_held) = (
            _pack_electra(part, tokenizer, seq_len, tokens, seed, split_sentences)
            for part, seed in ((train_docs, cfg.seed), (held_docs, cfg.seed + 1)))
    elif packing in PACKINGS:
        train_ids = tokenize_documents(train_docs, tokenizer)
        held_ids = tokenize_documents(held_docs, tokenizer)
        train, held = pack(train_ids, seq_len, tokens, packing), pack(held_ids, seq_len, tokens, packing)
        n_train, n_held = int(sum(len(x) for x in train_ids)), int(sum(len(x) for x in held_ids))
    else:
        raise NasplugError(f"packing: {packing!r} is not a mode; allowed: {', '.join(PACKINGS)}")
    if len(train) == 0:
        raise NasplugError(f"corpus.source: {cfg.source!r} yields no tokens for training")
    meta = {
        "key": key if path is not None else None,
        "packing": packing,
        "split_sentences": bool(split_sentences and packing == "electra"),
        "train_documents": len(train_docs),
        "heldout_documents": len(held_docs),
        "train_tokens": n_train,
        "heldout_tokens": n_held,
    }
    log.info("packed %d train rows and %d held-out rows of %d tokens in %.1fs",
             len(train), len(held), seq_len, time.perf_counter() - start)
    data = PackedData(train=train, heldout=held, tokens=tokens, meta=meta,
                      train_segments=segments["train"], heldout_segments=segments["heldout"])
    if path is not None:
        _save_cached(path, data)
    return data


def _pack_electra(docs: Dataset | Sequence[str], tokenizer: PreTrainedTokenizerFast, seq_len: int,
                  tokens: TokenInfo, seed: int, sentences: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rows, segment ids and the number of text tokens read, by the official builder."""
    from nasplug.text.examples import build_examples, line_stream

    read = 0

    def tokenize(texts: list[str]) -> list[list[int]]:
        nonlocal read
        ids = tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                        return_token_type_ids=False, verbose=False)["input_ids"]
        read += sum(len(x) for x in ids)
        return ids

    if hasattr(docs, "iter") and hasattr(docs, "column_names"):
        texts = (t for b in docs.iter(batch_size=1000) for t in b["text"])
    else:
        texts = iter(docs)
    rows, segments = build_examples(line_stream(texts, tokenize, sentences=sentences), seq_len, tokens, seed)
    return torch.from_numpy(rows), torch.from_numpy(segments), read


def _save_cached(path: Path, data: PackedData) -> None:
    """Write the cache atomically (temp file, fsync, rename): readers see all of it or none."""
    from safetensors.torch import save

    meta = {"meta": json.dumps(data.meta), "tokens": json.dumps(data.tokens.to_dict())}
    tensors = {"train": data.train.contiguous(), "heldout": data.heldout.contiguous()}
    if data.train_segments is not None and data.heldout_segments is not None:
        tensors.update(train_segments=data.train_segments.contiguous(),
                       heldout_segments=data.heldout_segments.contiguous())
    blob = save(tensors, metadata=meta)
    atomic_write(path, lambda fh: fh.write(blob))
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
            names = set(f.keys())
            segments = ((f.get_tensor("train_segments"), f.get_tensor("heldout_segments"))
                        if {"train_segments", "heldout_segments"} <= names else (None, None))
    except Exception as e:  # a truncated or foreign file: rebuild rather than fail
        log.warning("ignoring unreadable cache %s: %s", path, e)
        return None
    if meta.get("key") != key or stored != tokens:
        log.warning("ignoring cache %s: made for other inputs", path)
        return None
    log.info("loaded packed data from cache %s (%d train rows)", path, len(train))
    return PackedData(train=train, heldout=held, tokens=tokens, meta=meta,
                      train_segments=segments[0], heldout_segments=segments[1])
