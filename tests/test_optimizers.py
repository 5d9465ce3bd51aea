"""kexue.optimizers: the I-divergence fit, the decay weights and AdaFactor against Keras."""

import keras
import numpy as np
import pytest
from kexue import runtime
from kexue.optimizers import AdaFactor, ema_weights, idiv, rank1_idiv, slot_floats
from scipy.optimize import minimize

RNG = np.random.default_rng(0)


# -- the mathematics ---------------------------------------------------------------------


def test_rank1_idiv_is_the_numerical_optimum():
    C = RNG.uniform(0.1, 2.0, size=(6, 9))
    a, b = rank1_idiv(C)

    def loss(log_ab):
        return idiv(C, np.exp(log_ab[:6]), np.exp(log_ab[6:]))

    res = minimize(loss, np.zeros(15), method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
    assert idiv(C, a, b) <= res.fun + 1e-8 * abs(res.fun)
    assert abs(idiv(C, a, b) - res.fun) <= 1e-8 * abs(res.fun)


def test_rank1_idiv_preserves_row_and_column_sums():
    C = RNG.uniform(size=(7, 4))
    a, b = rank1_idiv(C)
    fit = np.outer(a, b)
    np.testing.assert_allclose(fit.sum(axis=1), C.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(fit.sum(axis=0), C.sum(axis=0), rtol=1e-12)
    assert b.sum() == pytest.approx(1.0)


def test_rank1_idiv_is_exact_on_rank_one_matrices():
    a0, b0 = RNG.uniform(0.5, 2, 5), RNG.uniform(0.5, 2, 3)
    a, b = rank1_idiv(np.outer(a0, b0))
    np.testing.assert_allclose(np.outer(a, b), np.outer(a0, b0), rtol=1e-12)
    assert idiv(np.outer(a0, b0), a, b) == pytest.approx(0.0, abs=1e-12)


def test_idiv_is_nonnegative_and_handles_zeros():
    C = RNG.uniform(size=(3, 4))
    C[0, 0] = 0.0
    assert idiv(C, RNG.uniform(0.1, 1, 3), RNG.uniform(0.1, 1, 4)) > 0


@pytest.mark.parametrize("bad", [np.ones(3), -np.ones((2, 2)), np.full((2, 2), np.nan)])
def test_rank1_idiv_rejects_bad_matrices(bad):
    with pytest.raises(ValueError, match="C must"):
        rank1_idiv(bad)


def test_idiv_rejects_wrong_shapes():
    with pytest.raises(ValueError, match="shapes"):
        idiv(np.ones((2, 3)), np.ones(3), np.ones(2))


def test_ema_weights():
    t = 50
    steps = np.arange(1, t + 1)
    np.testing.assert_allclose(ema_weights(1 - steps ** -1.0), np.full(t, 1 / t), rtol=1e-12)
    w = ema_weights(1 - steps ** -0.8)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w[-1] == pytest.approx(t ** -0.8)
    assert w[0] == pytest.approx(0.00187, abs=1e-5)     # the brief's number
    assert w[-1] == pytest.approx(0.0437, abs=1e-4)
    # brute force: run the average on unit impulses
    for k in (0, 10, 49):
        x = np.zeros(t)
        x[k] = 1.0
        v = 0.0
        for beta, xt in zip(1 - steps ** -0.8, x):
            v = beta * v + (1 - beta) * xt
        assert v == pytest.approx(w[k], rel=1e-12)
    with pytest.raises(ValueError, match="beta"):
        ema_weights([0.5, 1.5])


# -- AdaFactor ---------------------------------------------------------------------------

SHAPES = [(20, 30), (30,), (3, 4, 5), (30, 10), (10,)]


def run(optimizer, steps=50, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in shapes]
    optimizer.build(variables)
    for _ in range(steps):
        grads = [(0.1 * rng.normal(size=s)).astype("float32") for s in shapes]
        optimizer.apply(grads, variables)
    return [v.numpy() for v in variables]


@pytest.mark.parametrize("lr", [1e-3, 1e-2])
def test_matches_keras_adafactor(lr):
    ours = run(AdaFactor(learning_rate=lr))
    keras_ = run(keras.optimizers.Adafactor(learning_rate=lr))
    assert max(np.abs(a - b).max() for a, b in zip(ours, keras_)) <= 1e-5


def test_matches_a_numpy_reference_with_sum_form_and_momentum():
    """The paper's sum form R C / (1^T R), no relative step, momentum: brute-force NumPy."""
    rng = np.random.default_rng(3)
    theta0 = rng.normal(size=(6, 4))
    grads = [0.1 * rng.normal(size=(6, 4)) for _ in range(20)]
    lr, c_decay, beta1, d = 0.05, 0.7, 0.9, 0.5
    theta, R, C, m = theta0.copy(), np.zeros(6), np.zeros(4), np.zeros((6, 4))
    for t, g in enumerate(grads, start=1):
        beta2 = 1 - t ** -c_decay
        R = beta2 * R + (1 - beta2) * (g ** 2 + 1e-30).sum(axis=1)
        C = beta2 * C + (1 - beta2) * (g ** 2 + 1e-30).sum(axis=0)
        V = np.outer(R, C) / R.sum()
        U = g / np.sqrt(V)
        U = U / max(1.0, np.sqrt(np.mean(U ** 2)) / d)
        step = lr * max(1e-3, np.sqrt(np.mean(theta ** 2))) * U
        m = beta1 * m + (1 - beta1) * step
        theta = theta - m
    var = keras.Variable(theta0.astype("float64"), dtype="float64")
    opt = AdaFactor(learning_rate=lr, decay_c=c_decay, beta1=beta1, clip_threshold=d,
                    relative_step=False)
    for g in grads:
        opt.apply([g.astype("float64")], [var])
    # the learning-rate variable is float32: 0.05 is stored to ~1e-8 relative
    np.testing.assert_allclose(var.numpy(), theta, rtol=1e-7, atol=1e-9)


def test_state_of_a_matrix_is_n_plus_m_floats():
    for n, m in [(784, 512), (7, 3), (1, 5)]:
        opt = AdaFactor()
        opt.build([keras.Variable(np.zeros((n, m), "float32"))])
        assert slot_floats(opt) == n + m
    opt = AdaFactor()
    opt.build([keras.Variable(np.zeros((2, 3, 4), "float32"))])
    assert slot_floats(opt) == 2 * 3 + 2 * 4          # r: (2, 3), c: (2, 4)
    opt = AdaFactor(beta1=0.9)
    opt.build([keras.Variable(np.zeros((5, 6), "float32"))])
    assert slot_floats(opt) == 5 + 6 + 30              # momentum is full size


def test_min_dim_size_to_factor_and_vectors_keep_full_state():
    opt = AdaFactor(min_dim_size_to_factor=128)
    opt.build([keras.Variable(np.zeros((100, 200), "float32")),
               keras.Variable(np.zeros((200, 300), "float32")),
               keras.Variable(np.zeros((300,), "float32"))])
    assert slot_floats(opt) == 100 * 200 + (200 + 300) + 300


def test_keras_adafactor_and_adam_state_for_reference():
    variables = [keras.Variable(np.zeros((40, 30), "float32")),
                 keras.Variable(np.zeros((30,), "float32"))]
    adam = keras.optimizers.Adam()
    adam.build(variables)
    assert slot_floats(adam) == 2 * (1200 + 30)
    built_in = keras.optimizers.Adafactor()
    built_in.build(variables)
    assert slot_floats(built_in) >= 1200 + 30          # a full velocity for every variable


def test_higher_rank_factors_last_two_dims_per_slice():
    """A (3, 4, 5) variable behaves like three independent 4 x 5 matrices (no parameter scale,
    which is an RMS over the whole tensor, and no clipping, which is too)."""
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(3, 4, 5)).astype("float32")
    grads = [rng.normal(size=(3, 4, 5)).astype("float32") for _ in range(5)]
    kw = dict(learning_rate=0.1, multiply_by_parameter_scale=False, clip_threshold=None,
              relative_step=False)
    whole = keras.Variable(theta)
    opt = AdaFactor(**kw)
    for g in grads:
        opt.apply([g], [whole])
    for i in range(3):
        part = keras.Variable(theta[i])
        opt_i = AdaFactor(**kw)
        for g in grads:
            opt_i.apply([g[i]], [part])
        np.testing.assert_allclose(whole.numpy()[i], part.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(learning_rate=-1e-3), "learning_rate"),
        (dict(decay_c=0.0), "decay_c"),
        (dict(decay_c=1.5), "decay_c"),
        (dict(decay_c=-0.8), "decay_c"),
        (dict(beta1=1.0), "beta1"),
        (dict(epsilon1=-1.0), "epsilon1"),
        (dict(epsilon2=float("nan")), "epsilon2"),
        (dict(clip_threshold=0.0), "clip_threshold"),
        (dict(min_dim_size_to_factor=-1), "min_dim_size_to_factor"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaFactor(**kwargs)


def test_bad_types_raise():
    with pytest.raises(TypeError, match="relative_step"):
        AdaFactor(relative_step="yes")
    with pytest.raises(TypeError, match="decay_c"):
        AdaFactor(decay_c="0.8")


def test_keras_round_trip(tmp_path):
    runtime.seed(0)
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    opt = AdaFactor(learning_rate=1e-2, decay_c=0.7, beta1=0.5, min_dim_size_to_factor=4)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, AdaFactor)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    # the state travels too: one more step gives the same weights
    model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    loaded.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_slot_floats_needs_a_built_optimizer():
    with pytest.raises(ValueError, match="not built"):
        slot_floats(AdaFactor())
    with pytest.raises(TypeError, match="optimizer"):
        slot_floats("adam")
