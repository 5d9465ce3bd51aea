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


# ------------------------------------------------------------------ signal propagation by depth

from kexue.training import depth_norms  # noqa: E402


def _fixed_kernels(kernels):
    """A callable initializer that hands out the given kernels, one per layer, in order."""
    it = iter(kernels)
    return lambda shape, dtype=None: keras.ops.convert_to_tensor(next(it), dtype or "float32")


def _rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


def test_depth_norms_linear_orthogonal_keeps_every_norm():
    d = depth_norms(None, "orthogonal", 50, 64, n=32, seed=3)
    fwd = d["forward_norms"] / d["forward_norms"][0]
    bwd = d["backward_norms"] / d["backward_norms"][-1]
    assert d["forward_norms"].shape == (51, 32) and d["kernel_grad"].shape == (50,)
    np.testing.assert_allclose(fwd, 1.0, atol=1e-5)   # W^T W = I: ||Wx|| = ||x||, per input
    np.testing.assert_allclose(bwd, 1.0, atol=1e-5)   # and ||W^T g|| = ||g|| backwards
    np.testing.assert_allclose(d["forward"], d["forward"][0], rtol=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh", None])
def test_depth_norms_matches_a_direct_computation(activation):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5))
    r = rng.normal(size=(7, 3))
    ks = [rng.normal(size=(5, 4)) / 2, rng.normal(size=(4, 3)) / 2]
    phi = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, None: lambda z: z}[activation]
    dphi = {"relu": lambda z: (z > 0) * 1.0, "tanh": lambda z: 1 - np.tanh(z) ** 2,
            None: np.ones_like}[activation]
    hs, zs = [x], []
    for k in ks:
        zs.append(hs[-1] @ k)
        hs.append(phi(zs[-1]))
    gs, gk = [r], []
    for k, z, h in zip(ks[::-1], zs[::-1], hs[-2::-1]):
        delta = gs[0] * dphi(z)
        gk.insert(0, h.T @ delta / len(x))
        gs.insert(0, delta @ k.T)
    d = depth_norms(activation, _fixed_kernels(ks), 2, [4, 3], inputs=x, cotangents=r,
                    dtype="float64")
    # XLA on CPU evaluates tanh with a float32-accurate approximation even in float64
    tol = 1e-10 if keras.backend.backend() == "tensorflow" else 1e-6
    np.testing.assert_allclose(d["forward"], [_rms(h) for h in hs], rtol=tol)
    np.testing.assert_allclose(d["preactivation"], [_rms(z) for z in zs], rtol=tol)
    np.testing.assert_allclose(d["backward"], [_rms(g) for g in gs], rtol=tol)
    np.testing.assert_allclose(d["kernel_grad"], [_rms(g) for g in gk], rtol=tol)
    np.testing.assert_allclose(d["forward_norms"][1], np.linalg.norm(hs[1], axis=1), rtol=tol)
    np.testing.assert_allclose(d["backward_norms"][0], np.linalg.norm(gs[0], axis=1), rtol=tol)
    np.testing.assert_array_equal(d["widths"], [5, 4, 3])


def test_depth_norms_depth_one_he_relu_keeps_the_mean_square():
    # E||relu(Wx)||^2 = (m sigma^2 / 2) ||x||^2: He's 2/fan_in with fan_in = m keeps it.
    d = depth_norms("relu", "he_normal", 1, 512, n=512, seed=1)
    assert abs(d["forward"][1] ** 2 / d["forward"][0] ** 2 - 1) < 0.05


def test_depth_norms_seeds_every_layer_and_repeats():
    init = keras.initializers.RandomNormal(stddev=0.125, seed=7)
    a = depth_norms("tanh", init, 4, 64, n=16, seed=2)
    b = depth_norms("tanh", init, 4, 64, n=16, seed=2)
    c = depth_norms("tanh", init, 4, 64, n=16, seed=3)
    np.testing.assert_array_equal(a["forward"], b["forward"])
    assert not np.allclose(a["forward"][1:], c["forward"][1:])
    # one initializer instance, copied with a new seed per layer: the kernels differ
    lin = depth_norms(None, init, 2, 64, n=4, inputs=np.eye(4, 64), seed=2)
    assert abs(lin["forward"][1] - lin["forward"][2]) > 1e-6


