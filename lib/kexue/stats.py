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

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    check_choice,
    check_finite,
    check_int,
    describe,
)

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


# --------------------------------------------------------------------------- HSIC and CKA
# Dependence between two samples through kernels: the Hilbert-Schmidt independence criterion,
# its biased, rescaled and unbiased estimators, its permutation test, and CKA.
# Used in: book/geometry/hsic.md

__all__ += [
    "HSIC_ESTIMATORS",
    "HSIC_KERNELS",
    "cka",
    "cka_gram",
    "gram_matrix",
    "hsic",
    "hsic_gram",
    "hsic_ops",
    "hsic_test",
    "median_bandwidth",
]

HSIC_KERNELS = ("gaussian", "linear")
"""Kernels understood by :func:`gram_matrix`, :func:`hsic`, :func:`hsic_test` and :func:`cka`."""

HSIC_ESTIMATORS = ("biased", "article", "unbiased")
"""Estimators of :func:`hsic_gram`: ``tr(KHLH)/n²``, the same times ``n²/(n-1)²``, and the
U-statistic of Song et al. (needs n >= 4)."""


def _samples(x, name: str) -> np.ndarray:
    """``x`` as a float64 array of shape (n, d): a 1-D sample of n scalars becomes (n, 1)."""
    from kexue._checks import check_finite

    arr = as_array(x, name, "float64")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (n,) or (n, d) with n >= 2 samples, got shape "
                         f"{arr.shape}.")
    check_finite(arr, name)
    return arr


def _paired(x, y, min_n: int = 2):
    x, y = _samples(x, "x"), _samples(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"y must have as many samples as x (n={x.shape[0]}), got shape "
                         f"{y.shape}.")
    if x.shape[0] < min_n:
        raise ValueError(f"x must hold n >= {min_n} samples for this estimator, got n="
                         f"{x.shape[0]}.")
    return x, y


