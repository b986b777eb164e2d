"""Tokenizers: turn text into integer ids and back (lesson 02; reused from lesson 03 on).

Two tokenizers with the same interface (``encode``, ``decode``, ``vocab_size``,
``save``/``load`` as JSON), in the spirit of Karpathy's minbpe:

- :class:`CharTokenizer` — one id per distinct character of a training text. Tiny
  vocabulary, long sequences, and it cannot encode a character it never saw.
- :class:`ByteBPETokenizer` — byte-level byte-pair encoding (GPT-2's scheme). Text is
  UTF-8 bytes (ids 0-255), so *any* string can be encoded; training learns ``merges``,
  an ordered list of id pairs, each replaced by a new id 256, 257, ... Encoding
  applies the merges in the order they were learned; decoding joins the bytes.

The building blocks are plain functions (the lesson's exercises): :func:`merge`
(one BPE merge step), :func:`bpe_encode` and :func:`bpe_decode`.

>>> tok = ByteBPETokenizer().train(text, vocab_size=512)
>>> tok.decode(tok.encode("我是人类 🤖")) == "我是人类 🤖"
True
"""

from __future__ import annotations

import heapq
import itertools
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from labs.checkpoints import atomic_write

FORMAT = "aigc-lab-tokenizer"
VERSION = 1

