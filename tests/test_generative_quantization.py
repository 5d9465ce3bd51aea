"""kexue.generative.quantization and .autoregressive: the quantiser against a brute-force
argmin, the straight-through estimator's value and gradient, which loss term trains which
weights, EMA codebook updates against NumPy, code usage, the VQ-VAE trained by fit, and the
causal prior over a grid of codes."""

from __future__ import annotations

import numpy as np
import pytest
from kexue.generative import autoregressive as _ar
from kexue.generative import quantization as _vq


def _grads_of(fn, variables, model=None):
    """Gradients of the scalar ``fn()`` with respect to ``variables`` (Keras variables of
    ``model``, or plain tensors passed to ``fn``), as NumPy, on TensorFlow or JAX."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if model is None:
            grads = jax.grad(fn, argnums=tuple(range(len(variables))))(*variables)
            return [np.asarray(g) for g in grads]
        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]

        def f(tv):
            mapping = list(zip(model.trainable_variables, tv)) + list(
                zip(model.non_trainable_variables, ntv))
            with keras.StatelessScope(state_mapping=mapping):
                return fn()

        grads = jax.grad(f)(tv)
        index = {id(v): i for i, v in enumerate(model.trainable_variables)}
        return [np.asarray(grads[index[id(v)]]) for v in variables]
    import tensorflow as tf

    with tf.GradientTape(persistent=True) as tape:
        if model is None:
            for v in variables:
                tape.watch(v)
            value = fn(*variables)
        else:
            value = fn()
    sources = list(variables) if model is None else [v.value for v in variables]
    out = tape.gradient(value, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return [np.asarray(tf.convert_to_tensor(g)) for g in out]   # IndexedSlices of a gather


def _tensor(a):
    import keras

    return keras.ops.convert_to_tensor(np.asarray(a, "float32"))


def test_quantizer_codes_equal_numpy_brute_force_argmin():
    import keras

    keras.utils.set_random_seed(0)
    vq = _vq.VectorQuantizer(16, initializer=keras.initializers.RandomNormal(stddev=1.0))
    z = np.random.default_rng(0).normal(size=(3, 4, 5, 6)).astype("float32")
    codes, z_q, z_st = (keras.ops.convert_to_numpy(t) for t in vq(z))
    book = keras.ops.convert_to_numpy(vq.codebook).astype("float64")
    d2 = ((z.reshape(-1, 1, 6).astype("float64") - book[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes, d2.argmin(1).reshape(3, 4, 5))
    assert codes.dtype == np.int32
    np.testing.assert_array_equal(z_q, book[codes].astype("float32"))
    np.testing.assert_allclose(z_st, z_q, atol=1e-6)               # forward of the STE


def test_straight_through_backward_is_the_identity_on_z():
    import keras

    vq = _vq.VectorQuantizer(8)
    z = _tensor(np.random.default_rng(1).normal(size=(2, 3, 3, 4)))
    g = np.random.default_rng(2).normal(size=(2, 3, 3, 4)).astype("float32")
    vq.build(z.shape)
    (grad,) = _grads_of(lambda z: keras.ops.sum(_tensor(g) * vq(z)[2]), [z])
    np.testing.assert_array_equal(grad, g)                          # exactly g


def test_relu_straight_through_has_value_relu_and_gradient_one():
    import keras

    x = _tensor([-2.0, -0.5, 0.0, 0.7, 3.0])
    value = keras.ops.convert_to_numpy(_vq.straight_through(keras.ops.relu(x), x))
    np.testing.assert_allclose(value, [0, 0, 0, 0.7, 3.0], atol=1e-7)
    (grad,) = _grads_of(lambda x: keras.ops.sum(_vq.straight_through(keras.ops.relu(x), x)), [x])
    np.testing.assert_array_equal(grad, np.ones(5))


def test_split_identity_of_the_two_auxiliary_terms():
    import keras

    vq = _vq.VectorQuantizer(4)
    z = _tensor(np.random.default_rng(3).normal(size=(5, 3)))
    e = _tensor(np.random.default_rng(4).normal(size=(5, 3)))

    def split(z, e):
        a, b = vq.loss_terms(z, e)
        return a + b

    def joint(z, e):
        return keras.ops.mean(keras.ops.square(z - e))

    for got, want in zip(_grads_of(split, [z, e]), _grads_of(joint, [z, e])):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    ratio = float(keras.ops.convert_to_numpy(split(z, e) / joint(z, e)))
    assert ratio == pytest.approx(2.0, rel=1e-6)


def _tiny_vqvae(ema=False):
    import keras

    keras.utils.set_random_seed(0)
    enc = _vq.vq_encoder(code_dim=3, channels=4, res_blocks=0, input_shape=(8, 8, 1))
    dec = _vq.vq_decoder(code_dim=3, channels=4, res_blocks=0, grid=(2, 2))
    vq = _vq.VectorQuantizer(4, ema=ema, initializer=keras.initializers.RandomNormal(stddev=0.3))
    return _vq.VQVAE(enc, dec, vq)


def test_loss_terms_reach_only_their_parameters():
    model = _tiny_vqvae()
    x = np.random.default_rng(5).random((4, 8, 8, 1)).astype("float32")
    enc_w, dec_w = model.encoder.trainable_variables, model.decoder.trainable_variables
    book = [model.quantizer.codebook]
    every = enc_w + dec_w + book

    def norms(i):
        grads = _grads_of(lambda: model.objective(x)[1][i], every, model=model)
        n_enc = sum(float(np.abs(g).sum()) for g in grads[:len(enc_w)])
        n_dec = sum(float(np.abs(g).sum()) for g in grads[len(enc_w):-1])
        return n_enc, n_dec, float(np.abs(grads[-1]).sum())

    recon, codebook, commitment = norms(0), norms(1), norms(2)
    assert recon[0] > 0 and recon[1] > 0 and recon[2] == 0.0      # never the codebook
    assert codebook[0] == 0.0 and codebook[1] == 0.0 and codebook[2] > 0
    assert commitment[0] > 0 and commitment[1] == 0.0 and commitment[2] == 0.0


def test_ema_update_matches_numpy():
    import keras

    vq = _vq.VectorQuantizer(3, ema=True, decay=0.9, epsilon=1e-3)
    z = np.random.default_rng(6).normal(size=(10, 2)).astype("float32")
    vq.build((None, 2))
    e0 = np.array([[0.0, 0.0], [1.0, 1.0], [-5.0, 9.0]], "float32")
    vq.codebook.assign(e0)
    vq.ema_sums.assign(e0)
    codes = keras.ops.convert_to_numpy(vq(z, training=True)[0])
    d2 = ((z[:, None].astype("float64") - e0[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(codes, d2.argmin(1))
    onehot = np.eye(3)[codes]
    counts = 0.9 * 1.0 + 0.1 * onehot.sum(0)
    sums = 0.9 * e0 + 0.1 * onehot.T @ z
    n = counts.sum()
    smoothed = (counts + 1e-3) / (n + 3e-3) * n
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vq.codebook), sums / smoothed[:, None],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vq.ema_counts), counts, rtol=1e-6)
    assert not vq.codebook.trainable
    vq(z, training=False)                                            # inference: no update
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vq.ema_counts), counts, rtol=1e-6)


def test_codebook_perplexity_and_usage_by_hand():
    codes = np.array([[0, 0], [1, 2]])
    assert _vq.codebook_perplexity(codes, 4) == pytest.approx(2 ** 1.5)
    usage = _vq.code_usage(codes, 4)
    np.testing.assert_array_equal(usage["counts"], [2, 1, 1, 0])
    assert (usage["used"], usage["dead"]) == (3, 1)
    assert _vq.codebook_perplexity(np.arange(8), 8) == pytest.approx(8.0)
    assert _vq.codebook_perplexity(np.zeros(5, int), 8) == pytest.approx(1.0)


def test_vqvae_trains_and_initialises_from_data():
    import keras

    for ema in (False, True):
        model = _tiny_vqvae(ema)
        x = np.random.default_rng(7).random((8, 8, 8, 1)).astype("float32")
        model.quantizer.initialize_from(
            keras.ops.convert_to_numpy(model.encoder(x)), seed=0)
        book = keras.ops.convert_to_numpy(model.quantizer.codebook)
        z = keras.ops.convert_to_numpy(model.encoder(x)).reshape(-1, 3)
        assert all(np.any(np.all(np.isclose(z, row), axis=1)) for row in book)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # no tracing
        logs = [model.train_on_batch(x, return_dict=True) for _ in range(2)]
        assert set(logs[0]) == {"loss", "recon", "codebook", "commitment"}
        assert all(np.isfinite(v) for log in logs for v in log.values())
        moved = keras.ops.convert_to_numpy(model.quantizer.codebook)
        assert not np.allclose(moved, book)                  # by gradients, or by EMA
        assert model.quantizer.codebook.trainable == (not ema)
        codes = model.encode(x)
        assert codes.shape == (8, 2, 2) and codes.dtype == np.int32
        assert model.decode(codes).shape == (8, 8, 8, 1)
        terms = model.terms(x)
        assert terms["codebook"] == pytest.approx(terms["commitment"], rel=1e-5)


def test_prior_is_causal_and_samples_repeat():
    import keras

    keras.utils.set_random_seed(0)
    model = _ar.code_transformer(5, grid=(2, 3), d_model=8, heads=2, layers=1)
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 5, size=(4, 2, 3))
    inputs, targets = _ar.prior_inputs(codes, 5)
    np.testing.assert_array_equal(inputs[:, 0], 5)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    np.testing.assert_array_equal(targets, codes.reshape(4, 6))
    base = keras.ops.convert_to_numpy(model(inputs))
    for t in range(5):
        changed = inputs.copy()
        changed[:, t + 1:] = rng.integers(0, 6, size=changed[:, t + 1:].shape)
        out = keras.ops.convert_to_numpy(model(changed))
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-5)
        assert not np.allclose(out[:, t + 1:], base[:, t + 1:])
    nll = _ar.code_nll(model, codes)
    logp = base - np.log(np.exp(base).sum(-1, keepdims=True))
    want = -np.take_along_axis(logp, targets[..., None], -1).mean()
    assert nll == pytest.approx(want, rel=1e-5)
    a = _ar.sample_codes(model, 7, seed=3, batch_size=4)
    assert a.shape == (7, 2, 3) and a.dtype == np.int32 and a.min() >= 0 and a.max() < 5
    np.testing.assert_array_equal(a, _ar.sample_codes(model, 7, seed=3))
    cold = _ar.sample_codes(model, 3, temperature=1e-4, seed=1)
    np.testing.assert_array_equal(cold, _ar.sample_codes(model, 3, temperature=1e-4, seed=2))


