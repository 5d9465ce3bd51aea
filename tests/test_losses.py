"""kexue.losses: the smoothed cross-entropy against Keras and the explicit formula, its
closed-form optimum, save/load, the identity loss, bad input."""

import math

import keras
import numpy as np
import pytest
from kexue import runtime
from kexue.losses import (
    SmoothedCrossentropy,
    optimal_logit_gap,
    output_as_loss,
    smoothed_ce_minimum,
    smoothed_crossentropy,
)

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_equals_keras_label_smoothing_and_explicit_formula(eps):
    n = 7
    z = (RNG.normal(size=(32, n)) * 5).astype("float32")
    y = np.eye(n, dtype="float32")[RNG.integers(0, n, 32)]
    ours = np.asarray(smoothed_crossentropy(y, z, eps))
    assert ours.shape == (32,)
    keras_ref = np.asarray(keras.losses.categorical_crossentropy(
        y, z, from_logits=True, label_smoothing=eps))
    np.testing.assert_allclose(ours, keras_ref, atol=1e-5)
    log_p = z - z.max(1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(1, keepdims=True))
    explicit = -(1 - eps) * (y * log_p).sum(1) - eps / n * log_p.sum(1)
    np.testing.assert_allclose(ours, explicit, atol=1e-5)


def test_large_logits_are_stable():
    z = np.array([[1000.0, -1000.0, 0.0]], "float32")
    y = np.array([[1.0, 0.0, 0.0]], "float32")
    value = float(np.asarray(smoothed_crossentropy(y, z, 0.1))[0])
    assert np.isfinite(value) and value == pytest.approx(0.1 / 3 * (2000 + 1000), rel=1e-5)


def test_closed_forms():
    assert optimal_logit_gap(10, 0.1) == pytest.approx(math.log(91))
    assert smoothed_ce_minimum(10, 0.1) == pytest.approx(0.50029, abs=1e-5)
    assert optimal_logit_gap(2, 0.1) == pytest.approx(math.log(19))
    assert smoothed_ce_minimum(2, 0.1) == pytest.approx(0.19852, abs=1e-5)
    assert optimal_logit_gap(10, 0.0) == math.inf and smoothed_ce_minimum(10, 0.0) == 0.0
    # the loss at logits with exactly that gap is the minimum, and the gradient vanishes
    n, eps = 10, 0.1
    z = np.zeros((1, n), "float32")
    z[0, 3] = optimal_logit_gap(n, eps)
    y = np.eye(n, dtype="float32")[[3]]
    assert float(np.asarray(smoothed_crossentropy(y, z, eps))[0]) == pytest.approx(
        smoothed_ce_minimum(n, eps), abs=1e-6)
    for gap in (optimal_logit_gap(n, eps) - 0.5, optimal_logit_gap(n, eps) + 0.5):
        z[0, 3] = gap
        assert float(np.asarray(smoothed_crossentropy(y, z, eps))[0]) > smoothed_ce_minimum(
            n, eps)


def test_ray_behaviour():
    z = np.array([[3.0, 1.0, -0.5, 0.2]], "float32")
    y = np.eye(4, dtype="float32")[[0]]
    alphas = np.linspace(0.1, 100, 400)
    l0 = np.array([float(np.asarray(smoothed_crossentropy(y, a * z, 0.0))[0]) for a in alphas])
    l1 = np.array([float(np.asarray(smoothed_crossentropy(y, a * z, 0.1))[0]) for a in alphas])
    assert np.all(np.diff(l0) <= 1e-7)
    k = int(np.argmin(l1))
    assert 0 < k < len(alphas) - 1


def test_loss_class_sparse_and_save_load(tmp_path):
    runtime.seed(0)
    x = RNG.normal(size=(16, 5)).astype("float32")
    labels = RNG.integers(0, 3, 16)
    loss = SmoothedCrossentropy(0.2, sparse=True)
    dense_loss = SmoothedCrossentropy(0.2)
    z = RNG.normal(size=(16, 3)).astype("float32")
    np.testing.assert_allclose(float(loss(labels, z)), float(dense_loss(np.eye(3)[labels], z)),
                               atol=1e-6)
    np.testing.assert_allclose(float(loss(labels[:, None], z)), float(loss(labels, z)), atol=1e-7)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=loss)
    model.fit(x, labels, epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert isinstance(loaded.loss, SmoothedCrossentropy) and loaded.loss.epsilon == 0.2
    np.testing.assert_allclose(loaded.evaluate(x, labels, verbose=0),
                               model.evaluate(x, labels, verbose=0), atol=1e-6)
    again = SmoothedCrossentropy.from_config(loss.get_config())
    assert again.epsilon == 0.2 and again.sparse


def test_output_as_loss():
    d = np.array([[1.0], [3.0]], "float32")
    np.testing.assert_array_equal(np.asarray(output_as_loss(np.zeros((2, 1)), d)), [1.0, 3.0])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="epsilon"):
        smoothed_crossentropy(np.eye(3), np.zeros((3, 3)), epsilon=1.0)
    with pytest.raises(ValueError, match="epsilon"):
        SmoothedCrossentropy(epsilon=-0.1)
    with pytest.raises(ValueError, match="shape"):
        smoothed_crossentropy(np.eye(3), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="sparse labels"):
        SmoothedCrossentropy(sparse=True)(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n must be"):
        optimal_logit_gap(1, 0.1)
    with pytest.raises(ValueError, match="n must be"):
        smoothed_ce_minimum(2.5, 0.1)


# ------------------------------------------------------------------ multi-label classification

import itertools  # noqa: E402

from gradients import grads  # noqa: E402
from kexue import losses  # noqa: E402


def _multilabel_batch(n=7, batch=5, seed=1):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(batch, n)) * 2
    y = (rng.random((batch, n)) < 0.4).astype("float64")
    y[0] = 0          # no positives
    y[1] = 1          # no negatives
    return y, s


