"""Checks for lesson 02 (tokens and language models).

Five exercises, each compared with the reference in :mod:`labs.tokenizers` or
:mod:`labs.ngram` on named cases from the simple to the tricky: ``merge`` (one BPE
merge step), ``bpe_decode``, ``bpe_encode``, ``bigram_probs`` (counts -> add-k
smoothed probabilities) and ``bigram_perplexity``.
"""

from __future__ import annotations

import torch

from labs import ngram, tokenizers
from labs.checks.core import Case, FunctionCheck

# --------------------------------------------------------------------------- merge


def _merge_cases() -> list[Case]:
    return [
        Case(
            "one occurrence in the middle",
            ([1, 2, 3, 4], (2, 3), 99),
            hint="walk through ids with an index i: where (ids[i], ids[i+1]) == pair, append new_id "
            "and skip both (i += 2); otherwise append ids[i] (i += 1), down to the last token.",
        ),
        Case(
            "two occurrences",
            ([5, 6, 5, 6, 7], (5, 6), 256),
            hint="replace every occurrence, not only the first.",
        ),
        Case(
            "the pair at the very end",
            ([7, 1, 2], (1, 2), 300),
            hint="the last position i = len(ids) - 2 can start a pair too.",
        ),
        Case(
            "the last token is not part of a pair",
            ([1, 2, 9], (1, 2), 300),
            hint="keep the tokens after the last merge: don't drop the final token.",
        ),
        Case(
            "overlapping occurrences: (a, a) in [a, a, a]",
            ([97, 97, 97], (97, 97), 256),
            hint="after a merge, jump past BOTH tokens (i += 2): [a, a, a] becomes [X, a], not [X, X].",
        ),
        Case(
            "overlapping occurrences: (a, a) in [a, a, a, a, b]",
            ([97, 97, 97, 97, 98], (97, 97), 256),
            hint="occurrences are taken left to right without overlapping: [X, X, b].",
        ),
        Case(
            "no occurrence",
            ([1, 2, 3], (3, 1), 256),
            hint="with nothing to merge, return ids unchanged.",
        ),
        Case(
            "the reversed pair does not count",
            ([2, 1, 1, 2], (1, 2), 256),
            hint="match ids[i] == pair[0] and ids[i+1] == pair[1], in that order.",
        ),
        Case(
            "an empty list",
            ([], (1, 2), 256),
            hint="an empty list has nothing to merge: return [].",
        ),
        Case(
            "a single token",
            ([1], (1, 2), 256),
            hint="a single token has no pair: return it unchanged.",
        ),
    ]


check_merge = FunctionCheck(
    "merge",
    tokenizers.merge,
    _merge_cases,
    hint="scan left to right with an index i; at a match append new_id and i += 2, else append ids[i] and i += 1.",
)


# --------------------------------------------------------------------------- decode


def _toy_merges() -> dict[tuple[int, int], int]:
    """Merges learned on a small bilingual text (deterministic)."""
    text = "the cat sat on the mat. 我是人类，我是学生。 😀 the hat 😀 " * 3
    tok = tokenizers.ByteBPETokenizer().train(text, vocab_size=256 + 30)
    return tok.ranks


def _decode_cases() -> list[Case]:
    vocab = tokenizers.build_vocab(_toy_merges())
    small = tokenizers.build_vocab([(104, 105)])  # 256 = b"hi"
    chinese = list("我是".encode())  # 6 single-byte tokens
    return [
        Case(
            "single bytes spelling ASCII",
            (list(b"hello"), small),
            hint="vocab[i] is the bytes of token i: join them all, then .decode('utf-8').",
        ),
        Case(
            "a merged token",
            ([256, 33], small),
            hint="vocab[256] is b'hi': look every id up in vocab.",
        ),
        Case("an empty list", ([], small), hint="no tokens decode to the empty string ''."),
        Case(
            "Chinese, one byte per token",
            (chinese, small),
            hint="a Chinese character is 3 bytes spread over 3 tokens: join ALL the bytes first, "
            "then decode once (decoding token by token breaks the character).",
        ),
        Case(
            "Chinese and emoji with learned merges",
            (tokenizers.bpe_encode("我是人类 😀 the cat", _toy_merges()), vocab),
            hint="join the bytes of all tokens with b''.join(...), then decode once.",
        ),
        Case(
            "bytes that are not valid UTF-8 (half a character)",
            (chinese[:4], small),
            hint="arbitrary ids can spell invalid UTF-8: use .decode('utf-8', errors='replace') "
            "so they become '\ufffd' instead of raising.",
        ),
    ]


check_bpe_decode = FunctionCheck(
    "bpe_decode",
    tokenizers.bpe_decode,
    _decode_cases,
    hint="return b''.join(vocab[i] for i in ids).decode('utf-8', errors='replace')",
)


# --------------------------------------------------------------------------- encode


