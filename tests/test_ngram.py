"""labs.ngram against brute-force Python loops, and the bigram < trigram promise on the corpus."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from labs.ngram import (
    NGramLM,
    as_ids,
    bigram_counts,
    bigram_perplexity,
    bigram_probs,
    fit_ngram,
    ngram_keys,
)


def _random_ids(seed: int, n: int, V: int) -> list[int]:
    rng = random.Random(seed)
    # a skewed, repetitive source so that n-grams repeat
    return [min(int(rng.expovariate(0.5)), V - 1) for _ in range(n)]


def _brute_prob(ids: list[int], context: tuple[int, ...], token: int, V: int, k: float) -> float:
    """Add-k estimate by counting with plain Python over every window."""
    m = len(context) + 1
    grams = Counter(tuple(ids[i : i + m]) for i in range(len(ids) - m + 1))
    c = grams[(*context, token)]
    c_ctx = sum(count for gram, count in grams.items() if gram[:-1] == context)
    return (c + k) / (c_ctx + k * V)


@pytest.mark.parametrize(("order", "V"), [(1, 5), (2, 7), (3, 4), (4, 3)])
def test_counts_match_brute_force(order, V):
    ids = _random_ids(order, 400, V)
    lm = NGramLM(order, V).fit(ids)
    for m in range(1, order + 1):
        grams = Counter(tuple(ids[i : i + m]) for i in range(len(ids) - m + 1))
        for gram, count in grams.items():
            assert lm.count(gram) == count
        assert lm.count((V - 1,) * m) == grams.get((V - 1,) * m, 0)
    contexts = {tuple(ids[i : i + order - 1]) for i in range(len(ids) - order + 1)}
    assert lm.n_contexts() == len(contexts)


def test_unseen_context_fraction_matches_brute_force():
    V = 6
    train, held_out = _random_ids(80, 300, V), _random_ids(81, 200, V)
    for order in (1, 2, 3, 4):
        lm = NGramLM(order, V).fit(train)
        seen = {tuple(train[i : i + order - 1]) for i in range(len(train) - order + 1)}
        positions = range(order - 1, len(held_out))
        unseen = [tuple(held_out[t - order + 1 : t]) not in seen for t in positions]
        assert math.isclose(lm.unseen_context_fraction(held_out), sum(unseen) / len(unseen))


def test_ngram_keys_are_base_V_numbers():
    keys = ngram_keys([1, 2, 3, 4], 3, 10)
    assert keys.tolist() == [123, 234]
    assert ngram_keys([1, 2], 3, 10).tolist() == []


@pytest.mark.parametrize(("order", "k"), [(1, 1.0), (2, 0.5), (3, 0.1), (4, 0.03)])
def test_probabilities_sum_to_one_and_match_brute_force(order, k):
    V = 6
    ids = _random_ids(10 + order, 300, V)
    lm = NGramLM(order, V, smoothing=k).fit(ids)
    rng = random.Random(order)
    for _ in range(5):
        context = tuple(rng.randrange(V) for _ in range(order - 1))
        probs = lm.prob(context)
        assert probs.shape == (V,) and probs.dtype == torch.float64
        assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-12)
        for token in range(V):
            assert math.isclose(lm.prob(context, token), _brute_prob(ids, context, token, V, k))
            assert math.isclose(
                lm.log_prob(context, token), math.log(_brute_prob(ids, context, token, V, k))
            )
    # a longer context uses only its last order - 1 tokens
    long = (0, 1, 2, 3, 4, 5)
    assert torch.equal(lm.prob(long), lm.prob(long[len(long) - order + 1 :] if order > 1 else ()))


def _brute_backoff_prob(ids, context, token, V, k):
    """Interpolated add-k, recursively: pseudo-counts spread like the shorter context's model."""
    m = len(context) + 1
    grams = Counter(tuple(ids[i : i + m]) for i in range(len(ids) - m + 1))
    c = grams[(*context, token)]
    c_ctx = sum(count for gram, count in grams.items() if gram[:-1] == context)
    prior = _brute_backoff_prob(ids, context[1:], token, V, k) if context else 1.0 / V
    return (c + k * V * prior) / (c_ctx + k * V)


