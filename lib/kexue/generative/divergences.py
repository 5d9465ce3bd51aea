"""f-divergences, their convex conjugates, the variational lower bound and the f-GAN losses.

An f-divergence between two densities is

    D_f(P || Q) = ∫ q(x) f(p(x) / q(x)) dx,        f convex on (0, ∞), f(1) = 0.

The convex (Fenchel) conjugate f*(t) = sup_u {t u - f(u)} turns it into a maximisation over a
critic T(x), which needs samples only:

    D_f(P || Q) = max_T  E_P[T(x)] - E_Q[f*(T(x))],   attained at T*(x) = f'(p(x) / q(x)).

A network cannot output an arbitrary real number into the domain of f*, so every divergence
comes with an output activation a(v) mapping a raw logit v into that domain, and with the
composition f*(a(v)) written in closed form (no overflow). :data:`F_DIVERGENCES` holds the
table; :func:`variational_bound` evaluates the bound on critic outputs, :func:`optimal_critic`
gives T*, :func:`gaussian_f_divergence` and :func:`f_divergence_quadrature` give the true
values to compare with, :func:`estimate_divergences` trains small Keras critics on two sample
sets, and :class:`FGANLoss` is the pair of discriminator and generator losses that
:class:`kexue.generative.gan.GAN` trains with.

Names follow Nowozin, Cseke and Tomioka (2016): ``"pearson"`` is f(u) = (u - 1)^2 and
``"neyman"`` is f(u) = (1 - u)^2 / u (some texts, kexue.fm/archives/6016 among them, swap the
two labels; the formulas are what count).

Used in: book/generative/f-gan.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    as_float_tensor,
    check_bool,
    check_choice,
    check_finite,
    check_int,
    check_positive,
    check_real,
    describe,
)

__all__ = [
    "FDivergence", "F_DIVERGENCES", "get_divergence", "variational_bound", "optimal_critic",
    "f_divergence_quadrature", "gaussian_f_divergence", "estimate_divergences", "FGANLoss",
]

_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-divergence table.

    ``f``, ``f_prime`` and ``conjugate`` act on NumPy arrays (float64); ``activation`` (the
    output activation a(v), raw logit to the domain of f*) and ``conjugate_of_activation``
    (f*(a(v)) in closed form) act on backend tensors through ``keras.ops``, so a critic trains
    with them on any backend. ``domain`` is the interval (low, high) of f* (open where the
    conjugate is infinite at the end); the strings are LaTeX for tables.

    Used in: book/generative/f-gan.md.
    """

    name: str
    title: str
    f: object
    f_prime: object
    conjugate: object
    domain: tuple
    activation: object
    conjugate_of_activation: object
    f_tex: str
    conjugate_tex: str
    domain_tex: str
    activation_tex: str
    conjugate_of_activation_tex: str

    def __repr__(self):
        return f"FDivergence({self.name!r})"


# --------------------------------------------------------------------------- the NumPy table


def _xlogx(u):
    u = np.asarray(u, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u > 0, u * np.log(np.where(u > 0, u, 1.0)), 0.0)


def _lambertw_exp_np(s):
    """W(e^s) for real s (float64), by Newton's method on x = log W: e^x + x = s."""
    s = np.asarray(s, dtype=float)
    x = np.where(s > 1.0, np.log(np.maximum(s - np.log(np.maximum(s, 1.0)), 1e-300)), s)
    for _ in range(8):  # quadratic convergence: 5 iterations reach 1e-15 on s in [-30, 60]
        ex = np.exp(x)
        x = x - (ex + x - s) / (ex + 1.0)
    return np.exp(x)


def _lambertw_exp_ops(s, iterations=6):
    """W(e^s) with keras.ops (Newton's method on x = log W, unrolled; differentiable).

    From the starting point below, 5 iterations reach float64 precision on s in [-30, 60]."""
    x = ops.where(s > 1.0, ops.log(ops.maximum(s - ops.log(ops.maximum(s, 1.0)), 1e-30)), s)
    for _ in range(iterations):
        ex = ops.exp(x)
        x = x - (ex + x - s) / (ex + 1.0)
    return ops.exp(x)


def _js_f(u):
    u = np.asarray(u, dtype=float)
    return -(u + 1) / 2 * np.log((1 + u) / 2) + _xlogx(u) / 2


def _conj_tv(t):
    t = np.asarray(t, dtype=float)
    return np.where(np.abs(t) <= 0.5, t, np.inf)


