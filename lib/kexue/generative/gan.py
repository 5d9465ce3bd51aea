"""GAN training as a Keras model (alternating updates, or one loss with stop gradients).

A GAN has two players: a generator ``G`` mapping latent codes ``z ~ N(0, I)`` to samples and a
discriminator ``D`` scoring samples with one raw logit. :class:`GANLoss` holds the two
objectives, ``d_loss(real_logits, fake_logits)`` (minimised over ``D``) and
``g_loss(fake_logits)`` (minimised over ``G``); any object with these two methods and a
``get_config`` (e.g. the f-GAN losses of :mod:`kexue.generative.divergences`) can replace it.

:class:`GAN` trains the pair with ``fit`` in one of two modes:

``"alternating"``
    the usual 1:1 scheme: a discriminator step on ``d_loss`` with the discriminator's optimizer,
    then a generator step on ``g_loss`` against the *updated* discriminator with the
    generator's optimizer;
``"single_loss"``
    one loss whose gradient is the discriminator's gradient for ``D`` and ``lam`` times the
    generator's gradient for ``G`` (:func:`single_loss`), built with stop gradients, and one
    optimizer step on all weights at once: a *simultaneous* gradient step.

The builders give the small networks of the book: MLPs for 2-D toys and a DCGAN pair for
28×28 images.

Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    ArgumentTypeError,
    check_backend,
    check_choice,
    check_instance,
    check_int,
    check_real,
    check_shape,
    describe,
)

__all__ = [
    "GAN_LOSS_KINDS",
    "GAN_MODES",
    "GANLoss",
    "single_loss",
    "GAN",
    "mlp_generator",
    "mlp_discriminator",
    "dcgan_generator",
    "dcgan_discriminator",
]

GAN_LOSS_KINDS = ("non_saturating", "minimax", "hinge")
"""The objectives of :class:`GANLoss`."""

GAN_MODES = ("single_loss", "alternating")
"""How :class:`GAN` updates its two players."""

GAN_BACKENDS = ("tensorflow", "jax")


def _check_logits(x, name, dims):
    from kexue._checks import as_float_tensor

    x = as_float_tensor(x, name)
    check_shape(x, name, dims)
    return x


@keras.saving.register_keras_serializable(package="kexue")
class GANLoss:
    """The discriminator's and the generator's objectives, on raw logits ``(batch, 1)``.

    With ``s = softplus`` and logits ``r = D(x_real)``, ``f = D(G(z))`` (the discriminator
    scores real samples *high*):

    - ``"non_saturating"``: ``d_loss = mean s(-r) + mean s(f)`` (the cross-entropy of a
      real/fake classifier), ``g_loss = mean s(-f)`` (the generator maximises ``log D``);
    - ``"minimax"``: the same ``d_loss``, ``g_loss = -mean s(f)`` (the generator minimises
      ``log(1 - D)``, the original two-player game);
    - ``"hinge"``: ``d_loss = mean relu(1 - r) + mean relu(1 + f)``, ``g_loss = -mean f``.

    Methods return scalars. Real and fake batches may differ in size.

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """

    def __init__(self, kind="non_saturating"):
        self.kind = check_choice(kind, "kind", GAN_LOSS_KINDS)

    def d_loss(self, real_logits, fake_logits):
        """The discriminator's loss, a scalar: real logits ``(n, 1)``, fake ``(m, 1)``."""
        r = _check_logits(real_logits, "real_logits", (None, 1))
        f = _check_logits(fake_logits, "fake_logits", (None, 1))
        if self.kind == "hinge":
            return ops.mean(ops.relu(1.0 - r)) + ops.mean(ops.relu(1.0 + f))
        return ops.mean(ops.softplus(-r)) + ops.mean(ops.softplus(f))

    def g_loss(self, fake_logits):
        """The generator's loss, a scalar, from the logits ``(m, 1)`` of its samples."""
        f = _check_logits(fake_logits, "fake_logits", (None, 1))
        if self.kind == "non_saturating":
            return ops.mean(ops.softplus(-f))
        if self.kind == "minimax":
            return -ops.mean(ops.softplus(f))
        return -ops.mean(f)

    def get_config(self):
        return {"kind": self.kind}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"GANLoss(kind={self.kind!r})"


