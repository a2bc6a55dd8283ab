"""Corpora through `datasets`: local text / JSON lines / parquet files or folders, or a hub name.

Called at the start of pre-training (and of any stage that rebuilds the data):
``load_documents(cfg)`` returns a ``datasets.Dataset`` with one ``text`` column, one row per
document; ``split_heldout`` then splits it by documents. ``corpus_fingerprint`` names the
corpus for the packed-data cache without reading it, so a cache hit starts at once.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from nasplug.errors import NasplugError
from nasplug.text.synthetic import SYNTHETIC_VERSION, synthetic_corpus

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

EXTENSIONS = {
    "text": (".txt", ".text", ".raw"),
    "json": (".jsonl", ".json", ".ndjson"),
    "parquet": (".parquet",),
}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")  # wikitext's "blank" lines hold a space
_HEAD_BYTES = 1 << 16


class CorpusConfig(BaseModel):
    """Where the pre-training text comes from and how it is cut into documents.

    Attributes:
        source: a hub dataset name (``"wikitext"``), a file, a folder (searched recursively
            for files of the format), a list of files/folders, ``"synthetic"``, or None (the
            built-in synthetic corpus, with a logged notice). Relative paths are resolved
            against ``data_dir``, then ``$NASPLUG_DATA_DIR``, then the working directory.
        config: hub configuration name (``"wikitext-2-raw-v1"``).
        split: hub split to read.
        revision: hub revision; pin it so the cache notices a changed dataset.
        text_field: the column holding the text (JSON, parquet, hub).
        format: ``auto`` picks from the extension (.txt/.text/.raw, .jsonl/.json, .parquet).
        document_by: for plain text: each ``file`` is one document, or each ``paragraph``
            (chunks separated by blank lines: Wikipedia articles), or each ``line``.
            JSON / parquet / hub rows are always one document each.
        data_dir: base folder for relative paths.
        heldout_fraction: fraction of documents held out for evaluation.
        max_documents, max_bytes: use only the first documents / UTF-8 bytes (CPU recipes).
        seed: for the held-out split (and the synthetic corpus).
        synthetic_documents: size of the synthetic corpus.
        synthetic_fallback: when ``source`` cannot be found, use the synthetic corpus with a
            warning instead of raising.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    source: str | list[str] | None = None
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    text_field: str = "text"
    format: Literal["auto", "text", "json", "parquet"] = "auto"
    document_by: Literal["file", "paragraph", "line"] = "paragraph"
    data_dir: str | None = None
    heldout_fraction: float = Field(0.05, ge=0.0, lt=1.0, allow_inf_nan=False)
    max_documents: int | None = Field(None, ge=1, le=10**12)
    max_bytes: int | None = Field(None, ge=1, le=10**15)
    seed: int = 0
    synthetic_documents: int = Field(2000, ge=1, le=10**7)
    synthetic_fallback: bool = False


@dataclass(frozen=True)
class _Resolved:
    kind: Literal["files", "hub", "synthetic"]
    files: tuple[Path, ...] = ()
    fmt: str = "text"
    why: str = ""  # for the synthetic notice


def corpus_card(cfg: CorpusConfig) -> dict[str, Any]:
    """What a model card says of the corpus: its name, and the Hub dataset when it is one."""
    try:
        res = _resolve(cfg)
    except NasplugError:
        return {}
    if res.kind == "synthetic":
        return {"corpus": "nasplug's generated English-like text"}
    if res.kind == "hub":
        assert isinstance(cfg.source, str)
        return {"corpus": cfg.source + (f" ({cfg.config})" if cfg.config else ""), "datasets": [cfg.source]}
    names = sorted({f.parent.name or f.name for f in res.files})
    return {"corpus": "local files in " + ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")}


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    for ext in COMPRESSED:
        name = name.removesuffix(ext)
    for fmt, exts in EXTENSIONS.items():
        if name.endswith(exts):
            return fmt
    return None


def _base_dirs(cfg: CorpusConfig) -> list[Path]:
    bases = [cfg.data_dir, os.environ.get("NASPLUG_DATA_DIR")]
    return [Path(b).expanduser() for b in bases if b] + [Path.cwd()]


def _resolve(cfg: CorpusConfig) -> _Resolved:
    """Decide what ``cfg.source`` names; NasplugError when a path does not exist."""
    if cfg.source is None or cfg.source == "synthetic":
        return _Resolved("synthetic", why="no corpus configured" if cfg.source is None else "")
    sources = [cfg.source] if isinstance(cfg.source, str) else list(cfg.source)
    if not sources:
        raise NasplugError("corpus.source: the list is empty; give at least one file or folder")
    files: list[Path] = []
    for src in sources:
        p = Path(src).expanduser()
        tried = [p] if p.is_absolute() else [b / p for b in _base_dirs(cfg)]
        found = next((t for t in tried if t.exists()), None)
        if found is None:
            single = isinstance(cfg.source, str)
            if single and _HUB_NAME.fullmatch(src) and _format_of(p) is None:
                return _Resolved("hub")
            if cfg.synthetic_fallback:
                return _Resolved("synthetic", why=f"corpus.source {src!r} not found")
            where = ", ".join(str(t) for t in tried)
            raise NasplugError(f"corpus.source: path {src!r} does not exist (looked for {where})")
        files.extend(_files_in(found, cfg.format))
    fmts = {cfg.format} if cfg.format != "auto" else {_format_of(f) or "text" for f in files}
    if len(fmts) > 1:
        raise NasplugError(
            f"corpus.format: {cfg.source!r} mixes formats {sorted(fmts)}; set format to one of text, json, parquet"
        )
    return _Resolved("files", files=tuple(files), fmt=fmts.pop())


def _files_in(path: Path, fmt: str) -> list[Path]:
    """A file itself, or the data files under a folder (hidden files and unknown types skipped)."""
    if path.is_file():
        return [path.resolve()]
    if not path.is_dir():
        raise NasplugError(f"corpus.source: {path} is neither a file nor a folder")
    found = []
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).parts
        if f.is_file() and not any(part.startswith(".") for part in rel):
            f_fmt = _format_of(f)
            if f_fmt is not None and (fmt == "auto" or f_fmt == fmt):
                found.append(f.resolve())
    if not found:
        wanted = EXTENSIONS[fmt] if fmt != "auto" else sum(EXTENSIONS.values(), ())
        raise NasplugError(f"corpus.source: folder {path} has no data files ({' '.join(wanted)})")
    return found


