"""How every generative chapter of the book scores its samples.

Generated images are scored by a small classifier trained once per notebook with a fixed seed
(:func:`train_image_classifier`), through three numbers that compare across chapters:

- **mode coverage**: the KL divergence of the histogram of predicted classes to the uniform
  distribution, ``sum_k h_k log(K h_k)`` (0 when every class is predicted equally often,
  ``log K`` when every sample falls in one class);
- **sharpness**: the mean over samples of the largest predicted probability;
- **FD-MLP**: the Fréchet distance between Gaussians fitted to real and generated samples in the
  classifier's penultimate features. It is the formula of the FID, but on our own small
  classifier's features rather than Inception's, so its values are not comparable with
  published FIDs; they compare only with each other.

Two-dimensional toys use a ring of Gaussians (:func:`gaussian_ring`) and count the modes a
sampler covers (:func:`ring_coverage`).

Used in: book/generative/f-gan.md, book/generative/single-loss-gan.md,
book/generative/denoising-to-generative.md
"""

from __future__ import annotations

import numpy as np

from kexue._checks import (
    as_array,
    check_choice,
    check_finite,
    check_int,
    check_positive,
    check_real,
    describe,
)

__all__ = [
    "SampleScorer",
    "class_histogram",
    "frechet_distance",
    "frechet_distance_from_features",
    "gaussian_ring",
    "kl_to_uniform",
    "mean_max_probability",
    "ring_centres",
    "ring_coverage",
    "train_image_classifier",
]


# --------------------------------------------------------------------------- class statistics


def _probabilities(probs, name: str = "probs") -> np.ndarray:
    p = as_array(probs, name, "float64")
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(f"{name} must have shape (n >= 1, classes >= 2), got shape {p.shape}.")
    check_finite(p, name)
    if p.min() < 0:
        raise ValueError(f"{name} must hold finite non-negative probabilities, got a minimum "
                         f"of {p.min():.4g}.")
    return p


def class_histogram(probs) -> np.ndarray:
    """Fraction of samples whose most probable class is each class.

    Args:
        probs: ``(n, K)`` predicted class probabilities (or any scores: only the argmax counts).

    Returns:
        ``(K,)`` float64 fractions summing to 1.
    """
    p = _probabilities(probs)
    counts = np.bincount(np.argmax(p, axis=1), minlength=p.shape[1])
    return counts / counts.sum()


def kl_to_uniform(probs) -> float:
    """KL divergence of the predicted-class histogram to the uniform distribution, in nats.

    ``sum_k h_k log(K h_k)`` with ``0 log 0 = 0``: 0 when all ``K`` classes are predicted
    equally often, ``log K`` when one class takes every sample.

    Args:
        probs: ``(n, K)`` predicted class probabilities.
    """
    h = class_histogram(probs)
    nz = h > 0
    return float(np.sum(h[nz] * np.log(h[nz] * h.size)))


def mean_max_probability(probs) -> float:
    """Mean over samples of the largest predicted probability (how confidently classifiable).

    Args:
        probs: ``(n, K)`` predicted class probabilities.
    """
    return float(np.mean(np.max(_probabilities(probs), axis=1)))


# --------------------------------------------------------------------------- Fréchet distance


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _check_gaussian(mu, sigma, which: str) -> tuple[np.ndarray, np.ndarray]:
    m = as_array(mu, f"mu{which}", "float64")
    s = as_array(sigma, f"sigma{which}", "float64")
    if m.ndim != 1 or m.size == 0:
        raise ValueError(f"mu{which} must have shape (d,), got shape {m.shape}.")
    if s.shape != (m.size, m.size):
        raise ValueError(
            f"sigma{which} must have shape (d={m.size}, d={m.size}) to match mu{which}, "
            f"got shape {s.shape}.")
    check_finite(m, f"mu{which}")
    check_finite(s, f"sigma{which}")
    if not np.allclose(s, s.T, rtol=1e-6, atol=1e-9 * max(1.0, float(np.abs(s).max()))):
        raise ValueError(f"sigma{which} must be a symmetric covariance matrix, got one whose "
                         f"largest |S - S^T| is {np.abs(s - s.T).max():.3g}.")
    return m, (s + s.T) / 2


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet (2-Wasserstein squared) distance between two Gaussians.

    ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2})``. The trace of the matrix
    square root is computed from the eigenvalues of the symmetric positive semi-definite matrix
    ``S1^{1/2} S2 S1^{1/2}``, which has the same trace of square root as ``(S1 S2)^{1/2}``
    without forming a non-symmetric square root.

    Args:
        mu1, mu2: ``(d,)`` means.
        sigma1, sigma2: ``(d, d)`` covariance matrices.

    Returns:
        The distance, a float ``>= 0`` (rounding below 0 is clipped to 0).
    """
    m1, s1 = _check_gaussian(mu1, sigma1, "1")
    m2, s2 = _check_gaussian(mu2, sigma2, "2")
    if m1.shape != m2.shape:
        raise ValueError(f"mu2 must have shape (d={m1.size},) to match mu1, got shape {m2.shape}.")
    r1 = _psd_sqrt(s1)
    inner = r1 @ s2 @ r1
    tr_sqrt = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None))))
    value = float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)
    return max(value, 0.0)


def _feature_stats(f, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(f, name, "float64")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must have shape (n >= 2, d), got shape {x.shape}.")
    check_finite(x, name)
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_distance_from_features(f1, f2) -> float:
    """Fréchet distance between Gaussians fitted (mean, unbiased covariance) to two feature sets.

    Args:
        f1: ``(n1, d)`` features of one sample (e.g. real images).
        f2: ``(n2, d)`` features of the other (e.g. generated images).
    """
    m1, s1 = _feature_stats(f1, "f1")
    m2, s2 = _feature_stats(f2, "f2")
    if m1.shape != m2.shape:
        raise ValueError(f"f2 must have shape (n, d={m1.size}) to match f1, got shape "
                         f"{np.shape(f2)}.")
    return frechet_distance(m1, s1, m2, s2)


# --------------------------------------------------------------------------- the classifier

FEATURES_LAYER = "features"
"""Name of the classifier's penultimate (feature) layer."""


