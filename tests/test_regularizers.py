"""kexue.regularizers: the power-iteration spectral norm against NumPy's SVD, its gradient
against the top singular vectors, and the penalty as a Keras regularizer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from kexue import regularizers


def _np(x):
    return keras.ops.convert_to_numpy(x).astype("float64")


@pytest.mark.parametrize("shape", [(3, 3, 4, 5), (7, 3), (1, 1, 6, 6)])
def test_power_iteration_matches_svd(shape):
    kernel = np.random.default_rng(0).normal(size=shape)
    want = np.linalg.svd(kernel.reshape(-1, shape[-1]), compute_uv=False)[0]
    got = float(_np(regularizers.spectral_norm_estimate(kernel, iterations=30)))
    assert got == pytest.approx(want, rel=1e-3)
    assert got <= want * (1 + 1e-9)                      # power iteration approaches from below


def test_gradient_is_the_outer_product_of_singular_vectors():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient is taken with tf.GradientTape here")
    kernel = np.random.default_rng(1).normal(size=(2, 2, 3, 4))
    w = tf.Variable(kernel)
    with tf.GradientTape() as tape:
        s = regularizers.spectral_norm_estimate(w, iterations=50)
    grad = tape.gradient(s, w).numpy().reshape(-1, 4)
    u, _, vt = np.linalg.svd(kernel.reshape(-1, 4))
    np.testing.assert_allclose(grad, np.outer(u[:, 0], vt[0]), atol=1e-6)


def test_penalty_as_a_regularizer_and_summed_over_a_model():
    penalty = regularizers.SpectralPenalty(0.5, iterations=30)
    again = regularizers.SpectralPenalty.from_config(penalty.get_config())
    assert again.get_config() == {"strength": 0.5, "iterations": 30, "seed": 0}
    model = keras.Sequential([keras.Input((5,)),
                              keras.layers.Dense(4, kernel_regularizer=penalty),
                              keras.layers.Dense(3)])
    kernels = [_np(layer.kernel) for layer in model.layers]
    norms = [np.linalg.svd(k, compute_uv=False)[0] for k in kernels]
    assert float(_np(model.losses[0])) == pytest.approx(0.5 * norms[0], rel=1e-3)
    total = float(_np(regularizers.spectral_penalty(model, strength=2.0)))
    assert total == pytest.approx(2.0 * sum(norms), rel=1e-3)
    listed = float(_np(regularizers.spectral_penalty([layer.kernel for layer in model.layers])))
    assert listed == pytest.approx(sum(norms), rel=1e-3)
    assert keras.regularizers.get(keras.regularizers.serialize(penalty)).strength == 0.5
