"""Variational autoencoders with a hierarchy of Gaussian latent groups.

The book follows the notation of the NVAE article: ``p(z|x)`` is the encoder (the approximate
posterior), ``q(z)`` the prior and ``q(x|z)`` the decoder. In the code the names say
*posterior* and *prior*, never a letter.

- densities and divergences of diagonal Gaussians and Bernoullis (``keras.ops``, element by
  element): :func:`gaussian_log_prob`, :func:`bernoulli_log_prob`, :func:`gaussian_kl` and
  :func:`residual_normal_kl`, the KL of a posterior written *relative to* its prior;
- the chain rule of KL across groups on a linear-Gaussian chain of two scalars, in closed form
  (NumPy, float64): :func:`linear_gaussian_chain` (the joint of the chain),
  :func:`multivariate_gaussian_kl` and :func:`chain_kl_terms`;
- :func:`latent_count`: the number of latent dimensions of a hierarchy;
- the NVAE cells: :class:`SqueezeExcitation`, :class:`EncoderCell`, :class:`DecoderCell`;
- :class:`HierarchicalVAE`: groups of latents at several scales, a top-down path shared by
  inference and generation, an optionally residual posterior, KL warm-up, per-group KLs,
  ELBO and importance-weighted bounds, sampling at a temperature, batch-norm recalibration;
- :class:`BernoulliBatches`: dynamically binarised images for ``fit``.

Used in: book/generative/nvae.md
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    as_array,
    as_float_tensor,
    check_backend,
    check_bool,
    check_finite,
    check_int,
    check_real,
    check_shape,
    describe,
)

__all__ = [
    "gaussian_log_prob",
    "bernoulli_log_prob",
    "gaussian_kl",
    "residual_normal_kl",
    "linear_gaussian_chain",
    "multivariate_gaussian_kl",
    "chain_kl_terms",
    "latent_count",
    "SqueezeExcitation",
    "EncoderCell",
    "DecoderCell",
    "HierarchicalVAE",
    "BernoulliBatches",
]

VAE_BACKENDS = ("tensorflow", "jax")
_LOG_2PI = math.log(2 * math.pi)


# --------------------------------------------------------------------------- densities and KLs


def _same_shape(named):
    """Float tensors of one shape (no silent broadcasting of mismatched arguments)."""
    out, dims = [], {}
    first = None
    for name, value in named:
        t = as_float_tensor(value, name)
        check_finite(t, name)
        if first is None:
            first = tuple(t.shape)
            dims = {f"d{i}": d for i, d in enumerate(first)}
        check_shape(t, name, tuple(f"d{i}" for i in range(len(first))), dict(dims))
        out.append(t)
    return out


def gaussian_log_prob(x, mean, logvar):
    """``log N(x; mean, exp(logvar))`` element by element, in nats.

    ``-½ (log 2π + logvar + (x − mean)² / exp(logvar))``. All three arguments have one shape
    (any); the result has that shape.

    Used in: book/generative/nvae.md
    """
    x, mean, logvar = _same_shape((("x", x), ("mean", mean), ("logvar", logvar)))
    return -0.5 * (_LOG_2PI + logvar + ops.square(x - mean) * ops.exp(-logvar))


def bernoulli_log_prob(x, logits):
    """``log Bernoulli(x; sigmoid(logits))`` element by element, in nats.

    ``x · logits − softplus(logits)``, stable for large logits; ``x`` in ``[0, 1]`` (binary
    data, or grey levels for the continuous relaxation). Same shape for both arguments.

    Used in: book/generative/nvae.md
    """
    x, logits = _same_shape((("x", x), ("logits", logits)))
    return x * logits - ops.softplus(logits)


def gaussian_kl(mean1, logvar1, mean2, logvar2):
    """``KL(N(mean1, exp(logvar1)) ‖ N(mean2, exp(logvar2)))`` element by element, in nats.

    ``½ (logvar2 − logvar1 + (exp(logvar1) + (mean1 − mean2)²) / exp(logvar2) − 1)``. The four
    arguments have one shape; sum the result over the dimensions of a diagonal Gaussian.

    Used in: book/generative/nvae.md
    """
    m1, v1, m2, v2 = _same_shape((("mean1", mean1), ("logvar1", logvar1), ("mean2", mean2),
                                  ("logvar2", logvar2)))
    return 0.5 * (v2 - v1 + (ops.exp(v1) + ops.square(m1 - m2)) * ops.exp(-v2) - 1.0)


def residual_normal_kl(delta_mean, delta_logvar, prior_logvar):
    """KL of the residual normal posterior to its prior, element by element, in nats.

    Prior ``N(μ, σ²)``, posterior ``N(μ + Δμ, σ² Δσ²)`` with ``delta_mean = Δμ``,
    ``delta_logvar = log Δσ²`` and ``prior_logvar = log σ²``:
    ``½ (Δμ² / σ² + Δσ² − log Δσ² − 1)``. It does not depend on the prior's mean: when the
    prior moves, the posterior moves with it at no cost. Same shape for the three arguments.

    Used in: book/generative/nvae.md
    """
    dm, dv, v = _same_shape((("delta_mean", delta_mean), ("delta_logvar", delta_logvar),
                             ("prior_logvar", prior_logvar)))
    return 0.5 * (ops.square(dm) * ops.exp(-v) + ops.exp(dv) - dv - 1.0)


# --------------------------------------------------------------------------- the chain rule


def _scalar(value, name, positive=False):
    return check_real(value, name, 0.0 if positive else None, low_open=positive)


def linear_gaussian_chain(mean1, std1, slope, offset, std2):
    """The joint Gaussian of ``z₁ ~ N(mean1, std1²)``, ``z₂ | z₁ ~ N(slope·z₁ + offset, std2²)``.

    Returns ``(mean (2,), cov (2, 2))`` as float64 NumPy: mean ``(m, a m + b)``, covariance
    ``[[s², a s²], [a s², a² s² + t²]]``.

    Used in: book/generative/nvae.md
    """
    m = _scalar(mean1, "mean1")
    s = _scalar(std1, "std1", positive=True)
    a = _scalar(slope, "slope")
    b = _scalar(offset, "offset")
    t = _scalar(std2, "std2", positive=True)
    mean = np.array([m, a * m + b])
    cov = np.array([[s * s, a * s * s], [a * s * s, a * a * s * s + t * t]])
    return mean, cov


def multivariate_gaussian_kl(mean_p, cov_p, mean_q, cov_q):
    """``KL(N(mean_p, cov_p) ‖ N(mean_q, cov_q))`` in nats, float64 NumPy.

    ``½ [tr(Σ_q⁻¹ Σ_p) + Δμᵀ Σ_q⁻¹ Δμ − d + log det Σ_q − log det Σ_p]`` with
    ``Δμ = mean_q − mean_p``; means ``(d,)``, covariances ``(d, d)`` symmetric positive
    definite.

    Used in: book/generative/nvae.md
    """
    mp = as_array(mean_p, "mean_p", "float64")
    mq = as_array(mean_q, "mean_q", "float64")
    sp = as_array(cov_p, "cov_p", "float64")
    sq = as_array(cov_q, "cov_q", "float64")
    if mp.ndim != 1 or mp.size == 0:
        raise ValueError(f"mean_p must have shape (d,), got shape {mp.shape}.")
    d = mp.size
    for name, arr, shape in (("mean_q", mq, (d,)), ("cov_p", sp, (d, d)), ("cov_q", sq, (d, d))):
        if arr.shape != shape:
            raise ValueError(f"{name} must have shape {shape} to match mean_p, got shape "
                             f"{arr.shape}.")
        check_finite(arr, name)
    check_finite(mp, "mean_p")
    for name, arr in (("cov_p", sp), ("cov_q", sq)):
        if not np.allclose(arr, arr.T) or np.linalg.eigvalsh(arr).min() <= 0:
            raise ValueError(f"{name} must be symmetric positive definite, got eigenvalues "
                             f"{np.linalg.eigvalsh((arr + arr.T) / 2)}.")
    diff = mq - mp
    solve = np.linalg.solve(sq, np.column_stack([sp, diff]))
    _, logdet_p = np.linalg.slogdet(sp)
    _, logdet_q = np.linalg.slogdet(sq)
    return float(0.5 * (np.trace(solve[:, :d]) + diff @ solve[:, d] - d + logdet_q - logdet_p))


def chain_kl_terms(posterior, prior):
    """The two terms of the KL chain rule for two linear-Gaussian chains of two scalars.

    ``posterior`` and ``prior`` are ``(mean1, std1, slope, offset, std2)`` tuples as in
    :func:`linear_gaussian_chain`. Returns ``(kl1, kl2)``: ``kl1 = KL(p(z₁) ‖ q(z₁))`` and
    ``kl2 = E_{z₁~p} KL(p(z₂|z₁) ‖ q(z₂|z₁))``, both in closed form (the inner KL is quadratic
    in ``z₁``). Their sum is the KL of the joints (:func:`multivariate_gaussian_kl`).

    Used in: book/generative/nvae.md
    """
    for name, value in (("posterior", posterior), ("prior", prior)):
        if not isinstance(value, (tuple, list)) or len(value) != 5:
            raise ValueError(f"{name} must be a tuple (mean1, std1, slope, offset, std2), got "
                             f"{describe(value)}.")
    linear_gaussian_chain(*posterior)
    linear_gaussian_chain(*prior)
    m, s, a, b, t = (float(v) for v in posterior)
    mq, sq, aq, bq, tq = (float(v) for v in prior)
    kl1 = math.log(sq / s) + (s * s + (m - mq) ** 2) / (2 * sq * sq) - 0.5
    c, d = a - aq, b - bq                       # gap of the conditional means: c z₁ + d
    mean_gap_sq = (c * m + d) ** 2 + c * c * s * s
    kl2 = math.log(tq / t) + (t * t + mean_gap_sq) / (2 * tq * tq) - 0.5
    return kl1, kl2


def latent_count(groups, sizes, channels):
    """``Σ_s groups[s] · sizes[s]² · channels[s]``: latent dimensions of a hierarchy.

    Args:
        groups: groups per scale, a sequence of integers >= 1.
        sizes: the square feature map's side at each scale, same length.
        channels: latent channels per group, one integer for all scales or one per scale.

    Used in: book/generative/nvae.md
    """
    if not isinstance(groups, (list, tuple)) or not groups:
        raise ValueError(f"groups must be a non-empty list of integers, got {describe(groups)}.")
    if not isinstance(sizes, (list, tuple)) or len(sizes) != len(groups):
        raise ValueError(f"sizes must be a list of {len(groups)} integers to match groups, got "
                         f"{describe(sizes)}.")
    if isinstance(channels, (list, tuple)):
        if len(channels) != len(groups):
            raise ValueError(f"channels must be one integer or {len(groups)} integers to match "
                             f"groups, got {describe(channels)}.")
    else:
        channels = [channels] * len(groups)
    total = 0
    for i, (g, s, c) in enumerate(zip(groups, sizes, channels)):
        total += (check_int(g, f"groups[{i}]") * check_int(s, f"sizes[{i}]") ** 2
                  * check_int(c, f"channels[{i}]"))
    return total


# --------------------------------------------------------------------------- cells


def _conv(channels, kernel, regularizer=None, **kwargs):
    return keras.layers.Conv2D(channels, kernel, padding="same", kernel_regularizer=regularizer,
                               **kwargs)


def _regularizer_config(regularizer):
    return None if regularizer is None else keras.regularizers.serialize(regularizer)


@keras.saving.register_keras_serializable(package="kexue")
class SqueezeExcitation(keras.layers.Layer):
    """Channel gating: ``x · sigmoid(W₂ relu(W₁ mean_{h,w} x))``, ``(batch, h, w, c)`` in and out.

    ``W₁`` maps the ``c`` channel means to ``max(c // reduction, 4)`` units, ``W₂`` back to
    ``c`` gates in ``(0, 1)``.

    Used in: book/generative/nvae.md
    """

    def __init__(self, reduction=4, **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_int(reduction, "reduction")
        self.down = None
        self.up = None

    def build(self, input_shape):
        check_shape(keras.KerasTensor(input_shape), "inputs", (None, None, None, None))
        c = int(input_shape[-1])
        self.down = keras.layers.Dense(max(c // self.reduction, 4), activation="relu",
                                       name="down")
        self.up = keras.layers.Dense(c, activation="sigmoid", name="up")
        self.down.build((None, c))
        self.up.build((None, max(c // self.reduction, 4)))

    def call(self, inputs):
        gates = self.up(self.down(ops.mean(inputs, axis=(1, 2))))
        return inputs * gates[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


class _Cell(keras.layers.Layer):
    """A residual cell ``x + residual_scale · f(x)`` on ``(batch, h, w, channels)``."""

    def __init__(self, channels, residual_scale=0.1, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.channels = check_int(channels, "channels")
        self.residual_scale = check_real(residual_scale, "residual_scale")
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.steps = []

    def build(self, input_shape):
        check_shape(keras.KerasTensor(input_shape), "inputs", (None, None, None, self.channels))
        shape = tuple(input_shape)
        for layer in self.steps:
            if not isinstance(layer, str):
                layer.build(shape)
                shape = tuple(layer.compute_output_shape(shape))

    def call(self, inputs, training=None):
        h = inputs
        for layer in self.steps:
            if layer == "swish":
                h = keras.activations.silu(h)
            elif isinstance(layer, keras.layers.BatchNormalization):
                h = layer(h, training=training)
            else:
                h = layer(h)
        return inputs + self.residual_scale * h

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "residual_scale": self.residual_scale,
                "kernel_regularizer": _regularizer_config(self.kernel_regularizer)}


@keras.saving.register_keras_serializable(package="kexue")
class EncoderCell(_Cell):
    """NVAE's encoder cell: ``x + s · SE(conv₃(swish(BN(conv₃(swish(BN(x)))))))``.

    Two 3×3 convolutions of ``channels`` each after batch norm and swish, squeeze-excitation,
    and a residual connection scaled by ``residual_scale`` (``s``).
    ``(batch, h, w, channels)`` in and out.

    Used in: book/generative/nvae.md
    """

    def __init__(self, channels, residual_scale=0.1, kernel_regularizer=None, **kwargs):
        super().__init__(channels, residual_scale, kernel_regularizer, **kwargs)
        reg = self.kernel_regularizer
        self.steps = [keras.layers.BatchNormalization(name="bn1"), "swish",
                      _conv(channels, 3, reg, name="conv1", use_bias=False),
                      keras.layers.BatchNormalization(name="bn2"), "swish",
                      _conv(channels, 3, reg, name="conv2"),
                      SqueezeExcitation(name="se")]


@keras.saving.register_keras_serializable(package="kexue")
class DecoderCell(_Cell):
    """NVAE's decoder cell: an inverted residual with a depthwise 5×5 convolution.

    ``BN → conv₁ₓ₁ (expand·channels) → BN → swish → depthwise 5×5 → BN → swish → conv₁ₓ₁
    (channels) → BN → SE``, added to the input with the scale ``residual_scale``.
    ``(batch, h, w, channels)`` in and out.

    Used in: book/generative/nvae.md
    """

    def __init__(self, channels, expand=2, residual_scale=0.1, kernel_regularizer=None,
                 **kwargs):
        super().__init__(channels, residual_scale, kernel_regularizer, **kwargs)
        self.expand = check_int(expand, "expand")
        reg = self.kernel_regularizer
        self.steps = [keras.layers.BatchNormalization(name="bn1"),
                      _conv(self.expand * channels, 1, reg, name="expand", use_bias=False),
                      keras.layers.BatchNormalization(name="bn2"), "swish",
                      keras.layers.DepthwiseConv2D(5, padding="same", use_bias=False,
                                                   name="depthwise"),
                      keras.layers.BatchNormalization(name="bn3"), "swish",
                      _conv(channels, 1, reg, name="project", use_bias=False),
                      keras.layers.BatchNormalization(name="bn4"),
                      SqueezeExcitation(name="se")]

    def get_config(self):
        return {**super().get_config(), "expand": self.expand}


# --------------------------------------------------------------------------- the model


def _soft_clamp(x, bound=5.0):
    """``bound · tanh(x / bound)``: the identity near 0, never beyond ``±bound``."""
    return bound * ops.tanh(x / bound)


def _space_to_depth(x):
    """``(b, 2h, 2w, c) -> (b, h, w, 4c)``: each 2×2 block of pixels becomes 4 channels."""
    _, height, width, c = x.shape
    x = ops.reshape(x, (-1, height // 2, 2, width // 2, 2, c))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height // 2, width // 2, 4 * c))


def _depth_to_space(x):
    """``(b, h, w, 4c) -> (b, 2h, 2w, c)``, the inverse of :func:`_space_to_depth`."""
    _, height, width, c4 = x.shape
    x = ops.reshape(x, (-1, height, width, 2, 2, c4 // 4))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, 2 * height, 2 * width, c4 // 4))


def _check_scales(scales, img_shape):
    if not isinstance(scales, (list, tuple)) or not scales:
        raise ValueError(f"scales must be a non-empty list of (size, groups, latent_channels) "
                         f"triples, coarsest first, got {describe(scales)}.")
    out = []
    for i, triple in enumerate(scales):
        if not isinstance(triple, (list, tuple)) or len(triple) != 3:
            raise ValueError(f"scales[{i}] must be a (size, groups, latent_channels) triple, got "
                             f"{describe(triple)}.")
        out.append(tuple(check_int(v, f"scales[{i}]") for v in triple))
    sizes = [s for s, _, _ in out]
    height = img_shape[0]
    allowed = []
    r = height
    while r % 2 == 0 and r // 2 >= 1:
        r //= 2
        allowed.append(r)
    if any(s not in allowed for s in sizes) or sizes != sorted(set(sizes)):
        raise ValueError(f"scales must list distinct sizes from coarsest to finest, each the "
                         f"image side {height} halved one or more times ({allowed}), got sizes "
                         f"{sizes}.")
    return tuple(out)


@keras.saving.register_keras_serializable(package="kexue")
class HierarchicalVAE(keras.Model):
    """A small NVAE: latent groups at several scales, a shared top-down path, Bernoulli pixels.

    **Bottom-up (encoder).** Each 2×2 block of pixels becomes 4 channels (side ``H/2``) and a
    3×3 stem convolution maps them to ``channels``; then at every side ``H/2, H/4, …`` down to
    the coarsest scale an :class:`EncoderCell` (after a stride-2 convolution below ``H/2``);
    the output at each side is that scale's feature map ``e_s``.

    **Top-down (decoder, shared by inference and generation).** A learned constant ``h`` at the
    coarsest side. For each group ``l`` (coarse to fine): the prior's parameters
    ``(μ, log σ²) = conv₃(elu(h))``; in inference the posterior's from
    ``conv₃(elu([h, e_s]))``, as corrections ``(Δμ, log Δσ²)`` of the prior's when
    ``residual_posterior`` (the residual normal), else directly; ``z_l`` is drawn from the
    posterior (inference) or the prior (generation), and ``h ← DecoderCell(h + conv₁ₓ₁(z_l))``.
    Because ``h`` carries ``z_{<l}``, prior and posterior of ``z_l`` depend on the groups before
    it: both are autoregressive over groups. Between sides the decoder upsamples with a
    stride-2 transposed convolution; at ``H/2`` a 3×3 convolution gives 4 logits per position,
    rearranged into the 2×2 block of pixels (the inverse of the stem's rearrangement), the
    Bernoulli logits. All parameters of the Gaussians are soft-clamped to ``±5``.

    **Training** (``fit`` on images in ``[0, 1]``, e.g. :class:`BernoulliBatches`; targets are
    not used): minimises ``mean_x [−log q(x|z) + β Σ_l KL_l] + penalties``, with ``KL_l`` the
    analytic KL of group ``l`` given the sampled ``z_{<l}`` (one-sample chain rule),
    ``β = min(1, max(kl_min, t / kl_warmup_steps))`` at training step ``t`` (``β = 1`` without
    warm-up) and the penalties of the layers (:class:`kexue.regularizers.SpectralPenalty` on
    every convolution when ``spectral_strength > 0``). ``fit`` logs ``loss``, ``nelbo``
    (``recon + kl``, the unweighted −ELBO), ``recon``, ``kl``, ``kl_1 … kl_L`` (per group,
    nats per image) and ``beta``.

    ``vae(x)`` returns ``{"logits": (batch, H, W, C), "kl": (batch, L)}``: posterior samples in
    training mode, posterior means otherwise (deterministic reconstructions).

    Args:
        img_shape: ``(H, W, C)`` of the images, ``H`` divisible by 2 down to the coarsest scale.
        scales: ``(size, groups, latent_channels)`` triples, coarsest first.
        channels: width of every feature map.
        residual_posterior: parameterise the posterior relative to the prior.
        kl_warmup_steps: training steps of the linear KL warm-up (0: none).
        kl_min: the smallest ``β`` during warm-up.
        spectral_strength: ``λ`` of the spectral penalty on every convolution (0: none).
        seed: seed of the training-time latent draws (``None``: Keras's global seed).

    Backends: TensorFlow and JAX.

    Used in: book/generative/nvae.md
    """

    def __init__(self, img_shape=(28, 28, 1), scales=((7, 2, 4), (14, 2, 4)), channels=16,
                 residual_posterior=True, kl_warmup_steps=0, kl_min=1e-4,
                 spectral_strength=0.0, seed=None, **kwargs):
        check_backend("HierarchicalVAE", VAE_BACKENDS)
        if not isinstance(img_shape, (list, tuple)) or len(img_shape) != 3:
            raise ValueError(f"img_shape must be (height, width, channels), got "
                             f"{describe(img_shape)}.")
        img_shape = tuple(check_int(v, "img_shape") for v in img_shape)
        scales = _check_scales(scales, img_shape)
        channels = check_int(channels, "channels")
        residual_posterior = check_bool(residual_posterior, "residual_posterior")
        kl_warmup_steps = check_int(kl_warmup_steps, "kl_warmup_steps", 0)
        kl_min = check_real(kl_min, "kl_min", 0.0, 1.0)
        spectral_strength = check_real(spectral_strength, "spectral_strength", 0.0)
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        super().__init__(**kwargs)
        self.img_shape, self.scales, self.channels = img_shape, scales, channels
        self.residual_posterior = residual_posterior
        self.kl_warmup_steps, self.kl_min = kl_warmup_steps, kl_min
        self.spectral_strength, self.seed = spectral_strength, seed
        reg = None
        if spectral_strength > 0:
            from kexue.regularizers import SpectralPenalty

            reg = SpectralPenalty(spectral_strength)
        coarsest = scales[0][0]
        self.sides = []
        side = img_shape[0]
        while side > coarsest:
            side //= 2
            self.sides.append(side)                     # H/2, H/4, ..., coarsest
        groups_at = {s: (g, c) for s, g, c in scales}
        self.group_sides = [s for s, g, _ in scales for _ in range(g)]
        self.group_channels = [c for _, g, c in scales for _ in range(g)]
        self.num_groups = len(self.group_sides)

        self.stem = _conv(channels, 3, reg, name="stem")
        self.downs = [_conv(channels, 3, reg, strides=2, name=f"down_{s}")
                      for s in self.sides[1:]]
        self.encoder_cells = [EncoderCell(channels, kernel_regularizer=reg, name=f"enc_{s}")
                              for s in self.sides]
        self.h0 = self.add_weight(shape=(coarsest, coarsest, channels), initializer="zeros",
                                  name="h0")
        self.prior_convs, self.posterior_convs, self.latent_projections = [], [], []
        self.group_cells = []
        for i, c in enumerate(self.group_channels):
            self.prior_convs.append(_conv(2 * c, 3, reg, name=f"prior_{i + 1}"))
            self.posterior_convs.append(_conv(2 * c, 3, reg, name=f"posterior_{i + 1}"))
            self.latent_projections.append(_conv(channels, 1, reg, name=f"z_in_{i + 1}"))
            self.group_cells.append(DecoderCell(channels, kernel_regularizer=reg,
                                                name=f"dec_{i + 1}"))
        plain = [s for s in self.sides if s not in groups_at]
        self.plain_cells = [DecoderCell(channels, kernel_regularizer=reg, name=f"dec_side_{s}")
                            for s in plain]
        self.plain_sides = plain
        self.ups = [keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same",
                                                 kernel_regularizer=reg, name=f"up_{s}")
                    for s in reversed(self.sides[1:])]
        self.out_conv = _conv(4 * img_shape[-1], 3, reg, name="logits")
        self.train_steps = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="train_steps")
        self.seed_generator = keras.random.SeedGenerator(seed)
        names = ["nelbo", "recon", "kl"] + [f"kl_{i + 1}" for i in range(self.num_groups)]
        self.trackers = {k: keras.metrics.Mean(name=k) for k in names + ["beta"]}
        self._forward(ops.zeros((1,) + img_shape), training=False, sample=False)
        self.built = True

    # ------------------------------------------------------------------ configuration
    def get_config(self):
        return {"img_shape": list(self.img_shape), "scales": [list(s) for s in self.scales],
                "channels": self.channels, "residual_posterior": self.residual_posterior,
                "kl_warmup_steps": self.kl_warmup_steps, "kl_min": self.kl_min,
                "spectral_strength": self.spectral_strength, "seed": self.seed,
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    @property
    def latent_dims(self):
        """Latent dimensions per group, a list of ``L`` integers."""
        return [s * s * c for s, c in zip(self.group_sides, self.group_channels)]

    # ------------------------------------------------------------------ the two paths
    def _encode(self, x, training):
        h = self.stem(_space_to_depth(x))
        features = {}
        for k, (side, cell) in enumerate(zip(self.sides, self.encoder_cells)):
            if k:
                h = self.downs[k - 1](h)
            h = cell(h, training=training)
            features[side] = h
        return features

    def _split(self, params):
        mean, logvar = ops.split(_soft_clamp(params), 2, axis=-1)
        return mean, logvar

    def _top_down(self, batch, features, training, sample, noise, temperature=1.0,
                  with_ratio=False):
        """Run the decoder. ``features``: the encoder's maps (inference) or ``None``
        (generation). ``noise(i, shape)`` gives the standard normal draw of group ``i``.
        Returns ``(logits, kl (batch, L), log_ratio (batch, L))``; ``log_ratio`` is
        ``log prior − log posterior`` at the drawn ``z`` (``None`` in generation or without
        ``with_ratio``)."""
        h = ops.broadcast_to(ops.cast(self.h0, self.compute_dtype)[None],
                             (batch,) + tuple(self.h0.shape))
        kls, ratios = [], []
        group = 0
        for k, side in enumerate(self.sides[::-1]):
            while group < self.num_groups and self.group_sides[group] == side:
                i = group
                prior_mean, prior_logvar = self._split(self.prior_convs[i](ops.elu(h)))
                if features is None:
                    eps = noise(i, ops.shape(prior_mean))
                    z = prior_mean + temperature * ops.exp(0.5 * prior_logvar) * eps
                else:
                    both = ops.concatenate([h, features[side]], axis=-1)
                    a, b = self._split(self.posterior_convs[i](ops.elu(both)))
                    if self.residual_posterior:
                        mean, logvar = prior_mean + a, prior_logvar + b
                        kl = residual_normal_kl(a, b, prior_logvar)
                    else:
                        mean, logvar = a, b
                        kl = gaussian_kl(a, b, prior_mean, prior_logvar)
                    kls.append(ops.sum(kl, axis=(1, 2, 3)))
                    if sample:
                        z = mean + ops.exp(0.5 * logvar) * noise(i, ops.shape(mean))
                    else:
                        z = mean
                    if with_ratio:
                        ratio = (gaussian_log_prob(z, prior_mean, prior_logvar)
                                 - gaussian_log_prob(z, mean, logvar))
                        ratios.append(ops.sum(ratio, axis=(1, 2, 3)))
                h = self.group_cells[i](h + self.latent_projections[i](z), training=training)
                group += 1
            if side in self.plain_sides:
                h = self.plain_cells[self.plain_sides.index(side)](h, training=training)
            if k < len(self.ups):
                h = self.ups[k](h)
        logits = _depth_to_space(self.out_conv(ops.elu(h)))
        if features is None:
            return logits, None, None
        return logits, ops.stack(kls, axis=1), ops.stack(ratios, axis=1) if ratios else None

    def _forward(self, x, training, sample, seed_generator=None, with_ratio=False):
        x = ops.cast(x, self.compute_dtype)
        gen = self.seed_generator if seed_generator is None else seed_generator

        def noise(i, shape):
            return keras.random.normal(shape, seed=gen, dtype=self.compute_dtype)

        return self._top_down(ops.shape(x)[0], self._encode(x, training), training, sample,
                              noise, with_ratio=with_ratio)

    def call(self, inputs, training=None):
        logits, kl, _ = self._forward(inputs, training=bool(training), sample=bool(training))
        return {"logits": logits, "kl": kl}

    # ------------------------------------------------------------------ training
    def _beta(self):
        if self.kl_warmup_steps == 0:
            return ops.ones((), self.compute_dtype)
        t = ops.cast(self.train_steps, self.compute_dtype)
        return ops.clip(t / self.kl_warmup_steps, self.kl_min, 1.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``mean_x [recon + β Σ_l KL_l]`` plus the layers' penalties, from ``y_pred =
        vae(x)`` (``y`` and ``sample_weight`` unused). Updates the logged metrics; in training
        also counts the step for the warm-up."""
        if x is None or y_pred is None:
            raise ValueError(f"compute_loss needs the images x and y_pred = vae(x), got "
                             f"x={describe(x)} and y_pred={describe(y_pred)}.")
        x = ops.cast(x, self.compute_dtype)
        recon = -ops.sum(bernoulli_log_prob(x, y_pred["logits"]), axis=(1, 2, 3))
        kl = y_pred["kl"]
        beta = self._beta()
        kl_total = ops.sum(kl, axis=1)
        loss = ops.mean(recon + beta * kl_total)
        for penalty in self.losses:                  # the layers' regularizers
            loss = loss + ops.cast(penalty, loss.dtype)
        if training:
            self.train_steps.assign(self.train_steps + 1.0)
        values = {"nelbo": ops.mean(recon + kl_total), "recon": ops.mean(recon),
                  "kl": ops.mean(kl_total), "beta": beta}
        kl_means = ops.mean(kl, axis=0)
        for i in range(self.num_groups):
            values[f"kl_{i + 1}"] = kl_means[i]
        for key, value in values.items():
            self.trackers[key].update_state(value)
        return loss

    # ------------------------------------------------------------------ evaluation
    def _images(self, x, name="x"):
        arr = as_array(x, name, "float32")
        if arr.ndim != 4 or arr.shape[1:] != self.img_shape or arr.shape[0] == 0:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self.img_shape))})"
                             f" with n >= 1, got shape {arr.shape}.")
        check_finite(arr, name)
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(f"{name} must hold values in [0, 1], got values in "
                             f"[{arr.min():.4g}, {arr.max():.4g}].")
        return arr

    def elbo(self, x, seed=0, batch_size=500, return_kl=False):
        """The evidence lower bound of each image, in nats (one posterior sample).

        ``log q(x|z) − Σ_l KL_l`` with ``z`` drawn from the posterior and the per-group KLs in
        closed form given the drawn groups before them; batch norm in inference mode.

        Args:
            x: ``(n, H, W, C)`` images in ``[0, 1]`` (binary for a likelihood).
            seed: seed of the posterior draws.
            batch_size: images per forward pass.
            return_kl: also return the per-group KLs ``(n, L)``.

        Returns:
            ``(n,)`` float64 NumPy (and ``(n, L)`` with ``return_kl``).
        """
        x = self._images(x)
        gen = keras.random.SeedGenerator(check_int(seed, "seed", 0))
        batch_size = check_int(batch_size, "batch_size")
        bounds, kls = [], []
        for i in range(0, len(x), batch_size):
            xb = ops.convert_to_tensor(x[i:i + batch_size])
            logits, kl, _ = self._forward(xb, training=False, sample=True, seed_generator=gen)
            log_lik = ops.sum(bernoulli_log_prob(xb, logits), axis=(1, 2, 3))
            bounds.append(ops.convert_to_numpy(log_lik - ops.sum(kl, axis=1)))
            kls.append(ops.convert_to_numpy(kl))
        out = np.concatenate(bounds).astype("float64")
        if return_kl:
            return out, np.concatenate(kls).astype("float64")
        return out

    def iwae_bound(self, x, k=50, seed=0, batch_size=500, return_elbo=False):
        """The importance-weighted bound of each image with ``k`` samples, in nats.

        ``log (1/k) Σ_j w_j`` with ``log w_j = log q(x|z_j) + log q(z_j) − log p(z_j|x)`` and
        ``z_j`` drawn from the posterior; it is at least the ELBO and grows with ``k`` towards
        ``log q(x)``. With ``return_elbo`` also returns ``mean_j log w_j``, the ELBO estimated
        from the same draws, which never exceeds the bound (Jensen's inequality).

        Args:
            x: ``(n, H, W, C)`` images in ``[0, 1]``.
            k: samples per image, an integer >= 1.
            seed: seed of the draws.
            batch_size: forward passes hold ``batch_size`` images (``batch_size // k`` distinct
                images, each repeated ``k`` times; at least one image).

        Returns:
            ``(n,)`` float64 NumPy (and the ``(n,)`` ELBO estimates with ``return_elbo``).
        """
        x = self._images(x)
        k = check_int(k, "k")
        gen = keras.random.SeedGenerator(check_int(seed, "seed", 0))
        per_pass = max(1, check_int(batch_size, "batch_size") // k)
        bounds, elbos = [], []
        for i in range(0, len(x), per_pass):
            xb = ops.repeat(ops.convert_to_tensor(x[i:i + per_pass]), k, axis=0)
            logits, _, ratio = self._forward(xb, training=False, sample=True, seed_generator=gen,
                                             with_ratio=True)
            log_w = ops.sum(bernoulli_log_prob(xb, logits), axis=(1, 2, 3)) + ops.sum(ratio, 1)
            log_w = ops.convert_to_numpy(log_w).astype("float64").reshape(-1, k)
            top = log_w.max(axis=1, keepdims=True)
            bounds.append(top[:, 0] + np.log(np.mean(np.exp(log_w - top), axis=1)))
            elbos.append(log_w.mean(axis=1))
        out = np.concatenate(bounds)
        if return_elbo:
            return out, np.concatenate(elbos)
        return out

    # ------------------------------------------------------------------ generation
    def _prior_noise(self, num, seed):
        rng = np.random.default_rng(seed)
        return [rng.standard_normal((num, s, s, c)).astype(self.compute_dtype)
                for s, c in zip(self.group_sides, self.group_channels)]

    def sample_logits(self, num, temperature=1.0, seed=0, training=False, noise=None):
        """Bernoulli logits ``(num, H, W, C)`` of ``num`` images drawn from the prior.

        Each group is drawn as ``μ + temperature · σ · ε`` with ``ε`` standard normal drawn by
        NumPy with ``seed`` (or given as ``noise``, one ``(num, s, s, c)`` array per group);
        ``training=True`` runs batch norm on the batch's own statistics (used by
        :meth:`recalibrate_batchnorm`). Returns a backend tensor.
        """
        num = check_int(num, "num")
        temperature = check_real(temperature, "temperature", 0.0)
        draws = self._prior_noise(num, check_int(seed, "seed", 0)) if noise is None else noise
        logits, _, _ = self._top_down(num, None, bool(training), True,
                                      lambda i, shape: ops.convert_to_tensor(draws[i]),
                                      temperature)
        return logits

    def sample(self, num, temperature=1.0, seed=0, batch_size=500):
        """``num`` images from the prior, as pixel probabilities ``sigmoid(logits)``.

        Args:
            num: number of images.
            temperature: scale of the prior's standard deviations, a number >= 0 (1: the
                model's prior; below 1: fewer, cleaner modes).
            seed: seed of the draws (NumPy); the images do not depend on ``batch_size``.
            batch_size: images per forward pass.

        Returns:
            ``(num, H, W, C)`` float32 NumPy in ``[0, 1]``.
        """
        num = check_int(num, "num")
        batch_size = check_int(batch_size, "batch_size")
        temperature = check_real(temperature, "temperature", 0.0)
        draws = self._prior_noise(num, check_int(seed, "seed", 0))
        out = []
        for i in range(0, num, batch_size):
            part = [d[i:i + batch_size] for d in draws]
            logits = self.sample_logits(len(part[0]), temperature, noise=part)
            out.append(ops.convert_to_numpy(ops.sigmoid(logits)))
        return np.concatenate(out).astype("float32")

    def recalibrate_batchnorm(self, num_batches=20, batch_size=100, temperature=1.0, seed=0):
        """Re-estimate the decoder's batch-norm statistics on generated samples.

        Runs :meth:`sample_logits` with batch norm in training mode on ``num_batches`` batches
        of ``batch_size`` prior draws at ``temperature`` and sets each batch-norm layer's
        moving mean and variance to the average of its per-batch statistics
        (:func:`kexue.training.recalibrate_batchnorm`); the encoder's layers are untouched.
        Returns what that function returns.
        """
        from kexue.training import recalibrate_batchnorm

        num_batches = check_int(num_batches, "num_batches")
        batch_size = check_int(batch_size, "batch_size")
        temperature = check_real(temperature, "temperature", 0.0)
        seed = check_int(seed, "seed", 0)
        return recalibrate_batchnorm(
            self, range(seed, seed + num_batches),
            call=lambda s: self.sample_logits(batch_size, temperature, s, training=True))


# --------------------------------------------------------------------------- data


class BernoulliBatches(keras.utils.PyDataset):
    """Dynamically binarised batches of images for ``fit``: every epoch draws new pixels.

    Each pixel with grey level ``g`` in ``[0, 1]`` becomes 1 with probability ``g``; the order
    of the images and the draws are reshuffled at the end of every epoch, from ``seed``.

    Args:
        images: ``(n, ...)`` float array in ``[0, 1]``.
        batch_size: images per batch (the last batch may be smaller).
        seed: seed of the shuffling and the draws.

    Used in: book/generative/nvae.md
    """

    def __init__(self, images, batch_size=128, seed=0, **kwargs):
        super().__init__(**kwargs)
        x = as_array(images, "images", "float32")
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"images must have shape (n >= 1, ...), got shape {x.shape}.")
        check_finite(x, "images")
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"images must hold grey levels in [0, 1], got values in "
                             f"[{x.min():.4g}, {x.max():.4g}].")
        self.images = x
        self.batch_size = check_int(batch_size, "batch_size")
        self.seed = check_int(seed, "seed", 0)
        self.epoch = 0
        self._draw()

    def _draw(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(len(self.images))
        self.binary = (rng.random(self.images.shape, dtype="float32")
                       < self.images[self.order]).astype("float32")

    def __len__(self):
        return -(-len(self.images) // self.batch_size)

    def __getitem__(self, index):
        return self.binary[index * self.batch_size:(index + 1) * self.batch_size]

    def on_epoch_end(self):
        self.epoch += 1
        self._draw()
