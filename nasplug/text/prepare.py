"""Pre-training data for the stages: tokenizer (in the run directory) and packed rows (cached).

Called by every stage that needs data (supernet, search evaluator, retrain, GLUE); the first
call builds, later calls in the same process reuse ``ctx.extras``. The tokenizer is trained
once per run directory; packed rows are cached under ``$NASPLUG_CACHE`` (default
``~/.cache/nasplug``) keyed by corpus, tokenizer and length, so a second run starts at once.
Under torchrun rank 0 builds first while the other ranks wait, then they load.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError
from nasplug.pipeline import RunContext

log = logging.getLogger(__name__)


def cache_root(cache_dir: str | None) -> Path:
    return Path(cache_dir or os.environ.get("NASPLUG_CACHE") or Path.home() / ".cache" / "nasplug").expanduser()


def prepare_data(ctx: RunContext) -> Any:
    """The run's ``PackedData`` (train / heldout rows and token ids), built once."""
    if "data" in ctx.extras:
        return ctx.extras["data"]
    cfg = ctx.recipe.data
    if cfg is None:
        raise NasplugError("data: this recipe needs a data section (corpus, tokenizer, seq_len)")
    from nasplug import distributed

    info = distributed.init()
    if not info.is_main:
        distributed.barrier()  # rank 0 trains the tokenizer and fills the cache first
    tokenizer = _tokenizer(ctx)
    from nasplug.text.packing import build_dataset

    cache = cache_root(cfg.cache_dir)
    data = build_dataset(cfg.corpus, tokenizer, cfg.seq_len, cache / "packed", packing=cfg.packing,
                         datasets_cache_dir=cache / "datasets")
    if info.is_main:
        distributed.barrier()
    _check_vocab(ctx, data)
    ctx.extras["tokenizer"], ctx.extras["data"] = tokenizer, data
    log.info("data: %d train rows, %d held-out rows of %d tokens", len(data.train), len(data.heldout), cfg.seq_len)
    return data


def _tokenizer(ctx: RunContext) -> Any:
    from nasplug.text.corpus import load_documents, split_heldout
    from nasplug.text.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer

    cfg = ctx.recipe.data
    assert cfg is not None
    folder = ctx.run_dir / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return load_tokenizer(folder)
    if cfg.tokenizer.pretrained:
        tokenizer = load_tokenizer(cfg.tokenizer.pretrained)
        save_tokenizer(tokenizer, folder)
        return tokenizer
    docs = load_documents(cfg.corpus, cache_dir=cache_root(cfg.cache_dir) / "datasets")
    train_docs, _ = split_heldout(docs, cfg.corpus.heldout_fraction, cfg.corpus.seed)  # no held-out text in the vocab
    log.info("training a WordPiece vocabulary of %d on %d documents", cfg.tokenizer.vocab_size, len(train_docs))
    return train_tokenizer(train_docs, cfg.tokenizer.vocab_size, folder, lowercase=cfg.tokenizer.lowercase,
                           min_frequency=cfg.tokenizer.min_frequency, max_bytes=cfg.tokenizer.max_bytes)


def _check_vocab(ctx: RunContext, data: Any) -> None:
    """The model's embedding table must cover every token id the tokenizer produces."""
    model_vocab = getattr(ctx.space, "vocab_size", None) or getattr(getattr(ctx.space, "dims", None), "vocab_size", None)
    if model_vocab is not None and data.tokens.vocab_size > model_vocab:
        raise NasplugError(
            f"space.vocab_size: {model_vocab} is smaller than the tokenizer's vocabulary ({data.tokens.vocab_size}); "
            f"set space.vocab_size to at least {data.tokens.vocab_size}"
        )