def _conj_rkl(t):
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(t < 0, -1.0 - np.log(np.where(t < 0, -t, 1.0)), np.inf)


def _conj_pearson(t):  # f = (u - 1)^2; over u >= 0 the sup is -1 below t = -2
    t = np.asarray(t, dtype=float)
    return np.where(t >= -2, t**2 / 4 + t, -1.0)


def _conj_neyman(t):  # f = (1 - u)^2 / u
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.where(t < 1, 2 - 2 * np.sqrt(np.where(t < 1, 1 - t, 0.0)), np.inf)


def _conj_hellinger(t):
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(t < 1, t / np.where(t < 1, 1 - t, 1.0), np.inf)


def _conj_jeffrey(t):
    t = np.asarray(t, dtype=float)
    w = _lambertw_exp_np(1 - t)
    return w + 1 / w + t - 2


def _conj_js(t):
    t = np.asarray(t, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = 2 - np.exp(2 * t)
        return np.where(inside > 0, -0.5 * np.log(np.where(inside > 0, inside, 1.0)), np.inf)


def _safe_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(a, dtype=float) / np.asarray(b, dtype=float)


_ROWS = [
    FDivergence(
        "total_variation", "total variation",
        f=lambda u: 0.5 * np.abs(np.asarray(u, dtype=float) - 1),
        f_prime=lambda u: 0.5 * np.sign(np.asarray(u, dtype=float) - 1),
        conjugate=_conj_tv, domain=(-0.5, 0.5),
        activation=lambda v: 0.5 * ops.tanh(v),
        conjugate_of_activation=lambda v: 0.5 * ops.tanh(v),
        f_tex=r"\tfrac12|u-1|", conjugate_tex="t", domain_tex=r"[-\tfrac12,\tfrac12]",
        activation_tex=r"\tfrac12\tanh v", conjugate_of_activation_tex=r"\tfrac12\tanh v"),
    FDivergence(
        "kl", "Kullback–Leibler",
        f=_xlogx, f_prime=lambda u: 1 + np.log(np.asarray(u, dtype=float)),
        conjugate=lambda t: np.exp(np.asarray(t, dtype=float) - 1), domain=(-np.inf, np.inf),
        activation=lambda v: v, conjugate_of_activation=lambda v: ops.exp(v - 1),
        f_tex=r"u\log u", conjugate_tex=r"e^{t-1}", domain_tex=r"\mathbb R",
        activation_tex="v", conjugate_of_activation_tex=r"e^{v-1}"),
    FDivergence(
        "reverse_kl", "reverse Kullback–Leibler",
        f=lambda u: -np.log(np.asarray(u, dtype=float)),
        f_prime=lambda u: -1 / np.asarray(u, dtype=float),
        conjugate=_conj_rkl, domain=(-np.inf, 0.0),
        activation=lambda v: -ops.exp(v), conjugate_of_activation=lambda v: -1 - v,
        f_tex=r"-\log u", conjugate_tex=r"-1-\log(-t)", domain_tex=r"(-\infty,0)",
        activation_tex=r"-e^{v}", conjugate_of_activation_tex=r"-1-v"),
    FDivergence(
        "pearson", "Pearson χ²",
        f=lambda u: (np.asarray(u, dtype=float) - 1) ** 2,
        f_prime=lambda u: 2 * (np.asarray(u, dtype=float) - 1),
        conjugate=_conj_pearson, domain=(-2.0, np.inf),
        activation=lambda v: ops.exp(v) - 2,
        conjugate_of_activation=lambda v: ops.exp(2 * v) / 4 - 1,
        f_tex=r"(u-1)^2", conjugate_tex=r"\tfrac14t^2+t", domain_tex=r"(-2,\infty)",
        activation_tex=r"e^{v}-2", conjugate_of_activation_tex=r"\tfrac14e^{2v}-1"),
    FDivergence(
        "neyman", "Neyman χ²",
        f=lambda u: _safe_div((1 - np.asarray(u, dtype=float)) ** 2, u),
        f_prime=lambda u: 1 - _safe_div(1, np.asarray(u, dtype=float) ** 2),
        conjugate=_conj_neyman, domain=(-np.inf, 1.0),
        activation=lambda v: 1 - ops.exp(v),
        conjugate_of_activation=lambda v: 2 - 2 * ops.exp(v / 2),
        f_tex=r"(1-u)^2/u", conjugate_tex=r"2-2\sqrt{1-t}", domain_tex=r"(-\infty,1)",
        activation_tex=r"1-e^{v}", conjugate_of_activation_tex=r"2-2e^{v/2}"),
    FDivergence(
        "squared_hellinger", "squared Hellinger",
        f=lambda u: (np.sqrt(np.asarray(u, dtype=float)) - 1) ** 2,
        f_prime=lambda u: 1 - _safe_div(1, np.sqrt(np.asarray(u, dtype=float))),
        conjugate=_conj_hellinger, domain=(-np.inf, 1.0),
        activation=lambda v: 1 - ops.exp(v), conjugate_of_activation=lambda v: ops.exp(-v) - 1,
        f_tex=r"(\sqrt u-1)^2", conjugate_tex=r"t/(1-t)", domain_tex=r"(-\infty,1)",
        activation_tex=r"1-e^{v}", conjugate_of_activation_tex=r"e^{-v}-1"),
    FDivergence(
        "jeffrey", "Jeffrey",
        f=lambda u: (np.asarray(u, dtype=float) - 1) * np.log(np.asarray(u, dtype=float)),
        f_prime=lambda u: (np.log(np.asarray(u, dtype=float)) + 1
                           - _safe_div(1, np.asarray(u, dtype=float))),
        conjugate=_conj_jeffrey, domain=(-np.inf, np.inf),
        activation=lambda v: v,
        conjugate_of_activation=lambda v: _jeffrey_conj_ops(v),
        f_tex=r"(u-1)\log u", conjugate_tex=r"W(e^{1-t})+1/W(e^{1-t})+t-2",
        domain_tex=r"\mathbb R", activation_tex="v",
        conjugate_of_activation_tex=r"W(e^{1-v})+1/W(e^{1-v})+v-2"),
    FDivergence(
        "jensen_shannon", "Jensen–Shannon",
        f=_js_f, f_prime=lambda u: 0.5 * np.log(_safe_div(2 * np.asarray(u, dtype=float),
                                                          1 + np.asarray(u, dtype=float))),
        conjugate=_conj_js, domain=(-np.inf, _LOG2 / 2),
        activation=lambda v: _LOG2 / 2 - 0.5 * ops.softplus(-v),
        conjugate_of_activation=lambda v: -_LOG2 / 2 + 0.5 * ops.softplus(v),
        f_tex=r"\tfrac u2\log u-\tfrac{u+1}2\log\tfrac{u+1}2",
        conjugate_tex=r"-\tfrac12\log(2-e^{2t})", domain_tex=r"(-\infty,\tfrac12\log2)",
        activation_tex=r"\tfrac12\log2-\tfrac12\log(1+e^{-v})",
        conjugate_of_activation_tex=r"-\tfrac12\log2+\tfrac12\log(1+e^{v})"),
]


def _jeffrey_conj_ops(v):
    w = _lambertw_exp_ops(1 - v)
    return w + 1 / w + v - 2


F_DIVERGENCES: dict[str, FDivergence] = {row.name: row for row in _ROWS}
"""The table, by name: total_variation, kl, reverse_kl, pearson ((u-1)^2), neyman
((1-u)^2/u), squared_hellinger, jeffrey, jensen_shannon."""


def get_divergence(divergence) -> FDivergence:
    """The :class:`FDivergence` named ``divergence`` (a name of :data:`F_DIVERGENCES`, or a row).

    Used in: book/generative/f-gan.md.
    """
    if isinstance(divergence, FDivergence):
        return divergence
    if not isinstance(divergence, str):
        raise ArgumentTypeError(
            f"divergence must be a name in {tuple(F_DIVERGENCES)} or an FDivergence, got "
            f"{describe(divergence)}.")
    return F_DIVERGENCES[check_choice(divergence, "divergence", tuple(F_DIVERGENCES))]


# --------------------------------------------------------------------------- the bound


def variational_bound(divergence, real, fake, logits: bool = True):
    """The variational lower bound E_P[T] - E_Q[f*(T)] of D_f(P || Q), a scalar tensor.

    ``real`` are critic outputs on samples of P, ``fake`` on samples of Q, any shapes (each is
    averaged over all its entries). With ``logits=True`` (default) they are raw logits v and
    T = a(v) is the divergence's output activation, with f*(a(v)) in closed form; with
    ``logits=False`` they are critic values T themselves, which must lie in the domain of f*
    (NumPy arrays are evaluated in float64 with the NumPy conjugate).

    Used in: book/generative/f-gan.md.
    """
    row = get_divergence(divergence)
    check_bool(logits, "logits")
    if not logits:
        real_t = as_array(real, "real", "float64")
        fake_t = as_array(fake, "fake", "float64")
        if real_t.size == 0 or fake_t.size == 0:
            raise ValueError(f"real and fake must not be empty, got shapes {real_t.shape} and "
                             f"{fake_t.shape}.")
        lo, hi = row.domain
        outside = (fake_t < lo) | (fake_t > hi)
        if outside.any():
            raise ValueError(
                f"fake must lie in the domain {row.domain_tex} of the conjugate of "
                f"{row.name!r}, got {fake_t[outside].ravel()[0]!r}.")
        return float(real_t.mean() - row.conjugate(fake_t).mean())
    real = as_float_tensor(real, "real")
    fake = as_float_tensor(fake, "fake", )
    return ops.mean(row.activation(real)) - ops.mean(row.conjugate_of_activation(fake))


def optimal_critic(divergence, ratio):
    """The optimal critic T*(x) = f'(p(x)/q(x)), from the density ratio ``ratio`` = p/q > 0.

    NumPy in, NumPy out (float64, same shape). At T* the bound :func:`variational_bound`
    equals D_f(P || Q).

    Used in: book/generative/f-gan.md.
    """
    row = get_divergence(divergence)
    r = as_array(ratio, "ratio", "float64")
    if r.size and not (np.all(np.isfinite(r)) and np.all(r > 0)):
        bad = r[~(np.isfinite(r) & (r > 0))].ravel()[0]
        raise ValueError(f"ratio must hold finite positive density ratios p/q, got {bad!r}.")
    return row.f_prime(r)


# --------------------------------------------------------------------------- true values


def _check_density(fn, name):
    if not callable(fn):
        raise ArgumentTypeError(f"{name} must be a callable density x -> p(x), got "
                                f"{describe(fn)}.")
    return fn


def f_divergence_quadrature(divergence, p_pdf, q_pdf, lo, hi, log: bool = False):
    """D_f(P || Q) = ∫ q f(p/q) dx over [lo, hi] by ``scipy.integrate.quad`` (1-D).

    ``p_pdf`` and ``q_pdf`` map a float to a density (or, with ``log=True``, a log-density,
    which keeps the ratio accurate in the tails). Returns a float; it is the reference the
    closed forms and the estimators are checked against.

    Used in: book/generative/f-gan.md.
    """
    from scipy.integrate import quad

    row = get_divergence(divergence)
    p_pdf, q_pdf = _check_density(p_pdf, "p_pdf"), _check_density(q_pdf, "q_pdf")
    lo, hi = check_real(lo, "lo"), check_real(hi, "hi")
    if not lo < hi:
        raise ValueError(f"hi must be greater than lo, got lo={lo!r}, hi={hi!r}.")
    check_bool(log, "log")

    def integrand(x):
        if log:
            lp, lq = float(p_pdf(x)), float(q_pdf(x))
            if lq == -np.inf:
                return 0.0
            q, u = math.exp(lq), math.exp(min(lp - lq, 700.0))
        else:
            p, q = float(p_pdf(x)), float(q_pdf(x))
            if q <= 0:
                return 0.0
            u = p / q
        if q == 0.0:
            return 0.0
        with np.errstate(all="ignore"):
            value = float(q * row.f(u))
        return value if np.isfinite(value) else 0.0

    value, _ = quad(integrand, lo, hi, limit=400, epsabs=1e-12, epsrel=1e-10)
    return float(value)


def _gauss_power_integral(alpha, m1, s1, m2, s2):
    """∫ p^α q^(1-α) dx for p = N(m1, s1²), q = N(m2, s2²); ∞ where it diverges."""
    var = alpha * s2**2 + (1 - alpha) * s1**2
    if var <= 0:
        return math.inf
    return (s1 ** (1 - alpha) * s2**alpha / math.sqrt(var)
            * math.exp(-alpha * (1 - alpha) * (m1 - m2) ** 2 / (2 * var)))


def gaussian_f_divergence(divergence, mean_p=0.0, std_p=1.0, mean_q=0.0, std_q=1.0):
    """The true D_f(P || Q) between P = N(mean_p, std_p²) and Q = N(mean_q, std_q²), a float.

    Closed forms for KL, reverse KL, Jeffrey, squared Hellinger and both χ² (through
    ∫ p^α q^(1-α), which is infinite when a χ² integral diverges: ``math.inf``); total
    variation and Jensen–Shannon by :func:`f_divergence_quadrature` over ±14 standard
    deviations.

    Used in: book/generative/f-gan.md.
    """
    row = get_divergence(divergence)
    m1, m2 = check_real(mean_p, "mean_p"), check_real(mean_q, "mean_q")
    s1, s2 = check_positive(std_p, "std_p"), check_positive(std_q, "std_q")

    def kl(ma, sa, mb, sb):
        return math.log(sb / sa) + (sa**2 + (ma - mb) ** 2) / (2 * sb**2) - 0.5

    if row.name == "kl":
        return kl(m1, s1, m2, s2)
    if row.name == "reverse_kl":
        return kl(m2, s2, m1, s1)
    if row.name == "jeffrey":
        return kl(m1, s1, m2, s2) + kl(m2, s2, m1, s1)
    if row.name == "squared_hellinger":
        return 2 - 2 * _gauss_power_integral(0.5, m1, s1, m2, s2)
    if row.name == "pearson":
        return _gauss_power_integral(2.0, m1, s1, m2, s2) - 1
    if row.name == "neyman":
        return _gauss_power_integral(-1.0, m1, s1, m2, s2) - 1

    def logpdf(m, s):
        return lambda x: -0.5 * ((x - m) / s) ** 2 - math.log(s * math.sqrt(2 * math.pi))

    width = 14 * max(s1, s2)
    return f_divergence_quadrature(row, logpdf(m1, s1), logpdf(m2, s2),
                                   min(m1, m2) - width, max(m1, m2) + width, log=True)


# --------------------------------------------------------------------------- trained critics


def _mlp_critic(input_dim, width, depth, name):
    layers = [keras.Input((input_dim,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name=name)


def _samples(x, name):
    arr = as_array(x, name, "float32")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n,) or (n, dim) with n >= 1, got shape "
                         f"{arr.shape}.")
    check_finite(arr, name)
    return arr


def estimate_divergences(divergences, p_samples, q_samples, p_test=None, q_test=None, *,
                         steps=2000, batch_size=512, width=64, depth=2, learning_rate=1e-3,
                         evaluations=10, seed=0):
    """Estimate D_f(P || Q) for several f from samples alone, by training one critic per f.

    Each critic is an MLP (``depth`` hidden ReLU layers of ``width``, one raw logit v) that
    maximises :func:`variational_bound` for its divergence with Adam(``learning_rate``) for
    ``steps`` steps on batches of ``batch_size`` samples of each of ``p_samples`` and
    ``q_samples`` (shapes (n,) or (n, dim)). All critics are trained by one Keras model whose
    loss is the sum of their negative bounds: their weights are disjoint, so each receives
    exactly the gradient of its own bound, and Adam scales each weight separately.

    ``divergences`` is one name or a list of names of :data:`F_DIVERGENCES`. Returns a dict
    with ``"estimate"`` (name -> bound on ``p_test``/``q_test``, held-out samples; the
    training samples when none are given), ``"train_bound"`` (name -> array of the bound on
    training batches, mean of each of ``evaluations`` equal stretches of training) and
    ``"steps"`` (the step at the end of each stretch), and ``"critics"`` (name -> the Keras
    critic).

    Used in: book/generative/f-gan.md.
    """
    if isinstance(divergences, (str, FDivergence)):
        divergences = [divergences]
    if not isinstance(divergences, (list, tuple)) or not divergences:
        raise ArgumentTypeError(f"divergences must be a name or a non-empty list of names, got "
                                f"{describe(divergences)}.")
    rows = [get_divergence(d) for d in divergences]
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"divergences must not repeat a name, got {names}.")
    xp, xq = _samples(p_samples, "p_samples"), _samples(q_samples, "q_samples")
    if xp.shape[1] != xq.shape[1]:
        raise ValueError(f"q_samples must have the dimension of p_samples ({xp.shape[1]}), got "
                         f"shape {xq.shape}.")
    tp = xp if p_test is None else _samples(p_test, "p_test")
    tq = xq if q_test is None else _samples(q_test, "q_test")
    for name, arr in (("p_test", tp), ("q_test", tq)):
        if arr.shape[1] != xp.shape[1]:
            raise ValueError(f"{name} must have dimension {xp.shape[1]}, got shape {arr.shape}.")
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    width, depth = check_int(width, "width"), check_int(depth, "depth")
    learning_rate = check_positive(learning_rate, "learning_rate")
    evaluations = check_int(evaluations, "evaluations", maximum=steps)
    seed = check_int(seed, "seed", minimum=0)

    keras.utils.set_random_seed(seed)
    dim = xp.shape[1]
    inp_p, inp_q = keras.Input((dim,), name="p"), keras.Input((dim,), name="q")
    critics, outputs = {}, {}
    for row in rows:
        critic = _mlp_critic(dim, width, depth, name=f"critic_{row.name}")
        critics[row.name] = critic
        outputs[row.name] = keras.layers.Concatenate(name=row.name)(
            [critic(inp_p), critic(inp_q)])
    model = keras.Model([inp_p, inp_q], outputs)

    def negative_bound(row):
        def loss(y_true, y_pred):  # y_pred: (batch, 2) = (v on P, v on Q)
            return -(row.activation(y_pred[:, 0]) - row.conjugate_of_activation(y_pred[:, 1]))
        return loss

    per_stretch = max(1, steps // evaluations)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={r.name: negative_bound(r) for r in rows},
                  steps_per_execution=min(per_stretch, 100))
    rng = np.random.default_rng(seed)
    n = per_stretch * batch_size      # one stretch: random pairs, reshuffled every stretch
    ip = rng.integers(0, len(xp), n)
    iq = rng.integers(0, len(xq), n)
    dummy = {r.name: np.zeros((n, 1), "float32") for r in rows}
    history = model.fit([xp[ip], xq[iq]], dummy, batch_size=batch_size, epochs=evaluations,
                        shuffle=True, verbose=0).history
    if len(rows) == 1:
        train = {rows[0].name: -np.asarray(history["loss"])}
    else:
        train = {r.name: -np.asarray(history[f"{r.name}_loss"]) for r in rows}
    estimate = {}
    for row in rows:
        vp = critics[row.name](tp, training=False)   # a direct call: no predict() retracing
        vq = critics[row.name](tq, training=False)
        estimate[row.name] = float(ops.convert_to_numpy(variational_bound(row, vp, vq)))
    return {"estimate": estimate, "train_bound": train,
            "steps": per_stretch * np.arange(1, evaluations + 1), "critics": critics}


