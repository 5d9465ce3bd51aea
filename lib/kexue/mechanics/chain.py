r"""The rope as a chain of rigid links, and its energy minimised by Keras and by SciPy.

The link angles are the unknowns; :func:`chain_energy` integrates the potential exactly along
every straight link. :class:`RopeChain` is a Keras model whose loss is that energy (Adam through
``model.fit``, then L-BFGS-B with the backend's gradient, :func:`fit_rope`); :func:`solve_chain`
is the SciPy-only reference with a hand-derived gradient; :func:`hanging_chain_omegas` gives the
critical speeds of the linearised chain hung from the axis.

Used in: book/curiosities/skipping-rope.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import ops
from scipy import linalg, optimize

from kexue._checks import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_int,
    check_positive,
    check_real,
    describe,
)
from kexue.mechanics._common import (
    _DTYPE,
    _angles,
    _check_reach,
    _cos_sin,
    _geometry,
    _physics,
    _point,
)

__all__ = [
    "RopeChain",
    "RopeSolution",
    "arc_angles",
    "chain_energy",
    "chain_positions",
    "fit_rope",
    "hanging_angles",
    "hanging_chain_omegas",
    "solve_chain",
]


def chain_positions(theta, length, anchor=(0.0, 0.0)):
    """Nodes of a chain of rigid links: angles ``(n,)`` to positions ``(n + 1, 2)``.

    Link ``k`` has length ``length / n`` and direction ``(cos theta_k, sin theta_k)``; node 0
    is ``anchor``. Works on NumPy arrays, tensors and Keras variables (``keras.ops``), so it is
    differentiable on every backend.

    Used in: book/curiosities/skipping-rope.md
    """
    length = check_positive(length, "length")
    anchor = _point(anchor, "anchor")
    if not (ops.is_tensor(theta) or hasattr(theta, "assign")):
        theta = ops.convert_to_tensor(_angles(theta), dtype=_DTYPE)
    if len(theta.shape) != 1 or not theta.shape[0]:
        raise ValueError(f"theta must have shape (n_links,), got shape {tuple(theta.shape)}.")
    dtype = theta.dtype
    step = length / theta.shape[0]
    links = ops.stack(_cos_sin(theta), axis=-1) * step
    start = ops.convert_to_tensor(anchor[None], dtype=dtype)
    return ops.concatenate([start, start + ops.cumsum(links, axis=0)], axis=0)


def chain_energy(theta, length, omega, g, anchor=(0.0, 0.0), geometry="rod"):
    r"""Potential ``U = Σ_k ∫_link (g y − ½ ω² r²) ds`` of a chain of rigid links (a scalar).

    ``theta`` has shape ``(n,)``; the integral along each straight link is exact: ``y`` enters
    through the link's mean ``(y_a + y_b)/2`` and ``r²`` through ``(r_a² + r_a r_b + r_b²)/3``.
    ``r`` is ``x`` for ``geometry="rod"`` and ``y`` for ``"skip"`` (see :data:`GEOMETRIES`).
    Stable equilibria minimise ``U``; the article's ``S = ∫ (½ω²r² − g y) ds`` is ``−U``.

    Used in: book/curiosities/skipping-rope.md
    """
    col = _geometry(geometry)
    omega, g = _physics(omega, g)
    p = chain_positions(theta, length, anchor)
    step = length / (p.shape[0] - 1)
    ya, yb = p[:-1, 1], p[1:, 1]
    ra, rb = p[:-1, col], p[1:, col]
    mean_r2 = (ra * ra + ra * rb + rb * rb) / 3.0
    return step * ops.sum(g * 0.5 * (ya + yb) - 0.5 * omega**2 * mean_r2)


def _energy_and_grad_np(theta, length, omega, g, anchor, col):
    """:func:`chain_energy` and its gradient in NumPy, the gradient derived by hand."""
    n = theta.size
    step = length / n
    c, s = np.cos(theta), np.sin(theta)
    p = np.vstack([anchor, anchor + step * np.cumsum(np.stack([c, s], 1), 0)])
    ya, yb, ra, rb = p[:-1, 1], p[1:, 1], p[:-1, col], p[1:, col]
    w2 = omega**2
    energy = step * np.sum(0.5 * g * (ya + yb) - w2 * (ra * ra + ra * rb + rb * rb) / 6.0)
    node = np.zeros_like(p)  # dU / d(node position)
    node[:-1, 1] += 0.5 * g * step
    node[1:, 1] += 0.5 * g * step
    node[:-1, col] -= step * w2 * (2 * ra + rb) / 6.0
    node[1:, col] -= step * w2 * (ra + 2 * rb) / 6.0
    below = np.cumsum(node[1:][::-1], 0)[::-1]  # sum over the nodes that link k moves
    grad = step * (-s * below[:, 0] + c * below[:, 1])
    return energy, grad


def _end_constraint(theta, length, anchor, end):
    n = theta.size
    step = length / n
    c, s = np.cos(theta), np.sin(theta)
    value = anchor + step * np.array([c.sum(), s.sum()]) - end
    jac = step * np.stack([-s, c])
    return value, jac


def hanging_angles(n_links, tilt=0.05):
    """Initial angles ``(n_links,)`` of a straight rope hanging down, turned by ``tilt`` radians.

    A small ``tilt`` towards ``+x`` breaks the left-right symmetry, so that a rope above its
    critical speed leaves the axis on a definite side.

    Used in: book/curiosities/skipping-rope.md
    """
    n = check_int(n_links, "n_links")
    tilt = check_real(tilt, "tilt", -math.pi, math.pi)
    return np.full(n, -0.5 * math.pi + tilt)


def arc_angles(n_links, length, anchor, end, side=-1):
    """Initial angles ``(n_links,)`` of a regular polygon of ``n_links`` equal links from
    ``anchor`` exactly to ``end``: a discrete circular arc, bulging to the right of the chord
    seen from ``anchor`` (``side=-1``: below it when ``end`` lies to the right) or to the left
    (``side=1``).

    Used in: book/curiosities/skipping-rope.md
    """
    n = check_int(n_links, "n_links", 2)
    length = check_positive(length, "length")
    anchor, end = _point(anchor, "anchor"), _point(end, "end")
    side = check_choice(side, "side", (1, -1))
    chord = _check_reach(length, anchor, end)
    step = length / n
    # the chord of a regular polygon with turning angle b per link: step sin(nb/2) / sin(b/2)
    turn = optimize.brentq(lambda b: step * math.sin(n * b / 2) / math.sin(b / 2) - chord,
                           1e-12, 2 * math.pi / n - 1e-12, xtol=1e-15)
    direction = math.atan2(*(end - anchor)[::-1])
    first = direction + side * turn * (n - 1) / 2
    return first - side * turn * np.arange(n)


@dataclass
class RopeSolution:
    """An equilibrium of the chain: angles ``(n,)``, nodes ``(n + 1, 2)`` and how it was found.

    ``history`` ``(k, 2)`` holds Adam steps and objectives (empty for :func:`solve_chain`);
    ``constraint_error`` is the distance of the far end from its target (0 for a free end).
    """

    theta: np.ndarray
    positions: np.ndarray
    energy: float
    length: float
    omega: float
    g: float
    geometry: str
    end: np.ndarray | None
    method: str
    iterations: int
    constraint_error: float = 0.0
    history: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def s(self) -> np.ndarray:
        """Arc length at the nodes, shape ``(n + 1,)``."""
        return np.linspace(0.0, self.length, len(self.positions))


def _polish(fun_grad, theta0, constraint, tol, mu=None):
    """Minimise with L-BFGS-B; a pinned far end by an augmented Lagrangian around it.

    ``constraint(theta) -> (miss (2,), jacobian (2, n))``; ``mu`` is the penalty weight. The
    multiplier moves by ``mu * miss`` after every inner L-BFGS-B solve, until the end misses
    its target by less than 1e-13, or until rounding stalls the inner solve (then the miss is
    about 1e-10). Returns ``(theta, iterations)``.
    """
    options = dict(maxiter=20_000, maxcor=50, ftol=tol, gtol=tol)
    if constraint is None:
        res = optimize.minimize(fun_grad, theta0, jac=True, method="L-BFGS-B", options=options)
        return res.x, res.nit
    theta, nu, iterations = np.asarray(theta0, dtype="float64"), np.zeros(2), 0
    for _ in range(100):
        def augmented(t, nu=nu):
            value, grad = fun_grad(t)
            miss, jac = constraint(t)
            return (value + nu @ miss + 0.5 * mu * miss @ miss,
                    grad + jac.T @ (nu + mu * miss))

        res = optimize.minimize(augmented, theta, jac=True, method="L-BFGS-B", options=options)
        theta, iterations = res.x, iterations + res.nit
        miss = constraint(theta)[0]
        nu = nu + mu * miss
        if np.abs(miss).max() < 1e-13 or res.nit <= 1:  # met, or rounding stops progress
            break
    return theta, iterations


def solve_chain(n_links, length, omega, g, anchor=(0.0, 0.0), end=None, geometry="rod",
                initial_angles=None, tol=1e-15):
    """Equilibrium of the chain by SciPy alone: the NumPy reference for :func:`fit_rope`.

    Minimises :func:`chain_energy` over the ``n_links`` angles with a hand-derived gradient:
    L-BFGS-B, with the far end pinned at ``end`` (if given) by an augmented Lagrangian. Starts
    from ``initial_angles`` (shape ``(n_links,)``), by default :func:`hanging_angles` (free
    end) or :func:`arc_angles` (fixed end). Returns a :class:`RopeSolution`.

    Used in: book/curiosities/skipping-rope.md
    """
    n = check_int(n_links, "n_links")
    length = check_positive(length, "length")
    omega, g = _physics(omega, g)
    anchor = _point(anchor, "anchor")
    col = _geometry(geometry)
    tol = check_positive(tol, "tol")
    if end is not None:
        end = _point(end, "end")
        _check_reach(length, anchor, end)
    theta0 = _initial(initial_angles, n, length, anchor, end)
    fun = lambda t: _energy_and_grad_np(t, length, omega, g, anchor, col)  # noqa: E731
    cons = None if end is None else (lambda t: _end_constraint(t, length, anchor, end))
    theta, iterations = _polish(fun, theta0, cons, tol, _penalty_weight(100.0, length, omega, g))
    return _solution(theta, length, omega, g, anchor, end, geometry,
                     "SciPy L-BFGS-B" + ("" if end is None else ", augmented Lagrangian"),
                     iterations)


def _penalty_weight(penalty, length, omega, g):
    """The augmented Lagrangian's ``mu``: ``penalty`` times the force scale per unit length."""
    return penalty * (g + omega**2 * length + 1e-12) / length


