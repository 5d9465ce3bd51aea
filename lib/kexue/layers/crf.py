"""The linear-chain conditional random field (CRF): score, normaliser, marginals, Viterbi.

Notation (kexue.fm/archives/4695): a sequence of ``T`` positions, ``K`` tags, emissions
``h`` of shape ``(B, T, K)`` (one score per position and tag, from the encoder), an
input-independent transition matrix ``g`` of shape ``(K, K)`` (``g[i, j]`` scores tag ``i``
followed by tag ``j``), and a mask of shape ``(B, T)`` that is 1 on real positions and 0 on
right padding. The score of a tag path ``a`` is

    s(a) = sum_k h_k(a_k) + sum_{k>=2} g(a_{k-1}, a_k),

and ``P(a) = exp(s(a)) / Z`` with ``Z`` the sum over all ``K**T`` paths, computed by the
forward recursion in log space. Masks must be *prefix* masks (every sequence has at least
one real position and its padding is on the right); padded positions add nothing to any
score and leave the recursion unchanged.

Backend-neutral tensor functions (``keras.ops``): :func:`crf_path_score`,
:func:`crf_log_norm`, :func:`crf_nll`, :func:`crf_marginals`. NumPy decoding:
:func:`viterbi`, :func:`viterbi_decode`. Brute-force references over all paths (small
``K`` and ``T`` only): :func:`all_paths`, :func:`brute_force_scores`. The Keras layer
:class:`CRF` owns the transitions and gives a training loss and a decoder; its siblings
with the same interface are :class:`kexue.layers.memm.MEMM` and :class:`SoftmaxTagger`.
"""

from __future__ import annotations

import itertools

import keras
import numpy as np
from keras import ops

from kexue._checks import check_int, check_positive

PAD_LABEL = -1
"""The label that marks padded positions in ``y_true`` (every real tag is ``>= 0``)."""


# --------------------------------------------------------------------------- checks


def _concrete(x):
    """``x`` as a NumPy array when its values are known now (eager), else ``None``."""
    if x is None:
        return None
    try:
        arr = np.asarray(x)
    except Exception:  # symbolic tensors and tracers cannot be converted
        return None
    return None if arr.dtype == object else arr


def check_chain_inputs(emissions, trans=None, tags=None, mask=None):
    """Raise a clear ``ValueError`` when the shapes of a chain computation disagree.

    Checks what is known statically: ``emissions`` is ``(B, T, K)``, ``trans`` is
    ``(K, K)``, ``tags`` and ``mask`` are ``(B, T)``. When the mask's values are known
    (eager inputs), it must also be a prefix mask of 0/1 with at least one real position
    per row.
    """
    shape = tuple(emissions.shape)
    if len(shape) != 3:
        raise ValueError(f"emissions must have shape (batch, time, tags); got shape {shape}.")
    k = shape[2]
    if trans is not None:
        tshape = tuple(trans.shape)
        if len(tshape) != 2 or tshape[0] != tshape[1] or (k is not None and tshape[0] != k):
            raise ValueError(
                f"transitions must have shape ({k}, {k}) to match emissions {shape}; got {tshape}."
            )
    for name, x in (("tags", tags), ("mask", mask)):
        if x is None:
            continue
        xs = tuple(x.shape)
        ok = len(xs) == 2 and all(a is None or b is None or a == b for a, b in zip(xs, shape[:2]))
        if not ok:
            raise ValueError(f"{name} must have shape {shape[:2]} (batch, time); got {xs}.")
    m = _concrete(mask)
    if m is not None and m.size:
        if not np.isin(m, (0, 1)).all():
            raise ValueError("mask must hold only 0/1 (or booleans).")
        m = m.astype(bool)
        if not m[:, 0].all():
            raise ValueError("every sequence needs at least one real position: mask[:, 0] must be 1.")
        if (m[:, 1:] & ~m[:, :-1]).any():
            raise ValueError("mask must be a prefix mask: padding on the right, no gaps.")


