"""kexue.mechanics: the rotating rope against closed forms, the ODEs and each other."""

import math

import keras
import numpy as np
import pytest
from kexue import mechanics as M
from kexue.mechanics import chain
from scipy import integrate, special
from scipy.interpolate import interp1d

F64 = keras.backend.backend() != "jax" or __import__("jax").config.jax_enable_x64
needs_f64 = pytest.mark.skipif(not F64, reason="float64 on JAX needs JAX_ENABLE_X64=1")


def test_chain_positions_keep_every_link_length():
    theta = np.random.default_rng(0).uniform(-3, 3, 17)
    p = np.asarray(M.chain_positions(theta, 2.5, (0.3, -1.0)))
    assert p.shape == (18, 2)
    np.testing.assert_allclose(p[0], [0.3, -1.0])
    np.testing.assert_allclose(np.hypot(*np.diff(p, axis=0).T), 2.5 / 17, rtol=1e-12)


@needs_f64
@pytest.mark.parametrize("geometry", M.GEOMETRIES)
def test_energy_and_gradients_agree(geometry):
    """keras.ops energy = NumPy energy; hand gradient = finite differences = backend autodiff."""
    theta = np.random.default_rng(1).uniform(-3, 3, 12)
    args = (1.7, 1.3, 2.0)
    anchor = np.array([0.4, -0.2])
    col = M.GEOMETRIES.index(geometry)
    value, grad = chain._energy_and_grad_np(theta, *args, anchor, col)
    ops_value = float(np.asarray(M.chain_energy(theta, *args, anchor, geometry)))
    assert ops_value == pytest.approx(value, rel=1e-13, abs=1e-14)
    eps = 1e-6
    fd = [(chain._energy_and_grad_np(theta + eps * e, *args, anchor, col)[0]
           - chain._energy_and_grad_np(theta - eps * e, *args, anchor, col)[0]) / (2 * eps)
          for e in np.eye(theta.size)]
    np.testing.assert_allclose(grad, fd, atol=1e-8)
    auto = chain._value_and_grad(lambda t: M.chain_energy(t, *args, anchor, geometry))(theta)[1]
    np.testing.assert_allclose(auto, grad, atol=1e-13)


def test_energy_of_a_straight_hanging_chain():
    """Hanging straight down from the origin: U = −g L²/2 − 0 (no distance from the axis)."""
    theta = M.hanging_angles(10, tilt=0.0)
    assert float(np.asarray(M.chain_energy(theta, 2.0, 3.0, 1.5))) == pytest.approx(-1.5 * 2.0)


def test_arc_angles_reach_the_target():
    theta = M.arc_angles(30, 3.0, (-1.0, 0.5), (1.2, 0.0))
    p = np.asarray(M.chain_positions(theta, 3.0, (-1.0, 0.5)))
    np.testing.assert_allclose(p[-1], [1.2, 0.0], atol=1e-12)
    assert p[1:-1, 1].max() < 0.5  # side=-1 sags below the chord


def test_catenary_parameter_and_sag():
    a = M.catenary_parameter(2.0, 3.0)
    assert 2 * a * math.sinh(1 / a) == pytest.approx(3.0, rel=1e-14)
    assert a == pytest.approx(0.616473, abs=1e-6)
    assert a * math.cosh(1 / a) - a == pytest.approx(1.005267, abs=1e-6)


def test_catenary_chain_and_shooting_against_the_analytic_curve():
    a = M.catenary_parameter(2.0, 3.0)
    exact = lambda x: M.catenary(x, a) - a * math.cosh(1 / a)  # noqa: E731
    chain = M.solve_chain(60, 3.0, 0.0, 1.0, (-1.0, 0.0), (1.0, 0.0))
    assert chain.constraint_error < 1e-8
    assert np.abs(chain.positions[:, 1] - exact(chain.positions[:, 0])).max() < 3e-4
    shot = M.shoot_rope(3.0, 0.0, 1.0, (-1.0, 0.0), (1.0, 0.0), n_points=101)
    assert shot["miss"] < 1e-12
    x, y = shot["positions"].T
    assert np.abs(y - exact(x)).max() < 1e-9
    # the tension of a hanging chain is g times the height above the directrix: T = y − y_low + a
    np.testing.assert_allclose(shot["tension"], y - exact(0.0) + a, atol=1e-9)


