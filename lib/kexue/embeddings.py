"""Word vectors that fit pointwise mutual information: the "simpler GloVe" and its queries.

The model gives every word ``w`` one vector ``v_w`` and asks that the inner product of two
vectors equal the pointwise mutual information (PMI) of the two words,

    <v_i, v_j> = log P(i, j) / (P(i) P(j)),

estimated from a symmetric window co-occurrence count ``X`` and the word counts ``c``. It is
fitted by weighted least squares over the observed pairs (``X_ij > 0``, ``i != j``) with
GloVe's weights ``(X_ij / x_max) ** alpha`` (optionally capped at 1) and Adagrad. The pieces:

- :func:`build_vocab`, :func:`encode`: the vocabulary (most frequent first) and the corpus as
  one flat array of word ids with sentence ids;
- :func:`cooccurrence`: the symmetric window count, vectorised (one pass per offset, summed by
  ``scipy.sparse``), sentence boundaries respected;
- :func:`pmi_targets`, :func:`glove_weights`: the regression targets and weights;
- :func:`glove_loss`, :func:`glove_gradient`, :func:`adagrad_update`, :func:`fit_glove`: the
  objective, its closed-form gradient, the optimizer step and the training loop (``keras.ops``:
  TensorFlow and JAX);
- :func:`train_word_vectors`: all of the above from a list of sentences, returning
  :class:`WordVectors`, which answers the queries (norms, related and similar words, analogies,
  keywords, sentence vectors).

Used in: book/sequence/simpler-glove.md, book/sequence/word-movers-distance.md.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    check_bool,
    check_int,
    check_int_range,
    check_positive,
    check_real,
    describe,
)
from kexue.text import _check_sentences  # the segmented-sentence check of word segmentation

__all__ = [
    "build_vocab", "encode", "cooccurrence", "pmi_targets", "glove_weights", "glove_loss",
    "glove_gradient", "adagrad_update", "fit_glove", "similarity_transform", "WordVectors",
    "train_word_vectors",
]


# ------------------------------------------------------------------------------ the corpus


def build_vocab(sentences, min_count: int = 1, max_size: int | None = None):
    """The vocabulary of a corpus, most frequent word first.

    Args:
        sentences: a list of sentences, each a list of words (strings).
        min_count: keep the words seen at least this often.
        max_size: keep at most this many words (``None``: no limit).

    Returns:
        ``(words, counts)``: ``list[str]`` of length V, sorted by falling count (ties by the
        word itself, so the order does not depend on the corpus order), and the ``int64``
        counts ``(V,)``.

    Used in: book/sequence/simpler-glove.md
    """
    from collections import Counter

    _check_sentences(sentences, "sentences")
    min_count = check_int(min_count, "min_count", 1)
    if max_size is not None:
        max_size = check_int(max_size, "max_size", 1)
    counter = Counter()
    for s in sentences:
        counter.update(s)
    for w in counter:
        if not isinstance(w, str):
            raise ArgumentTypeError(f"sentences must hold words (strings), got {describe(w)}.")
    items = sorted(((w, c) for w, c in counter.items() if c >= min_count),
                   key=lambda wc: (-wc[1], wc[0]))[:max_size]
    return [w for w, _ in items], np.array([c for _, c in items], dtype=np.int64)


def encode(sentences, index: dict):
    """The corpus as one flat array of word ids, out-of-vocabulary words dropped.

    Args:
        sentences: a list of sentences (lists of words).
        index: word to id, e.g. ``{w: i for i, w in enumerate(words)}``.

    Returns:
        ``(ids, sentence_ids)``: two ``int64`` arrays of shape ``(n_tokens,)``, the id of every
        in-vocabulary token and the number of the sentence it belongs to. Dropping unknown
        words before windowing is what GloVe's ``cooccur`` does.

    Used in: book/sequence/simpler-glove.md
    """
    _check_sentences(sentences, "sentences")
    if not isinstance(index, dict):
        raise ArgumentTypeError(f"index must be a dict word -> id, got {describe(index)}.")
    ids, sids = [], []
    get = index.get
    for k, s in enumerate(sentences):
        row = [i for i in map(get, s) if i is not None]
        ids.extend(row)
        sids.extend([k] * len(row))
    return np.asarray(ids, dtype=np.int64), np.asarray(sids, dtype=np.int64)


def cooccurrence(ids, sentence_ids, vocab_size: int, window: int = 5):
    """Symmetric window co-occurrence counts of a corpus, as a sparse matrix.

    ``X[i, j]`` is the number of times word ``j`` occurs within ``window`` positions of an
    occurrence of word ``i`` in the same sentence (each such pair counts 1, whatever the
    distance: the unweighted count of the simpler GloVe, not GloVe's 1/distance). ``X`` is
    symmetric; its diagonal counts a word next to itself.

    Vectorised: one NumPy pass per offset ``d = 1..window`` pairs every token with the token
    ``d`` places later, keeps the pairs within one sentence, and ``scipy.sparse`` sums the
    duplicates. No Python loop runs over tokens or pairs.

    Args:
        ids: ``(n,)`` integer word ids in ``[0, vocab_size)`` (see :func:`encode`).
        sentence_ids: ``(n,)`` the sentence of each token (non-decreasing).
        vocab_size: V.
        window: the largest offset counted.

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(V, V)``, dtype ``int64``.

    Used in: book/sequence/simpler-glove.md
    """
    import scipy.sparse as sp

    vocab_size = check_int(vocab_size, "vocab_size", 1)
    window = check_int(window, "window", 1)
    ids = as_array(ids, "ids")
    sentence_ids = as_array(sentence_ids, "sentence_ids")
    if ids.ndim != 1 or sentence_ids.shape != ids.shape:
        raise ValueError(f"ids and sentence_ids must be 1-D arrays of one length, got shapes "
                         f"{ids.shape} and {sentence_ids.shape}.")
    check_int_range(ids, "ids", 0, vocab_size)
    ids = ids.astype(np.int64)
    rows, cols = [], []
    for d in range(1, min(window, max(len(ids) - 1, 0)) + 1):
        same = sentence_ids[:-d] == sentence_ids[d:]
        rows.append(ids[:-d][same])
        cols.append(ids[d:][same])
    if rows:
        r, c = np.concatenate(rows), np.concatenate(cols)
    else:
        r = c = np.zeros(0, np.int64)
    upper = sp.coo_matrix((np.ones(len(r), np.int64), (r, c)),
                          shape=(vocab_size, vocab_size)).tocsr()
    upper.sum_duplicates()
    return (upper + upper.T).tocsr()


def pmi_targets(X, counts, include_diagonal: bool = False):
    """The observed pairs of a co-occurrence matrix and their estimated PMI.

    With ``N = sum(X)`` (all entries, both orders) and ``C = sum(counts)``:

        PMI_ij = log X_ij - log N - log c_i - log c_j + 2 log C,

    i.e. ``log (X_ij / N) / ((c_i / C) (c_j / C))``, as the simpler GloVe's ``glove.c`` computes it.

    Args:
        X: symmetric ``(V, V)`` counts (a ``scipy.sparse`` matrix or a dense array).
        counts: ``(V,)`` word counts (positive).
        include_diagonal: also return the pairs ``i == j`` (the loss leaves them out).

    Returns:
        ``(i, j, x, pmi)``: each unordered pair once (``i < j``, or ``i <= j`` with the
        diagonal), ``int64`` ids, ``float64`` counts and PMI values, sorted by ``(i, j)``.

    Used in: book/sequence/simpler-glove.md
    """
    import scipy.sparse as sp

    include_diagonal = check_bool(include_diagonal, "include_diagonal")
    if sp.issparse(X):
        X = X.tocsr()
    else:
        X = sp.csr_matrix(as_array(X, "X"))
    counts = as_array(counts, "counts", "float64")
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"X must be a square (V, V) matrix, got shape {X.shape}.")
    if counts.shape != (X.shape[0],):
        raise ValueError(f"counts must have shape ({X.shape[0]},) to match X, got shape "
                         f"{counts.shape}.")
    if not (counts > 0).all():
        raise ValueError(f"counts must be positive, got a minimum of {counts.min()!r}.")
    if X.nnz and X.data.min() < 0:
        raise ValueError(f"X must hold counts >= 0, got a minimum of {X.data.min()!r}.")
    total = float(X.sum())
    if total <= 0:
        raise ValueError("X must hold at least one co-occurrence, got an all-zero matrix.")
    tri = sp.triu(X, k=0 if include_diagonal else 1).tocoo()
    keep = tri.data > 0
    i, j, x = tri.row[keep].astype(np.int64), tri.col[keep].astype(np.int64), \
        tri.data[keep].astype(np.float64)
    order = np.lexsort((j, i))
    i, j, x = i[order], j[order], x[order]
    log_c = np.log(counts)
    pmi = np.log(x) - math.log(total) - log_c[i] - log_c[j] + 2 * math.log(counts.sum())
    return i, j, x, pmi


def glove_weights(x, x_max: float = 100.0, alpha: float = 0.75, truncate: bool = True):
    """GloVe's weight of a pair seen ``x`` times: ``(x / x_max) ** alpha``, capped at 1 when
    ``truncate`` (GloVe's own choice), uncapped otherwise (the simpler GloVe's default).

    Returns a ``float64`` array of the shape of ``x``.

    Used in: book/sequence/simpler-glove.md
    """
    x = as_array(x, "x", "float64")
    x_max = check_positive(x_max, "x_max")
    alpha = check_real(alpha, "alpha", 0.0)
    truncate = check_bool(truncate, "truncate")
    if x.size and not (x > 0).all():
        raise ValueError(f"x must hold positive counts, got a minimum of {x.min()!r}.")
    w = (x / x_max) ** alpha
    return np.minimum(w, 1.0) if truncate else w


# ------------------------------------------------------------------------------ the model


def _pair_args(vectors, i, j, target, weight):
    from kexue._checks import as_float_tensor, as_tensor, check_shape

    vectors = as_float_tensor(vectors, "vectors")
    check_shape(vectors, "vectors", ("V", "dim"))
    dims: dict = {}
    i = as_tensor(i, "i")
    j = as_tensor(j, "j")
    check_shape(i, "i", ("pairs",), dims)
    check_shape(j, "j", ("pairs",), dims)
    target = as_float_tensor(target, "target")
    weight = as_float_tensor(weight, "weight")
    check_shape(target, "target", ("pairs",), dims)
    check_shape(weight, "weight", ("pairs",), dims)
    V = vectors.shape[0]
    if V is not None:
        check_int_range(i, "i", 0, V)
        check_int_range(j, "j", 0, V)
    return vectors, i, j, target, weight


def glove_loss(vectors, i, j, target, weight):
    """The weighted least-squares objective of the simpler GloVe:

        L = 1/2 * sum_k weight_k (<v_{i_k}, v_{j_k}> - target_k) ** 2.

    The factor 1/2 makes :func:`glove_gradient` exactly its gradient. (Summing over both orders
    of every pair, as GloVe's record file does, doubles ``L``; the minimiser is the same.)

    Args:
        vectors: ``(V, dim)`` float tensor.
        i, j: ``(pairs,)`` integer word ids.
        target, weight: ``(pairs,)`` floats (the PMI and the pair weights).

    Returns:
        A scalar tensor.

    Used in: book/sequence/simpler-glove.md
    """
    from keras import ops

    vectors, i, j, target, weight = _pair_args(vectors, i, j, target, weight)
    return _loss(vectors, i, j, ops.cast(target, vectors.dtype), ops.cast(weight, vectors.dtype))


def _loss(vectors, i, j, target, weight):
    from keras import ops

    vi, vj = ops.take(vectors, i, axis=0), ops.take(vectors, j, axis=0)
    err = ops.sum(vi * vj, axis=-1) - target
    return 0.5 * ops.sum(weight * err * err)


def glove_gradient(vectors, i, j, target, weight):
    """The gradient of :func:`glove_loss` with respect to ``vectors``, in closed form.

    With ``e_k = <v_{i_k}, v_{j_k}> - target_k``, pair ``k`` adds ``weight_k e_k v_{j_k}`` to
    row ``i_k`` and ``weight_k e_k v_{i_k}`` to row ``j_k``; the rows are summed with one
    ``segment_sum``.

    Returns:
        ``(V, dim)`` tensor (rows of words in no pair are zero).

    Used in: book/sequence/simpler-glove.md
    """
    from keras import ops

    vectors, i, j, target, weight = _pair_args(vectors, i, j, target, weight)
    return _gradient(vectors, i, j, ops.cast(target, vectors.dtype),
                     ops.cast(weight, vectors.dtype))[1]


def _gradient(vectors, i, j, target, weight):
    from keras import ops

    vi, vj = ops.take(vectors, i, axis=0), ops.take(vectors, j, axis=0)
    err = ops.sum(vi * vj, axis=-1) - target
    scale = (weight * err)[:, None]
    rows = ops.concatenate([scale * vj, scale * vi], axis=0)
    n_rows = vectors.shape[0] if vectors.shape[0] is not None else ops.shape(vectors)[0]
    grad = ops.segment_sum(rows, ops.concatenate([i, j], axis=0), num_segments=n_rows)
    return 0.5 * ops.sum(weight * err * err), grad


def adagrad_update(vectors, accumulator, gradient, learning_rate: float = 0.1,
                   epsilon: float = 1e-8):
    """One Adagrad step: ``G += g * g``, ``v -= lr * g / sqrt(G + epsilon)``.

    The same arithmetic as ``keras.optimizers.Adagrad`` (with ``initial_accumulator_value``
    the starting ``G``; the simpler GloVe starts at 1) and as the repository's ``glove.c``;
    functional, so that :func:`fit_glove` can compile it.

    Args:
        vectors, accumulator, gradient: tensors of one shape.

    Returns:
        ``(new_vectors, new_accumulator)``.

    Used in: book/sequence/simpler-glove.md
    """
    from keras import ops

    from kexue._checks import as_float_tensor

    vectors = as_float_tensor(vectors, "vectors")
    accumulator = as_float_tensor(accumulator, "accumulator")
    gradient = as_float_tensor(gradient, "gradient")
    for name, t in (("accumulator", accumulator), ("gradient", gradient)):
        if tuple(t.shape) != tuple(vectors.shape):
            raise ValueError(f"{name} must have the shape of vectors {tuple(vectors.shape)}, "
                             f"got shape {tuple(t.shape)}.")
    learning_rate = check_positive(learning_rate, "learning_rate")
    epsilon = check_real(epsilon, "epsilon", 0.0)
    return _adagrad(vectors, accumulator, ops.cast(gradient, vectors.dtype), learning_rate,
                    epsilon)


def _adagrad(vectors, accumulator, gradient, learning_rate, epsilon):
    from keras import ops

    accumulator = accumulator + gradient * gradient
    return vectors - learning_rate * gradient / ops.sqrt(accumulator + epsilon), accumulator


def _compile(fn):
    """``fn`` compiled by the backend (``tf.function`` or ``jax.jit``); as is elsewhere."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    if backend == "jax":
        import jax

        return jax.jit(fn, static_argnums=(5, 6))
    return fn


def _train_step(vectors, accumulator, i, j, target, learning_rate, epsilon, weight):
    loss, grad = _gradient(vectors, i, j, target, weight)
    vectors, accumulator = _adagrad(vectors, accumulator, grad, learning_rate, epsilon)
    return vectors, accumulator, loss


_STEP = {}


def fit_glove(i, j, target, weight, vocab_size: int, dim: int = 64, epochs: int = 10,
              batch_size: int = 65536, learning_rate: float = 0.5, seed: int = 0,
              time_budget_s: float | None = None, init=None, progress: bool = False):
    """Fit vectors to the pairs by mini-batch Adagrad on :func:`glove_loss`.

    Every epoch visits the pairs in a new random order, in batches of ``batch_size``; a batch's
    gradient (:func:`glove_gradient`, summed over its pairs) takes one :func:`adagrad_update`
    step with the accumulator started at 1 and ``epsilon = 1e-8``, as in the simpler GloVe's
    ``glove.c``. That code updates after every pair from 16 threads without locks; summing a
    batch first is the vectorised counterpart (Adagrad's per-coordinate scaling keeps a
    frequent word's summed step bounded by ``learning_rate``). A word then takes one step per
    batch instead of one per pair, so the default step, 0.5, is larger than the article's 0.1
    (which is per pair). The vectors start uniform in ``[-0.5, 0.5) / dim``, as in ``glove.c``.

    Args:
        i, j, target, weight: the pairs (see :func:`pmi_targets`, :func:`glove_weights`).
        vocab_size, dim: the shape of the vectors.
        epochs: passes over the pairs.
        batch_size: pairs per Adagrad step (the last batch is padded with weight-0 pairs).
        learning_rate: Adagrad's step size (0.1 per pair in the article; see above).
        seed: seeds the initial vectors and the order of the pairs.
        time_budget_s: stop after the first epoch that ends past this many seconds.
        init: optional ``(V, dim)`` starting vectors instead of the random ones.
        progress: show a tqdm bar over the epochs.

    Returns:
        ``(vectors, losses)``: ``float32`` ``(V, dim)`` array and the loss of each epoch
        (summed over its batches before each step), a list of floats.

    Used in: book/sequence/simpler-glove.md
    """
    import keras
    from keras import ops

    vocab_size = check_int(vocab_size, "vocab_size", 1)
    dim = check_int(dim, "dim", 1)
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    learning_rate = check_positive(learning_rate, "learning_rate")
    seed = check_int(seed, "seed", 0, "a non-negative integer")
    progress = check_bool(progress, "progress")
    if time_budget_s is not None:
        time_budget_s = check_positive(time_budget_s, "time_budget_s")
    i = as_array(i, "i").astype(np.int64)
    j = as_array(j, "j").astype(np.int64)
    target = as_array(target, "target", "float32")
    weight = as_array(weight, "weight", "float32")
    n = len(i)
    for name, a in (("j", j), ("target", target), ("weight", weight)):
        if a.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},) to match i, got shape {a.shape}.")
    if i.ndim != 1 or n == 0:
        raise ValueError(f"i must be a non-empty 1-D array of word ids, got shape {i.shape}.")
    check_int_range(i, "i", 0, vocab_size)
    check_int_range(j, "j", 0, vocab_size)
    for name, a in (("target", target), ("weight", weight)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must hold finite values, got a non-finite one.")
    rng = np.random.default_rng(seed)
    if init is None:
        start = ((rng.random((vocab_size, dim)) - 0.5) / dim).astype("float32")
    else:
        start = as_array(init, "init", "float32")
        if start.shape != (vocab_size, dim):
            raise ValueError(f"init must have shape ({vocab_size}, {dim}), got shape "
                             f"{start.shape}.")
    backend = keras.backend.backend()
    if backend not in _STEP:
        _STEP[backend] = _compile(_train_step)
    step = _STEP[backend]
    batch = min(batch_size, n)
    n_batches = -(-n // batch)
    pad = n_batches * batch - n
    vectors = ops.convert_to_tensor(start)
    acc = ops.ones((vocab_size, dim), dtype="float32")
    losses = []
    t0 = time.perf_counter()
    epoch_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="epochs", leave=False)
    for _ in epoch_iter:
        order = rng.permutation(n)
        if pad:
            order = np.concatenate([order, np.zeros(pad, np.int64)])
        ii, jj = i[order].astype("int32"), j[order].astype("int32")
        tt, ww = target[order], weight[order].copy()
        if pad:
            ww[n:] = 0.0
        total = 0.0
        for b in range(n_batches):
            s = slice(b * batch, (b + 1) * batch)
            vectors, acc, loss = step(vectors, acc, ii[s], jj[s], tt[s], learning_rate, 1e-8,
                                      ww[s])
            total += float(loss)
        losses.append(total)
        if time_budget_s is not None and time.perf_counter() - t0 > time_budget_s:
            break
    return ops.convert_to_numpy(vectors).astype("float32"), losses


# ------------------------------------------------------------------------------ the queries


def similarity_transform(context_vectors):
    """The matrix ``U`` that turns "similar" into a cosine.

    The article calls two words similar when their inner products with the N context words
    rise and fall together: the Pearson correlation of ``(<v_i, v_k>)_k`` and ``(<v_j, v_k>)_k``.
    Centring the context vectors, ``C = context - mean``, that correlation is
    ``v_i C^T C v_j / (|C v_i| |C v_j|)``; with the Cholesky factor ``C^T C = U U^T`` it is the
    cosine of ``v_i U`` and ``v_j U``.

    Args:
        context_vectors: ``(N, dim)`` with ``N > dim`` (the most frequent words' vectors).

    Returns:
        ``(dim, dim)`` lower-triangular ``float64`` ``U``.

    Used in: book/sequence/simpler-glove.md
    """
    c = as_array(context_vectors, "context_vectors", "float64")
    if c.ndim != 2 or c.shape[0] <= c.shape[1]:
        raise ValueError(f"context_vectors must have shape (N, dim) with N > dim, got shape "
                         f"{c.shape}.")
    c = c - c.mean(axis=0)
    return np.linalg.cholesky(c.T @ c)


@dataclass
class WordVectors:
    """Trained word vectors and the queries of the simpler GloVe.

    Attributes:
        words: ``list[str]`` of length V, most frequent first.
        vectors: ``float32`` ``(V, dim)``.
        counts: ``int64`` ``(V,)`` corpus counts.
        index: word to row (built from ``words``).
        history: loss per epoch of the training that made them (may be empty).

    Used in: book/sequence/simpler-glove.md, book/sequence/word-movers-distance.md
    """

    words: list
    vectors: np.ndarray
    counts: np.ndarray
    history: list = field(default_factory=list)
    index: dict = field(init=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.words, (list, tuple)) or not all(isinstance(w, str)
                                                                for w in self.words):
            raise ArgumentTypeError(f"words must be a list of strings, got "
                                    f"{describe(self.words)}.")
        self.words = list(self.words)
        self.vectors = as_array(self.vectors, "vectors", "float32")
        self.counts = as_array(self.counts, "counts", "int64")
        V = len(self.words)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != V:
            raise ValueError(f"vectors must have shape ({V}, dim) to match words, got shape "
                             f"{self.vectors.shape}.")
        if self.counts.shape != (V,):
            raise ValueError(f"counts must have shape ({V},) to match words, got shape "
                             f"{self.counts.shape}.")
        self.index = {w: k for k, w in enumerate(self.words)}
        if len(self.index) != V:
            raise ValueError("words must be distinct, got a repeated word.")

    def __contains__(self, word) -> bool:
        return word in self.index

    def __len__(self) -> int:
        return len(self.words)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def _row(self, word, name="word") -> int:
        if not isinstance(word, str):
            raise ArgumentTypeError(f"{name} must be a word (a string), got {describe(word)}.")
        if word not in self.index:
            raise ValueError(f"{name} must be in the vocabulary, got {word!r}.")
        return self.index[word]

    def lookup(self, words) -> np.ndarray:
        """The vectors ``(n, dim)`` of the known words among ``words`` (unknown ones dropped)."""
        if isinstance(words, (str, bytes)) or not isinstance(words, (list, tuple)):
            raise ArgumentTypeError(f"words must be a list of words, got {describe(words)}.")
        rows = [self.index[w] for w in words if isinstance(w, str) and w in self.index]
        return self.vectors[rows]

    def norms(self) -> np.ndarray:
        """The Euclidean norm of every vector, ``(V,)``."""
        return np.linalg.norm(self.vectors.astype(np.float64), axis=1)

    def _top(self, scores, n, exclude):
        scores = np.asarray(scores, np.float64).copy()
        scores[list(exclude)] = -np.inf
        n = min(n, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n else np.zeros(0, int)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.words[k], float(scores[k])) for k in top]

    def most_related(self, word: str, n: int = 10):
        """The ``n`` words whose vectors have the largest cosine with ``word``'s (related words:
        high PMI per unit of norm), as ``[(word, cosine), ...]``."""
        k = self._row(word)
        n = check_int(n, "n", 1)
        unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True),
                                         1e-12)
        return self._top(unit @ unit[k], n, {k})

    def most_similar(self, word: str, n: int = 10, n_context: int = 1000):
        """The ``n`` words most *similar* to ``word``: the largest cosine after
        :func:`similarity_transform` on the ``n_context`` most frequent words, i.e. the
        largest Pearson correlation of their inner products with those context words."""
        k = self._row(word)
        n = check_int(n, "n", 1)
        n_context = check_int(n_context, "n_context", self.dim + 1,
                              f"an integer > dim = {self.dim}")
        u = similarity_transform(self.vectors[:n_context])
        t = self.vectors.astype(np.float64) @ u
        t /= np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        return self._top(t @ t[k], n, {k})

    def analogy(self, a: str, b: str, c: str, n: int = 5):
        """Words ``w`` maximising ``cos(v_w, v_a + v_b - v_c)`` ("a is to c as w is to b"),
        the three query words excluded, as ``[(word, cosine), ...]``."""
        rows = [self._row(w, name) for w, name in ((a, "a"), (b, "b"), (c, "c"))]
        n = check_int(n, "n", 1)
        q = self.vectors[rows[0]] + self.vectors[rows[1]] - self.vectors[rows[2]]
        unit = self.vectors / np.maximum(np.linalg.norm(self.vectors, axis=1, keepdims=True),
                                         1e-12)
        return self._top(unit @ (q / max(np.linalg.norm(q), 1e-12)), n, set(rows))

    def sentence_vector(self, words) -> np.ndarray:
        """The sum of the vectors of the known words, ``(dim,)`` (zeros if none is known):
        by PMI additivity, ``<s, v_w>`` estimates ``PMI(sentence, w)``."""
        v = self.lookup(words)
        return v.sum(axis=0) if len(v) else np.zeros(self.dim, np.float32)

    def keywords(self, words, n: int = 5):
        """The ``n`` distinct known words of a sentence with the largest ``<s, v_w>``, the PMI of
        the word with the whole sentence (``s`` = :meth:`sentence_vector`), as
        ``[(word, score), ...]``."""
        n = check_int(n, "n", 1)
        s = self.sentence_vector(words)
        seen = list(dict.fromkeys(w for w in words if isinstance(w, str) and w in self.index))
        scores = [(w, float(self.vectors[self.index[w]] @ s)) for w in seen]
        return sorted(scores, key=lambda ws: -ws[1])[:n]

    def sentence_vectors(self, sentences) -> np.ndarray:
        """:meth:`sentence_vector` of every sentence, ``(n, dim)`` ``float32``."""
        _check_sentences(sentences, "sentences")
        out = np.zeros((len(sentences), self.dim), np.float32)
        for k, s in enumerate(sentences):
            out[k] = self.sentence_vector(s)
        return out