def _float_mask(mask, emissions):
    if mask is None:
        return ops.ones(ops.shape(emissions)[:2], dtype=emissions.dtype)
    return ops.cast(mask, emissions.dtype)


def mask_from_labels(y_true, pad_label: int = PAD_LABEL):
    """Split padded labels into ``(tags, mask)``: ``tags`` with padding set to tag 0 (int32)
    and the float mask ``y_true != pad_label``. ``y_true``: ``(B, T)``, possibly float."""
    y = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
    mask = ops.cast(ops.not_equal(y, pad_label), "float32")
    tags = ops.where(ops.equal(y, pad_label), ops.zeros_like(y), y)
    return tags, mask


# ------------------------------------------------------------------ CRF computations


def crf_path_score(emissions, tags, trans, mask=None):
    """Score ``s(a)`` of the given tag paths.

    Args:
        emissions: ``(B, T, K)`` float.
        tags: ``(B, T)`` int, the path ``a`` (values at padded positions are ignored).
        trans: ``(K, K)`` float, ``trans[i, j]`` scores tag ``i`` followed by ``j``.
        mask: ``(B, T)`` prefix mask, or ``None`` for full-length sequences.

    Returns:
        ``(B,)``: emissions along the path plus transitions between consecutive real positions.
    """
    check_chain_inputs(emissions, trans, tags, mask)
    m = _float_mask(mask, emissions)
    k = ops.shape(emissions)[-1]
    onehot = ops.one_hot(ops.cast(tags, "int32"), k, dtype=emissions.dtype)  # (B, T, K)
    unary = ops.sum(ops.sum(emissions * onehot, axis=-1) * m, axis=-1)
    # sum_k onehot_{k-1}^T trans onehot_k, counted only when both positions are real
    pair = ops.einsum("bti,ij,btj->bt", onehot[:, :-1], ops.cast(trans, emissions.dtype), onehot[:, 1:])
    binary = ops.sum(pair * m[:, 1:], axis=-1)
    return unary + binary


def _time_major(emissions, m):
    """Emissions of steps 2..T with the mask as one extra channel: ``(T-1, B, K+1)``.

    One stacked tensor rather than a tuple, because the TensorFlow backend's ``scan``
    cannot check several inputs against each other when ``T`` is unknown at trace time.
    """
    both = ops.concatenate([emissions[:, 1:], m[:, 1:, None]], axis=-1)
    return ops.transpose(both, (1, 0, 2))


def _forward(emissions, trans, m, return_all: bool):
    """Forward recursion: alpha_k(j) = h_k(j) + logsumexp_i(alpha_{k-1}(i) + g_ij)."""
    trans = ops.cast(trans, emissions.dtype)

    def step(alpha, inputs):
        e, mk = inputs[:, :-1], inputs[:, -1:]
        new = e + ops.logsumexp(alpha[:, :, None] + trans[None], axis=1)
        alpha = mk * new + (1.0 - mk) * alpha  # padded step: keep alpha
        return alpha, (alpha if return_all else None)

    last, alphas = ops.scan(step, emissions[:, 0], _time_major(emissions, m))
    return last, alphas


def crf_log_norm(emissions, trans, mask=None):
    """``log Z``: the log-sum-exp of ``s(a)`` over all ``K**T`` paths, by the forward recursion.

    Args:
        emissions: ``(B, T, K)`` float; trans: ``(K, K)``; mask: ``(B, T)`` prefix mask or ``None``.

    Returns:
        ``(B,)`` float. Cost ``O(T K^2)`` per sequence, sequential over ``T``.
    """
    check_chain_inputs(emissions, trans, None, mask)
    last, _ = _forward(emissions, trans, _float_mask(mask, emissions), return_all=False)
    return ops.logsumexp(last, axis=-1)


def crf_nll(emissions, tags, trans, mask=None):
    """Negative log-likelihood ``log Z - s(a*)`` of the tag paths ``tags``, shape ``(B,)``."""
    return crf_log_norm(emissions, trans, mask) - crf_path_score(emissions, tags, trans, mask)


