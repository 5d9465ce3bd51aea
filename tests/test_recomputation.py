"""kexue.training's recomputation: identical gradients, replayed dropout masks, memory probe."""

import keras
import numpy as np
import pytest
from gradients import BACKEND, model_grads
from kexue.training import (
    Recompute,
    max_batch_under,
    peak_rss_mb,
    recompute,
    residual_block,
    residual_mlp,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(32, 20)).astype("float32")
Y = np.arange(32) % 5
LOSS = keras.losses.SparseCategoricalCrossentropy()


def gradients(mode, dropout=0.0, preserve=True, compiled=False):
    keras.utils.set_random_seed(0)
    model = residual_mlp(20, 5, depth=3, width=16, dropout=dropout, mode=mode,
                         preserve_rng_state=preserve)
    return model_grads(model, LOSS, X, Y, compiled=compiled)


def max_diff(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("mode", ["per_block", "whole"])
def test_gradients_equal_plain_backprop(mode, compiled):
    assert max_diff(gradients(mode, compiled=compiled),
                    gradients("none", compiled=compiled)) <= 1e-6


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("mode", ["per_block", "whole"])
def test_dropout_masks_are_replayed(mode, compiled):
    plain = gradients("none", dropout=0.5, compiled=compiled)
    assert max_diff(gradients(mode, dropout=0.5, compiled=compiled), plain) <= 1e-6
    unpreserved = max_diff(gradients(mode, dropout=0.5, preserve=False, compiled=compiled), plain)
    if BACKEND == "jax":  # jax.checkpoint recomputes a pure function: the masks always replay
        assert unpreserved <= 1e-6
    else:  # without preserving the generator state the recomputation draws new masks
        assert unpreserved > 1e-3


def test_generator_state_ends_as_without_recomputation():
    states = {}
    for mode in ("none", "per_block"):
        keras.utils.set_random_seed(0)
        model = residual_mlp(20, 5, depth=2, width=16, dropout=0.5, mode=mode)
        model_grads(model, LOSS, X, Y)
        gens = [g for layer in model._flatten_layers() for g in layer._seed_generators]
        states[mode] = [keras.ops.convert_to_numpy(g.state.value).tolist() for g in gens]
    assert states["none"] == states["per_block"]


def test_fit_gives_the_same_weights():
    weights = {}
    for mode in ("none", "per_block"):
        keras.utils.set_random_seed(0)
        model = residual_mlp(20, 5, depth=2, width=16, dropout=0.3, mode=mode)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      jit_compile=False)
        model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights[mode] = model.get_weights()
    assert max_diff(weights["none"], weights["per_block"]) <= 1e-6


@pytest.mark.tensorflow_only
def test_recompute_function_and_transformer_block():
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    attention = keras.layers.MultiHeadAttention(2, 4)
    norm = keras.layers.LayerNormalization()
    x = tf.constant(RNG.normal(size=(3, 5, 8)).astype("float32"))

    def block(h):
        return norm(h + attention(h, h))

    block(x)
    variables = attention.trainable_variables + norm.trainable_variables
    grads = {}
    for name, fn in [("plain", block), ("remat", recompute(block)),
                     ("tf", tf.recompute_grad(block))]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(fn(x) ** 2)
        grads[name] = [g.numpy() for g in tape.gradient(loss, [x] + variables)]
    assert max_diff(grads["remat"], grads["plain"]) <= 1e-6
    assert max_diff(grads["tf"], grads["plain"]) <= 1e-6
    with pytest.raises(TypeError, match="callable"):
        recompute(3)


def test_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = residual_mlp(20, 5, depth=2, width=16, dropout=0.1, mode="per_block")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("recompute_0"), Recompute)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), model.predict(X, verbose=0),
                               atol=1e-6)


def test_disabled_wrapper_is_the_layer():
    block = residual_block(16)
    x = RNG.normal(size=(4, 16)).astype("float32")
    np.testing.assert_allclose(Recompute(block, enabled=False)(x), block(x), atol=0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        residual_mlp(20, 5, 2, 16, mode="everywhere")
    with pytest.raises(ValueError, match="depth"):
        residual_mlp(20, 5, 0, 16)
    with pytest.raises(ValueError, match="dropout"):
        residual_mlp(20, 5, 2, 16, dropout=1.0)
    with pytest.raises(TypeError, match="layer"):
        Recompute("dense")
    with pytest.raises(TypeError, match="enabled"):
        Recompute(keras.layers.Dense(2), enabled="yes")
    with pytest.raises(ValueError, match="batches"):
        peak_rss_mb("none", [0])


def test_max_batch_under():
    batches, peaks = [100, 200, 400], [300.0, 400.0, 600.0]   # 200 MB + 1 MB per sample
    best, intercept, slope = max_batch_under(1000.0, batches, peaks)
    assert (best, round(intercept, 6), round(slope, 6)) == (800, 200.0, 1.0)
    assert max_batch_under(100.0, batches, peaks)[0] == 0
    with pytest.raises(ValueError, match="distinct"):
        max_batch_under(1000.0, [100, 100], [1.0, 2.0])


@pytest.mark.tensorflow_only  # the probe measures the TensorFlow backend, whatever the caller's
def test_peak_rss_probe_runs_in_a_subprocess():
    rows = peak_rss_mb("per_block", [64, 128], depth=2, width=32)
    assert [r["batch"] for r in rows] == [64, 128]
    assert all(r["peak_mb"] > 50 and r["mode"] == "per_block" for r in rows)
    assert rows[1]["peak_mb"] >= rows[0]["peak_mb"]
