"""Unit tests of kexue.stats: the angle between two random vectors in R^n."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from kexue import stats
from scipy import integrate, special
from scipy import stats as sps

DIMS = [2, 3, 10, 20, 50, 100, 200, 1000]

# The article's table of Var(theta), as printed (kexue.fm/archives/7076).
ARTICLE_TABLE = {
    3: "0.467401",
    10: "0.110661",
    20: "0.0525832",
    50: "0.0204053",
    100: "0.0101007",
    200: "0.00502508",
    1000: "0.001001",
}


def _quad(f, a, b, **kw):
    kw.setdefault("epsabs", 0.0)
    kw.setdefault("epsrel", 1e-13)
    kw.setdefault("limit", 200)
    return integrate.quad(f, a, b, **kw)[0]


# --------------------------------------------------------------------------- densities


@pytest.mark.parametrize("n", DIMS)
def test_angle_pdf_is_normalised(n):
    total = _quad(lambda t: stats.angle_pdf(t, n), 0.0, math.pi, points=[math.pi / 2])
    assert abs(total - 1.0) < 1e-10


@pytest.mark.parametrize("n", DIMS)
def test_angle_pdf_is_the_transformed_beta_density(n):
    # (1 + cos theta) / 2 ~ Beta(a, a); change of variables: |d/dtheta| = sin(theta) / 2.
    theta = np.linspace(0.01, math.pi - 0.01, 101)
    a = (n - 1) / 2
    expected = sps.beta(a, a).pdf((1 + np.cos(theta)) / 2) * np.sin(theta) / 2
    np.testing.assert_allclose(stats.angle_pdf(theta, n), expected, rtol=1e-9, atol=1e-300)


def test_angle_pdf_small_cases_and_support():
    theta = np.array([0.0, 0.3, 1.0, math.pi])
    np.testing.assert_allclose(stats.angle_pdf(theta, 2), np.full(4, 1 / math.pi), rtol=1e-14)
    np.testing.assert_allclose(stats.angle_pdf(theta, 3), np.sin(theta) / 2, rtol=1e-14, atol=0)
    assert stats.angle_pdf(-0.1, 5) == 0.0 and stats.angle_pdf(math.pi + 0.1, 5) == 0.0
    assert stats.angle_pdf(np.zeros((2, 3)), 4).shape == (2, 3)
    assert isinstance(stats.angle_pdf(1.0, 4), float)
    # no overflow of the Gamma functions at large n
    assert np.isfinite(stats.angle_pdf(math.pi / 2, 100_000))


@pytest.mark.parametrize("n", [2, 3, 10, 100, 1000])
def test_cos_pdf_normalised_with_variance_one_over_n(n):
    if n == 2:  # integrable singularities at +-1: substitute eta = cos(t)
        total = _quad(lambda t: stats.cos_pdf(math.cos(t), n) * math.sin(t), 0, math.pi)
        second = _quad(
            lambda t: math.cos(t) ** 2 * stats.cos_pdf(math.cos(t), n) * math.sin(t), 0, math.pi
        )
    else:
        total = _quad(lambda e: stats.cos_pdf(e, n), -1, 1, points=[0.0])
        second = _quad(lambda e: e * e * stats.cos_pdf(e, n), -1, 1, points=[0.0])
    assert abs(total - 1.0) < 1e-10
    assert abs(second - 1 / n) < 1e-10 / n
    assert stats.cos_pdf(1.5, n) == 0.0


def test_cos_pdf_is_the_beta_density():
    eta = np.linspace(-0.99, 0.99, 51)
    for n in (3, 7, 50):
        a = (n - 1) / 2
        np.testing.assert_allclose(
            stats.cos_pdf(eta, n), sps.beta(a, a).pdf((1 + eta) / 2) / 2, rtol=1e-9
        )
    np.testing.assert_allclose(stats.cos_pdf(eta, 3), 0.5, rtol=1e-14)


@pytest.mark.parametrize("n", [2, 3, 10, 200])
def test_cdf_is_the_integral_of_the_pdf_and_monotone(n):
    ts = np.linspace(0.0, math.pi, 13)
    cdf = stats.angle_cdf(ts, n)
    for t, c in zip(ts, cdf, strict=True):
        assert abs(_quad(lambda u: stats.angle_pdf(u, n), 0.0, t) - c) < 1e-10
    assert cdf[0] == 0.0 and abs(cdf[-1] - 1.0) < 1e-14
    dense = stats.angle_cdf(np.linspace(-1, 4, 2001), n)
    assert np.all(np.diff(dense) >= 0)
    assert abs(stats.angle_cdf(math.pi / 2, n) - 0.5) < 1e-12


# --------------------------------------------------------------------------- variance


@pytest.mark.parametrize("n", DIMS)
def test_closed_form_variance_matches_quadrature(n):
    closed, quad = stats.angle_variance(n), stats.angle_variance_quad(n)
    assert abs(closed - quad) <= 1e-9 * closed


@pytest.mark.parametrize("n", sorted(ARTICLE_TABLE))
def test_variance_matches_the_article_table_to_the_printed_digits(n):
    printed = ARTICLE_TABLE[n]
    decimals = len(printed.split(".")[1])
    assert f"{stats.angle_variance(n):.{decimals}f}" == printed
    assert f"{stats.angle_variance_quad(n):.{decimals}f}" == printed


def test_variance_small_n_closed_forms():
    assert abs(stats.angle_variance(2) - math.pi**2 / 12) < 1e-15
    assert abs(stats.angle_variance(3) - (math.pi**2 / 4 - 2)) < 1e-15
    # n = 10: psi_1(5) = pi^2/6 - 1 - 1/4 - 1/9 - 1/16
    expected = 0.5 * (math.pi**2 / 6 - 1 - 1 / 4 - 1 / 9 - 1 / 16)
    assert abs(stats.angle_variance(10) - expected) < 1e-15


@pytest.mark.parametrize("n", [10, 11, 20, 50, 100, 1000, 10_000])
def test_one_over_n_minus_one_is_accurate_to_order_n_cubed(n):
    assert abs(stats.angle_variance(n) - 1 / (n - 1)) < 1 / (2 * n**3)


@pytest.mark.parametrize("n", [3, 4, 5, 10, 20, 50, 100, 200, 1000])
def test_laplace_is_worse_than_one_over_n_minus_one(n):
    var = stats.angle_variance(n)
    assert abs(var - 1 / (n - 2)) > abs(var - 1 / (n - 1))


def test_variance_agrees_with_the_polygamma_series():
    n = 40
    x = n / 2
    series = 0.5 * (1 / x + 1 / (2 * x**2) + 1 / (6 * x**3) - 1 / (30 * x**5))
    assert abs(stats.angle_variance(n) - series) < 1e-9
    assert stats.angle_variance(n) == 0.5 * special.polygamma(1, x)


# --------------------------------------------------------------------------- Laplace


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_tensorflow_curvature_is_minus_n_minus_two(n):
    assert abs(stats.laplace_curvature(n) - (-(n - 2))) < 1e-5


def test_tensorflow_curvature_away_from_the_mode():
    at = 1.0
    assert abs(stats.laplace_curvature(12, at=at) + 10 / math.sin(at) ** 2) < 1e-9


# --------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("dist", stats.DISTRIBUTIONS)
def test_sample_angles_is_deterministic_and_in_range(dist):
    a = stats.sample_angles(7, 500, seed=3, dist=dist, chunk=128)
    b = stats.sample_angles(7, 500, seed=3, dist=dist, chunk=128)
    c = stats.sample_angles(7, 500, seed=4, dist=dist, chunk=128)
    assert a.shape == (500,) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all((a >= 0.0) & (a <= math.pi)) and np.all(np.isfinite(a))


def test_sample_angles_and_cosines_agree():
    cos = stats.sample_cosines(5, 300, seed=11)
    ang = stats.sample_angles(5, 300, seed=11)
    np.testing.assert_allclose(np.cos(ang), cos, atol=1e-12)
    assert stats.sample_angles(5, 0, seed=1).shape == (0,)


def test_gaussian_sample_follows_the_density():
    n, num = 10, 4000
    angles = stats.sample_angles(n, num, seed=0)
    assert sps.kstest(angles, lambda t: stats.angle_cdf(t, n)).pvalue > 1e-3
    assert abs(angles.var() / stats.angle_variance(n) - 1) < 4 * math.sqrt(2 / num)


def test_rademacher_cosines_are_discrete():
    cos = stats.sample_cosines(3, 400, seed=0, dist="rademacher")
    assert set(np.round(cos * 3).astype(int)) <= {-3, -1, 1, 3}


def test_seed_generator_is_accepted():
    import keras

    gen = keras.random.SeedGenerator(5)
    first = stats.sample_angles(4, 50, seed=gen)
    second = stats.sample_angles(4, 50, seed=gen)
    assert not np.array_equal(first, second)  # the generator's state advanced


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [1, 0, -3, 2.5, 3.0, "3", True, None])
@pytest.mark.parametrize(
    "call",
    [
        lambda n: stats.angle_pdf(1.0, n),
        lambda n: stats.angle_cdf(1.0, n),
        lambda n: stats.cos_pdf(0.0, n),
        stats.angle_variance,
        stats.angle_variance_quad,
        stats.laplace_curvature,
        lambda n: stats.sample_angles(n, 10),
    ],
)
def test_bad_dimension_raises(call, bad):
    with pytest.raises(ValueError, match=r"\bn must be an integer dimension >= 2, got"):
        call(bad)


def test_bad_sampling_arguments_raise():
    with pytest.raises(ValueError, match=r"num must be .*got -1"):
        stats.sample_angles(3, -1)
    with pytest.raises(ValueError, match=r"num must be .*got 2\.0"):
        stats.sample_angles(3, 2.0)
    with pytest.raises(ValueError, match=r"dist must be one of .*got 'cauchy'"):
        stats.sample_angles(3, 10, dist="cauchy")
    with pytest.raises(ValueError, match=r"seed must be .*got -2"):
        stats.sample_angles(3, 10, seed=-2)
    with pytest.raises(ValueError, match=r"chunk must be .*got 0"):
        stats.sample_angles(3, 10, chunk=0)
    with pytest.raises(ValueError, match=r"at must be an angle"):
        stats.laplace_curvature(5, at=0.0)
    with pytest.raises(ValueError, match=r"theta must be real numbers"):
        stats.angle_pdf("abc", 3)


# --- both tails of the angle's distribution, to full relative precision ---------------------

PI_ERROR = 1.2246467991473532e-16  # pi - math.pi: the float pi is this much below pi


def test_angle_cdf_keeps_precision_near_pi():
    # n = 2: the angle is uniform on [0, pi], so P(theta > t) = (pi - t) / pi exactly.
    t = math.pi - 2.0**-27  # 7.45e-9 below the float pi
    upper = (2.0**-27 + PI_ERROR) / math.pi
    assert stats.angle_cdf(t, 2) < 1.0
    assert abs(stats.angle_sf(t, 2) - upper) <= 1e-12 * upper
    assert abs(stats.angle_cdf(math.pi - 1e-8, 2) - 0.9999999968169011) < 1e-15
    # n = 3: P(theta <= t) = sin^2(t/2) and P(theta > t) = cos^2(t/2).
    assert abs(stats.angle_sf(t, 3) - math.cos(t / 2) ** 2) <= 1e-12 * math.cos(t / 2) ** 2


@pytest.mark.parametrize("n", [2, 3, 5, 50, 500, 5000])
def test_both_tails_match_high_precision_values(n):
    """Lower tail near 0 and below pi/2, upper tail at the mirror points, against mpmath."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    a = mpmath.mpf(n - 1) / 2
    sd = 1 / math.sqrt(n)
    checked = 0
    for s in [1e-8, 1e-3, 0.3, math.pi / 2 - 6 * sd, math.pi / 2 - sd, math.pi / 2]:
        if not 0 < s <= math.pi / 2:
            continue
        # P(theta <= s) = I(sin^2(s/2); a, a) at the float s, to 50 digits.
        lower = mpmath.betainc(a, a, 0, mpmath.sin(mpmath.mpf(s) / 2) ** 2, regularized=True)
        if lower < 1e-250:  # below what a float64 tail can hold
            continue
        assert abs(stats.angle_cdf(s, n) - lower) <= 1e-12 * lower, (n, s)
        # The mirror point t = pi - s (as a float): P(theta > t) = P(theta < pi - t).
        t = math.pi - s
        upper = mpmath.betainc(a, a, 0, mpmath.sin((mpmath.pi - mpmath.mpf(t)) / 2) ** 2,
                               regularized=True)
        assert abs(stats.angle_sf(t, n) - upper) <= 1e-12 * upper, (n, t)
        assert abs(stats.angle_cdf(s, n) + stats.angle_sf(s, n) - 1) < 1e-15
        checked += 1
    assert checked >= 2


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="float64 is native on this backend")
def test_sampling_refuses_jax_without_64_bit_mode():
    import jax

    was = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="JAX_ENABLE_X64"):
            stats.sample_cosines(5, 10, seed=0)
    finally:
        jax.config.update("jax_enable_x64", was)


