"""labs.tokenizers against brute force: round trips on any text, a naive BPE trainer, files."""

from __future__ import annotations

import json
import random
import unicodedata

import pytest

from labs import tokenizers
from labs.tokenizers import ByteBPETokenizer, CharTokenizer, bpe_decode, bpe_encode, merge

MIXED = "Hello, 世界! 我是人类。 🤖🎉 café naïve Ωμέγα e\u0301 👩‍👩‍👧 \t\n  x_y=42;"


def _random_text(rng: random.Random, n: int) -> str:
    """Random text from ASCII, CJK, emoji (incl. ZWJ sequences), combining marks, whitespace."""
    pools = [
        "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?'\"()[]{}_-+*/\\",
        "我是人类你他她们学生老师苹果书的了在",
        "😀🤖🎉👍🏽🇨🇳\u200d",
        "\u0301\u0308\u0327",  # combining marks
        " \t\n\r\u00a0\u3000",
        "ßøåÆœΩπ∑ж€ℕ",
    ]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(n))


def _naive_bpe(text: str, vocab_size: int, pattern: str = tokenizers.SPLIT_PATTERN):
    """Textbook BPE: recount every pair over every chunk occurrence at every step."""
    import re

    chunks = [list(c.encode("utf-8")) for c in re.findall(pattern, text)]
    merges = []
    for i in range(vocab_size - 256):
        stats: dict[tuple[int, int], int] = {}
        for chunk in chunks:
            for pair in zip(chunk, chunk[1:], strict=False):  # noqa: RUF007
                stats[pair] = stats.get(pair, 0) + 1
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))  # most frequent; ties: smaller pair
        merges.append(pair)
        chunks = [merge(chunk, pair, 256 + i) for chunk in chunks]
    return merges


@pytest.fixture(scope="module")
def trained() -> ByteBPETokenizer:
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "mat", "我是人类", "学生", "hello", "world", "😀", "x_1"]
    text = " ".join(rng.choice(words) for _ in range(3000))
    return ByteBPETokenizer().train(text, vocab_size=256 + 60)


# --------------------------------------------------------------------------- building blocks


def test_merge_examples():
    assert merge([5, 6, 5, 6, 7], (5, 6), 256) == [256, 256, 7]
    assert merge([97, 97, 97], (97, 97), 256) == [256, 97]
    assert merge([], (1, 2), 256) == []
    assert merge([1], (1, 2), 256) == [1]
    assert merge([2, 1], (1, 2), 256) == [2, 1]


def test_merge_matches_a_string_replace():
    """On distinct single-character symbols, merge == str.replace (left to right, no overlap)."""
    rng = random.Random(1)
    for _ in range(200):
        s = "".join(rng.choice("ab") for _ in range(rng.randint(0, 12)))
        ids = [ord(c) for c in s]
        expected = [ord(c) for c in s.replace("ab", "X")]
        assert merge(ids, (ord("a"), ord("b")), ord("X")) == expected
        expected = [ord(c) for c in s.replace("aa", "X")]
        assert merge(ids, (ord("a"), ord("a")), ord("X")) == expected


def test_bpe_encode_decode_round_trip(trained):
    for text in ["", "the cat", "我是人类", MIXED, "unseen words entirely"]:
        ids = bpe_encode(text, trained.ranks)
        assert bpe_decode(ids, trained.vocab) == text


def test_bpe_decode_replaces_invalid_utf8():
    vocab = tokenizers.build_vocab([])
    assert bpe_decode(list("我".encode())[:2], vocab) == "\ufffd"


def test_build_vocab_concatenates_bytes():
    vocab = tokenizers.build_vocab([(104, 105), (256, 33)])
    assert vocab[256] == b"hi" and vocab[257] == b"hi!" and len(vocab) == 258


# --------------------------------------------------------------------------- splitting


def test_split_covers_every_character():
    """The chunks always join back to the text: nothing is dropped by the regex."""
    tok = ByteBPETokenizer()
    rng = random.Random(2)
    for _ in range(300):
        text = _random_text(rng, rng.randint(0, 60))
        assert "".join(tok.split(text)) == text
    assert tok.split("Hello world, it's 2024!") == [
        "Hello",
        " world",
        ",",
        " it",
        "'s",
        " 2024",
        "!",
    ]


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("seed", range(6))
def test_fast_trainer_equals_naive_bpe(seed):
    """The incremental trainer learns exactly the merges of textbook BPE (ties included)."""
    rng = random.Random(seed)
    words = ["low", "lower", "newest", "widest", "aaaa", "我是", "人类", "😀😀", "ab ab", "x"]
    text = " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))
    text += _random_text(rng, 40)
    expected = _naive_bpe(text, 256 + 40)
    got = ByteBPETokenizer().train(text, vocab_size=256 + len(expected)).merges
    assert got == expected


def test_fast_trainer_equals_naive_bpe_on_the_corpus_prefix():
    from labs.data import load_corpus

    text = load_corpus()[:6000]
    assert ByteBPETokenizer().train(text, vocab_size=256 + 50).merges == _naive_bpe(text, 256 + 50)


def test_merges_are_nested_and_truncation_equals_training(trained):
    text = " ".join(["the cat sat on the mat 我是人类"] * 50) + " hello world 😀 x_1" * 30
    big = ByteBPETokenizer().train(text, vocab_size=256 + 30)
    for size in (256, 260, 270, 286):
        small = ByteBPETokenizer().train(text, vocab_size=size)
        assert small.merges == big.merges[: size - 256]
        assert big.truncated(size).encode(text) == small.encode(text)


