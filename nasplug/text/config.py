"""The settings of a text task (recipe ``task:``): the corpus, the tokenizer, the row length,
masking. Validated strictly: ``seq_len: "32"`` or ``true`` is an error, not a guess."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nasplug.text.corpus import CorpusConfig


class TokenizerConfig(BaseModel):
    """Train a WordPiece vocabulary on the corpus, or load a pretrained tokenizer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    vocab_size: int = Field(8192, ge=32, le=1_000_000)
    pretrained: str | None = None  # a hub name or a folder; skips training
    max_bytes: int | None = Field(50_000_000, ge=1, le=10**12)  # train the vocabulary on this much text
    lowercase: bool = True
    min_frequency: int = Field(2, ge=1, le=10**9)


class TextConfig(BaseModel):
    """The settings of a text task: the corpus, the tokenizer, the row length, masking."""

    # strict: `seq_len: "32"` or `true` is an error, not a guess; sizes have upper bounds
    model_config = ConfigDict(extra="forbid", strict=True)

    corpus: CorpusConfig = Field(default_factory=CorpusConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    seq_len: int = Field(128, ge=8, le=65_536)
    packing: Literal["stream", "document", "electra"] = "stream"
    #: electra packing: cut the corpus lines into sentences first (paragraph-per-line corpora)
    split_sentences: bool = False
    cache_dir: str | None = None  # default: $NASPLUG_CACHE or ~/.cache/nasplug
    mask_prob: float = Field(0.15, gt=0, le=1, allow_inf_nan=False)
    #: bert: Bernoulli(mask_prob) picks; electra: the official fixed count (see masking.py).
    #: None: the task's default (mlm: bert, electra: electra).
    masking: Literal["bert", "electra"] | None = None
    #: electra masking's cap per row (None: int((mask_prob + 0.005) * seq_len), 19 at 128).
    max_predictions: int | None = Field(None, ge=1, le=65_536)
    #: the corpus's language (an ISO 639 code) for the cards of exported models; None: not stated
    language: str | None = Field("en", pattern=r"^[a-z]{2,3}$")
