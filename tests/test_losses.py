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
