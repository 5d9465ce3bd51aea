"""kexue.geometry: the ellipse by arc length, and the two sheets glued into a solid."""

import math

import keras
import numpy as np
import pytest
from kexue import geometry as G
from kexue.mechanics import chain
from scipy import integrate

AXES = [(1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (10.0, 1.0), (1.5, 0.2)]
F64 = keras.backend.backend() != "jax" or __import__("jax").config.jax_enable_x64


def _speed(t, a, b):
    return math.sqrt(a * a * math.sin(t) ** 2 + b * b * math.cos(t) ** 2)


@pytest.mark.parametrize("a, b", AXES)
def test_arc_length_against_quadrature(a, b):
    for t in (0.0, 0.3, 1.0, 0.5 * math.pi, 2.5):
        quad = integrate.quad(_speed, 0.0, t, args=(a, b), epsabs=1e-13, epsrel=1e-12)[0]
        assert float(G.ellipse_arc_length(t, a, b)) == pytest.approx(quad, rel=1e-10, abs=1e-12)
    assert G.ellipse_quarter_length(a, b) == pytest.approx(
        float(G.ellipse_arc_length(0.5 * math.pi, a, b)), rel=1e-14)


def test_circle_quarter_length():
    assert G.ellipse_quarter_length(3.0, 3.0) == pytest.approx(1.5 * math.pi, rel=1e-15)


@pytest.mark.parametrize("a, b", AXES)
def test_inverse_round_trip(a, b):
    quarter = G.ellipse_quarter_length(a, b)
    s = np.linspace(0.0, quarter, 1001)
    t = G.ellipse_param_at_arc(s, a, b)
    assert np.abs(G.ellipse_arc_length(t, a, b) - s).max() < 1e-10
    t2 = np.linspace(0, 0.5 * math.pi, 101)
    assert np.abs(G.ellipse_param_at_arc(G.ellipse_arc_length(t2, a, b), a, b) - t2).max() < 1e-10


def test_height_slope_against_central_differences():
    a, b = 2.0, 1.0
    s = np.linspace(0.05, G.ellipse_quarter_length(a, b) - 0.05, 9)
    eps = 1e-5
    fd = (G.ellipse_height(s + eps, a, b) - G.ellipse_height(s - eps, a, b)) / (2 * eps)
    np.testing.assert_allclose(G.ellipse_height_slope(s, a, b), fd, atol=1e-6)


@pytest.mark.parametrize("a", [1.0001, 1.5, 2.0, 4.0, 10.0])
def test_glue_condition_holds_and_vanishes_at_the_ends(a):
    quarter = G.ellipse_quarter_length(a, 1.0)
    c = G.glue_condition(np.linspace(0.0, quarter, 2001), a, 1.0)
    assert c.min() >= -1e-9
    assert abs(c[0]) < 1e-9 and abs(c[-1]) < 1e-9


def test_circles_lie_flat_and_no_quarter_shift_fails():
    c = G.glue_condition(np.linspace(0, G.ellipse_quarter_length(1.0, 1.0), 11), 1.0, 1.0)
    assert np.abs(c).max() < 1e-12
    assert G.solid_length(1.0, 1.0) < 1e-6
    assert float(G.glue_condition(0.0, 2.0, 1.0, quarter_shift=False)) == pytest.approx(-1.0)


def test_length_and_volume_for_a_2_b_1():
    for n in (4001, 20001):
        assert G.solid_length(2.0, 1.0, n_points=n) == pytest.approx(1.569757, abs=1e-6)
        assert G.solid_volume(2.0, 1.0, n_points=n) == pytest.approx(3.167464, abs=1e-6)


def test_ellipse_glued_to_a_circle():
    radius = 2 * G.ellipse_quarter_length(2.0, 1.0) / math.pi
    rim = G.rim_curve(2.0, 1.0, 2001, other=(radius, radius))
    assert rim["C"].min() >= -1e-9
    with pytest.raises(ValueError, match="quarter length"):
        G.glue_condition(0.1, 2.0, 1.0, other=(1.0, 1.0))


def test_isometry_of_the_bent_sheets():
    rim = G.rim_curve(2.0, 1.0, 20001)
    # sheet A's folded half major axis (x(s), 0, h(l − s)) keeps the length a
    assert np.hypot(np.diff(rim["x"]), np.diff(rim["z"])).sum() == pytest.approx(2.0, rel=1e-6)
    meshes = G.sheet_meshes(2.0, 1.0, 201, 9)
    for faces in meshes.values():
        assert sum(G.surface_area(*f) for f in faces) == pytest.approx(2 * math.pi, rel=1e-4)


def test_surface_area_of_a_flat_rectangle():
    x, y = np.meshgrid(np.linspace(0, 2, 5), np.linspace(0, 3, 4))
    assert G.surface_area(x, y, np.zeros_like(x)) == pytest.approx(6.0)


def test_article_height_grid_route():
    grid = G.arc_length_from_height_grid(2.0, 1.0, 1e-4)
    assert grid["C"].min() > -10 * 1e-4
    assert grid["l"] == pytest.approx(G.ellipse_quarter_length(2.0, 1.0), abs=5e-2)


@pytest.mark.skipif(not F64, reason="float64 on JAX needs JAX_ENABLE_X64=1")
def test_keras_ops_arc_length_inverse_and_autodiff_slope():
    a, b = 2.0, 1.0
    t = np.linspace(0, 0.5 * math.pi, 7)
    ops_s = np.asarray(G.ellipse_arc_length_ops(t, a, b))
    np.testing.assert_allclose(ops_s, G.ellipse_arc_length(t, a, b), atol=1e-12)
    s = np.linspace(0.1, G.ellipse_quarter_length(a, b) - 0.1, 7)
    np.testing.assert_allclose(np.asarray(G.ellipse_param_at_arc_ops(s, a, b)),
                               G.ellipse_param_at_arc(s, a, b), atol=1e-12)

    def total_height(x):  # keras.ops.sin would round to float32 on JAX, see G._cos_sin
        return keras.ops.sum(b * G._cos_sin(G.ellipse_param_at_arc_ops(x, a, b))[1])

    slope = chain._value_and_grad(total_height)(s)[1]
    np.testing.assert_allclose(slope, G.ellipse_height_slope(s, a, b), atol=1e-8)


def test_isometric_rim_recovers_the_length():
    model = G.IsometricRim(2.0, 1.0, 60)
    model.compile(optimizer=keras.optimizers.Adam(0.1, beta_2=0.9), steps_per_execution=50)
    model.fit(np.zeros((600, 1)), batch_size=1, epochs=1, verbose=0)
    x = np.asarray(model.x())
    assert x.shape == (61,) and np.all(np.diff(x) > 0)
    assert x[-1] == pytest.approx(G.solid_length(2.0, 1.0), abs=5e-3)
    again = G.IsometricRim.from_config(model.get_config())
    assert again.n_segments == 60


@pytest.mark.parametrize("call, arg", [
    (lambda: G.ellipse_arc_length(0.1, -1.0, 1.0), "a"),
    (lambda: G.ellipse_quarter_length(1.0, 0.0), "b"),
    (lambda: G.ellipse_param_at_arc(5.0, 2.0, 1.0), "s"),
    (lambda: G.glue_condition(0.1, 2.0, 1.0, other=3.0), "other"),
    (lambda: G.rim_curve(2.0, 1.0, 2), "n_points"),
    (lambda: G.surface_area(np.zeros((3, 3)), np.zeros((3, 2)), np.zeros((3, 3))), "y"),
    (lambda: G.arc_length_from_height_grid(2.0, 1.0, 0.5), "step"),
    (lambda: G.IsometricRim(2.0, 1.0, 1), "n_segments"),
])
def test_bad_input(call, arg):
    with pytest.raises((ValueError, TypeError), match=arg):
        call()
