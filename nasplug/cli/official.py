"""``nasplug import-official``: released LV-BERT / ELECTRA checkpoints to Hugging Face folders."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from nasplug.errors import NasplugError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    imp = sub.add_parser("import-official", parents=[common],
                         help="convert a released LV-BERT / ELECTRA TF checkpoint into Hugging Face folders")
    imp.add_argument("checkpoint", help="checkpoint prefix (.../model.ckpt-1000000), its .index file, or its folder")
    imp.add_argument(
        "--out", required=True, help="output folder: discriminator/, generator/, tokenizer/, conversion.json"
    )
    imp.add_argument("--layers", help="expected layer sequence (letters or the official int list); checked")
    imp.add_argument("--vocab", help="the checkpoint's vocab.txt (default: vocab.txt beside the checkpoint, if any)")
    imp.add_argument("--conv-sees-padding", action="store_true",
                     help="let the convolutions see padding, as the official code (reproduces its padded outputs)")
    imp.add_argument("--overwrite", action="store_true", help="replace existing output folders")
    imp.add_argument("--base-model", metavar="REPO",
                     help="the Hub repository the checkpoint was downloaded from (e.g. whyu/LV-BERT_models), "
                          "named as base_model in the model cards")


def cmd_import_official(args: argparse.Namespace) -> int:
    from nasplug.spaces.lvbert.official import import_official
    from nasplug.text.tokenizer import save_tokenizer, tokenizer_from_vocab, with_max_length

    if args.base_model is not None and not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", args.base_model):
        raise NasplugError(f"--base-model: {args.base_model!r} is not a Hub repository name (owner/name)")
    vocab = _vocab_file(args.checkpoint, args.vocab)
    # Read the vocabulary first: a bad one fails before anything is written.
    tokenizer = None if vocab is None else tokenizer_from_vocab(vocab, lowercase=True)  # BERT uncased, as released
    report = import_official(args.checkpoint, args.out, layers=args.layers, conv_sees_padding=args.conv_sees_padding,
                             overwrite=args.overwrite, base_model=args.base_model)
    if tokenizer is not None:
        config = json.loads((Path(args.out) / "discriminator" / "config.json").read_text())
        if len(tokenizer) > int(config["vocab_size"]):
            raise NasplugError(f"--vocab: {vocab} has {len(tokenizer)} tokens, the checkpoint {config['vocab_size']}")
        saved = save_tokenizer(with_max_length(tokenizer, int(config["max_position_embeddings"])),
                               Path(args.out) / "tokenizer")
        for role in ("discriminator", "generator"):  # each folder loads with AutoTokenizer too
            if role in report:
                _copy_files(saved, Path(report[role]))
    print(f"converted {report['checkpoint']} (step {report['step']}): layers {report['layers']}")
    for role in ("discriminator", "generator"):
        if role in report:
            print(f"  {role}: {report[role]}")
    if vocab is not None:
        print(f"  tokenizer: {Path(args.out) / 'tokenizer'} (from {vocab})")
    return 0


def _copy_files(source: Path, folder: Path) -> None:
    from nasplug.io import atomic_write

    for path in sorted(source.iterdir()):
        if path.is_file():
            data = path.read_bytes()
            atomic_write(folder / path.name, lambda fh, data=data: fh.write(data))


def _vocab_file(checkpoint: str, vocab: str | None) -> Path | None:
    """The vocab.txt to save as the tokenizer: given, or found beside the checkpoint."""
    if vocab is not None:
        path = Path(vocab).expanduser()
        if not path.is_file():
            raise NasplugError(f"--vocab: {path} is not a file (expected the checkpoint's vocab.txt)")
        return path
    where = Path(checkpoint).expanduser()
    folder = where if where.is_dir() else where.parent
    found = folder / "vocab.txt"
    return found if found.is_file() else None