def _enumerated_mlcce(y, s, s0=0.0):
    """Brute force: log(1 + sum_{neg, pos} e^{s_i - s_j} + sum_neg e^{s_i - s0}
    + sum_pos e^{s0 - s_j}), one term per pair (the expanded product)."""
    out = []
    for yr, sr in zip(y, s):
        neg, pos = sr[yr == 0], sr[yr == 1]
        total = 1.0 + sum(math.exp(a - b) for a in neg for b in pos)
        total += sum(math.exp(a - s0) for a in neg) + sum(math.exp(s0 - b) for b in pos)
        out.append(math.log(total))
    return np.array(out)


@pytest.mark.parametrize("s0", [0.0, -0.7, 1.3])
def test_multilabel_loss_equals_enumerated_pairs(s0):
    y, s = _multilabel_batch()
    ours = np.asarray(losses.multilabel_categorical_crossentropy(y, s, threshold=s0))
    assert ours.shape == (5,)
    np.testing.assert_allclose(ours, _enumerated_mlcce(y, s, s0), rtol=1e-12)
    # the threshold class as an extra column of scores: the loss is shift-invariant
    np.testing.assert_allclose(
        ours, np.asarray(losses.multilabel_categorical_crossentropy(y, s - s0)), rtol=1e-12)


def test_multilabel_loss_gradient_equals_finite_differences():
    y, s = _multilabel_batch(seed=2)
    fn = lambda z: keras.ops.sum(losses.multilabel_categorical_crossentropy(y, z))  # noqa: E731
    (g,) = grads(fn, s)
    h, fd = 1e-6, np.zeros_like(s)
    for idx in np.ndindex(*s.shape):
        e = np.zeros_like(s)
        e[idx] = h
        fd[idx] = (_enumerated_mlcce(y, s + e).sum() - _enumerated_mlcce(y, s - e).sum()) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-7)
    # all negatives share one normaliser: their pushes sum to less than 1
    neg_push = np.where(y == 0, g, 0).sum(axis=1)
    assert (neg_push >= 0).all() and (neg_push < 1).all()