def test_depth_norms_takes_callables_and_width_sequences():
    d = depth_norms(lambda z: keras.ops.tanh(z), keras.initializers.VarianceScaling(1.0, "fan_out"),
                    4, [128, 32, 128, 32], n=64, input_dim=32)
    np.testing.assert_array_equal(d["widths"], [32, 128, 32, 128, 32])
    assert np.isfinite(d["forward"]).all() and np.isfinite(d["backward"]).all()


def test_depth_norms_overflow_is_reported_not_raised():
    d = depth_norms("relu", keras.initializers.RandomNormal(stddev=1.0), 50, 64, n=8)
    assert not np.isfinite(d["forward"][-1]) or d["forward"][-1] > 1e30


# ------------------------------------------------------------ jacobian_profile (RNN gradients)


def _rnn_layers_f64(units=3):
    """Tiny float64 recurrent layers of every kind, with non-zero random biases."""
    from kexue.layers import OutputGatedGRUCell

    layers = {
        "simple_tanh": keras.layers.SimpleRNN(units, dtype="float64"),
        "simple_relu": keras.layers.SimpleRNN(units, activation="relu", dtype="float64"),
        "lstm": keras.layers.LSTM(units, dtype="float64"),
        "gru": keras.layers.GRU(units, dtype="float64"),
        "gru_reset_before": keras.layers.GRU(units, reset_after=False, dtype="float64"),
        "output_gated_gru": keras.layers.RNN(OutputGatedGRUCell(units, dtype="float64"),
                                             dtype="float64"),
    }
    rng = np.random.default_rng(7)
    for layer in layers.values():
        layer.build((None, 5, 2))
        bias = layer.cell.bias
        bias.assign(rng.normal(0.0, 0.5, size=tuple(bias.shape)))
    return layers


def _state_sizes(cell):
    sizes = cell.state_size
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


