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

from kexue._checks import (
    _is_int,
    as_array,
    as_tensor,
    check_dtype,
    check_finite,
    check_int,
    check_int_range,
    check_mask,
    check_positive,
    check_shape,
    concrete,
    describe,
)
from kexue.layers.masking import very_negative

PAD_LABEL = -1
"""The label that marks padded positions in ``y_true`` (every real tag is ``>= 0``)."""


# --------------------------------------------------------------------------- checks


def check_chain_inputs(emissions, trans=None, tags=None, mask=None):
    """Check the arguments of a chain computation; return them as tensors.

    Statically (works on symbolic tensors too): ``emissions`` is a float ``(B, T, K)``,
    ``trans`` is ``(K, K)``, ``tags`` and ``mask`` are ``(B, T)``. When the values are known
    (eager inputs): ``mask`` is a prefix mask of 0/1 with at least one real position per row,
    and ``tags`` holds integers in ``[0, K)`` at the real positions. Every error is a
    ``ValueError`` (or a ``TypeError`` for a wrong type) naming the argument.

    Returns:
        ``(emissions, trans, tags, mask)`` as tensors (``None`` stays ``None``).
    """
    emissions = as_tensor(emissions, "emissions")
    check_dtype(emissions, "emissions", "float")
    dims = {}
    check_shape(emissions, "emissions", ("batch", "time", "tags"), dims)
    if dims.get("time") == 0 or dims.get("tags") == 0:
        raise ValueError(f"emissions must have at least one time step and one tag, got shape "
                         f"{tuple(emissions.shape)}.")
    k = dims.get("tags")
    if trans is not None:
        trans = as_tensor(trans, "trans")
        check_dtype(trans, "trans", "number")
        check_shape(trans, "trans", ("tags", "tags"), dims)
    if mask is not None:
        mask = as_tensor(mask, "mask")
        check_dtype(mask, "mask", ("bool", "number"))
        check_shape(mask, "mask", ("batch", "time"), dims)
        check_mask(mask, "mask", prefix=True, nonempty=True)
    if tags is not None:
        tags = as_tensor(tags, "tags")
        check_dtype(tags, "tags", "number")
        check_shape(tags, "tags", ("batch", "time"), dims)
        if k is not None:
            real = None if mask is None else concrete(mask)
            check_int_range(tags, "tags", 0, int(k), where=None if real is None else real != 0)
    return emissions, trans, tags, mask


def _required(**arrays):
    """Raise naming the first of ``arrays`` that is ``None`` (an argument that is not optional)."""
    for name, value in arrays.items():
        if value is None:
            what = "(K, K) transition scores" if name == "trans" else "a (batch, time) array"
            raise TypeError(f"{name} must be {what}, got None.")


def _float_mask(mask, emissions):
    if mask is None:
        return ops.ones(ops.shape(emissions)[:2], dtype=emissions.dtype)
    return ops.cast(mask, emissions.dtype)


def _zero_padding(emissions, m):
    """Emissions with padded positions set to 0 (``where``: a NaN there must not leak)."""
    return ops.where(ops.greater(m, 0)[..., None], emissions, ops.zeros_like(emissions))


def _real_tags(tags, m):
    """Tags as int32 with padded positions set to 0 (whatever they held)."""
    tags = ops.cast(tags, "int32")
    return ops.where(ops.greater(m, 0), tags, ops.zeros_like(tags))


def mask_from_labels(y_true, pad_label: int = PAD_LABEL):
    """Split padded labels into ``(tags, mask)``: ``tags`` with padding set to tag 0 (int32)
    and the float mask ``y_true != pad_label``. ``y_true``: ``(B, T)``, possibly float."""
    y_true = as_tensor(y_true, "y_true")
    check_dtype(y_true, "y_true", "number")
    check_shape(y_true, "y_true", ("batch", "time"))
    if not _is_int(pad_label):
        raise TypeError(f"pad_label must be an integer, got {describe(pad_label)}.")
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
    _required(tags=tags, trans=trans)
    emissions, trans, tags, mask = check_chain_inputs(emissions, trans, tags, mask)
    m = _float_mask(mask, emissions)
    return _path_score(_zero_padding(emissions, m), _real_tags(tags, m), trans, m)


