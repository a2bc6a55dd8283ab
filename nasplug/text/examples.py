"""The official ELECTRA / LV-BERT pre-training example builder (``packing: electra``).

A faithful, seeded port of ``ExampleBuilder`` in ELECTRA's ``build_pretraining_dataset.py``,
which LV-BERT uses unchanged (LVBERT.md, "Pre-training examples"). Called by
:func:`nasplug.text.packing.build_dataset` on a cache miss, once per split:

* lines ("sentences") of a document are accumulated until they hold ``target`` tokens;
  the end of a document closes the current example early;
* with probability 0.9 the example has two segments ``[CLS] A [SEP] B [SEP]`` (segment ids
  0 then 1): a line goes to A while A is empty or stays under ``(target - 3) // 2`` tokens,
  or 50% of the time when it would overflow A and B is still empty; else one segment;
* A is cut to ``L - 2`` tokens and B to what is left (``L - len(A) - 3``); the rest of an
  accumulated line is dropped, as in the official code;
* after each example the next target is ``L``, or 5% of the time a random length in [5, L].

Every random draw comes from one ``random.Random(seed)`` in the official order, so the same
token stream and seed give the same rows on every run and machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from nasplug.text.tokenizer import TokenInfo

#: Marks the end of a document in the line stream given to :func:`build_examples`.
DOC_END = None


class ExampleBuilder:
    """Accumulates tokenised lines and emits ``(first, second)`` segment pairs.

    Args:
        max_length: row length L, special tokens included.
        rng: the only source of randomness (official: Python's ``random``).
    """

    def __init__(self, max_length: int, rng: random.Random) -> None:
        self.max_length = max_length
        self.target_length = max_length
        self.rng = rng
        self.sentences: list[Sequence[int]] = []
        self.length = 0

    def add_line(self, ids: Sequence[int] | None) -> tuple[list[int], list[int]] | None:
        """Add one line's ids (None: a blank line or the end of a document, which closes the
        current example); returns an example when one is complete."""
        if ids is None:
            return self.flush()
        self.sentences.append(ids)
        self.length += len(ids)
        if self.length >= self.target_length:
            return self._create()
        return None

    def flush(self) -> tuple[list[int], list[int]] | None:
        """Close the current example at a document boundary (None when it is empty)."""
        return self._create() if self.length != 0 else None

    def _create(self) -> tuple[list[int], list[int]]:
        rng = self.rng
        # A small chance of one segment only, as in classification tasks.
        first_target = 100_000 if rng.random() < 0.1 else (self.target_length - 3) // 2
        first: list[int] = []
        second: list[int] = []
        for sentence in self.sentences:
            # Same expression order as the official code: the 50% draw happens only when the
            # earlier conditions fail, which keeps the random stream identical.
            if (len(first) == 0 or len(first) + len(sentence) < first_target
                    or (len(second) == 0 and len(first) < first_target and rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        first = first[: self.max_length - 2]
        second = second[: max(0, self.max_length - len(first) - 3)]
        self.sentences, self.length = [], 0
        # A small chance of a random-length example next (official: 5%, length in [5, L]).
        self.target_length = rng.randint(5, self.max_length) if rng.random() < 0.05 else self.max_length
        return first, second


def build_examples(lines: Iterable[Sequence[int] | None], seq_len: int, tokens: TokenInfo,
                   seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and segment ids of the official builder over a stream of tokenised lines.

    Args:
        lines: token ids per line, in corpus order; ``None`` (:data:`DOC_END`, also given
            for a blank line) ends a document. A non-blank line with no tokens is kept
            (empty), as in the official code.
        seq_len: row length L.
        tokens: special ids ([CLS], [SEP], [PAD]).
        seed: seeds the builder's ``random.Random``.

    Returns:
        ``(rows, segments)``: int32 [N, L] ``[CLS] A [SEP] (B [SEP])`` padded with [PAD], and
        int8 [N, L] segment ids (0 for [CLS] A [SEP] and padding, 1 for B [SEP]).
    """
    builder = ExampleBuilder(seq_len, random.Random(seed))
    pairs: list[tuple[list[int], list[int]]] = []
    for ids in lines:
        example = builder.add_line(ids)
        if example is not None:
            pairs.append(example)
    last = builder.flush()
    if last is not None:
        pairs.append(last)
    rows = np.full((len(pairs), seq_len), tokens.pad_id, dtype=np.int32)
    segments = np.zeros((len(pairs), seq_len), dtype=np.int8)
    for r, (first, second) in enumerate(pairs):
        a = len(first)
        rows[r, 0] = tokens.cls_id
        rows[r, 1:1 + a] = first
        rows[r, 1 + a] = tokens.sep_id
        if second:  # [CLS] A [SEP] B [SEP]: B and its [SEP] are segment 1
            b = len(second)
            rows[r, 2 + a:2 + a + b] = second
            rows[r, 2 + a + b] = tokens.sep_id
            segments[r, 2 + a:3 + a + b] = 1
    return rows, segments


# A sentence ends at . ! or ? (and any closing quotes / brackets), before white space and a
# capital letter (or an opening quote before one). Abbreviations ("Mr. Smith") split too.
_SENTENCE_END = re.compile(r"""(?<=[.!?])["'\u201d\u2019)\]]*\s+(?=["'\u201c\u2018(\[]?[A-Z])""")


def split_sentences(line: str) -> list[str]:
    """A line cut into sentences (a light rule, no model): for corpora with one paragraph
    per line, so the builder's units are sentences as in BERT-format corpora."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        out.append(line[start:match.start()].strip() + line[match.start():match.end()].strip())
        start = match.end()
    out.append(line[start:].strip())
    return [s for s in out if s]


def line_stream(docs: Iterable[str], tokenize: Callable[[list[str]], list[Sequence[int]]], *,
                sentences: bool = False, batch_size: int = 2048) -> Iterable[Sequence[int] | None]:
    """Token ids per line of each document, then :data:`DOC_END` after each document.

    Documents are the corpus's (``corpus.document_by``); lines are stripped and blank lines
    inside a document are skipped, as the official builder does for OpenWebText
    (``blanks_separate_docs=False``); for BERT-format corpora, whose blank lines separate
    documents, ``document_by: paragraph`` already makes them the document boundaries.
    ``sentences``: cut every line into sentences first (:func:`split_sentences`).
    ``tokenize`` maps a list of strings to lists of ids (no special tokens); it is called on
    batches of lines.
    """
    pending: list[str | None] = []

    def drain() -> Iterable[Sequence[int] | None]:
        texts = [t for t in pending if t is not None]
        ids = iter(tokenize(texts) if texts else [])
        for t in pending:
            yield None if t is None else next(ids)
        pending.clear()

    for doc in docs:
        for line in doc.split("\n"):
            line = line.strip()
            if line:
                pending.extend(split_sentences(line) if sentences else [line])
        pending.append(DOC_END)
        if len(pending) >= batch_size:
            yield from drain()
    yield from drain()
