"""Optimal denoisers, scores of smoothed densities, and (annealed) Langevin sampling.

- :class:`GaussianMixture`: a mixture of isotropic Gaussians in ``d`` dimensions (``d = 1``
  and ``d = 2`` in the book; the ring of :mod:`kexue.generative.evaluation` is one), with its
  exact log density, score, noise-smoothed version and optimal denoiser (the posterior mean);
- :func:`tweedie_denoiser`: the denoiser a score implies, ``y + σ² ∇log p̂(y)``;
- :func:`langevin`, :func:`annealed_langevin`: unadjusted Langevin samplers driven by any score
  (NumPy arrays in, NumPy arrays out), :func:`langevin_stationary_variance` the exact
  stationary variance of the discretised chain for a Gaussian target;
- :func:`noise_conditional_denoiser`: a small network ``r(y, σ)`` (an MLP for vectors, a conv
  net for images) that predicts the clean input from a noisy one at any of several noise
  levels, trained by ``fit`` on :class:`NoisyBatches`; :func:`model_score` turns it into the
  score ``(r(y, σ) − y) / σ²``.

Used in: book/generative/denoising-to-generative.md.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    ArgumentTypeError,
    as_array,
    check_bool,
    check_callable,
    check_choice,
    check_finite,
    check_int,
    check_positive,
    describe,
)

__all__ = [
    "GaussianMixture",
    "tweedie_denoiser",
    "langevin",
    "annealed_langevin",
    "langevin_stationary_variance",
    "geometric_sigmas",
    "NoiseLevelEmbedding",
    "ScaledNoiseSubtraction",
    "noise_conditional_denoiser",
    "NoisyBatches",
    "model_score",
]


# --------------------------------------------------------------------------- exact densities


def _finite_array(x, name: str, ndim=None) -> np.ndarray:
    arr = as_array(x, name).astype(np.float64)
    if ndim is not None and arr.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(str(n) for n in ndim)} axes, "
                         f"got shape {arr.shape}.")
    check_finite(arr, name)
    return arr


class GaussianMixture:
    """A mixture of isotropic Gaussians, ``p(x) = Σ_k w_k N(x; μ_k, s_k² I_d)``.

    Args:
        weights: ``(K,)`` positive weights (normalised to sum to 1).
        means: ``(K, d)`` component means; ``(K,)`` for a 1-D mixture.
        stds: ``(K,)`` component standard deviations, or one number for all components.

    Points ``x`` are passed as ``(n, d)`` arrays; a 1-D mixture also takes ``(n,)`` and then
    returns scores and denoised points of shape ``(n,)``. Everything is float64 NumPy.

    Used in: book/generative/denoising-to-generative.md.
    """

    def __init__(self, weights, means, stds):
        w = _finite_array(weights, "weights", (1,))
        if w.size == 0 or np.any(w <= 0):
            raise ValueError(f"weights must be a non-empty array of positive numbers, got {w}.")
        mu = _finite_array(means, "means", (1, 2))
        if mu.ndim == 1:
            mu = mu[:, None]
        if mu.shape[0] != w.size:
            raise ValueError(f"means must have shape ({w.size}, d) to match weights, got shape "
                             f"{mu.shape}.")
        s = _finite_array(stds, "stds", (0, 1))
        s = np.broadcast_to(s, (w.size,)).copy() if s.ndim == 0 else s
        if s.shape != (w.size,) or np.any(s <= 0):
            raise ValueError(f"stds must be one positive number or {w.size} positive numbers, "
                             f"got {np.asarray(stds)!r}.")
        self.weights = w / w.sum()
        self.means = mu
        self.stds = s

    @classmethod
    def ring(cls, modes: int = 8, radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
        """The equal-weight ring of :func:`kexue.generative.evaluation.gaussian_ring`."""
        from kexue.generative.evaluation import ring_centres

        centres = ring_centres(modes, radius)
        return cls(np.ones(len(centres)), centres, check_positive(std, "std"))

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return (f"GaussianMixture(K={len(self.weights)}, d={self.dim}, "
                f"stds={np.round(self.stds, 4).tolist()})")

    def _points(self, x, name: str = "x") -> tuple[np.ndarray, bool]:
        arr = _finite_array(x, name)
        flat = arr.ndim == 1 and self.dim == 1
        if flat:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(f"{name} must have shape (n, {self.dim})"
                             + (" or (n,)" if self.dim == 1 else "")
                             + f" for this mixture, got shape {arr.shape}.")
        return arr, flat

    def _log_components(self, x: np.ndarray) -> np.ndarray:
        """``(n, K)``: ``log w_k + log N(x; μ_k, s_k² I)``."""
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)
        var = self.stds ** 2
        return (np.log(self.weights) - 0.5 * self.dim * np.log(2 * np.pi * var)
                - 0.5 * d2 / var)

    def log_prob(self, x) -> np.ndarray:
        """``(n,)`` log density at the points ``x``."""
        x, _ = self._points(x)
        lc = self._log_components(x)
        m = lc.max(axis=1, keepdims=True)
        return (m + np.log(np.exp(lc - m).sum(axis=1, keepdims=True)))[:, 0]

    def prob(self, x) -> np.ndarray:
        """``(n,)`` density at the points ``x``."""
        return np.exp(self.log_prob(x))

    def responsibilities(self, x) -> np.ndarray:
        """``(n, K)`` posterior probabilities of the components given ``x``."""
        x, _ = self._points(x)
        lc = self._log_components(x)
        lc -= lc.max(axis=1, keepdims=True)
        r = np.exp(lc)
        return r / r.sum(axis=1, keepdims=True)

    def score(self, x) -> np.ndarray:
        """``∇_x log p(x) = Σ_k γ_k(x) (μ_k − x) / s_k²``, shaped like ``x``."""
        pts, flat = self._points(x)
        g = self.responsibilities(pts)
        out = (g[:, :, None] * (self.means[None] - pts[:, None, :])
               / (self.stds ** 2)[None, :, None]).sum(axis=1)
        return out[:, 0] if flat else out

    def sample(self, num: int, seed: int = 0) -> np.ndarray:
        """``(num, d)`` samples (``(num,)`` for a 1-D mixture), reproducible from ``seed``."""
        num = check_int(num, "num")
        seed = check_int(seed, "seed", 0)
        rng = np.random.default_rng(seed)
        k = rng.choice(len(self.weights), size=num, p=self.weights)
        x = self.means[k] + self.stds[k, None] * rng.standard_normal((num, self.dim))
        return x[:, 0] if self.dim == 1 else x

    def smoothed(self, sigma: float) -> GaussianMixture:
        """The density of ``x + σ ε``, ``ε ~ N(0, I)``: the same mixture with ``s_k² + σ²``."""
        sigma = check_positive(sigma, "sigma")
        return GaussianMixture(self.weights, self.means, np.sqrt(self.stds ** 2 + sigma ** 2))

    def posterior_mean(self, y, sigma: float) -> np.ndarray:
        """The optimal denoiser ``E[x | y]`` for ``y = x + σ ε``, shaped like ``y``.

        Per component the posterior of ``x`` is Gaussian with mean
        ``(s_k² y + σ² μ_k) / (s_k² + σ²)``; the components are weighted by their
        responsibilities under the smoothed mixture.
        """
        sigma = check_positive(sigma, "sigma")
        pts, flat = self._points(y, "y")
        g = self.smoothed(sigma).responsibilities(pts)
        var = (self.stds ** 2)[None, :, None]
        comp = (var * pts[:, None, :] + sigma ** 2 * self.means[None]) / (var + sigma ** 2)
        out = (g[:, :, None] * comp).sum(axis=1)
        return out[:, 0] if flat else out


def tweedie_denoiser(score_fn, y, sigma: float) -> np.ndarray:
    """The denoiser implied by the score of the smoothed density: ``y + σ² ∇log p̂(y)``.

    ``score_fn`` maps an array of points to the score of ``p̂ = p * N(0, σ² I)`` at them (for
    example ``GaussianMixture.smoothed(σ).score``); ``y`` any array it accepts.

    Used in: book/generative/denoising-to-generative.md.
    """
    check_callable(score_fn, "score_fn")
    sigma = check_positive(sigma, "sigma")
    y = _finite_array(y, "y")
    return y + sigma ** 2 * np.asarray(score_fn(y), dtype=np.float64)


# --------------------------------------------------------------------------- Langevin sampling


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_int(seed, "seed", 0))


def _start(x0) -> np.ndarray:
    x = as_array(x0, "x0")
    if x.dtype.kind != "f" or x.ndim < 1 or x.size == 0:
        raise ArgumentTypeError(f"x0 must be a non-empty float array of starting points, got "
                                f"{describe(x0)}.")
    check_finite(x, "x0")
    return x.copy()


def _progress(iterable, total, show: bool, desc: str):
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _checked_score(score, x, name="score_fn"):
    score = np.asarray(score)
    if score.shape != x.shape:
        raise ValueError(f"{name} must return an array shaped like its input {x.shape}, got "
                         f"shape {score.shape}.")
    return score


def langevin(score_fn, x0, step_size: float, steps: int, seed=0, progress: bool = False):
    """Unadjusted Langevin dynamics, ``x ← x + (η/2) ∇log p(x) + √η ξ``, ``ξ ~ N(0, I)``.

    Args:
        score_fn: maps an array shaped like ``x0`` to the score at those points.
        x0: ``(n, ...)`` float array, ``n`` independent chains (not modified).
        step_size: ``η > 0``.
        steps: number of updates.
        seed: an integer or a ``numpy.random.Generator`` for the noise.
        progress: show a progress bar over the steps.

    Returns the chains after ``steps`` updates, shaped like ``x0`` (dtype of ``x0``).

    Used in: book/generative/denoising-to-generative.md.
    """
    check_callable(score_fn, "score_fn")
    x = _start(x0)
    eta = check_positive(step_size, "step_size")
    steps = check_int(steps, "steps")
    check_bool(progress, "progress")
    rng = _rng(seed)
    noise = math.sqrt(eta)
    for _ in _progress(range(steps), steps, progress, "Langevin"):
        g = _checked_score(score_fn(x), x)
        x = x + 0.5 * eta * g + noise * rng.standard_normal(x.shape).astype(x.dtype)
    return x


def langevin_stationary_variance(variance: float, step_size: float) -> float:
    """Stationary variance of unadjusted Langevin on ``N(0, v)``: ``v / (1 − η / (4v))``.

    The chain ``x ← (1 − η/(2v)) x + √η ξ`` is AR(1); it is stable for ``η < 4v``. As
    ``η → 0`` the variance tends to ``v``; the excess is the bias of the unadjusted step.

    Used in: book/generative/denoising-to-generative.md.
    """
    v = check_positive(variance, "variance")
    eta = check_positive(step_size, "step_size")
    if eta >= 4 * v:
        raise ValueError(f"step_size must be below 4 * variance = {4 * v:g} for the chain to "
                         f"have a stationary law, got {step_size!r}.")
    return v / (1 - eta / (4 * v))


def geometric_sigmas(sigma_max: float, sigma_min: float, levels: int) -> np.ndarray:
    """``(levels,)`` noise levels from ``sigma_max`` down to ``sigma_min``, geometrically spaced.

    Used in: book/generative/denoising-to-generative.md.
    """
    hi = check_positive(sigma_max, "sigma_max")
    lo = check_positive(sigma_min, "sigma_min")
    levels = check_int(levels, "levels")
    if lo > hi:
        raise ValueError(f"sigma_min must not exceed sigma_max = {hi!r}, got {sigma_min!r}.")
    if levels == 1:
        return np.array([lo])
    return np.exp(np.linspace(np.log(hi), np.log(lo), levels))


def annealed_langevin(score_fn, x0, sigmas, steps_per_level: int, step_size: float, seed=0,
                      progress: bool = False, return_levels: bool = False):
    """Annealed Langevin dynamics: Langevin at each noise level, from the largest down.

    At level ``σ_l`` the chain runs ``steps_per_level`` updates of :func:`langevin` with the
    score ``score_fn(x, σ_l)`` of the density smoothed at ``σ_l`` and the step
    ``η_l = step_size · (σ_l / σ_L)²`` (``σ_L`` the last, smallest level), starting where the
    previous level stopped.

    Args:
        score_fn: ``(x, sigma) -> score``, ``x`` shaped like ``x0``, ``sigma`` a float.
        x0: ``(n, ...)`` starting points.
        sigmas: decreasing positive noise levels.
        steps_per_level: Langevin updates per level.
        step_size: the step at the smallest level.
        seed: an integer or a ``numpy.random.Generator``.
        progress: show a progress bar over all updates.
        return_levels: also return the list of the chains after each level.

    Returns the chains after the last level (and the per-level list with ``return_levels``).

    Used in: book/generative/denoising-to-generative.md.
    """
    check_callable(score_fn, "score_fn")
    x = _start(x0)
    sig = as_array(sigmas, "sigmas").astype(np.float64)
    if sig.ndim != 1 or sig.size == 0 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
        raise ValueError(f"sigmas must be a non-empty 1-D array of positive numbers, got "
                         f"{describe(sigmas)}.")
    if np.any(np.diff(sig) > 0):
        raise ValueError(f"sigmas must be decreasing (largest noise first), got {sig.tolist()}.")
    steps = check_int(steps_per_level, "steps_per_level")
    eps = check_positive(step_size, "step_size")
    check_bool(progress, "progress")
    check_bool(return_levels, "return_levels")
    rng = _rng(seed)
    levels = []
    bar = _progress(None, len(sig) * steps, progress, "annealed Langevin") if progress else None
    for s in sig:
        eta = eps * (s / sig[-1]) ** 2
        noise = math.sqrt(eta)
        for _ in range(steps):
            g = _checked_score(score_fn(x, float(s)), x)
            x = x + 0.5 * eta * g + noise * rng.standard_normal(x.shape).astype(x.dtype)
            if bar is not None:
                bar.update(1)
        levels.append(x.copy())
    if bar is not None:
        bar.close()
    return (x, levels) if return_levels else x


# --------------------------------------------------------------------------- learned denoisers


@keras.saving.register_keras_serializable(package="kexue")
class NoiseLevelEmbedding(keras.layers.Layer):
    """Features of the noise level: ``silu(W [log σ, sin(ω log σ), cos(ω log σ)] + b)``.

    Input ``(batch, 1)`` positive noise levels σ; output ``(batch, units)``. The frequencies
    ``ω = 1, 2, 4, ...`` (``frequencies`` of them) are fixed.

    Used in: book/generative/denoising-to-generative.md.
    """

    def __init__(self, units: int, frequencies: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int(units, "units")
        self.frequencies = check_int(frequencies, "frequencies", 0)
        self.dense = keras.layers.Dense(self.units, activation="silu", name="dense")

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] != 1:
            raise ValueError(f"NoiseLevelEmbedding input must have shape (batch, 1), got shape "
                             f"{tuple(input_shape)}.")
        self.dense.build((input_shape[0], 1 + 2 * self.frequencies))

    def call(self, sigma):
        t = ops.log(sigma)
        feats = [t]
        for j in range(self.frequencies):
            feats += [ops.sin((2.0 ** j) * t), ops.cos((2.0 ** j) * t)]
        return self.dense(ops.concatenate(feats, axis=-1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "frequencies": self.frequencies}


@keras.saving.register_keras_serializable(package="kexue")
class ScaledNoiseSubtraction(keras.layers.Layer):
    """The denoiser's output ``r = y − σ ε̂`` from ``[y, σ, ε̂]``.

    ``y`` and ``ε̂`` have the same shape ``(batch, ...)``, ``σ`` is ``(batch, 1)``. With this
    parameterisation the denoising loss ``‖r − x‖² / σ²`` equals ``‖ε̂ − ε‖²``: every noise
    level contributes on the same scale, and the score is ``(r − y) / σ² = −ε̂ / σ``.

    Used in: book/generative/denoising-to-generative.md.
    """

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 3:
            raise ValueError(f"inputs must be the list [y, sigma, eps], got {describe(inputs)}.")
        y, sigma, eps = inputs
        shape = (-1,) + (1,) * (len(y.shape) - 1)
        return y - ops.reshape(sigma, shape) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def noise_conditional_denoiser(input_shape, width: int = 32, architecture: str = "conv",
                               depth: int = 3, name: str = "denoiser") -> keras.Model:
    """A network ``r(y, σ)`` that denoises ``y = x + σ ε`` at any noise level σ.

    Inputs ``[y, sigma]``: ``y`` of shape ``(batch, *input_shape)``, ``sigma`` ``(batch, 1)``;
    output ``r`` shaped like ``y`` (:class:`ScaledNoiseSubtraction`). The noise level enters
    through :class:`NoiseLevelEmbedding`, added to the hidden features.

    - ``architecture="mlp"`` (``input_shape = (d,)``): ``depth`` silu layers of ``width``;
    - ``architecture="conv"`` (``input_shape = (H, W, C)``, ``H`` and ``W`` divisible by 4): a
      small U-Net, ``width`` channels at full resolution and ``2 · width`` at ``1/2`` and
      ``1/4``, with skip connections (``depth`` is not used).

    Train it with ``loss="mse"`` on :class:`NoisyBatches`, whose sample weights ``1/σ²`` make
    the loss the noise-conditional denoising objective.

    Used in: book/generative/denoising-to-generative.md.
    """
    architecture = check_choice(architecture, "architecture", ("mlp", "conv"))
    width = check_int(width, "width")
    depth = check_int(depth, "depth")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(n, (int, np.integer)) and n > 0 for n in input_shape):
        raise ArgumentTypeError(f"input_shape must be a tuple of positive integers, got "
                                f"{describe(input_shape)}.")
    input_shape = tuple(int(n) for n in input_shape)
    layers = keras.layers
    y = keras.Input(input_shape, name="noisy")
    sigma = keras.Input((1,), name="sigma")
    emb = NoiseLevelEmbedding(4 * width, name="sigma_embedding")(sigma)
    if architecture == "mlp":
        if len(input_shape) != 1:
            raise ValueError(f"input_shape must be (d,) for architecture='mlp', got "
                             f"{input_shape}.")
        h = layers.Concatenate()([y, emb])
        for i in range(depth):
            h = layers.Dense(width, activation="silu", name=f"dense_{i}")(h)
        eps = layers.Dense(input_shape[0], name="noise")(h)
    else:
        if len(input_shape) != 3 or input_shape[0] % 4 or input_shape[1] % 4:
            raise ValueError(f"input_shape must be (H, W, C) with H and W divisible by 4 for "
                             f"architecture='conv', got {input_shape}.")

        def conditioned(h, channels, tag):
            bias = layers.Reshape((1, 1, channels))(layers.Dense(channels, name=f"cond_{tag}")(emb))
            return layers.Activation("silu")(layers.Add()([h, bias]))

        def conv(channels, tag, **kw):
            return layers.Conv2D(channels, 3, padding="same", name=f"conv_{tag}", **kw)

        h0 = conditioned(conv(width, "in")(y), width, "in")                    # H
        h1 = conditioned(conv(2 * width, "down1", strides=2)(h0), 2 * width, "down1")
        h1 = conv(2 * width, "down1b", activation="silu")(h1)                  # H/2
        h2 = conditioned(conv(2 * width, "down2", strides=2)(h1), 2 * width, "down2")
        h2 = conv(2 * width, "mid", activation="silu")(h2)                     # H/4
        u1 = layers.Conv2DTranspose(2 * width, 3, strides=2, padding="same", name="up1")(h2)
        u1 = conditioned(layers.Concatenate()([u1, h1]), 4 * width, "up1")
        u1 = conv(2 * width, "up1b", activation="silu")(u1)                    # H/2
        u0 = layers.Conv2DTranspose(width, 3, strides=2, padding="same", name="up0")(u1)
        u0 = conv(width, "up0b", activation="silu")(layers.Concatenate()([u0, h0]))
        eps = layers.Conv2D(input_shape[-1], 3, padding="same", name="noise")(u0)
    r = ScaledNoiseSubtraction(name="denoised")([y, sigma, eps])
    return keras.Model([y, sigma], r, name=name)


class NoisyBatches(keras.utils.PyDataset):
    """Batches ``((x + σ ε, σ), x, 1/σ²)`` of clean data ``x`` at random noise levels.

    Each example gets a level drawn uniformly from ``sigmas`` and fresh Gaussian noise every
    epoch (reproducible from ``seed``). With ``loss="mse"`` the weighted loss is
    ``E‖r(x + σε, σ) − x‖² / σ²``, the denoising objective summed over the levels with the
    weight ``σ²`` on the score error (each level on the same scale).

    Args:
        data: ``(n, ...)`` clean examples (float).
        sigmas: the noise levels (one number or a 1-D array).
        batch_size: examples per batch.
        seed: seed of the levels, the noise and the shuffling.
        shuffle: reshuffle the examples every epoch.

    Used in: book/generative/denoising-to-generative.md.
    """

    def __init__(self, data, sigmas, batch_size: int = 128, seed: int = 0,
                 shuffle: bool = True, **kwargs):
        super().__init__(**kwargs)
        x = as_array(data, "data")
        if x.dtype.kind != "f" or x.ndim < 2 or len(x) == 0:
            raise ArgumentTypeError(f"data must be a non-empty float array (n, ...), got "
                                    f"{describe(data)}.")
        sig = np.atleast_1d(as_array(sigmas, "sigmas").astype(np.float64))
        if sig.ndim != 1 or np.any(~np.isfinite(sig)) or np.any(sig <= 0):
            raise ValueError(f"sigmas must be positive numbers, got {describe(sigmas)}.")
        self.data = x.astype("float32")
        self.sigmas = sig
        self.batch_size = check_int(batch_size, "batch_size")
        self.seed = check_int(seed, "seed", 0)
        self.shuffle = check_bool(shuffle, "shuffle")
        self.epoch = 0
        self._order = np.arange(len(x))

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def on_epoch_end(self):
        self.epoch += 1
        if self.shuffle:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(
                len(self.data))

    def __getitem__(self, index):
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        x = self.data[idx]
        s = self.sigmas[rng.integers(len(self.sigmas), size=len(idx))].astype("float32")
        noisy = x + s.reshape((-1,) + (1,) * (x.ndim - 1)) * rng.standard_normal(
            x.shape).astype("float32")
        # one weight per value of the loss "mse" (which averages over the last axis only)
        w = np.broadcast_to((1.0 / s ** 2).reshape((-1,) + (1,) * (x.ndim - 2)),
                            x.shape[:-1]).astype("float32")
        return (noisy, s[:, None]), x, w


def model_score(model, batch_size: int = 1024):
    """The score a denoiser implies, ``(r(y, σ) − y) / σ²``, as a NumPy function ``(y, σ)``.

    ``model`` maps ``[y, sigma]`` (``sigma`` of shape ``(batch, 1)``) to ``r`` (e.g.
    :func:`noise_conditional_denoiser`); it runs with ``predict_on_batch`` in batches of
    ``batch_size``. The returned function takes ``y`` of shape ``(n, ...)`` and a float σ and
    returns the score shaped like ``y`` (float32), for :func:`langevin` or
    :func:`annealed_langevin`.

    Used in: book/generative/denoising-to-generative.md.
    """
    if not callable(getattr(model, "predict_on_batch", None)):
        raise ArgumentTypeError(f"model must be a Keras model (with predict_on_batch), got "
                                f"{describe(model)}.")
    batch_size = check_int(batch_size, "batch_size")

    def score(y, sigma):
        sigma = check_positive(sigma, "sigma")
        y = np.asarray(y, dtype="float32")
        out = np.empty_like(y)
        for i in range(0, len(y), batch_size):
            chunk = y[i:i + batch_size]
            s = np.full((len(chunk), 1), sigma, dtype="float32")
            r = np.asarray(model.predict_on_batch([chunk, s]))
            out[i:i + batch_size] = (r - chunk) / sigma ** 2
        return out

    return score
