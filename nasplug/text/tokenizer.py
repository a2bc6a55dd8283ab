"""WordPiece tokenizers: train one on a corpus with `tokenizers`, or load a pretrained one.

Called once per run, before packing: ``train_tokenizer`` when the recipe asks for a fresh
vocabulary (the result is saved beside the run with ``save_pretrained``), ``load_tokenizer``
for a saved or pretrained one. ``token_info`` extracts the ids the masking code needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasplug.errors import NasplugError
from nasplug.io import atomic_write_text, fsync_dir, make_temp_dir

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

log = logging.getLogger(__name__)

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # ids 0..4 in a vocabulary we train
#: What a trained tokenizer returns (saved in tokenizer_config.json): BERT's inputs, segment
#: ids included, so sentence pairs get token type 1 on their second text.
MODEL_INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")


@dataclass(frozen=True)
class TokenInfo:
    """The token ids that packing and masking need, detached from the tokenizer object.

    Attributes:
        vocab_size: number of ids (``len(tokenizer)``, added tokens included).
        pad_id, cls_id, sep_id, mask_id, unk_id: the special tokens' ids.
        special_ids: every special id; these are never masked nor drawn as random tokens.
    """

    vocab_size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    unk_id: int
    special_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (stored in the packed-data cache)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenInfo:
        """Inverse of :meth:`to_dict`."""
        return cls(**{**d, "special_ids": tuple(d["special_ids"])})


def token_info(tokenizer: PreTrainedTokenizerBase) -> TokenInfo:
    """Read the special-token ids off a tokenizer; NasplugError if one is missing.

    Called when packing and by anything that masks (training, evaluation).
    """
    ids = {
        "pad_id": tokenizer.pad_token_id,
        "cls_id": tokenizer.cls_token_id,
        "sep_id": tokenizer.sep_token_id,
        "mask_id": tokenizer.mask_token_id,
        "unk_id": tokenizer.unk_token_id,
    }
    missing = [k[:-3] for k, v in ids.items() if v is None]
    if missing:
        raise NasplugError(
            f"tokenizer: has no {', '.join(missing)} token; MLM pre-training needs "
            f"{', '.join(SPECIAL_TOKENS)} (train one with train_tokenizer, or use a BERT-style tokenizer)"
        )
    special = sorted(set(tokenizer.all_special_ids) | set(ids.values()))
    return TokenInfo(vocab_size=len(tokenizer), special_ids=tuple(special), **ids)


def tokenizer_hash(tokenizer: PreTrainedTokenizerFast) -> str:
    """SHA-256 of the full tokenizer definition (vocab, normaliser, pre-tokeniser, ...).

    Used in the packed-data cache key: any change to how text becomes ids changes it.
    """
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()


def _text_batches(
    texts: Iterable[str] | Any, text_field: str, batch_size: int, max_bytes: int | None, max_documents: int | None
) -> Iterator[list[str]]:
    """Yield lists of texts, stopping after ``max_documents`` texts or ``max_bytes`` bytes."""
    if hasattr(texts, "column_names") and hasattr(texts, "iter"):  # a datasets.Dataset
        source: Iterable[str] = (t for b in texts.iter(batch_size=batch_size) for t in b[text_field])
    else:
        source = texts
    batch: list[str] = []
    seen_bytes = 0
    for n, text in enumerate(source):
        if max_documents is not None and n >= max_documents:
            break
        if max_bytes is not None:
            size = len(text.encode("utf-8"))
            if seen_bytes + size > max_bytes:
                # Keep a prefix of this text so a corpus of few huge documents still trains.
                batch.append(text.encode("utf-8")[: max_bytes - seen_bytes].decode("utf-8", "ignore"))
                break
            seen_bytes += size
        batch.append(text)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _never_inside_word(c: str) -> bool:
    """Whitespace, punctuation and CJK characters: BERT pre-tokenisation makes them words alone."""
    cp = ord(c)
    if c.isspace() or 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    cjk = (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2FA1F), (0xF900, 0xFAFF)
    return unicodedata.category(c).startswith("P") or any(lo <= cp <= hi for lo, hi in cjk)


def train_tokenizer(
    texts: Iterable[str] | Any,
    vocab_size: int,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    lowercase: bool = True,
    min_frequency: int = 2,
    text_field: str = "text",
    max_bytes: int | None = None,
    max_documents: int | None = None,
    batch_size: int = 1000,
    model_max_length: int | None = None,
) -> PreTrainedTokenizerFast:
    """Train a BERT-style WordPiece vocabulary and wrap it as a `transformers` fast tokenizer.

    Called once at the start of a run that asks for a fresh vocabulary. The special tokens
    are ``[PAD] [UNK] [CLS] [SEP] [MASK]`` with ids 0-4; single texts encode as
    ``[CLS] a [SEP]``, pairs as ``[CLS] a [SEP] b [SEP]`` with token types 0/1.

    Args:
        texts: an iterable of strings or a ``datasets.Dataset`` (read in batches).
        vocab_size: target vocabulary size, special tokens included (from the recipe).
        out_dir: if given, the tokenizer is saved there with ``save_pretrained``, atomically
            (written to a temporary sibling folder, then renamed into place).
        lowercase: BERT "uncased" normalisation (lower-case, strip accents).
        min_frequency: pairs seen fewer times are not merged.
        text_field: the column to read when ``texts`` is a Dataset.
        max_bytes, max_documents: train on a prefix of the corpus only (CPU-sized runs).
        batch_size: texts handed to the trainer at a time.
        model_max_length: the longest input the models take (saved with the tokenizer;
            None: transformers' "no limit").

    Returns:
        The tokenizer; ``len(tokenizer)`` may be below ``vocab_size`` on a tiny corpus.
    """
    from tokenizers import trainers

    if vocab_size < len(SPECIAL_TOKENS) + 1:
        raise NasplugError(f"tokenizer.vocab_size: {vocab_size} is too small; use at least 100")
    if iter(texts) is texts:  # a one-shot iterator: we read the texts twice
        texts = list(texts)

    def batches() -> Iterator[list[str]]:
        return _text_batches(texts, text_field, batch_size, max_bytes, max_documents)

    # `tokenizers` numbers the "##c" tokens in hash-map order, which breaks ties between
    # equally frequent merges differently from run to run (huggingface/tokenizers#1794).
    # Registering every possible "##c" up front, sorted, makes training deterministic.
    trained = _bert_wordpiece(lowercase)
    chars: set[str] = set()
    for batch in batches():
        for text in batch:
            chars.update(trained.normalizer.normalize_str(text))
    continuing = ["##" + c for c in sorted(chars) if not _never_inside_word(c)]
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[*SPECIAL_TOKENS, *continuing],
        show_progress=False,
    )
    trained.train_from_iterator(batches(), trainer=trainer)
    if trained.get_vocab_size() <= len(SPECIAL_TOKENS) + len(continuing):
        raise NasplugError("tokenizer: the training corpus is empty; no vocabulary could be learned")
    hf = _fast_tokenizer(trained.get_vocab(with_added_tokens=False), lowercase, model_max_length)
    log.info("trained a WordPiece tokenizer: %d tokens (asked for %d)", len(hf), vocab_size)
    if out_dir is not None:
        save_tokenizer(hf, out_dir)
    return hf


def _bert_wordpiece(lowercase: bool) -> Any:
    """An empty WordPiece ``tokenizers.Tokenizer`` with BERT's normaliser and pre-tokeniser."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordPiece(unk_token=UNK))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)  # accents stripped iff lower-cased
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def _fast_tokenizer(vocab: dict[str, int], lowercase: bool, model_max_length: int | None) -> PreTrainedTokenizerFast:
    """The learned vocabulary as a BERT tokenizer (``[CLS] a [SEP] b [SEP]``), wrapped for
    ``transformers``; rebuilt so only the five real special tokens are special."""
    from tokenizers import decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    tok = _bert_wordpiece(lowercase)
    tok.model = models.WordPiece(vocab, unk_token=UNK)
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tok.token_to_id(CLS), tok.token_to_id(SEP)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}",
        pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, cls_id), (SEP, sep_id)],
    )
    limit = {} if model_max_length is None else {"model_max_length": model_max_length}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=UNK, pad_token=PAD, cls_token=CLS, sep_token=SEP, mask_token=MASK,
        model_input_names=list(MODEL_INPUT_NAMES), **limit,
    )