def _initial(initial_angles, n, length, anchor, end):
    if initial_angles is None:
        return hanging_angles(n) if end is None else arc_angles(n, length, anchor, end)
    theta0 = _angles(initial_angles, "initial_angles")
    if theta0.shape != (n,):
        raise ValueError(f"initial_angles must have shape (n_links={n},), got shape "
                         f"{theta0.shape}.")
    return theta0


def _solution(theta, length, omega, g, anchor, end, geometry, method, iterations, history=None):
    theta = np.asarray(theta, dtype="float64")
    col = _geometry(geometry)
    energy = float(_energy_and_grad_np(theta, length, omega, g, anchor, col)[0])
    positions = np.vstack([anchor, anchor + length / theta.size * np.cumsum(
        np.stack([np.cos(theta), np.sin(theta)], 1), 0)])
    miss = 0.0 if end is None else float(np.hypot(*(positions[-1] - end)))
    return RopeSolution(theta, positions, energy, length, omega, g, geometry,
                        None if end is None else end.copy(), method, int(iterations), miss,
                        np.zeros((0, 2)) if history is None else np.asarray(history))


@keras.saving.register_keras_serializable(package="kexue")
class RopeChain(keras.Model):
    """A rope as a Keras model: its only weights are the link angles ``theta`` ``(n_links,)``.

    Calling the model on any batch ``(batch, 1)`` returns the objective, repeated per row,
    shape ``(batch, 1)``: the potential :func:`chain_energy` and, when the far end is pinned
    at ``end``, the augmented-Lagrangian terms ``nu · e + ½ mu |e|²`` of the end's miss ``e``
    (``nu`` is a non-trainable weight that :func:`fit_rope` updates between rounds). The
    model's loss is that objective, so ``model.fit`` with any optimizer minimises the energy.
    Float64 throughout (the model's dtype policy). ``penalty`` scales ``mu`` relative to the
    problem's force scale ``g + omega² length``.

    Registered for ``.keras`` saving: the configuration (including ``end``, ``geometry`` and
    ``initial_angles``) and both weights, ``theta`` and the multiplier ``nu``, round-trip.

    Used in: book/curiosities/skipping-rope.md
    """

    def __init__(self, n_links, length, omega, g, anchor=(0.0, 0.0), end=None, geometry="rod",
                 initial_angles=None, penalty=100.0, **kwargs):
        kwargs.setdefault("dtype", _DTYPE)
        super().__init__(**kwargs)
        self.n_links = check_int(n_links, "n_links")
        self.length = check_positive(length, "length")
        self.omega, self.g = _physics(omega, g)
        self.anchor = _point(anchor, "anchor")
        self.geometry = geometry
        _geometry(geometry)
        self.end = None if end is None else _point(end, "end")
        if self.end is not None:
            _check_reach(self.length, self.anchor, self.end)
        self.penalty = check_positive(penalty, "penalty")
        theta0 = _initial(initial_angles, self.n_links, self.length, self.anchor, self.end)
        self.initial_angles = theta0
        self.mu = _penalty_weight(self.penalty, self.length, self.omega, self.g)
        self.theta = self.add_weight(shape=(self.n_links,), name="theta",
                                     initializer=keras.initializers.Constant(theta0))
        self.nu = self.add_weight(shape=(2,), name="nu", initializer="zeros", trainable=False)

    def build(self, input_shape=None):
        """Nothing to build: the weights are made in ``__init__`` (this lets a loaded model
        skip the symbolic call that Keras would otherwise make from its build config)."""
        self.built = True

    def positions(self, theta=None):
        """Node positions ``(n_links + 1, 2)`` of ``theta`` (default: the model's weights)."""
        return chain_positions(self.theta if theta is None else theta, self.length, self.anchor)

    def energy(self, theta=None):
        """The potential :func:`chain_energy` of ``theta`` (default: the weights), a scalar."""
        return chain_energy(self.theta if theta is None else theta, self.length, self.omega,
                            self.g, self.anchor, self.geometry)

    def end_miss(self, theta=None):
        """The far end minus its target, shape ``(2,)`` (zeros for a free end)."""
        p = self.positions(theta)[-1]
        if self.end is None:
            return p * 0.0
        return p - ops.convert_to_tensor(self.end, dtype=p.dtype)

    def objective(self, theta=None, nu=None):
        """Energy plus the augmented-Lagrangian terms of the far end (a scalar)."""
        value = self.energy(theta)
        if self.end is None:
            return value
        miss = self.end_miss(theta)
        nu = self.nu if nu is None else nu
        return value + ops.sum(nu * miss) + 0.5 * self.mu * ops.sum(miss * miss)

    def call(self, inputs):
        return ops.zeros_like(inputs[:, :1]) + self.objective()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.mean(y_pred)

    def get_config(self):
        config = super().get_config()
        config.update(n_links=self.n_links, length=self.length, omega=self.omega, g=self.g,
                      anchor=self.anchor.tolist(), geometry=self.geometry,
                      end=None if self.end is None else self.end.tolist(),
                      initial_angles=self.initial_angles.tolist(), penalty=self.penalty)
        return config


