"""Datasets generated in code or shipped small in ``data/``, so every lesson runs offline
and the same on every machine.

- ``make_spirals``: 2-D points for a first classifier (lesson 00);
- ``load_corpus`` / ``train_val_split``: the text the language lessons train on, by
  default a snapshot of Python's own documentation (``data/corpus/python_docs.txt``);
- ``make_bilingual_sentences``: tiny Chinese/English sentence pairs (lesson 02).

Regenerate the shipped corpus with ``python -m labs.data write-corpus``.
"""

from __future__ import annotations

import math
import platform
import random
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from labs.checkpoints import atomic_write
from labs.paths import DATA_DIR


def make_spirals(
    n_per_class: int = 200,
    n_classes: int = 3,
    noise: float = 0.25,
    seed: int = 0,
    turns: float = 1.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Interleaved 2-D spirals: a classic "not linearly separable" toy problem.

    Each arm winds ``turns`` times around the origin; ``noise`` jitters the angle.
    Returns ``X`` of shape ``(n_per_class * n_classes, 2)`` (float32, roughly in
    [-1, 1]) and labels ``y`` of shape ``(N,)`` (int64 in ``[0, n_classes)``),
    shuffled with ``seed``.
    """
    if n_per_class < 1 or n_classes < 2:
        raise ValueError(
            f"need n_per_class >= 1 and n_classes >= 2, got {n_per_class} and {n_classes}"
        )
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    g = torch.Generator().manual_seed(seed)
    radius = torch.linspace(0.05, 1.0, n_per_class)
    xs, ys = [], []
    for label in range(n_classes):
        angle = radius * turns * 2 * math.pi + label * 2 * math.pi / n_classes
        angle = angle + noise * torch.randn(n_per_class, generator=g)
        xs.append(torch.stack([radius * torch.sin(angle), radius * torch.cos(angle)], dim=1))
        ys.append(torch.full((n_per_class,), label, dtype=torch.int64))
    X, y = torch.cat(xs), torch.cat(ys)
    order = torch.randperm(len(y), generator=g)
    return X[order].float(), y[order]


# --------------------------------------------------------------------------- text corpora

DEFAULT_CORPUS = DATA_DIR / "corpus" / "python_docs.txt"
# sha256 of the shipped default corpus (also listed in data/README.md); a test keeps them equal.
DEFAULT_CORPUS_SHA256 = "2a95af4ac93f5b719944030ce3769070ddf827d847cba42192afa8da989e5dc4"
# The interpreter whose pydoc_data made the shipped file (regenerating elsewhere may differ).
DEFAULT_CORPUS_PYTHON = "3.11.7"
MIN_CORPUS_CHARS = 1000


def python_docs_text() -> str:
    """Python's documentation text as shipped with this interpreter (``pydoc_data.topics``).

    All topics, in sorted key order, separated by a blank line; line endings ``\\n``.
    This is what ``help("assert")`` prints: English prose plus code, about 466 KB.
    """
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def write_corpus(path: str | Path | None = None) -> Path:
    """Regenerate the default corpus file from this interpreter's ``pydoc_data``.

    Writes ``data/corpus/python_docs.txt`` (or ``path``) atomically as UTF-8 and returns
    the path. ``python -m labs.data write-corpus`` does the same from a terminal.
    """
    target = Path(path) if path is not None else DEFAULT_CORPUS
    data = python_docs_text().encode("utf-8")
    atomic_write(target, lambda tmp: tmp.write_bytes(data))
    return target


def load_corpus(path: str | Path | None = None, *, min_chars: int = MIN_CORPUS_CHARS) -> str:
    """The text a language lesson trains on.

    ``path=None`` gives the default corpus, a snapshot of Python's documentation
    (``data/corpus/python_docs.txt``, see ``data/README.md``). Any other path must be
    a UTF-8 text file of at least ``min_chars`` characters; a leading byte-order mark
    is dropped and line endings become ``\\n``. Errors say what is wrong and what to do.
    """
    if path is None:
        if not DEFAULT_CORPUS.exists():
            raise FileNotFoundError(
                f"the default corpus {DEFAULT_CORPUS} is missing: restore it from git, or "
                "regenerate it with `python -m labs.data write-corpus`."
            )
        file = DEFAULT_CORPUS
    else:
        file = Path(path).expanduser()
        if not file.exists():
            raise FileNotFoundError(
                f"corpus file {str(file)!r} does not exist: check CORPUS_PATH, "
                "or set CORPUS_PATH = None for the default corpus."
            )
        if not file.is_file():
            raise ValueError(f"corpus path {str(file)!r} is not a file: point it at a .txt file.")
    raw = file.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 4]
        raise ValueError(
            f"corpus file {str(file)!r} is not valid UTF-8: byte offset {exc.start} "
            f"({bad!r}...) cannot be decoded ({exc.reason}). Re-save it as UTF-8 "
            "(e.g. `iconv -f latin1 -t utf-8 in.txt > out.txt`)."
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) < min_chars:
        what = "is empty" if not text else f"has only {len(text)} characters"
        raise ValueError(
            f"corpus file {str(file)!r} {what}: a language model needs at least "
            f"{min_chars} characters of text. Use a longer file, or CORPUS_PATH = None."
        )
    return text


Sliceable = TypeVar("Sliceable", str, list, torch.Tensor, np.ndarray, bytes)


def train_val_split(
    text_or_ids: Sliceable, val_fraction: float = 0.1
) -> tuple[Sliceable, Sliceable]:
    """Split a text or a token sequence into ``(train, val)``; ``val`` is the END.

    No shuffling: the held-out part is a contiguous stretch the model never saw, as
    in nanoGPT. ``len(val) == round(len * val_fraction)``, at least 1 item each.
    Works for ``str``, ``list``, 1-D tensors and arrays.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n = len(text_or_ids)
    if n < 2:
        raise ValueError(f"need at least 2 items to split into train and val, got {n}")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    return text_or_ids[: n - n_val], text_or_ids[n - n_val :]


# A tiny grammar: subject + verb + object, in Chinese and in matching English.
_SUBJECTS = (  # Chinese, English, English verb person ("1", "2", "3" singular, "p" plural)
    ("我", "I", "1"),
    ("你", "You", "2"),
    ("他", "He", "3"),
    ("她", "She", "3"),
    ("我们", "We", "p"),
    ("你们", "You", "p"),
    ("他们", "They", "p"),
)
_BE = {"1": "am", "2": "are", "3": "is", "p": "are"}
_PEOPLE = (("人类", "a human", "humans"), ("学生", "a student", "students"))
_PEOPLE += (("老师", "a teacher", "teachers"), ("朋友", "a friend", "friends"))
_VERBS = (  # Chinese verb, English (plural, 3rd singular), the objects it takes
    (
        "喜欢",
        "like",
        "likes",
        (("苹果", "apples"), ("书", "books"), ("猫", "cats"), ("狗", "dogs")),
    ),
    (
        "有",
        "have",
        "has",
        (("苹果", "apples"), ("书", "books"), ("猫", "cats"), ("朋友", "friends")),
    ),
    ("吃", "eat", "eats", (("苹果", "apples"), ("面包", "bread"))),
    ("喝", "drink", "drinks", (("茶", "tea"), ("水", "water"))),
    ("看", "read", "reads", (("书", "books"),)),
)


def make_bilingual_sentences(n: int = 400, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` random (Chinese, English) sentence pairs from a tiny template grammar.

    Subject–verb–object, e.g. ``("我是人类。", "I am a human.")`` or
    ``("她喜欢猫。", "She likes cats.")``: enough for a language model trained on
    them to know that "我是人类" is a likelier string than "是人类我". Deterministic
    for a given ``seed``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        zh_subject, en_subject, person = rng.choice(_SUBJECTS)
        if rng.random() < 0.4:  # "to be" + a person
            zh_object, singular, plural = rng.choice(_PEOPLE)
            en_object = plural if person == "p" else singular
            zh, en = f"{zh_subject}是{zh_object}。", f"{en_subject} {_BE[person]} {en_object}."
        else:
            zh_verb, en_verb, en_verb_3rd, objects = rng.choice(_VERBS)
            zh_object, en_object = rng.choice(objects)
            verb = en_verb_3rd if person == "3" else en_verb
            zh, en = f"{zh_subject}{zh_verb}{zh_object}。", f"{en_subject} {verb} {en_object}."
        pairs.append((zh, en))
    return pairs


def main(argv: list[str] | None = None) -> int:
    """``python -m labs.data write-corpus [PATH]``: regenerate the default corpus."""
    import argparse
    import hashlib

    parser = argparse.ArgumentParser(prog="python -m labs.data", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write-corpus", help="write data/corpus/python_docs.txt from pydoc_data")
    write.add_argument(
        "path", nargs="?", default=None, help="where to write (default: the shipped file)"
    )
    args = parser.parse_args(argv)
    path = write_corpus(args.path)
    data = path.read_bytes()
    print(f"wrote {path} ({len(data)} bytes) from Python {platform.python_version()}'s pydoc_data")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
