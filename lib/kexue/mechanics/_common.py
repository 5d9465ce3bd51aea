"""Shared pieces of :mod:`kexue.mechanics`: geometries, argument checks, forces.

Used in: book/curiosities/skipping-rope.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import as_array, check_choice, check_real

GEOMETRIES = ("rod", "skip")
"""``"rod"``: vertical axis ``x = 0``, distance ``x``; ``"skip"``: horizontal axis ``y = 0``."""

_DTYPE = "float64"


# --------------------------------------------------------------------------- argument checks


def _geometry(geometry) -> int:
    """The column of the distance from the axis: 0 (x) for "rod", 1 (y) for "skip"."""
    return GEOMETRIES.index(check_choice(geometry, "geometry", GEOMETRIES))


def _point(p, name) -> np.ndarray:
    arr = as_array(p, name, "float64")
    if arr.shape != (2,):
        raise ValueError(f"{name} must be a point (x, y) of shape (2,), got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite coordinates, got {arr.tolist()}.")
    return arr


def _physics(omega, g) -> tuple[float, float]:
    return check_real(omega, "omega", 0.0), check_real(g, "g", 0.0)


def _angles(theta, name="theta") -> np.ndarray:
    arr = as_array(theta, name, "float64")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must have shape (n_links,) with n_links >= 1, got shape "
                         f"{arr.shape}.")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite angles, got a non-finite value at index "
                         f"{int(np.flatnonzero(~np.isfinite(arr))[0])}.")
    return arr


def _check_reach(length, anchor, end):
    span = float(np.hypot(*(end - anchor)))
    if span >= length:
        raise ValueError(f"end must be closer to anchor than length={length!r} (the rope cannot "
                         f"stretch), got a distance of {span!r}.")
    return span


def _cos_sin(theta):
    """``(cos theta, sin theta)`` in the dtype of ``theta``.

    ``keras.ops.cos`` and ``sin`` round float64 to float32 on the JAX backend (Keras 3.15), so
    there the two come from ``jax.numpy`` directly.
    """
    if keras.backend.backend() == "jax" and not isinstance(theta, keras.KerasTensor):
        import jax.numpy as jnp

        theta = ops.convert_to_tensor(theta)
        return jnp.cos(theta), jnp.sin(theta)
    return ops.cos(theta), ops.sin(theta)


def _force(p, omega, g, col):
    """Force per unit length on the rope at ``p`` ``(..., 2)``: ``−∇(g y − ½ ω² r²)``."""
    f = np.zeros_like(p)
    f[..., col] += omega**2 * p[..., col]
    f[..., 1] -= g
    return f


def _link_means(positions, col):
    p = as_array(positions, "positions", "float64")
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 2:
        raise ValueError(f"positions must have shape (n_links + 1, 2) with n_links >= 1, got "
                         f"shape {p.shape}.")
    a, b = p[:-1], p[1:]
    tangent = b - a
    tangent = tangent / np.hypot(*tangent.T)[:, None]
    mean_r2 = (a[:, col] ** 2 + a[:, col] * b[:, col] + b[:, col] ** 2) / 3.0
    mean_y = 0.5 * (a[:, 1] + b[:, 1])
    return p, tangent, mean_r2, mean_y
