r"""The rope's equilibrium as ODEs: shooting on the tension vector, the article's first-integral
ODE (as derived and as listed), and the residuals that tell a solution from a curve.

Used in: book/curiosities/skipping-rope.md
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize

from kexue._checks import (
    as_array,
    check_bool,
    check_int,
    check_positive,
    check_real,
    describe,
)
from kexue.mechanics._common import (
    _check_reach,
    _force,
    _geometry,
    _link_means,
    _physics,
    _point,
)
from kexue.mechanics.chain import RopeSolution, solve_chain

__all__ = [
    "euler_lagrange_residuals",
    "first_integral_rhs",
    "rod_first_integral",
    "rope_ode",
    "shoot_rope",
    "troposkien_first_integral_fit",
]


def rope_ode(s, state, omega, g, geometry="rod"):
    """Right-hand side of the rope's equilibrium in terms of its tension vector.

    ``state = (x, y, tau_x, tau_y)`` with ``tau = T t`` (tension times unit tangent); then
    ``p' = tau / |tau|`` and ``tau' = −f``, ``f`` the force per unit length (``(ω² x, −g)`` for
    the rod, ``(0, ω² y − g)`` for the skipping rope). Returns shape ``(4,)``, for
    ``scipy.integrate.solve_ivp``.

    Used in: book/curiosities/skipping-rope.md
    """
    col = _geometry(geometry)
    state = as_array(state, "state", "float64")
    if state.shape != (4,):
        raise ValueError(f"state must have shape (4,) = (x, y, tau_x, tau_y), got shape "
                         f"{state.shape}.")
    tau = state[2:]
    norm = math.hypot(*tau)
    if norm == 0.0:
        raise ValueError("state has zero tension (tau = 0): the tangent is undefined there; "
                         "start a free end a small distance before its tip.")
    f = _force(state[:2], omega, g, col)
    return np.concatenate([tau / norm, -f])


def _tension_guess(sol: RopeSolution, omega, g, col):
    """Tension vector at the anchor of a discrete solution, from ``T κ = −f · n``."""
    theta = np.unwrap(sol.theta)
    step = sol.length / theta.size
    kappa = np.diff(theta) / step
    node = sol.positions[1:-1]
    normal_angle = 0.5 * (theta[1:] + theta[:-1]) + 0.5 * math.pi
    normal = np.stack([np.cos(normal_angle), np.sin(normal_angle)], 1)
    # (T t)' = −f and t' = kappa n give T kappa = −f · n
    tension = -np.sum(_force(node, omega, g, col) * normal, 1) / np.where(kappa == 0, np.inf,
                                                                          kappa)
    phi = 0.5 * omega**2 * node[:, col] ** 2 - g * node[:, 1]
    lam = -phi - tension  # T = −(phi + lambda) along the rope
    order = np.argsort(lam)
    weights = np.abs(kappa)[order]
    lam0 = lam[order][np.searchsorted(np.cumsum(weights), 0.5 * weights.sum())]
    p0 = sol.positions[0]
    t0 = -(0.5 * omega**2 * p0[col] ** 2 - g * p0[1] + lam0)
    return t0 * np.array([math.cos(theta[0]), math.sin(theta[0])])


def shoot_rope(length, omega, g, anchor=(0.0, 0.0), end=None, geometry="rod", guess=None,
               n_points=401, rtol=1e-11):
    """Solve the equilibrium ODE :func:`rope_ode` by shooting; returns a dict of arrays.

    Free far end (``end=None``): the unknown is the tip ``p(L)``, where the tension vanishes;
    the ODE is integrated backwards from just before the tip (tangent along the force there)
    to ``s = 0`` and the tip is moved until the curve starts at ``anchor``. Pinned far end:
    the unknown is the tension vector at the anchor, integrated forwards until the curve ends
    at ``end``. ``guess`` (shape ``(2,)``: the tip, or the anchor's tension vector) defaults
    to one read off a 64-link :func:`solve_chain`. Returns ``s`` ``(n_points,)``,
    ``positions`` ``(n_points, 2)``, ``tension`` ``(n_points,)`` and ``miss`` (the distance
    left at the shooting target).

    Used in: book/curiosities/skipping-rope.md
    """
    length = check_positive(length, "length")
    omega, g = _physics(omega, g)
    anchor = _point(anchor, "anchor")
    col = _geometry(geometry)
    n_points = check_int(n_points, "n_points", 2)
    rtol = check_real(rtol, "rtol", 1e-14, 1e-3)
    if end is not None:
        end = _point(end, "end")
        _check_reach(length, anchor, end)
    if guess is None:
        coarse = solve_chain(64, length, omega, g, anchor, end, geometry)
        guess = coarse.positions[-1] if end is None else _tension_guess(coarse, omega, g, col)
    guess = _point(guess, "guess")
    s_eval = np.linspace(0.0, length, n_points)
    opts = dict(method="DOP853", rtol=rtol, atol=rtol * 1e-2 * length)
    rhs = lambda s, u: rope_ode(s, u, omega, g, geometry)  # noqa: E731
    eps = 1e-7 * length

    if end is None:
        def start(tip):
            f = _force(tip, omega, g, col)
            norm = math.hypot(*f)
            if norm == 0.0:
                raise ValueError(f"no force acts at the tip {tip.tolist()}: a free end needs "
                                 f"omega > 0 or g > 0 there.")
            return np.concatenate([tip - eps * f / norm, eps * f])

        def miss(tip):
            sol = integrate.solve_ivp(rhs, (length - eps, 0.0), start(tip), **opts)
            return sol.y[:2, -1] - anchor

        tip = optimize.fsolve(miss, guess, xtol=1e-13)
        sol = integrate.solve_ivp(rhs, (length - eps, 0.0), start(tip), dense_output=True,
                                  **opts)
        inside = s_eval <= length - eps
        states = np.zeros((n_points, 4))
        states[inside] = sol.sol(s_eval[inside]).T
        states[~inside] = np.concatenate([tip, np.zeros(2)])
        left = float(np.hypot(*miss(tip)))
    else:
        def miss(tau0):
            sol = integrate.solve_ivp(rhs, (0.0, length), np.concatenate([anchor, tau0]), **opts)
            return sol.y[:2, -1] - end

        tau0 = optimize.fsolve(miss, guess, xtol=1e-13)
        sol = integrate.solve_ivp(rhs, (0.0, length), np.concatenate([anchor, tau0]),
                                  dense_output=True, **opts)
        states = sol.sol(s_eval).T
        left = float(np.hypot(*miss(tau0)))
    return {"s": s_eval, "positions": states[:, :2], "tension": np.hypot(*states[:, 2:].T),
            "miss": left}


def first_integral_rhs(s, state, omega, g, c1, listing=False):
    """The article's two-dimensional ODE for the rod, ``state = (x, y)``, shape ``(2,)``.

    With ``phi = ½ ω² x² − g y`` and ``q = (c1 − g s) / phi``, the first integral
    ``phi y' = c1 − g s`` gives ``y' = q`` and, from unit speed, ``x' = +sqrt(1 − q²)``.
    ``listing=True`` returns what the article's code integrates instead: ``x' = q`` and
    ``y' = −sqrt(1 − q²)``, the two components exchanged. Where ``|q| > 1`` the square root
    is taken of 0.

    Used in: book/curiosities/skipping-rope.md
    """
    state = as_array(state, "state", "float64")
    if state.shape != (2,):
        raise ValueError(f"state must have shape (2,) = (x, y), got shape {state.shape}.")
    omega, g = _physics(omega, g)
    c1 = check_real(c1, "c1")
    listing = check_bool(listing, "listing")
    x, y = state
    phi = 0.5 * omega**2 * x * x - g * y
    if phi == 0.0:
        raise ValueError(f"phi = ½ω²x² − g y vanishes at state={state.tolist()}: the first "
                         f"integral cannot be solved for the slope there.")
    q = (c1 - g * float(s)) / phi
    root = math.sqrt(max(1.0 - q * q, 0.0))
    return np.array([q, -root]) if listing else np.array([root, q])


def euler_lagrange_residuals(s, x, y, omega, g, x_prime=None, y_prime=None):
    r"""Residuals of the rod's Euler–Lagrange equations along a curve sampled at ``s`` ``(m,)``.

    ``R_x = (phi x')' − ω² x`` and ``R_y = (phi y')' + g``, with ``phi = ½ ω² x² − g y``, by
    second-order finite differences in ``s``; the slopes ``x', y'`` are taken from
    ``x_prime``/``y_prime`` when given (e.g. the ODE's right-hand side), else differenced too.
    Also returns the components along the unit tangent and the normal: the tangential one
    vanishes for *every* unit-speed curve, the normal one only for a solution. Returns a dict
    of arrays of shape ``(m,)``: ``R_x``, ``R_y``, ``tangential``, ``normal``.

    Used in: book/curiosities/skipping-rope.md
    """
    s = as_array(s, "s", "float64")
    if s.ndim != 1 or s.size < 3 or not np.all(np.diff(s) > 0):
        raise ValueError(f"s must be an increasing array of shape (m,) with m >= 3, got "
                         f"{describe(s)}.")
    arrays = {}
    for name, value in (("x", x), ("y", y), ("x_prime", x_prime), ("y_prime", y_prime)):
        if value is None:
            continue
        arr = as_array(value, name, "float64")
        if arr.shape != s.shape:
            raise ValueError(f"{name} must have shape (m={s.size},) like s, got shape "
                             f"{arr.shape}.")
        arrays[name] = arr
    omega, g = _physics(omega, g)
    x, y = arrays["x"], arrays["y"]
    xp = arrays.get("x_prime", np.gradient(x, s, edge_order=2))
    yp = arrays.get("y_prime", np.gradient(y, s, edge_order=2))
    phi = 0.5 * omega**2 * x * x - g * y
    rx = np.gradient(phi * xp, s, edge_order=2) - omega**2 * x
    ry = np.gradient(phi * yp, s, edge_order=2) + g
    speed = np.hypot(xp, yp)
    tx, ty = xp / speed, yp / speed
    return {"R_x": rx, "R_y": ry, "tangential": rx * tx + ry * ty, "normal": -rx * ty + ry * tx}


def rod_first_integral(positions, length, omega, g):
    """Tension and first-integral residual of a rod solution with a free end.

    For the chain's nodes ``positions`` ``(n + 1, 2)`` (rod geometry, tip at the last node):
    the tension on link ``k`` is ``T_k = phi(tip) − mean_k(phi)`` (zero at the tip, where the
    multiplier is fixed) and the first integral ``−T y' = g (L − s)`` leaves the residual
    ``r_k = −T_k y'_k − g (L − s_k)`` at the link's middle ``s_k``. Returns a dict of arrays
    ``(n,)``: ``s``, ``tension``, ``residual``.

    Used in: book/curiosities/skipping-rope.md
    """
    length = check_positive(length, "length")
    omega, g = _physics(omega, g)
    p, tangent, mean_r2, mean_y = _link_means(positions, 0)
    n = len(p) - 1
    phi_link = 0.5 * omega**2 * mean_r2 - g * mean_y
    phi_tip = 0.5 * omega**2 * p[-1, 0] ** 2 - g * p[-1, 1]
    tension = phi_tip - phi_link
    s_mid = (np.arange(n) + 0.5) * length / n
    residual = -tension * tangent[:, 1] - g * (length - s_mid)
    return {"s": s_mid, "tension": tension, "residual": residual}


def troposkien_first_integral_fit(positions, omega, t0=None):
    """Fit ``(T0 − ½ ω² y²) x' = H`` to a skipping-rope chain with ``g = 0`` (least squares).

    ``positions`` ``(n + 1, 2)`` in the skip geometry; ``y²`` is averaged exactly along each
    link and ``x'`` is the link's direction. ``t0=None`` fits ``T0`` and ``H``; a number holds
    ``T0`` at that value (``t0=0`` is the article's ``½ ω² y² x' = C``). Returns
    ``(T0, H, residual)`` with ``residual`` the largest misfit relative to ``½ ω² R²``,
    ``R = max |y|``.

    Used in: book/curiosities/skipping-rope.md
    """
    omega = check_positive(omega, "omega")
    t0 = check_real(t0, "t0", allow_none=True)
    p, tangent, mean_r2, _ = _link_means(positions, 1)
    a = 0.5 * omega**2
    rhs = a * mean_r2 * tangent[:, 0]
    if t0 is None:
        design = np.stack([tangent[:, 0], -np.ones_like(rhs)], 1)
        (t0_fit, h_fit), *_ = np.linalg.lstsq(design, rhs, rcond=None)
    else:
        t0_fit = t0
        h_fit = float(np.mean(t0 * tangent[:, 0] - rhs))
    misfit = t0_fit * tangent[:, 0] - h_fit - rhs
    scale = a * float(np.max(np.abs(p[:, 1]))) ** 2
    return float(t0_fit), float(h_fit), float(np.max(np.abs(misfit)) / scale)