def _encode_cases() -> list[Case]:
    a, b, c = 97, 98, 99
    order = {(a, b): 256, (b, c): 257}
    nested = {(a, a): 256, (256, 256): 257}
    learned = _toy_merges()
    return [
        Case(
            "no merges: just the UTF-8 bytes",
            ("hi!", {}),
            hint="start from list(text.encode('utf-8')).",
        ),
        Case("the empty string", ("", order), hint="'' has no bytes: return []."),
        Case(
            "merge order decides: 'abc' with (a,b)->256 before (b,c)->257",
            ("abc", order),
            hint="always merge the pair with the SMALLEST new id (learned first), not the last one.",
        ),
        Case(
            "merges of merges: 'aaaa' -> [256, 256] -> [257]",
            ("aaaa", nested),
            hint="keep merging until no adjacent pair has a merge: new tokens can merge again.",
        ),
        Case(
            "rank, not frequency: 'abcbc'",
            ("abcbc", order),
            hint="pick the adjacent pair with the smallest merge id, even if another pair is more frequent.",
        ),
        Case(
            "Chinese characters are 3 bytes each",
            ("我是人类", learned),
            hint="encode the text to UTF-8 bytes first: ord('我') is 25105, not a byte.",
        ),
        Case(
            "learned merges on mixed text with emoji",
            ("the cat sat on the mat. 我是学生 😀", learned),
            hint="repeat: find the pair with the smallest id in merges, merge it everywhere with "
            "merge(ids, pair, merges[pair]); stop when no pair is in merges.",
        ),
        Case(
            "text with no learned pair",
            ("xyz", learned),
            hint="when no adjacent pair is in merges, stop and return the bytes.",
        ),
    ]


check_bpe_encode = FunctionCheck(
    "bpe_encode",
    tokenizers.bpe_encode,
    _encode_cases,
    hint="ids = list(text.encode('utf-8')); while a pair of ids is in merges: merge the pair with the "
    "smallest merges[pair].",
)


# --------------------------------------------------------------------------- bigram probabilities


def _probs_cases() -> list[Case]:
    g = torch.Generator().manual_seed(2)
    return [
        Case(
            "a tiny sequence, V = 3, k = 1",
            (torch.tensor([0, 1, 1, 2, 0, 1]), 3, 1.0),
            hint="counts[i, j] = how often token j follows token i, over all T - 1 pairs "
            "(ids[t], ids[t+1]); add k to every count; divide each ROW by its sum.",
        ),
        Case(
            "the last pair counts too: [0, 0, 0, 1]",
            (torch.tensor([0, 0, 0, 1]), 2, 0.5),
            hint="a sequence of T tokens has T - 1 pairs (ids[t], ids[t+1]), t = 0 … T-2.",
        ),
        Case(
            "token 3 is never followed by anything (V = 4, k = 0.5)",
            (torch.tensor([0, 1, 2, 0, 2, 1, 3]), 4, 0.5),
            hint="add k to EVERY count before normalising: a row with no counts becomes uniform, not 0/0.",
        ),
        Case(
            "a random sequence, V = 6, k = 0.1",
            (torch.randint(0, 6, (200,), generator=g), 6, 0.1),
            hint="P[i, j] = (counts[i, j] + k) / (Σ_j counts[i, j] + k·V): each row sums to 1.",
        ),
        Case(
            "a larger vocabulary, V = 30, k = 1",
            (torch.randint(0, 30, (500,), generator=g), 30, 1.0),
            hint="return a float32 (V, V) tensor.",
        ),
    ]


check_bigram_probs = FunctionCheck(
    "bigram_probs",
    ngram.bigram_probs,
    _probs_cases,
    hint="count pairs into a (V, V) tensor, add k, divide each row by its sum (dim=1, keepdim=True).",
)


# --------------------------------------------------------------------------- perplexity


def _perplexity_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    skewed = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
    train = torch.randint(0, 8, (300,), generator=g)
    learned = ngram.bigram_probs(train, 8, 0.5)
    unsmoothed = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    return [
        Case(
            "uniform probabilities over 4 tokens: perplexity 4",
            (torch.full((4, 4), 0.25), torch.tensor([0, 3, 1, 2, 2])),
            hint="perplexity = exp(mean over transitions of -ln P(next | current)); a uniform "
            "model over V tokens has perplexity V. Use the natural log.",
        ),
        Case(
            "one transition",
            (skewed, torch.tensor([1, 2])),
            hint="T tokens give T - 1 transitions ids[t] -> ids[t+1]; P[ids[t], ids[t+1]].",
        ),
        Case(
            "a hand-made table, asymmetric",
            (skewed, torch.tensor([0, 0, 1, 2, 0, 2, 2, 1])),
            hint="row = current token, column = next token: p = probs[ids[:-1], ids[1:]]; then "
            "exp(mean(-ln p)), a geometric mean, not 1 / mean(p).",
        ),
        Case(
            "probabilities from bigram_probs, held-out ids",
            (learned, torch.randint(0, 8, (100,), generator=g)),
            hint="average the negative log-probabilities (mean, not sum) before exp.",
        ),
        Case(
            "a transition with probability 0: infinite perplexity",
            (unsmoothed, torch.tensor([1, 0, 0])),
            hint="-ln 0 = inf: without smoothing one unseen transition makes perplexity infinite.",
        ),
    ]


check_bigram_perplexity = FunctionCheck(
    "bigram_perplexity",
    ngram.bigram_perplexity,
    _perplexity_cases,
    hint="p = probs[ids[:-1], ids[1:]]; return exp(-mean(ln p)) as a float.",
    rtol=1e-4,
)