def _sq_distances(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows of ``x`` (n, d) -> (n, n), exact zeros
    on the diagonal."""
    if x.shape[1] == 1:
        d2 = (x - x.T) ** 2
    else:
        sq = np.einsum("ij,ij->i", x, x)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
        np.fill_diagonal(d2, 0.0)
    return d2


def median_bandwidth(x) -> float:
    """The median heuristic: the median distance between two distinct samples of ``x``.

    Args:
        x: samples, shape (n,) or (n, d), n >= 2, finite.

    Returns:
        σ, a positive float, for the Gaussian kernel ``exp(-‖a - b‖² / (2σ²))`` of
        :func:`gram_matrix`. Raises ``ValueError`` when all samples coincide.

    Used in: book/geometry/hsic.md
    """
    x = _samples(x, "x")
    d2 = _sq_distances(x)[np.triu_indices(x.shape[0], k=1)]
    sigma = float(np.sqrt(np.median(d2)))
    if not sigma > 0:
        raise ValueError(f"x must hold distinct samples for the median heuristic, but the median "
                         f"distance between its {x.shape[0]} samples is 0.")
    return sigma


def _check_kernel(kernel) -> str:
    from kexue._checks import check_choice

    return check_choice(kernel, "kernel", HSIC_KERNELS)


def _check_sigma(sigma, name: str = "sigma"):
    from kexue._checks import check_positive

    return None if sigma is None else check_positive(sigma, name)


def _gram(x: np.ndarray, kernel: str, sigma) -> np.ndarray:
    if kernel == "linear":
        return x @ x.T
    if sigma is None:
        sigma = median_bandwidth(x)
    return np.exp(-_sq_distances(x) / (2.0 * sigma * sigma))


def gram_matrix(x, kernel="gaussian", sigma=None) -> np.ndarray:
    """The Gram matrix ``K[i, j] = k(x_i, x_j)`` of one sample, in float64.

    Args:
        x: samples, shape (n,) or (n, d), finite.
        kernel: ``"gaussian"``, ``k(a, b) = exp(-‖a - b‖² / (2σ²))``, or ``"linear"``,
            ``k(a, b) = a·b``.
        sigma: the Gaussian bandwidth σ > 0; ``None`` takes :func:`median_bandwidth`.
            (The kernel ``exp(-(a - b)²)`` of kexue.fm/archives/6910 is σ = 1/√2.)

    Returns:
        the symmetric positive semi-definite matrix K, shape (n, n).

    Used in: book/geometry/hsic.md
    """
    kernel = _check_kernel(kernel)
    sigma = _check_sigma(sigma)
    return _gram(_samples(x, "x"), kernel, sigma)


def _centred(K: np.ndarray) -> np.ndarray:
    """HKH with H = I - 11ᵀ/n, in O(n²): subtract row and column means, add the grand mean."""
    row = K.mean(axis=0)
    return K - row[None, :] - K.mean(axis=1)[:, None] + row.mean()


def _hsic_unbiased(K: np.ndarray, L: np.ndarray) -> float:
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    k1, l1 = Kt.sum(axis=1), Lt.sum(axis=1)
    value = (np.sum(Kt * Lt) + k1.sum() * l1.sum() / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * (k1 @ l1))
    return float(value / (n * (n - 3)))


def _hsic_from_grams(K: np.ndarray, L: np.ndarray, estimator: str) -> float:
    n = K.shape[0]
    if estimator == "unbiased":
        return _hsic_unbiased(K, L)
    scale = n * n if estimator == "biased" else (n - 1) ** 2
    return float(np.sum(_centred(K) * L) / scale)


def _check_estimator(estimator) -> tuple[str, int]:
    from kexue._checks import check_choice

    estimator = check_choice(estimator, "estimator", HSIC_ESTIMATORS)
    return estimator, (4 if estimator == "unbiased" else 2)


def hsic_gram(K, L, estimator="biased") -> float:
    """HSIC of two samples from their Gram matrices.

    With H = I - 11ᵀ/n the centring matrix:

    - ``"biased"``: ``tr(KHLH) / n²``, the plug-in (V-statistic) estimator, computed in O(n²)
      as ``Σ_ij (HKH)_ij L_ij / n²``;
    - ``"article"``: ``tr(KHLH) / (n-1)²``, the n²/(n-1)² rescaling of kexue.fm/archives/6910
      (not unbiased);
    - ``"unbiased"``: the U-statistic of Song et al. (2012), with K̃, L̃ the Gram matrices with
      zeroed diagonals: ``[tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n-1)(n-2)) - 2/(n-2)·1ᵀK̃L̃1] / (n(n-3))``.

    Args:
        K, L: Gram matrices of the two samples, shape (n, n) each, finite; n >= 2 (n >= 4 for
            ``"unbiased"``).
        estimator: one of :data:`HSIC_ESTIMATORS`.

    Returns:
        the estimate, a float (the unbiased one can be negative).

    Used in: book/geometry/hsic.md
    """
    from kexue._checks import check_finite

    estimator, min_n = _check_estimator(estimator)
    K, L = as_array(K, "K", "float64"), as_array(L, "L", "float64")
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square Gram matrix of shape (n, n), got shape {K.shape}.")
    if L.shape != K.shape:
        raise ValueError(f"L must have the shape of K {K.shape}, got shape {L.shape}.")
    if K.shape[0] < min_n:
        raise ValueError(f"K must be at least {min_n} x {min_n} for the {estimator!r} estimator, "
                         f"got shape {K.shape}.")
    check_finite(K, "K")
    check_finite(L, "L")
    return _hsic_from_grams(K, L, estimator)


def _grams(x, y, kernel, sigma, min_n):
    kernel = _check_kernel(kernel)
    if isinstance(sigma, (tuple, list)):
        if len(sigma) != 2:
            raise ValueError(f"sigma must be None, a positive number or a pair (sigma_x, "
                             f"sigma_y), got {describe(sigma)}.")
        sx, sy = _check_sigma(sigma[0], "sigma"), _check_sigma(sigma[1], "sigma")
    else:
        sx = sy = _check_sigma(sigma)
    x, y = _paired(x, y, min_n)
    return _gram(x, kernel, sx), _gram(y, kernel, sy)


def hsic(x, y, kernel="gaussian", estimator="biased", sigma=None) -> float:
    """HSIC between paired samples ``x`` and ``y``: :func:`hsic_gram` of their Gram matrices.

    Args:
        x: shape (n,) or (n, d_x); y: shape (n,) or (n, d_y); finite, the same n.
        kernel: ``"gaussian"`` or ``"linear"`` (:func:`gram_matrix`), for both samples.
        estimator: ``"biased"``, ``"article"`` or ``"unbiased"`` (:func:`hsic_gram`).
        sigma: Gaussian bandwidth: ``None`` (median heuristic, for each sample separately), a
            positive number for both, or a pair ``(sigma_x, sigma_y)``.

    Returns:
        the estimate, a float. With the linear kernel and the biased estimator it is
        ``‖C_xy‖_F²``, the squared Frobenius norm of the (1/n) cross-covariance matrix.

    Used in: book/geometry/hsic.md
    """
    estimator, min_n = _check_estimator(estimator)
    K, L = _grams(x, y, kernel, sigma, min_n)
    return _hsic_from_grams(K, L, estimator)


class HsicTest:
    """The result of :func:`hsic_test`: ``statistic``, ``p_value`` and the ``null`` sample
    (the statistic on each permutation, shape (permutations,))."""

    def __init__(self, statistic: float, p_value: float, null: np.ndarray):
        self.statistic, self.p_value, self.null = float(statistic), float(p_value), null

    def __repr__(self) -> str:
        return (f"HsicTest(statistic={self.statistic:.6g}, p_value={self.p_value:.4g}, "
                f"permutations={self.null.size})")


def hsic_test(x, y, permutations=200, seed=0, kernel="gaussian", estimator="biased",
              sigma=None) -> HsicTest:
    """Permutation test of independence of ``x`` and ``y`` with the HSIC statistic.

    The null distribution is the statistic recomputed with ``y`` shuffled (the pairing broken,
    both marginals kept). Permutation b is the b-th call of
    ``numpy.random.default_rng(seed).permutation(n)``; the Gram matrices are computed once, so
    a permutation costs O(n²). The p-value counts the observed statistic as one of the
    permutations: ``(1 + #{b: null_b >= statistic}) / (permutations + 1)``, never 0.

    Args:
        x, y: paired samples, shapes (n,) / (n, d), finite, the same n.
        permutations: number of permutations, an integer >= 1.
        seed: seed of the permutations, an integer >= 0.
        kernel, estimator, sigma: as in :func:`hsic`.

    Returns:
        an :class:`HsicTest` with ``statistic``, ``p_value`` and ``null``.

    Used in: book/geometry/hsic.md
    """
    from kexue._checks import check_int

    permutations = check_int(permutations, "permutations", 1)
    seed = check_int(seed, "seed", 0)
    estimator, min_n = _check_estimator(estimator)
    K, L = _grams(x, y, kernel, sigma, min_n)
    n = K.shape[0]
    statistic = _hsic_from_grams(K, L, estimator)
    rng = np.random.default_rng(seed)
    null = np.empty(permutations)
    if estimator == "unbiased":
        for b in range(permutations):
            p = rng.permutation(n)
            null[b] = _hsic_unbiased(K, L[np.ix_(p, p)])
    else:
        Kc = _centred(K) / (n * n if estimator == "biased" else (n - 1) ** 2)
        chunk = max(1, (1 << 22) // (n * n))  # about 4M entries of permuted Gram at a time
        for start in range(0, permutations, chunk):
            P = np.stack([rng.permutation(n) for _ in range(min(chunk, permutations - start))])
            null[start:start + len(P)] = np.einsum("ij,bij->b", Kc,
                                                   L[P[:, :, None], P[:, None, :]])
    p_value = (1.0 + np.count_nonzero(null >= statistic)) / (permutations + 1.0)
    return HsicTest(statistic, p_value, null)


def cka(x, y, kernel="linear", sigma=None, estimator="biased") -> float:
    """Centred kernel alignment: ``HSIC(x, y) / sqrt(HSIC(x, x) HSIC(y, y))``.

    With the linear kernel and the biased estimator it equals
    ``‖Yᵀ X‖_F² / (‖Xᵀ X‖_F ‖Yᵀ Y‖_F)`` for column-centred X, Y (Kornblith et al., 2019): 1 for
    ``y = x``, invariant to orthogonal transforms and isotropic scaling of either sample, and
    comparable across layers of different widths.

    Args:
        x: shape (n,) or (n, d_x); y: shape (n,) or (n, d_y); finite, the same n.
        kernel: ``"linear"`` (default) or ``"gaussian"``.
        sigma: Gaussian bandwidth as in :func:`hsic` (``None``: median heuristic).
        estimator: as in :func:`hsic_gram`.

    Returns:
        a float, in [0, 1] for the biased estimator. Raises ``ValueError`` when a sample has
        no spread (HSIC(x, x) = 0).

    Used in: book/geometry/hsic.md
    """
    estimator, min_n = _check_estimator(estimator)
    K, L = _grams(x, y, kernel, sigma, min_n)
    return _cka_from_grams(K, L, estimator, ("x", "y"))


def _cka_from_grams(K, L, estimator, names):
    kk, ll = _hsic_from_grams(K, K, estimator), _hsic_from_grams(L, L, estimator)
    for name, value in zip(names, (kk, ll)):
        if not value > 0:
            raise ValueError(f"{name} must vary across samples for CKA, but its HSIC with itself "
                             f"is {value!r}, not > 0.")
    return _hsic_from_grams(K, L, estimator) / math.sqrt(kk * ll)


def cka_gram(K, L, estimator="biased") -> float:
    """CKA from two Gram matrices: ``hsic_gram(K, L) / sqrt(hsic_gram(K, K) hsic_gram(L, L))``.

    For comparing many representations, each Gram matrix is then computed once
    (:func:`gram_matrix`) instead of once per pair.

    Args:
        K, L: Gram matrices of the two samples, shape (n, n) each, finite.
        estimator: as in :func:`hsic_gram`.

    Returns:
        a float, as :func:`cka`.

    Used in: book/geometry/hsic.md
    """
    estimator, _ = _check_estimator(estimator)
    hsic_gram(K, L, estimator)  # validates both matrices
    return _cka_from_grams(np.asarray(K, dtype="float64"), np.asarray(L, dtype="float64"),
                           estimator, ("K", "L"))


def hsic_ops(x, y, kernel="gaussian", sigma=1.0):
    """The biased HSIC ``tr(KHLH) / n²`` in ``keras.ops``: differentiable, on any backend.

    The same number as ``hsic(x, y, kernel, "biased", sigma)`` (up to the precision of the
    inputs' dtype), as a scalar tensor, so that it can serve as a loss or an objective.

    Args:
        x: tensor of shape (n,) or (n, d_x); y: shape (n,) or (n, d_y), the same n and dtype.
        kernel: ``"gaussian"`` or ``"linear"``.
        sigma: Gaussian bandwidth σ > 0, a number (no median heuristic: it is not
            differentiable).

    Returns:
        a scalar tensor of the inputs' float dtype.

    Used in: book/geometry/hsic.md
    """
    from keras import ops

    from kexue._checks import as_tensor, check_dtype, check_finite, check_shape

    kernel = _check_kernel(kernel)
    sigma = _check_sigma(sigma)
    if sigma is None:
        raise ValueError("sigma must be a positive number for hsic_ops, got None.")
    x, y = as_tensor(x, "x"), as_tensor(y, "y")
    out = []
    dims: dict = {}
    for name, t in (("x", x), ("y", y)):
        check_dtype(t, name, "float")
        if len(t.shape) == 1:
            t = ops.expand_dims(t, 1)
        check_shape(t, name, ("n", None), dims)
        check_finite(t, name)
        out.append(t)
    x, y = out
    if x.dtype != y.dtype:
        raise ValueError(f"y must have the dtype of x ({x.dtype}), got dtype {y.dtype}.")

    def gram(t):
        if kernel == "linear":
            return ops.matmul(t, ops.transpose(t))
        sq = ops.sum(t * t, axis=1)
        d2 = ops.maximum(sq[:, None] + sq[None, :] - 2.0 * ops.matmul(t, ops.transpose(t)), 0.0)
        return ops.exp(-d2 / (2.0 * sigma * sigma))

    K, L = gram(x), gram(y)
    n = ops.cast(ops.shape(K)[0], K.dtype)
    # sums over n rather than ops.mean, which loses float64 precision on the JAX backend
    Kc = (K - ops.sum(K, axis=0, keepdims=True) / n - ops.sum(K, axis=1, keepdims=True) / n
          + ops.sum(K) / (n * n))
    return ops.sum(Kc * L) / (n * n)


# --------------------------------------------------------------------------- random matrices
# How close a random weight matrix W (m, n) is to having orthonormal columns: entry by entry
# (exact second moments of the entries of WᵀW for i.i.d. entries) and spectrally (the
# Marchenko–Pastur law of the eigenvalues of WᵀW, i.e. of the squared singular values of W).
# Used in: book/geometry/initialization.md

__all__ += [
    "ENTRY_DISTRIBUTIONS",
    "gram_moments",
    "marchenko_pastur_cdf",
    "marchenko_pastur_pdf",
    "marchenko_pastur_support",
    "orthogonality_mse",
    "sample_matrix",
]

ENTRY_DISTRIBUTIONS = {"gaussian": 3.0, "uniform": 1.8, "rademacher": 1.0}
"""Zero-mean entry distributions of :func:`gram_moments` and :func:`sample_matrix`, with their
kurtosis ``κ = E w⁴ / (E w²)²`` (normal 3, uniform on ``[-a, a]`` 9/5, random signs 1)."""


def _check_variance(variance, m: int, name: str = "variance") -> float:
    from kexue._checks import check_positive

    return 1.0 / m if variance is None else check_positive(variance, name)


def gram_moments(m, n, dist="gaussian", variance=None) -> dict:
    r"""Exact moments of the entries of ``G = WᵀW`` for ``W`` of shape ``(m, n)`` with i.i.d.
    entries of mean 0, variance ``σ²`` (default ``1/m``) and kurtosis ``κ`` (by ``dist``).

    ``G_ij = Σ_k W_ki W_kj`` sums ``m`` independent products, so

    - off the diagonal: mean 0 and variance ``m σ⁴``;
    - on the diagonal: mean ``m σ²`` and variance ``m (E w⁴ − σ⁴) = m σ⁴ (κ − 1)``;
    - ``E ‖G − I‖²_F / n² = [n(n − 1) m σ⁴ + n (m σ⁴ (κ − 1) + (m σ² − 1)²)] / n²``, which for
      ``m = n``, ``σ² = 1/n`` is ``(n + κ − 2) / n²``: ``(n + 1)/n²`` (normal),
      ``(n − 1/5)/n²`` (uniform), ``(n − 1)/n²`` (random signs).

    Returns a dict of floats: ``diag_mean``, ``diag_var``, ``offdiag_mean``, ``offdiag_var``,
    ``mse`` (the last expectation).

    Used in: book/geometry/initialization.md
    """
    m = check_int(m, "m")
    n = check_int(n, "n")
    kurtosis = ENTRY_DISTRIBUTIONS[check_choice(dist, "dist", tuple(ENTRY_DISTRIBUTIONS))]
    s2 = _check_variance(variance, m)
    diag_mean, diag_var, off_var = m * s2, m * s2 * s2 * (kurtosis - 1.0), m * s2 * s2
    mse = (n * (n - 1) * off_var + n * (diag_var + (diag_mean - 1.0) ** 2)) / n**2
    return {"diag_mean": diag_mean, "diag_var": diag_var, "offdiag_mean": 0.0,
            "offdiag_var": off_var, "mse": mse}


def orthogonality_mse(w):
    r"""``‖WᵀW − I_n‖²_F / n²``, the mean squared deviation of ``WᵀW`` from the identity.

    ``w``: shape ``(m, n)``, or ``(..., m, n)`` for a stack of matrices; returns a float, or an
    array of shape ``(...)``. Computed in float64.

    Used in: book/geometry/initialization.md
    """
    w = _as_float_array(w, "w")
    if w.ndim < 2 or w.shape[-1] < 1 or w.shape[-2] < 1:
        raise ValueError(f"w must have shape (m, n) or (..., m, n) with m, n >= 1, got shape "
                         f"{w.shape}.")
    if not np.isfinite(w).all():
        raise ValueError(f"w must hold finite values, got {int((~np.isfinite(w)).sum())} "
                         f"infinite values (shape {w.shape}).")
    n = w.shape[-1]
    gram = np.swapaxes(w, -1, -2) @ w
    dev = gram - np.eye(n)
    return _out(np.mean(dev * dev, axis=(-1, -2)))


def sample_matrix(m, n, dist="gaussian", variance=None, seed=0) -> np.ndarray:
    r"""A random ``(m, n)`` float64 matrix with entries of mean 0 and variance ``σ²``.

    ``dist``: ``"gaussian"`` (``N(0, σ²)``), ``"uniform"`` (``U[−√(3σ²), √(3σ²)]``),
    ``"rademacher"`` (``±σ``), or ``"orthogonal"``: a Haar-random matrix with
    ``WᵀW = m σ² I_n`` (``m ≥ n``) or ``WWᵀ = n σ² I_m`` (``m < n``), the same mean square
    entry ``σ²``. ``variance`` defaults to ``1/m``, for which ``E WᵀW = I_n`` (exactly, for
    ``"orthogonal"`` with ``m ≥ n``). NumPy's ``default_rng(seed)``.

    Used in: book/geometry/initialization.md
    """
    m = check_int(m, "m")
    n = check_int(n, "n")
    dist = check_choice(dist, "dist", (*ENTRY_DISTRIBUTIONS, "orthogonal"))
    s2 = _check_variance(variance, m)
    seed = check_int(seed, "seed", 0)
    rng = np.random.default_rng(seed)
    s = math.sqrt(s2)
    if dist == "gaussian":
        return rng.normal(0.0, s, (m, n))
    if dist == "uniform":
        return rng.uniform(-math.sqrt(3.0) * s, math.sqrt(3.0) * s, (m, n))
    if dist == "rademacher":
        return s * rng.choice(np.array([-1.0, 1.0]), (m, n))
    tall, short = max(m, n), min(m, n)
    q, r = np.linalg.qr(rng.standard_normal((tall, short)))
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)   # the sign fix that makes Q Haar-distributed
    q = q * math.sqrt(tall * s2)
    return q if m >= n else q.T


def _check_ratio(ratio) -> float:
    from kexue._checks import check_positive

    return check_positive(ratio, "ratio")


def marchenko_pastur_support(ratio, variance=1.0) -> tuple[float, float]:
    r"""The edges ``(a, b) = (σ²(1 − √y)², σ²(1 + √y)²)`` of the Marchenko–Pastur law.

    ``ratio``: ``y = n/m`` for ``W`` of shape ``(m, n)``; ``variance``: ``σ² = m · Var(W_ij)``
    (1 when the entries have variance ``1/m``). The eigenvalues of ``WᵀW`` fill ``[a, b]`` as
    ``m, n → ∞`` at fixed ``y``, so the singular values of ``W`` fill ``[√a, √b]``.

    Used in: book/geometry/initialization.md
    """
    y = _check_ratio(ratio)
    s2 = _check_variance(variance, 1)
    return s2 * (1.0 - math.sqrt(y)) ** 2, s2 * (1.0 + math.sqrt(y)) ** 2


def _mp_arguments(x, ratio, variance):
    """Checked ``x`` (float array), ratio ``y``, variance ``σ²`` and the support ``(a, b)``."""
    y = _check_ratio(ratio)
    s2 = _check_variance(variance, 1)
    return (_as_float_array(x, "x"), y, s2, *marchenko_pastur_support(y, s2))


def marchenko_pastur_pdf(x, ratio, variance=1.0):
    r"""Marchenko–Pastur density of the eigenvalues of ``WᵀW`` (the squared singular values).

    .. math:: p(x) = \frac{\sqrt{(b − x)(x − a)}}{2π σ² y\, x}, \qquad a < x < b,

    with ``(a, b)`` from :func:`marchenko_pastur_support`, and 0 elsewhere. For ``y ≤ 1`` it
    integrates to 1; for ``y > 1`` (``n > m``, at most ``m`` non-zero eigenvalues) to ``1/y``,
    the remaining ``1 − 1/y`` being an atom at 0 that :func:`marchenko_pastur_cdf` includes.
    ``x``: any shape; returns the same shape (a float for a scalar).

    Used in: book/geometry/initialization.md
    """
    x, y, s2, a, b = _mp_arguments(x, ratio, variance)
    inside = (x > a) & (x < b)
    xs = np.where(inside, x, 0.5 * (a + b))
    dens = np.sqrt(np.maximum((b - xs) * (xs - a), 0.0)) / (2.0 * math.pi * s2 * y * xs)
    return _out(np.where(inside, dens, 0.0))


def marchenko_pastur_cdf(x, ratio, variance=1.0):
    r"""Distribution function of the Marchenko–Pastur law, atom at 0 included (``y > 1``).

    In closed form: with ``c = (a + b)/2``, ``h = (b − a)/2`` and ``x = c − h cos t``,
    ``∫_a^x p = h² I(t) / (2π σ² y)``, where
    ``I(t) = sin t / h + c t / h² − (2 √(c² − h²) / h²) · arctan(√((c + h)/(c − h)) tan(t/2))``.
    ``x``: any shape; returns the same shape (a float for a scalar).

    Used in: book/geometry/initialization.md
    """
    x, y, s2, a, b = _mp_arguments(x, ratio, variance)
    c, h = 0.5 * (a + b), 0.5 * (b - a)
    t = np.arccos(np.clip((c - x) / h, -1.0, 1.0))
    root = math.sqrt(max(c * c - h * h, 0.0))
    angle = np.arctan2(math.sqrt(c + h) * np.sin(t / 2), math.sqrt(max(c - h, 0.0)) * np.cos(t / 2))
    integral = np.sin(t) / h + c * t / h**2 - 2.0 * root / h**2 * angle
    continuous = h * h * integral / (2.0 * math.pi * s2 * y)
    atom = max(0.0, 1.0 - 1.0 / y)
    out = np.where(x < 0, 0.0, atom + np.where(x <= a, 0.0, continuous))
    return _out(np.clip(out, 0.0, 1.0))


# --------------------------------------------------------------------- smoothing a curve

__all__ += ["moving_average"]


def moving_average(values, window, parts=5):
    """Trailing moving average of a training curve, for plotting: the mean of each run of
    ``w`` consecutive values, ``w = max(1, min(window, len(values) // parts))`` (so that a
    short curve still keeps at least about ``parts`` windows' worth of points).

    ``values``: ``(N,)`` finite, ``N >= 1``; returns ``(averaged (N - w + 1,), w)``: point
    ``i`` of the average belongs at step ``i + w - 1`` of the curve.

    Used in: book/transformers/attention.md, book/transformers/lossless-enlargement.md,
    book/generative/vq-vae.md, book/generative/single-loss-gan.md, book/generative/f-gan.md,
    book/generative/nvae.md
    """
    v = as_array(values, "values", dtype="float64")
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D curve, got shape {v.shape}.")
    check_finite(v, "values")
    window = check_int(window, "window")
    parts = check_int(parts, "parts")
    w = max(1, min(window, v.size // parts))
    return np.convolve(v, np.ones(w) / w, mode="valid"), w
