"""A small English-like corpus generated from a built-in grammar: the no-network fallback.

Used when no corpus is configured (or ``synthetic_fallback`` is set and the configured one is
missing), by demos and by tests on a fresh machine. The text has structure an MLM can learn:
subject-verb agreement, determiner-number agreement, prepositional phrases and a topic per
document that fixes which nouns and verbs appear, so a masked word is predictable from its
context. Deterministic: same arguments, same text, on any machine.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

SYNTHETIC_VERSION = 1  # bump when the grammar changes: it is part of cache keys

# topic -> (nouns as (singular, plural), verbs as (3rd-sg present, plural present, past), places)
_TOPICS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str, str]], list[str]]] = {
    "farm": ([("farmer", "farmers"), ("horse", "horses"), ("cow", "cows"), ("field", "fields"),
              ("barn", "barns"), ("goat", "goats")],
             [("feeds", "feed", "fed"), ("plows", "plow", "plowed"), ("watches", "watch", "watched"),
              ("follows", "follow", "followed")],
             ["farm", "meadow", "valley", "orchard"]),
    "sea": ([("sailor", "sailors"), ("ship", "ships"), ("fish", "fish"), ("wave", "waves"),
             ("captain", "captains"), ("net", "nets")],
            [("sails", "sail", "sailed"), ("catches", "catch", "caught"), ("pulls", "pull", "pulled"),
             ("finds", "find", "found")],
            ["harbour", "island", "coast", "bay"]),
    "city": ([("driver", "drivers"), ("car", "cars"), ("merchant", "merchants"), ("street", "streets"),
              ("tower", "towers"), ("clerk", "clerks")],
             [("sells", "sell", "sold"), ("builds", "build", "built"), ("visits", "visit", "visited"),
              ("paints", "paint", "painted")],
             ["market", "station", "square", "bridge"]),
    "school": ([("teacher", "teachers"), ("student", "students"), ("book", "books"), ("lesson", "lessons"),
                ("pencil", "pencils"), ("letter", "letters")],
               [("reads", "read", "read"), ("writes", "write", "wrote"), ("studies", "study", "studied"),
                ("explains", "explain", "explained")],
               ["classroom", "library", "garden", "hall"]),
    "forest": ([("hunter", "hunters"), ("wolf", "wolves"), ("bird", "birds"), ("tree", "trees"),
                ("fox", "foxes"), ("river", "rivers")],
               [("chases", "chase", "chased"), ("hears", "hear", "heard"), ("crosses", "cross", "crossed"),
                ("hides", "hide", "hid")],
               ["forest", "hill", "cave", "lake"]),
    "kitchen": ([("cook", "cooks"), ("baker", "bakers"), ("bread", "breads"), ("pot", "pots"),
                 ("cake", "cakes"), ("guest", "guests")],
                [("bakes", "bake", "baked"), ("cuts", "cut", "cut"), ("serves", "serve", "served"),
                 ("carries", "carry", "carried")],
                ["kitchen", "inn", "cellar", "table"]),
}
_INTRANSITIVE = [("sleeps", "sleep", "slept"), ("waits", "wait", "waited"), ("sings", "sing", "sang"),
                 ("laughs", "laugh", "laughed"), ("rests", "rest", "rested")]
_ADJECTIVES = ["old", "young", "small", "large", "quiet", "busy", "happy", "tired", "brave", "clever",
               "red", "green", "dark", "bright"]
_ADVERBS = ["slowly", "quickly", "quietly", "often", "again", "early", "late"]
_PREPOSITIONS = ["near", "behind", "inside", "beside", "across", "above"]
_NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack"]
_NUMBERS = ["two", "three", "four", "five", "many", "several"]
_TIME = ["in the morning", "at night", "every day", "in the winter", "after dinner"]


def _noun_phrase(rng: random.Random, nouns: list[tuple[str, str]], plural: bool) -> str:
    sg, pl = rng.choice(nouns)
    adj = f"{rng.choice(_ADJECTIVES)} " if rng.random() < 0.4 else ""
    if plural:
        det = rng.choice(["the", "some", *_NUMBERS]) if rng.random() < 0.7 else "the"
        return f"{det} {adj}{pl}"
    det = rng.choice(["the", "a", "this", "that"])
    if det == "a" and (adj or sg)[0] in "aeiou":
        det = "an"
    return f"{det} {adj}{sg}"


def _sentence(rng: random.Random, topic: str) -> str:
    nouns, verbs, places = _TOPICS[topic]
    plural = rng.random() < 0.4
    past = rng.random() < 0.5
    if not plural and rng.random() < 0.2:
        subject = rng.choice(_NAMES)
    else:
        subject = _noun_phrase(rng, nouns, plural)
    if rng.random() < 0.25:
        forms = rng.choice(_INTRANSITIVE)
        verb = forms[2] if past else forms[1 if plural else 0]
        rest = rng.choice(_ADVERBS) if rng.random() < 0.5 else ""
    else:
        forms = rng.choice(verbs)
        verb = forms[2] if past else forms[1 if plural else 0]
        rest = _noun_phrase(rng, nouns, rng.random() < 0.4)
    words = [subject, verb, rest]
    if rng.random() < 0.5:
        words.append(f"{rng.choice(_PREPOSITIONS)} the {rng.choice(places)}")
    if rng.random() < 0.2:
        words.append(rng.choice(_TIME))
    text = " ".join(w for w in words if w)
    return text[0].upper() + text[1:] + "."


def synthetic_corpus(num_documents: int, seed: int = 0, sentences: tuple[int, int] = (4, 12)) -> list[str]:
    """Generate ``num_documents`` English-like documents from the built-in grammar.

    Each document has one topic and ``sentences`` (min, max) sentences, one per line.
    Deterministic in ``(num_documents, seed, sentences)``: a private ``random.Random(seed)``
    drives everything.
    """
    rng = random.Random(seed)
    topics = sorted(_TOPICS)
    docs = []
    for _ in range(num_documents):
        topic = rng.choice(topics)
        n = rng.randint(*sentences)
        docs.append("\n".join(_sentence(rng, topic) for _ in range(n)))
    return docs


def write_synthetic_corpus(
    path: str | os.PathLike[str], num_documents: int, seed: int = 0, sentences: tuple[int, int] = (4, 12)
) -> Path:
    """Write :func:`synthetic_corpus` to one text file, documents separated by blank lines.

    Read it back with ``CorpusConfig(source=path, document_by="paragraph")``. Written
    atomically (temporary file, then rename). Returns the path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text("\n\n".join(synthetic_corpus(num_documents, seed, sentences)) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out
