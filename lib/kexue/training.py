"""Training mechanics: gradient accumulation.

:class:`GradientAccumulator` wraps any Keras 3 optimizer so that ``model.fit`` with
batches of ``b`` examples updates the weights exactly as the wrapped optimizer would
with batches of ``steps * b`` examples: it sums the gradients of ``steps`` consecutive
micro-batches and hands their mean to the wrapped optimizer once per ``steps`` calls.

:func:`average_micro_batch_grads` is the reference the accumulator is tested against:
the size-weighted mean of micro-batch gradients, computed directly.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kexue")
class GradientAccumulator(keras.optimizers.Optimizer):
    """Accumulate gradients over ``steps`` micro-batches, then update once.

    On every call of :meth:`apply` the gradients are added to one accumulator per
    trainable variable (same shapes as the variables). On every ``steps``-th call the
    wrapped ``optimizer`` receives ``accumulator / steps`` and the accumulators are
    reset; on the other calls the weights and the wrapped optimizer's state do not
    move. Because the wrapped optimizer only sees these averaged gradients, its own
    iteration counter counts real updates: Adam's bias corrections and learning-rate
    schedules step as they would with the big batch (Keras's built-in
    ``gradient_accumulation_steps`` evaluates a schedule at the micro-step count).

    The branch is a ``keras.ops.cond``, which runs one branch only, so the update
    costs nothing on the other ``steps - 1`` calls.

    Args:
        optimizer: any Keras 3 optimizer instance (or its serialized config), without
            its own ``gradient_accumulation_steps``.
        steps: number of micro-batches per update, an integer >= 1 (1 = no
            accumulation).
        name: name of the wrapper.

    Attributes:
        iterations: number of real updates (the wrapped optimizer's counter).
        micro_steps: number of micro-batches seen.

    Example::

        opt = GradientAccumulator(keras.optimizers.Adam(1e-3), steps=10)
        model.compile(optimizer=opt, loss=...)
        model.fit(x, y, batch_size=10)   # updates like Adam at batch size 100

    Used in: book/keras/gradient-accumulation.md
    """

    def __init__(self, optimizer, steps, name="gradient_accumulator", **kwargs):
        if isinstance(optimizer, dict):
            optimizer = keras.optimizers.deserialize(optimizer)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError(
                f"optimizer must be a keras.optimizers.Optimizer instance, got "
                f"{type(optimizer).__name__}."
            )
        if isinstance(optimizer, GradientAccumulator):
            raise TypeError("optimizer is already a GradientAccumulator; nest steps instead.")
        if optimizer.gradient_accumulation_steps:
            raise ValueError(
                "optimizer already accumulates gradients (gradient_accumulation_steps="
                f"{optimizer.gradient_accumulation_steps}); use one mechanism, not both."
            )
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
        for key in ("learning_rate", "gradient_accumulation_steps", "use_ema"):
            kwargs.pop(key, None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.optimizer = optimizer
        self.steps = steps

    # -- state ------------------------------------------------------------------------
    def build(self, var_list):
        """Create one zero accumulator per variable and build the wrapped optimizer."""
        if self.built:
            return
        super().build(var_list)
        self.optimizer.build(var_list)
        self._accumulators = [
            self.add_variable_from_reference(v, name="accumulator") for v in var_list
        ]
        self.built = True

    @property
    def variables(self):
        """The wrapper's variables (micro-step counter, accumulators), then the wrapped
        optimizer's, so that stateless backends (JAX) update all of them."""
        return self._variables[:] + self.optimizer.variables

    @property
    def iterations(self):
        return self.optimizer.iterations

    @property
    def micro_steps(self):
        return self._iterations

    @property
    def learning_rate(self):
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    def _get_current_learning_rate(self):
        return self.optimizer._get_current_learning_rate()

    # -- the update ---------------------------------------------------------------------
    def apply(self, grads, trainable_variables=None):
        """Add ``grads`` to the accumulators; every ``steps``-th call, update once.

        Args:
            grads: list of gradients, one per trainable variable (``None`` entries are
                treated as zero).
            trainable_variables: the variables, required on the first call.
        """
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "GradientAccumulator.apply needs trainable_variables on its first call "
                    "(or call build(variables) first)."
                )
            trainable_variables = self._trainable_variables
        else:
            trainable_variables = list(trainable_variables)
            if not self.built:
                with keras.name_scope(self.name, caller=self):
                    self.build(trainable_variables)
        grads = list(grads)
        if len(grads) != len(trainable_variables):
            raise ValueError(
                f"got {len(grads)} gradients for {len(trainable_variables)} variables."
            )
        accumulators = [self._accumulators[self._get_variable_index(v)]
                        for v in trainable_variables]
        with keras.name_scope(self.name, caller=self):
            for acc, g in zip(accumulators, grads):
                if g is not None:
                    acc.assign_add(ops.cast(g, acc.dtype))
            is_update = ops.equal((self._iterations + 1) % self.steps, 0)

            def update():
                mean = [ops.divide(acc, ops.cast(self.steps, acc.dtype)) for acc in accumulators]
                self.optimizer.apply(mean, trainable_variables)
                for acc in accumulators:
                    acc.assign(ops.zeros_like(acc))

            if self.steps == 1:
                update()
            else:
                ops.cond(is_update, update, lambda: None)
            self._iterations.assign_add(1)

    def update_step(self, gradient, variable, learning_rate):  # pragma: no cover
        raise NotImplementedError("GradientAccumulator updates through its wrapped optimizer.")

    # -- serialisation ------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        for key in ("learning_rate", "gradient_accumulation_steps", "use_ema",
                    "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor"):
            config.pop(key, None)
        config["optimizer"] = keras.optimizers.serialize(self.optimizer)
        config["steps"] = self.steps
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["optimizer"] = keras.optimizers.deserialize(
            config["optimizer"], custom_objects=custom_objects
        )
        return cls(**config)