def _path_score(emissions, tags, trans, m):
    """:func:`crf_path_score` of zero-padded emissions, int32 tags that are valid everywhere
    and a float mask: two gathers, the emission of each position's tag and the transition
    ``trans[a_{k-1}, a_k]`` of each pair (row-major index ``a_{k-1} K + a_k`` into the
    flattened matrix), the latter counted only when both positions are real."""
    k = ops.shape(emissions)[-1]
    unary = ops.take_along_axis(emissions, tags[..., None], axis=-1)[..., 0]  # 0 on padding
    pair = ops.take(ops.reshape(ops.cast(trans, emissions.dtype), (-1,)), tags[:, :-1] * k + tags[:, 1:])
    return ops.sum(unary, axis=-1) + ops.sum(pair * m[:, 1:], axis=-1)


TREE_MAX_TAGS = 32
"""Above this many tags the CRF uses the sequential recursions (see :func:`_forward`)."""


def _stacked_steps(emissions, m):
    """Emissions of steps 2..T with the mask as one extra channel: ``(T-1, B, K+1)``.

    One stacked tensor rather than a tuple, because the TensorFlow backend's ``scan``
    cannot check several inputs against each other when ``T`` is unknown at trace time.
    """
    both = ops.concatenate([emissions[:, 1:], m[:, 1:, None]], axis=-1)
    return ops.transpose(both, (1, 0, 2))


def _forward(emissions, trans, m, return_all: bool):
    """Forward recursion: alpha_k(j) = h_k(j) + logsumexp_i(alpha_{k-1}(i) + g_ij).

    Sequential over time, ``O(T K^2)``: used above :data:`TREE_MAX_TAGS` tags, where the
    tree's ``O(T K^3)`` work and ``(T, K, K, K, B)`` intermediates cost more than its
    ``log2 T`` depth saves (``ops.scan``: not XLA-compilable on TensorFlow).
    """
    trans = ops.cast(trans, emissions.dtype)

    def step(alpha, inputs):
        e, mk = inputs[:, :-1], inputs[:, -1:]
        new = e + ops.logsumexp(alpha[:, :, None] + trans[None], axis=1)
        alpha = mk * new + (1.0 - mk) * alpha  # padded step: keep alpha
        return alpha, (alpha if return_all else None)

    last, alphas = ops.scan(step, emissions[:, 0], _stacked_steps(emissions, m))
    return last, alphas


def _sequential_marginals(emissions, trans, m):
    """Forward-backward by the sequential recursions (above :data:`TREE_MAX_TAGS` tags)."""
    last, alphas = _forward(emissions, trans, m, return_all=True)
    alpha = ops.concatenate([emissions[:, :1], ops.transpose(alphas, (1, 0, 2))], axis=1)
    log_z = ops.logsumexp(last, axis=-1)
    # beta_k(i) = logsumexp_j(g_ij + h_{k+1}(j) + beta_{k+1}(j)); 0 at the last real position.
    def back(beta, inputs):
        e, mk = inputs[:, :-1], inputs[:, -1:]
        new = ops.logsumexp(trans[None] + (e + beta)[:, None, :], axis=2)
        beta = mk * new  # next position padded: this one is last, beta = 0
        return beta, beta

    _, betas = ops.scan(back, ops.zeros_like(emissions[:, 0]), _stacked_steps(emissions, m), reverse=True)
    beta = ops.concatenate([ops.transpose(betas, (1, 0, 2)), ops.zeros_like(emissions[:, :1])], axis=1)
    return ops.exp(alpha + beta - log_z[:, None, None]) * m[..., None]


def _time_major(emissions, m):
    """Emissions ``(T, K, B)`` and mask ``(T, B)``: time first and batch last, so that every
    log-semiring product below works on contiguous ``B``-vectors."""
    return ops.transpose(emissions, (1, 2, 0)), ops.transpose(m, (1, 0))


def _log_eye(k, dtype):
    """The log-semiring identity ``(1, K, K, 1)``: 0 on the diagonal and, standing for
    ``log 0``, a huge negative number elsewhere (finite, so that no ``inf - inf`` arises)."""
    eye = ops.eye(k, dtype=dtype)
    return ((1.0 - eye) * (very_negative(dtype) / 2))[None, :, :, None]


