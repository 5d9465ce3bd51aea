"""kexue.activations: the overflow-safe x·min(1, eˣ), derivatives and saturation shares.

References: the naive formula where it is finite, closed forms of the derivatives, central
finite differences, closed-form saturated sets (ReLU, sigmoid) and scipy root finding on
NumPy closed forms (Swish, x·min(1, eˣ)), brute-force dead-unit counts.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops
from kexue import activations as A
from scipy import optimize, special

BACKEND = keras.backend.backend()


def np_(x):
    return ops.convert_to_numpy(x)


def sigmoid(x):
    return special.expit(x)


def swish_prime(x):
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


def h_prime(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x > 0, 1.0, (1 + x) * np.exp(np.minimum(x, 0.0)))


# --------------------------------------------------------------------------- xmin1exp


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xmin1exp_equals_the_naive_form_where_that_is_finite(dtype):
    x = np.linspace(-50, 50, 20_001).astype(dtype)
    ours, naive = np_(A.xmin1exp(x)), np_(A.xmin1exp_naive(x))
    ref = x.astype(np.float64) * np.minimum(1.0, np.exp(x.astype(np.float64)))
    assert ours.dtype == np.dtype(dtype)
    np.testing.assert_allclose(ours, naive, atol=1e-7, rtol=1e-6)
    np.testing.assert_allclose(ours, ref, atol=1e-7, rtol=1e-6)
    g_ours, g_naive = np_(A.derivative(A.xmin1exp, x)), np_(A.derivative(A.xmin1exp_naive, x))
    assert np.isfinite(g_naive).all()  # e^50 is finite in float32 and float64
    np.testing.assert_allclose(g_ours, g_naive, atol=1e-7, rtol=1e-6)
    np.testing.assert_allclose(g_ours, h_prime(x), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_xmin1exp_is_finite_where_the_naive_form_overflows(dtype):
    x = np.concatenate([np.linspace(-1e4, 1e4, 40_001), [-3e38, 3e38, 0.0]]).astype(dtype)
    value, grad = np_(A.xmin1exp(x)), np_(A.derivative(A.xmin1exp, x))
    assert np.isfinite(value).all() and np.isfinite(grad).all()
    np.testing.assert_array_equal(value[x >= 0], x[x >= 0])
    np.testing.assert_array_equal(grad[x > 0], 1.0)
    assert np.abs(value[x < -200]).max() <= 1e-80 and np.abs(grad[x < -200]).max() <= 1e-80
    # the pitfall: the naive form's value is right, its gradient is NaN once e^x overflows
    big = np.array([100.0, 1000.0] if dtype == "float32" else [1000.0, 1e4], dtype=dtype)
    np.testing.assert_array_equal(np_(A.xmin1exp_naive(big)), big)
    assert np.isnan(np_(A.derivative(A.xmin1exp_naive, big))).all()
    np.testing.assert_array_equal(np_(A.derivative(A.xmin1exp, big)), 1.0)


def test_xmin1exp_gradient_against_finite_differences():
    x = np.concatenate([np.linspace(-30, -1e-3, 301), np.linspace(1e-3, 30, 301)])
    eps = 1e-6
    fd = (np_(A.xmin1exp(x + eps)) - np_(A.xmin1exp(x - eps))) / (2 * eps)
    np.testing.assert_allclose(np_(A.derivative(A.xmin1exp, x)), fd, atol=1e-8, rtol=1e-7)


def test_xmin1exp_shape_minimum_and_smoothness():
    # h' is continuous at 0 (both sides 1); h'' jumps from 2 to 0
    eps = 1e-5
    left = np.array([-eps, -2 * eps])
    right = np.array([eps, 2 * eps])
    assert np.allclose(np_(A.derivative(A.xmin1exp, left)), 1.0, atol=1e-4)
    assert np.allclose(np_(A.derivative(A.xmin1exp, right)), 1.0, atol=1e-12)
    assert float(np_(A.derivative(A.xmin1exp, np.array([0.0])))[0]) == 1.0
    d = 1e-4
    second_left = (h_prime(-d) - h_prime(-2 * d)) / d
    second_right = (h_prime(2 * d) - h_prime(d)) / d
    assert abs(second_left - 2) < 1e-3 and second_right == 0.0
    x_min = optimize.minimize_scalar(lambda t: float(np_(A.xmin1exp(np.array([t])))[0]),
                                     bracket=(-3.0, -1.5, 0.0), tol=1e-12).x
    assert abs(x_min + 1) < 1e-4
    assert abs(float(np_(A.xmin1exp(np.array([-1.0])))[0]) + math.exp(-1)) < 1e-12


def test_xmin1exp_keeps_symbolic_shapes_and_rejects_integers():
    x = keras.Input((3, 4))
    assert A.xmin1exp(x).shape == (None, 3, 4)
    with pytest.raises(TypeError, match="x must have a float dtype"):
        A.xmin1exp(np.arange(3))


def test_xmin1exp_as_a_keras_activation_by_object_and_by_name():
    layer = keras.layers.Dense(4, activation=A.xmin1exp)
    config = layer.get_config()
    assert config["activation"]["config"] == "kexue>xmin1exp"
    again = keras.layers.Dense.from_config(config)
    assert again.activation is A.xmin1exp
    assert keras.activations.deserialize("kexue>xmin1exp") is A.xmin1exp
    by_name = keras.layers.Dense(4, activation=keras.activations.serialize(A.xmin1exp))
    assert by_name.activation is A.xmin1exp
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    layer.build((None, 3))
    again.build((None, 3))
    again.set_weights(layer.get_weights())
    np.testing.assert_allclose(np_(again(x)), np_(layer(x)), rtol=1e-6)


# --------------------------------------------------------------------------- derivative


def test_derivative_against_closed_forms():
    x = np.linspace(-20, 20, 4001)
    np.testing.assert_allclose(np_(A.derivative(keras.activations.sigmoid, x)),
                               sigmoid(x) * (1 - sigmoid(x)), atol=1e-12)
    np.testing.assert_allclose(np_(A.derivative(keras.activations.silu, x)), swish_prime(x),
                               atol=1e-12)
    relu = np_(A.derivative(keras.activations.relu, x[x != 0]))
    np.testing.assert_array_equal(relu, (x[x != 0] > 0).astype(float))
    assert np_(A.derivative(lambda v: v * 0.0 + 1.0, x)).max() == 0.0  # constant: zeros
    with pytest.raises(ValueError, match="elementwise"):
        A.derivative(lambda v: ops.sum(v, axis=0), x[:4000].reshape(2, -1))


# --------------------------------------------------------------------------- saturation


def _roots(f, lo, hi, n=200_001):
    """Sign changes of f on a fine grid of [lo, hi], refined by brentq."""
    x = np.linspace(lo, hi, n)
    y = f(x)
    idx = np.flatnonzero(np.sign(y[1:]) != np.sign(y[:-1]))
    return [optimize.brentq(f, x[i], x[i + 1], xtol=1e-14) for i in idx]


@pytest.mark.parametrize("threshold", [0.01, 0.1])
def test_saturation_fraction_against_closed_forms(threshold):
    relu = A.saturation_fraction(keras.activations.relu, threshold)
    assert abs(relu - 0.5) < 1e-12
    # sigmoid: s(1 - s) < t outside |x| < log(s0 / (1 - s0)), s0 = (1 + sqrt(1 - 4t)) / 2
    s0 = (1 + math.sqrt(1 - 4 * threshold)) / 2
    x0 = math.log(s0 / (1 - s0))
    assert abs(A.saturation_fraction(keras.activations.sigmoid, threshold)
               - 2 * special.ndtr(-x0)) < 1e-10
    # a wider input distribution is more saturated
    assert A.saturation_fraction(keras.activations.sigmoid, threshold, std=5.0) > 2 * special.ndtr(-x0)
    for fn, prime in ((keras.activations.silu, swish_prime), (A.xmin1exp, h_prime)):
        sat = lambda v, p=prime: np.abs(p(v)) - threshold  # noqa: E731  (< 0: saturated)
        ends = _roots(sat, -12, 12)
        edges = [-np.inf, *ends, np.inf]
        probe = [ends[0] - 1] + [(a + b) / 2 for a, b in zip(ends[:-1], ends[1:])] + [ends[-1] + 1]
        exact = sum(special.ndtr(b) - special.ndtr(a)
                    for a, b, m in zip(edges[:-1], edges[1:], probe) if sat(m) < 0)
        ours = A.saturation_fraction(fn, threshold)
        assert abs(ours - exact) < 1e-10, (fn, ours, exact)
        got = A.saturated_intervals(fn, threshold)
        finite = got[np.isfinite(got)]
        np.testing.assert_allclose(np.sort(finite), ends, atol=1e-9)
        assert got[0, 0] == -np.inf


def test_saturation_table_of_the_chapter():
    table = {(keras.activations.silu, 0.01): 0.0162, (keras.activations.silu, 0.1): 0.181,
             (A.xmin1exp, 0.01): 0.0132, (A.xmin1exp, 0.1): 0.139}
    for (fn, t), want in table.items():
        assert abs(A.saturation_fraction(fn, t) - want) < 1e-3


@pytest.mark.parametrize("fn", [keras.activations.relu, keras.activations.silu, A.xmin1exp,
                                keras.activations.sigmoid])
def test_saturation_fraction_monte_carlo_agrees(fn):
    for std in (1.0, 3.0):
        exact = A.saturation_fraction(fn, 0.1, std=std)
        p, se = A.saturation_fraction_mc(fn, 0.1, n=200_000, std=std, seed=1)
        assert abs(p - exact) < 4 * se + 1e-12, (fn, std, p, exact, se)
    assert A.saturation_fraction_mc(fn, 0.1, n=1000, seed=3) == A.saturation_fraction_mc(
        fn, 0.1, n=1000, seed=3)


def test_saturated_intervals_edge_cases():
    # never saturated, always saturated
    assert A.saturated_intervals(lambda v: v, 0.5).shape == (0, 2)
    whole = A.saturated_intervals(lambda v: 0.0 * v, 0.5)
    np.testing.assert_array_equal(whole, [[-np.inf, np.inf]])


# --------------------------------------------------------------------------- dead units


def test_dead_unit_fraction_against_brute_force():
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(5, activation=A.xmin1exp),
                              keras.layers.Dense(3, activation="softmax")])
    w1, b1, w2, b2, w3, b3 = model.get_weights()
    b1[:3] = -100.0          # three of eight ReLU units can never fire
    b2[:2] = -100.0          # two of five h units sit deep in the flat tail
    model.set_weights([w1, b1, w2, b2, w3, b3])
    x = rng.normal(size=(200, 6)).astype("float32")
    got = A.dead_unit_fraction(model, x)
    h1 = np.maximum(x @ w1 + b1, 0)
    z2 = h1 @ w2 + b2
    brute = [np.mean(np.mean((x @ w1 + b1) <= 0, axis=0) >= 0.99),
             np.mean(np.mean(np.abs(h_prime(z2)) < 1e-3, axis=0) >= 0.99)]
    np.testing.assert_allclose(got, brute)
    assert got[0] >= 3 / 8 and got[1] >= 2 / 5