# --------------------------------------------------------------------------- HSIC and CKA
# References: brute-force loops over the samples, the explicit triple sum of the three
# expectation terms against the trace form, the eigen-decomposition identity, scipy distances.


def _hsic_pair(seed=0, n=7, dx=1, dy=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx))
    y = np.tanh(x[:, :1]) + 0.5 * rng.normal(size=(n, dy))
    return x, y


def _gram_loop(x, sigma):
    n = len(x)
    K = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            K[i, j] = math.exp(-np.sum((x[i] - x[j]) ** 2) / (2 * sigma**2))
    return K


def _hsic_biased_double_loop(K, L):
    """(1/n²) Σ_ij (HKH)_ij L_ij, every centred entry from explicit sums."""
    n = len(K)
    total, grand = 0.0, sum(K[q, r] for q in range(n) for r in range(n)) / n**2
    for i in range(n):
        for j in range(n):
            row = sum(K[i, q] for q in range(n)) / n
            col = sum(K[q, j] for q in range(n)) / n
            total += (K[i, j] - row - col + grand) * L[i, j]
    return total / n**2


def _hsic_triple_sum(K, L):
    """The three expectation terms as explicit sums: joint, product of marginals, cross."""
    n = len(K)
    r = range(n)
    joint = sum(K[i, j] * L[i, j] for i in r for j in r) / n**2
    marginals = sum(K[i, j] for i in r for j in r) * sum(L[q, s] for q in r for s in r) / n**4
    cross = sum(K[i, j] * L[i, q] for i in r for j in r for q in r) / n**3
    return joint + marginals - 2 * cross


