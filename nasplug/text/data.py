"""The pre-training data layer in one import: corpora, tokenizer, packing, batches, masking.

Typical use (what the training loop and the search evaluator do)::

    from nasplug.text import data

    cfg = data.CorpusConfig(source="corpus/wikipedia_en_2015", data_dir="../shared/data")
    docs = data.load_documents(cfg)
    tok = data.train_tokenizer(docs, vocab_size=8192, out_dir=run_dir / "tokenizer")
    packed = data.build_dataset(cfg, tok, seq_len=128, cache_dir=cache_dir)
    batches = data.BatchIterator(packed.train, batch_size=64, seed=0, rank=rank, world=world)
    gen = torch.Generator().manual_seed(seed)
    ids, labels = data.mask_tokens(next(batches), packed.tokens, gen)
    heldout = data.fixed_heldout_batches(packed.heldout, packed.tokens, 64, seed=0, num_batches=20)
    floor = data.unigram_baseline(packed.train, heldout, packed.tokens)

The code lives in small modules by role: ``corpus`` (loading, held-out split),
``synthetic`` (the no-network corpus), ``tokenizer``, ``packing`` (+ cache), ``batches``
and ``masking``.
"""

from __future__ import annotations

from nasplug.oneshot.batches import BatchIterator
from nasplug.text.corpus import CorpusConfig, corpus_fingerprint, load_documents, split_heldout
from nasplug.text.masking import (
    IGNORE_INDEX,
    MaskedBatch,
    SegmentedBatch,
    fixed_heldout_batches,
    mask_electra,
    mask_tokens,
    unigram_baseline,
)
from nasplug.text.packing import PackedData, build_dataset, cache_key, pack, tokenize_documents
from nasplug.text.synthetic import synthetic_corpus, write_synthetic_corpus
from nasplug.text.tokenizer import (
    SPECIAL_TOKENS,
    TokenInfo,
    load_tokenizer,
    save_tokenizer,
    token_info,
    tokenizer_hash,
    train_tokenizer,
)

__all__ = [
    "IGNORE_INDEX",
    "SPECIAL_TOKENS",
    "BatchIterator",
    "CorpusConfig",
    "MaskedBatch",
    "PackedData",
    "SegmentedBatch",
    "TokenInfo",
    "build_dataset",
    "cache_key",
    "corpus_fingerprint",
    "fixed_heldout_batches",
    "load_documents",
    "load_tokenizer",
    "mask_electra",
    "mask_tokens",
    "pack",
    "save_tokenizer",
    "split_heldout",
    "synthetic_corpus",
    "token_info",
    "tokenizer_hash",
    "train_tokenizer",
    "tokenize_documents",
    "unigram_baseline",
    "write_synthetic_corpus",
]