def _run_cell(cell, s, xs):
    """Concatenated states s_1 .. s_n from state s (B, S) over inputs xs (B, n, D)."""
    sizes = _state_sizes(cell)
    bounds = np.cumsum([0, *sizes])
    states = [s[:, bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
    out = []
    for t in range(xs.shape[1]):
        _, states = cell(keras.ops.convert_to_tensor(xs[:, t], "float64"),
                         [keras.ops.convert_to_tensor(v, "float64") for v in states])
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        out.append(np.concatenate([keras.ops.convert_to_numpy(v) for v in states], axis=-1))
    return out


def _fd_profiles(cell, x, eps=1e-6):
    """Central finite differences: per-example Frobenius norms of dh_T/ds_t (t = 0..T),
    dh_T/dx_t (t = 1..T), dh_t/ds_0 (t = 0..T) and dh_t/dx_1 (t = 1..T)."""
    batch, steps, features = x.shape
    sizes = _state_sizes(cell)
    total, rows = sum(sizes), sizes[0]
    s0 = np.zeros((batch, total))
    seq = [s0] + _run_cell(cell, s0, x)

    def jac_to_last(start_state, xs):  # d s_T[:rows] / d start_state
        cols = []
        for j in range(start_state.shape[1]):
            d = np.zeros_like(start_state)
            d[:, j] = eps
            hi = _run_cell(cell, start_state + d, xs)[-1] if xs.shape[1] else start_state + d
            lo = _run_cell(cell, start_state - d, xs)[-1] if xs.shape[1] else start_state - d
            cols.append((hi[:, :rows] - lo[:, :rows]) / (2 * eps))
        return np.stack(cols, axis=-1)

    def norm(j):
        return np.sqrt((j ** 2).sum(axis=(1, 2)))

    state_to_last = np.stack([norm(jac_to_last(seq[t], x[:, t:])) for t in range(steps + 1)], 1)
    input_to_last = []
    for t in range(1, steps + 1):
        cols = []
        for k in range(features):
            d = np.zeros_like(x)
            d[:, t - 1, k] = eps
            hi = _run_cell(cell, seq[t - 1], (x + d)[:, t - 1:])[-1]
            lo = _run_cell(cell, seq[t - 1], (x - d)[:, t - 1:])[-1]
            cols.append((hi[:, :rows] - lo[:, :rows]) / (2 * eps))
        input_to_last.append(norm(np.stack(cols, axis=-1)))
    from_first_state, from_first_input = [], []
    cols_s = []
    for j in range(total):
        d = np.zeros_like(s0)
        d[:, j] = eps
        hi, lo = [s0 + d] + _run_cell(cell, s0 + d, x), [s0 - d] + _run_cell(cell, s0 - d, x)
        cols_s.append([(a[:, :rows] - b[:, :rows]) / (2 * eps) for a, b in zip(hi, lo)])
    from_first_state = [norm(np.stack([c[t] for c in cols_s], -1)) for t in range(steps + 1)]
    cols_x = []
    for k in range(features):
        d = np.zeros_like(x)
        d[:, 0, k] = eps
        hi, lo = _run_cell(cell, s0, x + d), _run_cell(cell, s0, x - d)
        cols_x.append([(a[:, :rows] - b[:, :rows]) / (2 * eps) for a, b in zip(hi, lo)])
    from_first_input = [norm(np.stack([c[t] for c in cols_x], -1)) for t in range(steps)]
    return {("state", "to_last"): state_to_last,
            ("input", "to_last"): np.stack(input_to_last, 1),
            ("state", "from_first"): np.stack(from_first_state, 1),
            ("input", "from_first"): np.stack(from_first_input, 1)}


@pytest.mark.skipif(keras.backend.backend() == "jax" and not __import__("jax").config.x64_enabled,
                    reason="float64 on JAX needs JAX_ENABLE_X64=1")
@pytest.mark.parametrize("kind", ["simple_tanh", "simple_relu", "lstm", "gru", "gru_reset_before",
                                  "output_gated_gru"])
def test_jacobian_profile_matches_finite_differences(kind):
    from kexue.training import jacobian_profile

    layer = _rnn_layers_f64()[kind]
    x = np.random.default_rng(1).normal(size=(2, 5, 2))
    # keras.ops.tanh computes in float32 on JAX even for float64 input (keras 3.15), so
    # there the finite differences are float32-accurate, with a tolerance to match
    exact = keras.backend.backend() != "jax"
    eps, rtol, atol = (1e-6, 1e-6, 1e-9) if exact else (1e-3, 3e-3, 1e-5)
    reference = _fd_profiles(layer.cell, x, eps=eps)
    for (wrt, direction), want in reference.items():
        got = jacobian_profile(layer, x, wrt=wrt, direction=direction, per_example=True)
        assert got.shape == want.shape, (wrt, direction, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                   err_msg=f"{kind}: wrt={wrt}, direction={direction}")
        mean = jacobian_profile(layer, x, wrt=wrt, direction=direction)
        np.testing.assert_allclose(mean, want.mean(axis=0), rtol=rtol, atol=atol)


def test_jacobian_profile_of_a_linear_rnn_is_a_matrix_power():
    """h_t = x_t W + h_{t-1} U: dh_T/dh_t = (U^{T-t})^T and dh_T/dx_t = (W U^{T-t})^T; with
    U = 3 Q (Q orthogonal) the norms reach 3^200 without overflowing float32 products."""
    from kexue.training import jacobian_profile

    units, steps = 4, 200
    layer = keras.layers.SimpleRNN(units, activation=None, use_bias=False)
    layer.build((None, steps, 3))
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(units, units)))
    layer.cell.recurrent_kernel.assign(3.0 * q)
    w = keras.ops.convert_to_numpy(layer.cell.kernel).astype(np.float64)
    x = np.zeros((2, steps, 3), "float32")  # the states stay finite; the Jacobians do not care
    lags = np.arange(steps, -1, -1)                                  # T - t for t = 0..T
    state = jacobian_profile(layer, x)
    np.testing.assert_allclose(state, 2.0 * 3.0 ** lags, rtol=1e-3)   # ||3^k Q^k||_F = 2 * 3^k
    first = jacobian_profile(layer, x, direction="from_first")
    np.testing.assert_allclose(first, 2.0 * 3.0 ** np.arange(steps + 1), rtol=1e-3)
    inputs = jacobian_profile(layer, x, wrt="input")
    # ||W (3Q)^k||_F = 3^k ||W||_F since Q is orthogonal
    np.testing.assert_allclose(inputs, np.linalg.norm(w) * 3.0 ** lags[1:], rtol=1e-3)
    assert np.isfinite(state).all() and state[0] > 1e95


def test_jacobian_profile_shapes_cells_and_initial_state():
    from kexue.training import jacobian_profile

    lstm = keras.layers.LSTM(3)
    x = np.random.default_rng(4).normal(size=(5, 7, 2)).astype("float32")
    assert jacobian_profile(lstm, x).shape == (8,)
    assert jacobian_profile(lstm, x, wrt="input", per_example=True).shape == (5, 7)
    # the bare cell gives the same profile as its layer; of="state" includes the rows of c
    np.testing.assert_allclose(jacobian_profile(lstm.cell, x), jacobian_profile(lstm, x), rtol=1e-6)
    full = jacobian_profile(lstm, x, of="state")
    assert np.all(full >= jacobian_profile(lstm, x) - 1e-6)
    np.testing.assert_allclose(full[-1], np.sqrt(6), rtol=1e-6)    # ds_T/ds_T = I (6 x 6)
    start = [np.full((5, 3), 0.5, "float32"), np.zeros((5, 3), "float32")]
    assert not np.allclose(jacobian_profile(lstm, x, initial_state=start),
                           jacobian_profile(lstm, x))