# Pre-splitting, like GPT-2's pattern but with Python's `re` (no \p{L}): contractions,
# words with an optional leading space, numbers, punctuation runs, underscores, and
# whitespace (a run of spaces keeps its last space for the next word). The branches
# together match every character, so the chunks always join back to the text.
SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|_+|\s+(?!\S)|\s+"""

Pair = tuple[int, int]


# --------------------------------------------------------------------------- building blocks


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``new_id``, left to right.

    Occurrences do not overlap: ``merge([a, a, a], (a, a), X) == [X, a]``.

    >>> merge([5, 6, 5, 6, 7], (5, 6), 256)
    [256, 256, 7]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def pair_counts(ids: Sequence[int], counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """How often each adjacent pair occurs in ``ids`` (added to ``counts`` if given)."""
    counts = {} if counts is None else counts
    for pair in itertools.pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def build_vocab(merges: Iterable[Pair]) -> dict[int, bytes]:
    """The bytes each id stands for: 0-255 are single bytes, merge ``i`` is id ``256 + i``."""
    vocab = {i: bytes([i]) for i in range(256)}
    for i, (a, b) in enumerate(merges):
        vocab[256 + i] = vocab[a] + vocab[b]
    return vocab


def bpe_encode(text: str, merges: dict[Pair, int]) -> list[int]:
    """BPE-encode ``text`` as one piece (no pre-splitting) with ``merges``.

    ``merges`` maps a pair to its new id, in the order the merges were learned (the
    new id is the rank: a smaller id was learned earlier). Start from the UTF-8 bytes;
    repeatedly merge the adjacent pair with the smallest new id until no pair has a merge.
    """
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pair = min(itertools.pairwise(ids), key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break  # nothing left to merge
        ids = merge(ids, pair, merges[pair])
    return ids


def bpe_decode(ids: Iterable[int], vocab: dict[int, bytes]) -> str:
    """Join the bytes of every id, then decode them as UTF-8 *once*.

    A multi-byte character may be split across tokens, so decoding token by token
    would break it. Byte sequences that are not valid UTF-8 (possible for arbitrary
    id lists, never for ids produced by ``encode``) become U+FFFD (``errors="replace"``).
    """
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- files


def _write_json(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    text = json.dumps(payload, ensure_ascii=False, indent=1) + "\n"
    atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path


def _read_json(path: str | Path, expected_type: str | None) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"tokenizer file {str(path)!r} does not exist.")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"tokenizer file {str(path)!r} is not valid JSON ({exc}): it may be truncated; "
            "save the tokenizer again."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an AIGC Lab tokenizer file (expected "
            f'"format": "{FORMAT}"); write one with tokenizer.save(path).'
        )
    if payload.get("version") != VERSION:
        raise ValueError(
            f"{str(path)!r} has tokenizer format version {payload.get('version')!r}; "
            f"this code reads version {VERSION}. Retrain and save the tokenizer again."
        )
    if expected_type is not None and payload.get("type") != expected_type:
        raise ValueError(
            f"{str(path)!r} holds a {payload.get('type')!r} tokenizer, not a {expected_type!r}: "
            "use labs.tokenizers.load(path), which picks the right class."
        )
    return payload


def load(path: str | Path) -> CharTokenizer | ByteBPETokenizer:
    """Load any tokenizer saved by this module (the class is read from the file)."""
    kind = _read_json(path, None).get("type")
    classes = {"char": CharTokenizer, "byte_bpe": ByteBPETokenizer}
    if kind not in classes:
        raise ValueError(f"{str(path)!r}: unknown tokenizer type {kind!r}")
    return classes[kind].load(path)


# --------------------------------------------------------------------------- characters


class CharTokenizer:
    """One id per distinct character, ids in sorted character order.

    >>> tok = CharTokenizer.from_text("hello")
    >>> tok.encode("hell"), tok.decode([1, 0])
    ([1, 0, 2, 2], 'eh')
    """

    type = "char"

    def __init__(self, chars: Iterable[str] = ()) -> None:
        self.chars: list[str] = sorted(set(chars))
        if any(len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer needs single characters")
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def train(self, text: str) -> CharTokenizer:
        """Use the distinct characters of ``text`` as the vocabulary; returns ``self``."""
        if not text:
            raise ValueError("cannot build a character vocabulary from an empty text")
        self.__init__(text)
        return self

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls().train(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """``str`` -> ids; a character not in the vocabulary is a ``ValueError``."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError as exc:
            unknown = sorted({c for c in text if c not in self.stoi})
            first = exc.args[0]
            raise ValueError(
                f"character {first!r} (U+{ord(first):04X}) at position {text.index(first)} is not in "
                f"this CharTokenizer's vocabulary of {self.vocab_size} characters "
                f"({len(unknown)} unknown in all: {''.join(unknown[:20])!r}). Retrain it on text "
                "that contains them, or use ByteBPETokenizer, which encodes any text."
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> ``str``; an id outside ``[0, vocab_size)`` is a ``ValueError``."""
        ids = [int(i) for i in ids]
        bad = next((i for i in ids if not 0 <= i < self.vocab_size), None)
        if bad is not None:
            raise ValueError(f"id {bad} is outside this vocabulary (0 to {self.vocab_size - 1})")
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary as JSON (atomically); returns the path."""
        payload = {"format": FORMAT, "version": VERSION, "type": self.type, "chars": self.chars}
        return _write_json(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        payload = _read_json(path, cls.type)
        chars = payload.get("chars")
        if not isinstance(chars, list) or not all(
            isinstance(c, str) and len(c) == 1 for c in chars
        ):
            raise ValueError(f"{str(path)!r}: 'chars' must be a list of single characters")
        return cls(chars)

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------- byte-level BPE


class ByteBPETokenizer:
    """Byte-level BPE: ids 0-255 are bytes, id ``256 + i`` is ``merges[i]``.

    ``train(text, vocab_size)`` learns ``vocab_size - 256`` merges. The text is first
    split into chunks with ``pattern`` (words with their leading space, numbers,
    punctuation, whitespace) so no token spans a word boundary; then the most frequent
    adjacent pair, counted over all chunks, is merged, again and again (ties: the
    smaller pair). Merges are nested: the first ``m`` merges of a run to a large
    vocabulary are exactly what a run to ``256 + m`` learns, so :meth:`truncated` gives
    every smaller tokenizer for free.
    """

    type = "byte_bpe"

    def __init__(self, merges: Iterable[Pair] = (), pattern: str = SPLIT_PATTERN) -> None:
        self.pattern = pattern
        self._split = re.compile(pattern)
        self.merges: list[Pair] = []
        for i, pair in enumerate(merges):
            a, b = (int(x) for x in pair)
            if not (0 <= a < 256 + i and 0 <= b < 256 + i):
                raise ValueError(
                    f"merge {i} {pair} uses an id that does not exist yet (ids so far: 0 to {255 + i})"
                )
            self.merges.append((a, b))
        self.ranks: dict[Pair, int] = {pair: 256 + i for i, pair in enumerate(self.merges)}
        self.vocab = build_vocab(self.merges)
        self._cache: dict[str, list[int]] = {}

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.merges)

    # ------------------------------------------------------------------ training

    def split(self, text: str) -> list[str]:
        """The pre-split chunks of ``text`` (they join back to ``text`` exactly)."""
        return self._split.findall(text)

    def train(
        self, text: str, vocab_size: int, *, verbose: bool = False, progress: bool = False
    ) -> ByteBPETokenizer:
        """Learn ``vocab_size - 256`` merges from ``text``; returns ``self``.

        Fast in pure Python: count each distinct chunk once (weighted by how often it
        occurs), keep the pair counts up to date after each merge by revisiting only the
        chunks that contain the merged pair, and find the most frequent pair with a heap.
        ``verbose`` prints every merge; ``progress`` shows a progress bar. Stops early
        (and says so) when every chunk has become a single token.
        """
        if vocab_size < 256:
            raise ValueError(f"vocab_size must be >= 256 (the 256 bytes), got {vocab_size}")
        if not text:
            raise ValueError("cannot train a tokenizer on an empty text")
        chunk_counts = Counter(self.split(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        weights = list(chunk_counts.values())
        stats: dict[Pair, int] = {}  # pair -> weighted count over all chunks
        where: dict[Pair, set[int]] = {}  # pair -> chunks that (may) contain it
        for w, (word, weight) in enumerate(zip(words, weights, strict=True)):
            for pair in itertools.pairwise(word):
                stats[pair] = stats.get(pair, 0) + weight
                where.setdefault(pair, set()).add(w)
        heap = [(-count, pair) for pair, count in stats.items()]
        heapq.heapify(heap)

        merges: list[Pair] = []
        vocab = build_vocab(merges)  # for verbose output
        n_merges = vocab_size - 256
        bar = tqdm(total=n_merges, desc="BPE merges", disable=not progress)
        while len(merges) < n_merges:
            while heap and stats.get(heap[0][1], 0) != -heap[0][0]:
                heapq.heappop(heap)  # stale entry: this pair's count has changed since
            if not heap:
                print(
                    f"note: the text allows only {len(merges)} merges (every chunk is one token "
                    f"now): vocab_size is {256 + len(merges)}, not {vocab_size}. Train on more text."
                )
                break
            neg_count, pair = heapq.heappop(heap)
            new_id = 256 + len(merges)
            merges.append(pair)
            changed: set[Pair] = set()
            for w in where.pop(pair):
                word, weight = words[w], weights[w]
                if len(word) < 2:
                    continue
                new_word = merge(word, pair, new_id)
                if len(new_word) == len(word):
                    continue  # a stale entry of `where`: this chunk no longer has the pair
                for p in itertools.pairwise(word):
                    stats[p] -= weight
                    changed.add(p)
                for p in itertools.pairwise(new_word):
                    stats[p] = stats.get(p, 0) + weight
                    changed.add(p)
                    where.setdefault(p, set()).add(w)
                words[w] = new_word
            for p in changed:
                if stats[p] > 0:
                    heapq.heappush(heap, (-stats[p], p))
                else:
                    del stats[p]
            if verbose:
                vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
                print(
                    f"merge {len(merges):4d}/{n_merges}: {pair} -> {new_id} {vocab[new_id]!r} ({-neg_count} times)"
                )
            bar.update(1)
        bar.close()
        self.__init__(merges, self.pattern)
        return self

    def truncated(self, vocab_size: int) -> ByteBPETokenizer:
        """The tokenizer with only the first ``vocab_size - 256`` merges (same as training
        to that size on the same text, because merges are learned greedily one by one)."""
        if not 256 <= vocab_size <= self.vocab_size:
            raise ValueError(
                f"vocab_size must be between 256 and {self.vocab_size}, got {vocab_size}"
            )
        return ByteBPETokenizer(self.merges[: vocab_size - 256], self.pattern)

    # ------------------------------------------------------------------ encode / decode

    def _encode_chunk(self, chunk: str) -> list[int]:
        ids = self._cache.get(chunk)
        if ids is None:
            ids = bpe_encode(chunk, self.ranks)
            if len(self._cache) < 200_000:
                self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """``str`` -> ids, for any text (Chinese, emoji, ... are UTF-8 bytes first)."""
        if not isinstance(text, str):
            raise TypeError(f"encode() takes a str, got {type(text).__name__}")
        ids: list[int] = []
        for chunk in self.split(text):
            ids.extend(self._encode_chunk(chunk))
        return ids

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The raw bytes behind ``ids``; an unknown id is a ``ValueError``."""
        try:
            return b"".join(self.vocab[int(i)] for i in ids)
        except KeyError as exc:
            raise ValueError(
                f"id {exc.args[0]} is outside this vocabulary (0 to {self.vocab_size - 1})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> ``str``. ``decode(encode(s)) == s`` for every ``str`` ``s``.

        An arbitrary id list (e.g. sampled from a model) may spell bytes that are not
        valid UTF-8; those become U+FFFD (``errors="replace"``) instead of raising.
        """
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each token shown on its own (partial UTF-8 characters appear as U+FFFD)."""
        return [self.vocab[int(i)].decode("utf-8", errors="replace") for i in ids]

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> Path:
        """Write the pattern and merges as JSON (atomically); returns the path."""
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "type": self.type,
            "pattern": self.pattern,
            "merges": [list(pair) for pair in self.merges],
        }
        return _write_json(path, payload)

    @classmethod
    def load(cls, path: str | Path) -> ByteBPETokenizer:
        payload = _read_json(path, cls.type)
        merges, pattern = payload.get("merges"), payload.get("pattern")
        if not isinstance(pattern, str):
            raise ValueError(f"{str(path)!r}: 'pattern' must be a string")
        if not isinstance(merges, list) or not all(
            isinstance(m, list) and len(m) == 2 and all(isinstance(x, int) for x in m)
            for m in merges
        ):
            raise ValueError(f"{str(path)!r}: 'merges' must be a list of [int, int] pairs")
        try:
            return cls([tuple(m) for m in merges], pattern)
        except ValueError as exc:
            raise ValueError(f"{str(path)!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"ByteBPETokenizer(vocab_size={self.vocab_size})"
