"""Counting language models: n-grams with add-k smoothing, and perplexity (lesson 02).

An n-gram model predicts the next token from the previous ``n - 1`` tokens only:

    P(x_t | x_<t) ≈ P(x_t | x_{t-n+1} … x_{t-1}) = (c(context, x_t) + k) / (c(context) + k·V)

where ``c`` counts occurrences in the training ids and ``k > 0`` (add-k smoothing)
keeps unseen continuations possible. With ``backoff=True`` the ``k·V`` pseudo-counts
are shared out like the (n-1)-gram model's predictions instead of uniformly
(interpolation with the shorter context, recursively down to uniform):

    P_n(x | h) = (c(h, x) + k·V · P_{n-1}(x | h without its oldest token)) / (c(h) + k·V)

so a context never seen in training falls back to the shorter one instead of to
uniform guessing. Counting is vectorised: every n-gram becomes
one integer ``x_0·V^{n-1} + … + x_{n-1}`` and ``np.unique`` counts them, so fitting
half a million tokens takes a fraction of a second.

Exercise references: :func:`bigram_probs` (counts -> probabilities) and
:func:`bigram_perplexity`; :func:`bigram_counts` gives the count table itself.

>>> lm = NGramLM(order=3, vocab_size=V, smoothing=0.05).fit(train_ids)
>>> lm.perplexity(val_ids)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

IdsLike = Sequence[int] | torch.Tensor | np.ndarray
DEFAULT_SMOOTHING_GRID = (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)


def _ids_array(ids: IdsLike, vocab_size: int | None = None) -> np.ndarray:
    """A 1-D int64 NumPy array of token ids, checked (NumPy: fast on a busy CPU too)."""
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    a = np.asarray(ids)
    if a.ndim == 1 and a.size == 0:
        return a.astype(np.int64)  # an empty list is float64 to NumPy
    if a.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of token ids, got shape {a.shape}")
    if a.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if vocab_size is not None and (int(a.min()) < 0 or int(a.max()) >= vocab_size):
        raise ValueError(
            f"token ids must lie in [0, {vocab_size}) for vocab_size={vocab_size}, "
            f"got min {int(a.min())} and max {int(a.max())}"
        )
    return a


def as_ids(ids: IdsLike, vocab_size: int | None = None) -> torch.Tensor:
    """A 1-D int64 tensor of token ids (from a list, array or tensor), checked."""
    return torch.from_numpy(_ids_array(ids, vocab_size))


# --------------------------------------------------------------------------- exercises


def bigram_counts(ids: IdsLike, vocab_size: int) -> torch.Tensor:
    """``C[i, j]`` = how often token ``j`` follows token ``i`` in ``ids``: float32 ``(V, V)``."""
    ids = as_ids(ids, vocab_size)
    flat = torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size * vocab_size)
    return flat.view(vocab_size, vocab_size).float()


def bigram_probs(ids: torch.Tensor, vocab_size: int, k: float = 1.0) -> torch.Tensor:
    """Bigram probabilities ``P[i, j] = P(next = j | current = i)``, add-k smoothed.

    ``ids``: 1-D int64 tensor ``(T,)``. Returns a float32 ``(V, V)`` tensor whose rows
    sum to 1: ``(counts[i, j] + k) / (Σ_j counts[i, j] + k·V)``.
    """
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.float32)
    counts.index_put_((ids[:-1], ids[1:]), torch.ones(len(ids) - 1), accumulate=True)
    counts += k
    return counts / counts.sum(dim=1, keepdim=True)


def bigram_perplexity(probs: torch.Tensor, ids: torch.Tensor) -> float:
    """Perplexity of ``ids`` under a bigram table ``probs`` (``(V, V)``, rows sum to 1).

    ``exp`` of the mean negative log-likelihood (natural log) of the ``T - 1``
    transitions ``ids[t] -> ids[t+1]``. ``inf`` if a transition has probability 0.
    """
    p = probs[ids[:-1], ids[1:]]
    return math.exp(-p.double().log().mean().item())


# --------------------------------------------------------------------------- n-grams


def ngram_keys(ids: IdsLike, n: int, vocab_size: int) -> np.ndarray:
    """Each length-``n`` window of ``ids`` as one int64: ``Σ_j ids[t+j]·V^{n-1-j}``, shape ``(T-n+1,)``."""
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids) - n + 1
    keys = np.zeros(max(T, 0), dtype=np.int64)
    for j in range(n):  # a loop over n, not over tokens
        keys = keys * vocab_size + ids[j : j + T]
    return keys


def _lookup(sorted_keys: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``counts`` of each query key (0 when absent); ``sorted_keys`` ascending."""
    if sorted_keys.size == 0:
        return np.zeros(queries.shape, dtype=np.int64)
    idx = np.searchsorted(sorted_keys, queries).clip(max=len(sorted_keys) - 1)
    return np.where(sorted_keys[idx] == queries, counts[idx], 0)


