"""kexue.training.GradientAccumulator against the big batch and Keras's built-in."""

import keras
import numpy as np
import pytest
from kexue import runtime
from kexue.training import BatchLossHistory, GradientAccumulator, average_micro_batch_grads

N, D, K = 400, 20, 5
RNG = np.random.default_rng(0)
X = RNG.normal(size=(N, D)).astype("float32")
Y = RNG.integers(0, K, N)


def mlp(batchnorm=False):
    layers = [keras.Input((D,)), keras.layers.Dense(32, activation="relu")]
    if batchnorm:
        layers.append(keras.layers.BatchNormalization())
    layers.append(keras.layers.Dense(K, activation="softmax"))
    return keras.Sequential(layers)


def train(optimizer, batch_size, epochs=2, batchnorm=False, n=N):
    runtime.seed(1)
    model = mlp(batchnorm)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(X[:n], Y[:n], batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)
    return model


def flat(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


OPTIMIZERS = {
    "adam": lambda **kw: keras.optimizers.Adam(1e-2, **kw),
    "sgd_momentum": lambda **kw: keras.optimizers.SGD(0.1, momentum=0.9, **kw),
    "rmsprop": lambda **kw: keras.optimizers.RMSprop(1e-3, **kw),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_matches_big_batch_and_builtin(name):
    make = OPTIMIZERS[name]
    big = flat(train(make(), 100))
    ours_model = train(GradientAccumulator(make(), steps=10), 10)
    builtin = flat(train(make(gradient_accumulation_steps=10), 10))
    ours = flat(ours_model)
    assert np.abs(ours - big).max() <= 1e-6
    assert np.abs(ours - builtin).max() <= 1e-6
    assert int(ours_model.optimizer.iterations) == 2 * N // 100  # real updates
    assert int(ours_model.optimizer.micro_steps) == 2 * N // 10


def test_schedule_steps_with_real_updates():
    def make():
        return keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5))

    big = flat(train(make(), 100))
    ours = flat(train(GradientAccumulator(make(), steps=10), 10))
    assert np.abs(ours - big).max() <= 1e-6


def test_one_step_is_the_plain_optimizer():
    plain = flat(train(keras.optimizers.Adam(1e-2), 10))
    ours = flat(train(GradientAccumulator(keras.optimizers.Adam(1e-2), steps=1), 10))
    assert np.abs(ours - plain).max() <= 1e-6


def test_batchnorm_breaks_the_identity():
    big = flat(train(keras.optimizers.Adam(1e-2), 100, batchnorm=True))
    ours = flat(train(GradientAccumulator(keras.optimizers.Adam(1e-2), steps=10), 10,
                      batchnorm=True))
    assert np.abs(ours - big).max() > 1e-3


def test_weights_do_not_move_between_updates():
    model = train(GradientAccumulator(keras.optimizers.Adam(1e-2), steps=10), 10, epochs=1,
                  n=90)  # nine micro-batches: no update yet
    runtime.seed(1)
    fresh = mlp()
    np.testing.assert_array_equal(flat(model), flat(fresh))
    assert int(model.optimizer.iterations) == 0 and int(model.optimizer.micro_steps) == 9


def test_size_weighted_micro_batch_mean_is_the_full_gradient():
    import tensorflow as tf

    runtime.seed(2)
    model = mlp()
    loss = keras.losses.SparseCategoricalCrossentropy()
    x, y = X[:100], Y[:100]
    with tf.GradientTape() as tape:
        full = tape.gradient(loss(y, model(x, training=True)), model.trainable_variables)
    sized = average_micro_batch_grads(model, loss, x, y, [30, 30, 40])
    naive = average_micro_batch_grads(model, loss, x, y, [30, 30, 40], weighting="mean")
    diff = max(float(np.abs(a - b).max()) for a, b in zip(sized, full))
    naive_diff = max(float(np.abs(a - b).max()) for a, b in zip(naive, full))
    assert diff <= 1e-6
    assert naive_diff > 1e-4


def test_keras_round_trip_keeps_state_mid_cycle(tmp_path):
    model = train(GradientAccumulator(keras.optimizers.Adam(1e-2), steps=10), 10, epochs=1,
                  n=150)  # 15 micro-batches: one update, five gradients pending
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    opt = loaded.optimizer
    assert isinstance(opt, GradientAccumulator) and opt.steps == 10
    assert isinstance(opt.optimizer, keras.optimizers.Adam)
    assert int(opt.iterations) == 1 and int(opt.micro_steps) == 15
    for a, b in zip(model.optimizer.variables, opt.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = X[150:200]
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    # Both go on identically: the pending five gradients complete the next update.
    for m in (model, loaded):
        m.fit(X[150:200], Y[150:200], batch_size=10, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(flat(model), flat(loaded), atol=1e-7)
    assert int(loaded.optimizer.iterations) == 2


def test_config_round_trip():
    opt = GradientAccumulator(keras.optimizers.SGD(0.05, momentum=0.5), steps=4)
    again = GradientAccumulator.from_config(opt.get_config())
    assert again.steps == 4 and isinstance(again.optimizer, keras.optimizers.SGD)
    assert again.optimizer.get_config() == opt.optimizer.get_config()
    assert float(again.learning_rate) == pytest.approx(0.05)


@pytest.mark.parametrize("steps", [0, -3, 2.5, "4", True])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        GradientAccumulator(keras.optimizers.Adam(), steps=steps)


def test_bad_optimizers():
    with pytest.raises(TypeError, match="keras.optimizers.Optimizer"):
        GradientAccumulator("adam", steps=2)
    with pytest.raises(ValueError, match="already accumulates"):
        GradientAccumulator(keras.optimizers.Adam(gradient_accumulation_steps=2), steps=2)
    with pytest.raises(TypeError, match="already a GradientAccumulator"):
        GradientAccumulator(GradientAccumulator(keras.optimizers.Adam(), 2), steps=2)


def test_bad_micro_batch_sizes():
    model = mlp()
    loss = keras.losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match="add up"):
        average_micro_batch_grads(model, loss, X[:10], Y[:10], [3, 3])
    with pytest.raises(ValueError, match="positive"):
        average_micro_batch_grads(model, loss, X[:10], Y[:10], [10, 0])
    with pytest.raises(ValueError, match="weighting"):
        average_micro_batch_grads(model, loss, X[:10], Y[:10], [10], weighting="sum")


def test_batch_loss_history_recovers_each_batch():
    runtime.seed(0)
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    history = BatchLossHistory()
    model.fit(X[:100], Y[:100], batch_size=10, epochs=2, shuffle=False, verbose=0,
              callbacks=[history])
    loss = keras.losses.SparseCategoricalCrossentropy()
    expected = [float(loss(Y[i:i + 10], model(X[i:i + 10]))) for i in range(0, 100, 10)]
    assert len(history.losses) == 20
    np.testing.assert_allclose(history.losses, expected * 2, rtol=1e-4, atol=1e-5)
