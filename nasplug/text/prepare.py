"""A text task's data for one run: the tokenizer (in the run directory) and packed rows (cached).

Called by :meth:`nasplug.text.tasks.TextTask.prepare`, once per run and process. The
tokenizer is trained once per run directory; packed rows are cached under ``env.cache_dir``
(``$NASPLUG_CACHE``, default ``~/.cache/nasplug``) keyed by corpus, tokenizer and length, so
a second run starts at once. Under torchrun the pipeline lets rank 0 prepare first.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nasplug.task import TaskEnv

log = logging.getLogger(__name__)

#: (run dir, data settings) -> (tokenizer, data) built in this process: an MLM supernet and
#: ELECTRA retraining of one run share the same rows instead of holding two copies.
_BUILT: dict[tuple[str, str], tuple[Any, Any]] = {}


def cache_root(cache_dir: str | None, env: TaskEnv) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else env.cache_dir


def prepare_text(cfg: Any, env: TaskEnv) -> tuple[Any, Any]:
    """``(tokenizer, PackedData)`` of a :class:`~nasplug.text.tasks.TextConfig` for a run."""
    from nasplug.text.packing import build_dataset

    key = (str(env.run_dir.resolve()), cfg.model_dump_json(exclude={"mask_prob"}))
    if key in _BUILT:
        return _BUILT[key]
    tokenizer = _tokenizer(cfg, env)
    cache = cache_root(cfg.cache_dir, env)
    data = build_dataset(cfg.corpus, tokenizer, cfg.seq_len, cache / "packed", packing=cfg.packing,
                         datasets_cache_dir=cache / "datasets")
    log.info("data: %d train rows, %d held-out rows of %d tokens", len(data.train), len(data.heldout), cfg.seq_len)
    _BUILT.clear()  # keep one run's data at a time
    _BUILT[key] = tokenizer, data
    return tokenizer, data


def _tokenizer(cfg: Any, env: TaskEnv) -> Any:
    from nasplug.text.corpus import load_documents, split_heldout
    from nasplug.text.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    folder = env.run_dir / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(folder)
    if cfg.tokenizer.pretrained:
        tokenizer = load_tokenizer(cfg.tokenizer.pretrained)
        save_tokenizer(tokenizer, folder)
        return tokenizer
    docs = load_documents(cfg.corpus, cache_dir=cache_root(cfg.cache_dir, env) / "datasets")
    train_docs, _ = split_heldout(docs, cfg.corpus.heldout_fraction, cfg.corpus.seed)  # no held-out text in the vocab
    log.info("training a WordPiece vocabulary of %d on %d documents", cfg.tokenizer.vocab_size, len(train_docs))
    return train_tokenizer(train_docs, cfg.tokenizer.vocab_size, folder, lowercase=cfg.tokenizer.lowercase,
                           min_frequency=cfg.tokenizer.min_frequency, max_bytes=cfg.tokenizer.max_bytes)