def _check_loss_object(loss, name="loss"):
    for method in ("d_loss", "g_loss"):
        if not callable(getattr(loss, method, None)):
            raise ArgumentTypeError(
                f"{name} must be an object with d_loss(real_logits, fake_logits) and "
                f"g_loss(fake_logits) methods (e.g. GANLoss()), got {describe(loss)}.")
    return loss


def single_loss(loss, real_logits, fake_logits, fake_logits_sg, lam=1.0):
    """The one loss whose gradient trains both players at once, a scalar.

    ``L = d_loss(r, f_sg) + lam * (g_loss(f) - g_loss(f_sg))`` with ``r = D(x)``,
    ``f = D(G(z))`` and ``f_sg = D(stop_gradient(G(z)))``. The first term reaches ``D`` only
    (``G`` is cut off by the stop gradient); the bracket is identically zero in value, its
    gradient with respect to ``D`` cancels exactly (both terms are the same function of ``D``
    at the same point), and its gradient with respect to ``G`` is that of ``g_loss(f)``.

    Args:
        loss: an object with ``d_loss`` and ``g_loss`` (:class:`GANLoss`).
        real_logits, fake_logits, fake_logits_sg: ``(batch, 1)`` logits as above.
        lam: weight of the generator term, a finite real number.

    Used in: book/generative/single-loss-gan.md
    """
    _check_loss_object(loss)
    lam = check_real(lam, "lam")
    d_term = loss.d_loss(real_logits, fake_logits_sg)
    g_term = loss.g_loss(fake_logits) - loss.g_loss(fake_logits_sg)
    return d_term + lam * g_term


def _input_dtype(model):
    """The dtype of a model's (first) input: a functional model's Input, else its compute
    dtype."""
    try:
        return keras.backend.standardize_dtype(model.inputs[0].dtype)
    except (AttributeError, IndexError, TypeError, ValueError):
        return keras.backend.standardize_dtype(model.compute_dtype)


def _build_players(generator, discriminator, latent_dim):
    if not generator.built:
        generator.build((None, latent_dim))
    if not discriminator.built:
        spec = generator.compute_output_spec(keras.KerasTensor((None, latent_dim)))
        discriminator.build(tuple(spec.shape))


class _Recorder(keras.callbacks.Callback):
    """Per-batch values of the GAN's logs, recovered from Keras's running means."""

    def __init__(self, history):
        super().__init__()
        self.history = history
        self._prev = {}

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = {}

    def on_train_batch_end(self, batch, logs=None):
        k = batch + 1
        for key in ("d_loss", "g_loss"):
            if logs and key in logs:
                mean = float(logs[key])
                self.history[key].append(k * mean - (k - 1) * self._prev.get(key, 0.0))
                self._prev[key] = mean


def run_stateless(model, tv, ntv, fn, mv=None):
    """Run ``fn`` with ``model``'s variables (and its metrics') set to the given values, as a
    JAX train step must; returns ``(fn's output, new non-trainable values, new metric values)``.

    ``tv`` / ``ntv`` / ``mv``: values of ``model.trainable_variables`` /
    ``non_trainable_variables`` / ``metrics_variables``, in that order (``mv`` optional).
    Shared by the models of this package with a hand-written JAX ``train_step``.
    """
    mapping = list(zip(model.trainable_variables, tv)) + list(
        zip(model.non_trainable_variables, ntv))
    if mv is not None:
        mapping += list(zip(model.metrics_variables, mv))
    with keras.StatelessScope(state_mapping=mapping) as scope:
        out = fn()
    new_ntv = [scope.get_current_value(v) for v in model.non_trainable_variables]
    new_mv = None if mv is None else [scope.get_current_value(v)
                                      for v in model.metrics_variables]
    return out, new_ntv, new_mv


