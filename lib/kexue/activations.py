r"""Activation functions, their derivatives, and how much of their input they saturate.

- :func:`xmin1exp`: :math:`h(x) = x\min(1, e^x)`, which is :math:`x` for :math:`x \ge 0` and
  :math:`x e^x` for :math:`x < 0`, written as :math:`x\,e^{\min(x, 0)}` so that no positive
  number is ever exponentiated: its value and its gradient are finite for every finite input.
  It is a registered, serializable Keras activation (``"kexue>xmin1exp"``);
  :func:`xmin1exp_naive` is the literal formula, kept only to show why it must not be used.
- :func:`derivative`: the elementwise derivative :math:`f'(x)` of an activation by automatic
  differentiation (TensorFlow or JAX backend).
- :func:`saturated_intervals`, :func:`saturation_fraction`, :func:`saturation_fraction_mc`:
  the set where :math:`|f'(x)| < \delta`, and its probability under
  :math:`x \sim \mathcal N(0, s^2)`, exactly (interval ends by bisection, Gaussian mass by the
  error function) and by Monte Carlo.
- :func:`dead_unit_fraction`: the share of a network's hidden units whose derivative is below a
  tolerance on almost every example of a batch.

The activations use ``keras.ops`` only and run on every backend; the derivative tools need a
backend with automatic differentiation of Python functions (TensorFlow or JAX).

Used in: book/geometry/activation-functions.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops
from scipy import special

from kexue._checks import (
    as_array,
    as_float_tensor,
    check_callable,
    check_finite,
    check_instance,
    check_int,
    check_positive,
    check_real,
    describe,
)

__all__ = [
    "dead_unit_fraction",
    "derivative",
    "saturated_intervals",
    "saturation_fraction",
    "saturation_fraction_mc",
    "xmin1exp",
    "xmin1exp_naive",
]


@keras.saving.register_keras_serializable(package="kexue")
def xmin1exp(x):
    r"""The activation :math:`h(x) = x\min(1, e^x)`, in the overflow-safe form :math:`x\,e^{\min(x,0)}`.

    ``x``: a float tensor of any shape; returns a tensor of the same shape and dtype. For
    :math:`x \ge 0` the exponent is 0, so :math:`h(x) = x`; for :math:`x < 0` it is
    :math:`x e^x`. The exponential never sees a positive argument, so the value and the
    gradient :math:`h'(x) = e^{\min(x,0)}(1 + x\,\mathbb 1[x<0])` are finite for every finite
    input, in float32 and float64 (:math:`h'(x) \to 0` as :math:`x \to -\infty`). At
    :math:`x = 0` both one-sided derivatives equal 1. The minimum is :math:`-1/e` at
    :math:`x = -1`.

    Registered with Keras as ``"kexue>xmin1exp"``: pass the function itself as
    ``activation=`` (``Dense(64, activation=xmin1exp)``); a saved model reloads it after
    ``import kexue``, and ``keras.activations.deserialize("kexue>xmin1exp")`` returns it by name
    (Keras 3's ``activations.get`` resolves bare strings among its built-ins only).

    Used in: book/geometry/activation-functions.md
    """
    x = as_float_tensor(x, "x")
    return x * ops.exp(ops.minimum(x, 0.0))


def xmin1exp_naive(x):
    r"""The literal :math:`x\min(1, e^x)`: same values, but a NaN gradient where :math:`e^x` overflows.

    ``x``: a float tensor of any shape; returns a tensor of the same shape. The forward value
    is right even when :math:`e^x = \infty` (:math:`\min(1, \infty) = 1`), but backpropagation
    multiplies the zero gradient of the unselected branch by :math:`\tfrac{d}{dx}e^x = \infty`,
    and :math:`0 \cdot \infty` is NaN (from :math:`x \approx 89` in float32, :math:`x \approx 710`
    in float64). For demonstrations only; use :func:`xmin1exp`.

    Used in: book/geometry/activation-functions.md
    """
    x = as_float_tensor(x, "x")
    return x * ops.minimum(ops.exp(x), 1.0)


def derivative(activation, x):
    r"""The elementwise derivative :math:`f'(x)` of an activation, by automatic differentiation.

    ``activation``: a callable that acts elementwise (output shape = input shape), such as
    ``keras.activations.relu`` or :func:`xmin1exp`; ``x``: a float array or tensor of any shape.
    Returns a backend tensor of the shape and dtype of ``x``: the gradient of
    :math:`\sum_i f(x_i)`, which for an elementwise function is :math:`f'(x_i)` at each entry
    (at a kink, the one-sided value the backend's gradient picks). A function that does not
    depend on its input gives zeros.

    TensorFlow (``tf.GradientTape``) and JAX (``jax.grad``) backends; any other backend raises
    ``NotImplementedError``.

    Used in: book/geometry/activation-functions.md
    """
    check_callable(activation, "activation")
    x = as_float_tensor(x, "x")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = activation(x)
        _check_elementwise(y, x)
        grad = tape.gradient(y, x)
        return tf.zeros_like(x) if grad is None else grad
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        x = jnp.asarray(x)
        _check_elementwise(activation(x), x)
        return jax.grad(lambda v: jnp.sum(activation(v)))(x)
    raise NotImplementedError(
        f"derivative needs the TensorFlow or JAX backend (automatic differentiation of a "
        f"Python function); the Keras backend is {backend!r}.")


def _check_elementwise(y, x) -> None:
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"activation must act elementwise (output shape = input shape), got "
                         f"output shape {tuple(y.shape)} for input shape {tuple(x.shape)}.")


def _abs_derivative(activation, x: np.ndarray) -> np.ndarray:
    return np.abs(ops.convert_to_numpy(derivative(activation, x))).astype(np.float64)


def saturated_intervals(activation, threshold, bound=12.0, grid=24_001, steps=60):
    r"""The set :math:`\{x : |f'(x)| < \delta\}` as a union of disjoint intervals.

    ``activation``: an elementwise callable; ``threshold``: :math:`\delta > 0`. The derivative is
    evaluated (float64, by :func:`derivative`) on ``grid`` equally spaced points of
    ``[-bound, bound]``; every change of the test :math:`|f'| < \delta` between neighbours is
    located by ``steps`` rounds of bisection (all of them at once). The set is assumed not to
    change beyond ``±bound``: an interval that reaches the edge extends to infinity. Intervals
    narrower than the grid step (``2 bound / (grid - 1)``) can be missed.

    Returns a float64 array of shape ``(k, 2)``, rows ``(a, b)`` with ``a < b`` in increasing
    order, ``-inf``/``inf`` for unbounded ends; ``k`` may be 0.

    Used in: book/geometry/activation-functions.md
    """
    check_callable(activation, "activation")
    threshold = check_positive(threshold, "threshold")
    bound = check_positive(bound, "bound")
    grid = check_int(grid, "grid", minimum=3)
    steps = check_int(steps, "steps", minimum=1)
    x = np.linspace(-bound, bound, grid)
    inside = _abs_derivative(activation, x) < threshold
    flips = np.flatnonzero(inside[1:] != inside[:-1])
    lo, hi = x[flips], x[flips + 1]
    left_inside = inside[flips]
    for _ in range(steps if flips.size else 0):
        mid = 0.5 * (lo + hi)
        same = (_abs_derivative(activation, mid) < threshold) == left_inside
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    ends = 0.5 * (lo + hi)
    edges = np.concatenate([[-np.inf], ends, [np.inf]])
    # segment j runs from edges[j] to edges[j + 1]; the first is inside iff inside[0]
    is_in = (np.arange(edges.size - 1) % 2 == 0) == bool(inside[0])
    return np.stack([edges[:-1][is_in], edges[1:][is_in]], axis=1).reshape(-1, 2)


def saturation_fraction(activation, threshold, std=1.0, bound=12.0, grid=24_001):
    r""":math:`P(|f'(x)| < \delta)` for :math:`x \sim \mathcal N(0, s^2)`, without sampling.

    ``activation``: an elementwise callable; ``threshold``: :math:`\delta > 0`; ``std``:
    :math:`s > 0`, the spread of the pre-activations. The saturated set comes from
    :func:`saturated_intervals` on ``[-bound·s, bound·s]`` (beyond 12 standard deviations the
    normal mass is below 1e-32), and its probability is
    :math:`\sum_k \Phi(b_k/s) - \Phi(a_k/s)` with the normal distribution function
    :math:`\Phi` (``scipy.special.ndtr``). Returns a float in [0, 1].

    Used in: book/geometry/activation-functions.md
    """
    std = check_positive(std, "std")
    intervals = saturated_intervals(activation, threshold, bound=check_positive(bound, "bound") * std,
                                    grid=grid)
    upper = special.ndtr(intervals[:, 1] / std)
    lower = special.ndtr(intervals[:, 0] / std)
    return float(np.clip(np.sum(upper - lower), 0.0, 1.0))


def saturation_fraction_mc(activation, threshold, n=1_000_000, std=1.0, seed=0):
    r"""Monte Carlo estimate of :math:`P(|f'(x)| < \delta)`, :math:`x \sim \mathcal N(0, s^2)`.

    Draws ``n`` float64 samples with ``numpy.random.default_rng(seed)`` and differentiates the
    activation at all of them (:func:`derivative`). Returns ``(fraction, standard_error)``, the
    second :math:`\sqrt{p(1-p)/n}`: the check of :func:`saturation_fraction`.

    Used in: book/geometry/activation-functions.md
    """
    check_callable(activation, "activation")
    threshold = check_positive(threshold, "threshold")
    n = check_int(n, "n", minimum=1)
    std = check_positive(std, "std")
    seed = check_int(seed, "seed", minimum=0)
    x = np.random.default_rng(seed).normal(0.0, std, size=n)
    p = float(np.mean(_abs_derivative(activation, x) < threshold))
    return p, float(np.sqrt(p * (1.0 - p) / n))


def dead_unit_fraction(model, x, tol=1e-3, share=0.99):
    r"""Per hidden layer, the share of units whose derivative is below ``tol`` on most of a batch.

    ``model``: a built Keras model whose hidden layers are ``Dense`` layers with an elementwise
    activation; every ``Dense`` layer but the last (the output) counts as hidden. ``x``: a batch
    of inputs, shape ``(batch, ...)`` as the model takes it. For each hidden layer the
    pre-activations :math:`z = h W + b` of the batch are computed from the layer's input, and a
    unit is *dead* when :math:`|f'(z)| <` ``tol`` on at least a fraction ``share`` of the
    examples. Returns a float64 array of shape ``(n_hidden_layers,)``.

    Used in: book/geometry/activation-functions.md
    """
    check_instance(model, "model", keras.Model, "a built Keras model")
    tol = check_positive(tol, "tol")
    share = check_real(share, "share", 0.0, 1.0, low_open=True)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if len(dense) < 2:
        raise ValueError(f"model must have at least one hidden Dense layer before its output "
                         f"Dense layer, got {len(dense)} Dense layer(s).")
    if not model.built or len(getattr(model, "inputs", None) or []) != 1:
        raise ValueError(f"model must be built on one keras.Input, got {describe(model)} "
                         f"that is not.")
    hidden = dense[:-1]
    arr = as_array(x, "x", dtype="float32")
    check_finite(arr, "x")
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise ValueError(f"x must be a batch of inputs of shape (batch, ...), got shape "
                         f"{arr.shape}.")
    probe = keras.Model(model.inputs, [layer.input for layer in hidden])
    inputs = probe([arr], training=False)
    inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    out = []
    for layer, h in zip(hidden, inputs):
        z = ops.matmul(h, layer.kernel)
        if layer.use_bias:
            z = z + layer.bias
        small = _abs_derivative(layer.activation, ops.convert_to_numpy(z)) < tol
        out.append(float(np.mean(small.mean(axis=0) >= share)))
    return np.asarray(out)