def _identities(eye, count, mats):
    """``count`` identity matrices shaped like the entries of ``mats`` ``(T, K, K, B)``."""
    return ops.broadcast_to(eye, (count, *ops.shape(mats)[1:]))


def _log_matmul(a, b):
    """Log-semiring matrix product ``c_ij = logsumexp_l(a_il + b_lj)``, batched.

    ``a`` and ``b``: ``(n, K, K, B)``, ``n`` positions of ``B`` matrices; returns ``(n, K, K, B)``.
    It is the ordinary matrix product with ``(+, x)`` replaced by ``(logsumexp, +)``:
    ``exp(c) = exp(a) @ exp(b)``, computed without leaving log space.
    """
    return ops.logsumexp(a[:, :, :, None, :] + b[:, None, :, :, :], axis=2)


def _chain_matrices(emissions, trans, m):
    """The chain as ``T`` log-semiring matrices ``(T, K, K, B)``.

    Step ``k >= 2`` is ``M_k[i, j] = g_ij + h_k(j)``, so that the forward recursion
    (eq-crf-forward) reads ``alpha_k = alpha_{k-1} (x) M_k`` with ``(x)`` the product of
    :func:`_log_matmul`; a padded step is the identity; step 1 is ``M_1[i, j] = h_1(j)`` in
    every row ``i``, so that every row of ``M_1 (x) ... (x) M_k`` is ``alpha_k``.
    """
    e, mk = _time_major(emissions, m)  # (T, K, B), (T, B)
    steps = ops.cast(trans, e.dtype)[None, :, :, None] + e[:, None, :, :]  # (T, K, K, B)
    first = ops.broadcast_to(e[:1, None, :, :], ops.shape(steps[:1]))
    steps = ops.concatenate([first, steps[1:]], axis=0)
    return ops.where(ops.greater(mk, 0)[:, None, None, :], steps, _log_eye(e.shape[1], e.dtype))


def _log_semiring_product(mats):
    """``M_1 (x) M_2 (x) ... (x) M_T`` of ``mats`` ``(T, K, K, B)``, as ``(K, K, B)``.

    A tree: each level multiplies neighbours, ``(M_1 M_2)(M_3 M_4)...`` (an odd count gets an
    identity appended), halving ``T``. The product is associative, so ``ceil(log2 T)``
    levels of independent ``K x K`` products give what ``T - 1`` sequential steps give.
    """
    eye = _log_eye(mats.shape[1], mats.dtype)

    def level(mats, odd):
        if odd is not False:
            mats = ops.concatenate([mats, _identities(eye, odd, mats)], axis=0)
        return _log_matmul(mats[0::2], mats[1::2])

    t = mats.shape[0]
    if t is not None:  # a known length: the levels unrolled (what XLA compiles)
        while t > 1:
            mats, t = level(mats, 1 if t % 2 else False), (t + 1) // 2
        return mats[0]
    return ops.while_loop(lambda x: ops.shape(x)[0] > 1,
                          lambda x: level(x, ops.shape(x)[0] % 2), mats, maximum_iterations=64)[0]


def _log_semiring_scan(mats, reverse: bool = False):
    """All prefix products ``M_1 (x) ... (x) M_k`` (with ``reverse``: all suffix products
    ``M_k (x) ... (x) M_T``) of ``mats`` ``(T, K, K, B)``, same shape.

    Doubling: after the level of offset ``d = 1, 2, 4, ...`` entry ``k`` holds the product of
    the ``2d`` steps that end (start) at ``k``, counting steps beyond the ends as identities;
    ``ceil(log2 T)`` levels.
    """
    eye = _log_eye(mats.shape[1], mats.dtype)

    def level(d, mats, t):
        pad = _identities(eye, d, mats)
        if reverse:
            return _log_matmul(mats, ops.concatenate([mats[d:], pad], axis=0))
        return _log_matmul(ops.concatenate([pad, mats[: t - d]], axis=0), mats)

    t = mats.shape[0]
    if t is not None:
        d = 1
        while d < t:
            mats, d = level(d, mats, t), 2 * d
        return mats

    def body(d, x):
        t = ops.shape(x)[0]
        return 2 * d, level(ops.minimum(d, t), x, t)

    return ops.while_loop(lambda d, x: d < ops.shape(x)[0], body, (1, mats),
                          maximum_iterations=64)[1]