def test_jacobian_profile_needs_a_cell_whose_output_is_its_first_state():
    from kexue.training import jacobian_profile

    class Doubled(keras.layers.Layer):
        state_size = 2

        def build(self, shape):
            self.built = True

        def call(self, x, states):
            h = keras.ops.tanh(states[0] + x)
            return 2.0 * h, [h]

    x = np.ones((1, 3, 2), "float32")
    with pytest.raises(ValueError, match="of='state'"):
        jacobian_profile(Doubled(), x)
    assert jacobian_profile(Doubled(), x, of="state").shape == (4,)


# ------------------------------------------------------------------- curvature: Hessian probes

from kexue.training import hessian_vector_product, top_hessian_eigenvalue  # noqa: E402


def _mean(v):  # keras.ops.mean's gradient on JAX is float32-accurate (2e-8 off) in float64
    return keras.ops.sum(v) / float(np.prod(v.shape))


def _mse(t, p):
    return _mean(keras.ops.square(p - t))


def _bce(t, z):  # binary cross-entropy from logits, log(1 + e^z) - t z
    return _mean(keras.ops.softplus(z) - t * z)


def _float64_model(*layers, d=4):
    return keras.Sequential([keras.Input((d,), dtype="float64"), *layers])


def _flat_grad(model, loss_fn, x, y, theta):
    """Gradient of the loss at the flat weight vector ``theta`` (finite-difference reference)."""
    from gradients import model_grads

    shapes = [tuple(v.shape) for v in model.trainable_variables]
    parts = np.split(theta, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
    for var, part, shape in zip(model.trainable_variables, parts, shapes):
        var.assign(part.reshape(shape))
    return np.concatenate([g.ravel() for g in model_grads(model, loss_fn, x, y)])


def _flat(arrays):
    return np.concatenate([np.asarray(a, dtype="float64").ravel() for a in arrays])


def test_top_hessian_eigenvalue_of_a_quadratic():
    """Least squares mean((Xw - y)^2) has the constant Hessian 2 X^T X / N."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) * np.array([3.0, 1.0, 1.0, 0.5, 0.2, 0.1])
    y = rng.normal(size=(50, 1))
    model = _float64_model(keras.layers.Dense(1, use_bias=False, dtype="float64"), d=6)
    mse = _mse
    hessian = 2 * x.T @ x / len(x)
    exact = np.linalg.eigvalsh(hessian)
    lam = top_hessian_eigenvalue(model, mse, x, y, iters=500, tol=1e-12, seed=1)
    assert abs(lam - exact[-1]) <= 1e-8 * exact[-1], (lam, exact)
    v = rng.normal(size=(6, 1))
    hv = hessian_vector_product(model, mse, x, y, [v])[0]
    np.testing.assert_allclose(hv, hessian @ v, rtol=1e-10, atol=1e-12)
    # negative curvature: the eigenvalue of largest magnitude keeps its sign
    neg = top_hessian_eigenvalue(model, lambda t, p: -mse(t, p), x, y, iters=500, tol=1e-12)
    assert abs(neg + exact[-1]) <= 1e-8 * exact[-1], (neg, exact)


def test_logistic_regression_at_zero_has_a_quarter_of_the_second_moment():
    """At theta = 0, the Hessian of the logistic loss is E[x~ x~^T] / 4 exactly (x~ = (x, 1))."""
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(200, 5)) + np.array([0.0, 0.0, 1.0, 0.0, 2.0])
    y = rng.integers(0, 2, (200, 1)).astype("float64")
    model = _float64_model(keras.layers.Dense(1, kernel_initializer="zeros", dtype="float64"),
                           d=5)
    bce = _bce
    xa = np.hstack([x, np.ones((200, 1))])
    exact = 0.25 * np.linalg.eigvalsh(xa.T @ xa / len(xa))[-1]
    lam = top_hessian_eigenvalue(model, bce, x, y, iters=300, tol=1e-12)
    assert abs(lam - exact) <= 1e-8 * exact, (lam, exact)


def test_hessian_probe_against_finite_differences_of_gradients():
    """A tiny softplus network (XLA computes tanh to float32 accuracy): H v and the top eigenvalue against a Hessian built column by
    column from central differences of gradients."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 2, (30, 1)).astype("float64")
    runtime.seed(3)
    model = _float64_model(keras.layers.Dense(3, activation="softplus", dtype="float64"),
                           keras.layers.Dense(1, dtype="float64"))
    bce = _bce
    theta = _flat(model.get_weights())
    v = [rng.normal(size=tuple(w.shape)) for w in model.trainable_variables]
    hv = _flat(hessian_vector_product(model, bce, x, y, v))
    lam, vec = top_hessian_eigenvalue(model, bce, x, y, iters=1000, tol=1e-13, seed=4,
                                      return_vector=True)
    eps = 1e-5
    columns = []
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        columns.append((_flat_grad(model, bce, x, y, theta + e)
                        - _flat_grad(model, bce, x, y, theta - e)) / (2 * eps))
    _flat_grad(model, bce, x, y, theta)  # restore the weights
    hessian = np.array(columns).T
    hessian = (hessian + hessian.T) / 2
    np.testing.assert_allclose(hv, hessian @ _flat(v), rtol=1e-6, atol=1e-8)
    eig = np.linalg.eigvalsh(hessian)
    top = eig[np.argmax(np.abs(eig))]
    assert abs(lam - top) <= 1e-6 * abs(top), (lam, eig)
    vec = _flat(vec)
    assert abs(abs(vec @ np.linalg.eigh(hessian)[1][:, np.argmax(np.abs(eig))]) - 1) < 1e-4


def test_hessian_probe_leaves_batch_norm_statistics_alone():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 4)) * 3 + 1
    y = rng.integers(0, 3, 64)
    runtime.seed(6)
    model = _float64_model(keras.layers.BatchNormalization(dtype="float64"),
                           keras.layers.Dense(8, activation="relu", dtype="float64"),
                           keras.layers.Dense(3, dtype="float64"))
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")
    before = [np.array(v) for v in model.non_trainable_variables]
    first = top_hessian_eigenvalue(model, scce, x, y, iters=30, tol=0, seed=0)
    second = top_hessian_eigenvalue(model, scce, x, y, iters=30, tol=0, seed=0)  # cached graph
    assert first == pytest.approx(second, rel=1e-12)
    for a, b in zip(before, model.non_trainable_variables):
        np.testing.assert_array_equal(a, np.asarray(b))
    # in inference mode the moving statistics (mean 0, variance 1) are used instead: other H
    frozen = top_hessian_eigenvalue(model, scce, x, y, iters=30, tol=0, training=False)
    assert abs(frozen - first) > 1e-3 * abs(first)