def test_multilabel_loss_is_finite_for_huge_logits_and_zero_scores():
    s = np.array([[1e4, -1e4, 1e4, -1e4], [3e4, 2e4, -2e4, -3e4]], "float32")
    y = np.array([[1, 1, 0, 0], [1, 1, 0, 0]], "float32")
    value = np.asarray(losses.multilabel_categorical_crossentropy(y, s))
    np.testing.assert_allclose(value, [2e4, 0.0], rtol=1e-6)
    (g,) = grads(lambda z: keras.ops.sum(losses.multilabel_categorical_crossentropy(y, z)), s)
    assert np.isfinite(g).all()
    for fn in (losses.pairwise_multilabel_loss, losses.binary_crossentropy_with_pos_weight):
        assert np.isfinite(np.asarray(fn(y, s))).all()
        assert np.isfinite(grads(lambda z, fn=fn: keras.ops.sum(fn(y, z)), s)[0]).all()
    # at zero scores: log(1 + |neg|) + log(1 + |pos|)
    y3 = np.array([[1, 0, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], "float32")
    at_zero = np.asarray(losses.multilabel_categorical_crossentropy(y3, np.zeros((3, 5), "float32")))
    np.testing.assert_allclose(at_zero, np.log1p(5 - y3.sum(1)) + np.log1p(y3.sum(1)), rtol=1e-6)
    half = np.asarray(losses.multilabel_categorical_crossentropy(y3, np.zeros((3, 5), "float16")))
    assert half.dtype == np.float16 and np.isfinite(half).all()


def test_multilabel_loss_ignores_masked_labels():
    y, s = _multilabel_batch(seed=3)
    masked = y.copy()
    masked[:, :2] = losses.IGNORE_LABEL
    ours = np.asarray(losses.multilabel_categorical_crossentropy(masked, s))
    np.testing.assert_allclose(ours, _enumerated_mlcce(y[:, 2:], s[:, 2:]), rtol=1e-12)
    # the ignored scores get no gradient, whatever their value
    (g,) = grads(lambda z: keras.ops.sum(losses.multilabel_categorical_crossentropy(masked, z)), s)
    assert (g[:, :2] == 0).all() and (g[:, 2:] != 0).any()
    s_moved = s.copy()
    s_moved[:, :2] += 100.0
    np.testing.assert_allclose(
        np.asarray(losses.multilabel_categorical_crossentropy(masked, s_moved)), ours, rtol=1e-12)


def test_pairwise_form_is_softmax_crossentropy_for_one_positive():
    rng = np.random.default_rng(4)
    s = rng.normal(size=(6, 9)).astype("float32") * 3
    t = rng.integers(0, 9, 6)
    y = np.eye(9, dtype="float32")[t]
    ours = np.asarray(losses.pairwise_multilabel_loss(y, s))
    ref = np.asarray(keras.losses.sparse_categorical_crossentropy(t, s, from_logits=True))
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # scale and margin against the explicit double sum, several positives
    y2, s2 = _multilabel_batch(seed=5)
    gamma, m = 2.5, 0.3
    explicit = [math.log1p(sum(math.exp(gamma * (a - b + m)) for a in sr[yr == 0] for b in sr[yr == 1]))
                for yr, sr in zip(y2, s2)]
    np.testing.assert_allclose(np.asarray(losses.pairwise_multilabel_loss(y2, s2, gamma, m)),
                               explicit, rtol=1e-12)


def _brute_esp(row, j):
    return sum(math.exp(sum(row[list(c)])) for c in itertools.combinations(range(len(row)), j))


def test_elementary_symmetric_dp_newton_and_brute_force_agree():
    rng = np.random.default_rng(6)
    s = rng.normal(size=(2, 12))
    brute = np.array([[math.log(_brute_esp(r, j)) for j in range(5)] for r in s])
    dp = np.asarray(losses.log_elementary_symmetric(s, 4))
    newton = np.log(np.asarray(losses.newton_elementary_symmetric(s, 4)))
    np.testing.assert_allclose(dp, brute, atol=1e-12)
    np.testing.assert_allclose(newton, brute, atol=1e-10)
    assert dp.shape == (2, 5) and (dp[:, 0] == 0).all()
    np.testing.assert_allclose(np.asarray(losses.log_elementary_symmetric(s[:, :3], 3))[:, 3],
                               s[:, :3].sum(1), atol=1e-12)     # e_n: the product of all
    # float32 at score scale 10: Newton's alternating sums break down, the DP does not
    big = (np.random.default_rng(7).normal(size=(1, 100)) * 10).astype("float32")
    dp32 = np.asarray(losses.log_elementary_symmetric(big, 5))
    dp64 = np.asarray(losses.log_elementary_symmetric(big.astype("float64"), 5))
    assert np.abs(dp32 - dp64).max() < 1e-4
    with np.errstate(all="ignore"):
        newton32 = np.log(np.asarray(losses.newton_elementary_symmetric(big, 5)))
    assert not np.all(np.abs(newton32 - dp64) < 1e-2)


def test_combinatorial_softmax_equals_enumeration_over_padded_sets():
    rng = np.random.default_rng(8)
    n, big_k = 6, 3
    z = rng.normal(size=(4, n + 1))
    y = np.zeros((4, n))
    for r, k in enumerate([0, 1, 2, 3]):
        y[r, rng.choice(n, k, replace=False)] = 1
    ours = np.asarray(losses.combinatorial_softmax_loss(y, z, big_k))
    for r in range(4):
        # every multiset: k real classes (a subset) plus K - k copies of class 0
        scores = [z[r, 1:][list(c)].sum() + (big_k - k) * z[r, 0]
                  for k in range(big_k + 1) for c in itertools.combinations(range(n), k)]
        k = int(y[r].sum())
        target = z[r, 1:][y[r] == 1].sum() + (big_k - k) * z[r, 0]
        log_z = np.log(np.sum(np.exp(scores)))
        assert ours[r] == pytest.approx(log_z - target, rel=1e-12)
    (g,) = grads(lambda t: keras.ops.sum(losses.combinatorial_softmax_loss(y, t, big_k)), z)
    assert np.isfinite(g).all() and np.allclose(g.sum(1), 0.0)  # a softmax: shift-invariant


def test_binary_crossentropy_with_pos_weight():
    y, s = _multilabel_batch(seed=9)
    ref = np.asarray(keras.losses.binary_crossentropy(y, s, from_logits=True))
    np.testing.assert_allclose(np.asarray(losses.binary_crossentropy_with_pos_weight(y, s)), ref,
                               atol=1e-6)  # Keras's loss computes in float32 on JAX
    p = 1 / (1 + np.exp(-s))
    w = 4.0
    explicit = -(w * y * np.log(p) + (1 - y) * np.log(1 - p)).mean(1)
    np.testing.assert_allclose(np.asarray(losses.binary_crossentropy_with_pos_weight(y, s, w)),
                               explicit, rtol=1e-6)