@pytest.mark.parametrize(("order", "k"), [(1, 0.5), (2, 0.1), (3, 0.05), (4, 0.2)])
def test_backoff_matches_brute_force_and_sums_to_one(order, k):
    V = 5
    ids = _random_ids(90 + order, 300, V)
    lm = NGramLM(order, V, smoothing=k, backoff=True).fit(ids)
    rng = random.Random(order)
    for _ in range(4):
        context = tuple(rng.randrange(V) for _ in range(order - 1))
        probs = lm.prob(context)
        assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-12)
        for token in range(V):
            expected = _brute_backoff_prob(ids, context, token, V, k)
            assert math.isclose(lm.prob(context, token), expected, rel_tol=1e-12)
    # an unseen context falls back to the shorter one, not to uniform
    unseen = NGramLM(2, 3, smoothing=0.1, backoff=True).fit([0, 0, 1, 0, 0, 1])
    assert torch.allclose(
        unseen.prob([2]), NGramLM(1, 3, smoothing=0.1).fit([0, 0, 1, 0, 0, 1]).prob([])
    )
    assert repr(unseen).endswith("backoff=True)")


def test_backoff_beats_add_k_at_high_order_on_the_corpus_prefix():
    from labs.data import load_corpus
    from labs.tokenizers import CharTokenizer

    text = load_corpus()[:120_000]
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    train, val = ids[:100_000], ids[100_000:]
    add_k = fit_ngram(5, tok.vocab_size, train).perplexity(val)
    backoff = fit_ngram(5, tok.vocab_size, train, backoff=True).perplexity(val)
    assert backoff < 0.9 * add_k


@pytest.mark.parametrize("order", [1, 2, 3])
def test_nll_equals_brute_force(order):
    V, k = 5, 0.2
    train, held_out = _random_ids(20, 500, V), _random_ids(21, 60, V)
    lm = NGramLM(order, V, smoothing=k).fit(train)
    total = 0.0
    for t, token in enumerate(held_out):
        context = tuple(held_out[max(0, t - order + 1) : t])  # shorter at the start
        total -= math.log(_brute_prob(train, context, token, V, k))
    assert math.isclose(lm.nll(held_out), total / len(held_out), rel_tol=1e-10)
    assert math.isclose(lm.perplexity(held_out), math.exp(total / len(held_out)), rel_tol=1e-10)
    log_probs = lm.log_probs(held_out)
    assert log_probs.shape == (len(held_out),)
    context = held_out[:5]
    expected = float(lm.log_probs(held_out)[5:].sum())
    assert math.isclose(lm.sequence_log_prob(held_out[5:], context), expected, rel_tol=1e-12)


def test_bigram_exercise_reference_matches_the_model():
    V, k = 7, 0.5
    train, held_out = torch.tensor(_random_ids(30, 800, V)), torch.tensor(_random_ids(31, 200, V))
    probs = bigram_probs(train, V, k)
    assert probs.dtype == torch.float32 and probs.shape == (V, V)
    assert torch.allclose(probs.sum(dim=1), torch.ones(V))
    lm = NGramLM(2, V, smoothing=k).fit(train)
    for i in range(V):
        assert torch.allclose(probs[i].double(), lm.prob([i]), atol=1e-7)
    # the exercise scores T - 1 transitions; the model also scores position 0 (unigram)
    expected = math.exp(-float(lm.log_probs(held_out)[1:].mean()))
    assert math.isclose(bigram_perplexity(probs, held_out), expected, rel_tol=1e-6)


def test_bigram_counts_match_a_python_loop():
    V = 5
    ids = _random_ids(70, 300, V)
    expected = torch.zeros(V, V)
    for a, b in itertools.pairwise(ids):
        expected[a, b] += 1
    assert torch.equal(bigram_counts(ids, V), expected)
    assert bigram_counts([3], V).sum() == 0


