r"""Closed forms: the catenary, the troposkien through elliptic integrals, and the critical
speeds of the turning chain through the zeros of ``J0``.

Used in: book/curiosities/skipping-rope.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

from kexue._checks import as_array, check_int, check_positive, check_real

__all__ = [
    "TroposkienShape",
    "catenary",
    "catenary_parameter",
    "hanging_chain_omegas_exact",
    "troposkien",
]


def catenary_parameter(span, length):
    """The ``a`` of the chain ``y = a cosh(x / a) + c`` hung between two points at equal
    height ``span`` apart, for a chain of ``length > span``: the root of
    ``2 a sinh(span / (2a)) = length`` (``scipy.optimize.brentq``).

    Used in: book/curiosities/skipping-rope.md
    """
    span = check_positive(span, "span")
    length = check_positive(length, "length")
    if length <= span:
        raise ValueError(f"length must exceed span={span!r} (a chain cannot stretch), got "
                         f"{length!r}.")
    half = 0.5 * span

    def gap(a):
        return 2 * a * math.sinh(half / a) - length

    low = half / 700.0  # sinh overflows beyond 710
    high = half
    while gap(high) > 0:
        high *= 2.0
    return optimize.brentq(gap, low, high, xtol=1e-15, rtol=1e-15)


def catenary(x, a, x0=0.0, c=0.0):
    """The catenary ``c + a cosh((x − x0) / a)`` at ``x`` (any shape; same shape back).

    Used in: book/curiosities/skipping-rope.md
    """
    x = as_array(x, "x", "float64")
    a = check_positive(a, "a")
    x0, c = check_real(x0, "x0"), check_real(c, "c")
    return c + a * np.cosh((x - x0) / a)


@dataclass
class TroposkienShape:
    """The skipping rope without gravity (``g = 0``): hands on the axis at ``(±half_span, 0)``.

    In the skip geometry (axis ``y = 0``), with ``a = ½ ω²`` and the rope's largest distance
    ``R`` from the axis, the tension is ``T = T0 − a y²`` and its axial part is the constant
    ``H = T0 − a R²``. ``m`` is the parameter of the elliptic integrals (SciPy's ``m = k²``).
    :meth:`curve` samples the shape.
    """

    half_span: float
    length: float
    omega: float
    m: float
    R: float
    T0: float
    H: float

    def curve(self, n_points=401):
        """``(s, positions)``: arc length ``(n,)`` and points ``(n, 2)`` from hand to hand,
        below the axis; ``n_points`` must be odd (the middle point is the lowest)."""
        n = check_int(n_points, "n_points", 3)
        if n % 2 == 0:
            raise ValueError(f"n_points must be odd (the middle point is the lowest), got {n}.")
        u = np.linspace(0.0, 0.5 * math.pi, n // 2 + 1)
        root = 2.0 * math.sqrt(self.m)
        big_f, big_e = special.ellipkinc(u, self.m), special.ellipeinc(u, self.m)
        along = self.R * (1 - self.m) * big_f / root  # from the hand towards the middle
        s_half = self.R * (2 * big_e - (1 - self.m) * big_f) / root
        x = np.concatenate([-self.half_span + along, (self.half_span - along[::-1])[1:]])
        y = -self.R * np.sin(np.concatenate([u, u[::-1][1:]]))
        s = np.concatenate([s_half, (self.length - s_half[::-1])[1:]])
        return s, np.stack([x, y], 1)


def troposkien(half_span, length, omega=1.0):
    r"""The troposkien through elliptic integrals: hands at ``(±half_span, 0)`` on the axis.

    With ``x = R sin u`` along the half rope, the half span and half length are
    ``R (1 − m) K(m) / (2√m)`` and ``R (2 E(m) − (1 − m) K(m)) / (2√m)``, so their ratio fixes
    ``m`` (``brentq``) and then ``R``; the shape does not depend on ``omega``, the tensions
    ``T0 = ω² R² (1 + m) / (4m)`` and ``H = ω² R² (1 − m) / (4m)`` scale with ``ω²``.
    Returns a :class:`TroposkienShape`.

    Used in: book/curiosities/skipping-rope.md
    """
    half_span = check_positive(half_span, "half_span")
    length = check_positive(length, "length")
    omega = check_positive(omega, "omega")
    ratio = 0.5 * length / half_span
    if ratio <= 1.0:
        raise ValueError(f"length must exceed the span 2*half_span={2 * half_span!r}, got "
                         f"{length!r}.")

    def gap(m):
        k, e = special.ellipk(m), special.ellipe(m)
        return (2 * e - (1 - m) * k) / ((1 - m) * k) - ratio

    m = optimize.brentq(gap, 1e-300, 1.0 - 1e-16, xtol=1e-18, rtol=1e-15, maxiter=500)
    R = 2 * half_span * math.sqrt(m) / ((1 - m) * special.ellipk(m))
    a = 0.5 * omega**2
    return TroposkienShape(half_span, length, omega, m, R, a * R * R * (1 + m) / (2 * m),
                           a * R * R * (1 - m) / (2 * m))


def hanging_chain_omegas_exact(g, length, n_modes=2):
    r"""Critical speeds of a chain hung from a point of a vertical axis: ``j_{0,k}/2 √(g/L)``.

    The linearised equation ``(g (L − s) x')' + ω² x = 0`` is Bessel's of order 0 in
    ``2 ω √((L − s)/g)``; the top ``s = 0`` stays on the axis, so ``J0(2 ω √(L/g)) = 0``.
    Returns the first ``n_modes`` speeds, shape ``(n_modes,)``.

    Used in: book/curiosities/skipping-rope.md
    """
    g = check_positive(g, "g")
    length = check_positive(length, "length")
    n_modes = check_int(n_modes, "n_modes")
    return special.jn_zeros(0, n_modes) / 2 * math.sqrt(g / length)
