r"""Distributions of the angle between two random vectors in ℝⁿ.

For two independent isotropic random vectors (for instance with i.i.d. standard normal
coordinates) the angle θ ∈ [0, π] between them has the density

    p_n(θ) = Γ(n/2) / (Γ((n-1)/2) √π) · sin^(n-2) θ,

its cosine η = cos θ has the density proportional to
(1 - η²)^((n-3)/2) on [-1, 1] (so (1+η)/2 is
Beta((n-1)/2, (n-1)/2)), and Var θ = ψ₁(n/2)/2
with ψ₁ the trigamma function.

The densities, the CDF and the variance are float64 NumPy/SciPy reference functions
(``scipy.integrate.quad`` calls them with scalars); the Gamma-function ratios go through
``scipy.special.gammaln``, which does not overflow at n = 1000 and beyond. The sampler
draws its vectors with ``keras.random`` and reduces them with ``keras.ops``, so it runs on
any Keras backend; :func:`laplace_curvature` uses TensorFlow's nested ``GradientTape``.

Used in: book/geometry/angle-distribution.md
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import integrate, special

from kexue._checks import ArgumentTypeError, as_array, check_int, describe

__all__ = [
    "DISTRIBUTIONS",
    "angle_cdf",
    "angle_pdf",
    "angle_sf",
    "angle_variance",
    "angle_variance_quad",
    "cos_pdf",
    "laplace_curvature",
    "sample_angles",
    "sample_cosines",
]

DISTRIBUTIONS = ("gaussian", "uniform_cube", "rademacher")
"""Coordinate distributions understood by :func:`sample_angles` and :func:`sample_cosines`."""

_NUMBERS_PER_DRAW = 1 << 22  # default chunk: about 4M random numbers per vector draw


# --------------------------------------------------------------------------- validation


def _check_n(n) -> int:
    return check_int(n, "n", 2, "an integer dimension >= 2")


def _log_norm_const(n: int) -> float:
    """log of Gamma(n/2) / (Gamma((n-1)/2) sqrt(pi)), without overflow."""
    return float(special.gammaln(n / 2) - special.gammaln((n - 1) / 2) - 0.5 * math.log(math.pi))


def _as_float_array(x, name: str) -> np.ndarray:
    """``x`` as float64; ``None``, strings, booleans and NaN are refused (they would give a
    silent 0 or NaN density)."""
    try:
        arr = as_array(x, name)
    except ArgumentTypeError as err:
        raise ArgumentTypeError(f"{name} must be real numbers, got {describe(x)}.") from err
    if arr.dtype.kind == "b":
        raise ArgumentTypeError(f"{name} must be real numbers, got booleans ({describe(x)}).")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} must be real numbers, got NaN ({int(np.isnan(arr).sum())} of "
                         f"{arr.size} values).")
    return arr


def _out(arr: np.ndarray):
    """Return a Python float for scalar input, else the array."""
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------- densities


def angle_pdf(theta, n):
    r"""Density p_n(θ) of the angle between two isotropic random vectors in R^n.

        p_n(θ) = Γ(n/2) / (Γ((n-1)/2) √π) · sin^(n-2) θ,    0 ≤ θ ≤ π,

    and 0 outside [0, π]. The constant is evaluated as ``exp`` of a difference of
    ``gammaln``, so large n does not overflow; ``sin**(n-2)`` is evaluated as
    ``exp((n-2) * log(sin))`` with ``0 * log 0 = 0`` (n = 2 is the uniform density 1/pi).

    Args:
        theta: angle(s) in radians, any shape (float or array-like).
        n: the dimension, an integer >= 2.

    Returns:
        float64 array of the same shape as ``theta`` (a Python float for scalar input).

    Used in: book/geometry/angle-distribution.md
    """
    n = _check_n(n)
    theta = _as_float_array(theta, "theta")
    inside = (theta >= 0.0) & (theta <= math.pi)
    s = np.abs(np.sin(np.where(inside, theta, 0.5 * math.pi)))
    log_p = _log_norm_const(n) + special.xlogy(n - 2, s)
    return _out(np.where(inside, np.exp(log_p), 0.0))


def _angle_tails(theta, n):
    """P(θ ≤ t) and P(θ > t), each from the Beta tail in which it is small.

    With a = (n-1)/2, P(θ ≤ t) = I(sin²(t/2); a, a) and, by the symmetry of Beta(a, a),
    P(θ > t) = I(cos²(t/2); a, a), with I the regularised incomplete beta function. Each is
    computed directly where it is the smaller of the two (t ≤ π/2 for the first) and as one
    minus the other elsewhere, so both keep full relative precision in their own tail: near
    t = π, sin²(t/2) would round to 1 and lose the 1e-9 that separates P(θ ≤ t) from 1.
    """
    n = _check_n(n)
    theta = np.clip(_as_float_array(theta, "theta"), 0.0, math.pi)
    a = (n - 1) / 2
    half = 0.5 * theta
    lower = special.betainc(a, a, np.sin(half) ** 2)
    upper = special.betainc(a, a, np.cos(half) ** 2)
    left = theta <= 0.5 * math.pi
    cdf = np.where(left, lower, 1.0 - upper)
    sf = np.where(left, 1.0 - lower, upper)
    return cdf.astype(np.float64), sf.astype(np.float64)


def angle_cdf(theta, n):
    r"""Distribution function P(θ ≤ t) of the angle between two random vectors.

    With η = cos θ, (1+η)/2 ~ Beta(a, a),
    a = (n-1)/2, and θ ≤ t ⇔ (1+η)/2 ≥ cos²(t/2), so

        P(θ ≤ t) = Beta(a, a).sf(cos²(t/2)) = Beta(a, a).cdf(sin²(t/2)).

    The second form keeps full relative precision for small angles; above π/2 the value
    is one minus the upper tail :func:`angle_sf`, computed from cos²(t/2), so that
    ``angle_cdf(pi - 1e-8, 2)`` is 0.9999999968..., not 1.0. ``t`` is clipped to [0, π]
    (0 below, 1 above).

    Args:
        theta: angle(s) ``t`` in radians, any shape.
        n: the dimension, an integer >= 2.

    Returns:
        float64 array of the same shape as ``theta`` (a Python float for scalar input).

    Used in: book/geometry/angle-distribution.md
    """
    return _out(_angle_tails(theta, n)[0])


def angle_sf(theta, n):
    r"""Upper tail P(θ > t) = 1 - angle_cdf, with full relative precision near π.

    P(θ > t) = Beta(a, a).cdf(cos²(t/2)), a = (n-1)/2, computed directly for t ≥ π/2 (where
    it is small) and as one minus the lower tail below. Same arguments and returns as
    :func:`angle_cdf`.

    Used in: book/geometry/angle-distribution.md (tests of the tails)
    """
    return _out(_angle_tails(theta, n)[1])


def cos_pdf(eta, n):
    r"""Density of the cosine η = cos θ of the angle between two random vectors.

        p_n(η) = Γ(n/2) / (Γ((n-1)/2) √π) · (1 - η²)^((n-3)/2),    -1 ≤ η ≤ 1,

    and 0 outside [-1, 1]; (1+η)/2 is Beta((n-1)/2, (n-1)/2). For n = 2
    the density is infinite (but integrable) at η = ±1; for n = 3 it is the
    uniform density 1/2. 1 - η² is evaluated as (1-η)(1+η).

    Args:
        eta: cosine(s), any shape.
        n: the dimension, an integer >= 2.

    Returns:
        float64 array of the same shape as ``eta`` (a Python float for scalar input).

    Used in: book/geometry/angle-distribution.md
    """
    n = _check_n(n)
    eta = _as_float_array(eta, "eta")
    inside = (eta >= -1.0) & (eta <= 1.0)
    e = np.where(inside, eta, 0.0)
    with np.errstate(divide="ignore"):
        log_p = _log_norm_const(n) + special.xlogy((n - 3) / 2, (1.0 - e) * (1.0 + e))
        return _out(np.where(inside, np.exp(log_p), 0.0))


# --------------------------------------------------------------------------- variance


def angle_variance(n):
    r"""Variance of the angle between two isotropic random vectors in R^n, in closed form.

        Var_n θ = ∫_0^π (θ - π/2)² p_n(θ) dθ = ψ₁(n/2) / 2,

    with ψ₁ the trigamma function (``scipy.special.polygamma(1, .)``). It equals
    π²/12 at n = 2, π²/4 - 2 at n = 3 and
    1/(n-1) - 1/(3n³) + O(n⁻⁴) for large n.

    Args:
        n: the dimension, an integer >= 2.

    Returns:
        the variance, a Python float (radians squared).

    Used in: book/geometry/angle-distribution.md
    """
    n = _check_n(n)
    return float(0.5 * special.polygamma(1, n / 2))


def angle_variance_quad(n):
    r"""Variance of the angle between two random vectors in R^n, by numerical integration.

    Integrates (θ - π/2)² p_n(θ) over [0, π] with
    ``scipy.integrate.quad`` (relative tolerance 1e-12), splitting at the peak
    π/2; this is how the article computes its table, and the reference against
    which :func:`angle_variance` is tested.

    Args:
        n: the dimension, an integer >= 2.

    Returns:
        the variance, a Python float.

    Used in: book/geometry/angle-distribution.md
    """
    n = _check_n(n)
    half = 0.5 * math.pi

    def integrand(t: float) -> float:
        return (t - half) ** 2 * angle_pdf(t, n)

    # The density is symmetric about pi/2: integrate one half and double it. For large n
    # the mass sits within a few 1/sqrt(n) of pi/2, so that interval gets its own piece.
    width = min(half, 12.0 / math.sqrt(n))
    near, _ = integrate.quad(integrand, half - width, half, epsabs=0.0, epsrel=1e-12, limit=200)
    far = 0.0
    if width < half:
        far, _ = integrate.quad(integrand, 0.0, half - width, epsabs=0.0, epsrel=1e-12, limit=200)
    return float(2.0 * (near + far))


# --------------------------------------------------------------------------- sampling


def _require_float64(keras, what: str) -> None:
    """Raise when the Keras backend would silently compute ``what`` in float32 instead of
    float64: JAX does unless its 64-bit mode is on."""
    if keras.backend.backend() == "jax":
        import jax

        if not jax.config.jax_enable_x64:
            raise RuntimeError(
                f"{what} computes in float64, which the JAX backend does only in 64-bit mode "
                "(otherwise it silently uses float32): set JAX_ENABLE_X64=1 before importing "
                "jax, or call jax.config.update('jax_enable_x64', True)."
            )


def _draw(keras, shape, dist: str, generator):
    if dist == "gaussian":
        return keras.random.normal(shape, dtype="float64", seed=generator)
    if dist == "uniform_cube":
        return keras.random.uniform(shape, minval=-1.0, maxval=1.0, dtype="float64", seed=generator)
    bits = keras.random.randint(shape, 0, 2, dtype="int32", seed=generator)
    return keras.ops.cast(2 * bits - 1, "float64")


def sample_cosines(n, num, seed=0, dist="gaussian", chunk=None):
    r"""Cosines of the angles between ``num`` independent pairs of random vectors in R^n.

    Each pair ``(x, y)`` has i.i.d. coordinates drawn with ``keras.random`` in float64:

    - ``"gaussian"``: standard normal, the isotropic case of :func:`angle_pdf`;
    - ``"uniform_cube"``: uniform on [-1, 1] (uniform in the cube, not isotropic);
    - ``"rademacher"``: +1 or -1 with probability 1/2 each (not isotropic, discrete).

    The cosine ⟨x, y⟩ / (‖x‖ ‖y‖) is computed in float64 with
    ``keras.ops`` and clipped to [-1, 1]. Pairs are drawn ``chunk`` at a time (two
    ``(chunk, n)`` arrays per draw) to bound memory.

    Args:
        n: the dimension, an integer >= 2.
        num: number of pairs, an integer >= 0.
        seed: a non-negative integer, or a ``keras.random.SeedGenerator`` (whose state then
            advances). The same integer seed, ``n``, ``num``, ``dist`` and ``chunk`` give the
            same numbers.
        dist: one of :data:`DISTRIBUTIONS`.
        chunk: pairs per draw, an integer >= 1; ``None`` picks about 4M numbers per draw.

    Returns:
        float64 NumPy array of shape ``(num,)``.

    Used in: book/geometry/angle-distribution.md
    """
    import keras

    n = _check_n(n)
    num = check_int(num, "num", 0, "a non-negative integer number of pairs")
    if dist not in DISTRIBUTIONS:
        raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {dist!r}.")
    if chunk is None:
        chunk = max(1, _NUMBERS_PER_DRAW // n)
    chunk = check_int(chunk, "chunk", 1, "a positive integer number of pairs per draw")
    if isinstance(seed, keras.random.SeedGenerator):
        generator = seed
    else:
        seed = check_int(seed, "seed", 0, "a non-negative integer or a keras SeedGenerator")
        generator = keras.random.SeedGenerator(seed)

    _require_float64(keras, "sample_cosines")
    ops = keras.ops
    parts = []
    done = 0
    while done < num:
        m = min(chunk, num - done)
        x = _draw(keras, (m, n), dist, generator)
        y = _draw(keras, (m, n), dist, generator)
        dot = ops.sum(x * y, axis=1)
        norms = ops.sqrt(ops.sum(x * x, axis=1) * ops.sum(y * y, axis=1))
        parts.append(ops.convert_to_numpy(ops.clip(dot / norms, -1.0, 1.0)))
        done += m
    if not parts:
        return np.empty((0,), dtype=np.float64)
    return np.concatenate(parts).astype(np.float64, copy=False)


def sample_angles(n, num, seed=0, dist="gaussian", chunk=None):
    """Angles (radians, in [0, pi]) between ``num`` independent pairs of random vectors in R^n.

    The arccosine of :func:`sample_cosines` (same arguments, same random numbers), taken
    with NumPy in float64 after clipping the cosine to [-1, 1], so that a cosine that
    rounds to 1.0000000000000002 cannot give NaN. (``keras.ops.arccos`` would return
    float32 on the JAX backend.)

    Args:
        n: the dimension, an integer >= 2.
        num: number of pairs, an integer >= 0.
        seed: a non-negative integer or a ``keras.random.SeedGenerator``.
        dist: ``"gaussian"`` (isotropic), ``"uniform_cube"`` or ``"rademacher"``.
        chunk: pairs per draw, or ``None`` for about 4M numbers per draw.

    Returns:
        float64 NumPy array of shape ``(num,)`` with values in [0, pi].

    Used in: book/geometry/angle-distribution.md
    """
    cos = sample_cosines(n, num, seed=seed, dist=dist, chunk=chunk)
    return np.arccos(np.clip(cos, -1.0, 1.0)).astype(np.float64, copy=False)


# --------------------------------------------------------------------------- Laplace


def laplace_curvature(n, at=0.5 * math.pi):
    r"""Second derivative of log sin^(n-2) θ, by nested ``tf.GradientTape``.

    Laplace's method approximates p_n by a normal density whose variance is minus
    the inverse of this curvature at the mode π/2. Analytically the second
    derivative is -(n-2)/sin²θ, so -(n-2) at π/2 and a
    Laplace variance 1/(n-2).

    This function is TensorFlow-specific: it differentiates twice with two nested
    ``tf.GradientTape`` contexts, in float64, and needs TensorFlow installed whatever the
    Keras backend.

    Args:
        n: the dimension, an integer >= 2 (n = 2 gives 0: the uniform density is flat).
        at: the angle in (0, pi) at which to differentiate; default pi/2.

    Returns:
        the second derivative, a Python float.

    Used in: book/geometry/angle-distribution.md
    """
    n = _check_n(n)
    if isinstance(at, bool) or not isinstance(at, numbers.Real) or not 0.0 < at < math.pi:
        raise ValueError(f"at must be an angle strictly between 0 and pi, got {at!r}.")
    try:
        import tensorflow as tf
    except ImportError as err:  # pragma: no cover - TensorFlow is in requirements.txt
        raise ImportError("laplace_curvature needs TensorFlow installed (it differentiates with "
                          "tf.GradientTape, whatever the Keras backend).") from err

    theta = tf.constant(float(at), dtype=tf.float64)
    with tf.GradientTape() as outer:
        outer.watch(theta)
        with tf.GradientTape() as inner:
            inner.watch(theta)
            log_density = tf.constant(float(n - 2), tf.float64) * tf.math.log(tf.math.sin(theta))
        first = inner.gradient(log_density, theta)
    second = outer.gradient(first, theta)
    return float(second.numpy())