def _check_readable(path: Path, fmt: str) -> None:
    """Read the head of a file so a bad file is named before `datasets` sees it."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as e:
        raise NasplugError(f"corpus.source: cannot read {path}: {e.strerror or e}") from e
    if not head or path.name.lower().endswith(COMPRESSED):
        return
    if fmt == "parquet":
        if head[:4] != b"PAR1":
            raise NasplugError(f"corpus.source: {path} is not a parquet file (bad magic bytes)")
        return
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _HEAD_BYTES)
    except UnicodeDecodeError as e:
        raise NasplugError(f"corpus.source: {path} is not UTF-8 text (byte {e.start}: {e.reason})") from e
    if fmt == "json" and not text.lstrip().startswith(("{", "[")):
        raise NasplugError(f"corpus.source: {path} is not JSON lines (expected '{{' at the start)")


def corpus_fingerprint(cfg: CorpusConfig) -> str:
    """A hash naming the documents ``load_documents(cfg)`` yields, computed without reading them.

    Called to build the packed-data cache key. Local files count by path, size and mtime;
    hub datasets by name, config, split and revision.
    """
    res = _resolve(cfg)
    ident: dict[str, object] = {"kind": res.kind, "fmt": res.fmt, "v": 1}
    if res.kind == "files":
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in res.files]
        ident["files"] = stats
    elif res.kind == "hub":
        ident["hub"] = [cfg.source, cfg.config, cfg.split, cfg.revision]
    else:
        ident["synthetic"] = [cfg.synthetic_documents, SYNTHETIC_VERSION]
    keys = ("text_field", "document_by", "heldout_fraction", "max_documents", "max_bytes", "seed")
    ident["cfg"] = {k: getattr(cfg, k) for k in keys}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def load_documents(cfg: CorpusConfig, cache_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """Load the corpus as a ``datasets.Dataset`` with one ``text`` column, one row per document.

    Called once per data build (a packed-data cache hit skips it). Empty documents are
    dropped; ``max_documents`` / ``max_bytes`` keep a prefix (the last document cut to fit).

    Args:
        cfg: the corpus settings.
        cache_dir: where `datasets` keeps its Arrow copies (default: its own cache).

    Raises:
        NasplugError: a missing path, a folder without data files, an unreadable or
            malformed file, a missing text column, or an empty corpus; the message names it.
    """
    from datasets import Dataset

    res = _resolve(cfg)
    if res.kind == "synthetic":
        if res.why:
            log.warning("%s: using the built-in synthetic corpus (%d documents, seed %d)",
                        res.why, cfg.synthetic_documents, cfg.seed)
        return Dataset.from_dict({"text": synthetic_corpus(cfg.synthetic_documents, cfg.seed)})
    what = repr(cfg.source)
    if res.kind == "hub":
        ds = _load_hub(cfg, cache_dir)
    else:
        files = _preselect(list(res.files), res.fmt, cfg)
        for f in files:
            _check_readable(f, res.fmt)
        ds = _load_files(files, res.fmt, cfg, cache_dir)
        what = str(files[0]) if len(files) == 1 else f"{len(files)} files under {cfg.source!r}"
    ds = _text_column(ds, cfg.text_field, what)
    ds = _to_documents(ds, res.fmt if res.kind == "files" else "rows", cfg.document_by)
    ds = _take_prefix(ds, cfg.max_documents, cfg.max_bytes)
    if len(ds) == 0:
        raise NasplugError(f"corpus.source: {what} is empty (no non-blank text)")
    log.info("corpus %s: %d documents", what, len(ds))
    return ds


def _preselect(files: list[Path], fmt: str, cfg: CorpusConfig) -> list[Path]:
    """Skip reading files beyond a cap when the cap is known from file sizes alone."""
    if fmt == "text" and cfg.document_by == "file" and cfg.max_documents is not None:
        return files[: cfg.max_documents]
    if fmt == "text" and cfg.max_bytes is not None and not any(f.name.endswith(COMPRESSED) for f in files):
        total = 0
        for i, f in enumerate(files):
            total += f.stat().st_size
            if total >= cfg.max_bytes * 1.1:  # blank lines dropped later: keep some slack
                return files[: i + 1]
    return files


def _load_files(files: list[Path], fmt: str, cfg: CorpusConfig, cache_dir: str | os.PathLike[str] | None) -> Dataset:
    from datasets import load_dataset

    kwargs = {"sample_by": "line" if cfg.document_by == "line" else "document"} if fmt == "text" else {}
    try:
        return load_dataset(fmt, data_files=[str(f) for f in files], split="train",
                            cache_dir=None if cache_dir is None else str(cache_dir), **kwargs)
    except Exception as e:  # datasets/pyarrow raise many types; the user needs the path
        where = str(files[0]) if len(files) == 1 else f"one of {len(files)} files under {cfg.source!r}"
        raise NasplugError(f"corpus.source: cannot read {where} as {fmt}: {_first_line(e)}") from e


def _load_hub(cfg: CorpusConfig, cache_dir: str | os.PathLike[str] | None) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(str(cfg.source), cfg.config, split=cfg.split, revision=cfg.revision,
                            cache_dir=None if cache_dir is None else str(cache_dir))
    except Exception as e:
        where = ", ".join(str(b / str(cfg.source)) for b in _base_dirs(cfg))
        raise NasplugError(
            f"corpus.source: {cfg.source!r} is not a local path (looked for {where}) and could not be "
            f"loaded as hub dataset (config={cfg.config!r}, split={cfg.split!r}): {_first_line(e)}"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _text_column(ds: Dataset, field: str, what: str) -> Dataset:
    if field not in ds.column_names:
        raise NasplugError(f"corpus.text_field: {what} has no column {field!r}; columns: {', '.join(ds.column_names)}")
    if ds.features[field].dtype not in ("string", "large_string"):
        raise NasplugError(f"corpus.text_field: column {field!r} of {what} holds {ds.features[field]}, not text")
    ds = ds.select_columns([field])
    return ds.rename_column(field, "text") if field != "text" else ds


def _to_documents(ds: Dataset, fmt: str, document_by: str) -> Dataset:
    """Split whole files into paragraphs if asked, and drop blank documents."""
    if fmt == "text" and document_by == "paragraph":
        def split(batch: dict[str, list[str]]) -> dict[str, list[str]]:
            return {"text": [p.strip() for t in batch["text"] for p in _BLANK_LINE.split(t) if p.strip()]}
        return ds.map(split, batched=True, desc="paragraphs")

    def keep(batch: dict[str, list[str | None]]) -> list[bool]:
        return [bool(t and t.strip()) for t in batch["text"]]
    return ds.filter(keep, batched=True, desc="drop blank documents")


def _take_prefix(ds: Dataset, max_documents: int | None, max_bytes: int | None) -> Dataset:
    from datasets import Dataset

    if max_documents is not None and len(ds) > max_documents:
        ds = ds.select(range(max_documents))
    if max_bytes is None:
        return ds
    texts: list[str] = []
    total = 0
    for batch in ds.iter(batch_size=1000):
        for t in batch["text"]:
            b = t.encode("utf-8")
            if total + len(b) >= max_bytes:
                cut = b[: max_bytes - total].decode("utf-8", "ignore").strip()
                return Dataset.from_dict({"text": texts + ([cut] if cut else [])})
            texts.append(t)
            total += len(b)
    return ds


def split_heldout(docs: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Split documents into (train, heldout): no document is in both.

    Called after ``load_documents``. A seeded permutation picks ``round(n * fraction)``
    documents (at least one when ``fraction > 0``); both parts keep the corpus order.
    """
    n = len(docs)
    k = round(n * fraction)
    if fraction > 0:
        k = max(k, 1)
        if n - k < 1:
            raise NasplugError(
                f"corpus.heldout_fraction: {fraction} leaves no training document out of {n}; "
                "lower it, or cut documents finer (document_by: paragraph)"
            )
    perm = np.random.default_rng(seed).permutation(n)
    held = np.sort(perm[:k])
    train = np.sort(perm[k:])
    return docs.select(train.tolist()), docs.select(held.tolist())
