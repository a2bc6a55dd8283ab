"""A text task's data for one run: the tokenizer (in the run directory) and packed rows (cached).

Called by :meth:`nasplug.text.tasks.TextTask.prepare`, once per run and process. Both costly
parts are cached under ``env.cache_dir`` (``$NASPLUG_CACHE``, default ``~/.cache/nasplug``):
a trained vocabulary under ``tokenizers/`` keyed by the corpus fingerprint and the tokenizer
settings, packed rows under ``packed/`` keyed by corpus, tokenizer, length and packing, so a
second run neither retrains the vocabulary nor re-tokenises. The run keeps its own copy of
the tokenizer in ``run_dir/tokenizer`` (with ``model_max_length`` = the row length), which
later stages (GLUE) and users load with ``AutoTokenizer``. Under torchrun the pipeline lets
rank 0 prepare first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from nasplug.task import TaskEnv

log = logging.getLogger(__name__)

#: Part of the vocabulary cache key: bump when training a vocabulary changes.
TOKENIZER_CACHE_VERSION = 1
#: Settings that change the masking only: one run's tasks share rows whatever they are.
_MASKING_KEYS = {"mask_prob", "masking", "max_predictions"}

#: (run dir, data settings) -> (tokenizer, data) built in this process: an MLM supernet and
#: ELECTRA retraining of one run share the same rows instead of holding two copies.
_BUILT: dict[tuple[str, str], tuple[Any, Any]] = {}


def cache_root(cache_dir: str | None, env: TaskEnv) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else env.cache_dir


def prepare_text(cfg: Any, env: TaskEnv) -> tuple[Any, Any]:
    """``(tokenizer, PackedData)`` of a :class:`~nasplug.text.config.TextConfig` for a run."""
    from nasplug.text.packing import build_dataset

    key = (str(env.run_dir.resolve()), cfg.model_dump_json(exclude=_MASKING_KEYS))
    if key in _BUILT:
        return _BUILT[key]
    tokenizer = _tokenizer(cfg, env)
    cache = cache_root(cfg.cache_dir, env)
    data = build_dataset(cfg.corpus, tokenizer, cfg.seq_len, cache / "packed", packing=cfg.packing,
                         datasets_cache_dir=cache / "datasets", split_sentences=cfg.split_sentences)
    log.info("data: %d train rows, %d held-out rows of %d tokens", len(data.train), len(data.heldout), cfg.seq_len)
    _BUILT.clear()  # keep one run's data at a time
    _BUILT[key] = tokenizer, data
    return tokenizer, data


def tokenizer_cache_key(cfg: Any) -> str:
    """The vocabulary cache key of a text config: corpus fingerprint + tokenizer settings."""
    from nasplug.text.corpus import corpus_fingerprint

    settings = cfg.tokenizer.model_dump(exclude={"pretrained"})
    ident = [TOKENIZER_CACHE_VERSION, corpus_fingerprint(cfg.corpus), settings]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()


def _tokenizer(cfg: Any, env: TaskEnv) -> Any:
    """The run's tokenizer: the run's own copy, else a pretrained one, else the cached (or
    newly trained and cached) vocabulary; copied into ``run_dir/tokenizer``."""
    from nasplug.layout import RunLayout
    from nasplug.text.tokenizer import load_tokenizer, save_tokenizer, with_max_length

    folder = RunLayout(env.run_dir).tokenizer
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(folder)
    if cfg.tokenizer.pretrained:
        tokenizer = load_tokenizer(cfg.tokenizer.pretrained)
        save_tokenizer(tokenizer, folder)
        return tokenizer
    tokenizer = with_max_length(_trained_vocabulary(cfg, env), cfg.seq_len)
    save_tokenizer(tokenizer, folder)
    return tokenizer


def _trained_vocabulary(cfg: Any, env: TaskEnv) -> Any:
    """The WordPiece vocabulary of the corpus, from the cache or trained and cached once."""
    from nasplug.text.corpus import load_documents, split_heldout
    from nasplug.text.tokenizer import load_tokenizer, publish_tokenizer, train_tokenizer

    root = cache_root(cfg.cache_dir, env)
    cached = root / "tokenizers" / tokenizer_cache_key(cfg)[:24]
    if (cached / "tokenizer.json").is_file():
        log.info("loaded the WordPiece vocabulary from cache %s", cached)
        return load_tokenizer(cached)
    docs = load_documents(cfg.corpus, cache_dir=root / "datasets")
    train_docs, _ = split_heldout(docs, cfg.corpus.heldout_fraction, cfg.corpus.seed)  # no held-out text in the vocab
    log.info("training a WordPiece vocabulary of %d on %d documents", cfg.tokenizer.vocab_size, len(train_docs))
    tokenizer = train_tokenizer(train_docs, cfg.tokenizer.vocab_size, lowercase=cfg.tokenizer.lowercase,
                                min_frequency=cfg.tokenizer.min_frequency, max_bytes=cfg.tokenizer.max_bytes)
    publish_tokenizer(tokenizer, cached)
    log.info("cached the WordPiece vocabulary at %s", cached)
    return tokenizer