def test_uniform_model_has_perplexity_V():
    uniform = torch.full((5, 5), 0.2)
    assert math.isclose(bigram_perplexity(uniform, torch.tensor([0, 4, 2, 2])), 5.0, rel_tol=1e-6)
    lm = NGramLM(2, 5, smoothing=1e6).fit([0, 1, 2, 3, 4])
    assert math.isclose(lm.perplexity([4, 3, 2, 1, 0, 0]), 5.0, rel_tol=1e-4)


def test_sampling_is_seeded_and_follows_the_counts():
    lm = NGramLM(2, 3, smoothing=1e-6).fit([0, 1, 2] * 50)
    out = lm.sample(20, context=[0], generator=torch.Generator().manual_seed(0))
    assert out[:6] == [1, 2, 0, 1, 2, 0]  # deterministic cycle: the only continuation seen
    a = NGramLM(3, 5).fit(_random_ids(40, 300, 5))
    s1 = a.sample(50, generator=torch.Generator().manual_seed(1))
    s2 = a.sample(50, generator=torch.Generator().manual_seed(1))
    assert s1 == s2 and len(s1) == 50 and all(0 <= t < 5 for t in s1)
    assert a.sample(5, generator=torch.Generator().manual_seed(1), temperature=0.5) != []


def test_tuning_picks_the_best_candidate_on_held_out_ids():
    V = 6
    train, tune = _random_ids(50, 2000, V), _random_ids(51, 500, V)
    lm = NGramLM(3, V).fit(train)
    best = lm.tune_smoothing(tune, candidates=(0.001, 0.1, 10.0))
    scores = {}
    for k in (0.001, 0.1, 10.0):
        scores[k] = NGramLM(3, V, smoothing=k).fit(train).nll(tune)
    assert best == min(scores, key=scores.get) == lm.smoothing
    model = fit_ngram(2, V, train, candidates=(0.01, 1.0))
    assert model.smoothing in (0.01, 1.0) and model.n_train == len(train)


def test_inputs_in_any_form_give_the_same_model():
    ids = _random_ids(60, 200, 4)
    a = NGramLM(2, 4).fit(ids).nll(ids)
    b = NGramLM(2, 4).fit(torch.tensor(ids)).nll(np.array(ids))
    assert a == b


def test_clear_errors():
    with pytest.raises(ValueError, match="order must be >= 1"):
        NGramLM(0, 10)
    with pytest.raises(ValueError, match="does not fit in int64"):
        NGramLM(8, 500_000)
    with pytest.raises(ValueError, match="must be > 0"):
        NGramLM(2, 10, smoothing=0.0)
    with pytest.raises(RuntimeError, match=r"call \.fit"):
        NGramLM(2, 10).nll([1, 2])
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\)"):
        NGramLM(2, 10).fit([1, 2, 10])
    with pytest.raises(ValueError, match="must be integers"):
        as_ids([1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        as_ids([[1, 2]])
    with pytest.raises(ValueError, match="at least order=3"):
        NGramLM(3, 10).fit([1, 2])
    with pytest.raises(ValueError, match="empty"):
        NGramLM(1, 10).fit([1, 2]).nll([])


def test_trigram_beats_bigram_on_the_corpus():
    """The lesson's claim, at character level on the default corpus, k tuned honestly."""
    from labs.data import load_corpus, train_val_split
    from labs.tokenizers import CharTokenizer

    text = load_corpus()
    tok = CharTokenizer.from_text(text)
    train, val = train_val_split(torch.tensor(tok.encode(text)))
    bigram = fit_ngram(2, tok.vocab_size, train).perplexity(val)
    trigram = fit_ngram(3, tok.vocab_size, train).perplexity(val)
    assert trigram < 0.7 * bigram < 0.7 * 12