# ----------------------------------------------------------- adversarial training in embedding space

from kexue.training import AdversarialModel, embedding_attack, fgm_perturbation  # noqa: E402

ADV_V, ADV_T, ADV_D, ADV_K, ADV_N = 9, 5, 3, 2, 6
_ADV_RNG = np.random.default_rng(11)
ADV_X = _ADV_RNG.integers(1, ADV_V - 2, (ADV_N, ADV_T))  # ids V-2 and V-1 never occur
ADV_Y = _ADV_RNG.integers(0, ADV_K, ADV_N)
ADV_W = _ADV_RNG.integers(4, 13, ADV_N) / 8  # sample weights, exact in float32 (fit casts them)


def _adv_model(seed=3):
    """Embedding -> Flatten -> Dense, in float64; the embedding is named ``emb``. (No mean over
    positions: Keras's ``ops.mean`` sums in float32 on JAX.)"""
    runtime.seed(seed)
    inp = keras.Input((ADV_T,), dtype="int32")
    h = keras.layers.Embedding(ADV_V, ADV_D, name="emb", dtype="float64",
                               embeddings_initializer=keras.initializers.RandomNormal(0, 1))(inp)
    h = keras.layers.Flatten(dtype="float64")(h)
    return keras.Model(inp, keras.layers.Dense(ADV_K, dtype="float64")(h))


def _adv_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype="float64")


def _grad(fn, args):
    """Gradient of the scalar ``fn(args)`` with respect to the list of tensors ``args``."""
    args = [keras.ops.convert_to_tensor(a, dtype="float64") for a in args]
    if keras.backend.backend() == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(fn)(args)]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(args)
        value = fn(args)
    return [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(value, args)]