def crf_marginals(emissions, trans, mask=None):
    """Per-position tag marginals ``P(a_k = j)`` by the forward-backward algorithm.

    Args:
        emissions: ``(B, T, K)``; trans: ``(K, K)``; mask: ``(B, T)`` prefix mask or ``None``.

    Returns:
        ``(B, T, K)``: each real position's row sums to 1; padded positions are 0. These are
        also the gradients of ``log Z`` with respect to the emissions.
    """
    check_chain_inputs(emissions, trans, None, mask)
    m = _float_mask(mask, emissions)
    trans = ops.cast(trans, emissions.dtype)
    last, alphas = _forward(emissions, trans, m, return_all=True)
    alpha = ops.concatenate([emissions[:, :1], ops.transpose(alphas, (1, 0, 2))], axis=1)
    log_z = ops.logsumexp(last, axis=-1)
    # beta_k(i) = logsumexp_j(g_ij + h_{k+1}(j) + beta_{k+1}(j)); 0 at the last real position.
    def back(beta, inputs):
        e, mk = inputs[:, :-1], inputs[:, -1:]
        new = ops.logsumexp(trans[None] + (e + beta)[:, None, :], axis=2)
        beta = mk * new  # next position padded: this one is last, beta = 0
        return beta, beta

    _, betas = ops.scan(back, ops.zeros_like(emissions[:, 0]), _time_major(emissions, m), reverse=True)
    beta = ops.concatenate([ops.transpose(betas, (1, 0, 2)), ops.zeros_like(emissions[:, :1])], axis=1)
    return ops.exp(alpha + beta - log_z[:, None, None]) * m[..., None]


# ------------------------------------------------------------------------ decoding


def viterbi(unary, pairwise, lengths=None):
    """Best path of a chain with scores ``sum_k unary[k, a_k] + sum_k pairwise[k, a_{k-1}, a_k]``.

    Args:
        unary: ``(B, T, K)`` NumPy array.
        pairwise: ``(K, K)`` (the same at every step) or ``(B, T, K, K)`` where
            ``pairwise[:, k]`` scores the edge from position ``k - 1`` to ``k`` (``[:, 0]`` unused).
        lengths: ``(B,)`` ints in ``1..T``; ``None`` means all ``T``.

    Returns:
        ``(paths, scores)``: ``list`` of ``B`` int arrays (each of its own length) and the
        ``(B,)`` best scores. Ties go to the lowest tag index.
    """
    unary = np.asarray(unary, dtype=np.float64)
    if unary.ndim != 3:
        raise ValueError(f"unary scores must have shape (batch, time, tags); got {unary.shape}.")
    b, t, k = unary.shape
    pairwise = np.asarray(pairwise, dtype=np.float64)
    if pairwise.shape not in ((k, k), (b, t, k, k)):
        raise ValueError(f"pairwise scores must have shape ({k}, {k}) or {(b, t, k, k)}; got {pairwise.shape}.")
    lengths = np.full(b, t) if lengths is None else np.asarray(lengths, dtype=int)
    if lengths.shape != (b,) or (lengths < 1).any() or (lengths > t).any():
        raise ValueError(f"lengths must be {b} integers in 1..{t}; got {lengths}.")
    delta = unary[:, 0].copy()
    back = np.zeros((b, t, k), dtype=np.int64)
    rows = np.arange(b)
    for pos in range(1, t):
        edge = pairwise if pairwise.ndim == 2 else pairwise[:, pos]
        cand = delta[:, :, None] + edge  # (B, K_prev, K)
        best_prev = cand.argmax(axis=1)
        new = cand.max(axis=1) + unary[:, pos]
        live = (pos < lengths)[:, None]
        delta = np.where(live, new, delta)
        back[:, pos] = np.where(live, best_prev, np.arange(k)[None])
    last = delta.argmax(axis=1)
    scores = delta[rows, last]
    paths = []
    for i in range(b):
        n = lengths[i]
        path = np.empty(n, dtype=np.int64)
        path[-1] = last[i]
        for pos in range(n - 1, 0, -1):
            path[pos - 1] = back[i, pos, path[pos]]
        paths.append(path)
    return paths, scores