def _hsic_unbiased_brute(K, L):
    """Mean of K_ij L_ij + K_ij L_qr - 2 K_ij L_iq over ordered 4-tuples of distinct indices."""
    import itertools

    n = len(K)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
        count += 1
    return total / count


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hsic_biased_matches_double_loop_triple_sum_and_trace(seed):
    x, y = _hsic_pair(seed)
    sx, sy = 0.8, 1.3
    K, L = _gram_loop(x, sx), _gram_loop(y, sy)
    np.testing.assert_allclose(stats.gram_matrix(x, sigma=sx), K, rtol=1e-13, atol=1e-15)
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    trace = np.trace(K @ H @ L @ H) / n**2
    ours = stats.hsic(x, y, sigma=(sx, sy))
    for reference in (_hsic_biased_double_loop(K, L), _hsic_triple_sum(K, L), trace):
        assert ours == pytest.approx(reference, rel=1e-10)
    assert stats.hsic_gram(K, L) == pytest.approx(ours, rel=1e-12)
    article = stats.hsic(x, y, estimator="article", sigma=(sx, sy))
    assert article * (n - 1) ** 2 / n**2 == pytest.approx(ours, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_hsic_unbiased_matches_the_u_statistic_over_distinct_4_tuples(seed):
    x, y = _hsic_pair(seed, n=8)
    K, L = stats.gram_matrix(x, sigma=1.0), stats.gram_matrix(y, sigma=1.0)
    assert stats.hsic_gram(K, L, "unbiased") == pytest.approx(_hsic_unbiased_brute(K, L),
                                                              rel=1e-10)
    assert stats.hsic(x, y, estimator="unbiased", sigma=1.0) == pytest.approx(
        _hsic_unbiased_brute(K, L), rel=1e-10)
    # n = 4 is the smallest sample: a single set of four indices
    K4, L4 = K[:4, :4], L[:4, :4]
    assert stats.hsic_gram(K4, L4, "unbiased") == pytest.approx(_hsic_unbiased_brute(K4, L4),
                                                                rel=1e-10)


def test_hsic_eigen_form():
    """tr(KHLH) = Σ_ij α_i β_j (p_iᵀ H q_j)² with the Gram eigenpairs."""
    x, y = _hsic_pair(3, n=9)
    K, L = stats.gram_matrix(x), stats.gram_matrix(y)
    a, P = np.linalg.eigh(K)
    b, Q = np.linalg.eigh(L)
    n = len(K)
    H = np.eye(n) - np.ones((n, n)) / n
    eigen = np.sum(a[:, None] * b[None, :] * (P.T @ H @ Q) ** 2) / n**2
    assert stats.hsic_gram(K, L) == pytest.approx(eigen, rel=1e-10)


def test_gram_matrix_and_median_bandwidth_against_scipy():
    from scipy.spatial.distance import cdist, pdist

    x = np.random.default_rng(4).normal(size=(30, 3))
    sigma = 0.7
    np.testing.assert_allclose(stats.gram_matrix(x, sigma=sigma),
                               np.exp(-cdist(x, x, "sqeuclidean") / (2 * sigma**2)), rtol=1e-12)
    np.testing.assert_allclose(stats.gram_matrix(x, "linear"), x @ x.T, rtol=1e-14)
    assert stats.median_bandwidth(x) == pytest.approx(np.median(pdist(x)), rel=1e-12)
    np.testing.assert_allclose(stats.gram_matrix(x), stats.gram_matrix(
        x, sigma=float(np.median(pdist(x)))), rtol=1e-12)
    # a 1-D sample is n scalars
    z = x[:, 0]
    np.testing.assert_allclose(stats.gram_matrix(z, sigma=1.0),
                               stats.gram_matrix(z[:, None], sigma=1.0), rtol=1e-14)


def test_linear_hsic_is_the_squared_cross_covariance():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    y[:, 0] += x[:, 1]
    cxy = (x - x.mean(0)).T @ (y - y.mean(0)) / len(x)
    assert stats.hsic(x, y, kernel="linear") == pytest.approx(np.sum(cxy**2), rel=1e-10)


@pytest.mark.parametrize("estimator", ["biased", "article", "unbiased"])
def test_hsic_test_matches_a_loop_over_the_same_permutations(estimator):
    rng = np.random.default_rng(6)
    x = rng.normal(size=40)
    y = x**2 + 0.5 * rng.normal(size=40)
    result = stats.hsic_test(x, y, permutations=60, seed=11, estimator=estimator, sigma=1.0)
    perms = np.random.default_rng(11)
    null = np.array([stats.hsic(x, y[perms.permutation(40)], estimator=estimator, sigma=1.0)
                     for _ in range(60)])
    np.testing.assert_allclose(result.null, null, rtol=1e-10, atol=1e-15)
    assert result.statistic == pytest.approx(stats.hsic(x, y, estimator=estimator, sigma=1.0))
    assert result.p_value == pytest.approx((1 + np.sum(null >= result.statistic)) / 61)
    assert result.p_value == pytest.approx(1 / 61)  # a strong dependence beats every shuffle


def test_hsic_test_is_calibrated_under_independence():
    rng = np.random.default_rng(7)
    pvalues = [stats.hsic_test(rng.normal(size=30), rng.normal(size=30), permutations=49,
                               seed=s).p_value for s in range(200)]
    assert 0.02 <= np.mean(np.asarray(pvalues) <= 0.1) <= 0.2
    assert all(0 < p <= 1 for p in pvalues)


def test_cka_linear_closed_form_and_invariances():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(60, 5))
    y = x @ rng.normal(size=(5, 4)) + 0.3 * rng.normal(size=(60, 4))
    xc, yc = x - x.mean(0), y - y.mean(0)
    closed = np.sum((yc.T @ xc) ** 2) / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert stats.cka(x, y) == pytest.approx(closed, rel=1e-10)
    assert stats.cka(x, x) == pytest.approx(1.0, rel=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert stats.cka(3.0 * x @ q + 1.0, y) == pytest.approx(closed, rel=1e-10)
    stretched = x * np.array([10.0, 1, 1, 1, 0.1])  # not orthogonal: CKA changes
    assert abs(stats.cka(stretched, y) - closed) > 1e-3
    value = stats.cka(x, y, kernel="gaussian")
    assert 0 < value < 1
    assert stats.cka(x, y, estimator="unbiased") == pytest.approx(
        stats.hsic(x, y, "linear", "unbiased") / math.sqrt(
            stats.hsic(x, x, "linear", "unbiased") * stats.hsic(y, y, "linear", "unbiased")))


@pytest.mark.parametrize("kernel", ["gaussian", "linear"])
def test_hsic_ops_matches_the_numpy_estimator(kernel):
    x, y = _hsic_pair(9, n=200, dx=3, dy=2)
    ref = stats.hsic(x, y, kernel=kernel, sigma=1.3)
    dtype = "float64" if keras.backend.backend() != "jax" or _jax_x64() else "float32"
    got = float(keras.ops.convert_to_numpy(stats.hsic_ops(
        keras.ops.convert_to_tensor(x, dtype), keras.ops.convert_to_tensor(y, dtype),
        kernel=kernel, sigma=1.3)))
    assert got == pytest.approx(ref, rel=1e-10 if dtype == "float64" else 1e-4)
    got32 = float(keras.ops.convert_to_numpy(stats.hsic_ops(
        x.astype("float32"), y.astype("float32"), kernel=kernel, sigma=1.3)))
    assert got32 == pytest.approx(ref, rel=1e-4)
    one_d = float(keras.ops.convert_to_numpy(stats.hsic_ops(x[:, 0], y[:, 0], sigma=1.3)))
    assert one_d == pytest.approx(stats.hsic(x[:, 0], y[:, 0], sigma=1.3), rel=1e-4)


def _jax_x64():
    import jax

    return bool(jax.config.jax_enable_x64)


@pytest.mark.tensorflow_only
def test_hsic_ops_gradient_matches_finite_differences():
    import tensorflow as tf

    x, y = _hsic_pair(10, n=50, dx=2, dy=1)
    w = tf.Variable([0.6, -0.8], dtype=tf.float64)
    with tf.GradientTape() as tape:
        value = stats.hsic_ops(tf.linalg.matvec(tf.constant(x), w), tf.constant(y), sigma=0.9)
    grad = tape.gradient(value, w).numpy()
    eps = 1e-6
    for k in range(2):
        e = np.zeros(2)
        e[k] = eps
        fd = (stats.hsic(x @ (w.numpy() + e), y, sigma=0.9)
              - stats.hsic(x @ (w.numpy() - e), y, sigma=0.9)) / (2 * eps)
        assert grad[k] == pytest.approx(fd, rel=1e-6, abs=1e-10)


def test_hsic_is_near_zero_for_independent_and_large_for_dependent_samples():
    rng = np.random.default_rng(12)
    x, z = rng.normal(size=1000), rng.normal(size=1000)
    y = x + 0.1 * z
    s = 1 / math.sqrt(2)  # exp(-(a - b)²), the article's kernel
    indep = stats.hsic(x, z, estimator="article", sigma=s)
    dep = stats.hsic(x, y, estimator="article", sigma=s)
    assert 0 < indep < 1e-3 and 0.085 < dep < 0.105
    assert abs(stats.hsic(x, z, estimator="unbiased", sigma=s)) < 3e-4


# ------------------------------------------------------------------ random matrices: WᵀW and MP

MP_CASES = [(0.25, 1.0), (1.0, 1.0), (1.0, 0.5), (3.0, 2.0)]


def _mc_gram(m, n, dist, variance, draws):
    ws = np.stack([stats.sample_matrix(m, n, dist, variance, seed=s) for s in range(draws)])
    g = np.swapaxes(ws, 1, 2) @ ws
    diag = np.diagonal(g, axis1=1, axis2=2)
    off = g[:, ~np.eye(n, dtype=bool)]
    return diag, off, stats.orthogonality_mse(ws)


@pytest.mark.parametrize("dist", sorted(stats.ENTRY_DISTRIBUTIONS))
@pytest.mark.parametrize("m,n,variance", [(40, 40, None), (60, 20, 0.03), (15, 30, None)])
def test_gram_moments_against_monte_carlo(dist, m, n, variance):
    exact = stats.gram_moments(m, n, dist, variance)
    diag, off, mse = _mc_gram(m, n, dist, variance, 400)
    s2 = 1 / m if variance is None else variance
    assert abs(diag.mean() - exact["diag_mean"]) < 4 * math.sqrt(exact["diag_var"] / diag.size) + 1e-12
    assert abs(off.mean()) < 4 * math.sqrt(exact["offdiag_var"] / off.size)
    assert abs(off.var() / exact["offdiag_var"] - 1) < 0.03
    if dist == "rademacher":   # w² = σ² exactly: the diagonal is m σ², no spread
        np.testing.assert_allclose(diag, m * s2, rtol=1e-12)
    else:
        assert abs(diag.var() / exact["diag_var"] - 1) < 0.1
    assert abs(mse.mean() / exact["mse"] - 1) < 0.03


def test_gram_moments_square_closed_forms():
    for n in (10, 100, 1000):
        got = {d: stats.gram_moments(n, n, d)["mse"] for d in stats.ENTRY_DISTRIBUTIONS}
        assert got["gaussian"] == pytest.approx((n + 1) / n**2, rel=1e-12)
        assert got["uniform"] == pytest.approx((n - 0.2) / n**2, rel=1e-12)
        assert got["rademacher"] == pytest.approx((n - 1) / n**2, rel=1e-12)
    g = stats.gram_moments(100, 100, "uniform")
    assert g["diag_var"] == pytest.approx(4 / (5 * 100)) and g["offdiag_var"] == pytest.approx(0.01)


def test_orthogonality_mse_against_a_loop():
    w = np.random.default_rng(0).normal(size=(3, 7, 5))
    loop = [sum((sum(wk[r, i] * wk[r, j] for r in range(7)) - (i == j)) ** 2
                for i in range(5) for j in range(5)) / 25 for wk in w]
    np.testing.assert_allclose(stats.orthogonality_mse(w), loop, rtol=1e-12)
    assert isinstance(stats.orthogonality_mse(w[0]), float)


@pytest.mark.parametrize("dist", [*sorted(stats.ENTRY_DISTRIBUTIONS), "orthogonal"])
def test_sample_matrix_variance_and_orthogonal_case(dist):
    w = stats.sample_matrix(300, 200, dist, variance=0.01, seed=1)
    assert w.shape == (300, 200) and w.dtype == np.float64
    assert abs(w.mean()) < 4 * 0.1 / math.sqrt(w.size)
    assert abs(np.mean(w**2) / 0.01 - 1) < 0.02
    np.testing.assert_array_equal(w, stats.sample_matrix(300, 200, dist, variance=0.01, seed=1))
    if dist == "orthogonal":
        np.testing.assert_allclose(w.T @ w, 3.0 * np.eye(200), atol=1e-12)   # m σ² = 3
        wide = stats.sample_matrix(20, 50, "orthogonal", seed=2)                # σ² = 1/20
        np.testing.assert_allclose(wide @ wide.T, 2.5 * np.eye(20), atol=1e-12)  # n σ² = 2.5
        np.testing.assert_allclose(stats.orthogonality_mse(stats.sample_matrix(50, 50, dist)),
                                   0.0, atol=1e-28)


@pytest.mark.parametrize("ratio,variance", MP_CASES)
def test_marchenko_pastur_mass_and_moments_by_quadrature(ratio, variance):
    a, b = stats.marchenko_pastur_support(ratio, variance)

    def moment(k):
        return integrate.quad(lambda x: x**k * stats.marchenko_pastur_pdf(x, ratio, variance),
                              a, b, limit=200, epsabs=1e-13)[0]

    assert moment(0) == pytest.approx(min(1.0, 1.0 / ratio), abs=1e-9)
    assert moment(1) == pytest.approx(variance, rel=1e-9)                       # E x = σ²
    assert moment(2) == pytest.approx(variance**2 * (1 + ratio), rel=1e-8)      # σ⁴ (1 + y)
    assert stats.marchenko_pastur_pdf(a - 1e-9, ratio, variance) == 0.0
    assert stats.marchenko_pastur_pdf(b + 1e-9, ratio, variance) == 0.0


@pytest.mark.parametrize("ratio,variance", MP_CASES)
def test_marchenko_pastur_cdf_closed_form_against_quadrature(ratio, variance):
    a, b = stats.marchenko_pastur_support(ratio, variance)
    atom = max(0.0, 1 - 1 / ratio)
    xs = np.linspace(a, b, 13)[1:-1]
    quad = [atom + integrate.quad(lambda x: stats.marchenko_pastur_pdf(x, ratio, variance),
                                  a, t, limit=200, epsabs=1e-13)[0] for t in xs]
    np.testing.assert_allclose(stats.marchenko_pastur_cdf(xs, ratio, variance), quad, atol=1e-10)
    assert stats.marchenko_pastur_cdf(-1.0, ratio, variance) == 0.0
    assert stats.marchenko_pastur_cdf(b * 1.01, ratio, variance) == pytest.approx(1.0, abs=1e-12)
    assert stats.marchenko_pastur_cdf(0.0, ratio, variance) == pytest.approx(atom, abs=1e-12)


@pytest.mark.parametrize("m,n", [(800, 400), (500, 500), (200, 600)])
def test_marchenko_pastur_against_sampled_singular_values(m, n):
    w = stats.sample_matrix(m, n, "gaussian", seed=4)
    sv2 = np.linalg.svd(w, compute_uv=False) ** 2
    ev = np.concatenate([sv2, np.zeros(n - len(sv2))])   # WᵀW has n - m zero eigenvalues if n > m
    y = n / m
    a, b = stats.marchenko_pastur_support(y)
    if y <= 1:
        assert sps.kstest(ev, lambda x: stats.marchenko_pastur_cdf(x, y)).pvalue > 1e-3
    else:   # KS needs a continuous law: the non-zero part, i.e. WWᵀ, is MP with 1/y and σ² y
        assert sps.kstest(sv2, lambda x: stats.marchenko_pastur_cdf(x, 1 / y, y)).pvalue > 1e-3
        # and the atom: the law of WᵀW puts 1 - 1/y at zero, then the same continuous part
        x = np.linspace(a, b, 9)
        np.testing.assert_allclose(
            stats.marchenko_pastur_cdf(x, y),
            1 - 1 / y + stats.marchenko_pastur_cdf(x, 1 / y, y) / y, atol=1e-12)
    assert ev.mean() == pytest.approx(1.0, rel=0.01)
    assert np.mean(ev**2) == pytest.approx(1 + y, rel=0.03)
    assert sv2.max() < b * 1.05 and (y == 1 or sv2.min() > a * 0.9)


def test_cka_gram_matches_cka_from_samples():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    y[:, 0] += np.sin(x[:, 0])
    for kernel in stats.HSIC_KERNELS:
        K, L = stats.gram_matrix(x, kernel, sigma=1.1), stats.gram_matrix(y, kernel, sigma=0.7)
        assert stats.cka_gram(K, L) == pytest.approx(
            stats.cka(x, y, kernel=kernel, sigma=(1.1, 0.7)), rel=1e-12)
        assert stats.cka_gram(K, K) == pytest.approx(1.0, rel=1e-12)


# ------------------------------------------------------------------------ moving_average


def test_moving_average_is_the_mean_of_each_window():
    v = np.arange(20.0) ** 2
    avg, w = stats.moving_average(v, 3)
    assert w == 3 and avg.shape == (18,)
    np.testing.assert_allclose(avg, [v[i:i + 3].mean() for i in range(18)])


def test_moving_average_shrinks_the_window_on_short_curves():
    avg, w = stats.moving_average(np.ones(12), 50)  # 12 // 5 = 2
    assert w == 2 and avg.shape == (11,)
    avg, w = stats.moving_average(np.ones(12), 50, parts=3)
    assert w == 4
    avg, w = stats.moving_average([4.0, 2.0], 10)  # shorter than parts: no smoothing
    assert w == 1 and list(avg) == [4.0, 2.0]