def _value_and_grad(fn):
    """``theta (numpy) -> (value, gradient)`` of a ``keras.ops`` function, compiled.

    The one backend-specific piece: ``tf.GradientTape`` in a ``tf.function`` on TensorFlow,
    ``jax.jit(jax.value_and_grad)`` on JAX.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def value_and_grad(theta):
            with tf.GradientTape() as tape:
                tape.watch(theta)
                value = fn(theta)
            return value, tape.gradient(value, theta)

        def run(theta):
            value, grad = value_and_grad(tf.constant(theta, dtype=_DTYPE))
            return float(value), grad.numpy().astype("float64")

        return run
    if backend == "jax":
        import jax

        compiled = jax.jit(jax.value_and_grad(fn))

        def run(theta):
            value, grad = compiled(jax.numpy.asarray(theta, dtype=_DTYPE))
            return float(value), np.asarray(grad, dtype="float64")

        return run
    raise NotImplementedError(f"fit_rope's polish needs the TensorFlow or JAX backend, got "
                              f"{backend!r}; use polish=False.")


class _Record(keras.callbacks.Callback):
    """The objective after every execution of the compiled train step (Keras's ``loss`` log
    is a running mean over the epoch, not the current value)."""

    def __init__(self):
        super().__init__()
        self.steps, self.values = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(int(ops.convert_to_numpy(self.model.optimizer.iterations)))
        self.values.append(float(ops.convert_to_numpy(self.model.objective())))


def fit_rope(rope, steps=1000, learning_rate=0.02, rounds=4, polish=True, tol=1e-15,
             verbose=0, record_every=10):
    """Minimise a :class:`RopeChain`'s energy: Adam through ``model.fit``, then a SciPy polish.

    ``steps`` Adam steps (cosine-decayed ``learning_rate``) in ``rounds`` calls of ``fit``;
    after each round the end multiplier ``nu`` moves by ``mu · e`` (augmented Lagrangian).
    With ``polish`` the result is refined by L-BFGS-B (around an augmented Lagrangian when the
    end is pinned) on the exact energy, with the gradient from the Keras backend's autodiff.
    The model's weights are set to the result. Returns a :class:`RopeSolution` whose
    ``history`` ``(k, 2)`` holds the Adam step and the objective every ``record_every`` steps.

    Used in: book/curiosities/skipping-rope.md
    """
    if not isinstance(rope, RopeChain):
        raise ArgumentTypeError(f"rope must be a kexue.mechanics.RopeChain, got {describe(rope)}.")
    steps = check_int(steps, "steps", 0)
    learning_rate = check_positive(learning_rate, "learning_rate")
    rounds = check_int(rounds, "rounds")
    polish = check_bool(polish, "polish")
    tol = check_positive(tol, "tol")
    verbose = check_choice(verbose, "verbose", (0, 1, 2))
    record_every = check_int(record_every, "record_every")
    record = _Record()
    per_round = steps // rounds
    if per_round:
        schedule = keras.optimizers.schedules.CosineDecay(learning_rate, per_round * rounds)
        rope.compile(optimizer=keras.optimizers.Adam(schedule),
                     steps_per_execution=min(per_round, record_every))
        dummy = np.zeros((per_round, 1), dtype=_DTYPE)
        for _ in range(rounds):
            rope.fit(dummy, batch_size=1, epochs=1, shuffle=False, verbose=verbose,
                     callbacks=[record])
            if rope.end is not None:
                miss = ops.convert_to_numpy(rope.end_miss())
                rope.nu.assign(ops.convert_to_numpy(rope.nu) + rope.mu * miss)
    theta = ops.convert_to_numpy(rope.theta).astype("float64")
    iterations = 0
    method = "Keras Adam"
    if polish:
        energy = _value_and_grad(lambda t: rope.energy(t))
        cons = None if rope.end is None else (
            lambda t: _end_constraint(t, rope.length, rope.anchor, rope.end))
        theta, iterations = _polish(energy, theta, cons, tol, rope.mu)
        method += " + L-BFGS-B" + ("" if rope.end is None else " (augmented Lagrangian)")
        rope.theta.assign(theta)
    history = np.stack([record.steps, record.values], 1) if record.steps else np.zeros((0, 2))
    return _solution(theta, rope.length, rope.omega, rope.g, rope.anchor, rope.end,
                     rope.geometry, method, iterations, history)


def hanging_chain_omegas(n_links, g, length, n_modes=2):
    r"""Critical speeds of the discrete chain of :func:`chain_energy` hung from the axis.

    Around the vertical (link angles ``−π/2 + α``), the energy's quadratic part is
    ``½ αᵀ (G − ω² M) α``: gravity gives ``G = diag(g Δ² (n − k − ½))`` and the centrifugal
    term ``M = Δ³ Bᵀ Q B``, with ``B`` the cumulative sum from angles to node offsets and ``Q``
    the exact link average of ``x²``. The vertical rope loses stability where ``G − ω² M``
    becomes singular: the generalised eigenproblem ``M v = ω⁻² G v`` (``scipy.linalg.eigh``).
    Returns the first ``n_modes`` speeds, shape ``(n_modes,)``.

    Used in: book/curiosities/skipping-rope.md
    """
    n = check_int(n_links, "n_links")
    g = check_positive(g, "g")
    length = check_positive(length, "length")
    n_modes = check_int(n_modes, "n_modes", 1, maximum=n)
    step = length / n
    gravity = np.diag(g * step**2 * (n - np.arange(n) - 0.5))
    b = np.tril(np.ones((n + 1, n)), -1)  # node j moves with the angles of the links above it
    q = np.diag(np.full(n + 1, 2.0 / 3.0)) + np.diag(np.full(n, 1.0 / 6.0), 1) + np.diag(
        np.full(n, 1.0 / 6.0), -1)
    q[0, 0] = q[-1, -1] = 1.0 / 3.0
    centrifugal = step**3 * b.T @ q @ b
    inv_w2 = linalg.eigh(centrifugal, gravity, eigvals_only=True)[::-1][:n_modes]
    return 1.0 / np.sqrt(inv_w2)