def _compiled(fn):
    """``fn`` compiled with XLA when it is traced into a TensorFlow graph with a known length.

    (TensorFlow feature.) TensorFlow runs the tree of small log-semiring products op by op
    several times slower than XLA's fused loops, so inside a ``tf.function`` (a Keras train
    step) the computation is handed to XLA as one compiled function, whatever the model's own
    ``jit_compile``. Eager calls, unknown lengths, graphs that XLA compiles already (a model
    compiled with ``jit_compile=True``) and the other backends call ``fn`` as is.
    """
    compiled = []

    def call(emissions, *args):
        if keras.backend.backend() == "tensorflow" and emissions.shape[1] is not None:
            import tensorflow as tf
            from tensorflow.python.ops import control_flow_util

            graph = tf.compat.v1.get_default_graph()
            if not tf.executing_eagerly() and not control_flow_util.GraphOrParentsInXlaContext(graph):
                if not compiled:
                    compiled.append(tf.function(fn, jit_compile=True, autograph=False))
                return compiled[0](emissions, *args)
        return fn(emissions, *args)

    return call


def _log_norm(emissions, trans, m):
    """``log Z`` ``(B,)`` of zero-padded emissions and a float mask (see :func:`crf_log_norm`)."""
    total = _log_semiring_product(_chain_matrices(emissions, trans, m))  # (K, K, B)
    return ops.logsumexp(total[0], axis=0)  # every row is alpha_T


_log_norm_fast = _compiled(_log_norm)


def _marginals(emissions, trans, m):
    """Marginals ``(B, T, K)`` of zero-padded emissions and a float mask (forward-backward)."""
    mats = _chain_matrices(emissions, trans, m)
    alpha = _log_semiring_scan(mats)[:, 0]  # (T, K, B): alpha_k, row 0 of the k-th prefix
    suffix = _log_semiring_scan(mats, reverse=True)  # M_k (x) ... (x) M_T
    # beta_k(i) = logsumexp_j (M_{k+1} (x) ... (x) M_T)_ij; beta_T = 0 (an empty product).
    beta = ops.logsumexp(suffix[1:], axis=2)  # (T - 1, K, B)
    beta = ops.concatenate([beta, ops.zeros_like(alpha[:1])], axis=0)
    log_z = ops.logsumexp(alpha[-1], axis=0)  # (B,)
    marg = ops.exp(alpha + beta - log_z[None, None, :])
    return ops.transpose(marg, (2, 0, 1)) * m[..., None]


_marginals_fast = _compiled(_marginals)


def crf_log_norm(emissions, trans, mask=None):
    """``log Z``: the log-sum-exp of ``s(a)`` over all ``K**T`` paths, by the forward recursion.

    Args:
        emissions: ``(B, T, K)`` float; trans: ``(K, K)``; mask: ``(B, T)`` prefix mask or ``None``.

    Returns:
        ``(B,)`` float: the log-semiring product of the chain's ``T`` matrices
        (:func:`_chain_matrices`) by a tree of ``ceil(log2 T)`` levels
        (:func:`_log_semiring_product`), ``O(T K^3)`` work; XLA-compiled inside a TensorFlow
        graph (:func:`_compiled`).
    """
    _required(trans=trans)
    emissions, trans, _, mask = check_chain_inputs(emissions, trans, None, mask)
    m = _float_mask(mask, emissions)
    emissions, trans = _zero_padding(emissions, m), ops.cast(trans, emissions.dtype)
    if (emissions.shape[-1] or 0) > TREE_MAX_TAGS:
        last, _ = _forward(emissions, trans, m, return_all=False)
        return ops.logsumexp(last, axis=-1)
    return _log_norm_fast(emissions, trans, m)


def crf_nll(emissions, tags, trans, mask=None):
    """Negative log-likelihood ``log Z - s(a*)`` of the tag paths ``tags``, shape ``(B,)``.

    :func:`crf_log_norm` minus :func:`crf_path_score`, computed as one XLA-compiled function
    inside a TensorFlow graph (:func:`_compiled`).
    """
    _required(tags=tags, trans=trans)
    emissions, trans, tags, mask = check_chain_inputs(emissions, trans, tags, mask)
    m = _float_mask(mask, emissions)
    if (emissions.shape[-1] or 0) > TREE_MAX_TAGS:
        return crf_log_norm(emissions, trans, m) - crf_path_score(emissions, tags, trans, m)
    return _nll_fast(emissions, ops.cast(tags, "int32"), ops.cast(trans, emissions.dtype), m)


