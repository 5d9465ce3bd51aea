"""Capsules: vector neurons, squash, dynamic routing, the margin loss, the pair test.

A capsule layer maps ``n`` input vectors ``u_i`` (shape ``(B, n, d_in)``) to ``k`` output
vectors ``v_j`` (shape ``(B, k, d_out)``). Each output is a cluster centre of the projected
inputs ``u_hat[j, i] = W_j u_i`` (shared weights) or ``W_ji u_i`` (unshared), found by a few
unrolled routing iterations (:func:`route`). Three routings are implemented:

``"hinton"``
    Sabour, Frosst & Hinton (2017): accumulating logits ``b += <u_hat, v>``, squash after
    every pass.
``"su2018"``
    kexue.fm/archives/4819: non-accumulating logits ``b = <u_hat, v>``, squash after every
    pass.
``"su2018b"``
    kexue.fm/archives/5112: the centre is normalised between passes, squash once at the end.

The module also holds the margin loss, the two MNIST classifiers of the articles (CNN +
global average pooling, CNN + capsule on the same trunk), the overlapping-digit test set and
its metrics, and the soft K-Means functions from which kexue.fm/archives/5112 derives routing.

Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    _is_int,
    as_array,
    as_float_tensor,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_finite,
    check_instance,
    check_int,
    check_int_range,
    check_positive,
    check_real,
    check_shape,
    check_unit_targets,
    describe,
    dtype_kind,
)

ROUTINGS = ("hinton", "su2018", "su2018b")
"""The routing modes understood by :func:`route` and :class:`Capsule`."""


def _check_mode(mode, name="mode"):
    if not isinstance(mode, str) or mode not in ROUTINGS:
        raise ValueError(f"routing mode must be one of {ROUTINGS}, got {name}={describe(mode)}.")
    return mode


def _check_axis(axis, x, name="axis"):
    rank = len(x.shape)
    if not _is_int(axis) or not -rank <= axis < rank:
        raise ValueError(f"{name} must be an axis of x with shape {tuple(x.shape)} (an integer "
                         f"in [{-rank}, {rank})), got {describe(axis)}.")
    return int(axis)


# --------------------------------------------------------------------------------------------
# squash and routing


def squash(x, axis=-1, k=1.0, eps=None):
    """Squash vectors: keep the direction, map the norm into ``[0, 1)``.

    Computes ``||x||^2 / (k + ||x||^2) * x / ||x||`` along ``axis``. ``k = 1`` is Hinton's
    squash; kexue.fm/archives/4819 prefers ``k = 0.5`` (twice the gain near zero). ``eps``
    (default ``keras.config.epsilon()``) sits inside the square root, so the gradient at
    ``x = 0`` is finite.

    Args:
        x: tensor of any shape with at least one axis.
        axis: the axis holding the vector components.
        k: positive constant of the norm map.
        eps: small positive constant inside the square root.

    Returns:
        a tensor of the shape of ``x``.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    k = check_positive(k, "k")
    eps = keras.config.epsilon() if eps is None else check_positive(eps, "eps")
    x = as_float_tensor(x, "x", min_rank=1)
    axis = _check_axis(axis, x)
    sq = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * (sq / (k + sq)) / ops.sqrt(sq + eps)


def _l2_normalize(x, axis=-1, eps=None):
    eps = keras.config.epsilon() if eps is None else eps
    return x / ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True) + eps)