# --------------------------------------------------------------------------- the f-GAN losses


@keras.saving.register_keras_serializable(package="kexue")
class FGANLoss:
    """The f-GAN losses of one f-divergence, for :class:`kexue.generative.gan.GAN`.

    The discriminator (critic) maximises the bound of :func:`variational_bound` on raw logits
    v: ``d_loss(real_logits, fake_logits) = -(mean a(v_real) - mean f*(a(v_fake)))``. The
    generator minimises the same bound; only its second term depends on the generator, so

    - ``generator="minimax"``: ``g_loss(fake_logits) = -mean f*(a(v_fake))``;
    - ``generator="non_saturating"`` (Nowozin et al.'s practical choice, the analogue of the
      -log D trick): ``g_loss(fake_logits) = -mean a(v_fake)``.

    With ``swap=True`` the roles of the two sample sets are exchanged and the critic estimates
    D_f(Q || P) (Q = generated): d_loss = -(mean a(v_fake) - mean f*(a(v_real))) and the
    generator minimises mean a(v_fake). Logits have shape (batch, 1) (any shape is averaged).

    Used in: book/generative/f-gan.md.
    """

    def __init__(self, divergence="jensen_shannon", generator="minimax", swap=False):
        self.divergence = get_divergence(divergence).name
        self.generator = check_choice(generator, "generator", ("minimax", "non_saturating"))
        self.swap = check_bool(swap, "swap")
        self._row = F_DIVERGENCES[self.divergence]

    def bound(self, real_logits, fake_logits):
        """The critic's estimate of the divergence on this batch (a scalar tensor)."""
        if self.swap:
            return variational_bound(self._row, fake_logits, real_logits)
        return variational_bound(self._row, real_logits, fake_logits)

    def d_loss(self, real_logits, fake_logits):
        """Scalar to minimise over the discriminator: minus the bound."""
        return -self.bound(real_logits, fake_logits)

    def g_loss(self, fake_logits):
        """Scalar to minimise over the generator."""
        fake_logits = as_float_tensor(fake_logits, "fake_logits")
        if self.swap or self.generator == "non_saturating":
            sign = 1.0 if self.swap else -1.0
            return sign * ops.mean(self._row.activation(fake_logits))
        return -ops.mean(self._row.conjugate_of_activation(fake_logits))

    def get_config(self):
        return {"divergence": self.divergence, "generator": self.generator, "swap": self.swap}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return (f"FGANLoss({self.divergence!r}, generator={self.generator!r}, "
                f"swap={self.swap})")