def tokenizer_from_vocab(vocab_file: str | os.PathLike[str], lowercase: bool = True,
                         model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """A BERT WordPiece tokenizer from a ``vocab.txt`` (one token per line, id = line number),
    e.g. the vocabulary of a released checkpoint. Same pipeline and outputs as
    :func:`train_tokenizer` (segment ids for pairs); NasplugError when a special token is missing."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    try:
        tok = Tokenizer(models.WordPiece.from_file(str(vocab_file), unk_token=UNK))
    except Exception as exc:  # tokenizers raises its own exception type
        raise NasplugError(f"vocab: cannot read {vocab_file}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    missing = [t for t in SPECIAL_TOKENS if tok.token_to_id(t) is None]
    if missing:
        raise NasplugError(f"vocab: {vocab_file} lacks {', '.join(missing)}; expected a BERT vocab.txt")
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A {SEP}", pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
        special_tokens=[(CLS, tok.token_to_id(CLS)), (SEP, tok.token_to_id(SEP))],
    )
    limit = {} if model_max_length is None else {"model_max_length": model_max_length}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token=UNK, pad_token=PAD, cls_token=CLS, sep_token=SEP, mask_token=MASK,
        model_input_names=list(MODEL_INPUT_NAMES), **limit,
    )


def _staged(tokenizer: PreTrainedTokenizerBase, out: Path) -> Path:
    """``tokenizer`` saved and fsynced into a fresh temporary folder beside ``out`` (removed
    again if saving fails); the caller renames it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, prefix=f".{out.name}.tmp-")
    try:
        tokenizer.save_pretrained(str(tmp))
        as_bert_folder(tmp)
        _fsync_tree(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


#: What transformers writes for a tokenizer built from a ``tokenizers`` object (4.x, 5.x).
_GENERIC_CLASSES = ("PreTrainedTokenizerFast", "TokenizersBackend")


def as_bert_folder(folder: str | os.PathLike[str]) -> None:
    """Make a saved BERT WordPiece tokenizer (``tokenizer.json``) a standard ``BertTokenizerFast``
    folder: that class in ``tokenizer_config.json`` (with ``do_lower_case``) and a ``vocab.txt``,
    so ``BertTokenizerFast`` / ``AutoTokenizer`` load it with no custom code and no guess (the
    same encodings: ``tokenizer.json`` is unchanged). Other tokenizers are left as saved.
    Called on every tokenizer nasplug saves and on the copy an exported model folder gets."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    config_path, backend_path = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not (config_path.is_file() and backend_path.is_file()):
        return
    config = json.loads(config_path.read_text(encoding="utf-8"))
    backend = Tokenizer.from_file(str(backend_path))
    vocab = backend.get_vocab(with_added_tokens=True)
    if (config.get("tokenizer_class") not in _GENERIC_CLASSES or type(backend.model).__name__ != "WordPiece"
            or sorted(vocab.values()) != list(range(len(vocab)))):
        return
    normalizer = json.loads(backend.to_str()).get("normalizer") or {}
    config.update(tokenizer_class="BertTokenizerFast", do_lower_case=bool(normalizer.get("lowercase", True)))
    atomic_write_text(folder / "vocab.txt", "".join(f"{t}\n" for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])))
    atomic_write_text(config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, out_dir: str | os.PathLike[str]) -> Path:
    """``save_pretrained`` into ``out_dir`` atomically: a crash never leaves half a tokenizer.

    An existing ``out_dir`` is replaced.
    """
    out = Path(out_dir)
    tmp = _staged(tokenizer, out)
    try:
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    fsync_dir(out.parent)
    log.info("saved tokenizer to %s", out)
    return out


def publish_tokenizer(tokenizer: PreTrainedTokenizerBase, out_dir: str | os.PathLike[str]) -> Path:
    """Save into a content-addressed cache folder that is created once and never replaced.

    The tokenizer is written and fsynced under a temporary name, then renamed to ``out_dir``:
    once the folder exists it is complete, and it never disappears. When another process
    published the same folder first, this copy is dropped.
    """
    out = Path(out_dir)
    tmp = _staged(tokenizer, out)
    try:
        try:
            os.rename(tmp, out)  # fails when ``out`` exists (and is not empty): keep the first
        except OSError:
            if not (out / "tokenizer.json").is_file():
                raise
        fsync_dir(out.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def with_max_length(tokenizer: PreTrainedTokenizerBase, max_length: int) -> PreTrainedTokenizerBase:
    """Set ``model_max_length`` (saved with the tokenizer) and make sure segment ids are among
    its outputs; returns the same tokenizer."""
    tokenizer.model_max_length = max_length
    names = list(tokenizer.model_input_names)
    if "token_type_ids" not in names:
        names.insert(1, "token_type_ids")
        tokenizer.model_input_names = names
        tokenizer.init_kwargs["model_input_names"] = names
    return tokenizer


def _fsync_tree(folder: Path) -> None:
    """fsync every file of ``folder`` and the folder itself (before it is renamed into place)."""
    for path in folder.iterdir():
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(folder)


def load_tokenizer(name_or_path: str | os.PathLike[str]) -> PreTrainedTokenizerFast:
    """Load a fast tokenizer from a folder written by :func:`train_tokenizer` or a hub name.

    Called when a run reuses a tokenizer. Offline, a hub name must already be in the local
    Hugging Face cache. Raises NasplugError naming ``name_or_path`` when it cannot be loaded,
    is not a fast tokenizer, or lacks a special token MLM needs.
    """
    from transformers import AutoTokenizer

    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    looks_local = path.is_absolute() or name.startswith((".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise NasplugError(f"tokenizer: {name!r} is not a folder (expected one written by save_pretrained)")
    try:
        tok = AutoTokenizer.from_pretrained(str(path) if looks_local else name)
    except Exception as e:  # transformers raises OSError, ValueError, HTTP errors, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NasplugError(f"tokenizer: cannot load {name!r}: {first}") from e
    if not getattr(tok, "is_fast", False):
        raise NasplugError(f"tokenizer: {name!r} is not a fast (Rust `tokenizers`) tokenizer")
    token_info(tok)  # fail now, with the tokenizer's name in view, if MLM tokens are missing
    return tok
