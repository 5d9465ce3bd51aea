"""Losses: cross-entropy against a smoothed target, and the identity loss that turns a
model output into a training objective.

- :func:`smoothed_crossentropy` / :class:`SmoothedCrossentropy`: the cross-entropy between
  ``q = (1 - eps) onehot + eps / n`` and ``softmax(logits)``, computed from logits;
- :func:`optimal_logit_gap` and :func:`smoothed_ce_minimum`: its closed-form optimum;
- :func:`output_as_loss`: ``loss(y_true, y_pred) = y_pred``, for outputs that already are a
  loss (the center-loss distance of :class:`kexue.layers.ClassCenters`).
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
