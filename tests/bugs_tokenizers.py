"""Planted bugs for lesson 02's checks (tokens and language models): see tests/test_check_exercises.py."""

from __future__ import annotations

import itertools
import math

import torch
from planted import Bug, as_typed

from labs import ngram, tokenizers

# --------------------------------------------------------------------------- merge bugs


def _merge_overlapping_twice(ids, pair, new_id):
    """Looks at every position, so (a, a) in [a, a, a] is merged twice."""
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        elif i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
            continue
        else:
            out.append(ids[i])
    return out


def _merge_no_skip(ids, pair, new_id):
    """Does not advance past the merged pair: the second token is kept as well."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def _merge_drops_last(ids, pair, new_id):
    """Loops to len - 1 and forgets to append the last token."""
    out, i = [], 0
    while i < len(ids) - 1:
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if ids[i] == pair[0] and ids[i + 1] == pair[1]:
            return [*ids[:i], new_id, *ids[i + 2 :]]
    return list(ids)


def _merge_misses_the_end(ids, pair, new_id):
    """range(len(ids) - 2) never looks at the final pair."""
    out, i = [], 0
    while i < len(ids):
        if i < len(ids) - 2 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_either_order(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and {ids[i], ids[i + 1]} == set(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _merge_crashes_on_empty(ids, pair, new_id):
    out, prev = [], ids[0]
    for token in ids[1:]:
        if (prev, token) == tuple(pair):
            out.append(new_id)
            prev = None
        else:
            if prev is not None:
                out.append(prev)
            prev = token
    if prev is not None:
        out.append(prev)
    return out


# --------------------------------------------------------------------------- decode bugs


def _decode_per_token_replace(ids, vocab):
    return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)


def _decode_per_token_strict(ids, vocab):
    return "".join(vocab[i].decode("utf-8") for i in ids)


def _decode_strict(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8")


def _decode_latin1(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("latin-1")


def _decode_chr(ids, vocab):
    return "".join(chr(i) for i in ids)


def _decode_str_of_bytes(ids, vocab):
    return "".join(str(vocab[i]) for i in ids)


def _decode_ignore(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")


# --------------------------------------------------------------------------- encode bugs

merge = tokenizers.merge


def _encode_reverse_order(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, new_id in reversed(list(merges.items())):
        ids = merge(ids, pair, new_id)
    return ids


def _encode_most_frequent(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = tokenizers.pair_counts(ids)
        candidates = [p for p in stats if p in merges]
        if not candidates:
            break
        pair = max(candidates, key=lambda p: stats[p])
        ids = merge(ids, pair, merges[pair])
    return ids


def _encode_ord(text, merges):
    ids = [ord(c) for c in text]
    while len(ids) >= 2:
        pair = min(itertools.pairwise(ids), key=lambda p: merges.get(p, math.inf))
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def _encode_one_merge(text, merges):
    ids = list(text.encode("utf-8"))
    if len(ids) >= 2:
        pair = min(itertools.pairwise(ids), key=lambda p: merges.get(p, math.inf))
        if pair in merges:
            ids = merge(ids, pair, merges[pair])
    return ids


def _encode_single_pass(text, merges):
    """Merges the pairs present at the start only; merged tokens never merge again."""
    ids = list(text.encode("utf-8"))
    present = sorted({p for p in itertools.pairwise(ids) if p in merges}, key=merges.get)
    for pair in present:
        ids = merge(ids, pair, merges[pair])
    return ids


def _encode_largest_rank(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        pairs = [p for p in itertools.pairwise(ids) if p in merges]
        if not pairs:
            break
        pair = max(pairs, key=merges.get)
        ids = merge(ids, pair, merges[pair])
    return ids


def _encode_utf16(text, merges):
    return list(text.encode("utf-16-le"))


def _encode_in_list_order(text, merges):
    """Correct (merges applied once each, in the order learned): listed as a correct way."""
    ids = list(text.encode("utf-8"))
    for pair, new_id in merges.items():
        ids = merge(ids, pair, new_id)
    return ids


# --------------------------------------------------------------------------- bigram_probs bugs


def _counts(ids, V):
    counts = torch.zeros(V, V)
    for a, b in itertools.pairwise(ids.tolist()):
        counts[a, b] += 1
    return counts


def _probs_no_smoothing(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size)
    return counts / counts.sum(dim=1, keepdim=True)


def _probs_columns(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size) + k
    return counts / counts.sum(dim=0, keepdim=True)


def _probs_transposed(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size).T + k
    return counts / counts.sum(dim=1, keepdim=True)


def _probs_smooth_after(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size)
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1) + k


def _probs_k_once(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size)
    return (counts + k) / (counts.sum(dim=1, keepdim=True) + k)


def _probs_misses_last_pair(ids, vocab_size, k=1.0):
    counts = _counts(ids[:-1], vocab_size) + k
    return counts / counts.sum(dim=1, keepdim=True)


def _probs_returns_counts(ids, vocab_size, k=1.0):
    return _counts(ids, vocab_size) + k


def _probs_float64(ids, vocab_size, k=1.0):
    return ngram.bigram_probs(ids, vocab_size, k).double()


def _probs_global_normalise(ids, vocab_size, k=1.0):
    counts = _counts(ids, vocab_size) + k
    return counts / counts.sum()


# --------------------------------------------------------------------------- perplexity bugs


def _ppl_log2(probs, ids):
    return torch.exp(-torch.log2(probs[ids[:-1], ids[1:]]).mean()).item()


def _ppl_sum(probs, ids):
    return torch.exp(-torch.log(probs[ids[:-1], ids[1:]]).sum()).item()


def _ppl_returns_nll(probs, ids):
    return -torch.log(probs[ids[:-1], ids[1:]]).mean().item()


def _ppl_transposed(probs, ids):
    return torch.exp(-torch.log(probs[ids[1:], ids[:-1]]).mean()).item()


def _ppl_wraps_around(probs, ids):
    return torch.exp(-torch.log(probs[ids, ids.roll(-1)]).mean()).item()


def _ppl_divides_by_T(probs, ids):
    nll = -torch.log(probs[ids[:-1], ids[1:]]).sum() / len(ids)
    return torch.exp(nll).item()


def _ppl_arithmetic_mean(probs, ids):
    return 1.0 / probs[ids[:-1], ids[1:]].mean().item()


def _ppl_clamps_zero(probs, ids):
    p = probs[ids[:-1], ids[1:]].clamp(min=1e-10)
    return torch.exp(-p.log().mean()).item()


PLANTED_BUGS: dict[str, list[Bug]] = {
    "merge": [
        (
            "merges overlapping occurrences twice ([a,a,a] -> [X, X])",
            _merge_overlapping_twice,
            "(overlapping occurrences: (a, a) in [a, a, a])",
        ),
        (
            "does not advance past the merged pair",
            _merge_no_skip,
            "(one occurrence in the middle): output: expected 3 items, got 4",
        ),
        (
            "drops the last token",
            _merge_drops_last,
            "(one occurrence in the middle): output: expected 3 items, got 2",
        ),
        ("replaces only the first occurrence", _merge_first_only, "(two occurrences)"),
        (
            "never merges a pair at the very end",
            _merge_misses_the_end,
            "(the pair at the very end)",
        ),
        (
            "also merges the reversed pair",
            _merge_either_order,
            "(the reversed pair does not count)",
        ),
        ("crashes on an empty list", _merge_crashes_on_empty, "(an empty list) raised IndexError"),
    ],
    "bpe_decode": [
        (
            "decodes token by token (breaks multi-byte characters)",
            _decode_per_token_replace,
            "(Chinese, one byte per token): output: strings differ",
        ),
        (
            "decodes token by token, strictly",
            _decode_per_token_strict,
            "(Chinese, one byte per token) raised UnicodeDecodeError",
        ),
        (
            "no errors='replace': invalid UTF-8 raises",
            _decode_strict,
            "(bytes that are not valid UTF-8 (half a character)) raised UnicodeDecodeError",
        ),
        (
            "decodes the bytes as Latin-1",
            _decode_latin1,
            "(Chinese, one byte per token): output: strings differ at character 0",
        ),
        (
            "chr(id) instead of looking ids up in vocab",
            _decode_chr,
            "(a merged token): output: strings differ at character 0",
        ),
        ("str() of each bytes object", _decode_str_of_bytes, "expected 'hello', got \"b'h'b'e'"),
        (
            "errors='ignore' drops invalid bytes silently",
            _decode_ignore,
            "(bytes that are not valid UTF-8 (half a character))",
        ),
    ],
    "bpe_encode": [
        (
            "applies merges in the wrong (reverse) order",
            _encode_reverse_order,
            "(merge order decides: 'abc' with (a,b)->256 before (b,c)->257)",
        ),
        (
            "merges the most frequent pair instead of the earliest learned",
            _encode_most_frequent,
            "(rank, not frequency: 'abcbc')",
        ),
        (
            "ord(c) per character instead of UTF-8 bytes",
            _encode_ord,
            "(Chinese characters are 3 bytes each): output: expected 3 items, got 4",
        ),
        (
            "stops after one merge",
            _encode_one_merge,
            "(merges of merges: 'aaaa' -> [256, 256] -> [257])",
        ),
        (
            "one pass over the pairs present at the start",
            _encode_single_pass,
            "(merges of merges: 'aaaa' -> [256, 256] -> [257])",
        ),
        (
            "merges the pair learned last first (max instead of min)",
            _encode_largest_rank,
            "(merge order decides: 'abc' with (a,b)->256 before (b,c)->257)",
        ),
        (
            "UTF-16 instead of UTF-8",
            _encode_utf16,
            "(no merges: just the UTF-8 bytes): output: expected 3 items, got 6",
        ),
    ],
    "bigram_probs": [
        (
            "forgets smoothing (k ignored)",
            _probs_no_smoothing,
            "(a tiny sequence, V = 3, k = 1): output: 9 of 9 entries differ",
        ),
        (
            "normalises columns (dim=0) instead of rows",
            _probs_columns,
            "(a tiny sequence, V = 3, k = 1)",
        ),
        (
            "counts[next, current] (transposed)",
            _probs_transposed,
            "(a tiny sequence, V = 3, k = 1)",
        ),
        ("adds k after normalising", _probs_smooth_after, "(a tiny sequence, V = 3, k = 1)"),
        (
            "adds k once to the denominator instead of k·V",
            _probs_k_once,
            "(a tiny sequence, V = 3, k = 1)",
        ),
        (
            "misses the last pair",
            _probs_misses_last_pair,
            "(a tiny sequence, V = 3, k = 1): output: 3 of 9 entries differ",
        ),
        (
            "returns counts, not probabilities",
            _probs_returns_counts,
            "(a tiny sequence, V = 3, k = 1)",
        ),
        ("returns float64", _probs_float64, "expected dtype torch.float32, got torch.float64"),
        (
            "normalises by the grand total",
            _probs_global_normalise,
            "(a tiny sequence, V = 3, k = 1)",
        ),
    ],
    "bigram_perplexity": [
        (
            "log base 2 inside exp",
            _ppl_log2,
            "(uniform probabilities over 4 tokens: perplexity 4): output: expected 4, got 7.38906",
        ),
        (
            "sum instead of mean",
            _ppl_sum,
            "(uniform probabilities over 4 tokens: perplexity 4): output: expected 4, got 256",
        ),
        ("returns the mean NLL, not its exp", _ppl_returns_nll, "expected 4, got 1.38629"),
        (
            "probs[next, current] (transposed)",
            _ppl_transposed,
            "(one transition): output: expected 1.25, got 4",
        ),
        ("wraps around (last -> first)", _ppl_wraps_around, "(one transition)"),
        (
            "divides by T instead of T - 1",
            _ppl_divides_by_T,
            "(uniform probabilities over 4 tokens: perplexity 4)",
        ),
        (
            "1 / arithmetic mean of probabilities",
            _ppl_arithmetic_mean,
            "(a hand-made table, asymmetric)",
        ),
        (
            "clamps zero probabilities (hides an infinite perplexity)",
            _ppl_clamps_zero,
            "(a transition with probability 0: infinite perplexity)",
        ),
    ],
}


def _merge_slices(ids, pair, new_id):
    ids, out = list(ids), []
    while ids:
        if ids[:2] == list(pair):
            out.append(new_id)
            ids = ids[2:]
        else:
            out.append(ids.pop(0))
    return out


def _encode_while_any(text, merges):
    ids = list(text.encode("utf-8"))
    while True:
        ranked = [(merges[p], p) for p in itertools.pairwise(ids) if p in merges]
        if not ranked:
            return ids
        new_id, pair = min(ranked)
        ids = tokenizers.merge(ids, pair, new_id)


def _probs_bincount(ids, vocab_size, k=1.0):
    flat = torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size**2)
    counts = flat.view(vocab_size, vocab_size).float() + k
    return counts / counts.sum(dim=1, keepdim=True)


def _ppl_float32(probs, ids):
    return torch.exp(-probs[ids[:-1], ids[1:]].log().mean())


def _ppl_python(probs, ids):
    ids = ids.tolist()
    nll = [
        -math.log(probs[a, b]) if probs[a, b] > 0 else math.inf for a, b in itertools.pairwise(ids)
    ]
    return math.exp(sum(nll) / len(nll))


CORRECT_IMPLEMENTATIONS: dict[str, list[tuple[str, object]]] = {
    "merge": [
        ("labs.tokenizers.merge as typed", as_typed(tokenizers.merge)),
        ("list slicing", _merge_slices),
    ],
    "bpe_decode": [
        ("labs.tokenizers.bpe_decode as typed", as_typed(tokenizers.bpe_decode)),
        (
            "bytes concatenation in a loop",
            lambda ids, vocab: bytes(b for i in ids for b in vocab[i]).decode("utf-8", "replace"),
        ),
    ],
    "bpe_encode": [
        ("labs.tokenizers.bpe_encode as typed", as_typed(tokenizers.bpe_encode)),
        ("min over (rank, pair) tuples", _encode_while_any),
        ("each merge once, in the order learned", _encode_in_list_order),
    ],
    "bigram_probs": [
        ("labs.ngram.bigram_probs as typed", as_typed(ngram.bigram_probs)),
        ("bincount", _probs_bincount),
        (
            "Python loop over pairs",
            lambda ids, V, k=1.0: (lambda c: c / c.sum(1, keepdim=True))(_counts(ids, V) + k),
        ),
    ],
    "bigram_perplexity": [
        ("labs.ngram.bigram_perplexity as typed", as_typed(ngram.bigram_perplexity)),
        ("float32, returns a 0-d tensor", _ppl_float32),
        ("pure Python with math.log", _ppl_python),
    ],
}