def _nll(emissions, tags, trans, m):
    """:func:`crf_nll` of checked emissions, int32 tags and a float mask: the padding is
    cleared inside, so that it is part of the one compiled function."""
    emissions, tags = _zero_padding(emissions, m), _real_tags(tags, m)
    return _log_norm(emissions, trans, m) - _path_score(emissions, tags, trans, m)


_nll_fast = _compiled(_nll)


def crf_marginals(emissions, trans, mask=None):
    """Per-position tag marginals ``P(a_k = j)`` by the forward-backward algorithm.

    Args:
        emissions: ``(B, T, K)``; trans: ``(K, K)``; mask: ``(B, T)`` prefix mask or ``None``.

    Returns:
        ``(B, T, K)``: each real position's row sums to 1; padded positions are 0. These are
        also the gradients of ``log Z`` with respect to the emissions. ``alpha`` and ``beta``
        come from all prefix and suffix products of the chain's matrices
        (:func:`_log_semiring_scan`), ``ceil(log2 T)`` levels each.
    """
    _required(trans=trans)
    emissions, trans, _, mask = check_chain_inputs(emissions, trans, None, mask)
    m = _float_mask(mask, emissions)
    emissions, trans = _zero_padding(emissions, m), ops.cast(trans, emissions.dtype)
    if (emissions.shape[-1] or 0) > TREE_MAX_TAGS:
        return _sequential_marginals(emissions, trans, m)
    return _marginals_fast(emissions, trans, m)


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

    Both passes are loops over time only, each step vectorised over the batch: the forward
    pass keeps ``delta`` ``(B, K)`` and the back-pointers ``(T, B, K)``; a padded step points
    every tag to itself, so the backtrack runs over all ``T`` steps for every sequence at once.
    """
    unary = as_array(unary, "unary", np.float64)
    if unary.ndim != 3 or 0 in unary.shape:
        raise ValueError(
            f"unary must have shape (batch, time, tags) with no empty axis, got shape {unary.shape}.")
    b, t, k = unary.shape
    check_finite(unary, "unary", allow="-inf")
    pairwise = as_array(pairwise, "pairwise", np.float64)
    if pairwise.shape not in ((k, k), (b, t, k, k)):
        raise ValueError(
            f"pairwise must have shape ({k}, {k}) or {(b, t, k, k)}, got shape {pairwise.shape}.")
    check_finite(pairwise, "pairwise", allow="-inf")
    return _viterbi(unary, pairwise, _check_lengths(lengths, b, t))


def _viterbi(unary, pairwise, lengths):
    """:func:`viterbi` on checked float64 arrays and ``(B,)`` int lengths (no checks)."""
    b, t, k = unary.shape
    same = np.arange(k)
    # Candidate scores are laid out (batch, tag, previous tag): the max over the previous tag
    # then runs along the last, contiguous axis, and its value is read back with one flat take.
    edges = np.swapaxes(pairwise, -1, -2)
    if edges.ndim == 2:
        edges = np.ascontiguousarray(edges)
    row_start = np.arange(b * k) * k
    delta = unary[:, 0]
    back = np.empty((t, b, k), dtype=np.int64)  # time first: one contiguous block per step
    back[0] = same
    all_live = int(lengths.min())  # steps before this one are real in every sequence
    for pos in range(1, t):
        cand = delta[:, None, :] + (edges if edges.ndim == 2 else edges[:, pos])
        best = cand.argmax(axis=2)  # first maximum: ties go to the lowest tag
        new = cand.reshape(-1).take(row_start + best.reshape(-1)).reshape(b, k) + unary[:, pos]
        if pos < all_live:
            delta, back[pos] = new, best
        else:  # a padded step keeps delta and points every tag to itself
            live = (pos < lengths)[:, None]
            delta = np.where(live, new, delta)
            back[pos] = np.where(live, best, same)
    rows = np.arange(b)
    tag = delta.argmax(axis=1)
    scores = delta[rows, tag]
    path = np.empty((t, b), dtype=np.int64)
    back, row_at = back.reshape(t, b * k), rows * k
    for pos in range(t - 1, -1, -1):
        path[pos] = tag
        tag = back[pos].take(row_at + tag)
    path = np.ascontiguousarray(path.T)
    return [path[i, :n] for i, n in enumerate(lengths.tolist())], scores


def _check_lengths(lengths, b: int, t: int, name: str = "lengths") -> np.ndarray:
    """``lengths`` as ``(b,)`` int64 in ``1..t`` (all ``t`` when ``None``), else raise."""
    if lengths is None:
        return np.full(b, t, dtype=np.int64)
    arr = as_array(lengths, name)
    if arr.shape != (b,):
        raise ValueError(f"{name} must have shape ({b},) (one length per sequence), got shape "
                         f"{arr.shape}.")
    check_int_range(arr, name, 1, t + 1)
    return arr.astype(np.int64)


def _check_tag_set(tags, name: str, k: int) -> list[int]:
    """A collection of tag ids in ``[0, k)`` as a list, else raise."""
    if isinstance(tags, (str, bytes)) or not hasattr(tags, "__iter__"):
        raise TypeError(f"{name} must be a collection of tag ids, got {describe(tags)}.")
    tags = list(tags)
    for tag in tags:
        if not _is_int(tag) or not 0 <= tag < k:
            raise ValueError(f"{name} must hold tag ids in [0, {k}), got {describe(tag)}.")
    return tags


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
    em = as_array(emissions, "emissions", np.float64)
    single = em.ndim == 2
    if single:
        em = em[None]
    if em.ndim != 3 or 0 in em.shape:
        raise ValueError(
            f"emissions must have shape (time, tags) or (batch, time, tags) with no empty axis, "
            f"got shape {np.shape(emissions)}.")
    b, t, k = em.shape
    check_finite(em, "emissions", allow="-inf")
    g = as_array(trans, "trans", np.float64)
    if g.shape != (k, k):
        raise ValueError(f"trans must have shape ({k}, {k}) to match emissions of shape "
                         f"{np.shape(emissions)}, got shape {g.shape}.")
    check_finite(g, "trans", allow="-inf")
    lengths = _check_lengths(lengths, b, t)
    if (allowed_start is not None or allowed_end is not None) and (
            em is emissions or not em.flags.owndata):
        em = em.copy()  # the constraints below write into em, never into the caller's data
    if allowed_start is not None:
        banned = np.setdiff1d(np.arange(k), _check_tag_set(allowed_start, "allowed_start", k))
        em[:, 0, banned] = -np.inf
    if allowed_end is not None:
        banned = np.setdiff1d(np.arange(k), _check_tag_set(allowed_end, "allowed_end", k))
        rows = np.arange(b)
        for tag in banned:
            em[rows, lengths - 1, tag] = -np.inf
    paths, _ = _viterbi(em, g, lengths)  # checked above
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
    em = as_array(emissions, "emissions", np.float64)
    if em.ndim != 2:
        raise ValueError(f"emissions must have shape (time, tags), got shape {em.shape}.")
    g = as_array(trans, "trans", np.float64)
    if g.shape != (em.shape[1],) * 2:
        raise ValueError(f"trans must have shape {(em.shape[1],) * 2} to match emissions of "
                         f"shape {em.shape}, got shape {g.shape}.")
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
    ``sequence_loss(emissions, tags, mask) -> (B,)`` and ``decode``; ``label_loss`` gives the
    same from padded labels, and ``loss`` is the :class:`TaggingLoss` to compile a model with
    (``loss=head.loss``), which saves and loads with the model.
    """

    def __init__(self, num_tags: int, pad_label: int = PAD_LABEL, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = check_int(num_tags, "num_tags", minimum=2)
        if not _is_int(pad_label) or 0 <= pad_label < self.num_tags:
            raise ValueError(f"pad_label must be an integer outside the tags [0, {self.num_tags}) "
                             f"(e.g. -1), got {describe(pad_label)}.")
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

    @property
    def loss(self):
        """The Keras loss to compile with, ``model.compile(..., loss=head.loss)``.

        A :class:`TaggingLoss` bound to this head: called as a Keras loss it returns the batch
        mean of :meth:`label_loss`; it saves with the model (``.keras``) and, when the model is
        loaded, is bound to the loaded head again.
        """
        loss = self.__dict__.get("_tagging_loss")
        if loss is None:  # one object per head: Keras's saving walks it once
            loss = self._tagging_loss = TaggingLoss(self)
        return loss

    def label_loss(self, y_true, y_pred):
        """Per-sequence negative log-likelihood from padded labels, ``(B,)``.

        ``y_true``: ``(B, T)`` tags with :data:`PAD_LABEL` on padding; ``y_pred``: the
        emissions this layer returned.
        """
        y_pred = as_tensor(y_pred, "y_pred")
        dims = {"tags": self.num_tags}
        check_shape(y_pred, "y_pred", ("batch", "time", "tags"), dims)
        y_true = as_tensor(y_true, "y_true")
        check_shape(y_true, "y_true", ("batch", "time"), dims)
        y = concrete(y_true)
        if y is not None:
            check_int_range(y, "y_true (tags, or pad_label on padding)", 0, self.num_tags,
                            where=y != self.pad_label)
        tags, mask = mask_from_labels(y_true, self.pad_label)
        return self.sequence_loss(y_pred, tags, ops.cast(mask, y_pred.dtype))

    def sequence_loss(self, emissions, tags, mask=None):
        raise NotImplementedError

    def decode(self, emissions, lengths=None):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags, "pad_label": self.pad_label}

    @classmethod
    def from_config(cls, config):
        head = super().from_config(config)
        loading = _loading_objects()
        if loading is not None:  # inside keras.saving.load_model: let the loss find this head
            loading[(_HEAD_KEY, head.name)] = head
        return head