def _hand_loss(params, delta_h=None, x=ADV_X, y=ADV_Y, w=ADV_W):
    """The model's loss written out: sum_i w_i * CE(y_i, flat(E[x_i] + delta_i) W + b) / N."""
    ops = keras.ops
    emb, kernel, bias = params
    h = ops.take(emb, ops.convert_to_tensor(x), axis=0)
    if delta_h is not None:
        h = h + delta_h
    logits = ops.matmul(ops.reshape(h, (len(y), -1)), kernel) + bias
    ce = ops.logsumexp(logits, axis=1) - ops.take_along_axis(
        logits, ops.convert_to_tensor(y)[:, None], axis=1)[:, 0]
    return ops.sum(ops.convert_to_tensor(w) * ce) / len(y)


def _params(model):
    return [np.asarray(v, dtype="float64") for v in model.trainable_variables]


def _one_step(method, mode, norm, lr, epsilon=0.3, seed=3, run_eagerly=True):
    """Weights before and after one full-batch SGD step of the wrapper (eager: one step is
    cheaper than tracing it)."""
    model = _adv_model(seed)
    before = _params(model)
    adv = AdversarialModel(model, "emb", method=method, epsilon=epsilon, mode=mode, norm=norm)
    adv.compile(optimizer=keras.optimizers.SGD(lr), loss=_adv_loss(), run_eagerly=run_eagerly)
    adv.fit(ADV_X, ADV_Y, sample_weight=ADV_W, batch_size=ADV_N, epochs=1, shuffle=False,
            verbose=0)
    return before, _params(model)


def _penalty_ref(params, epsilon, mode, norm):
    """L + penalty, the inner gradient by autodiff (first order only)."""
    if mode == "matrix":
        g = _grad(lambda a: _hand_loss([a[0], *params[1:]]), [params[0]])[0]
        per = [np.sqrt(np.sum(g ** 2))]
    else:
        g = _grad(lambda a: _hand_loss(params, a[0]), [np.zeros((ADV_N, ADV_T, ADV_D))])[0]
        per = np.sqrt(np.sum(g ** 2, axis=(1, 2)))
    pen = 0.5 * epsilon * np.sum(g ** 2) if norm == "none" else epsilon * np.sum(per)
    return float(keras.ops.convert_to_numpy(_hand_loss(params))) + pen


def test_fgm_perturbation_has_norm_epsilon_and_the_gradient_direction():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(7, 4, 3))
    g[2] = 0.0
    d = np.asarray(fgm_perturbation(g, 0.5))
    assert np.linalg.norm(d) == pytest.approx(0.5, rel=1e-6)
    assert np.sum(d * g) / (np.linalg.norm(d) * np.linalg.norm(g)) == pytest.approx(1, rel=1e-6)
    per = np.asarray(fgm_perturbation(g, 0.5, per_example=True))
    norms = np.linalg.norm(per.reshape(7, -1), axis=1)
    np.testing.assert_allclose(np.delete(norms, 2), 0.5, rtol=1e-6)
    assert norms[2] == 0.0  # a zero gradient gives a zero step, not NaN
    np.testing.assert_allclose(per[0], 0.5 * g[0] / np.linalg.norm(g[0]), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(fgm_perturbation(g, 0.5, "sign")), 0.5 * np.sign(g))
    np.testing.assert_allclose(np.asarray(fgm_perturbation(g, 0.5, "none")), 0.5 * g)
    assert not np.any(np.asarray(fgm_perturbation(np.zeros(3), 1.0)))


@pytest.mark.parametrize("mode", ["matrix", "output"])
def test_one_fgm_step_is_the_hand_written_two_pass_step(mode):
    lr, eps = 0.125, 0.3  # a power of two: SGD keeps its learning rate in float32
    before, after = _one_step("fgm", mode, "l2", lr, eps)
    if mode == "matrix":  # one step on the whole table, norm over the table
        g = _grad(lambda a: _hand_loss([a[0], *before[1:]]), [before[0]])[0]
        delta = eps * g / np.linalg.norm(g)
        assert not np.any(delta[ADV_V - 2:])  # rows of tokens absent from the batch stay put
        grads = _grad(lambda p: _hand_loss([p[0] + delta, p[1], p[2]]), before)
    else:  # one step per example on the embedding output
        g = _grad(lambda a: _hand_loss(before, a[0]), [np.zeros((ADV_N, ADV_T, ADV_D))])[0]
        delta = eps * g / np.linalg.norm(g.reshape(ADV_N, -1), axis=1)[:, None, None]
        grads = _grad(lambda p: _hand_loss(p, delta), before)
    for b, a, gr in zip(before, after, grads):
        np.testing.assert_allclose(a, b - lr * gr, rtol=1e-9, atol=1e-12)