def average_micro_batch_grads(model, loss_fn, x, y, sizes, weighting="size"):
    """Mean of the gradients of ``loss_fn`` over consecutive micro-batches of ``x, y``.

    The batch is cut into consecutive micro-batches of the given ``sizes`` (which must
    add up to ``len(x)``); each micro-batch's gradient is that of its *mean* loss.
    With ``weighting="size"`` the gradients are weighted by ``|M_k| / |B|``, which
    equals the gradient of the mean loss over the whole batch; with ``"mean"`` they are
    averaged with equal weights ``1/n``, which does not when the sizes differ.

    This uses ``tf.GradientTape`` and so needs the TensorFlow backend.

    Args:
        model: a built Keras model.
        loss_fn: ``loss_fn(y_true, y_pred)`` returning the mean loss (a Keras loss).
        x, y: arrays with ``len(x) == len(y) == sum(sizes)``.
        sizes: positive micro-batch sizes.
        weighting: ``"size"`` or ``"mean"``.

    Returns:
        A list of tensors, one per trainable variable, with the variables' shapes.

    Used in: book/keras/gradient-accumulation.md
    """
    import tensorflow as tf

    sizes = [int(s) for s in sizes]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes!r}.")
    if sum(sizes) != len(x) or len(x) != len(y):
        raise ValueError(
            f"sizes add up to {sum(sizes)}, but x has {len(x)} and y has {len(y)} rows."
        )
    if weighting not in ("size", "mean"):
        raise ValueError(f"weighting must be 'size' or 'mean', got {weighting!r}.")
    total = None
    start = 0
    for size in sizes:
        xb, yb = x[start:start + size], y[start:start + size]
        start += size
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        w = size / len(x) if weighting == "size" else 1.0 / len(sizes)
        grads = [w * g for g in grads]
        total = grads if total is None else [a + g for a, g in zip(total, grads)]
    return total


class BatchLossHistory(keras.callbacks.Callback):
    """Record the loss of every training batch, not the running mean Keras reports.

    Keras passes ``on_train_batch_end`` the mean loss since the start of the epoch;
    the loss of batch ``k`` is recovered as ``k * mean_k - (k - 1) * mean_{k-1}``
    (in float64). After training, ``losses`` is a list with one float per batch, across
    all epochs and all ``fit`` calls that used this callback.

    Used in: book/keras/gradient-accumulation.md
    """

    def __init__(self, key="loss"):
        super().__init__()
        self.key = key
        self.losses: list[float] = []
        self._prev = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float((logs or {})[self.key])
        k = batch + 1
        self.losses.append(k * mean - (k - 1) * self._prev)
        self._prev = mean
