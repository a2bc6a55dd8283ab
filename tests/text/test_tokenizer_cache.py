"""The tokenizer a run saves (AutoTokenizer, segment ids for pairs, a length limit) and the
vocabulary cache that spares a second run from training it again."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from nasplug.task import TaskEnv
from nasplug.text import prepare
from nasplug.text.tasks import TextConfig


def settings() -> TextConfig:
    return TextConfig.model_validate(
        {
            "corpus": {"source": "synthetic", "synthetic_documents": 60, "heldout_fraction": 0.1},
            "tokenizer": {"vocab_size": 200},
            "seq_len": 24,
            "packing": "electra",
        }
    )


def test_saved_tokenizer_loads_with_autotokenizer_and_gives_segment_ids(tmp_path: Path):
    prepare._BUILT.clear()
    env = TaskEnv(run_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    prepare.prepare_text(settings(), env)
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "run" / "tokenizer"))
    assert "token_type_ids" in tok.model_input_names and tok.model_max_length == 24
    enc = tok("the first sentence", "and the second one")
    types = enc["token_type_ids"]
    sep = tok.sep_token_id
    first_sep = enc["input_ids"].index(sep)
    assert set(types[: first_sep + 1]) == {0} and set(types[first_sep + 1 :]) == {1}
    batch = tok(["a b", "c"], ["d", "e f"], padding=True)
    assert all(1 in row for row in batch["token_type_ids"])


def test_a_second_run_reuses_the_cached_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    prepare._BUILT.clear()
    cache = tmp_path / "cache"
    first_tok, first = prepare.prepare_text(settings(), TaskEnv(run_dir=tmp_path / "a", cache_dir=cache))
    cached = list((cache / "tokenizers").iterdir())
    assert len(cached) == 1 and (cached[0] / "tokenizer.json").is_file()
    assert not [p for p in (cache / "tokenizers").iterdir() if p.name.startswith(".")]  # no temporary folder left

    def no_training(*args, **kwargs):
        raise AssertionError("the vocabulary was trained again")

    monkeypatch.setattr("nasplug.text.tokenizer.train_tokenizer", no_training)
    prepare._BUILT.clear()
    second_tok, second = prepare.prepare_text(settings(), TaskEnv(run_dir=tmp_path / "b", cache_dir=cache))
    assert second_tok.get_vocab() == first_tok.get_vocab()
    assert (tmp_path / "b" / "tokenizer" / "tokenizer.json").is_file()
    assert (second.train == first.train).all()
    other = settings().model_copy(update={"tokenizer": settings().tokenizer.model_copy(update={"vocab_size": 150})})
    assert prepare.tokenizer_cache_key(other) != prepare.tokenizer_cache_key(settings())
    prepare._BUILT.clear()