def viterbi_decode(emissions, trans, lengths=None, allowed_start=None, allowed_end=None):
    """The CRF's most probable path(s), ``argmax_a s(a)``, by Viterbi.

    Args:
        emissions: ``(T, K)`` for one sequence or ``(B, T, K)``.
        trans: ``(K, K)``.
        lengths: ``(B,)`` real lengths for a batch (``None``: all ``T``).
        allowed_start, allowed_end: optional collections of tags allowed at the first and
            last real position (e.g. ``{s, b}`` and ``{s, e}`` in word segmentation).

    Returns:
        One int array for a ``(T, K)`` input, else a list of ``B`` arrays.
    """
    em = np.asarray(emissions, dtype=np.float64)
    single = em.ndim == 2
    if single:
        em = em[None]
    if em.ndim != 3:
        raise ValueError(f"emissions must have shape (time, tags) or (batch, time, tags); got {em.shape}.")
    b, t, k = em.shape
    lengths = np.full(b, t) if lengths is None else np.asarray(lengths, dtype=int)
    em = em.copy()
    if allowed_start is not None:
        banned = np.setdiff1d(np.arange(k), list(allowed_start))
        em[:, 0, banned] = -np.inf
    if allowed_end is not None:
        banned = np.setdiff1d(np.arange(k), list(allowed_end))
        rows = np.arange(b)
        for tag in banned:
            em[rows, lengths - 1, tag] = -np.inf
    paths, _ = viterbi(em, trans, lengths)
    return paths[0] if single else paths


# --------------------------------------------------------------- brute-force reference


def all_paths(length: int, num_tags: int) -> np.ndarray:
    """Every tag path of the given length: ``(num_tags**length, length)`` ints (small sizes only)."""
    length = check_int(length, "length")
    num_tags = check_int(num_tags, "num_tags")
    if num_tags**length > 2_000_000:
        raise ValueError(f"{num_tags}**{length} paths is too many to enumerate.")
    return np.array(list(itertools.product(range(num_tags), repeat=length)), dtype=np.int64)


