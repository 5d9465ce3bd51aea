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


# Ten micro-batch gradients summed differ from one big-batch gradient by float32 rounding; on
# JAX after eight Adam steps by up to 1.6e-6, for Keras's own gradient_accumulation_steps too.
BIG_BATCH_TOL = 1e-6 if keras.backend.backend() == "tensorflow" else 5e-6

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
    assert np.abs(ours - big).max() <= BIG_BATCH_TOL
    assert np.abs(builtin - big).max() <= BIG_BATCH_TOL
    assert np.abs(ours - builtin).max() <= 1e-6
    assert int(ours_model.optimizer.iterations) == 2 * N // 100  # real updates
    assert int(ours_model.optimizer.micro_steps) == 2 * N // 10


def test_schedule_steps_with_real_updates():
    def make():
        return keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-2, 2, 0.5))

    big = flat(train(make(), 100))
    ours = flat(train(GradientAccumulator(make(), steps=10), 10))
    assert np.abs(ours - big).max() <= BIG_BATCH_TOL


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


@pytest.mark.tensorflow_only
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


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="the TensorFlow backend works")
def test_micro_batch_reference_names_the_backend_it_needs():
    model = mlp()
    loss = keras.losses.SparseCategoricalCrossentropy()
    with pytest.raises(RuntimeError, match="needs the TensorFlow backend.*KERAS_BACKEND"):
        average_micro_batch_grads(model, loss, X[:10], Y[:10], [5, 5])


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


# -- sparse gradients: an Embedding layer --------------------------------------------------
# The accumulator hands the wrapped optimizer the dense mean gradient, the update of the
# derivation. On TensorFlow an Embedding's gradient is an IndexedSlices, which Keras's own
# optimizers apply slice by slice; with Adam that is not the dense update (see the last test).

V_EMB, T_EMB, N_EMB = 12, 6, 20
TOKENS = np.random.default_rng(5).integers(0, V_EMB, (N_EMB, T_EMB))
TOKEN_LABELS = np.random.default_rng(6).integers(0, 2, N_EMB)
SPARSE_OPTIMIZERS = {
    "adam": lambda **kw: keras.optimizers.Adam(1e-2, **kw),
    "sgd": lambda **kw: keras.optimizers.SGD(0.1, **kw),
}


def embedding_model():
    runtime.seed(3)
    return keras.Sequential([
        keras.Input((T_EMB,), dtype="int32"),
        keras.layers.Embedding(V_EMB, 4, dtype="float64"),
        keras.layers.GlobalAveragePooling1D(dtype="float64"),
        keras.layers.Dense(2, activation="softmax", dtype="float64"),
    ])


def embedding_loss():
    return keras.losses.SparseCategoricalCrossentropy(dtype="float64")  # float64 throughout


def embedding_fit(optimizer, batch_size, epochs=2):
    model = embedding_model()
    model.compile(optimizer=optimizer, loss=embedding_loss())
    model.fit(TOKENS, TOKEN_LABELS, batch_size=batch_size, epochs=epochs, shuffle=False,
              verbose=0)
    return flat(model)


def dense_big_batch(optimizer, epochs=2):
    """One update per pass over all N_EMB examples, the optimizer fed the dense gradient."""
    if keras.backend.backend() != "tensorflow":
        return embedding_fit(optimizer, N_EMB, epochs)  # JAX's gradients are dense arrays
    import tensorflow as tf

    model = embedding_model()
    loss = embedding_loss()
    for _ in range(epochs):
        with tf.GradientTape() as tape:
            value = loss(TOKEN_LABELS, model(TOKENS, training=True))
        grads = tape.gradient(value, model.trainable_variables)
        assert isinstance(grads[0], tf.IndexedSlices)  # the Embedding's gradient is sparse
        optimizer.apply([tf.convert_to_tensor(g) for g in grads], model.trainable_variables)
    return flat(model)


@pytest.mark.parametrize("name", sorted(SPARSE_OPTIMIZERS))
def test_embedding_accumulation_is_the_dense_big_batch(name):
    make = SPARSE_OPTIMIZERS[name]
    dense = dense_big_batch(make())
    # float64 rounding; JAX without jax_enable_x64 computes in float32 (measured 7e-9)
    tol = 1e-12 if dense.dtype == np.float64 else 1e-7
    ours = embedding_fit(GradientAccumulator(make(), steps=4), 5)  # 4 micro-batches of 5
    builtin = embedding_fit(make(gradient_accumulation_steps=4), 5)
    assert np.abs(ours - dense).max() <= tol
    assert np.abs(builtin - dense).max() <= tol  # Keras's accumulation agrees with ours
    plain = np.abs(embedding_fit(make(), N_EMB) - dense).max()  # Keras at batch 20
    if keras.backend.backend() == "tensorflow" and name == "adam":
        assert plain > 1e-3, plain  # sparse Adam: 1.5e-2 after two updates
    else:
        assert plain <= tol, plain  # SGD is linear in the slices; JAX has no slices


@pytest.mark.tensorflow_only
def test_keras_adam_applies_repeated_sparse_rows_one_by_one():
    import tensorflow as tf

    # Row 0 gets two slices of ones, row 1 one. Dense: g = 2, one Adam step moves row 0 by
    # -lr * m/sqrt(v) = -lr * 2/sqrt(4). Slice by slice, Keras adds 1 + 1 into v: -lr * 2/sqrt(2).
    grad = tf.IndexedSlices(tf.ones((3, 2)), tf.constant([0, 0, 1]), tf.constant([2, 2]))

    def one_step(optimizer, gradient):
        variable = keras.Variable(np.zeros((2, 2), "float32"))
        optimizer.apply([gradient], [variable])
        return np.asarray(variable)

    keras_sparse = one_step(keras.optimizers.Adam(0.1), grad)
    dense = one_step(keras.optimizers.Adam(0.1), tf.convert_to_tensor(grad))
    ours = one_step(GradientAccumulator(keras.optimizers.Adam(0.1), steps=1), grad)
    np.testing.assert_allclose(dense, -0.1, rtol=2e-5)
    np.testing.assert_allclose(keras_sparse[0], -0.1 * np.sqrt(2), rtol=2e-5)  # -0.1414
    np.testing.assert_allclose(keras_sparse[1], dense[1], rtol=1e-6)  # a single slice agrees
    np.testing.assert_allclose(ours, dense, rtol=0, atol=1e-7)  # the accumulator is dense
