"""Corpus loading: local formats, document boundaries, clear errors, held-out split, synthetic."""

from __future__ import annotations

import builtins
import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from nasplug.errors import NasplugError
from nasplug.text.corpus import CorpusConfig, corpus_fingerprint, load_documents, split_heldout
from nasplug.text.synthetic import synthetic_corpus, write_synthetic_corpus


def _load(tmp_path: Path, **kw):
    return load_documents(CorpusConfig(**kw), cache_dir=tmp_path / ".hf")  # hidden: skipped when tmp_path is the source


def _texts(ds) -> list[str]:
    return list(ds["text"])


def test_text_document_boundaries(tmp_path: Path) -> None:
    # wikitext-style "blank" lines hold a space: they must still separate paragraphs
    (tmp_path / "a.txt").write_text("first para\nstill first\n \nsecond para\n\n\nthird\n")
    (tmp_path / "b.txt").write_text("other file\n")
    src = str(tmp_path)
    by_par = _texts(_load(tmp_path, source=src, document_by="paragraph"))
    assert by_par == ["first para\nstill first", "second para", "third", "other file"]
    by_file = _texts(_load(tmp_path, source=src, document_by="file"))
    assert len(by_file) == 2 and by_file[0].startswith("first para") and "third" in by_file[0]
    by_line = _texts(_load(tmp_path, source=src, document_by="line"))
    assert by_line == ["first para", "still first", "second para", "third", "other file"]


def test_jsonl_and_parquet_with_text_field(tmp_path: Path) -> None:
    from datasets import Dataset

    rows = [{"body": f"document number {i}", "id": i} for i in range(5)] + [{"body": "  ", "id": 9}]
    jl = tmp_path / "d.jsonl"
    jl.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pq = tmp_path / "d.parquet"
    Dataset.from_list(rows).to_parquet(str(pq))
    for path in (jl, pq):
        ds = _load(tmp_path, source=str(path), text_field="body")
        assert ds.column_names == ["text"]
        assert _texts(ds) == [f"document number {i}" for i in range(5)]  # blank row dropped
    with pytest.raises(NasplugError, match=r"text_field.*'text'.*body"):
        _load(tmp_path, source=str(jl))


def test_folder_skips_hidden_and_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.txt").write_text("x doc")
    (tmp_path / "y.raw").write_text("y doc")
    (tmp_path / ".hidden.txt").write_text("hidden")
    (tmp_path / "MANIFEST.sha256").write_text("abc  y.raw")
    (tmp_path / "notes.md").write_text("notes")
    assert sorted(_texts(_load(tmp_path, source=str(tmp_path)))) == ["x doc", "y doc"]