def test_troposkien_closed_form_shooting_and_first_integral():
    shape = M.troposkien(1.0, 3.0, omega=1.0)
    s, p = shape.curve(2001)
    assert s[-1] == pytest.approx(3.0, rel=1e-13)
    np.testing.assert_allclose(np.hypot(*np.diff(p, axis=0).T).sum(), 3.0, rtol=1e-6)
    assert p[:, 1].min() == pytest.approx(-shape.R, rel=1e-13)
    assert (shape.T0, shape.R) == pytest.approx((1.035687, 1.031409), abs=1e-6)
    shot = M.shoot_rope(3.0, 1.0, 0.0, (-1.0, 0.0), (1.0, 0.0), geometry="skip", n_points=2001)
    assert shot["miss"] < 1e-12
    assert np.abs(shot["positions"] - interp1d(s, p, axis=0, kind="cubic")(shot["s"])).max() < 1e-8
    # the first integral (T0 − ½ω²y²) x' = H, and T = T0 − ½ω²y², constant along the solution
    x, y = shot["positions"].T
    np.testing.assert_allclose(shot["tension"], shape.T0 - 0.5 * y**2, atol=1e-9)
    x_prime = np.gradient(x, shot["s"], edge_order=2)
    assert np.abs(shot["tension"] * x_prime - shape.H).max() < 2e-6  # finite differences
    # the shape does not depend on omega; the tensions scale with omega²
    fast = M.troposkien(1.0, 3.0, omega=3.0)
    assert fast.R == pytest.approx(shape.R) and fast.T0 == pytest.approx(9 * shape.T0)


def test_troposkien_chain_fits_the_first_integral_and_not_the_articles_form():
    chain = M.solve_chain(80, 3.0, 1.0, 0.0, (-1.0, 0.0), (1.0, 0.0), geometry="skip")
    t0, h, residual = M.troposkien_first_integral_fit(chain.positions, 1.0)
    shape = M.troposkien(1.0, 3.0)
    assert t0 == pytest.approx(shape.T0, rel=2e-3) and h == pytest.approx(shape.H, rel=2e-3)
    assert residual < 1e-3
    assert M.troposkien_first_integral_fit(chain.positions, 1.0, t0=0.0)[2] > 10 * residual


def test_gravity_shift_turns_the_skipping_rope_into_a_troposkien():
    omega, g = 4.0, 3.0
    shift = g / omega**2
    with_g = M.solve_chain(40, 3.0, omega, g, (-1, 0), (1, 0), geometry="skip")
    without = M.solve_chain(40, 3.0, omega, 0.0, (-1, -shift), (1, -shift), geometry="skip")
    assert np.abs(with_g.positions - without.positions - [0, shift]).max() < 1e-7


def test_rod_problem_chain_shooting_and_first_integral():
    chain = M.solve_chain(100, 0.5, 2.0, 3.0, (1.0, 0.0))
    np.testing.assert_allclose(chain.positions[-1], [1.43485, -0.24658], atol=5e-5)
    fi = M.rod_first_integral(chain.positions, 0.5, 2.0, 3.0)
    assert np.abs(fi["residual"]).max() / (3.0 * 0.5) < 1e-6
    assert fi["tension"].min() >= -1e-12
    shot = M.shoot_rope(0.5, 2.0, 3.0, (1.0, 0.0), n_points=101)
    assert shot["miss"] < 1e-12
    assert np.abs(shot["positions"] - interp1d(chain.s, chain.positions, axis=0)(shot["s"])).max() < 1e-5


@needs_f64
def test_keras_rope_matches_the_scipy_reference():
    rope = M.RopeChain(40, 0.5, 2.0, 3.0, anchor=(1.0, 0.0))
    sol = M.fit_rope(rope, steps=120, rounds=2, record_every=20)
    ref = M.solve_chain(40, 0.5, 2.0, 3.0, (1.0, 0.0))
    assert np.abs(sol.positions - ref.positions).max() < 1e-6
    assert sol.history.shape == (6, 2) and sol.history[-1, 1] < sol.history[0, 1]
    np.testing.assert_allclose(np.asarray(rope.theta), sol.theta)
    pinned = M.RopeChain(30, 3.0, 0.0, 1.0, anchor=(-1.0, 0.0), end=(1.0, 0.0))
    sol = M.fit_rope(pinned, steps=100, rounds=2)
    ref = M.solve_chain(30, 3.0, 0.0, 1.0, (-1.0, 0.0), (1.0, 0.0))
    assert sol.constraint_error < 1e-8 and np.abs(sol.positions - ref.positions).max() < 1e-6


