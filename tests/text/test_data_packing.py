"""Packing layouts, build_dataset on a real slice, determinism and the packed-data cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

import nasplug.text.packing as packing
from nasplug.errors import NasplugError
from nasplug.text.corpus import CorpusConfig
from nasplug.text.packing import build_dataset, pack
from nasplug.text.tokenizer import TokenInfo, train_tokenizer

INFO = TokenInfo(vocab_size=100, pad_id=0, cls_id=2, sep_id=3, mask_id=4, unk_id=1, special_ids=(0, 1, 2, 3, 4))
PAD, CLS, SEP = 0, 2, 3


def _docs(*lengths: int) -> list[np.ndarray]:
    start = 10
    out = []
    for n in lengths:
        out.append(np.arange(start, start + n, dtype=np.int32))
        start += n
    return out


def test_stream_packing_layout() -> None:
    rows = pack(_docs(5, 0, 4), seq_len=6, tokens=INFO, packing="stream").tolist()
    # stream: 10..14 [SEP] 15..18 -> bodies of 4 tokens; empty documents are skipped
    assert rows == [
        [CLS, 10, 11, 12, 13, SEP],
        [CLS, 14, SEP, 15, 16, SEP],
        [CLS, 17, 18, SEP, PAD, PAD],
    ]


def test_document_packing_layout() -> None:
    rows = pack(_docs(5, 4, 1), seq_len=6, tokens=INFO, packing="document").tolist()
    assert rows == [
        [CLS, 10, 11, 12, 13, SEP],
        [CLS, 14, SEP, PAD, PAD, PAD],
        [CLS, 15, 16, 17, 18, SEP],
        [CLS, 19, SEP, PAD, PAD, PAD],
    ]


@pytest.mark.parametrize("mode", ["stream", "document"])
def test_packing_keeps_every_token_in_order(mode: str) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(5, 100, size=n).astype(np.int32) for n in rng.integers(1, 40, size=30)]
    rows = pack(docs, seq_len=16, tokens=INFO, packing=mode)
    assert rows.dtype == torch.int32 and rows.shape[1] == 16
    assert (rows[:, 0] == CLS).all()
    flat = rows[(rows != CLS) & (rows != SEP) & (rows != PAD)]
    assert flat.tolist() == np.concatenate(docs).tolist()
    with pytest.raises(NasplugError, match="seq_len"):
        pack(docs, seq_len=2, tokens=INFO)
    with pytest.raises(NasplugError, match="packing"):
        pack(docs, seq_len=8, tokens=INFO, packing="rows")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 150 KB copy of wikitext (so tests may touch it) and a tokenizer trained on it."""
    with pytest.MonkeyPatch.context() as mp:  # huggingface_hub reads these when first imported
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(var, "1")
        src = tmp_path_factory.mktemp("corpus") / "wiki.txt"
        text = (shared_data / "wikitext-2-raw" / "wiki.test.raw").read_bytes()[:150_000]
        src.write_bytes(text[: text.rindex(b"\n") + 1])
        tok = train_tokenizer([src.read_text()], vocab_size=800)
    return src, tok


def _cfg(src: Path, **kw) -> CorpusConfig:
    return CorpusConfig(source=str(src), heldout_fraction=0.1, seed=1, **kw)


def test_build_dataset_rows_and_split(corpus, tmp_path: Path) -> None:
    src, tok = corpus
    data = build_dataset(_cfg(src), tok, seq_len=32, datasets_cache_dir=tmp_path / "hf")
    assert data.train.shape[1] == data.heldout.shape[1] == data.seq_len == 32
    assert len(data.train) > 5 * len(data.heldout) > 0
    for rows in (data.train, data.heldout):
        assert (rows[:, 0] == tok.cls_token_id).all()
        last = (rows != tok.pad_token_id).sum(1) - 1  # last non-pad position
        assert (rows[torch.arange(len(rows)), last] == tok.sep_token_id).all()
    m = data.meta
    assert m["heldout_documents"] == round(0.1 * (m["train_documents"] + m["heldout_documents"]))
    again = build_dataset(_cfg(src), tok, seq_len=32, datasets_cache_dir=tmp_path / "hf2")
    assert torch.equal(again.train, data.train) and torch.equal(again.heldout, data.heldout)
    other = build_dataset(_cfg(src).model_copy(update={"seed": 2}), tok, 32, datasets_cache_dir=tmp_path / "hf")
    assert not torch.equal(other.heldout[:5], data.heldout[:5])


def test_cache_hit_skips_tokenisation(corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, tok = corpus
    calls = []
    real = packing.tokenize_documents
    monkeypatch.setattr(packing, "tokenize_documents", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = tmp_path / "cache"
    first = build_dataset(_cfg(src), tok, 32, cache, datasets_cache_dir=tmp_path / "hf")
    assert len(calls) == 2  # train and held-out parts
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp file left
    second = build_dataset(_cfg(src), tok, 32, cache, datasets_cache_dir=tmp_path / "hf")
    assert len(calls) == 2, "a cache hit must not tokenise again"
    assert torch.equal(first.train, second.train) and torch.equal(first.heldout, second.heldout)
    assert second.tokens == first.tokens and second.meta == first.meta
    build_dataset(_cfg(src), tok, 48, cache, datasets_cache_dir=tmp_path / "hf")  # other length: miss
    assert len(calls) == 4
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched corpus: miss
    build_dataset(_cfg(src), tok, 32, cache, datasets_cache_dir=tmp_path / "hf")
    assert len(calls) == 6
    for f in cache.iterdir():  # a damaged cache is rebuilt, not trusted
        f.write_bytes(b"garbage")
    again = build_dataset(_cfg(src), tok, 32, cache, datasets_cache_dir=tmp_path / "hf")
    assert len(calls) == 8 and torch.equal(again.train, first.train)


def test_synthetic_corpus_end_to_end(tmp_path: Path) -> None:
    cfg = CorpusConfig(synthetic_documents=200, heldout_fraction=0.1)
    from nasplug.text.corpus import load_documents

    tok = train_tokenizer(load_documents(cfg), vocab_size=300)
    data = build_dataset(cfg, tok, seq_len=24, cache_dir=tmp_path)
    assert len(data.train) > 50 and len(data.heldout) > 0
    assert (data.train == tok.unk_token_id).sum() == 0  # the grammar's words are all in the vocab