def test_more_merges_never_lengthen_the_encoding(trained):
    text = "the cat sat on the mat; 我是人类 😀 hello world"
    lengths = [
        len(trained.truncated(v).encode(text)) for v in range(256, trained.vocab_size + 1, 5)
    ]
    assert lengths == sorted(lengths, reverse=True)
    assert lengths[0] == len(text.encode("utf-8"))


def test_train_errors():
    with pytest.raises(ValueError, match="vocab_size must be >= 256"):
        ByteBPETokenizer().train("abc", vocab_size=100)
    with pytest.raises(ValueError, match="empty text"):
        ByteBPETokenizer().train("", vocab_size=300)


def test_training_stops_early_when_every_chunk_is_one_token(capsys):
    tok = ByteBPETokenizer().train("abc abc", vocab_size=300)
    assert tok.vocab_size == 256 + 3  # ab, abc, then " abc"
    assert tok.decode(tok.encode("abc abc")) == "abc abc" and len(tok.encode("abc abc")) == 2
    assert "allows only 3 merges" in capsys.readouterr().out


def test_train_verbose_prints_merges(capsys):
    ByteBPETokenizer().train("aaab aaab", vocab_size=258, verbose=True)
    out = capsys.readouterr().out
    assert "merge    1/2" in out and "b'aa'" in out


# --------------------------------------------------------------------------- round trips


def test_round_trip_on_random_unicode(trained):
    rng = random.Random(3)
    for _ in range(300):
        text = _random_text(rng, rng.randint(0, 80))
        ids = trained.encode(text)
        assert all(0 <= i < trained.vocab_size for i in ids)
        assert trained.decode(ids) == text


def test_round_trip_on_normalisation_forms_and_all_planes(trained):
    text = (
        MIXED + "".join(chr(c) for c in range(0x20, 0x3000, 7)) + "\U0001f600\U000e0001\U0010fffd"
    )
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        variant = unicodedata.normalize(form, text)
        assert trained.decode(trained.encode(variant)) == variant


def test_untrained_tokenizer_is_plain_bytes():
    tok = ByteBPETokenizer()
    assert tok.vocab_size == 256
    assert tok.encode("我") == list("我".encode())


def test_decode_arbitrary_ids_never_raises_and_unknown_ids_are_clear(trained):
    rng = random.Random(4)
    for _ in range(100):
        ids = [rng.randrange(trained.vocab_size) for _ in range(rng.randint(0, 30))]
        assert isinstance(trained.decode(ids), str)
    with pytest.raises(ValueError, match="outside this vocabulary"):
        trained.decode([1, trained.vocab_size])


def test_encode_rejects_bytes():
    with pytest.raises(TypeError, match="takes a str"):
        ByteBPETokenizer().encode(b"abc")


def test_invalid_merges_are_rejected():
    with pytest.raises(ValueError, match="does not exist yet"):
        ByteBPETokenizer([(256, 1)])


# --------------------------------------------------------------------------- char tokenizer


def test_char_tokenizer_round_trip_and_order():
    tok = CharTokenizer.from_text("hello 世界")
    assert tok.vocab_size == len(set("hello 世界"))
    assert tok.chars == sorted(set("hello 世界"))
    assert tok.decode(tok.encode("hole 界")) == "hole 界"
    assert CharTokenizer().train("ba").encode("ab") == [0, 1]


def test_char_tokenizer_unknown_character_is_a_clear_error():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError) as info:
        tok.encode("ab🤖c")
    message = str(info.value)
    assert "'🤖'" in message and "position 2" in message and "ByteBPETokenizer" in message
    with pytest.raises(ValueError, match="outside this vocabulary"):
        tok.decode([3])
    with pytest.raises(ValueError, match="empty text"):
        CharTokenizer().train("")


# --------------------------------------------------------------------------- files


def test_save_load_round_trip(tmp_path, trained):
    path = trained.save(tmp_path / "bpe.json")
    loaded = ByteBPETokenizer.load(path)
    assert loaded.merges == trained.merges and loaded.pattern == trained.pattern
    assert loaded.encode(MIXED) == trained.encode(MIXED)
    assert isinstance(tokenizers.load(path), ByteBPETokenizer)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["format"] == tokenizers.FORMAT and payload["version"] == tokenizers.VERSION
    char = CharTokenizer.from_text("hello 世界")
    char_path = char.save(tmp_path / "char.json")
    assert CharTokenizer.load(char_path).chars == char.chars
    assert isinstance(tokenizers.load(char_path), CharTokenizer)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_load_errors_are_clear(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ByteBPETokenizer.load(tmp_path / "missing.json")
    truncated = tmp_path / "truncated.json"
    truncated.write_text(trained.save(tmp_path / "ok.json").read_text()[:50])
    with pytest.raises(ValueError, match="not valid JSON"):
        ByteBPETokenizer.load(truncated)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="not an AIGC Lab tokenizer file"):
        tokenizers.load(other)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"format": tokenizers.FORMAT, "version": 99, "type": "char"}))
    with pytest.raises(ValueError, match="version 99"):
        tokenizers.load(future)
    char_path = CharTokenizer.from_text("ab").save(tmp_path / "char.json")
    with pytest.raises(ValueError, match="holds a 'char' tokenizer"):
        ByteBPETokenizer.load(char_path)
    bad = tmp_path / "bad.json"
    payload = {"format": tokenizers.FORMAT, "version": 1, "type": "byte_bpe", "pattern": "x"}
    bad.write_text(json.dumps({**payload, "merges": [[300, 1]]}))
    with pytest.raises(ValueError, match="does not exist yet"):
        ByteBPETokenizer.load(bad)
    bad.write_text(json.dumps({**payload, "merges": [["a", 1]]}))
    with pytest.raises(ValueError, match=r"list of \[int, int\] pairs"):
        ByteBPETokenizer.load(bad)
