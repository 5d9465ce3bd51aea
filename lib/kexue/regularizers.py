"""Weight penalties: the spectral norm of a kernel by power iteration, and its penalty.

The spectral norm of a matrix ``W`` is its largest singular value ``s = max |W v| / |v|``, the
Lipschitz constant of ``v -> W v`` in the Euclidean norm. A convolution kernel of shape
``(kh, kw, c_in, c_out)`` (or a dense kernel ``(c_in, c_out)``) is read as the matrix
``(kh·kw·c_in, c_out)``, which maps one output position's receptive field to its channels;
its spectral norm is a cheap surrogate for that of the whole convolution operator (it is not
equal to it), and the one NVAE penalises.

- :func:`spectral_norm_estimate`: ``s`` by power iteration from a fixed start vector;
- :class:`SpectralPenalty`: ``strength · s`` as a registered Keras regularizer, to pass as a
  layer's ``kernel_regularizer``, so that ``fit`` adds it to the loss (its gradient is
  ``strength · u vᵀ``, with ``u`` and ``v`` the singular vectors, held constant);
- :func:`spectral_penalty`: ``strength · Σ_i s_i`` over the convolution and dense kernels of a
  layer or model (or over a list of kernels), e.g. to report what the penalty sees.

Keras's ``keras.layers.SpectralNormalization`` *divides* a kernel by its spectral norm (a
normalisation); the penalty here only pushes the norms down, the way NVAE does.

Used in: book/generative/nvae.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    ArgumentTypeError,
    as_float_tensor,
    check_finite,
    check_int,
    check_real,
    describe,
)

__all__ = ["spectral_norm_estimate", "SpectralPenalty", "spectral_penalty"]


def _as_matrix(kernel, name="kernel"):
    w = as_float_tensor(kernel, name)
    if len(w.shape) < 2:
        raise ValueError(f"{name} must have at least 2 axes (a dense kernel (c_in, c_out) or a "
                         f"convolution kernel (..., c_in, c_out)), got shape {tuple(w.shape)}.")
    check_finite(w, name)
    return ops.reshape(w, (-1, w.shape[-1]))


def _normalise(v, eps=1e-12):
    return v / (ops.sqrt(ops.sum(ops.square(v))) + eps)


def spectral_norm_estimate(kernel, iterations=30, seed=0):
    """The largest singular value of ``kernel`` read as a ``(kh·kw·c_in, c_out)`` matrix.

    Power iteration on ``W`` (the kernel reshaped): from ``v₀`` (standard normal, drawn by
    NumPy with ``seed``), repeat ``u ← W v / |W v|``, ``v ← Wᵀ u / |Wᵀ u|``, and return
    ``s = uᵀ W v`` with ``u`` and ``v`` held constant (``stop_gradient``), so that the gradient
    of ``s`` with respect to the kernel is ``u vᵀ`` (reshaped), the gradient of the true
    singular value. The estimate approaches ``s`` from below, geometrically at the rate
    ``(s₂ / s₁)²`` per iteration.

    Args:
        kernel: a float array or tensor with at least 2 axes, ``(..., c_in, c_out)``.
        iterations: power iterations, an integer >= 1.
        seed: seed of the start vector, an integer >= 0.

    Returns:
        A scalar tensor of the kernel's dtype.

    Used in: book/generative/nvae.md
    """
    w = _as_matrix(kernel)
    iterations = check_int(iterations, "iterations")
    seed = check_int(seed, "seed", 0)
    n = int(w.shape[-1])
    v0 = np.random.default_rng(seed).standard_normal(n)
    v = _normalise(ops.convert_to_tensor(v0, dtype=w.dtype))
    w_const = ops.stop_gradient(w)
    u = v
    for _ in range(iterations):
        u = _normalise(ops.matmul(w_const, v))
        v = _normalise(ops.matmul(ops.transpose(w_const), u))
    u, v = ops.stop_gradient(u), ops.stop_gradient(v)
    return ops.sum(u * ops.matmul(w, v))


@keras.saving.register_keras_serializable(package="kexue")
class SpectralPenalty(keras.regularizers.Regularizer):
    """``strength · s(W)``: a kernel regularizer penalising the spectral norm of the kernel.

    ``s`` is :func:`spectral_norm_estimate` with ``iterations`` power iterations from a fixed
    start vector (so the penalty is a deterministic function of the kernel). Pass it as
    ``kernel_regularizer=SpectralPenalty(1e-3)`` to ``Conv2D`` or ``Dense``; Keras adds it to
    the training loss, and it saves and loads with the layer.

    Args:
        strength: the coefficient ``λ``, a real number >= 0.
        iterations: power iterations per evaluation, an integer >= 1.
        seed: seed of the start vector.

    Used in: book/generative/nvae.md
    """

    def __init__(self, strength=1e-3, iterations=4, seed=0):
        self.strength = check_real(strength, "strength", 0.0)
        self.iterations = check_int(iterations, "iterations")
        self.seed = check_int(seed, "seed", 0)

    def __call__(self, kernel):
        return self.strength * spectral_norm_estimate(kernel, self.iterations, self.seed)

    def get_config(self):
        return {"strength": self.strength, "iterations": self.iterations, "seed": self.seed}

    def __repr__(self):
        return (f"SpectralPenalty(strength={self.strength}, iterations={self.iterations}, "
                f"seed={self.seed})")


_KERNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                  keras.layers.Conv3D, keras.layers.Conv2DTranspose)


def _kernels_of(source):
    if isinstance(source, keras.layers.Layer):
        layers = source._flatten_layers(include_self=True)
        kernels = [layer.kernel for layer in layers
                   if isinstance(layer, _KERNEL_LAYERS) and layer.built]
        if not kernels:
            raise ValueError(f"model has no built Dense or convolution layer with a kernel, "
                             f"got {describe(source)}.")
        return kernels
    if isinstance(source, (list, tuple)) and source:
        return list(source)
    raise ArgumentTypeError(f"model must be a Keras layer or model, or a non-empty list of "
                            f"kernels, got {describe(source)}.")


def spectral_penalty(model, strength=1.0, iterations=30, seed=0):
    """``strength · Σ_i s_i``: the spectral norms of every kernel of ``model``, summed.

    Args:
        model: a Keras layer or model (its built ``Dense``, ``Conv1D/2D/3D`` and
            ``Conv2DTranspose`` layers are visited, nested ones included), or a list of kernels.
        strength: the coefficient ``λ``, a real number >= 0.
        iterations, seed: as in :func:`spectral_norm_estimate`.

    Returns:
        A scalar tensor.

    Used in: book/generative/nvae.md
    """
    kernels = _kernels_of(model)
    strength = check_real(strength, "strength", 0.0)
    total = 0.0
    for kernel in kernels:
        total = total + spectral_norm_estimate(kernel, iterations, seed)
    return strength * total