def route(u_hat, iterations=3, mode="su2018", squash_k=0.5, return_coupling=False):
    """Dynamic routing: cluster the votes ``u_hat[b, j, i]`` into ``k`` output capsules.

    ``iterations`` counts *passes*, i.e. weighted sums ``s_j = sum_i c_ij u_hat[j, i]``;
    the first pass always uses the uniform coupling ``c_ij = 1/k``, and every later pass
    recomputes ``c_i = softmax_j(b_i)`` (softmax over the output capsules ``j``, for each
    input ``i``) from logits ``b_ij`` that depend on the mode:

    * ``"hinton"``: ``v = squash(s)`` each pass; ``b_ij += <u_hat[j, i], v_j>``;
    * ``"su2018"``: ``v = squash(s)`` each pass; ``b_ij = <u_hat[j, i], v_j>``;
    * ``"su2018b"``: ``b_ij = <u_hat[j, i], s_j / ||s_j||>``; squash only after the last
      pass. In the notation of kexue.fm/archives/5112 (an initial mean, then ``r``
      updates) ``iterations = r + 1``; the repository's ``routings=3`` is ``iterations=3``.

    ``"hinton"`` and ``"su2018"`` coincide for ``iterations <= 2``; with ``iterations = 1``
    all three return ``squash(sum_i u_hat[j, i] / k)``.

    Args:
        u_hat: votes, shape ``(B, k, n, d)``.
        iterations: number of passes, >= 1.
        mode: one of :data:`ROUTINGS`.
        squash_k: the constant ``k`` of :func:`squash`.
        return_coupling: also return the coupling used in the last pass.

    Returns:
        ``v`` of shape ``(B, k, d)``; with ``return_coupling`` the pair ``(v, c)`` with
        ``c`` of shape ``(B, n, k)``, each row summing to one.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    iterations = check_int(iterations, "iterations")
    mode = _check_mode(mode)
    squash_k = check_positive(squash_k, "squash_k")
    return_coupling = check_bool(return_coupling, "return_coupling")
    u_hat = as_float_tensor(u_hat, "u_hat", min_rank=1)
    check_shape(u_hat, "u_hat", ("batch", "num_capsule", "n_inputs", "dim"))
    num_capsule = u_hat.shape[1]
    b = None
    c = None
    v = None
    for t in range(iterations):
        if b is None:
            s = ops.sum(u_hat, axis=2) / float(num_capsule)  # (B, k, d), c = 1/k
            c = ops.ones_like(u_hat[:, :, :, 0]) / float(num_capsule)  # (B, k, n)
        else:
            c = ops.softmax(b, axis=1)  # over the output capsules
            s = ops.sum(c[:, :, :, None] * u_hat, axis=2)
        if t == iterations - 1:
            v = squash(s, k=squash_k)
            break
        if mode == "su2018b":
            centre = _l2_normalize(s)
        else:
            centre = squash(s, k=squash_k)
        logits = ops.sum(centre[:, :, None, :] * u_hat, axis=-1)
        b = logits if (b is None or mode != "hinton") else b + logits
    if return_coupling:
        return v, ops.transpose(c, (0, 2, 1))
    return v


# --------------------------------------------------------------------------------------------
# layers


@keras.saving.register_keras_serializable(package="kexue")
class Capsule(keras.layers.Layer):
    """A capsule layer: ``n`` input vectors to ``num_capsule`` output vectors by routing.

    Votes ``u_hat[b, j, i] = W_j u_i`` with one matrix per output capsule
    (``share_weights=True``, kernel ``(d_in, num_capsule * dim_capsule)``, any ``n``) or
    ``W_ji u_i`` with one matrix per (input, output) pair (``share_weights=False``, kernel
    ``(n, d_in, num_capsule * dim_capsule)``, fixed ``n``). No bias, glorot-uniform
    initialisation. The votes are routed by :func:`route`.

    Input shape ``(B, n, d_in)``; output shape ``(B, num_capsule, dim_capsule)``.

    Args:
        num_capsule: number of output capsules ``k``.
        dim_capsule: dimension ``d_out`` of each output capsule.
        routings: passes of :func:`route` (>= 1).
        share_weights: one matrix per output capsule (True) or per (input, output) pair.
        routing: one of :data:`ROUTINGS`.
        squash_k: the constant of :func:`squash` (0.5 in the articles, 1 in Hinton's).

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """

    def __init__(self, num_capsule, dim_capsule, routings=3, share_weights=True,
                 routing="su2018", squash_k=0.5, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_capsule = check_int(num_capsule, "num_capsule")
        self.dim_capsule = check_int(dim_capsule, "dim_capsule")
        self.routings = check_int(routings, "routings")
        if not isinstance(share_weights, bool):
            raise TypeError(f"share_weights must be a bool, got {share_weights!r}.")
        self.share_weights = share_weights
        self.routing = _check_mode(routing, "routing")
        self.squash_k = check_positive(squash_k, "squash_k")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"Capsule expects inputs of shape (batch, n_inputs, dim) with a known dim, got "
                f"input_shape={tuple(input_shape)}."
            )
        d_in = int(input_shape[-1])
        out = self.num_capsule * self.dim_capsule
        if self.share_weights:
            shape = (d_in, out)
        else:
            if input_shape[1] is None:
                raise ValueError(
                    "Capsule(share_weights=False) needs a fixed number of input capsules, got "
                    f"input_shape={tuple(input_shape)}; use share_weights=True for variable n."
                )
            shape = (int(input_shape[1]), d_in, out)
        self.n_inputs = None if self.share_weights else int(input_shape[1])
        self.kernel = self.add_weight(name="kernel", shape=shape,
                                      initializer=self.kernel_initializer, trainable=True)

    def votes(self, inputs):
        """The votes ``u_hat`` of shape ``(B, num_capsule, n, dim_capsule)``."""
        inputs = as_float_tensor(inputs, "inputs", min_rank=1)
        if len(inputs.shape) != 3:
            raise ValueError(
                f"Capsule expects inputs of shape (batch, n_inputs, dim), got shape "
                f"{tuple(inputs.shape)}."
            )
        if self.share_weights:
            u = ops.einsum("bnd,dm->bnm", inputs, self.kernel)
        else:
            if inputs.shape[1] is not None and inputs.shape[1] != self.n_inputs:
                raise ValueError(
                    f"this unshared Capsule was built for {self.n_inputs} input capsules, got "
                    f"inputs with {inputs.shape[1]}."
                )
            u = ops.einsum("bnd,ndm->bnm", inputs, self.kernel)
        shape = ops.shape(u)
        u = ops.reshape(u, (shape[0], shape[1], self.num_capsule, self.dim_capsule))
        return ops.transpose(u, (0, 2, 1, 3))

    def call(self, inputs):
        return route(self.votes(inputs), self.routings, self.routing, self.squash_k)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_capsule, self.dim_capsule)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_capsule=self.num_capsule, dim_capsule=self.dim_capsule, routings=self.routings,
            share_weights=self.share_weights, routing=self.routing, squash_k=self.squash_k,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config


@keras.saving.register_keras_serializable(package="kexue")
class CapsuleLength(keras.layers.Layer):
    """The Euclidean norm of each capsule: ``(B, k, d)`` to ``(B, k)``.

    After :func:`squash` the norms lie in ``[0, 1)`` and serve as independent class scores.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """

    def call(self, inputs):
        inputs = as_float_tensor(inputs, "inputs", min_rank=1)
        check_shape(inputs, "inputs", ("batch", "num_capsule", "dim_capsule"))
        return ops.sqrt(ops.sum(ops.square(inputs), axis=-1) + keras.config.epsilon())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])


# --------------------------------------------------------------------------------------------
# the margin loss


def margin_loss(y_true, y_pred, m_plus=0.9, m_minus=0.1, lam=0.25):
    """Margin loss of capsule classification, summed over classes: shape ``(B, C)`` to ``(B,)``.

    ``L = sum_c T_c max(0, m+ - p_c)^2 + lam (1 - T_c) max(0, p_c - m-)^2`` where ``T`` is
    the (multi-)hot target ``y_true`` and ``p = y_pred`` are scores in ``[0, 1]`` (capsule
    norms or sigmoids). kexue.fm/archives/4819 uses ``0.9, 0.1, 0.25`` for both models; Sabour
    et al. (2017) use ``lam = 0.5``.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    m_plus, m_minus, lam = _check_margins(m_plus, m_minus, lam)
    y_pred = as_float_tensor(y_pred, "y_pred", min_rank=1)
    y_true = check_unit_targets(y_true, y_pred, "y_pred", ("batch", "classes"),
                                "(multi-)hot targets")
    pos = y_true * ops.square(ops.relu(m_plus - y_pred))
    neg = lam * (1.0 - y_true) * ops.square(ops.relu(y_pred - m_minus))
    return ops.sum(pos + neg, axis=-1)


def _check_margins(m_plus, m_minus, lam):
    m_plus = check_real(m_plus, "m_plus", 0.0, 1.0)
    m_minus = check_real(m_minus, "m_minus", 0.0, 1.0)
    if not m_minus < m_plus:
        raise ValueError(
            f"need 0 <= m_minus < m_plus <= 1, got m_minus={m_minus!r}, m_plus={m_plus!r}."
        )
    return m_plus, m_minus, check_real(lam, "lam", 0.0)


@keras.saving.register_keras_serializable(package="kexue")
class MarginLoss(keras.losses.Loss):
    """:func:`margin_loss` as a Keras loss (mean over the batch), with ``get_config``.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """

    def __init__(self, m_plus=0.9, m_minus=0.1, lam=0.25, name="margin_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.m_plus, self.m_minus, self.lam = _check_margins(m_plus, m_minus, lam)

    def call(self, y_true, y_pred):
        return margin_loss(y_true, y_pred, self.m_plus, self.m_minus, self.lam)

    def get_config(self):
        config = super().get_config()
        config.update(m_plus=self.m_plus, m_minus=self.m_minus, lam=self.lam)
        return config


# --------------------------------------------------------------------------------------------
# the models of the articles


def _check_widths(widths):
    if (isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) != 4
            or not all(_is_int(w) and w > 0 for w in widths)):
        raise ValueError(f"widths must be four positive integers, got {describe(widths)}.")
    return tuple(int(w) for w in widths)


def _check_name(name):
    return check_instance(name, "name", str, "a string (the model's name)")


def cnn_trunk(widths=(64, 64, 128, 128), name="trunk"):
    """The shared convolutional trunk of kexue.fm/archives/4819.

    Conv 3x3 (valid, ReLU) ``widths[0]``, ``widths[1]`` -> AvgPool 2 -> Conv ``widths[2]``,
    ``widths[3]``. Input ``(B, H, W, 1)`` of any size >= 14x14; a 28x28 digit gives an
    8x8 map, a 56x28 pair a 22x8 map (``widths[3]`` channels).

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    a, b, c, d = _check_widths(widths)
    _check_name(name)
    return keras.Sequential(
        [
            keras.Input((None, None, 1)),
            keras.layers.Conv2D(a, 3, activation="relu"),
            keras.layers.Conv2D(b, 3, activation="relu"),
            keras.layers.AveragePooling2D(2),
            keras.layers.Conv2D(c, 3, activation="relu"),
            keras.layers.Conv2D(d, 3, activation="relu"),
        ],
        name=name,
    )


def gap_head(channels, num_classes=10, hidden=None, name="gap_head"):
    """GlobalAveragePooling -> Dense ``hidden`` ReLU -> Dense ``num_classes`` sigmoid.

    Input ``(B, H, W, channels)``, output ``(B, num_classes)`` scores in ``(0, 1)``.
    ``hidden`` defaults to ``channels`` (128 at the article's width).

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    channels = check_int(channels, "channels")
    num_classes = check_int(num_classes, "num_classes")
    hidden = channels if hidden is None else check_int(hidden, "hidden")
    _check_name(name)
    return keras.Sequential(
        [
            keras.Input((None, None, channels)),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(num_classes, activation="sigmoid"),
        ],
        name=name,
    )


def capsule_head(channels, num_classes=10, dim_capsule=16, routings=3, routing="su2018",
                 squash_k=0.5, name="capsule_head"):
    """Reshape the feature map to capsules -> shared :class:`Capsule` -> norms.

    Input ``(B, H, W, channels)`` (``H*W`` input capsules of dimension ``channels``), output
    ``(B, num_classes)`` capsule norms in ``[0, 1)``.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    channels = check_int(channels, "channels")
    num_classes = check_int(num_classes, "num_classes")
    _check_name(name)
    return keras.Sequential(
        [
            keras.Input((None, None, channels)),
            keras.layers.Reshape((-1, channels)),
            Capsule(num_classes, dim_capsule, routings=routings, share_weights=True,
                    routing=routing, squash_k=squash_k, name="capsule"),
            CapsuleLength(name="length"),
        ],
        name=name,
    )


def cnn_gap_classifier(widths=(64, 64, 128, 128), num_classes=10, name="cnn_gap"):
    """CNN + global average pooling: :func:`cnn_trunk` then :func:`gap_head`.

    Input ``(B, H, W, 1)``, output ``(B, num_classes)``. 276,810 parameters at the default
    (the article's) widths.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    widths = _check_widths(widths)
    inputs = keras.Input((None, None, 1))
    outputs = gap_head(widths[3], num_classes)(cnn_trunk(widths)(inputs))
    return keras.Model(inputs, outputs, name=name)


def capsule_classifier(widths=(64, 64, 128, 128), num_classes=10, dim_capsule=16, routings=3,
                       routing="su2018", squash_k=0.5, name="cnn_capsule"):
    """CNN + capsule: :func:`cnn_trunk` then :func:`capsule_head`.

    Input ``(B, H, W, 1)``, output ``(B, num_classes)``. 279,488 parameters at the default
    (the article's) widths.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    widths = _check_widths(widths)
    inputs = keras.Input((None, None, 1))
    head = capsule_head(widths[3], num_classes, dim_capsule, routings, routing, squash_k)
    return keras.Model(inputs, head(cnn_trunk(widths)(inputs)), name=name)


def shared_trunk_classifier(widths=(64, 64, 128, 128), heads=("cnn", "su2018"), num_classes=10,
                            dim_capsule=16, routings=3, squash_k=0.5, name="shared_trunk"):
    """One :func:`cnn_trunk` feeding several heads, trained jointly (one loss per head).

    ``heads`` names the heads: ``"cnn"`` is :func:`gap_head` (global average pooling), a
    routing mode of :data:`ROUTINGS` is a :func:`capsule_head` with that routing. All heads
    read the same feature map, so differences between their predictions come from the
    aggregation rule alone. Input ``(B, H, W, 1)``; output a dict ``{head: (B, num_classes)}``.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    widths = _check_widths(widths)
    if isinstance(heads, (str, bytes)) or not hasattr(heads, "__iter__"):
        raise ValueError(f"heads must be a sequence of head names such as ('cnn', 'su2018'), "
                         f"got {describe(heads)}.")
    heads = tuple(heads)
    if not heads or len(set(heads)) != len(heads):
        raise ValueError(f"heads must be distinct names, got {heads!r}.")
    for head in heads:
        if not isinstance(head, str) or (head != "cnn" and head not in ROUTINGS):
            raise ValueError(f"each head must be 'cnn' or one of {ROUTINGS}, got {head!r}.")
    inputs = keras.Input((None, None, 1))
    features = cnn_trunk(widths)(inputs)
    outputs = {}
    for head in heads:
        if head == "cnn":
            layer = gap_head(widths[3], num_classes, name=head)
        else:
            layer = capsule_head(widths[3], num_classes, dim_capsule, routings, head, squash_k,
                                 name=head)
        outputs[head] = layer(features)
    return keras.Model(inputs, outputs, name=name)


# --------------------------------------------------------------------------------------------
# the overlapping-digits test


def make_pair_testset(x, y, rng):
    """Stack every test digit vertically on a randomly chosen other one (kexue.fm/4819).

    The images are shuffled, paired with a random permutation of themselves and
    concatenated along the height; pairs of equal digits are dropped.

    Args:
        x: images, shape ``(N, 28, 28)`` or ``(N, 28, 28, 1)``.
        y: integer labels, shape ``(N,)``.
        rng: a ``numpy.random.Generator``.

    Returns:
        ``(images, pairs)``: images ``(M, 56, 28, 1)`` of the dtype of ``x`` and the sorted
        label pairs ``(M, 2)``, with ``M`` about ``0.9 N`` for ten balanced classes.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    x = as_array(x, "x")
    y = as_array(y, "y")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {describe(rng)}.")
    check_dtype(y, "y", "int")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, H, W) or (N, H, W, 1), got {x.shape}.")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match x, got {y.shape}.")
    idx = rng.permutation(len(x))
    other = rng.permutation(idx)
    keep = y[idx] != y[other]
    idx, other = idx[keep], other[keep]
    images = np.concatenate([x[idx], x[other]], axis=1)[..., None]
    pairs = np.sort(np.stack([y[idx], y[other]], axis=1), axis=1)
    return images, pairs


def pair_accuracy(scores, pairs, thr=0.5):
    """The two metrics of the pair test.

    Metric 1: the two highest scores are the two digits of the pair (order ignored).
    Metric 2: metric 1 and, in addition, both of these scores exceed ``thr``.

    Args:
        scores: class scores, shape ``(M, C)``.
        pairs: label pairs, shape ``(M, 2)``.
        thr: the confidence threshold of metric 2.

    Returns:
        ``(acc_top2, acc_top2_confident)`` as floats.

    Used in: book/capsules/capsule-feast.md, book/capsules/kmeans-to-capsule.md
    """
    scores = as_array(scores, "scores")
    pairs = as_array(pairs, "pairs")
    thr = check_real(thr, "thr")
    if scores.ndim != 2 or scores.shape[1] < 2 or scores.shape[0] == 0:
        raise ValueError(f"scores must have shape (M, C) with M >= 1 and C >= 2, got shape "
                         f"{scores.shape}.")
    check_finite(scores, "scores")
    if pairs.shape != (scores.shape[0], 2):
        raise ValueError(f"pairs must have shape ({scores.shape[0]}, 2), got shape {pairs.shape}.")
    check_int_range(pairs, "pairs", 0, scores.shape[1])
    top2 = np.sort(np.argsort(-scores, axis=1, kind="stable")[:, :2], axis=1)
    hit = np.all(top2 == np.sort(pairs, axis=1), axis=1)
    top_scores = np.take_along_axis(scores, top2, axis=1)
    confident = hit & np.all(top_scores > thr, axis=1)
    return float(hit.mean()), float(confident.mean())


# --------------------------------------------------------------------------------------------
# soft K-Means (kexue.fm/archives/5112)


def smooth_max(x, K=1.0, axis=-1):
    """The smoothed maximum ``(1/K) log sum_i exp(K x_i)`` along ``axis``.

    It exceeds ``max_i x_i`` by at most ``log(n) / K`` and tends to it as ``K -> inf``.

    Used in: book/capsules/kmeans-to-capsule.md
    """
    K = check_positive(K, "K")
    x = as_float_tensor(x, "x", min_rank=1)
    axis = _check_axis(axis, x)
    return ops.logsumexp(K * x, axis=axis) / K


def _distance(U, V, metric):
    """d(u_i, v_j), shape (n, k), for the two metrics of 5112."""
    if metric == "euclid":
        return ops.sum(ops.square(U[:, None, :] - V[None, :, :]), axis=-1)
    if metric == "normalized_dot":
        return -ops.matmul(U, ops.transpose(_l2_normalize(V, eps=1e-30)))
    raise ValueError(f"metric must be 'euclid' or 'normalized_dot', got {metric!r}.")


def _check_points(U, V, v_name="V", numpy=False):
    """``U`` ``(n, d)`` and ``V`` ``(k, d)`` as float tensors (NumPy float64 arrays with
    ``numpy``), checked: same ``d``, no empty axis, finite values where they are known."""
    if numpy:
        U, V = as_array(U, "U", "float64"), as_array(V, v_name, "float64")
    else:
        U, V = as_tensor(U, "U"), as_tensor(V, v_name)
        if dtype_kind(U) != "f":
            U = ops.cast(U, keras.backend.floatx())
        if dtype_kind(V) != "f":
            V = ops.cast(V, U.dtype)
    check_shape(U, "U", ("n", "d"))
    if len(V.shape) != 2 or (None not in (U.shape[1], V.shape[1]) and U.shape[1] != V.shape[1]):
        raise ValueError(
            f"{v_name} must have shape (k, d={U.shape[1]}), the same d as U of shape "
            f"{tuple(U.shape)}; got shape {tuple(V.shape)}."
        )
    if 0 in tuple(U.shape) or 0 in tuple(V.shape):
        raise ValueError(f"U and {v_name} must not be empty, got shapes {tuple(U.shape)} and "
                         f"{tuple(V.shape)}.")
    check_finite(U, "U")
    check_finite(V, v_name)
    return U, V


def _check_metric(metric):
    return check_choice(metric, "metric", ("euclid", "normalized_dot"))


def smoothed_kmeans_loss(U, V, K=1.0, metric="euclid"):
    """The smoothed K-Means objective ``-(1/K) sum_i log sum_j exp(-K d(u_i, v_j))``.

    ``d`` is ``||u - v||^2`` (``"euclid"``) or ``-<u, v/||v||>`` (``"normalized_dot"``).
    As ``K -> inf`` it tends to ``sum_i min_j d(u_i, v_j)``, the K-Means loss. Written in
    ``keras.ops`` so that a gradient tape can differentiate it.

    Args:
        U: points, shape ``(n, d)``. V: centres, shape ``(k, d)``. K: inverse temperature.

    Returns:
        a scalar.

    Used in: book/capsules/kmeans-to-capsule.md
    """
    U, V = _check_points(U, V)
    K = check_positive(K, "K")
    d = _distance(U, V, _check_metric(metric))
    return -ops.sum(ops.logsumexp(-K * d, axis=1)) / K


def soft_assign(U, V, K=1.0, metric="euclid"):
    """Soft assignment ``c_ij = softmax_j(-K d(u_i, v_j))``, shape ``(n, k)``.

    Used in: book/capsules/kmeans-to-capsule.md
    """
    U, V = _check_points(U, V)
    K = check_positive(K, "K")
    return ops.softmax(-K * _distance(U, V, _check_metric(metric)), axis=1)


def soft_kmeans(U, V0, K=1.0, iters=100, metric="euclid"):
    """Fixed-point iteration of the smoothed K-Means objective (kexue.fm/archives/5112).

    Each step freezes the assignment ``c = soft_assign(U, V, K, metric)`` and solves the
    stationarity condition for the centres: the ``c``-weighted mean ``sum_i c_ij u_i /
    sum_i c_ij`` (``"euclid"``) or the weighted sum ``sum_i c_ij u_i`` (``"normalized_dot"``,
    whose stationarity fixes only the direction; the sum lets the norm grow with the cluster).

    Args:
        U: points ``(n, d)``; V0: initial centres ``(k, d)``; K: inverse temperature;
        iters: number of steps; metric: ``"euclid"`` or ``"normalized_dot"``.

    Returns:
        ``(V, c)``: centres ``(k, d)`` and the last assignment ``(n, k)``.

    Used in: book/capsules/kmeans-to-capsule.md
    """
    U, V0 = _check_points(U, V0, "V0")
    iters = check_int(iters, "iters")
    K = check_positive(K, "K")
    metric = _check_metric(metric)
    V = V0
    for _ in range(iters):
        c = soft_assign(U, V, K, metric)
        s = ops.matmul(ops.transpose(c), U)
        V = s / ops.sum(c, axis=0)[:, None] if metric == "euclid" else s
    return V, soft_assign(U, V, K, metric)


def lloyd_kmeans(U, V0, iters=100):
    """Lloyd's algorithm in NumPy: assign to the nearest centre, move centres to the means.

    An empty cluster keeps its centre. Returns ``(V, labels)`` with shapes ``(k, d)``, ``(n,)``.

    Used in: book/capsules/kmeans-to-capsule.md
    """
    U, V = _check_points(U, V0, "V0", numpy=True)
    V = V.copy()
    for _ in range(check_int(iters, "iters")):
        labels = np.argmin(((U[:, None, :] - V[None]) ** 2).sum(-1), axis=1)
        for j in range(len(V)):
            if np.any(labels == j):
                V[j] = U[labels == j].mean(0)
    labels = np.argmin(((U[:, None, :] - V[None]) ** 2).sum(-1), axis=1)
    return V, labels
