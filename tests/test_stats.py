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
