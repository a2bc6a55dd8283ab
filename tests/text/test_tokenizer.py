"""WordPiece training on a real slice, save/load round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasplug.errors import NasplugError
from nasplug.text.corpus import CorpusConfig, load_documents
from nasplug.text.tokenizer import (
    SPECIAL_TOKENS,
    load_tokenizer,
    token_info,
    tokenizer_hash,
    train_tokenizer,
)

TEXT = "The Quick brown fox, Robert Boulter, starred in 2000."


@pytest.fixture(scope="module")
def docs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    # Module fixtures run before conftest's per-test offline switch, and huggingface_hub
    # reads it when first imported: switch it on here too.
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
            mp.setenv(var, "1")
        cfg = CorpusConfig(source=str(shared_data / "wikitext-2-raw" / "wiki.test.raw"), max_bytes=300_000)
        return load_documents(cfg, cache_dir=tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def trained(docs, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("run") / "tokenizer"
    return train_tokenizer(docs, vocab_size=1000, out_dir=out), out


def test_trained_tokenizer_is_bert_style(trained) -> None:
    tok, _ = trained
    assert len(tok) == 1000
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == list(SPECIAL_TOKENS)
    ids = tok(TEXT)["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.decode(ids, skip_special_tokens=True).startswith("the quick brown fox")  # lower-cased
    info = token_info(tok)
    assert (info.pad_id, info.unk_id, info.cls_id, info.sep_id, info.mask_id) == (0, 1, 2, 3, 4)
    assert set(info.special_ids) == {0, 1, 2, 3, 4} and info.vocab_size == 1000


def test_save_load_round_trip(trained) -> None:
    tok, out = trained
    assert (out / "tokenizer.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    again = load_tokenizer(out)
    assert again(TEXT)["input_ids"] == tok(TEXT)["input_ids"]
    assert tokenizer_hash(again) == tokenizer_hash(tok)
    assert token_info(again) == token_info(tok)


def test_same_corpus_same_vocab_and_slices(docs, trained) -> None:
    tok, _ = trained
    for _ in range(3):  # upstream `tokenizers` alone differs run to run (tokenizers#1794)
        assert tokenizer_hash(train_tokenizer(iter(docs["text"]), vocab_size=1000)) == tokenizer_hash(tok)
    small = train_tokenizer(docs, vocab_size=1000, max_documents=3)
    assert tokenizer_hash(small) != tokenizer_hash(tok)
    assert len(train_tokenizer(list(docs["text"]), vocab_size=1000, max_bytes=2_000)) < 1000


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(NasplugError, match="empty"):
        train_tokenizer([], vocab_size=500)
    with pytest.raises(NasplugError, match="vocab_size"):
        train_tokenizer(["a b c"], vocab_size=3)
    missing = tmp_path / "no_tokenizer_here"
    with pytest.raises(NasplugError, match=str(missing)):
        load_tokenizer(missing)
    with pytest.raises(NasplugError, match="not-a-real-org/not-a-tokenizer"):
        load_tokenizer("not-a-real-org/not-a-tokenizer")  # offline in tests


def test_tokenizer_without_mask_token_is_rejected() -> None:
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    with pytest.raises(NasplugError, match="mask"):
        token_info(tok)