def brute_force_scores(emissions, trans) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``s(a)`` of every path of one sequence, by enumeration.

    Args:
        emissions: ``(T, K)`` NumPy; trans: ``(K, K)``.

    Returns:
        ``(paths, scores)``: ``(K**T, T)`` paths and their ``(K**T,)`` scores, float64.
    """
    em = np.asarray(emissions, dtype=np.float64)
    g = np.asarray(trans, dtype=np.float64)
    paths = all_paths(em.shape[0], em.shape[1])
    scores = em[np.arange(em.shape[0]), paths].sum(axis=1)
    scores += g[paths[:, :-1], paths[:, 1:]].sum(axis=1)
    return paths, scores


# ------------------------------------------------------------------------- layers


class TaggingHead(keras.layers.Layer):
    """Base of the sequence-tagging heads: a pass-through layer with a loss and a decoder.

    ``call`` returns the emissions ``(B, T, K)`` unchanged (the head's parameters act in the
    loss and the decoder), and the head drops any Keras mask so that losses see whole
    sequences. Labels use :data:`PAD_LABEL` on padded positions. Subclasses implement
    ``sequence_loss(emissions, tags, mask) -> (B,)`` and ``decode``.
    """

    def __init__(self, num_tags: int, pad_label: int = PAD_LABEL, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = check_int(num_tags, "num_tags", minimum=2)
        self.pad_label = int(pad_label)
        self.supports_masking = True

    def build(self, input_shape):
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(
                f"{type(self).__name__} has {self.num_tags} tags but its input has "
                f"{input_shape[-1]} features; put a Dense({self.num_tags}) before it."
            )
        super().build(input_shape)

    def call(self, emissions, mask=None):
        return emissions

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return input_shape

    def loss(self, y_true, y_pred):
        """Keras loss: per-sequence negative log-likelihood, ``(B,)``.

        ``y_true``: ``(B, T)`` tags with :data:`PAD_LABEL` on padding; ``y_pred``: the
        emissions this layer returned.
        """
        tags, mask = mask_from_labels(y_true, self.pad_label)
        return self.sequence_loss(y_pred, tags, ops.cast(mask, y_pred.dtype))

    def sequence_loss(self, emissions, tags, mask=None):
        raise NotImplementedError

    def decode(self, emissions, lengths=None):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags, "pad_label": self.pad_label}


@keras.saving.register_keras_serializable(package="kexue")
class SoftmaxTagger(TaggingHead):
    """Per-token softmax head: tags independent given the encoder, decoded by argmax.

    Loss: the sum over real positions of the token cross-entropy, i.e. the sequence NLL
    under the independence assumption, ``(B,)``.
    """

    def sequence_loss(self, emissions, tags, mask=None):
        check_chain_inputs(emissions, None, tags, mask)
        m = _float_mask(mask, emissions)
        ce = keras.losses.sparse_categorical_crossentropy(tags, emissions, from_logits=True)
        return ops.sum(ce * m, axis=-1)

    def decode(self, emissions, lengths=None):
        """Argmax per position: a list of int arrays (one per sequence, trimmed to its length)."""
        em = np.asarray(emissions)
        lengths = np.full(em.shape[0], em.shape[1]) if lengths is None else lengths
        return [em[i, :n].argmax(-1) for i, n in enumerate(lengths)]


@keras.saving.register_keras_serializable(package="kexue")
class CRF(TaggingHead):
    """Linear-chain CRF head: a learned ``(K, K)`` transition matrix ``trans``.

    Loss: ``log Z - s(a*)`` per sequence, ``(B,)`` (:func:`crf_nll`); decoding: Viterbi
    (:func:`viterbi_decode`) with optional start/end constraints. Compared with
    :class:`SoftmaxTagger` it adds ``K*K`` weights and changes only the loss and decoder.

    Args:
        num_tags: ``K``.
        pad_label: label of padded positions in ``y_true``.
        trans_initializer: initialiser of ``trans`` (default zeros: training starts from
            the softmax tagger).
        lr_multiplier: the transitions are stored as ``trans / lr_multiplier``, so that an
            optimizer whose steps have a fixed size per weight (Adam) moves ``trans``
            ``lr_multiplier`` times faster than the encoder (bert4keras's trick). With a
            few hundred Adam steps at 1e-3 the transitions could otherwise not move
            further than a few tenths, too little to forbid any tag pair.
    """

    def __init__(self, num_tags: int, pad_label: int = PAD_LABEL, trans_initializer="zeros",
                 lr_multiplier: float = 1.0, **kwargs):
        super().__init__(num_tags, pad_label, **kwargs)
        self.trans_initializer = keras.initializers.get(trans_initializer)
        self.lr_multiplier = check_positive(lr_multiplier, "lr_multiplier")

    def build(self, input_shape):
        self._trans = self.add_weight(
            shape=(self.num_tags, self.num_tags), initializer=self.trans_initializer, name="trans"
        )
        super().build(input_shape)

    @property
    def trans(self):
        """The ``(K, K)`` transition scores (the stored weight times ``lr_multiplier``)."""
        return self._trans * self.lr_multiplier if self.lr_multiplier != 1.0 else self._trans

    def set_transitions(self, trans):
        """Set the transition scores to ``trans`` ``(K, K)``."""
        self._trans.assign(np.asarray(trans, dtype=self._trans.dtype) / self.lr_multiplier)

    def sequence_loss(self, emissions, tags, mask=None):
        return crf_nll(emissions, tags, self.trans, mask)

    def decode(self, emissions, lengths=None, allowed_start=None, allowed_end=None):
        """Viterbi paths for a batch of emissions ``(B, T, K)``; a list of int arrays."""
        return viterbi_decode(
            np.asarray(emissions), ops.convert_to_numpy(self.trans), lengths, allowed_start, allowed_end
        )

    def get_config(self):
        return {
            **super().get_config(),
            "trans_initializer": keras.initializers.serialize(self.trans_initializer),
            "lr_multiplier": self.lr_multiplier,
        }