def train_word_vectors(sentences, dim: int = 64, window: int = 5, min_count: int = 5,
                       epochs: int = 10, truncate: bool = True, seed: int = 0,
                       time_budget_s: float | None = None, progress: bool = False, *,
                       x_max: float = 100.0, alpha: float = 0.75, learning_rate: float = 0.5,
                       batch_size: int = 65536, max_vocab: int | None = None) -> WordVectors:
    """Train the simpler GloVe on a corpus: vocabulary, co-occurrence, PMI, Adagrad.

    Args:
        sentences: a list of sentences, each a list of words.
        dim: the vectors' dimension (128 in the article).
        window: the co-occurrence window (10 in the article's script).
        min_count: the rarest word kept (25 in the article's script, on a far larger corpus).
        epochs: passes over the pairs (30 in the article).
        truncate: cap the weights ``(x / 100) ** 0.75`` at 1 (see :func:`glove_weights`).
        seed: seeds the initial vectors and the order of the pairs.
        time_budget_s: stop after the first epoch that ends past this many seconds.
        progress: show a tqdm bar over the epochs.
        x_max, alpha, learning_rate, batch_size: as in :func:`glove_weights`, :func:`fit_glove`.
        max_vocab: keep at most this many words.

    Returns:
        :class:`WordVectors` (its ``history`` holds the loss of every epoch).

    Used in: book/sequence/simpler-glove.md, book/sequence/word-movers-distance.md
    """
    _check_sentences(sentences, "sentences")
    truncate = check_bool(truncate, "truncate")
    window = check_int(window, "window", 1)
    words, counts = build_vocab(sentences, min_count=min_count, max_size=max_vocab)
    if len(words) < 2:
        raise ValueError(f"sentences must hold at least two words seen min_count={min_count} "
                         f"times, got {len(words)}.")
    index = {w: k for k, w in enumerate(words)}
    ids, sids = encode(sentences, index)
    X = cooccurrence(ids, sids, len(words), window)
    i, j, x, pmi = pmi_targets(X, counts)
    if len(i) == 0:
        raise ValueError("sentences must hold at least one pair of distinct words within "
                         "the window, got none.")
    weight = glove_weights(x, x_max, alpha, truncate)
    vectors, losses = fit_glove(i, j, pmi, weight, len(words), dim, epochs, batch_size,
                                learning_rate, seed, time_budget_s, progress=progress)
    return WordVectors(words, vectors, counts, losses)
