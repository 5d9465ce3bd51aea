r"""Strings in a rotating frame: the skipping rope, the rotating chain and their limits.

A uniform rope (unit line density, length ``L``) turns at angular velocity ``omega`` about an
axis, under gravity ``g``. In the frame that turns with it, its shape makes the potential

    U = ∫ (g y − ½ ω² r²) ds

stationary at fixed length, where ``r`` is the distance from the axis. Two geometries:

``"rod"``
    the axis is vertical (the line ``x = 0``) and ``r = x``: a rope hung from a point of a
    turning rod (and, with the point on the axis, the classical rotating chain);
``"skip"``
    the axis is horizontal (the line ``y = 0``, through the hands) and ``r = y``: a skipping
    rope at its lowest position. ``g = 0`` gives the troposkien.

The package holds four independent ways to the shape, which the book checks against each other:

- a chain of ``n`` rigid links, each of length ``L/n``, whose direction angles are the unknowns
  and whose potential is integrated exactly along every link: :func:`chain_positions` and
  :func:`chain_energy` in ``keras.ops``, minimised by the Keras model :class:`RopeChain` (Adam
  through ``model.fit``, then a SciPy polish with the backend's gradient, :func:`fit_rope`), and
  by a NumPy/SciPy reference with a hand-derived gradient (:func:`solve_chain`);
- the equilibrium ODE of the tension vector, shot with ``solve_ivp`` (:func:`rope_ode`,
  :func:`shoot_rope`), and the article's two-dimensional first-integral ODE, as derived and as
  its listing has it (:func:`first_integral_rhs`), with the residuals of the Euler–Lagrange
  equations along any curve (:func:`euler_lagrange_residuals`);
- closed forms: the catenary (``omega = 0``, :func:`catenary_parameter`, :func:`catenary`), the
  troposkien through elliptic integrals (``g = 0``, :func:`troposkien`) and the critical speeds
  of the rotating chain through the zeros of ``J0`` (:func:`hanging_chain_omegas_exact`);
- the linearised discrete chain, whose generalised eigenproblem gives its critical speeds
  (:func:`hanging_chain_omegas`).

The package has three modules: :mod:`~kexue.mechanics.chain` (the discrete rope and its
minimisers), :mod:`~kexue.mechanics.ode` (the ODEs and residuals) and
:mod:`~kexue.mechanics.closed_forms`; everything public is re-exported here.

Everything is float64. The Keras parts use ``keras.ops`` and run on the TensorFlow and JAX
backends (JAX needs ``JAX_ENABLE_X64=1`` for float64); the polish's gradient is the one place
that needs the backend itself (``tf.GradientTape`` or ``jax.grad``).

Used in: book/curiosities/skipping-rope.md
"""

from kexue.mechanics._common import GEOMETRIES
from kexue.mechanics.chain import (
    RopeChain,
    RopeSolution,
    arc_angles,
    chain_energy,
    chain_positions,
    fit_rope,
    hanging_angles,
    hanging_chain_omegas,
    solve_chain,
)
from kexue.mechanics.closed_forms import (
    TroposkienShape,
    catenary,
    catenary_parameter,
    hanging_chain_omegas_exact,
    troposkien,
)
from kexue.mechanics.ode import (
    euler_lagrange_residuals,
    first_integral_rhs,
    rod_first_integral,
    rope_ode,
    shoot_rope,
    troposkien_first_integral_fit,
)

__all__ = [
    "GEOMETRIES",
    "RopeChain",
    "RopeSolution",
    "TroposkienShape",
    "arc_angles",
    "catenary",
    "catenary_parameter",
    "chain_energy",
    "chain_positions",
    "euler_lagrange_residuals",
    "first_integral_rhs",
    "fit_rope",
    "hanging_angles",
    "hanging_chain_omegas",
    "hanging_chain_omegas_exact",
    "rod_first_integral",
    "rope_ode",
    "shoot_rope",
    "solve_chain",
    "troposkien",
    "troposkien_first_integral_fit",
]