def test_fgm_removes_its_perturbation_exactly():
    before, after = _one_step("fgm", "matrix", "l2", 0.0, epsilon=0.5)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode,norm", [("output", "none"), ("matrix", "none"),
                                       ("output", "l2"), ("matrix", "l2")])
def test_gradient_penalty_step_is_the_finite_difference_gradient(mode, norm):
    """The step's gradient of L + penalty (a double backward pass) against central differences
    of the penalised loss along three random directions of all the weights (float64)."""
    eps = 0.7
    before, after = _one_step("gradient_penalty", mode, norm, 1.0, eps)
    step = [b - a for b, a in zip(before, after)]  # SGD(1): the gradient of L + penalty
    rng, h = np.random.default_rng(2), 1e-5
    for _ in range(3):
        v = [rng.normal(size=p.shape) for p in before]
        plus = _penalty_ref([p + h * u for p, u in zip(before, v)], eps, mode, norm)
        minus = _penalty_ref([p - h * u for p, u in zip(before, v)], eps, mode, norm)
        directional = sum(np.sum(g * u) for g, u in zip(step, v))
        assert directional == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-9)


def test_the_penalty_is_the_embedding_gradient_of_finite_differences():
    model = _adv_model()
    params = _params(model)
    g = _grad(lambda a: _hand_loss(params, a[0]), [np.zeros((ADV_N, ADV_T, ADV_D))])[0]
    rng, h = np.random.default_rng(4), 1e-6
    for _ in range(3):
        v = rng.normal(size=g.shape)
        fd = float(keras.ops.convert_to_numpy(
            _hand_loss(params, h * v) - _hand_loss(params, -h * v))) / (2 * h)
        assert np.sum(g * v) == pytest.approx(fd, rel=1e-7, abs=1e-10)
    # the table's gradient adds up the output's rows of each token (what the article's penalty
    # squares are those rows, before they are added: the output gradient)
    dense = _grad(lambda a: _hand_loss([a[0], *params[1:]]), [params[0]])[0]
    rows = np.zeros_like(dense)
    np.add.at(rows, ADV_X, g)
    np.testing.assert_allclose(dense, rows, rtol=1e-12, atol=1e-15)
    assert abs(np.sum(dense ** 2) - np.sum(g ** 2)) > 1e-6 * np.sum(g ** 2)


