"""The text corpora in labs.data: the shipped default, custom files, clear errors, the split."""

from __future__ import annotations

import hashlib
import platform

import numpy as np
import pytest
import torch

from labs import data
from labs.data import load_corpus, make_bilingual_sentences, train_val_split
from labs.paths import DATA_DIR


def test_default_corpus_is_shipped_small_and_matches_its_recorded_hash():
    raw = data.DEFAULT_CORPUS.read_bytes()
    assert 400_000 < len(raw) <= 512_000, "the shipped corpus should stay about 0.5 MB"
    digest = hashlib.sha256(raw).hexdigest()
    assert digest == data.DEFAULT_CORPUS_SHA256
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    assert digest in readme, "data/README.md must list the corpus's sha256"
    assert data.DEFAULT_CORPUS_PYTHON in readme


def test_default_corpus_loads_as_text():
    text = load_corpus()
    assert len(text) > 400_000 and "\r" not in text
    assert "assert" in text and "lambda" in text
    assert any(ord(c) > 127 for c in text)  # a few typographic quotes and dashes


def test_regenerating_gives_the_shipped_file(tmp_path):
    """Same Python version -> byte-identical corpus (elsewhere pydoc_data may differ)."""
    if platform.python_version() != data.DEFAULT_CORPUS_PYTHON:
        pytest.skip(f"the shipped corpus comes from Python {data.DEFAULT_CORPUS_PYTHON}")
    path = data.write_corpus(tmp_path / "docs.txt")
    assert path.read_bytes() == data.DEFAULT_CORPUS.read_bytes()


def test_cli_writes_the_corpus(tmp_path, capsys):
    assert data.main(["write-corpus", str(tmp_path / "c.txt")]) == 0
    out = capsys.readouterr().out
    assert "sha256" in out and (tmp_path / "c.txt").stat().st_size > 400_000


def test_custom_file_crlf_and_bom(tmp_path):
    path = tmp_path / "mine.txt"
    text = "我是人类。\r\nI am a human.\r\n" * 100
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    loaded = load_corpus(path)
    assert loaded == text.replace("\r\n", "\n")
    assert load_corpus(str(path)) == loaded


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="CORPUS_PATH = None"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="is not a file"):
        load_corpus(tmp_path)


def test_non_utf8_file_says_which_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(("a" * 1500 + "café").encode("latin-1"))
    with pytest.raises(ValueError, match="byte offset 1503"):
        load_corpus(path)


def test_empty_and_short_files_are_clear_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_corpus(empty)
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(ValueError, match="has only 9 characters"):
        load_corpus(short)
    assert load_corpus(short, min_chars=5) == "too short"


@pytest.mark.parametrize(
    "sequence",
    ["abcdefghij", list(range(10)), torch.arange(10), np.arange(10)],
    ids=["str", "list", "tensor", "array"],
)
def test_split_takes_the_end_without_shuffling(sequence):
    train, val = train_val_split(sequence, val_fraction=0.3)
    assert len(train) == 7 and len(val) == 3
    assert list(train) == list(sequence[:7]) and list(val) == list(sequence[7:])
    assert type(train) is type(sequence)


def test_split_edge_cases():
    assert train_val_split("ab", 0.01) == ("a", "b")
    assert train_val_split("ab", 0.99) == ("a", "b")
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split("abc", 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        train_val_split("a")


def test_bilingual_sentences_are_deterministic_and_well_formed():
    pairs = make_bilingual_sentences(300, seed=1)
    assert pairs == make_bilingual_sentences(300, seed=1)
    assert pairs != make_bilingual_sentences(300, seed=2)
    assert len(pairs) == 300
    for zh, en in pairs:
        assert zh.endswith("。") and en.endswith(".") and en[0].isupper()
        assert all(ord(c) > 0x2E80 for c in zh)  # Chinese characters and punctuation only
    assert ("我是人类。", "I am a human.") in make_bilingual_sentences(2000)
    with pytest.raises(ValueError, match="n must be >= 1"):
        make_bilingual_sentences(0)
