"""Losses: cross-entropy against a smoothed target, and the identity loss that turns a
model output into a training objective.

- :func:`smoothed_crossentropy` / :class:`SmoothedCrossentropy`: the cross-entropy between
  ``q = (1 - eps) onehot + eps / n`` and ``softmax(logits)``, computed from logits;
- :func:`optimal_logit_gap` and :func:`smoothed_ce_minimum`: its closed-form optimum;
- :func:`output_as_loss`: ``loss(y_true, y_pred) = y_pred``, for outputs that already are a
  loss (the center-loss distance of :class:`kexue.layers.ClassCenters`);
- :func:`multilabel_categorical_crossentropy` / :class:`MultilabelCategoricalCrossentropy`:
  softmax cross-entropy for k of n labels with a threshold class (unknown labels masked), its
  pairwise form :func:`pairwise_multilabel_loss`, the softmax over label subsets
  :func:`combinatorial_softmax_loss` (via :func:`log_elementary_symmetric`), and the
  positive-weighted BCE baseline :func:`binary_crossentropy_with_pos_weight`.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from kexue._checks import (
    as_tensor,
    check_bool,
    check_dtype,
    check_int,
    check_int_range,
    check_real,
    check_shape,
    check_unit_targets,
)


def _check_epsilon(epsilon):
    return check_real(epsilon, "epsilon", 0.0, 1.0, high_open=True)


@keras.saving.register_keras_serializable(package="kexue")
def smoothed_crossentropy(y_true, logits, epsilon=0.1):
    """Cross-entropy of ``softmax(logits)`` against the smoothed one-hot target.

    With ``n`` classes and ``q = (1 - epsilon) * y_true + epsilon / n``, returns
    ``-sum_i q_i log softmax(logits)_i = -(1 - eps) log p_t - (eps / n) sum_i log p_i``.
    ``y_true`` is one-hot (or any distribution), shape ``(batch, n)``; ``logits`` has the same
    shape; the result has shape ``(batch,)``. Computed with ``log_softmax`` (stable for large
    logits). Equal to ``keras.losses.categorical_crossentropy(y_true, logits,
    from_logits=True, label_smoothing=epsilon)``.

    Used in: book/keras/custom-losses.md
    """
    epsilon = _check_epsilon(epsilon)
    logits = as_tensor(logits, "logits")
    check_dtype(logits, "logits", "float")
    y_true = check_unit_targets(y_true, logits, "logits", ("batch", "n"),
                                "one-hot rows or probabilities")
    n = logits.shape[-1]
    log_p = ops.log_softmax(logits, axis=-1)
    q = (1.0 - epsilon) * y_true + epsilon / n
    return -ops.sum(q * log_p, axis=-1)


@keras.saving.register_keras_serializable(package="kexue")
class SmoothedCrossentropy(keras.losses.Loss):
    """Keras loss wrapping :func:`smoothed_crossentropy` (one-hot ``y_true``, logits ``y_pred``).

    With ``sparse=True`` the labels are integers ``(batch,)`` or ``(batch, 1)`` and are one-hot
    encoded first (Keras's ``SparseCategoricalCrossentropy`` has no ``label_smoothing``).

    Used in: book/keras/custom-losses.md
    """

    def __init__(self, epsilon=0.1, sparse=False, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = _check_epsilon(epsilon)
        self.sparse = check_bool(sparse, "sparse")

    def call(self, y_true, y_pred):
        if self.sparse:
            y_pred = as_tensor(y_pred, "y_pred")
            check_shape(y_pred, "y_pred", ("batch", "n"))
            y_true = as_tensor(y_true, "y_true")
            check_dtype(y_true, "y_true", "number")
            if len(y_true.shape) == 2 and y_true.shape[-1] == 1:
                y_true = ops.squeeze(y_true, -1)
            if len(y_true.shape) != 1:
                raise ValueError(
                    f"y_true (sparse labels) must have shape (batch,) or (batch, 1), got shape "
                    f"{tuple(y_true.shape)}."
                )
            if y_pred.shape[-1] is not None:
                check_int_range(y_true, "y_true (sparse labels)", 0, int(y_pred.shape[-1]))
            y_true = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1])
        return smoothed_crossentropy(y_true, y_pred, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, sparse=self.sparse)
        return config


def _check_classes(n):
    check_int(n, "n", 2, "an integer number of classes >= 2")


def optimal_logit_gap(n, epsilon):
    """The logit gap ``z_t - z_i`` (every ``i != t``) that minimises the smoothed loss.

    At the optimum ``softmax(z) = q``, so ``z_t - z_i = log(q_t / q_i) =
    log(1 + n (1 - eps) / eps)``; infinite for ``eps = 0``. ``n=10, eps=0.1``: ``log 91``.

    Used in: book/keras/custom-losses.md
    """
    _check_classes(n)
    epsilon = _check_epsilon(epsilon)
    if epsilon == 0.0:
        return math.inf
    return math.log1p(n * (1.0 - epsilon) / epsilon)


def smoothed_ce_minimum(n, epsilon):
    """The minimum of the smoothed loss over all logits: the entropy ``H(q)`` of the target.

    ``H(q) = -(1 - eps + eps/n) log(1 - eps + eps/n) - (n - 1)(eps/n) log(eps/n)``;
    0 for ``eps = 0`` (reached only as the logits diverge).

    Used in: book/keras/custom-losses.md
    """
    _check_classes(n)
    epsilon = _check_epsilon(epsilon)
    if epsilon == 0.0:
        return 0.0
    q_t, q_i = 1.0 - epsilon + epsilon / n, epsilon / n
    return -q_t * math.log(q_t) - (n - 1) * q_i * math.log(q_i)


@keras.saving.register_keras_serializable(package="kexue")
def output_as_loss(y_true, y_pred):
    """The identity loss: returns ``y_pred`` averaged over its last axis, ignoring ``y_true``.

    For a model output that already is a per-example loss, shape ``(batch, k)`` → ``(batch,)``;
    ``y_true`` is a dummy target of any values (Keras 3 still wants one per output).

    Used in: book/keras/custom-losses.md
    """
    y_pred = as_tensor(y_pred, "y_pred")
    check_dtype(y_pred, "y_pred", "number")
    check_shape(y_pred, "y_pred", ("batch", "k"))
    return ops.mean(y_pred, axis=-1)


# ------------------------------------------------------------------ multi-label classification
# Softmax cross-entropy extended to k of n labels, its pairwise form and the combinatorial
# softmax over label subsets (book/sequence/multilabel-softmax.md).

import numpy as np  # noqa: E402

from kexue._checks import check_positive, concrete  # noqa: E402

IGNORE_LABEL = -1
"""The value of ``y_true`` that marks a label as unknown in
:func:`multilabel_categorical_crossentropy`: it is neither a positive nor a negative."""

_LOG_ZERO = {"float16": -65504.0 / 4, "bfloat16": -3.3895e38 / 4,
             "float32": -3.4028234e38 / 4, "float64": -1.7976931348623157e308 / 4}


def _log_zero(dtype):
    """A finite stand-in for log 0 in ``dtype``: a quarter of its most negative value, so that
    the sum of two of them is still finite (float16: -16376, float32: -8.5e37).

    ``exp`` of it is exactly 0, so a masked entry drops out of a ``logsumexp``; being finite,
    it keeps the gradients of ``logsumexp`` and ``where`` free of NaN (``-inf - -inf``).
    """
    return _LOG_ZERO[keras.backend.standardize_dtype(dtype)]


def _multilabel_inputs(y_true, logits, *, ignore=True, logits_name="logits", columns=0):
    """``(y_true, logits)``: checked, ``y_true`` cast to the float dtype of ``logits``.

    ``logits`` must be a float tensor ``(batch, n + columns)``; ``y_true`` numbers or booleans
    ``(batch, n)`` with values in {0, 1} (and :data:`IGNORE_LABEL` when ``ignore``).
    """
    logits = as_tensor(logits, logits_name)
    check_dtype(logits, logits_name, "float")
    check_shape(logits, logits_name, ("batch", None))
    y_true = as_tensor(y_true, "y_true")
    check_dtype(y_true, "y_true", ("number", "bool"))
    n = logits.shape[-1] - columns if logits.shape[-1] is not None else None
    check_shape(y_true, "y_true", (logits.shape[0], n))
    y = concrete(y_true)
    allowed = (0, 1, IGNORE_LABEL) if ignore else (0, 1)
    if y is not None and y.size and not np.isin(y, allowed).all():
        bad = y[~np.isin(y, allowed)].flat[0]
        raise ValueError(f"y_true must hold only {' or '.join(map(str, allowed))} (multi-hot "
                         f"labels), got {bad!r} (shape {y.shape}).")
    return ops.cast(y_true, logits.dtype), logits


@keras.saving.register_keras_serializable(package="kexue")
def multilabel_categorical_crossentropy(y_true, logits, threshold=0.0):
    """Softmax cross-entropy for several target classes, with the threshold class at ``s0``.

    With ``P`` the positives (``y_true == 1``), ``N`` the negatives (``y_true == 0``) and
    ``s0 = threshold``, returns

        log(1 + sum_{i in N} e^{s_i - s0}) + log(1 + sum_{j in P} e^{s0 - s_j}),

    the loss that asks every negative below ``s0`` and every positive above it; predict the
    classes with ``logits > threshold``. Labels equal to :data:`IGNORE_LABEL` (-1) count in
    neither sum. ``logits`` are raw scores (no sigmoid or softmax before the loss), float,
    shape ``(batch, n)``; ``y_true`` has the same shape; the result is ``(batch,)``. Each sum is
    a ``logsumexp`` with an appended 0 for the ``1 +``, masked entries are a finite log 0 of
    the dtype, so the loss and its gradient stay finite for any finite logits. A row without
    positives (or without negatives) is valid: its sum is log 1 = 0.

    Used in: book/sequence/multilabel-softmax.md
    """
    threshold = check_real(threshold, "threshold")
    y, s = _multilabel_inputs(y_true, logits)
    log_zero = _log_zero(s.dtype)
    zero = ops.zeros_like(s[:, :1])
    neg = ops.where(ops.equal(y, 0.0), s - threshold, log_zero)
    pos = ops.where(ops.equal(y, 1.0), threshold - s, log_zero)
    return (ops.logsumexp(ops.concatenate([zero, neg], axis=-1), axis=-1)
            + ops.logsumexp(ops.concatenate([zero, pos], axis=-1), axis=-1))


@keras.saving.register_keras_serializable(package="kexue")
class MultilabelCategoricalCrossentropy(keras.losses.Loss):
    """Keras loss wrapping :func:`multilabel_categorical_crossentropy`.

    ``y_true`` multi-hot ``(batch, n)`` (-1 marks an unknown label), ``y_pred`` raw logits
    ``(batch, n)``; ``threshold`` is the score of the threshold class (0 in the article).

    Used in: book/sequence/multilabel-softmax.md
    """

    def __init__(self, threshold=0.0, name="multilabel_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = check_real(threshold, "threshold")

    def call(self, y_true, y_pred):
        return multilabel_categorical_crossentropy(y_true, y_pred, self.threshold)

    def get_config(self):
        config = super().get_config()
        config.update(threshold=self.threshold)
        return config


def pairwise_multilabel_loss(y_true, logits, gamma=1.0, margin=0.0):
    """The unified pairwise loss: every positive above every negative, no threshold class.

    ``log(1 + sum_{i in N, j in P} e^{gamma (s_i - s_j + margin)})``, computed through the
    factorisation ``sum_{i,j} e^{s_i - s_j} = (sum_i e^{s_i}) (sum_j e^{-s_j})`` as
    ``softplus(gamma * margin + logsumexp_N(gamma s) + logsumexp_P(-gamma s))``: O(n), not
    O(|N| |P|). With one positive, ``gamma = 1`` and ``margin = 0`` it is the ordinary softmax
    cross-entropy. Shapes as :func:`multilabel_categorical_crossentropy` (no ignored labels);
    a row without positives or without negatives gives 0.

    Used in: book/sequence/multilabel-softmax.md
    """
    gamma = check_positive(gamma, "gamma")
    margin = check_real(margin, "margin")
    y, s = _multilabel_inputs(y_true, logits, ignore=False)
    log_zero = _log_zero(s.dtype)
    neg = ops.logsumexp(ops.where(ops.equal(y, 0.0), gamma * s, log_zero), axis=-1)
    pos = ops.logsumexp(ops.where(ops.equal(y, 1.0), -gamma * s, log_zero), axis=-1)
    return ops.softplus(gamma * margin + neg + pos)


def _log_poly_product(a, b, k):
    """Log-coefficients of the product of two polynomials of degree d, truncated at degree k.

    ``a``, ``b``: ``(..., d + 1)`` logs of coefficients; returns ``(..., min(2d, k) + 1)``,
    ``c_j = log sum_i e^{a_i + b_{j - i}}`` over ``max(0, j - d) <= i <= min(j, d)``, for all
    ``j`` at once: ``b`` is gathered into the table ``b_{j - i}`` (log 0 outside the band), a
    product with a constant 0/1 matrix, which copies each entry exactly.
    """
    d = a.shape[-1] - 1
    out = min(2 * d, k)
    j, i = np.arange(out + 1)[:, None], np.arange(d + 1)[None, :]
    select = (np.arange(d + 1)[:, None, None] == (j - i)[None]).reshape(d + 1, -1)
    flat = ops.matmul(ops.reshape(b, (-1, d + 1)), ops.cast(select, b.dtype))
    shifted = ops.reshape(flat, (*ops.shape(b)[:-1], out + 1, d + 1))
    shifted = ops.where((j - i >= 0) & (j - i <= d), shifted, _log_zero(b.dtype))
    return ops.logsumexp(ops.expand_dims(a, -2) + shifted, axis=-1)


def _scores_and_degree(scores, k):
    """``scores`` as a float tensor ``(..., n)`` with known ``n``, and ``k`` checked in ``[0, n]``."""
    scores = as_tensor(scores, "scores")
    check_dtype(scores, "scores", "float")
    check_shape(scores, "scores", (None, ...))
    n = scores.shape[-1]
    if n is None:
        raise ValueError("scores must have a known number of classes (last axis), got None.")
    k = check_int(k, "k", 0, maximum=n)
    return scores, k


def log_elementary_symmetric(scores, k):
    """``log e_j(e^{s_1}, ..., e^{s_n})`` for ``j = 0..k``, stably, in log space.

    ``e_j`` is the elementary symmetric polynomial: the sum over all j-subsets of the classes
    of ``e^{sum of their scores}``, i.e. the normaliser of a softmax over label subsets of size
    j. It is the coefficient of ``t^j`` in ``prod_i (1 + e^{s_i} t)``; the product is taken as a
    balanced tree of pairwise products of log-coefficient vectors truncated at degree ``k``
    (``ceil(log2 n)`` rounds, O(n k^2) work), with ``logsumexp`` in place of every sum, so no
    score is exponentiated. ``scores``: float ``(..., n)``; ``k``: an integer in ``[0, n]``;
    returns ``(..., k + 1)``, entry 0 equal to 0 (``e_0 = 1``).

    Used in: book/sequence/multilabel-softmax.md
    """
    scores, k = _scores_and_degree(scores, k)
    zero = ops.zeros_like(scores)
    if k == 0:
        return ops.expand_dims(zero[..., 0], -1)
    log_zero = _log_zero(scores.dtype)
    poly = ops.stack([zero, scores], axis=-1)                     # (..., n, 2): 1 + e^{s_i} t
    while poly.shape[-2] > 1:
        if poly.shape[-2] % 2:                                    # pad with the polynomial 1
            one = ops.zeros_like(poly[..., :1, :]) + np.where(np.arange(poly.shape[-1]) == 0,
                                                              0.0, log_zero)
            poly = ops.concatenate([poly, ops.cast(one, poly.dtype)], axis=-2)
        poly = _log_poly_product(poly[..., 0::2, :], poly[..., 1::2, :], k)
    return poly[..., 0, :]


def newton_elementary_symmetric(scores, k):
    """``e_j(e^{s_1}, ..., e^{s_n})`` for ``j = 0..k`` by Newton's identities, in linear space.

    With the power sums ``S_j = sum_i e^{j s_i}``: ``e_0 = 1`` and
    ``m e_m = sum_{j=1}^{m} (-1)^{j-1} e_{m-j} S_j``. Exact in exact arithmetic, but the
    alternating sum cancels: in float32 it loses all precision once the scores spread by a few
    units, and ``e^{k s}`` overflows. Kept as the reference the log-space
    :func:`log_elementary_symmetric` is compared with. ``scores``: float ``(..., n)``;
    returns ``(..., k + 1)`` (not logs).

    Used in: book/sequence/multilabel-softmax.md
    """
    scores, k = _scores_and_degree(scores, k)
    power = [None] + [ops.sum(ops.exp(j * scores), axis=-1) for j in range(1, k + 1)]
    e = [ops.ones_like(scores[..., 0])]
    for m in range(1, k + 1):
        e.append(sum((-1) ** (j - 1) * e[m - j] * power[j] for j in range(1, m + 1)) / m)
    return ops.stack(e, axis=-1)


def combinatorial_softmax_loss(y_true, logits, max_labels):
    """Softmax over label subsets of size ``max_labels`` (K), padded with a threshold class.

    ``logits``: float ``(batch, n + 1)``; column 0 is the score ``s_0`` of the padding class,
    columns 1..n the classes of ``y_true`` (multi-hot ``(batch, n)``, at most K positives per
    row). A row with k positives is the multiset of its k classes and K - k copies of class 0;
    the loss is its softmax cross-entropy over all such multisets,

        log Zbar_K - (sum_{j in P} s_j + (K - k) s_0),
        Zbar_K = sum_{m=0}^{K} e^{m s_0} e_{K-m}(e^{s_1}, ..., e^{s_n}),

    with :func:`log_elementary_symmetric` for the ``e_j``. Predict the classes scored above
    ``s_0`` (at most K of them). Returns ``(batch,)``.

    Used in: book/sequence/multilabel-softmax.md
    """
    max_labels = check_int(max_labels, "max_labels", 1)
    y, s = _multilabel_inputs(y_true, logits, ignore=False, columns=1)
    n = s.shape[-1] - 1
    if max_labels > n:
        raise ValueError(f"max_labels must be at most the number of classes, {n}, got "
                         f"{max_labels}.")
    y_np = concrete(y_true)
    if y_np is not None and y_np.size and np.sum(y_np, axis=-1).max() > max_labels:
        row = int(np.argmax(np.sum(y_np, axis=-1)))
        raise ValueError(f"y_true must have at most max_labels={max_labels} positives per row, "
                         f"got {int(np.sum(y_np[row]))} in row {row}.")
    s0, rest = s[:, :1], s[:, 1:]
    log_e = log_elementary_symmetric(rest, max_labels)                  # (batch, K + 1)
    m = ops.cast(ops.arange(max_labels + 1), s.dtype)                   # copies of class 0
    log_z = ops.logsumexp(m * s0 + ops.flip(log_e, axis=-1), axis=-1)
    k = ops.sum(y, axis=-1)
    target = ops.sum(y * rest, axis=-1) + (max_labels - k) * s0[:, 0]
    return log_z - target


def binary_crossentropy_with_pos_weight(y_true, logits, pos_weight=1.0):
    """Per-class binary cross-entropy with the positive terms weighted, averaged over classes.

    ``mean_i [pos_weight * y_i * softplus(-s_i) + (1 - y_i) * softplus(s_i)]`` (softplus is
    ``-log sigmoid(-x)``): the usual re-weighting against the imbalance of n independent
    sigmoids when few labels are positive. ``pos_weight = 1`` gives
    ``keras.losses.binary_crossentropy(y_true, logits, from_logits=True)``. Shapes as
    :func:`multilabel_categorical_crossentropy` (no ignored labels); returns ``(batch,)``.

    Used in: book/sequence/multilabel-softmax.md
    """
    pos_weight = check_positive(pos_weight, "pos_weight")
    y, s = _multilabel_inputs(y_true, logits, ignore=False)
    return ops.mean(pos_weight * y * ops.softplus(-s) + (1.0 - y) * ops.softplus(s), axis=-1)