def test_embedding_attack_is_the_per_example_fgm_step():
    model = _adv_model()
    params = _params(model)
    eps = 0.4
    res = embedding_attack(model, "emb", ADV_X, ADV_Y, _adv_loss(), eps, batch_size=3)
    g = _grad(lambda a: _hand_loss(params, a[0], w=np.ones(ADV_N)) * ADV_N,
              [np.zeros((ADV_N, ADV_T, ADV_D))])[0]
    norms = np.linalg.norm(g.reshape(ADV_N, -1), axis=1)
    np.testing.assert_allclose(res.grad_norm, norms, rtol=1e-9)
    h = params[0][ADV_X] + eps * g / norms[:, None, None]
    logits = h.reshape(ADV_N, -1) @ params[1] + params[2]
    np.testing.assert_allclose(res.attacked, logits, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(res.clean, np.asarray(model(ADV_X)), rtol=1e-12)
    ce = lambda z: np.log(np.exp(z).sum(1)) - z[np.arange(ADV_N), ADV_Y]  # noqa: E731
    assert np.all(ce(res.attacked) > ce(res.clean))  # the attack raises every example's loss


def test_adversarial_model_trains_a_shared_embedding_with_two_inputs():
    """One Embedding called on two inputs (as in a seq2seq model): both calls are perturbed."""
    runtime.seed(0)
    a, b = keras.Input((4,), dtype="int32"), keras.Input((3,), dtype="int32")
    emb = keras.layers.Embedding(10, 4, name="shared")
    pooled = [keras.layers.GlobalAveragePooling1D()(emb(t)) for t in (a, b)]
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Concatenate()(pooled)))
    rng = np.random.default_rng(1)
    xa, xb, y = rng.integers(0, 10, (16, 4)), rng.integers(0, 10, (16, 3)), rng.integers(0, 2, 16)
    for method, mode in (("fgm", "output"), ("gradient_penalty", None)):
        adv = AdversarialModel(model, emb, method=method, epsilon=0.1, mode=mode)
        adv.compile(optimizer="adam", run_eagerly=keras.backend.backend() == "tensorflow",
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        hist = adv.fit([xa, xb], y, batch_size=8, epochs=1, verbose=0)
        assert np.isfinite(hist.history["loss"][0])
    res = embedding_attack(model, emb, [xa, xb], y,
                           keras.losses.SparseCategoricalCrossentropy(from_logits=True), 0.1)
    assert res.attacked.shape == (16, 2) and res.grad_norm.shape == (16,)


def test_adversarial_model_errors():
    model = _adv_model()
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialModel(model, "emb", epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialModel(model, "emb", epsilon=-1.0)
    with pytest.raises(ValueError, match="method"):
        AdversarialModel(model, "emb", method="pgd")
    with pytest.raises(ValueError, match="embedding"):
        AdversarialModel(model, "no_such_layer")
    with pytest.raises(TypeError, match="embedding"):
        AdversarialModel(model, model.layers[-1])
    with pytest.raises(ValueError, match="not inside"):
        AdversarialModel(model, keras.layers.Embedding(3, 2))
    with pytest.raises(ValueError, match="shape"):
        embedding_attack(model, "emb", ADV_X, ADV_Y[:3], _adv_loss(), 0.1)


def test_adversarial_model_keras_round_trip(tmp_path):
    model = _adv_model()
    adv = AdversarialModel(model, "emb", method="gradient_penalty", epsilon=0.25, norm="l2")
    adv.compile(optimizer=keras.optimizers.SGD(0.125), loss=_adv_loss(), run_eagerly=True)
    adv.fit(ADV_X, ADV_Y, batch_size=ADV_N, epochs=1, verbose=0)
    adv.save(tmp_path / "adv.keras")
    loaded = keras.saving.load_model(tmp_path / "adv.keras")
    assert isinstance(loaded, AdversarialModel)
    assert (loaded.method, loaded.epsilon, loaded.mode, loaded.norm) == (
        "gradient_penalty", 0.25, "output", "l2")
    assert loaded.embedding.name == "emb" and loaded.embedding is loaded.model.get_layer("emb")
    np.testing.assert_allclose(np.asarray(loaded.predict(ADV_X, verbose=0)),
                               np.asarray(model(ADV_X)), rtol=1e-12)
    assert int(loaded.optimizer.iterations) == 1


# ---- batch-norm recalibration


def test_recalibrate_batchnorm_sets_the_average_of_batch_statistics():
    from kexue.training import recalibrate_batchnorm

    keras.utils.set_random_seed(0)
    inp = keras.Input((3,))
    dense = keras.layers.Dense(4)
    first, second = keras.layers.BatchNormalization(), keras.layers.BatchNormalization()
    model = keras.Model(inp, second(dense(first(inp))))
    unused = keras.layers.BatchNormalization()
    unused.build((None, 3))
    holder = keras.Sequential([keras.Input((3,)), unused])
    batches = [RNG.normal(loc=i, size=(16, 3)).astype("float32") for i in range(3)]
    momenta = [first.momentum, second.momentum]
    seen = recalibrate_batchnorm(model, batches)
    assert sorted(seen.values()) == [3, 3]
    assert [first.momentum, second.momentum] == momenta
    np.testing.assert_allclose(np.asarray(first.moving_mean),
                               np.mean([b.mean(0) for b in batches], 0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(first.moving_variance),
                               np.mean([b.var(0) for b in batches], 0), atol=1e-5)
    w, bias = (np.asarray(v) for v in dense.get_weights())
    gamma, beta = np.asarray(first.gamma), np.asarray(first.beta)
    inner = [((b - b.mean(0)) / np.sqrt(b.var(0) + first.epsilon) * gamma + beta) @ w + bias
             for b in batches]
    np.testing.assert_allclose(np.asarray(second.moving_mean),
                               np.mean([h.mean(0) for h in inner], 0), atol=1e-5)
    # a layer the call never reaches keeps its statistics; momenta are restored after errors
    recalibrate_batchnorm(holder, batches[:1], call=lambda b: None)
    np.testing.assert_array_equal(np.asarray(unused.moving_mean), np.zeros(3))

    def failing(b):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        recalibrate_batchnorm(model, batches, call=failing)
    assert [first.momentum, second.momentum] == momenta and "call" not in vars(first)