@keras.saving.register_keras_serializable(package="kexue")
class GAN(keras.Model):
    """A generator and a discriminator trained by ``fit`` on an array of real samples.

    Each training step draws ``z ~ N(0, I)`` of shape ``(batch, latent_dim)`` (one draw,
    used by both players) and, with ``r = D(x)``, ``f = D(G(z))``:

    - ``mode="single_loss"``: one gradient of :func:`single_loss` with respect to every
      weight, one step of the compiled ``optimizer``: ``D`` moves along
      ``-grad_D d_loss``, ``G`` along ``-lam * grad_G g_loss``, both from the same point;
    - ``mode="alternating"``: a step of ``d_optimizer`` on ``d_loss(r, D(sg G(z)))`` over
      ``D``, then a step of ``optimizer`` on ``g_loss(D'(G(z)))`` over ``G``, with ``D'`` the
      updated discriminator; ``lam`` is not used.

    Compile with ``gan.compile(optimizer=...)`` (single loss) or
    ``gan.compile(optimizer=g_opt, d_optimizer=d_opt)`` (alternating; ``d_optimizer`` defaults
    to a fresh optimizer with ``optimizer``'s config). Logs ``d_loss`` and ``g_loss`` (epoch
    means; in alternating mode ``g_loss`` is measured after the discriminator's step) and
    ``loss``, the objective minimised (the single loss, whose value is ``d_loss``; in
    alternating mode ``d_loss + g_loss``); the values of every batch are appended to
    ``gan.batch_history`` by ``fit``. The discriminator
    optimizer's state is kept among the model's non-trainable variables, so that it is saved
    with the model and carried through JAX's stateless step.

    Args:
        generator: a Keras model ``(batch, latent_dim) -> samples``.
        discriminator: a Keras model ``samples -> (batch, 1)`` logits.
        latent_dim: the size of ``z``.
        loss: the objectives, any serializable object with ``d_loss``/``g_loss``
            (default ``GANLoss()``).
        mode: one of :data:`GAN_MODES`.
        lam: weight of the generator term of the single loss, a positive number.
        seed: seed of the latent draws in training (``None``: from Keras's global seed).

    ``gan(z)`` is ``generator(z)``; ``gan.sample(num, seed)`` draws samples as NumPy.
    Backends: TensorFlow and JAX.

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """

    def __init__(self, generator, discriminator, latent_dim, loss=None, mode="single_loss",
                 lam=1.0, seed=None, **kwargs):
        check_backend("GAN", GAN_BACKENDS,
                      "its train_step differentiates with tf.GradientTape or jax.grad")
        check_instance(generator, "generator", keras.layers.Layer, "a Keras model or layer")
        check_instance(discriminator, "discriminator", keras.layers.Layer,
                       "a Keras model or layer")
        latent_dim = check_int(latent_dim, "latent_dim")
        loss = GANLoss() if loss is None else _check_loss_object(loss)
        check_choice(mode, "mode", GAN_MODES)
        lam = check_real(lam, "lam", 0.0, low_open=True)
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        super().__init__(**kwargs)
        _build_players(generator, discriminator, latent_dim)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.gan_loss = loss
        self.mode = mode
        self.lam = lam
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer = None
        self.batch_history = {"d_loss": [], "g_loss": []}
        self.built = True

    # ------------------------------------------------------------------ configuration
    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def get_config(self):
        return {"generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "latent_dim": self.latent_dim,
                "loss": keras.saving.serialize_keras_object(self.gan_loss),
                "mode": self.mode, "lam": self.lam, "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("generator", "discriminator", "loss"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects)
        return cls(**config)

    def compile(self, optimizer="adam", d_optimizer=None, **kwargs):
        """``optimizer``: the one optimizer (single loss) or the generator's (alternating);
        ``d_optimizer``: the discriminator's (alternating only; default: ``optimizer``'s
        config). Other keywords go to ``keras.Model.compile``; ``loss`` is refused (the
        objectives are the constructor's ``loss``)."""
        if kwargs.get("loss") is not None:
            raise ValueError(f"loss must be given to GAN(..., loss=...), not to compile(); "
                             f"got loss={kwargs['loss']!r}.")
        super().compile(optimizer=optimizer, **kwargs)
        if self.mode == "single_loss":
            if d_optimizer is not None:
                raise ValueError(f"d_optimizer is used only with mode='alternating'; this GAN "
                                 f"has mode='single_loss', got d_optimizer={d_optimizer!r}.")
            self.optimizer.build(self.trainable_variables)
            return
        if d_optimizer is None:
            d_optimizer = self.optimizer.__class__.from_config(self.optimizer.get_config())
        d_optimizer = keras.optimizers.get(d_optimizer)
        if d_optimizer is self.optimizer:
            raise ValueError("d_optimizer must be another optimizer object than optimizer, "
                             "got the same object twice.")
        self.optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)
        self.d_optimizer = d_optimizer
        self._d_optimizer_state = list(d_optimizer.variables)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self.d_optimizer is not None:
            config = dict(config)
            config["d_optimizer"] = keras.saving.serialize_keras_object(self.d_optimizer)
        return config

    def compile_from_config(self, config):
        config = dict(config)
        for key in ("optimizer", "d_optimizer"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        config = {k: v for k, v in config.items() if k in ("optimizer", "d_optimizer") or
                  (k not in ("loss", "loss_weights", "metrics", "weighted_metrics")
                   and v is not None)}
        self.compile(**config)

    @property
    def metrics(self):
        return [self.loss_tracker, self.d_loss_tracker, self.g_loss_tracker]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The discriminator's loss ``d_loss(D(x), D(y_pred))`` on real samples ``x`` and
        generated samples ``y_pred`` (``y`` and ``sample_weight`` are not used)."""
        if x is None or y_pred is None:
            raise ValueError(f"compute_loss needs real samples x and generated samples y_pred, "
                             f"got x={describe(x)} and y_pred={describe(y_pred)}.")
        return self.gan_loss.d_loss(self.discriminator(x, training=training),
                                    self.discriminator(y_pred, training=training))

    def fit(self, *args, callbacks=None, **kwargs):
        """``keras.Model.fit`` on real samples; also records every batch's ``d_loss`` and
        ``g_loss`` in ``batch_history``."""
        callbacks = list(callbacks or []) + [_Recorder(self.batch_history)]
        return super().fit(*args, callbacks=callbacks, **kwargs)

    # ------------------------------------------------------------------ sampling
    def sample(self, num, seed=0, batch_size=1000):
        """``num`` samples ``G(z)`` as NumPy, ``z ~ N(0, I)`` drawn by NumPy with ``seed``."""
        num = check_int(num, "num")
        seed = check_int(seed, "seed", 0)
        batch_size = check_int(batch_size, "batch_size")
        z = np.random.default_rng(seed).standard_normal((num, self.latent_dim))
        z = z.astype(_input_dtype(self.generator))
        out = [ops.convert_to_numpy(self.generator(z[i:i + batch_size], training=False))
               for i in range(0, num, batch_size)]
        return np.concatenate(out, axis=0)

    def _draw_latent(self, batch):
        return keras.random.normal((batch, self.latent_dim), seed=self.seed_generator,
                                   dtype=_input_dtype(self.generator))

    # ------------------------------------------------------------------ the objectives
    def _logits(self, x_real, z):
        """``D(x)``, ``D(G(z))``, ``D(sg(G(z)))`` in training mode, from one call of the
        discriminator on the three batches stacked. With three calls, each discriminator weight
        would receive three gradient contributions, and TensorFlow sums them in an order that
        varies from run to run (floating-point addition of three terms depends on the order),
        which made training with the one loss unrepeatable; one call sums them inside one
        backward pass."""
        x_fake = self.generator(z, training=True)
        x_fake = ops.cast(x_fake, x_real.dtype)
        n, m = ops.shape(x_real)[0], ops.shape(x_fake)[0]
        both = ops.concatenate([x_real, x_fake, ops.stop_gradient(x_fake)], axis=0)
        logits = self.discriminator(both, training=True)
        return logits[:n], logits[n:n + m], logits[n + m:]

    def _objective(self, which, x_real, z):
        """The scalar ``which`` and the logs ``(d_loss, g_loss)`` it measures."""
        loss = self.gan_loss
        if which == "g":
            fake = self.discriminator(self.generator(z, training=True), training=True)
            g = loss.g_loss(fake)
            return g, (None, g)
        if which == "d":
            x_fake = ops.stop_gradient(self.generator(z, training=True))
            real = self.discriminator(x_real, training=True)
            fake_sg = self.discriminator(x_fake, training=True)
            d = loss.d_loss(real, fake_sg)
            return d, (d, None)
        real, fake, fake_sg = self._logits(x_real, z)
        d, g = loss.d_loss(real, fake_sg), loss.g_loss(fake)
        if which == "g_term":
            return g - loss.g_loss(fake_sg), (d, g)
        return single_loss(loss, real, fake, fake_sg, self.lam), (d, g)

    def loss_gradients(self, x_real, z, which="single"):
        """The value of one objective and its gradient with respect to every trainable weight.

        ``which``: ``"single"`` (:func:`single_loss`), ``"g_term"`` (its generator bracket,
        ``g_loss(D(G(z))) - g_loss(D(sg G(z)))``), ``"d"`` (``d_loss(D(x), D(sg G(z)))``) or
        ``"g"`` (``g_loss(D(G(z)))``, no stop gradient). Returns ``(value, grads)`` as NumPy,
        ``grads`` aligned with ``gan.trainable_variables`` (zeros where the objective does not
        depend on a weight). Evaluated in training mode; the weights are not changed.

        Used in: book/generative/single-loss-gan.md
        """
        check_choice(which, "which", ("single", "g_term", "d", "g"))
        x_real = ops.convert_to_tensor(x_real, dtype=_input_dtype(self.discriminator))
        z = ops.convert_to_tensor(z, dtype=_input_dtype(self.generator))
        variables = self.trainable_variables
        if keras.backend.backend() == "jax":
            import jax

            ntv = [v.value for v in self.non_trainable_variables]

            def f(tv):
                value, _, _ = self._stateless(tv, ntv, lambda: self._objective(which, x_real, z))
                return value[0]

            value, grads = jax.value_and_grad(f)([v.value for v in variables])
        else:
            import tensorflow as tf

            with tf.GradientTape() as tape:
                value, _ = self._objective(which, x_real, z)
            grads = tape.gradient(value, variables)
        grads = [np.zeros(v.shape, keras.backend.standardize_dtype(v.dtype)) if g is None
                 else ops.convert_to_numpy(g) for g, v in zip(grads, variables)]
        return float(ops.convert_to_numpy(value)), grads

    # ------------------------------------------------------------------ training
    def _split(self, variables, group):
        """Positions in ``variables`` of the variables of ``group``."""
        ids = {id(v) for v in group}
        return [i for i, v in enumerate(variables) if id(v) in ids]

    def _stateless(self, tv, ntv, fn, mv=None):
        return run_stateless(self, tv, ntv, fn, mv)

    def _logs(self, total, d, g):
        self.loss_tracker.update_state(total)
        self.d_loss_tracker.update_state(d)
        self.g_loss_tracker.update_state(g)
        return {"loss": self.loss_tracker.result(), "d_loss": self.d_loss_tracker.result(),
                "g_loss": self.g_loss_tracker.result()}

    def _tf_train_step(self, data):
        import tensorflow as tf

        x_real = data[0] if isinstance(data, (tuple, list)) else data
        z = self._draw_latent(ops.shape(x_real)[0])
        if self.mode == "single_loss":
            variables = self.trainable_variables
            with tf.GradientTape() as tape:
                total, (d, g) = self._objective("single", x_real, z)
            self.optimizer.apply(tape.gradient(total, variables), variables)
            return self._logs(total, d, g)
        d_vars = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            d, _ = self._objective("d", x_real, z)
        self.d_optimizer.apply(tape.gradient(d, d_vars), d_vars)
        g_vars = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            g, _ = self._objective("g", x_real, z)
        self.optimizer.apply(tape.gradient(g, g_vars), g_vars)
        return self._logs(d + g, d, g)

    def _jax_train_step(self, state, data):
        import jax

        tv, ntv, ov, mv = state
        tv, ntv, mv = list(tv), list(ntv), list(mv)
        x_real = data[0] if isinstance(data, (tuple, list)) else data
        z, ntv, _ = self._stateless(tv, ntv, lambda: self._draw_latent(x_real.shape[0]))
        variables = self.trainable_variables

        def value_and_grad(which, index):
            def f(sub, ntv):
                full = list(tv)
                for i, s in zip(index, sub):
                    full[i] = s
                (value, logs), new_ntv, _ = self._stateless(
                    full, ntv, lambda: self._objective(which, x_real, z))
                return value, (logs, new_ntv)

            return jax.value_and_grad(f, has_aux=True)([tv[i] for i in index], ntv)

        if self.mode == "single_loss":
            index = list(range(len(variables)))
            (total, ((d, g), ntv)), grads = value_and_grad("single", index)
            tv, ov = self.optimizer.stateless_apply(ov, grads, tv)
            tv = list(tv)
        else:
            d_index = self._split(variables, self.discriminator.trainable_variables)
            g_index = self._split(variables, self.generator.trainable_variables)
            s_index = self._split(self.non_trainable_variables, self._d_optimizer_state)
            (_, ((d, _), ntv)), grads = value_and_grad("d", d_index)
            ntv = list(ntv)
            new_d, new_s = self.d_optimizer.stateless_apply(
                [ntv[i] for i in s_index], grads, [tv[i] for i in d_index])
            for i, v in zip(d_index, new_d):
                tv[i] = v
            for i, v in zip(s_index, new_s):
                ntv[i] = v
            (_, ((_, g), ntv)), grads = value_and_grad("g", g_index)
            new_g, ov = self.optimizer.stateless_apply(ov, grads, [tv[i] for i in g_index])
            for i, v in zip(g_index, new_g):
                tv[i] = v
            total = d + g
        logs, _, mv = self._stateless(tv, ntv, lambda: self._logs(total, d, g), mv=mv)
        return logs, (tv, list(ntv), ov, mv)

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)


# ---------------------------------------------------------------------------------- builders


def mlp_generator(latent_dim, output_dim=2, width=128, depth=2):
    """``z (batch, latent_dim) -> x (batch, output_dim)``: ``depth`` ReLU layers of ``width``
    units, then a linear output.

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """
    latent_dim = check_int(latent_dim, "latent_dim")
    output_dim = check_int(output_dim, "output_dim")
    width = check_int(width, "width")
    depth = check_int(depth, "depth", 0)
    layers = [keras.Input((latent_dim,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers.append(keras.layers.Dense(output_dim))
    return keras.Sequential(layers, name="mlp_generator")


def mlp_discriminator(input_dim=2, width=128, depth=2):
    """``x (batch, input_dim) -> logit (batch, 1)``: ``depth`` LeakyReLU(0.2) layers of
    ``width`` units, then one linear unit.

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """
    input_dim = check_int(input_dim, "input_dim")
    width = check_int(width, "width")
    depth = check_int(depth, "depth", 0)
    layers = [keras.Input((input_dim,))]
    for _ in range(depth):
        layers += [keras.layers.Dense(width), keras.layers.LeakyReLU(0.2)]
    layers.append(keras.layers.Dense(1))
    return keras.Sequential(layers, name="mlp_discriminator")


def dcgan_generator(latent_dim, channels=32):
    """``z (batch, latent_dim) -> images (batch, 28, 28, 1)`` in ``[0, 1]``.

    Dense to ``7 × 7 × 2·channels`` (ReLU), a 5×5 stride-2 transposed convolution to
    ``channels`` (ReLU, 14×14), a 5×5 stride-2 transposed convolution to one channel with a
    sigmoid (28×28). No batch normalisation.

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """
    latent_dim = check_int(latent_dim, "latent_dim")
    channels = check_int(channels, "channels")
    return keras.Sequential([
        keras.Input((latent_dim,)),
        keras.layers.Dense(7 * 7 * 2 * channels, activation="relu"),
        keras.layers.Reshape((7, 7, 2 * channels)),
        keras.layers.Conv2DTranspose(channels, 5, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation="sigmoid"),
    ], name="dcgan_generator")


def dcgan_discriminator(channels=32):
    """``images (batch, 28, 28, 1) -> logit (batch, 1)``.

    Two 5×5 stride-2 convolutions (``channels``, then ``2·channels``; LeakyReLU(0.2)), then a
    linear unit on the flattened 7×7 features. No batch normalisation (a single-loss step
    passes real, generated and stopped generated samples through the discriminator as one
    batch, whose statistics would mix them).

    Used in: book/generative/single-loss-gan.md, book/generative/f-gan.md
    """
    channels = check_int(channels, "channels")
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(channels, 5, strides=2, padding="same"),
        keras.layers.LeakyReLU(0.2),
        keras.layers.Conv2D(2 * channels, 5, strides=2, padding="same"),
        keras.layers.LeakyReLU(0.2),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    ], name="dcgan_discriminator")


# ---------------------------------------------- the optimal discriminator and a logistic fit


def optimal_discriminator(p, q):
    """The discriminator that maximises ``E_p[log D] + E_q[log(1 - D)]``, point by point:
    ``D* = p / (p + q)`` from the two densities (or probabilities) at the same points.

    NumPy in, NumPy out (float64, the broadcast shape); ``nan`` where ``p + q = 0``. It is
    ``1/2`` wherever ``p = q``.

    Used in: book/transformers/albert-electra.md
    """
    from kexue._checks import as_array, check_finite

    p = as_array(p, "p", "float64")
    q = as_array(q, "q", "float64")
    for name, a in (("p", p), ("q", q)):
        check_finite(a, name)
        if np.any(a < 0):
            raise ValueError(f"{name} must hold non-negative densities, got a minimum of "
                             f"{a.min()!r}.")
    try:
        total = p + q
    except ValueError:
        raise ValueError(f"p and q must have broadcastable shapes, got {p.shape} and "
                         f"{q.shape}.") from None
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), np.nan)


def fit_logistic_discriminator(samples_p, samples_q, steps=25, l2=0.0):
    """A logistic discriminator ``D(x) = sigmoid(x w + b)`` fitted by Newton's method (NumPy,
    float64) to tell ``samples_p`` (label 1) from ``samples_q`` (label 0) by maximum likelihood.

    ``samples_p`` ``(N_p, d)`` or ``(N_p,)``, ``samples_q`` likewise with the same ``d``;
    ``l2`` adds ``l2/2 |w|^2`` to the negative log-likelihood (0: none). With equal sample
    sizes its logit estimates ``log p(x) / q(x)``, e.g. ``-mu x + mu^2 / 2`` for
    ``p = N(0, 1)``, ``q = N(mu, 1)``. Returns ``(w, b)``: ``w`` float64 ``(d,)``, ``b`` a float.

    Used in: book/transformers/albert-electra.md
    """
    from kexue._checks import as_array, check_finite

    xs = []
    for name, s in (("samples_p", samples_p), ("samples_q", samples_q)):
        a = as_array(s, name, "float64")
        a = a[:, None] if a.ndim == 1 else a
        check_shape(a, name, ("N", "d"))
        check_finite(a, name)
        if len(a) == 0:
            raise ValueError(f"{name} must hold at least one sample, got shape {a.shape}.")
        xs.append(a)
    if xs[0].shape[1] != xs[1].shape[1]:
        raise ValueError(f"samples_q must have the dimension of samples_p "
                         f"({xs[0].shape[1]}), got shape {xs[1].shape}.")
    steps = check_int(steps, "steps")
    l2 = check_real(l2, "l2", 0.0)
    x = np.concatenate(xs)
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    y = np.concatenate([np.ones(len(xs[0])), np.zeros(len(xs[1]))])
    theta = np.zeros(x.shape[1])
    ridge = np.diag([l2] * (x.shape[1] - 1) + [0.0])
    for _ in range(steps):
        d = 1 / (1 + np.exp(-(x @ theta)))
        grad = x.T @ (d - y) + ridge @ theta
        hess = (x * (d * (1 - d))[:, None]).T @ x + ridge + 1e-12 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        theta = theta - step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta[:-1], float(theta[-1])


__all__ += ["optimal_discriminator", "fit_logistic_discriminator"]