_HEAD_KEY = "kexue.layers.crf.TaggingHead"


def _loading_objects():
    """The dict of objects Keras keeps while it loads one saved model, or ``None`` elsewhere.

    ``keras.saving.load_model`` deserialises a model inside an object-sharing scope that maps
    ids to the objects loaded so far; the heads add themselves under their names, so that the
    compiled :class:`TaggingLoss`, deserialised after the layers, binds to the model's own head.
    (Keras's own sharing by id does not reach layers of a functional model: their configs are
    deep copies.)
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # pragma: no cover - a Keras without this module: no rebinding
        return None
    return global_state.get_global_attribute("shared_objects/id_to_obj_map")


class _Held:
    """A reference that Keras's saving walker does not follow (not a layer, list or dict)."""

    def __init__(self, obj):
        self.obj = obj


@keras.saving.register_keras_serializable(package="kexue")
class TaggingLoss(keras.losses.Loss):
    """The training loss of a tagging head (what ``head.loss`` returns).

    ``call(y_true, y_pred)`` is ``head.label_loss``: the per-sequence negative log-likelihood
    ``(B,)`` of the padded labels ``y_true`` ``(B, T)`` under the emissions ``y_pred``
    ``(B, T, K)``; calling the loss reduces it over the batch as every Keras loss does (the
    mean, by default). The head's weights (the CRF's or MEMM's transitions) are read from the
    head itself, so the loss trains them. Its config holds the head's config: saved with a
    compiled model (``.keras``), the loss is bound again to the model's own loaded head by
    ``keras.saving.load_model``; deserialised on its own it gets a fresh copy of the head.

    Used in: book/sequence/crf.md, book/sequence/memm.md
    """

    def __init__(self, head, reduction="sum_over_batch_size", name=None, dtype=None):
        if isinstance(head, dict):
            head = keras.saving.deserialize_keras_object(head)
        if not isinstance(head, TaggingHead):
            raise TypeError(
                f"head must be a tagging head (SoftmaxTagger, CRF, MEMM), got {describe(head)}."
            )
        super().__init__(name=name or f"{head.name}_loss", reduction=reduction, dtype=dtype)
        # Held out of sight of Keras's saving walker (it follows every attribute in dir() that
        # is a layer, list or dict, and would loop head -> loss -> head when loading).
        self._head = _Held(head)

    @property
    def head(self):
        """The :class:`TaggingHead` whose loss this is."""
        return self._head.obj

    def __dir__(self):
        return [name for name in super().__dir__() if name != "head"]

    def call(self, y_true, y_pred):
        if not self.head.built:
            raise ValueError(
                f"the loss's head {type(self.head).__name__} {self.head.name!r} is not built: "
                "compile a model with the loss of the head it contains (loss=head.loss)."
            )
        return self.head.label_loss(y_true, y_pred)

    def get_config(self):
        return {**super().get_config(), "head": keras.saving.serialize_keras_object(self.head)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        head = config["head"]
        if isinstance(head, dict):
            loading = _loading_objects() or {}
            name = head.get("config", {}).get("name")
            config["head"] = loading.get((_HEAD_KEY, name)) or keras.saving.deserialize_keras_object(head)
        return cls(**config)


def _check_set_trans(trans, k: int, dtype) -> np.ndarray:
    """``trans`` as a finite ``(k, k)`` NumPy array of ``dtype`` (for ``set_transitions``)."""
    arr = as_array(trans, "trans")
    if arr.shape != (k, k):
        raise ValueError(f"trans must have shape ({k}, {k}), got shape {arr.shape}.")
    check_finite(arr, "trans")
    return arr.astype(keras.backend.standardize_dtype(dtype))


def _read_weight(variable) -> np.ndarray:
    """The current value of a Keras variable as NumPy, read with a single operation.

    On TensorFlow, ``variable.numpy()`` goes through several conversions and costs about
    twice one ``ReadVariableOp`` on the variable's handle (on a busy CPU that difference alone
    is a third of decoding a batch), so eager reads use that one op; other backends, and
    variables without a usable handle (mirrored by a distribution strategy), convert as usual.
    """
    value = variable.value
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            handle = value.handle
        except (AttributeError, ValueError):  # a distributed variable outside a replica
            handle = None
        if handle is not None and tf.executing_eagerly():
            return tf.raw_ops.ReadVariableOp(resource=handle, dtype=value.dtype).numpy()
    return ops.convert_to_numpy(value)


@keras.saving.register_keras_serializable(package="kexue")
class SoftmaxTagger(TaggingHead):
    """Per-token softmax head: tags independent given the encoder, decoded by argmax.

    Loss: the sum over real positions of the token cross-entropy, i.e. the sequence NLL
    under the independence assumption, ``(B,)``.
    """

    def sequence_loss(self, emissions, tags, mask=None):
        _required(tags=tags)
        emissions, _, tags, mask = check_chain_inputs(emissions, None, tags, mask)
        m = _float_mask(mask, emissions)
        ce = keras.losses.sparse_categorical_crossentropy(
            _real_tags(tags, m), _zero_padding(emissions, m), from_logits=True)
        return ops.sum(ops.where(ops.greater(m, 0), ce, ops.zeros_like(ce)), axis=-1)

    def decode(self, emissions, lengths=None):
        """Argmax per position: a list of int arrays (one per sequence, trimmed to its length)."""
        em = as_array(emissions, "emissions")
        if em.ndim != 3 or 0 in em.shape:
            raise ValueError(f"emissions must have shape (batch, time, tags) with no empty axis, "
                             f"got shape {em.shape}.")
        check_finite(em, "emissions", allow="-inf")
        lengths = _check_lengths(lengths, em.shape[0], em.shape[1])
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
        self._trans.assign(_check_set_trans(trans, self.num_tags, self._trans.dtype)
                           / self.lr_multiplier)

    def sequence_loss(self, emissions, tags, mask=None):
        return crf_nll(emissions, tags, self.trans, mask)

    def decode(self, emissions, lengths=None, allowed_start=None, allowed_end=None):
        """Viterbi paths for a batch of emissions ``(B, T, K)``; a list of int arrays.

        The transitions are read from the weight once per call (:func:`_read_weight`), never
        cached: a weight the optimizer has just updated is always the one decoded with.
        """
        em = as_array(emissions, "emissions")
        if em.ndim != 3:
            raise ValueError(f"emissions must have shape (batch, time, tags), got shape {em.shape}.")
        trans = np.asarray(_read_weight(self._trans), dtype=np.float64)
        if self.lr_multiplier != 1.0:
            trans = trans * self.lr_multiplier
        return viterbi_decode(em, trans, lengths, allowed_start, allowed_end)

    def get_config(self):
        return {
            **super().get_config(),
            "trans_initializer": keras.initializers.serialize(self.trans_initializer),
            "lr_multiplier": self.lr_multiplier,
        }