class NGramLM:
    """An ``order``-gram language model over ids ``0 … vocab_size - 1`` with add-k smoothing.

    ``smoothing`` is the ``k`` of add-k (``1.0`` is Laplace smoothing); tune it on held-out
    data with :meth:`tune_smoothing` or :func:`fit_ngram`. ``backoff=True`` spreads the
    pseudo-counts like the next-shorter context's model (see the module docstring)
    instead of uniformly. The model also keeps the
    counts of every lower order, used for the first ``order - 1`` positions of a
    sequence, where the full context is not available yet.
    """

    def __init__(
        self, order: int, vocab_size: int, smoothing: float = 1.0, *, backoff: bool = False
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1 (1 = unigram, 2 = bigram, ...), got {order}")
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        if vocab_size**order >= 2**62:
            raise ValueError(
                f"vocab_size**order = {vocab_size}**{order} does not fit in int64 n-gram keys: "
                "use a smaller order or vocabulary."
            )
        self.order = order
        self.vocab_size = vocab_size
        self.smoothing = smoothing
        self.backoff = backoff
        self.n_train = 0
        # per order m = 1..order: (sorted m-gram keys, their counts, sorted context keys, counts)
        self._tables: dict[int, tuple[np.ndarray, ...]] = {}

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        if not value > 0:
            raise ValueError(
                f"smoothing (the k of add-k) must be > 0, got {value}: with k = 0 an n-gram "
                "never seen in training has probability 0 and perplexity becomes infinite."
            )
        self._smoothing = float(value)

    def fit(self, ids: IdsLike) -> NGramLM:
        """Count every n-gram (and every lower-order one) in ``ids``; returns ``self``."""
        ids = _ids_array(ids, self.vocab_size)
        if len(ids) < self.order:
            raise ValueError(f"need at least order={self.order} training tokens, got {len(ids)}")
        self.n_train = len(ids)
        for m in range(1, self.order + 1):
            keys, counts = np.unique(ngram_keys(ids, m, self.vocab_size), return_counts=True)
            # c(context) = Σ over the next token of c(context, next)
            ctx, which = np.unique(keys // self.vocab_size, return_inverse=True)
            ctx_totals = np.bincount(which, weights=counts, minlength=len(ctx)).astype(np.int64)
            self._tables[m] = (keys, counts.astype(np.int64), ctx, ctx_totals)
        return self

    def _check_fitted(self) -> None:
        if not self._tables:
            raise RuntimeError("this NGramLM has not been fitted yet: call .fit(train_ids) first")

    def count(self, ngram: Sequence[int]) -> int:
        """How often the n-gram ``ngram`` (length 1 … order) occurred in the training ids."""
        self._check_fitted()
        m = len(ngram)
        if not 1 <= m <= self.order:
            raise ValueError(f"n-gram length must be 1 … {self.order}, got {m}")
        key = 0
        for token in ngram:
            key = key * self.vocab_size + int(token)
        keys, counts, _, _ = self._tables[m]
        return int(_lookup(keys, counts, np.array([key], dtype=np.int64))[0])

    def n_contexts(self) -> int:
        """How many distinct contexts (``order - 1`` tokens) the training ids contain."""
        self._check_fitted()
        return len(self._tables[self.order][2])

    def unseen_context_fraction(self, ids: IdsLike) -> float:
        """The fraction of positions ``t >= order - 1`` of ``ids`` whose context (the
        ``order - 1`` tokens before) never occurred in the training ids."""
        self._check_fitted()
        ids = _ids_array(ids, self.vocab_size)
        if len(ids) < self.order:
            raise ValueError(f"need at least order={self.order} ids, got {len(ids)}")
        _, _, ctx, ctx_totals = self._tables[self.order]
        contexts = ngram_keys(ids, self.order, self.vocab_size) // self.vocab_size
        return float((_lookup(ctx, ctx_totals, contexts) == 0).mean())

    def _probs_at(self, m: int, windows: np.ndarray) -> np.ndarray:
        """P(last | the m - 1 before) for m-gram keys ``windows``, shape ``(N,)``, float64."""
        keys, counts, ctx, ctx_totals = self._tables[m]
        c = _lookup(keys, counts, windows)
        c_ctx = _lookup(ctx, ctx_totals, windows // self.vocab_size)
        alpha = self.smoothing * self.vocab_size  # k pseudo-counts per token
        if self.backoff and m > 1:  # share them out like the shorter context's model does
            prior = self._probs_at(m - 1, windows % self.vocab_size ** (m - 1))
        else:
            prior = 1.0 / self.vocab_size
        return (c + alpha * prior) / (c_ctx + alpha)

    def log_probs(self, ids: IdsLike) -> torch.Tensor:
        """``log P(ids[t] | ids[t-order+1 : t])`` for every position ``t``, shape ``(T,)``, float64.

        The first ``order - 1`` positions see a shorter context (all the tokens before
        them) and use the counts of that lower order: position 0 gets the unigram
        probability. Natural logarithm (nats).
        """
        return torch.from_numpy(self._log_probs(_ids_array(ids, self.vocab_size)))

    def _log_probs(self, ids: np.ndarray) -> np.ndarray:
        self._check_fitted()
        n = self.order
        probs = np.empty(len(ids), dtype=np.float64)
        for t in range(min(n - 1, len(ids))):  # short contexts at the start
            probs[t] = self._probs_at(t + 1, ngram_keys(ids[: t + 1], t + 1, self.vocab_size))[0]
        if len(ids) >= n:
            probs[n - 1 :] = self._probs_at(n, ngram_keys(ids, n, self.vocab_size))
        return np.log(probs)

    def nll(self, ids: IdsLike) -> float:
        """Mean negative log-likelihood of ``ids``, in nats per token (``ln``), all positions."""
        ids = _ids_array(ids, self.vocab_size)
        if len(ids) == 0:
            raise ValueError("cannot score an empty sequence")
        return float(-self._log_probs(ids).mean())

    def perplexity(self, ids: IdsLike) -> float:
        """``exp(nll)``: the model is as unsure as a uniform choice among this many tokens."""
        return math.exp(self.nll(ids))

    def sequence_log_prob(self, ids: IdsLike, context: IdsLike = ()) -> float:
        """``log P(ids | context)``: the sum of the log-probabilities of ``ids``' tokens,
        each given the tokens before it (``context`` first)."""
        context, ids = _ids_array(context, self.vocab_size), _ids_array(ids, self.vocab_size)
        return float(self._log_probs(np.concatenate([context, ids]))[len(context) :].sum())

    def prob(self, context: IdsLike, token: int | None = None) -> torch.Tensor | float:
        """``P(next | context)``: a ``(V,)`` float64 tensor, or one float for ``token``.

        Only the last ``order - 1`` tokens of ``context`` are used (fewer if it is shorter).
        """
        self._check_fitted()
        context = _ids_array(context, self.vocab_size)[max(0, len(context) - self.order + 1) :]
        m = len(context) + 1
        prefix = 0
        for token_id in context.tolist():
            prefix = prefix * self.vocab_size + token_id
        windows = prefix * self.vocab_size + np.arange(self.vocab_size, dtype=np.int64)
        probs = torch.from_numpy(self._probs_at(m, windows))
        return probs if token is None else float(probs[int(token)])

    def log_prob(self, context: IdsLike, token: int | None = None) -> torch.Tensor | float:
        """``log P(next | context)``, like :meth:`prob`."""
        p = self.prob(context, token)
        return math.log(p) if token is not None else p.log()

    def sample(
        self,
        n: int,
        context: IdsLike = (),
        generator: torch.Generator | None = None,
        temperature: float = 1.0,
    ) -> list[int]:
        """Draw ``n`` new tokens one at a time, each from ``P(next | the tokens so far)``.

        Returns the new tokens only (not ``context``). Seed ``generator`` for repeatable
        samples; ``temperature < 1`` makes them more conservative.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        tokens = _ids_array(context, self.vocab_size).tolist()
        out: list[int] = []
        for _ in range(n):
            probs = self.prob(tokens[-(self.order - 1) :] if self.order > 1 else [])
            if temperature != 1.0:
                probs = probs.pow(1.0 / temperature)
            token = int(torch.multinomial(probs / probs.sum(), 1, generator=generator))
            tokens.append(token)
            out.append(token)
        return out

    def tune_smoothing(
        self, ids: IdsLike, candidates: Sequence[float] = DEFAULT_SMOOTHING_GRID
    ) -> float:
        """Set ``smoothing`` to the candidate with the lowest nll on ``ids``; return it.

        Tune on held-out ids the model was *not* fitted on (on the training ids the
        smallest k always wins).
        """
        scores = {}
        for k in candidates:
            self.smoothing = k
            scores[k] = self.nll(ids)
        self.smoothing = min(scores, key=scores.get)
        return self.smoothing

    def __repr__(self) -> str:
        return (
            f"NGramLM(order={self.order}, vocab_size={self.vocab_size}, "
            f"smoothing={self.smoothing:g}, backoff={self.backoff})"
        )


def fit_ngram(
    order: int,
    vocab_size: int,
    train_ids: IdsLike,
    *,
    tune_fraction: float = 0.1,
    candidates: Sequence[float] = DEFAULT_SMOOTHING_GRID,
    backoff: bool = False,
) -> NGramLM:
    """An n-gram model fitted on ``train_ids`` with its add-k ``smoothing`` tuned honestly.

    The last ``tune_fraction`` of ``train_ids`` is held out to pick ``smoothing`` from
    ``candidates``; then the model is refitted on all of ``train_ids``. The validation
    set is never touched.
    """
    train_ids = _ids_array(train_ids, vocab_size)
    n_tune = max(1, round(len(train_ids) * tune_fraction))
    model = NGramLM(order, vocab_size, backoff=backoff).fit(train_ids[:-n_tune])
    model.tune_smoothing(train_ids[-n_tune:], candidates)
    return model.fit(train_ids)