def test_relative_paths_use_data_dir_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "f.txt").write_text("hello there")
    assert _texts(_load(tmp_path, source="c/f.txt", data_dir=str(tmp_path))) == ["hello there"]
    monkeypatch.setenv("NASPLUG_DATA_DIR", str(tmp_path))
    assert _texts(_load(tmp_path, source=["c"])) == ["hello there"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "has no data files"),
        (lambda p: p.write_text(" \n\n  \n"), "is empty"),
        (lambda p: p.write_bytes(b"caf\xe9 au lait\n"), "not UTF-8"),
    ],
    ids=["missing", "empty-folder", "blank-file", "bad-utf8"],
)
def test_bad_sources_name_the_path(tmp_path: Path, make, match: str) -> None:
    path = tmp_path / "corpus.txt"
    make(path)
    with pytest.raises(NasplugError, match=match) as err:
        _load(tmp_path, source=str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_malformed_parquet_and_json_name_the_path(tmp_path: Path) -> None:
    pq = tmp_path / "bad.parquet"
    pq.write_bytes(b"this is not parquet at all")
    with pytest.raises(NasplugError, match="not a parquet file") as err:
        _load(tmp_path, source=str(pq))
    assert str(pq) in str(err.value)
    jl = tmp_path / "bad.jsonl"
    jl.write_text('{"text": "ok"}\n{"text": broken\n')
    with pytest.raises(NasplugError, match="cannot read") as err:
        _load(tmp_path, source=str(jl))
    assert str(jl) in str(err.value)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.txt"
    path.write_text("secret")
    real_open = builtins.open

    def deny(file, *args, **kwargs):  # chmod 0 does not stop root, so deny the read here
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    with pytest.raises(NasplugError, match="cannot read.*Permission denied") as err:
        _load(tmp_path, source=str(path))
    assert str(path) in str(err.value)


def test_mixed_formats_and_unknown_hub_name(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.jsonl").write_text('{"text": "b"}\n')
    with pytest.raises(NasplugError, match="corpus.format"):
        _load(tmp_path, source=str(tmp_path))
    assert _texts(_load(tmp_path, source=str(tmp_path), format="json")) == ["b"]
    with pytest.raises(NasplugError, match="no-such-owner/no-such-corpus"):
        _load(tmp_path, source="no-such-owner/no-such-corpus")  # offline: cannot be a hub dataset


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        CorpusConfig(source="x", heldout=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CorpusConfig(source="x", heldout_fraction=1.0)


def test_slices(tmp_path: Path, shared_data: Path) -> None:
    src = str(shared_data / "wikitext-2-raw" / "wiki.test.raw")
    ds = _load(tmp_path, source=src, max_documents=7)
    assert len(ds) == 7
    ds = _load(tmp_path, source=src, max_bytes=20_000)
    size = sum(len(t.encode()) for t in ds["text"])
    assert 15_000 < size <= 20_000


def test_heldout_split_is_disjoint_by_documents_and_seeded(tmp_path: Path, shared_data: Path) -> None:
    src = str(shared_data / "wikitext-2-raw" / "wiki.test.raw")
    docs = _load(tmp_path, source=src, max_bytes=100_000)
    docs = docs.add_column("i", list(range(len(docs))))  # headings repeat: compare by index
    train, held = split_heldout(docs, 0.1, seed=3)
    assert len(held) == round(len(docs) * 0.1) and len(train) + len(held) == len(docs)
    assert set(train["i"]).isdisjoint(held["i"])
    assert sorted(list(train["i"]) + list(held["i"])) == list(range(len(docs)))
    assert list(train["i"]) == sorted(train["i"])  # corpus order kept
    assert list(held["i"]) == list(split_heldout(docs, 0.1, seed=3)[1]["i"])
    assert list(held["i"]) != list(split_heldout(docs, 0.1, seed=4)[1]["i"])
    with pytest.raises(NasplugError, match="heldout_fraction"):
        split_heldout(docs.select([0]), 0.1, seed=0)


def test_fingerprint_tracks_files_and_settings(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("one")
    cfg = CorpusConfig(source=str(f))
    fp = corpus_fingerprint(cfg)
    assert corpus_fingerprint(cfg) == fp
    assert corpus_fingerprint(cfg.model_copy(update={"seed": 1})) != fp
    f.write_text("one two")
    assert corpus_fingerprint(cfg) != fp


def test_synthetic_corpus(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    docs = synthetic_corpus(20, seed=1)
    assert docs == synthetic_corpus(20, seed=1) and docs != synthetic_corpus(20, seed=2)
    assert all(d.strip() and d.endswith(".") for d in docs)
    path = write_synthetic_corpus(tmp_path / "syn" / "corpus.txt", 20, seed=1)
    assert _texts(_load(tmp_path, source=str(path))) == docs
    with caplog.at_level(logging.WARNING, logger="nasplug.text.corpus"):
        ds = _load(tmp_path, synthetic_documents=5)
    assert _texts(ds) == synthetic_corpus(5, seed=0) and "synthetic" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nasplug.text.corpus"):
        ds = _load(tmp_path, source=str(tmp_path / "nope.txt"), synthetic_fallback=True, synthetic_documents=5)
    assert len(ds) == 5 and "nope.txt" in caplog.text