def _images(images, name: str = "images") -> np.ndarray:
    x = as_array(images, name, "float32")
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, 28, 28)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (28, 28) or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, 28, 28), (n, 28, 28, 1) or (n, 784), "
                         f"got shape {np.shape(images)}.")
    check_finite(x, name)
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} must hold pixel values in [0, 1], got values in "
                         f"[{lo:.4g}, {hi:.4g}] (clip or rescale the samples first).")
    return x[..., None]


class SampleScorer:
    """A trained image classifier and the shared scores of samples computed with it.

    Built by :func:`train_image_classifier`. Images are ``(n, 28, 28)``, ``(n, 28, 28, 1)`` or
    ``(n, 784)`` arrays of pixel values in ``[0, 1]``.

    Attributes:
        model: the Keras classifier (logits out).
        test_accuracy: its accuracy on the data set's test images.
        dataset: ``"mnist"`` or ``"fashion_mnist"``.
    """

    def __init__(self, model, test_accuracy: float, dataset: str, batch_size: int = 500):
        import keras

        self.model = model
        self.test_accuracy = float(test_accuracy)
        self.dataset = dataset
        self.batch_size = check_int(batch_size, "batch_size")
        self._both = keras.Model(model.inputs,
                                 [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])

    def _run(self, images, name: str = "images"):
        x = _images(images, name)
        feats, logits = [], []
        for i in range(0, len(x), self.batch_size):
            f, z = self._both.predict_on_batch(x[i:i + self.batch_size])
            feats.append(np.asarray(f, dtype="float64"))
            logits.append(np.asarray(z, dtype="float64"))
        z = np.concatenate(logits)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.concatenate(feats), p / p.sum(axis=1, keepdims=True)

    def probabilities(self, images) -> np.ndarray:
        """``(n, 10)`` predicted class probabilities of ``images``."""
        return self._run(images)[1]

    def features(self, images) -> np.ndarray:
        """``(n, d)`` penultimate-layer features of ``images``."""
        return self._run(images)[0]

    def reference_stats(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(d,)`` and covariance ``(d, d)`` of the features of (real) ``images``."""
        return _feature_stats(self.features(images), "features of images")

    def score(self, images, reference=None) -> dict:
        """The shared scores of a set of samples.

        Args:
            images: generated images (see the class docstring); at least 2.
            reference: real images, or a ``(mu, sigma)`` pair from :meth:`reference_stats`;
                without it no Fréchet distance is computed.

        Returns:
            A dict with ``"kl_to_uniform"``, ``"mean_max_prob"``, ``"class_histogram"`` (``(10,)``)
            and, when ``reference`` is given, ``"fd"`` (FD-MLP).
        """
        feats, probs = self._run(images)
        out = {"kl_to_uniform": kl_to_uniform(probs),
               "mean_max_prob": mean_max_probability(probs),
               "class_histogram": class_histogram(probs)}
        if reference is not None:
            if isinstance(reference, tuple) and len(reference) == 2:
                mu, sigma = reference
            else:
                mu, sigma = self.reference_stats(_images(reference, "reference"))
            m2, s2 = _feature_stats(feats, "features of images")
            out["fd"] = frechet_distance(mu, sigma, m2, s2)
        return out


def _build_classifier(width: int = 32, features: int = 128):
    import keras
    from keras import layers

    inputs = keras.Input((28, 28, 1))
    h = layers.Conv2D(width, 3, activation="relu")(inputs)
    h = layers.MaxPooling2D()(h)
    h = layers.Conv2D(2 * width, 3, activation="relu")(h)
    h = layers.MaxPooling2D()(h)
    h = layers.Flatten()(h)
    h = layers.Dense(features, activation="relu", name=FEATURES_LAYER)(h)
    return keras.Model(inputs, layers.Dense(10)(h), name="sample_classifier")


def train_image_classifier(dataset: str = "mnist", num_train: int | None = None,
                           epochs: int = 3, seed: int = 0, batch_size: int = 128,
                           verbose: int = 0) -> SampleScorer:
    """Train the book's small sample-scoring classifier and wrap it in a :class:`SampleScorer`.

    Conv(32, 3×3)–max-pool–Conv(64, 3×3)–max-pool–Dense(128, the features)–Dense(10), trained
    with Adam (1e-3) on the first ``num_train`` training images (all 60,000 by default), then
    scored on the 10,000 test images.

    Args:
        dataset: ``"mnist"`` or ``"fashion_mnist"`` (read through :mod:`kexue.data`).
        num_train: number of training images (``None``: all).
        epochs: training epochs.
        seed: seed of the initialisation and the shuffling (:func:`kexue.runtime.seed`).
        batch_size: training batch size.
        verbose: passed to ``fit``.
    """
    import keras

    from kexue import data, runtime

    check_choice(dataset, "dataset", ("mnist", "fashion_mnist"))
    if num_train is not None:
        num_train = check_int(num_train, "num_train", minimum=10, maximum=60000)
    epochs = check_int(epochs, "epochs")
    seed = check_int(seed, "seed", minimum=0)
    batch_size = check_int(batch_size, "batch_size")
    load = data.load_mnist if dataset == "mnist" else data.load_fashion_mnist
    (x_train, y_train), (x_test, y_test) = load()
    if num_train is not None:
        x_train, y_train = x_train[:num_train], y_train[:num_train]
    runtime.seed(seed)
    model = _build_classifier()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x_train[..., None].astype("float32") / 255, y_train, batch_size=batch_size,
              epochs=epochs, verbose=verbose, shuffle=True)
    scorer = SampleScorer(model, 0.0, dataset)
    pred = np.argmax(scorer.probabilities(x_test.astype("float32") / 255), axis=1)
    scorer.test_accuracy = float(np.mean(pred == y_test))
    return scorer


# --------------------------------------------------------------------------- the ring of Gaussians


def ring_centres(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """``(modes, 2)`` centres equally spaced on a circle of ``radius``, the first at angle 0."""
    modes = check_int(modes, "modes")
    radius = check_positive(radius, "radius")
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def gaussian_ring(num: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                  seed: int = 0) -> np.ndarray:
    """Samples of an equal-weight mixture of isotropic Gaussians centred on a ring.

    Args:
        num: number of samples.
        modes: number of Gaussians, equally spaced (:func:`ring_centres`).
        radius: radius of the ring.
        std: standard deviation of each Gaussian (per coordinate).
        seed: NumPy seed.

    Returns:
        ``(num, 2)`` float32 samples.
    """
    num = check_int(num, "num")
    centres = ring_centres(modes, radius)
    std = check_positive(std, "std")
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    which = rng.integers(0, len(centres), size=num)
    return (centres[which] + std * rng.standard_normal((num, 2))).astype("float32")


def ring_coverage(samples, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                  sigmas: float = 3.0, min_fraction: float = 0.01) -> dict:
    """How many modes of a ring of Gaussians a set of samples covers, and how precisely.

    A sample is of *high quality* when it lies within ``sigmas * std`` of its nearest centre;
    a mode is *covered* when at least ``min_fraction`` of all samples are high-quality samples
    of that mode.

    Args:
        samples: ``(n, 2)`` points.
        modes, radius, std: the ring (as in :func:`gaussian_ring`).
        sigmas: the high-quality radius in units of ``std``.
        min_fraction: share of the samples a mode needs to count as covered, in ``(0, 1]``.

    Returns:
        A dict with ``"modes_covered"`` (int), ``"high_quality"`` (fraction of samples),
        ``"mode_counts"`` (``(modes,)`` high-quality samples per mode) and ``"kl_to_uniform"``
        (KL of the high-quality samples' mode histogram to the uniform over modes; ``log(modes)``
        when no sample is of high quality).
    """
    x = as_array(samples, "samples", "float64")
    if x.ndim != 2 or x.shape[1] != 2 or x.shape[0] == 0:
        raise ValueError(f"samples must have shape (n >= 1, 2), got {describe(samples)}.")
    check_finite(x, "samples")
    centres = ring_centres(modes, radius)
    std = check_positive(std, "std")
    sigmas = check_positive(sigmas, "sigmas")
    min_fraction = check_real(min_fraction, "min_fraction", 0, 1, low_open=True)
    dist = np.linalg.norm(x[:, None, :] - centres[None], axis=2)
    nearest = np.argmin(dist, axis=1)
    good = dist[np.arange(len(x)), nearest] <= sigmas * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    if counts.sum() > 0:
        h = counts / counts.sum()
        nz = h > 0
        kl = float(np.sum(h[nz] * np.log(h[nz] * len(centres))))
    else:
        kl = float(np.log(len(centres)))
    return {"modes_covered": int(np.sum(counts >= min_fraction * len(x))),
            "high_quality": float(np.mean(good)),
            "mode_counts": counts,
            "kl_to_uniform": kl}

