"""Vector quantisation: a learned codebook, the straight-through estimator and the VQ-VAE.

- :func:`straight_through`: a value in the forward pass with another expression's gradient,
  ``proxy + stop_gradient(value - proxy)``;
- :class:`VectorQuantizer`: a Keras layer that replaces every vector of its input by the
  nearest entry of a codebook (squared Euclidean distance), returns the integer codes, the
  quantised vectors and their straight-through version, computes the codebook and commitment
  terms of the loss, and optionally moves the codebook by exponential moving averages instead
  of gradients;
- :func:`codebook_perplexity`, :func:`code_usage`: how many codes a set of codes really uses;
- :func:`vq_encoder`, :func:`vq_decoder`: small convolutional networks between 28×28 images and
  a 7×7 grid of vectors;
- :class:`VQVAE`: encoder, quantiser and decoder trained by ``fit`` on the three-term loss,
  with each term tracked (TensorFlow and JAX).

Used in: book/generative/vq-vae.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue import _checks
from kexue._checks import as_array, check_bool, check_finite, check_int, check_real, describe
from kexue.generative.gan import run_stateless

__all__ = [
    "straight_through",
    "VectorQuantizer",
    "codebook_perplexity",
    "code_usage",
    "vq_encoder",
    "vq_decoder",
    "VQVAE",
]

VQ_BACKENDS = ("tensorflow", "jax")


def straight_through(value, proxy):
    """``value`` in the forward pass, the gradient of ``proxy`` in the backward pass.

    Returns ``proxy + stop_gradient(value - proxy)``: numerically ``value`` (up to the rounding
    of one subtraction and one addition), while its Jacobian with respect to anything is that
    of ``proxy``. ``value`` and ``proxy`` have the same shape.

    Used in: book/generative/vq-vae.md
    """
    from kexue._checks import as_float_tensor

    value = as_float_tensor(value, "value")
    proxy = as_float_tensor(proxy, "proxy")
    if tuple(value.shape) != tuple(proxy.shape):
        raise ValueError(f"value and proxy must have the same shape, got value of shape "
                         f"{tuple(value.shape)} and proxy of shape {tuple(proxy.shape)}.")
    value = ops.cast(value, proxy.dtype)
    return proxy + ops.stop_gradient(value - proxy)


@keras.saving.register_keras_serializable(package="kexue")
class VectorQuantizer(keras.layers.Layer):
    """Nearest-neighbour quantisation of vectors against a learned codebook ``E (K, d)``.

    ``codes, z_q, z_st = vq(z)`` for ``z (..., d)`` (e.g. ``(batch, m, m, d)``):

    - ``codes (...)`` int32: ``argmin_k ‖z − e_k‖²``, from ``‖z‖² + ‖e_k‖² − 2⟨z, e_k⟩``;
    - ``z_q (..., d)``: ``e_codes``, the quantised vectors;
    - ``z_st (..., d)``: ``z + stop_gradient(z_q − z)`` (:func:`straight_through`), the value
      of ``z_q`` with the identity as its Jacobian with respect to ``z``.

    :meth:`loss_terms` gives the codebook term ``mean (sg[z] − z_q)²`` (trains only the
    codebook) and the commitment term ``mean (z − sg[z_q])²`` (trains only the encoder);
    a VQ-VAE minimises ``reconstruction + beta · codebook + gamma · commitment``.

    With ``ema=True`` the codebook is not trained by gradients: every call with
    ``training=True`` moves each code to an exponential moving average (rate ``decay``) of the
    encoder vectors assigned to it, with counts smoothed by ``epsilon`` so that an unused code
    divides by no zero; the codebook term is then left out of the loss.

    Args:
        num_codes: ``K``, the number of codes.
        code_dim: ``d`` (``None``: taken from the input's last axis).
        beta, gamma: weights of the codebook and commitment terms (non-negative).
        ema: update the codebook by moving averages instead of gradients.
        decay: the moving averages' decay, in ``(0, 1)``.
        epsilon: the smoothing of the counts (positive).
        initializer: the codebook's initializer (default: uniform in ±0.05, Keras's
            ``"uniform"``); :meth:`initialize_from` replaces it by chosen encoder outputs.

    Used in: book/generative/vq-vae.md
    """

    def __init__(self, num_codes, code_dim=None, beta=1.0, gamma=0.25, ema=False, decay=0.99,
                 epsilon=1e-5, initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_codes = check_int(num_codes, "num_codes", 2)
        self.code_dim = None if code_dim is None else check_int(code_dim, "code_dim")
        self.beta = check_real(beta, "beta", 0.0)
        self.gamma = check_real(gamma, "gamma", 0.0)
        self.ema = check_bool(ema, "ema")
        self.decay = check_real(decay, "decay", 0.0, 1.0, low_open=True, high_open=True)
        self.epsilon = check_real(epsilon, "epsilon", 0.0, low_open=True)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        d = input_shape[-1]
        if d is None:
            raise ValueError(f"z must have a known last axis (the code dimension), got shape "
                             f"{tuple(input_shape)}.")
        if self.code_dim is not None and d != self.code_dim:
            raise ValueError(f"z must have last axis code_dim={self.code_dim}, got shape "
                             f"{tuple(input_shape)}.")
        self.code_dim = int(d)
        self.codebook = self.add_weight(shape=(self.num_codes, self.code_dim),
                                        initializer=self.initializer, name="codebook",
                                        trainable=not self.ema)
        if self.ema:
            self.ema_counts = self.add_weight(shape=(self.num_codes,), initializer="ones",
                                              name="ema_counts", trainable=False)
            self.ema_sums = self.add_weight(shape=(self.num_codes, self.code_dim),
                                            initializer="zeros", name="ema_sums",
                                            trainable=False)
            self.ema_sums.assign(ops.convert_to_numpy(self.codebook))

    # ------------------------------------------------------------------ quantisation
    def nearest(self, flat):
        """Codes ``(n,)`` int32 of the vectors ``flat (n, d)``: the index of the nearest code."""
        e = ops.cast(self.codebook, flat.dtype)
        d2 = (ops.sum(flat * flat, axis=1, keepdims=True) - 2.0 * ops.matmul(flat, ops.transpose(e))
              + ops.sum(e * e, axis=1)[None, :])
        return ops.cast(ops.argmin(d2, axis=1), "int32")

    def call(self, z, training=None):
        z = ops.convert_to_tensor(z, dtype=self.compute_dtype)
        flat = ops.reshape(z, (-1, self.code_dim))
        codes = self.nearest(flat)
        z_q = ops.take(ops.cast(self.codebook, z.dtype), codes, axis=0)
        if training and self.ema:
            self._ema_update(flat, codes)
        lead = [-1] + [s if s is not None else ops.shape(z)[i + 1]
                       for i, s in enumerate(z.shape[1:-1])]
        codes = ops.reshape(codes, lead)
        z_q = ops.reshape(z_q, lead + [self.code_dim])
        return codes, z_q, straight_through(z_q, z)

    def _ema_update(self, flat, codes):
        """One moving-average step of the counts, the sums and the codebook."""
        flat = ops.stop_gradient(ops.cast(flat, self.ema_sums.dtype))
        onehot = ops.one_hot(codes, self.num_codes, dtype=flat.dtype)        # (n, K)
        counts = ops.sum(onehot, axis=0)
        sums = ops.matmul(ops.transpose(onehot), flat)                       # (K, d)
        new_counts = self.decay * self.ema_counts + (1.0 - self.decay) * counts
        new_sums = self.decay * self.ema_sums + (1.0 - self.decay) * sums
        total = ops.sum(new_counts)
        smoothed = (new_counts + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        self.ema_counts.assign(new_counts)
        self.ema_sums.assign(new_sums)
        self.codebook.assign(new_sums / smoothed[:, None])

    def loss_terms(self, z, z_q):
        """``(codebook, commitment)``: ``mean (sg[z] − z_q)²`` and ``mean (z − sg[z_q])²``.

        The first term's gradient reaches only ``z_q`` (the codebook), the second's only ``z``
        (the encoder); their sum has the value ``2 · mean (z − z_q)²`` and the gradient of
        ``mean (z − z_q)²``.
        """
        z = ops.convert_to_tensor(z)
        z_q = ops.cast(z_q, z.dtype)
        codebook = ops.mean(ops.square(ops.stop_gradient(z) - z_q))
        commitment = ops.mean(ops.square(z - ops.stop_gradient(z_q)))
        return codebook, commitment

    def initialize_from(self, vectors, seed=0):
        """Set the codebook to ``K`` distinct rows drawn (seeded) from ``vectors (n, d)``, e.g.
        encoder outputs of a first batch; ``n >= K``. Resets the moving averages."""
        v = as_array(vectors, "vectors").astype("float64")
        if v.ndim < 2 or v.shape[-1] != self.code_dim:
            raise ValueError(f"vectors must have shape (..., {self.code_dim}), got shape "
                             f"{v.shape}.")
        v = v.reshape(-1, self.code_dim)
        check_finite(v, "vectors")
        if len(v) < self.num_codes:
            raise ValueError(f"vectors must hold at least num_codes={self.num_codes} rows, got "
                             f"{len(v)}.")
        seed = check_int(seed, "seed", 0)
        rows = np.random.default_rng(seed).choice(len(v), self.num_codes, replace=False)
        self.codebook.assign(v[rows].astype(keras.backend.standardize_dtype(
            self.codebook.dtype)))
        if self.ema:
            self.ema_counts.assign(np.ones(self.num_codes))
            self.ema_sums.assign(ops.convert_to_numpy(self.codebook))

    def compute_output_spec(self, z):
        lead = tuple(z.shape[:-1])
        return (keras.KerasTensor(lead, dtype="int32"),
                keras.KerasTensor(tuple(z.shape), dtype=self.compute_dtype),
                keras.KerasTensor(tuple(z.shape), dtype=self.compute_dtype))

    def get_config(self):
        config = super().get_config()
        config.update(num_codes=self.num_codes, code_dim=self.code_dim, beta=self.beta,
                      gamma=self.gamma, ema=self.ema, decay=self.decay, epsilon=self.epsilon,
                      initializer=keras.initializers.serialize(self.initializer))
        return config


# --------------------------------------------------------------------------- code usage


def _codes(codes, num_codes):
    num_codes = check_int(num_codes, "num_codes", 2)
    arr = as_array(codes, "codes")
    if arr.size == 0:
        raise ValueError(f"codes must hold at least one code, got {describe(codes)}.")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got {describe(codes)}.")
    _checks.check_int_range(arr, "codes", 0, num_codes)
    return arr.ravel(), num_codes


def codebook_perplexity(codes, num_codes):
    """``exp(H)`` of the empirical distribution of ``codes`` (any shape, integers in
    ``[0, num_codes)``): ``num_codes`` when every code is used equally, 1 when one code is all
    there is. The effective number of codes in use.

    Used in: book/generative/vq-vae.md
    """
    flat, k = _codes(codes, num_codes)
    p = np.bincount(flat, minlength=k) / flat.size
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def code_usage(codes, num_codes):
    """How ``codes`` use the codebook: a dict with ``counts (num_codes,)`` (occurrences of each
    code), ``used`` (codes that occur), ``dead`` (codes that never occur) and ``perplexity``
    (:func:`codebook_perplexity`).

    Used in: book/generative/vq-vae.md
    """
    flat, k = _codes(codes, num_codes)
    counts = np.bincount(flat, minlength=k)
    used = int(np.sum(counts > 0))
    return {"counts": counts, "used": used, "dead": k - used,
            "perplexity": codebook_perplexity(flat, k)}


# --------------------------------------------------------------------------- networks


def _residual(h, channels, tag):
    """ReLU → 3×3 conv → ReLU → 1×1 conv, added to the input."""
    layers = keras.layers
    r = layers.Activation("relu")(h)
    r = layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{tag}_conv3")(r)
    r = layers.Conv2D(channels, 1, name=f"{tag}_conv1")(r)
    return layers.Add(name=f"{tag}_add")([h, r])


def _net_args(code_dim, channels, res_blocks):
    return (check_int(code_dim, "code_dim"), check_int(channels, "channels"),
            check_int(res_blocks, "res_blocks", 0))


def vq_encoder(code_dim=16, channels=32, res_blocks=2, input_shape=(28, 28, 1)):
    """``images (batch, H, W, C) -> z (batch, H/4, W/4, code_dim)``.

    Two 4×4 stride-2 convolutions of ``channels`` (ReLU after the first), ``res_blocks``
    residual blocks (ReLU → 3×3 conv → ReLU → 1×1 conv, added), ReLU and a 1×1 convolution to
    ``code_dim``. MNIST: 28×28 → a 7×7 grid.

    Used in: book/generative/vq-vae.md
    """
    code_dim, channels, res_blocks = _net_args(code_dim, channels, res_blocks)
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3
            or not all(isinstance(n, (int, np.integer)) and n > 0 for n in input_shape)
            or input_shape[0] % 4 or input_shape[1] % 4):
        raise ValueError(f"input_shape must be (H, W, C) with H and W divisible by 4, got "
                         f"{describe(input_shape)}.")
    layers = keras.layers
    x = keras.Input(tuple(int(n) for n in input_shape), name="image")
    h = layers.Conv2D(channels, 4, strides=2, padding="same", activation="relu",
                      name="down1")(x)
    h = layers.Conv2D(channels, 4, strides=2, padding="same", name="down2")(h)
    for i in range(res_blocks):
        h = _residual(h, channels, f"res{i}")
    h = layers.Activation("relu")(h)
    z = layers.Conv2D(code_dim, 1, name="to_code")(h)
    return keras.Model(x, z, name="vq_encoder")


def vq_decoder(code_dim=16, channels=32, res_blocks=2, grid=(7, 7), output_channels=1):
    """``z_q (batch, m, n, code_dim) -> images (batch, 4m, 4n, output_channels)``.

    A 3×3 convolution to ``channels``, ``res_blocks`` residual blocks, ReLU, two 4×4 stride-2
    transposed convolutions (ReLU after the first; the last is linear, so that the squared
    error never meets a saturated sigmoid: clip to the data's range to view the images).

    Used in: book/generative/vq-vae.md
    """
    code_dim, channels, res_blocks = _net_args(code_dim, channels, res_blocks)
    output_channels = check_int(output_channels, "output_channels")
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(isinstance(n, (int, np.integer)) and n > 0 for n in grid)):
        raise ValueError(f"grid must be (rows, cols) of positive integers, got "
                         f"{describe(grid)}.")
    layers = keras.layers
    z = keras.Input((int(grid[0]), int(grid[1]), code_dim), name="code_vectors")
    h = layers.Conv2D(channels, 3, padding="same", name="from_code")(z)
    for i in range(res_blocks):
        h = _residual(h, channels, f"res{i}")
    h = layers.Activation("relu")(h)
    h = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="relu",
                               name="up1")(h)
    x = layers.Conv2DTranspose(output_channels, 4, strides=2, padding="same", name="up2")(h)
    return keras.Model(z, x, name="vq_decoder")


# --------------------------------------------------------------------------- the VQ-VAE


@keras.saving.register_keras_serializable(package="kexue")
class VQVAE(keras.Model):
    """A vector-quantised autoencoder trained by ``fit`` on images (targets are not used).

    ``vqvae(x)`` is ``decoder(z_st)`` with ``z = encoder(x)`` and ``z_st`` the straight-through
    output of ``quantizer``. Each training step minimises

    ``recon + beta · codebook + gamma · commitment``, with ``recon = mean (x − x̂)²`` (reaches
    the decoder and, through the straight-through path, the encoder; never the codebook),
    ``codebook = mean (sg[z] − z_q)²`` (the codebook only; left out when the quantiser uses
    moving averages) and ``commitment = mean (z − sg[z_q])²`` (the encoder only); ``beta`` and
    ``gamma`` are the quantiser's. ``fit`` logs ``loss``, ``recon``, ``codebook`` and
    ``commitment`` (running means over the epoch).

    Args:
        encoder: a Keras model ``x -> z (batch, m, n, d)``.
        decoder: a Keras model ``z_q (batch, m, n, d) -> x̂`` shaped like ``x``.
        quantizer: a :class:`VectorQuantizer` with ``code_dim = d``.

    :meth:`encode` gives the code grids, :meth:`decode` images from code grids, and
    :meth:`terms` the three terms on data (NumPy). Backends: TensorFlow and JAX.

    Used in: book/generative/vq-vae.md
    """

    def __init__(self, encoder, decoder, quantizer, **kwargs):
        _checks.check_backend("VQVAE", VQ_BACKENDS,
                              "its train_step differentiates with tf.GradientTape or jax.grad")
        _checks.check_instance(encoder, "encoder", keras.layers.Layer, "a Keras model or layer")
        _checks.check_instance(decoder, "decoder", keras.layers.Layer, "a Keras model or layer")
        _checks.check_instance(quantizer, "quantizer", VectorQuantizer, "a VectorQuantizer")
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.quantizer = encoder, decoder, quantizer
        outputs = getattr(encoder, "outputs", None)
        if outputs and not quantizer.built:
            quantizer.build(tuple(outputs[0].shape))
        self.trackers = {k: keras.metrics.Mean(name=k)
                         for k in ("loss", "recon", "codebook", "commitment")}
        self.built = True

    def get_config(self):
        return {"encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "quantizer": keras.saving.serialize_keras_object(self.quantizer),
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("encoder", "decoder", "quantizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key],
                                                                custom_objects=custom_objects)
        return cls(**config)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=None):
        z = self.encoder(x, training=training)
        _, _, z_st = self.quantizer(z, training=training)
        return self.decoder(z_st, training=training)

    def objective(self, x, training=True):
        """The loss minimised and its three terms ``(recon, codebook, commitment)``."""
        x = ops.convert_to_tensor(x, dtype=self.compute_dtype)
        z = self.encoder(x, training=training)
        _, z_q, z_st = self.quantizer(z, training=training)
        x_hat = self.decoder(z_st, training=training)
        recon = ops.mean(ops.square(x - ops.cast(x_hat, x.dtype)))
        codebook, commitment = self.quantizer.loss_terms(z, z_q)
        total = recon + self.quantizer.gamma * commitment
        if not self.quantizer.ema:
            total = total + self.quantizer.beta * codebook
        return total, (recon, codebook, commitment)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The three-term loss on images ``x`` (``y``, ``y_pred``, ``sample_weight`` unused)."""
        if x is None:
            raise ValueError(f"compute_loss needs the images x, got x={describe(x)}.")
        return self.objective(x, training=False)[0]

    def _logs(self, total, terms):
        for key, value in zip(self.trackers, (total,) + tuple(terms)):
            self.trackers[key].update_state(value)
        return {k: t.result() for k, t in self.trackers.items()}

    def _tf_train_step(self, data):
        import tensorflow as tf

        x = data[0] if isinstance(data, (tuple, list)) else data
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            total, terms = self.objective(x)
        self.optimizer.apply(tape.gradient(total, variables), variables)
        return self._logs(total, terms)

    def _jax_train_step(self, state, data):
        import jax

        tv, ntv, ov, mv = state
        x = data[0] if isinstance(data, (tuple, list)) else data

        def f(tv, ntv):
            (total, terms), new_ntv, _ = run_stateless(self, tv, ntv, lambda: self.objective(x))
            return total, (terms, new_ntv)

        (total, (terms, ntv)), grads = jax.value_and_grad(f, has_aux=True)(list(tv), list(ntv))
        tv, ov = self.optimizer.stateless_apply(ov, grads, list(tv))
        logs, _, mv = run_stateless(self, list(tv), ntv, lambda: self._logs(total, terms),
                                      mv=list(mv))
        return logs, (list(tv), ntv, ov, mv)

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def term_gradients(self, x):
        """Which weights each term of the loss trains: for each of ``recon``, ``codebook`` and
        ``commitment``, the largest ``|gradient|`` over the encoder's, the codebook's and the
        decoder's weights, on images ``x`` (training mode, moving averages not applied).

        Returns ``{term: {"encoder": float, "codebook": float, "decoder": float}}``; an exact
        0.0 means the term does not reach those weights. TensorFlow and JAX.

        Used in: book/generative/vq-vae.md
        """
        x = ops.convert_to_tensor(as_array(x, "x"), dtype=self.compute_dtype)
        variables = self.trainable_variables
        names = ("recon", "codebook", "commitment")
        if keras.backend.backend() == "jax":
            import jax

            ntv = [v.value for v in self.non_trainable_variables]
            grads = [jax.grad(lambda tv, i=i: run_stateless(self,
                tv, ntv, lambda: self.objective(x, training=True)[1][i])[0])(
                    [v.value for v in variables]) for i in range(3)]
        else:
            import tensorflow as tf

            with tf.GradientTape(persistent=True) as tape:
                _, terms = self.objective(x, training=True)
            grads = [[tf.convert_to_tensor(g) for g in tape.gradient(
                t, [v.value for v in variables],
                unconnected_gradients=tf.UnconnectedGradients.ZERO)] for t in terms]
        groups = {"encoder": {id(v) for v in self.encoder.trainable_variables},
                  "codebook": {id(v) for v in self.quantizer.trainable_variables},
                  "decoder": {id(v) for v in self.decoder.trainable_variables}}
        out = {}
        for name, g in zip(names, grads):
            out[name] = {group: max([float(np.max(np.abs(ops.convert_to_numpy(gi))))
                                     for gi, v in zip(g, variables) if id(v) in ids] or [0.0])
                         for group, ids in groups.items()}
        return out

    # ------------------------------------------------------------------ NumPy helpers
    def _batches(self, x, batch_size, name="x"):
        x = as_array(x, name)
        batch_size = check_int(batch_size, "batch_size")
        return x, range(0, len(x), batch_size), batch_size

    def encode(self, x, batch_size=500):
        """Code grids ``(n, m, n')`` int32 of images ``x`` (inference mode), as NumPy."""
        x, starts, b = self._batches(x, batch_size)
        out = [ops.convert_to_numpy(self.quantizer(self.encoder(x[i:i + b], training=False))[0])
               for i in starts]
        return np.concatenate(out, axis=0)

    def decode(self, codes, batch_size=500):
        """Images from code grids ``(n, m, n')`` of integers in ``[0, K)``, as NumPy."""
        codes = as_array(codes, "codes")
        _checks.check_shape(codes, "codes", (None, None, None))
        _checks.check_int_range(codes, "codes", 0, self.quantizer.num_codes)
        codes, starts, b = self._batches(codes.astype("int32"), batch_size, "codes")
        book = self.quantizer.codebook
        out = [ops.convert_to_numpy(self.decoder(ops.take(book, codes[i:i + b], axis=0),
                                                 training=False)) for i in starts]
        return np.concatenate(out, axis=0)

    def terms(self, x, batch_size=500):
        """Mean ``recon``, ``codebook`` and ``commitment`` over images ``x`` (inference mode),
        as a dict of floats."""
        x, starts, b = self._batches(x, batch_size)
        sums = np.zeros(3)
        for i in starts:
            _, terms = self.objective(x[i:i + b], training=False)
            sums += len(x[i:i + b]) * np.array([float(ops.convert_to_numpy(t)) for t in terms])
        return {k: float(v) for k, v in zip(("recon", "codebook", "commitment"), sums / len(x))}