def test_rope_chain_config_round_trip():
    rope = M.RopeChain(8, 1.0, 1.0, 2.0, anchor=(0.5, 0.0), end=(1.0, -0.5), penalty=10.0)
    again = M.RopeChain.from_config(rope.get_config())
    assert again.n_links == 8 and again.penalty == 10.0
    np.testing.assert_allclose(again.end, [1.0, -0.5])
    np.testing.assert_allclose(np.asarray(again.theta), np.asarray(rope.theta))


def test_hanging_chain_critical_speeds():
    exact = M.hanging_chain_omegas_exact(9.81, 2.0, 2)
    np.testing.assert_allclose(exact, special.jn_zeros(0, 2) / 2 * math.sqrt(9.81 / 2.0))
    assert exact[0] / math.sqrt(9.81 / 2) == pytest.approx(1.202413, abs=1e-6)
    errors = [abs(M.hanging_chain_omegas(n, 9.81, 2.0)[0] / exact[0] - 1) for n in (25, 50, 100)]
    assert errors[2] < 1e-5 and errors[0] > errors[1] > errors[2]


def test_below_and_above_the_first_critical_speed():
    w1 = M.hanging_chain_omegas_exact(1.0, 1.0)[0]
    below = M.solve_chain(60, 1.0, 0.9 * w1, 1.0)
    above = M.solve_chain(60, 1.0, 1.2 * w1, 1.0)
    assert np.abs(below.positions[:, 0]).max() < 1e-3 < 0.05 < np.abs(above.positions[:, 0]).max()


def test_listing_and_derived_first_integral_odes():
    s = np.linspace(0.0, 0.5, 2001)
    out = {}
    for listing in (False, True):
        sol = integrate.solve_ivp(M.first_integral_rhs, (0, 0.5), [1.0, 0.0], t_eval=s,
                                  args=(2.0, 3.0, 0.0, listing), rtol=1e-11, atol=1e-13,
                                  method="DOP853")
        slopes = np.array([M.first_integral_rhs(si, ui, 2.0, 3.0, 0.0, listing)
                           for si, ui in zip(s, sol.y.T)]).T
        out[listing] = M.euler_lagrange_residuals(s, *sol.y, 2.0, 3.0, *slopes)
    assert max(np.abs(out[False][k]).max() for k in ("R_x", "R_y")) < 1e-6
    assert np.abs(out[True]["R_x"]).max() == pytest.approx(7.0, abs=1e-6)
    assert np.abs(out[True]["normal"]).max() > 1
    assert np.abs(out[True]["tangential"]).max() < 1e-5  # E · t = 0 for any unit-speed curve


def test_rope_ode_rejects_zero_tension_and_bad_state():
    with pytest.raises(ValueError, match="zero tension"):
        M.rope_ode(0.0, [0, 0, 0, 0], 1.0, 1.0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        M.rope_ode(0.0, [0, 0, 1], 1.0, 1.0)


@pytest.mark.parametrize("call, arg", [
    (lambda: M.solve_chain(0, 1.0, 1.0, 1.0), "n_links"),
    (lambda: M.solve_chain(5, 1.0, -1.0, 1.0), "omega"),
    (lambda: M.solve_chain(5, 1.0, 1.0, 1.0, end=(3.0, 0.0)), "end"),
    (lambda: M.chain_energy(np.zeros(3), 1.0, 1.0, 1.0, geometry="loop"), "geometry"),
    (lambda: M.chain_positions(np.zeros((2, 2)), 1.0), "theta"),
    (lambda: M.catenary_parameter(2.0, 1.5), "length"),
    (lambda: M.troposkien(1.0, 1.5), "length"),
    (lambda: M.RopeChain(5, 1.0, 1.0, 1.0, initial_angles=np.zeros(4)), "initial_angles"),
    (lambda: M.fit_rope("rope"), "rope"),
])
def test_bad_input(call, arg):
    with pytest.raises((ValueError, TypeError), match=arg):
        call()
