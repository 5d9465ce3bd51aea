"""Optimizers: AdaFactor, with the factorisation it is built on.

:class:`AdaFactor` is Adam without the first moment and with the second moment of every
weight matrix stored as one row vector and one column vector (Shazeer & Stern, 2018). The
rank-1 reconstruction it uses is the minimiser of the I-divergence, :func:`rank1_idiv`,
whose loss is :func:`idiv`. :func:`ema_weights` gives the weight that a moving average with
time-varying decay puts on each past gradient, and :func:`slot_floats` counts the floats an
optimizer keeps as state.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from kexue._checks import as_array, check_bool, check_finite, check_int, check_real, describe

# -- the mathematics ---------------------------------------------------------------------


def _nonnegative_matrix(C, name="C"):
    C = as_array(C, name, "float64")
    if C.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix, got shape {C.shape}.")
    if C.size == 0 or not np.all(np.isfinite(C)) or np.any(C < 0):
        got = "an empty matrix" if C.size == 0 else f"values from {np.min(C)!r} to {np.max(C)!r}"
        raise ValueError(f"{name} must be a non-empty, finite, non-negative matrix, got {got}.")
    return C


def idiv(C, a, b):
    """I-divergence (generalised Kullback-Leibler) between ``C`` and the outer product ``a b^T``.

    Computes ``l(a, b) = sum_ij c_ij log(c_ij / (a_i b_j)) - c_ij + a_i b_j`` in float64, with
    ``0 log 0 = 0``. It is non-negative, and zero exactly when ``C == outer(a, b)``.

    Args:
        C: non-negative matrix of shape ``(n, m)``.
        a: positive vector of shape ``(n,)``; b: positive vector of shape ``(m,)``.

    Returns:
        A Python float.

    Used in: book/keras/adafactor.md
    """
    C = _nonnegative_matrix(C)
    a = as_array(a, "a", "float64")
    b = as_array(b, "b", "float64")
    if a.shape != (C.shape[0],) or b.shape != (C.shape[1],):
        raise ValueError(
            f"a and b must have shapes ({C.shape[0]},) and ({C.shape[1]},) for C of shape "
            f"{C.shape}, got {a.shape} and {b.shape}."
        )
    for name, v in (("a", a), ("b", b)):
        check_finite(v, name)
        if np.any(v <= 0):
            raise ValueError(f"{name} must be positive, got a minimum of {v.min()!r}.")
    Q = np.outer(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogpq = np.where(C > 0, C * np.log(C / Q), 0.0)
    return float(np.sum(plogpq - C + Q))


def rank1_idiv(C):
    """Closed-form rank-1 fit of ``C`` under the I-divergence: ``(a, b)`` with ``C ≈ a b^T``.

    ``a`` holds the row sums of ``C`` and ``b`` its column sums divided by the total, so that
    ``sum(b) == 1`` (the scale between ``a`` and ``b`` is free). The product ``outer(a, b)`` has
    exactly the row sums and the column sums of ``C``.

    Args:
        C: non-negative matrix of shape ``(n, m)`` with a positive total.

    Returns:
        ``(a, b)``, float64 arrays of shapes ``(n,)`` and ``(m,)``.

    Used in: book/keras/adafactor.md
    """
    C = _nonnegative_matrix(C)
    total = C.sum()
    if total <= 0:
        raise ValueError(f"C must have a positive total, got {total!r}.")
    return C.sum(axis=1), C.sum(axis=0) / total


def ema_weights(betas):
    """Weights of a moving average ``v_t = beta_t v_{t-1} + (1 - beta_t) x_t`` over ``x_1..x_t``.

    With ``v_0 = 0`` the average is ``v_t = sum_k w_{t,k} x_k`` with
    ``w_{t,k} = (1 - beta_k) prod_{j=k+1}^{t} beta_j``.

    Args:
        betas: the decays ``beta_1, ..., beta_t``, each in ``[0, 1]``.

    Returns:
        float64 array of shape ``(t,)``: ``w_{t,1}, ..., w_{t,t}``.

    Used in: book/keras/adafactor.md
    """
    betas = as_array(betas, "betas", "float64")
    if betas.ndim != 1 or betas.size == 0:
        raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {betas.shape}.")
    if not np.all((betas >= 0) & (betas <= 1)):
        bad = betas[~((betas >= 0) & (betas <= 1))][0]
        raise ValueError(f"betas must each lie in [0, 1], got {bad!r}.")
    # prod_{j>k} beta_j, as a reversed cumulative product
    tail = np.concatenate([np.cumprod(betas[::-1])[::-1][1:], [1.0]])
    return (1.0 - betas) * tail


def slot_floats(optimizer):
    """Number of floats an optimizer stores as state, after it has been built.

    Counts every element of ``optimizer.variables`` except the step counter and the
    learning-rate variable: the moments, accumulators and placeholders.

    Args:
        optimizer: a built Keras 3 optimizer.

    Returns:
        An int.

    Used in: book/keras/adafactor.md
    """
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(f"optimizer must be a Keras optimizer, got {describe(optimizer)}.")
    if not optimizer.built:
        raise ValueError("optimizer is not built yet; call optimizer.build(variables) first.")
    skip = {id(optimizer.iterations)}
    lr = getattr(optimizer, "_learning_rate", None)
    if isinstance(lr, keras.Variable):
        skip.add(id(lr))
    return int(sum(int(np.prod(v.shape)) for v in optimizer.variables if id(v) not in skip))


# -- the optimizer -----------------------------------------------------------------------


def _check_float(name, value, low, high, low_open=False, high_open=False, allow_none=False):
    return check_real(value, name, low, None if high == np.inf else high, low_open=low_open,
                      high_open=high_open, allow_none=allow_none)


@keras.saving.register_keras_serializable(package="kexue")
class AdaFactor(keras.optimizers.Optimizer):
    """AdaFactor: Adam's adaptive step with factored second moments and no first moment.

    For every variable ``θ`` with gradient ``G`` (step ``t = 1, 2, ...``):

    * decay ``β̂_t = 1 - t^(-decay_c)`` (``β̂_1 = 0``, so no bias correction is needed);
    * **factored** variables (``ndim >= 2`` and both of the last two dims
      ``>= min_dim_size_to_factor``): a row statistic ``r`` of shape ``shape[:-1]`` and a
      column statistic ``c`` of shape ``shape[:-2] + shape[-1:]``,
      ``r <- β̂ r + (1 - β̂) mean_last(G² + ε1)``, ``c <- β̂ c + (1 - β̂) mean_second_last(G² + ε1)``,
      and ``V̂ = (r / mean(r)) ⊗ c`` is applied as ``rsqrt(r / mean(r)) ⊗ rsqrt(c)``, never
      formed or stored;
      other variables keep a full ``v <- β̂ v + (1 - β̂)(G² + ε1)``;
    * ``U = G / sqrt(V̂)``, clipped: ``Û = U / max(1, RMS(U) / clip_threshold)``;
    * relative step: ``ρ_t = min(learning_rate, 1/sqrt(t))`` if ``relative_step``, and the step
      is scaled by ``max(ε2, RMS(θ))`` if ``multiply_by_parameter_scale``;
    * optional momentum on the scaled update (``beta1``), then ``θ <- θ - step``.

    With its defaults it computes what ``keras.optimizers.Adafactor`` computes (the book checks
    this to 1e-5 over 50 steps) but stores only ``n + m`` floats for an ``n × m`` matrix, where
    Keras's version also keeps a full-size velocity; and it never forms ``V̂``, whose entries
    underflow to 0 in float32 (Keras's version then divides 0 by 0) where a whole row and a whole
    column of the gradient are zero. Its state stays in float32 or wider: ``ε1 =
    1e-30`` underflows in float16.

    Args:
        learning_rate: a float ``>= 0`` or a schedule. The paper's default is ``1e-2`` with
            ``relative_step=True``; the article recommends about ``1e-3``.
        decay_c: ``c`` of ``β̂_t = 1 - t^(-c)``, in ``(0, 1]`` (``c = 1`` is the plain average;
            Keras's ``beta_2_decay`` is ``-c``).
        epsilon1: added to the squared gradient, ``>= 0``.
        epsilon2: lower bound of the parameter scale, ``>= 0``.
        clip_threshold: ``d`` of the update clipping, ``> 0``, or ``None`` for no clipping.
        relative_step: cap the learning rate at ``1/sqrt(t)``.
        multiply_by_parameter_scale: scale the step by ``max(ε2, RMS(θ))``.
        beta1: momentum in ``[0, 1)``, or ``None`` for none (the default: no first moment).
        min_dim_size_to_factor: factor only when both last dims are at least this (0: always,
            as Keras does; 128: as the mesh-tensorflow and bert4keras versions do).
        name, **kwargs: passed to ``keras.optimizers.Optimizer``.

    Used in: book/keras/adafactor.md
    """

    def __init__(
        self,
        learning_rate=1e-3,
        decay_c=0.8,
        epsilon1=1e-30,
        epsilon2=1e-3,
        clip_threshold=1.0,
        relative_step=True,
        multiply_by_parameter_scale=True,
        beta1=None,
        min_dim_size_to_factor=0,
        name="adafactor",
        **kwargs,
    ):
        if isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
            learning_rate = _check_float("learning_rate", learning_rate, 0.0, np.inf,
                                         high_open=True)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.decay_c = _check_float("decay_c", decay_c, 0.0, 1.0, low_open=True)
        self.epsilon1 = _check_float("epsilon1", epsilon1, 0.0, np.inf, high_open=True)
        self.epsilon2 = _check_float("epsilon2", epsilon2, 0.0, np.inf, high_open=True)
        self.clip_threshold = _check_float("clip_threshold", clip_threshold, 0.0, np.inf,
                                           low_open=True, high_open=True, allow_none=True)
        self.beta1 = _check_float("beta1", beta1, 0.0, 1.0, high_open=True, allow_none=True)
        self.relative_step = check_bool(relative_step, "relative_step")
        self.multiply_by_parameter_scale = check_bool(multiply_by_parameter_scale,
                                                      "multiply_by_parameter_scale")
        self.min_dim_size_to_factor = check_int(min_dim_size_to_factor,
                                                "min_dim_size_to_factor", minimum=0)

    def factored(self, shape):
        """Whether a variable of this shape gets row and column statistics (not a full ``v``)."""
        shape = tuple(shape)
        return len(shape) >= 2 and min(shape[-2:]) >= max(self.min_dim_size_to_factor, 1)

    def build(self, var_list):
        """Create ``r`` and ``c`` for factored variables, ``v`` for the others, ``m`` if ``beta1``."""
        if self.built:
            return
        super().build(var_list)
        self._r, self._c, self._v, self._m = [], [], [], []
        for var in var_list:
            shape = tuple(var.shape)
            if self.factored(shape):
                self._r.append(self.add_variable(shape[:-1], dtype=var.dtype, name="row"))
                self._c.append(self.add_variable(shape[:-2] + shape[-1:], dtype=var.dtype,
                                                 name="column"))
                self._v.append(None)
            else:
                self._r.append(None)
                self._c.append(None)
                self._v.append(self.add_variable_from_reference(var, name="velocity"))
            self._m.append(self.add_variable_from_reference(var, name="momentum")
                           if self.beta1 is not None else None)

    @staticmethod
    def _rms(x):
        return ops.sqrt(ops.mean(ops.square(x)))

    def update_step(self, gradient, variable, learning_rate):
        """One AdaFactor step of ``variable`` with ``gradient`` (same shape)."""
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        gradient = ops.cast(gradient, dtype)
        lr = ops.cast(learning_rate, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        if self.relative_step:
            lr = ops.minimum(lr, ops.divide(1.0, ops.sqrt(t)))
        if self.multiply_by_parameter_scale:
            lr = ops.multiply(lr, ops.maximum(ops.cast(self.epsilon2, dtype), self._rms(variable)))
        beta2 = ops.subtract(1.0, ops.power(t, -self.decay_c))
        g2 = ops.add(ops.square(gradient), ops.cast(self.epsilon1, dtype))

        r, c, v = self._r[index], self._c[index], self._v[index]
        if r is not None:
            self.assign(r, ops.add(ops.multiply(beta2, r),
                                   ops.multiply(1.0 - beta2, ops.mean(g2, axis=-1))))
            self.assign(c, ops.add(ops.multiply(beta2, c),
                                   ops.multiply(1.0 - beta2, ops.mean(g2, axis=-2))))
            # U = G / sqrt(V̂) with V̂ = (r / mean(r)) ⊗ c, as G * rsqrt(r / mean(r)) * rsqrt(c):
            # forming V̂ first underflows to 0 (and 0/0) where a row and a column both have
            # zero gradient, e.g. a background pixel feeding a dead unit.
            row = ops.rsqrt(ops.divide(r, ops.mean(r, axis=-1, keepdims=True)))
            update = ops.multiply(ops.multiply(gradient, ops.expand_dims(row, -1)),
                                  ops.expand_dims(ops.rsqrt(c), -2))
        else:
            self.assign(v, ops.add(ops.multiply(beta2, v), ops.multiply(1.0 - beta2, g2)))
            update = ops.multiply(gradient, ops.rsqrt(v))

        if self.clip_threshold is not None:
            update = ops.divide(
                update, ops.maximum(1.0, ops.divide(self._rms(update), self.clip_threshold))
            )
        update = ops.multiply(lr, update)
        m = self._m[index]
        if m is not None:
            self.assign(m, ops.add(ops.multiply(self.beta1, m),
                                   ops.multiply(1.0 - self.beta1, update)))
            update = m
        self.assign_sub(variable, update)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "decay_c": self.decay_c,
                "epsilon1": self.epsilon1,
                "epsilon2": self.epsilon2,
                "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step,
                "multiply_by_parameter_scale": self.multiply_by_parameter_scale,
                "beta1": self.beta1,
                "min_dim_size_to_factor": self.min_dim_size_to_factor,
            }
        )
        return config
