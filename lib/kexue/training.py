"""Training mechanics: gradient accumulation and recomputation (gradient checkpointing).

:class:`GradientAccumulator` wraps any Keras 3 optimizer so that ``model.fit`` with
batches of ``b`` examples updates the weights exactly as the wrapped optimizer would
with batches of ``steps * b`` examples: it sums the gradients of ``steps`` consecutive
micro-batches and hands their mean to the wrapped optimizer once per ``steps`` calls.

:func:`average_micro_batch_grads` is the reference the accumulator is tested against:
the size-weighted mean of micro-batch gradients, computed directly.

:class:`Recompute` wraps a block so that its activations are recomputed in the backward pass
(``keras.remat``), replaying dropout masks; :func:`residual_mlp` builds a network with no,
per-block or whole-stack recomputation, and :func:`peak_rss_mb` measures a training step's peak
memory in a fresh subprocess.
"""

from __future__ import annotations

import keras
from keras import ops

from kexue._checks import (
    _is_int,
    as_array,
    check_backend,
    check_bool,
    check_callable,
    check_choice,
    check_finite,
    check_instance,
    check_int,
    check_positive,
    check_real,
    describe,
)


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
    costs nothing on the other ``steps - 1`` calls. On the JAX backend no variable may be
    assigned inside a traced branch, so there the update is computed on every call and kept
    only on the ``steps``-th (as Keras's own JAX optimizer does for its
    ``gradient_accumulation_steps``): same result, more work per micro-step.

    What it equals: the wrapped optimizer applied to the *dense* mean gradient of the big
    batch, the update the derivation describes. The accumulators are dense variables, so a
    sparse gradient (the ``tf.IndexedSlices`` of an ``Embedding`` on TensorFlow) is summed
    into them densely and the wrapped optimizer always receives a dense tensor, with
    ``steps=1`` too; Keras's built-in ``gradient_accumulation_steps`` does the same. Plain
    ``model.fit`` at the big batch is not always that update on TensorFlow: Keras's Adam
    applies an ``IndexedSlices`` with repeated row indices slice by slice, adding the sum of
    the squared slices to its second moment where the dense gradient adds the square of their
    sum (so do AdamW, Nadam, RMSprop, Adagrad and Adafactor; SGD, Adamax and Lion do not
    differ). With an ``Embedding`` and Adam the accumulated run therefore differs from Keras's
    big batch (tests/test_training.py: 4 micro-batches of 5 against one batch of 20,
    ``Adam(1e-2)``, two updates, float64: 1.5e-2 in the weights) while it equals the dense big
    batch to rounding; with SGD, or on JAX, whose gradients are dense, the two big batches
    coincide.

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
        steps = check_int(steps, "steps")
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
                mean = [ops.divide(acc.value, ops.cast(self.steps, acc.dtype))
                        for acc in accumulators]
                self.optimizer.apply(mean, trainable_variables)
                for acc in accumulators:
                    acc.assign(ops.zeros(acc.shape, acc.dtype))

            if self.steps == 1:
                update()
            elif keras.backend.backend() == "jax":
                self._update_without_branch(is_update, update, trainable_variables, accumulators)
            else:
                ops.cond(is_update, update, lambda: None)
            self._iterations.assign_add(1)

    def _update_without_branch(self, is_update, update, trainable_variables, accumulators):
        """Run ``update`` always, then keep its results only where ``is_update`` (JAX)."""
        state = list(trainable_variables) + list(self.optimizer.variables) + accumulators
        before = [v.value for v in state]
        update()
        for variable, old in zip(state, before):
            variable.assign(ops.where(is_update, variable.value, old))

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

    This uses ``tf.GradientTape`` and so needs the TensorFlow backend; on another Keras
    backend it raises ``RuntimeError``.

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
    check_instance(model, "model", keras.Model, "a built keras.Model")
    check_callable(loss_fn, "loss_fn")
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ValueError(f"sizes must be a list of positive integers, got {describe(sizes)}.")
    sizes = list(sizes)
    if not sizes or not all(_is_int(s) and s >= 1 for s in sizes):
        raise ValueError(f"sizes must be positive integers, got {sizes!r}.")
    sizes = [int(s) for s in sizes]
    if sum(sizes) != len(x) or len(x) != len(y):
        raise ValueError(
            f"sizes add up to {sum(sizes)}, but x has {len(x)} and y has {len(y)} rows."
        )
    check_choice(weighting, "weighting", ("size", "mean"))
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "average_micro_batch_grads needs the TensorFlow backend (it differentiates with "
            f"tf.GradientTape); the Keras backend is {keras.backend.backend()!r}. Run it with "
            "KERAS_BACKEND=tensorflow."
        )
    import tensorflow as tf

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
        self.key = check_instance(key, "key", str, "the name of a logged metric (a string)")
        self.losses: list[float] = []
        self._prev = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._prev = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float((logs or {})[self.key])
        k = batch + 1
        self.losses.append(k * mean - (k - 1) * self._prev)
        self._prev = mean


# =========================================================================================
# Recomputation (gradient checkpointing)
# =========================================================================================
#
# Used in: book/keras/recomputation.md. A block wrapped in :class:`Recompute` keeps only its
# inputs for the backward pass and recomputes its inner activations there (``keras.remat``,
# which is ``tf.recompute_grad`` on the TensorFlow backend). :func:`residual_mlp` builds the
# test model with no, per-block or whole-stack recomputation, and :func:`peak_rss_mb` measures
# the peak memory of one training step in a fresh subprocess (:func:`_rss_probe_main`).

RECOMPUTE_MODES = ("none", "per_block", "whole")
"""Where :func:`residual_mlp` recomputes: nowhere, around every block, around the whole stack."""


def recompute(fn):
    """Wrap ``fn`` so that its intermediate results are recomputed in the backward pass.

    Returns ``keras.remat(fn)``: the forward pass of the wrapped function keeps only its inputs
    (and the variables it reads); the gradient runs ``fn`` again under a tape. On the TensorFlow
    backend this is ``tf.recompute_grad``. Gradients equal those of ``fn`` only if ``fn`` is
    deterministic; random layers inside need :class:`Recompute`'s ``preserve_rng_state``.

    Used in: book/keras/recomputation.md
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}.")
    return keras.remat(fn)


def _seed_generators(layer):
    """Every SeedGenerator of ``layer`` and its sublayers (Dropout, noise layers...)."""
    out, seen = [], set()
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        for generator in getattr(sub, "_seed_generators", []):
            if id(generator) not in seen:
                seen.add(id(generator))
                out.append(generator)
    return out


@keras.saving.register_keras_serializable(package="kexue")
class Recompute(keras.layers.Wrapper):
    """Call ``layer`` so that its activations are recomputed in the backward pass.

    The output is ``layer(inputs)`` (same shapes); with ``enabled=True`` the call goes through
    :func:`recompute`, so that backpropagation stores only the block's input instead of every
    activation inside it, at the price of a second forward pass of the block during the
    backward pass. Wrap *every* block of a deep model: one wrapper around the whole model
    recomputes the whole forward pass at once and saves almost nothing.

    Random layers inside (``Dropout``) draw their masks from ``SeedGenerator`` states that move
    on at every draw, so the recomputation would draw *new* masks and the gradient would belong
    to a different network. With ``preserve_rng_state=True`` (the default) the states are read
    before the forward pass and written back at the start of the recomputation, so both passes
    draw the same masks and the generators end in the same state as without recomputation.

    The recomputation is ``tf.recompute_grad`` under the TensorFlow backend (``keras.remat``
    elsewhere); the memory saving needs graph execution (``model.fit`` / ``tf.function``).
    On JAX (``jax.checkpoint``) the block runs as a pure function of its input and its
    variables' values, so the masks are replayed in any case (see ``_call_pure``).

    Args:
        layer: the block, any Keras layer or model.
        enabled: recompute (True) or call ``layer`` plainly (False: same weights, same output).
        preserve_rng_state: replay the random masks in the recomputation.

    Used in: book/keras/recomputation.md
    """

    def __init__(self, layer, enabled=True, preserve_rng_state=True, **kwargs):
        enabled = check_bool(enabled, "enabled")
        preserve_rng_state = check_bool(preserve_rng_state, "preserve_rng_state")
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"layer must be a Keras layer, got {type(layer).__name__}.")
        super().__init__(layer, **kwargs)
        self.enabled = enabled
        self.preserve_rng_state = preserve_rng_state

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, training=None):
        return self.layer.compute_output_spec(inputs)

    def call(self, inputs, training=None):
        if not self.enabled:
            return self.layer(inputs, training=training)
        if keras.backend.backend() == "jax":
            return self._call_pure(inputs, training)
        generators = _seed_generators(self.layer) if self.preserve_rng_state else []
        # Copies of the generator states as they are before the forward pass ("* 1" copies).
        states = [g.state.value * 1 for g in generators]

        def forward(x):
            for generator, state in zip(generators, states):
                generator.state.assign(state)
            return self.layer(x, training=training)

        return recompute(forward)(inputs)

    def _call_pure(self, inputs, training):
        """JAX: the block as a pure function of its input and of every variable's value.

        ``jax.checkpoint`` traces the block, and a variable assigned inside the trace (a
        SeedGenerator's state as Dropout draws its mask, a BatchNormalization statistic) would
        leak a tracer. So the block runs in a ``keras.StatelessScope`` fed with the variables'
        current values, returns their new values, and these are assigned outside the
        checkpoint. The recomputation sees the same inputs, hence draws the same masks: on JAX
        the masks are always replayed, whatever ``preserve_rng_state`` says.
        """
        variables = self.layer.variables
        values = [v.value for v in variables]

        def forward(x, values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
                y = self.layer(x, training=training)
            return y, [scope.get_current_value(v) for v in variables]

        outputs, new_values = recompute(forward)(inputs, values)
        for variable, value in zip(variables, new_values):
            if not variable.trainable:
                variable.assign(value)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({"enabled": self.enabled, "preserve_rng_state": self.preserve_rng_state})
        return config


def residual_block(width, dropout=0.0, name=None):
    """One residual block ``x + Dense(gelu)(Dropout(Dense(gelu)(x)))`` as a functional model.

    Input and output have shape ``(batch, width)``.

    Used in: book/keras/recomputation.md
    """
    width = check_int(width, "width", what="a positive integer")
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {describe(name)}.")
    x = keras.Input((width,))
    h = keras.layers.Dense(width, activation="gelu")(x)
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    h = keras.layers.Dense(width, activation="gelu")(h)
    return keras.Model(x, keras.layers.Add()([x, h]), name=name)


def residual_mlp(input_dim, classes, depth, width, dropout=0.0, mode="none",
                 preserve_rng_state=True):
    """A stem ``Dense(width)``, ``depth`` residual blocks, a softmax head over ``classes``.

    ``mode`` chooses where recomputation happens: ``"none"``, ``"per_block"`` (every block in
    its own :class:`Recompute`) or ``"whole"`` (one :class:`Recompute` around the stack of
    blocks). The three build the same network from the same initial weights for a given Keras
    seed. Input ``(batch, input_dim)``, output ``(batch, classes)`` probabilities.

    Used in: book/keras/recomputation.md
    """
    check_choice(mode, "mode", RECOMPUTE_MODES)
    for name, value in (("input_dim", input_dim), ("classes", classes), ("depth", depth),
                        ("width", width)):
        check_int(value, name, what="a positive integer")
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    preserve_rng_state = check_bool(preserve_rng_state, "preserve_rng_state")
    inputs = keras.Input((input_dim,))
    h = keras.layers.Dense(width, name="stem")(inputs)
    blocks = [residual_block(width, dropout, name=f"block_{i}") for i in range(depth)]
    if mode == "whole":
        stack = keras.Sequential(blocks, name="stack")
        h = Recompute(stack, preserve_rng_state=preserve_rng_state, name="recompute_stack")(h)
    else:
        for i, block in enumerate(blocks):
            if mode == "per_block":
                block = Recompute(block, preserve_rng_state=preserve_rng_state,
                                  name=f"recompute_{i}")
            h = block(h)
    outputs = keras.layers.Dense(classes, activation="softmax", name="head")(h)
    return keras.Model(inputs, outputs, name=f"residual_mlp_{mode}")


def _rss_probe_main():
    """Subprocess entry of :func:`peak_rss_mb`: one JSON config in ``sys.argv[1]``, one JSON
    line per batch size on stdout."""
    import json
    import resource
    import sys
    import time

    config = json.loads(sys.argv[1])
    import numpy as np
    import tensorflow as tf

    if config.get("threads"):
        tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
        tf.config.threading.set_inter_op_parallelism_threads(config["threads"])
    keras.utils.set_random_seed(0)
    dim = config["input_dim"]
    model = residual_mlp(dim, config["classes"], config["depth"], config["width"],
                         config.get("dropout", 0.0), config["mode"])
    # No XLA: it would merge the recomputation with the forward pass it repeats.
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="sparse_categorical_crossentropy",
                  jit_compile=False)
    rng = np.random.default_rng(0)
    for batch in sorted(config["batches"]):
        x = rng.normal(size=(batch, dim)).astype("float32")
        y = rng.integers(0, config["classes"], batch)
        times = []
        for _ in range(config.get("steps", 2)):
            t0 = time.perf_counter()
            loss = model.train_on_batch(x, y)
            times.append(time.perf_counter() - t0)
        gpu_peak = None
        if tf.config.list_physical_devices("GPU"):
            gpu_peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
        print(json.dumps({"batch": batch, "peak_mb": peak, "step_s": min(times[1:] or times),
                          "loss": float(loss), "gpu_peak_mb": gpu_peak}), flush=True)


def peak_rss_mb(mode, batches, depth=12, width=512, input_dim=784, classes=10, dropout=0.0,
                steps=2, threads=None, timeout=600):
    """Peak resident memory of training :func:`residual_mlp`, measured in a fresh Python process.

    The child builds the model and, for each batch size in increasing order, runs ``steps``
    ``train_on_batch`` calls with SGD on random data and reports its own peak RSS so far
    (``ru_maxrss``). A fresh process is needed because a process's peak never goes down; the
    batch sizes run in increasing order so that each peak is that of the largest batch so far
    (memory freed by a smaller batch is reused, not added). TensorFlow-specific: ``threads`` pins
    TensorFlow's thread pools (None: its defaults; with a single inter-op thread TensorFlow may
    schedule the recomputations early, which undoes the saving), and the GPU peak from
    ``tf.config.experimental.get_memory_info`` is reported too where a GPU exists.

    Args:
        mode: one of ``RECOMPUTE_MODES``; batches: positive batch sizes; the rest: the model
        of :func:`residual_mlp`, the steps per batch size, TensorFlow threads, a time limit (s).

    Returns:
        One dict per batch size, increasing: ``batch``, ``peak_mb`` (peak RSS so far, MiB),
        ``step_s`` (fastest step after the first), ``loss``, ``gpu_peak_mb`` (or None), ``mode``.

    Used in: book/keras/recomputation.md
    """
    import json
    import os
    import subprocess
    import sys

    check_choice(mode, "mode", RECOMPUTE_MODES)
    if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise ValueError(f"batches must be a list of positive integers, got {describe(batches)}.")
    batches = list(batches)
    if not batches or any(not _is_int(b) or b < 1 for b in batches):
        raise ValueError(f"batches must be positive integers, got {batches!r}.")
    batches = [int(b) for b in batches]
    depth, width, input_dim, classes, steps = (
        check_int(v, n, what="a positive integer") for v, n in (
            (depth, "depth"), (width, "width"), (input_dim, "input_dim"), (classes, "classes"),
            (steps, "steps")))
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    threads = None if threads is None else check_int(threads, "threads")
    timeout = check_positive(timeout, "timeout")
    config = dict(mode=mode, batches=batches, depth=depth, width=width, input_dim=input_dim,
                  classes=classes, dropout=dropout, steps=steps, threads=threads)
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError("peak_rss_mb needs TensorFlow installed: the probe measures the "
                           "TensorFlow backend (KERAS_BACKEND=tensorflow) in a subprocess.")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    proc = subprocess.run(
        [sys.executable, "-c", "from kexue.training import _rss_probe_main; _rss_probe_main()",
         json.dumps(config)],
        capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or len(lines) != len(batches):
        raise RuntimeError(
            f"memory probe failed for {config} (exit code {proc.returncode}):\n"
            f"{proc.stderr[-2000:]}"
        )
    return [dict(json.loads(line), mode=mode) for line in lines]


def max_batch_under(cap_mb, batches, peaks_mb):
    """Largest batch whose fitted peak memory ``a + b * batch`` stays under ``cap_mb``.

    Fits the straight line by least squares through the measured ``(batch, peak)`` pairs (at
    least two distinct batches) and returns ``(batch_max, a, b)`` with
    ``batch_max = floor((cap_mb - a) / b)`` (0 if even the intercept exceeds the cap).

    Used in: book/keras/recomputation.md
    """
    import numpy as np

    cap_mb = check_real(cap_mb, "cap_mb", 0.0, low_open=True)
    batches = as_array(batches, "batches", "float64")
    peaks = as_array(peaks_mb, "peaks_mb", "float64")
    check_finite(batches, "batches")
    check_finite(peaks, "peaks_mb")
    if batches.shape != peaks.shape or batches.ndim != 1 or len(np.unique(batches)) < 2:
        raise ValueError(
            f"batches and peaks_mb need the same length and >= 2 distinct batches, got shapes "
            f"{batches.shape} and {peaks.shape}.")
    slope, intercept = np.polyfit(batches, peaks, 1)
    if slope <= 0:
        raise ValueError(f"peak memory does not grow with the batch (slope {slope:.3g} MB).")
    best = int(np.floor((cap_mb - intercept) / slope + 1e-9))   # 1e-9: an exact fit's rounding
    return max(0, best), float(intercept), float(slope)


def peak_rss_curves(modes, batches, workers=2, **kwargs):
    """:func:`peak_rss_mb` for every mode in ``modes``, ``workers`` subprocesses at a time.

    Memory is per process, so probes running side by side do not change each other's peaks
    (they do change the step times). Returns the concatenated lists of :func:`peak_rss_mb`.

    Used in: book/keras/recomputation.md
    """
    from concurrent.futures import ThreadPoolExecutor

    if isinstance(modes, (str, bytes)) or not hasattr(modes, "__iter__"):
        raise ValueError(f"modes must be a list of modes from {RECOMPUTE_MODES}, got "
                         f"{describe(modes)}.")
    modes = list(modes)
    for mode in modes:
        check_choice(mode, "modes", RECOMPUTE_MODES)
    workers = check_int(workers, "workers")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda mode: peak_rss_mb(mode, batches, **kwargs), modes))
    return [row for rows in results for row in rows]


# =========================================================================================
# Signal propagation through depth at initialisation
# =========================================================================================

DEPTH_NORM_BACKENDS = ("tensorflow", "jax")
"""Backends on which :func:`depth_norms` can differentiate (it needs a gradient tape or a VJP)."""


def _layer_initializer(initializer, seed):
    """A fresh copy of ``initializer`` seeded with ``seed`` (a plain callable passes through)."""
    if isinstance(initializer, keras.initializers.Initializer):
        config = initializer.get_config()
        if "seed" in config:
            config["seed"] = seed
        return initializer.__class__.from_config(config)
    if isinstance(initializer, (str, dict)):
        try:
            resolved = keras.initializers.get(initializer)
            if resolved is None:
                raise ValueError(initializer)
        except (ValueError, TypeError) as err:
            raise ValueError(f"initializer must be a Keras initializer, its name or config, or "
                             f"a callable (shape, dtype) -> tensor, got {describe(initializer)}."
                             ) from err
        return _layer_initializer(resolved, seed)
    return initializer


def depth_norms(activation, initializer, depth, width, n=None, seed=0, *, input_dim=None,
                inputs=None, cotangents=None, dtype="float32"):
    r"""Forward and backward signal sizes, layer by layer, of a freshly initialised dense stack.

    Builds ``depth`` Keras layers ``z_l = h_{l-1} K_l`` (``keras.layers.Dense``, no bias) and
    ``h_l = φ(z_l)`` (``keras.layers.Activation``), pushes ``n`` inputs ``h_0`` through them
    without any training, and back-propagates a cotangent ``r`` (standard normal, shape
    ``(n, width_depth)``, unless ``cotangents`` is given) from the top: ``g_depth = r`` and
    ``g_{l-1} = (g_l ⊙ φ'(z_l)) K_lᵀ``, the gradient of ``L = Σ_i ⟨r_i, h_depth^{(i)}⟩`` with
    respect to ``h_{l-1}``. Keras stores a kernel as ``(fan_in, fan_out)``, so ``K_l = W_lᵀ``.

    Parameters
    ----------
    activation:
        Any Keras activation: a name (``"relu"``, ``"tanh"``, ``"linear"``), ``None`` (linear)
        or a callable ``x -> φ(x)`` written with ``keras.ops``.
    initializer:
        Any Keras kernel initializer: a name (``"he_normal"``), a config dict, an
        ``keras.initializers.Initializer`` instance (copied for every layer, with the seed
        ``1000 * seed + i`` for layer ``i = 0, 1, ...``, so that layers differ and runs
        repeat), or a callable ``(shape, dtype) -> tensor`` (called once per layer as it is).
    depth:
        Number of layers, ``>= 1``.
    width:
        The layers' output width: an int, or a sequence of ``depth`` ints (e.g. alternating
        widths, to separate fan-in from fan-out rules).
    n:
        Number of inputs (default 256; with ``inputs``, their number).
    seed:
        Seeds the inputs, the cotangents and the initializers (``>= 0``).
    input_dim:
        Width of ``h_0`` (default: the first layer's width, a square first layer).
    inputs:
        Optional inputs ``h_0`` of shape ``(n, input_dim)``; default i.i.d. standard normal.
    cotangents:
        Optional top cotangent ``r`` of shape ``(n, width_depth)``.
    dtype:
        ``"float32"`` or ``"float64"`` (on JAX, float64 needs ``JAX_ENABLE_X64``).

    Returns
    -------
    dict of float64 NumPy arrays:

    - ``"forward"``, shape ``(depth + 1,)``: the RMS of ``h_l`` over all inputs and units,
      ``l = 0..depth`` (``l = 0`` is the input);
    - ``"preactivation"``, shape ``(depth,)``: the RMS of ``z_l``, ``l = 1..depth``;
    - ``"backward"``, shape ``(depth + 1,)``: the RMS of ``g_l = ∂L/∂h_l``, ``l = 0..depth``;
    - ``"forward_norms"``, ``"backward_norms"``, shape ``(depth + 1, n)``: the Euclidean norm
      of ``h_l`` and of ``g_l`` for each input;
    - ``"kernel_grad"``, shape ``(depth,)``: the RMS of ``∂(L/n)/∂K_l``;
    - ``"widths"``, shape ``(depth + 1,)``: ``input_dim`` followed by the layer widths.

    Values that overflow the dtype come back as ``inf`` (or ``nan`` downstream), not as errors.
    The gradient uses the backend's autodiff: ``tf.GradientTape`` on TensorFlow,
    ``jax.vjp`` on JAX; other backends raise ``RuntimeError``.

    Used in: book/geometry/initialization.md, book/geometry/activation-functions.md
    """
    import numpy as np

    from kexue._checks import ArgumentTypeError, check_shape

    backend = keras.backend.backend()
    if backend not in DEPTH_NORM_BACKENDS:
        raise RuntimeError(f"depth_norms needs the tensorflow or jax backend (a gradient tape "
                           f"or a VJP), got KERAS_BACKEND={backend!r}.")
    if activation is not None and not isinstance(activation, str):
        check_callable(activation, "activation")
    try:
        act = keras.activations.get(activation)
    except (ValueError, TypeError) as err:
        raise ValueError(f"activation must be a Keras activation name, None or a callable, got "
                         f"{describe(activation)}.") from err
    if not (isinstance(initializer, (str, dict, keras.initializers.Initializer))
            or callable(initializer)):
        raise ArgumentTypeError(f"initializer must be a Keras initializer, its name or config, "
                                f"or a callable (shape, dtype) -> tensor, got "
                                f"{describe(initializer)}.")
    depth = check_int(depth, "depth")
    if _is_int(width):
        widths = [check_int(width, "width")] * depth
    elif isinstance(width, (list, tuple)) or (hasattr(width, "__len__")
                                              and not isinstance(width, (str, bytes, dict))):
        widths = [check_int(w, "width", what="a positive integer or a sequence of them")
                  for w in width]
        if len(widths) != depth:
            raise ValueError(f"width must be an int or a sequence of depth={depth} ints, got "
                             f"{len(widths)} widths.")
    else:
        raise ArgumentTypeError(f"width must be a positive integer or a sequence of depth "
                                f"positive integers, got {describe(width)}.")
    seed = check_int(seed, "seed", minimum=0)
    dtype = check_choice(dtype, "dtype", ("float32", "float64"))
    rng = np.random.default_rng(seed)
    if inputs is not None:
        x = as_array(inputs, "inputs", "float64")
        if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"inputs must have shape (n, input_dim) with n, input_dim >= 1, "
                             f"got shape {x.shape}.")
        check_finite(x, "inputs")
        if n is not None and check_int(n, "n") != x.shape[0]:
            raise ValueError(f"n must equal the number of inputs ({x.shape[0]}), got {n!r}.")
        if input_dim is not None and check_int(input_dim, "input_dim") != x.shape[1]:
            raise ValueError(f"input_dim must equal inputs.shape[1] ({x.shape[1]}), got "
                             f"{input_dim!r}.")
        n, input_dim = x.shape
    else:
        n = 256 if n is None else check_int(n, "n")
        input_dim = widths[0] if input_dim is None else check_int(input_dim, "input_dim")
        x = rng.standard_normal((n, input_dim))
    if cotangents is not None:
        r = as_array(cotangents, "cotangents", "float64")
        check_shape(r, "cotangents", (n, widths[-1]))
        check_finite(r, "cotangents")
    else:
        r = rng.standard_normal((n, widths[-1]))

    dense, kernels = [], []
    fan_in = input_dim
    for i, w in enumerate(widths):
        layer = keras.layers.Dense(w, use_bias=False, dtype=dtype,
                                   kernel_initializer=_layer_initializer(initializer,
                                                                         1000 * seed + i))
        layer.build((None, fan_in))
        dense.append(layer)
        kernels.append(ops.convert_to_tensor(layer.kernel.value))
        fan_in = w
    activation_layer = keras.layers.Activation(act, dtype=dtype)
    x_t, r_t = ops.convert_to_tensor(x, dtype), ops.convert_to_tensor(r, dtype)
    zeros = [ops.zeros((n, d), dtype) for d in [input_dim, *widths]]

    def forward(eps, ks):
        """h_l + eps_l for every l (eps = 0: its gradient is ∂L/∂h_l), and the z_l."""
        h = x_t + eps[0]
        hs, zs = [h], []
        for layer, k, e in zip(dense, ks, eps[1:]):
            z, _ = layer.stateless_call([k], [], h)
            h = activation_layer(z) + e
            zs.append(z)
            hs.append(h)
        return hs, zs

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(zeros)
            tape.watch(kernels)
            hs, zs = forward(zeros, kernels)
            loss = ops.sum(hs[-1] * r_t)
        g_eps, g_k = tape.gradient(loss, [zeros, kernels])
    else:
        import jax

        def top(eps, ks):
            hs, zs = forward(eps, ks)
            return hs[-1], (hs, zs)

        _, vjp, (hs, zs) = jax.vjp(top, zeros, kernels, has_aux=True)
        g_eps, g_k = vjp(r_t)

    def rms(t):
        a = np.asarray(ops.convert_to_numpy(t), dtype=np.float64)
        return float(np.sqrt(np.mean(np.square(a))))

    def norms(t):
        a = np.asarray(ops.convert_to_numpy(t), dtype=np.float64)
        return np.sqrt(np.sum(np.square(a), axis=1))

    return {
        "forward": np.array([rms(h) for h in hs]),
        "preactivation": np.array([rms(z) for z in zs]),
        "backward": np.array([rms(g) for g in g_eps]),
        "forward_norms": np.stack([norms(h) for h in hs]),
        "backward_norms": np.stack([norms(g) for g in g_eps]),
        "kernel_grad": np.array([rms(g) / n for g in g_k]),
        "widths": np.array([input_dim, *widths], dtype=np.float64),
    }


# =========================================================================================
# Gradients through time: Jacobian-product profiles of recurrent cells
# =========================================================================================

JACOBIAN_PROFILE_BACKENDS = ("tensorflow", "jax")
"""Backends on which :func:`jacobian_profile` can differentiate a cell step."""


def _recurrent_cell(layer):
    """The cell of a Keras recurrent layer (or ``layer`` itself if it is a cell)."""
    from kexue._checks import ArgumentTypeError

    cell = layer.cell if isinstance(layer, keras.layers.RNN) else layer
    if not isinstance(cell, keras.layers.Layer) or not hasattr(cell, "state_size"):
        raise ArgumentTypeError(
            f"layer must be a Keras recurrent layer (SimpleRNN, LSTM, GRU, RNN(cell)) or an RNN "
            f"cell with a state_size, got {describe(layer)}.")
    sizes = cell.state_size
    sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
    if not sizes or not all(_is_int(s) and s > 0 for s in sizes):
        raise ValueError(f"layer must have a flat state_size of positive integers, got "
                         f"{cell.state_size!r}.")
    return cell, [int(s) for s in sizes]


def _cell_step(cell, sizes):
    """``step(s, x) -> (output, s')``: one cell step on the concatenated state ``s``."""
    import numpy as np

    bounds = np.cumsum([0, *sizes])

    def step(s, x):
        parts = [s[:, bounds[i]:bounds[i + 1]] for i in range(len(sizes))]
        out, new = cell(x, parts)
        new = list(new) if isinstance(new, (list, tuple)) else [new]
        return out, ops.concatenate(new, axis=-1) if len(new) > 1 else new[0]

    return step


def _step_jacobian_fn(step):
    """``jac(s, x) -> (ds'/ds, ds'/dx)`` per row, shapes (n, S, S) and (n, S, D)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(autograph=False, reduce_retracing=True)
        def jac(s, x):
            with tf.GradientTape(persistent=True) as tape:
                tape.watch(s)
                tape.watch(x)
                new = step(s, x)[1]
            return tape.batch_jacobian(new, s), tape.batch_jacobian(new, x)

        return jac
    if backend == "jax":
        import jax

        def one(s, x):
            return step(s[None], x[None])[1][0]

        return jax.jit(jax.vmap(jax.jacrev(one, argnums=(0, 1))))
    raise NotImplementedError(
        f"jacobian_profile differentiates a cell step with tf.GradientTape or jax.jacrev; the "
        f"Keras backend is {backend!r}, expected one of {JACOBIAN_PROFILE_BACKENDS}.")


def _quiet_tensorflow():
    """A context that raises TensorFlow's Python logger to ERROR (no retracing warnings)."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def quiet():
        logger = logging.getLogger("tensorflow")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)

    return quiet()


def _step_jacobians(jac, seq, xs, group, batch, total, features, dtype, j_steps, k_steps):
    """Fill ``j_steps``/``k_steps`` with J_t (batch, S, S) and K_t (batch, S, D), t = 1..T,
    ``group`` time steps per call of ``jac`` (the last call padded to the traced shape)."""
    steps = xs.shape[0]
    for t0 in range(0, steps, group):
        n = min(group, steps - t0)
        prev = ops.reshape(seq[t0:t0 + n], (n * batch, total))
        xt = ops.reshape(xs[t0:t0 + n], (n * batch, features))
        if n < group:  # pad to the traced shape
            pad = (group - n) * batch
            prev = ops.concatenate([prev, ops.zeros((pad, total), dtype)], axis=0)
            xt = ops.concatenate([xt, ops.zeros((pad, features), dtype)], axis=0)
        j, k = jac(prev, xt)
        j_steps += list(ops.reshape(j[:n * batch], (n, batch, total, total)))
        k_steps += list(ops.reshape(k[:n * batch], (n, batch, total, features)))


def jacobian_profile(layer, inputs, *, wrt="state", direction="to_last", of="output",
                     initial_state=None, per_example=False):
    """Norms of the Jacobian products of a recurrent cell along one sequence.

    Runs ``layer``'s cell over ``inputs`` step by step, differentiates every step (the
    one-step Jacobians ``J_t = ds_t/ds_{t-1}`` and ``K_t = ds_t/dx_t``, where ``s_t`` is the
    concatenation of the cell's states: ``h`` for SimpleRNN and GRU, ``(h, c)`` for LSTM) and
    multiplies them out, as the chain rule through time does:

    - ``direction="to_last"``, ``wrt="state"``: ``||dh_T/ds_t||`` for ``t = 0..T``, the
      product ``J_T J_{T-1} ... J_{t+1}``, shape ``(T + 1,)``;
    - ``direction="to_last"``, ``wrt="input"``: ``||dh_T/dx_t||`` for ``t = 1..T`` (entry
      ``t - 1``; the lag is ``T - t``), ``J_T ... J_{t+1} K_t``, shape ``(T,)``;
    - ``direction="from_first"``, ``wrt="state"``: ``||dh_t/ds_0||`` for ``t = 0..T``;
    - ``direction="from_first"``, ``wrt="input"``: ``||dh_t/dx_1||`` for ``t = 1..T``.

    Norms are Frobenius norms, one per sequence, averaged over the batch (``per_example=False``)
    or returned per sequence (shape ``(batch, ...)``). ``of="output"`` takes the rows of the
    cell's output ``h`` (Keras's cells keep it as their first state); ``of="state"`` the rows
    of the whole state. The products are renormalised at every step and their scale kept in
    logarithms, so profiles spanning hundreds of orders of magnitude neither underflow nor
    overflow; a state that is not finite gives NaN.

    Args:
        layer: a ``keras.layers.SimpleRNN``, ``LSTM``, ``GRU`` or ``RNN(cell)`` layer, or a
            cell (any layer with ``state_size`` whose call is ``cell(x, states) -> (output,
            new_states)``). Built on first use; dropout is off (inference mode).
        inputs: array ``(batch, T, features)``, finite.
        wrt: ``"state"`` or ``"input"``.
        direction: ``"to_last"`` or ``"from_first"``.
        of: ``"output"`` or ``"state"``.
        initial_state: ``None`` (zeros) or a list with one array ``(batch, size)`` per state.
        per_example: return one profile per sequence instead of the batch mean.

    Returns:
        ``np.ndarray`` of float64, shape ``(T + 1,)`` (``wrt="state"``) or ``(T,)``
        (``wrt="input"``), with a leading ``batch`` axis when ``per_example``.

    Differentiates with ``tf.GradientTape.batch_jacobian`` on TensorFlow and ``jax.jacrev``
    on JAX; other backends raise ``NotImplementedError``.

    Used in: book/geometry/rnn-gradients.md
    """
    import numpy as np
    from scipy.special import logsumexp

    from kexue._checks import check_shape

    cell, sizes = _recurrent_cell(layer)
    wrt = check_choice(wrt, "wrt", ("state", "input"))
    direction = check_choice(direction, "direction", ("to_last", "from_first"))
    of = check_choice(of, "of", ("output", "state"))
    per_example = check_bool(per_example, "per_example")
    x = as_array(inputs, "inputs")
    check_shape(x, "inputs", ("batch", "T", "features"))
    check_finite(x, "inputs")
    batch, steps, features = x.shape
    if batch == 0 or steps == 0 or features == 0:
        raise ValueError(f"inputs must have a non-empty shape (batch, T, features), got shape "
                         f"{x.shape}.")
    if not cell.built:
        if cell is layer:
            cell.build((None, features))
        else:
            layer.build((None, steps, features))
    dtype = cell.compute_dtype
    total = sum(sizes)
    if initial_state is None:
        states = [np.zeros((batch, n), dtype) for n in sizes]
    else:
        if not isinstance(initial_state, (list, tuple)) or len(initial_state) != len(sizes):
            raise ValueError(f"initial_state must be None or a list of {len(sizes)} arrays of "
                             f"shapes {[(batch, n) for n in sizes]}, got "
                             f"{describe(initial_state)}.")
        states = []
        for i, (s, n) in enumerate(zip(initial_state, sizes)):
            s = as_array(s, f"initial_state[{i}]", dtype)
            check_shape(s, f"initial_state[{i}]", (batch, n))
            check_finite(s, f"initial_state[{i}]")
            states.append(s)
    step = _cell_step(cell, sizes)

    # forward pass: the concatenated states s_0 .. s_T, shape (T + 1, batch, S)
    s = ops.convert_to_tensor(np.concatenate(states, axis=-1), dtype=dtype)
    xs = ops.convert_to_tensor(np.transpose(x, (1, 0, 2)), dtype=dtype)  # time-major
    seq = [s]
    for t in range(steps):
        out, s = step(s, xs[t])
        if t == 0 and of == "output" and (tuple(out.shape) != (batch, sizes[0]) or not np.allclose(
                ops.convert_to_numpy(out), ops.convert_to_numpy(s[:, :sizes[0]]))):
            raise ValueError("of='output' needs a cell whose output is its first state (as in "
                             "Keras's SimpleRNN, LSTM and GRU cells), but this cell's output "
                             f"of shape {tuple(out.shape)} is not; use of='state'.")
        seq.append(s)
    seq = ops.stack(seq)

    # one-step Jacobians J_t, K_t for t = 1..T, several steps per call of the traced function
    jac = _step_jacobian_fn(step)
    group = max(1, 512 // batch)
    j_steps, k_steps = [], []
    with _quiet_tensorflow():  # one trace per call is expected: no retracing warnings
        _step_jacobians(jac, seq, xs, group, batch, total, features, dtype, j_steps, k_steps)

    rows = sizes[0] if of == "output" else total
    eye = ops.eye(rows, total, dtype=dtype)
    tiny = np.finfo(np.dtype(dtype)).tiny
    logs = []  # log-norms per recorded point, each (batch,)

    def record(m, log_scale):
        part = m if m.shape[1] == rows else m[:, :rows]
        norm = ops.convert_to_numpy(ops.sqrt(ops.sum(ops.square(part), axis=(1, 2))))
        with np.errstate(divide="ignore"):
            logs.append(log_scale + np.log(norm.astype(np.float64)))

    def renormalise(m, log_scale):
        norm = ops.sqrt(ops.sum(ops.square(m), axis=(1, 2), keepdims=True))
        norm = ops.maximum(norm, tiny)
        with np.errstate(divide="ignore"):
            log_scale = log_scale + np.log(ops.convert_to_numpy(norm).astype(np.float64)[:, 0, 0])
        return m / norm, log_scale

    log_scale = np.zeros(batch)
    if direction == "to_last":
        m = ops.tile(eye[None], (batch, 1, 1))  # dh_T/ds_T, rows of h (or of s)
        for t in range(steps, 0, -1):            # m = dh_T/ds_t
            if wrt == "state":
                record(m, log_scale)
            else:
                record(ops.matmul(m, k_steps[t - 1]), log_scale)
            m, log_scale = renormalise(ops.matmul(m, j_steps[t - 1]), log_scale)
        if wrt == "state":
            record(m, log_scale)
        logs = logs[::-1]
    else:
        if wrt == "state":
            m, first = ops.tile(ops.eye(total, dtype=dtype)[None], (batch, 1, 1)), 1
        else:
            m, first = k_steps[0], 2
        record(m, log_scale)
        for t in range(first, steps + 1):  # m = ds_t/ds_0 or ds_t/dx_1
            m, log_scale = renormalise(ops.matmul(j_steps[t - 1], m), log_scale)
            record(m, log_scale)
    logs = np.stack(logs, axis=1)  # (batch, points)
    if not np.isfinite(ops.convert_to_numpy(seq)).all():
        logs[:] = np.nan
    with np.errstate(over="ignore"):
        if per_example:
            return np.exp(logs)
        return np.exp(logsumexp(logs, axis=0) - np.log(batch))


# =========================================================================================
# Curvature of the loss: Hessian-vector products and the top Hessian eigenvalue
# =========================================================================================
#
# Used in: book/geometry/batch-normalization.md. The gradient of the training loss is
# L-Lipschitz near the current weights with L the largest |eigenvalue| of the Hessian there;
# :func:`top_hessian_eigenvalue` finds it by power iteration on Hessian-vector products
# (:func:`hessian_vector_product`), without ever forming the Hessian.

CURVATURE_BACKENDS = ("tensorflow", "jax")
"""The Keras backends on which :func:`hessian_vector_product` can differentiate twice."""


def _curvature_args(model, loss_fn, x, y, training):
    check_instance(model, "model", keras.Model, "a built keras.Model")
    if not model.built or not model.trainable_variables:
        raise ValueError(f"model must be a built keras.Model with trainable variables, got "
                         f"{model.name!r} with {len(model.trainable_variables)} of them.")
    check_callable(loss_fn, "loss_fn")
    check_bool(training, "training")
    x = as_array(x, "x")
    y = as_array(y, "y")
    check_finite(x, "x")
    check_finite(y, "y")
    if x.ndim < 1 or y.ndim < 1 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"x and y must hold the same positive number of examples along axis 0, "
                         f"got x of shape {x.shape} and y of shape {y.shape}.")
    backend = keras.backend.backend()
    if backend not in CURVATURE_BACKENDS:
        raise NotImplementedError(
            f"Hessian-vector products need the TensorFlow or JAX backend (they differentiate "
            f"twice with tf.GradientTape or jax.jvp); the Keras backend is {backend!r}.")
    return x, y


_HVP_GRAPHS = None  # a WeakKeyDictionary once used: model -> {(loss_fn, training): H v graph}


def _hvp_graph(model, loss_fn, training):
    """The compiled ``H v`` of ``model`` and ``loss_fn``, traced once and cached per model."""
    import weakref

    global _HVP_GRAPHS
    if _HVP_GRAPHS is None:
        _HVP_GRAPHS = weakref.WeakKeyDictionary()
    graphs = _HVP_GRAPHS.setdefault(model, {})
    key = (loss_fn, training)
    if key in graphs:
        return graphs[key]

    model_ref = weakref.ref(model)  # the cache must not keep the model alive

    def loss_of(params, non_trainable, x, y):
        # stateless: BatchNormalization's moving statistics are not touched by the probe
        pred, _ = model_ref().stateless_call(params, non_trainable, x, training=training)
        return loss_fn(y, pred)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True)
        def hvp(params, vectors, non_trainable, x, y):
            with tf.GradientTape() as outer:
                outer.watch(params)
                with tf.GradientTape() as inner:
                    inner.watch(params)
                    loss = loss_of(params, non_trainable, x, y)
                grads = inner.gradient(loss, params,
                                       unconnected_gradients=tf.UnconnectedGradients.ZERO)
                dot = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vectors)])
            return outer.gradient(dot, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    else:
        import jax

        @jax.jit
        def hvp(params, vectors, non_trainable, x, y):
            grad = jax.grad(loss_of)
            return jax.jvp(lambda p: grad(p, non_trainable, x, y), (params,), (vectors,))[1]

    graphs[key] = hvp
    return hvp


def _hvp_function(model, loss_fn, x, y, training):
    """``hvp(vectors) -> list of arrays``: H v at the model's current weights (no state change)."""
    import numpy as np

    graph = _hvp_graph(model, loss_fn, training)
    params = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y)

    def hvp(vectors):
        vectors = [ops.convert_to_tensor(v, dtype=p.dtype) for v, p in zip(vectors, params)]
        return [np.asarray(ops.convert_to_numpy(h)) for h in graph(params, vectors,
                                                                   non_trainable, x, y)]

    return hvp


def _check_vectors(vectors, model):
    variables = model.trainable_variables
    if isinstance(vectors, (str, bytes)) or not hasattr(vectors, "__len__"):
        raise ValueError(f"vectors must be a list of arrays, one per trainable variable, got "
                         f"{describe(vectors)}.")
    if len(vectors) != len(variables):
        raise ValueError(f"vectors must hold one array per trainable variable "
                         f"({len(variables)}), got {len(vectors)}.")
    out = []
    for i, (v, var) in enumerate(zip(vectors, variables)):
        arr = as_array(v, f"vectors[{i}]", "float64")
        if arr.shape != tuple(var.shape):
            raise ValueError(f"vectors[{i}] must have shape {tuple(var.shape)} (variable "
                             f"{var.path!r}), got shape {arr.shape}.")
        check_finite(arr, f"vectors[{i}]")
        out.append(arr)
    return out


def hessian_vector_product(model, loss_fn, x, y, vectors, training=True):
    """Hessian of the loss times a vector, ``H v``, at the model's current weights.

    The loss is ``loss_fn(y, model(x, training=training))`` (a scalar, e.g. the mean
    cross-entropy of the batch), a function of ``model.trainable_variables``; ``H`` is its
    Hessian with respect to all of them, and ``v`` is given as one array per variable. The
    product is the derivative of ``<grad, v>``, computed without forming ``H``: a second
    ``tf.GradientTape`` around the first on TensorFlow, ``jax.jvp`` of ``jax.grad`` on JAX
    (other backends raise ``NotImplementedError``). The model is called statelessly, so
    ``BatchNormalization`` in training mode uses the batch's statistics and its moving
    statistics are left as they were.

    Args:
        model: a built ``keras.Model``.
        loss_fn: ``loss_fn(y_true, y_pred) -> scalar`` (a Keras loss).
        x, y: the batch, arrays with the same length ``N >= 1`` along axis 0.
        vectors: one array per trainable variable, of the variable's shape.
        training: whether the model runs in training mode (batch statistics in BN).

    Returns:
        A list of NumPy arrays, one per trainable variable, with the variables' shapes.

    Used in: book/geometry/batch-normalization.md
    """
    x, y = _curvature_args(model, loss_fn, x, y, training)
    vectors = _check_vectors(vectors, model)
    return _hvp_function(model, loss_fn, x, y, training)(vectors)


def top_hessian_eigenvalue(model, loss_fn, x, y, iters=20, tol=1e-4, seed=0, training=True,
                           return_vector=False):
    """The eigenvalue of largest magnitude of the loss Hessian, by power iteration.

    Starting from a random unit vector ``v_0`` (NumPy generator seeded with ``seed``, one
    block per trainable variable), repeat ``v_{k+1} = H v_k / ||H v_k||`` with the products of
    :func:`hessian_vector_product`, and return the Rayleigh quotient ``<v_k, H v_k>`` once two
    successive quotients differ by at most ``tol`` relatively (or after ``iters`` products).
    Its absolute value is the spectral norm of ``H``: the Lipschitz constant, near the current
    weights, of the gradient with respect to the weights. Power iteration converges at the
    rate ``|lambda_2 / lambda_1|`` per step; with two top eigenvalues of nearly equal size the
    quotient is still within the tolerance of the top one, the vector is not.

    Args:
        model, loss_fn, x, y, training: as in :func:`hessian_vector_product`.
        iters: the most Hessian-vector products, an integer >= 1.
        tol: relative change of the quotient at which to stop, a real >= 0 (0: run ``iters``).
        seed: seed of the random start, an integer >= 0.
        return_vector: also return the last unit vector (a list of arrays).

    Returns:
        ``lambda`` (a float), or ``(lambda, vectors)`` with ``return_vector=True``.

    Used in: book/geometry/batch-normalization.md
    """
    import numpy as np

    x, y = _curvature_args(model, loss_fn, x, y, training)
    iters = check_int(iters, "iters")
    tol = check_real(tol, "tol", 0.0)
    seed = check_int(seed, "seed", 0)
    check_bool(return_vector, "return_vector")
    hvp = _hvp_function(model, loss_fn, x, y, training)
    rng = np.random.default_rng(seed)
    v = [rng.standard_normal(tuple(var.shape)) for var in model.trainable_variables]
    norm = np.sqrt(sum(float(np.sum(b * b)) for b in v))
    v = [b / norm for b in v]
    quotient = None
    for _ in range(iters):
        hv = [np.asarray(h, dtype="float64") for h in hvp(v)]
        new = sum(float(np.sum(a * b)) for a, b in zip(v, hv))
        norm = np.sqrt(sum(float(np.sum(b * b)) for b in hv))
        if not np.isfinite(norm):
            raise FloatingPointError(f"the Hessian-vector product is not finite ({norm!r}): "
                                     "the loss or its derivatives overflow at these weights.")
        done = quotient is not None and abs(new - quotient) <= tol * abs(new)
        quotient = new
        if norm == 0.0 or done:
            break
        v = [b / norm for b in hv]
    return (quotient, v) if return_vector else quotient


# --- adversarial training in embedding space
#
# Text is discrete, so the perturbation of adversarial training goes on the embeddings: either on
# the table E (V, d) of an Embedding layer, shared by every occurrence of a token in the batch
# (the "matrix" mode), or on the layer's output (batch, ..., d), one perturbation per example
# (the "output" mode). FGM takes one normalised gradient-ascent step on the loss; the gradient
# penalty is its first-order equivalent. Both are a keras.Model wrapper whose train step
# differentiates through the wrapped model; the output mode reaches the embedding output by
# patching the layer's ``call`` for the duration of one forward pass.

ADVERSARIAL_METHODS = ("fgm", "gradient_penalty")
"""The training methods of :class:`AdversarialModel`."""

PERTURBATION_NORMS = ("l2", "sign", "none")
"""How :func:`fgm_perturbation` scales the gradient: to l2 norm epsilon, epsilon * sign, epsilon * g."""

EMBEDDING_MODES = ("matrix", "output")
"""Where the perturbation goes: the embedding table (shared) or the layer's output (per example)."""

ADVERSARIAL_BACKENDS = ("tensorflow", "jax")
"""The Keras backends on which the adversarial tools can differentiate (twice for the penalty)."""


def fgm_perturbation(grad, epsilon, norm="l2", per_example=False):
    """The Fast Gradient Method step ``delta`` for a gradient ``g`` (same shape as ``g``).

    - ``norm="l2"``: ``delta = epsilon * g / ||g||_2`` (FGM), so ``||delta||_2 = epsilon``;
    - ``norm="sign"``: ``delta = epsilon * sign(g)`` (FGSM, the l-infinity ball);
    - ``norm="none"``: ``delta = epsilon * g`` (the unnormalised step of the penalty
      equivalence).

    With ``per_example=True`` the l2 norm is taken over all axes but the first, so every example
    ``delta[i]`` has norm ``epsilon``; otherwise over the whole tensor (the article's choice for
    the embedding table). A zero gradient gives a zero step.

    Args:
        grad: the gradient, a float array or tensor, e.g. ``(V, d)`` or ``(batch, T, d)``.
        epsilon: the step size, a positive number.
        norm: one of :data:`PERTURBATION_NORMS`.
        per_example: normalise each slice ``grad[i]`` separately (``grad`` needs >= 1 axis).

    Returns:
        ``delta``, a tensor of ``grad``'s shape and dtype.

    Used in: book/sequence/adversarial-training.md
    """
    from kexue._checks import as_float_tensor

    g = as_float_tensor(grad, "grad", min_rank=1 if per_example is True else 0)
    epsilon = check_positive(epsilon, "epsilon")
    check_choice(norm, "norm", PERTURBATION_NORMS)
    per_example = check_bool(per_example, "per_example")
    check_finite(g, "grad")
    if norm == "sign":
        return epsilon * ops.sign(g)
    if norm == "none":
        return epsilon * g
    axes = tuple(range(1, len(g.shape))) if per_example else None
    n = ops.sqrt(ops.sum(ops.square(g), axis=axes, keepdims=True))
    safe = ops.where(n > 0, n, ops.ones_like(n))
    return ops.where(n > 0, epsilon * g / safe, ops.zeros_like(g))


def _find_embedding(model, embedding):
    """The Embedding layer ``embedding`` (a layer or a name) inside the built ``model``."""
    check_instance(model, "model", keras.Model, "a built keras.Model")
    if not model.built:
        raise ValueError(f"model must be a built keras.Model, got the unbuilt model "
                         f"{model.name!r}; call it on data or build it first.")
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    if isinstance(embedding, str):
        found = [layer for layer in layers if layer.name == embedding]
        if not found:
            names = [layer.name for layer in layers if isinstance(layer, keras.layers.Embedding)]
            raise ValueError(f"embedding must name an Embedding layer of model {model.name!r}, "
                             f"got {embedding!r}; its Embedding layers are {names}.")
        embedding = found[0]
    check_instance(embedding, "embedding", keras.layers.Embedding,
                   "a keras.layers.Embedding (or the name of one) inside model")
    if not any(layer is embedding for layer in layers):
        raise ValueError(f"embedding must be a layer of model {model.name!r}, got the layer "
                         f"{embedding.name!r}, which is not inside it.")
    if not embedding.built:
        raise ValueError(f"embedding must be built, got the unbuilt layer {embedding.name!r}.")
    return embedding


class _OutputHook:
    """While active, every call of ``layer`` returns ``fn(k, output)`` for its k-th call."""

    def __init__(self, layer, fn):
        self.layer, self.fn, self.count = layer, fn, 0

    def __enter__(self):
        original = type(self.layer).call.__get__(self.layer)

        def call(*args, **kwargs):
            out = original(*args, **kwargs)
            k = self.count
            self.count += 1
            return self.fn(k, out)

        object.__setattr__(self.layer, "call", call)
        return self

    def __exit__(self, *exc):
        self.layer.__dict__.pop("call", None)
        return False


def _record_output_shapes(layer, forward):
    """Run ``forward()`` and return the shapes of ``layer``'s outputs, one per call."""
    shapes = []

    def record(k, out):
        shapes.append(tuple(out.shape))
        return out

    with _OutputHook(layer, record):
        result = forward()
    return shapes, result


def _add_deltas(layer, deltas):
    """A hook that adds ``deltas[k]`` to the k-th output of ``layer``."""
    def add(k, out):
        if k >= len(deltas):
            raise RuntimeError(f"the embedding layer {layer.name!r} was called more often in "
                               f"this pass ({k + 1}) than in the pass that sized its "
                               f"perturbations ({len(deltas)}).")
        return out + ops.cast(deltas[k], out.dtype)

    return _OutputHook(layer, add)


def _sq_norm(tensors, per_example=False):
    """Sum of squares of a list of tensors: a scalar, or ``(batch,)`` with ``per_example``."""
    total = 0.0
    for t in tensors:
        if per_example:
            total = total + ops.sum(ops.reshape(ops.square(t), (ops.shape(t)[0], -1)), axis=1)
        else:
            total = total + ops.sum(ops.square(t))
    return total


def _perturb_list(grads, epsilon, norm, per_example):
    """FGM steps for a list of gradients normalised jointly (one l2 norm over all of them,
    per example with ``per_example``): the perturbation of every call of one layer."""
    if norm != "l2":
        return [fgm_perturbation(g, epsilon, norm) for g in grads]
    n = ops.sqrt(_sq_norm(grads, per_example))
    scale = ops.where(n > 0, epsilon / ops.where(n > 0, n, ops.ones_like(n)), ops.zeros_like(n))
    out = []
    for g in grads:
        s = ops.reshape(scale, (-1,) + (1,) * (len(g.shape) - 1)) if per_example else scale
        out.append(g * ops.cast(s, g.dtype))
    return out


def _penalty(grads, epsilon, norm, per_example):
    """The gradient penalty that FGM with step ``norm`` equals to first order.

    ``norm="none"``: ``epsilon / 2 * ||g||^2``; ``"l2"``: ``epsilon * ||g||`` (with
    ``per_example``: ``epsilon * sum_i ||g_i||``); ``"sign"``: ``epsilon * ||g||_1``.
    """
    if norm == "none":
        return 0.5 * epsilon * _sq_norm(grads)
    if norm == "sign":
        return epsilon * sum(ops.sum(ops.abs(g)) for g in grads)
    sq = _sq_norm(grads, per_example)
    # sqrt has an infinite derivative at 0: guard it (a zero gradient has zero penalty)
    safe = ops.where(sq > 0, sq, ops.ones_like(sq))
    return epsilon * ops.sum(ops.where(sq > 0, ops.sqrt(safe), ops.zeros_like(sq)))


@keras.saving.register_keras_serializable(package="kexue")
class AdversarialModel(keras.Model):
    """Adversarial training in embedding space (FGM) or its gradient penalty, for any model.

    Wraps a built Keras model ``model`` and one ``keras.layers.Embedding`` inside it. Compile and
    fit the wrapper as the model itself (any loss, metrics, sample weights, several inputs or
    outputs); ``predict``, ``evaluate`` and ``call`` use the clean model, and its weights are the
    wrapped model's (training the wrapper trains ``model``). Each training step:

    ``method="fgm"``: (1) the gradient ``g`` of the loss with respect to the embedding table
    (``mode="matrix"``, ``(V, d)``) or to the layer's output (``mode="output"``,
    ``(batch, ..., d)``, all calls of the layer together); (2) ``delta =``
    :func:`fgm_perturbation` of ``g`` (over the whole table, or per example); (3) the loss at
    the perturbed embeddings, its gradient with respect to every weight with ``delta`` held
    constant, applied by the optimizer to the clean weights (``delta`` removed first). Two
    forward and two backward passes: about twice the time of a plain step.

    ``method="gradient_penalty"``: one step on ``L + penalty(g)``, the first-order equivalent
    of FGM with the same ``norm``: ``epsilon / 2 * ||g||^2`` for ``norm="none"`` (the
    article's penalty), ``epsilon * ||g||`` for ``"l2"`` (per example in output mode), with
    ``g`` as in (1); its gradient needs second derivatives (a double backward pass).

    Defaults are the article's: FGM on the table with the l2 step; the penalty
    ``epsilon / 2 * ||g||^2`` with ``g`` taken at the layer's *output* (the article sums the
    squares of the per-occurrence rows of the table's sparse gradient, which is the output
    gradient).

    The reported ``loss`` is the objective that was minimised (the perturbed loss for FGM, loss
    plus penalty for the penalty), and the compiled metrics are those of the perturbed pass
    (FGM) or the clean pass (penalty). Layers with state (BatchNormalization) update it in both
    FGM passes; dropout draws a new mask in each. The gradient ``g`` is taken of the unscaled
    loss (no mixed-precision loss scaling in step 1).

    Args:
        model: a built ``keras.Model``.
        embedding: the ``keras.layers.Embedding`` inside ``model`` to perturb, or its name.
        method: one of :data:`ADVERSARIAL_METHODS`.
        epsilon: size of the perturbation (FGM) or weight of the penalty, a positive number.
        mode: one of :data:`EMBEDDING_MODES`; ``None`` picks the article's (``"matrix"`` for FGM,
            ``"output"`` for the penalty).
        norm: one of :data:`PERTURBATION_NORMS`; ``None`` picks the article's (``"l2"`` for FGM,
            ``"none"`` for the penalty).

    Backends: TensorFlow and JAX (other backends raise ``NotImplementedError``).

    Used in: book/sequence/adversarial-training.md, book/sequence/exposure-bias.md
    """

    def __init__(self, model, embedding, method="fgm", epsilon=1.0, mode=None, norm=None,
                 **kwargs):
        check_backend("AdversarialModel", ADVERSARIAL_BACKENDS,
                      "it differentiates through the model with tf.GradientTape or jax.grad")
        embedding = _find_embedding(model, embedding)
        check_choice(method, "method", ADVERSARIAL_METHODS)
        epsilon = check_positive(epsilon, "epsilon")
        if mode is None:
            mode = "matrix" if method == "fgm" else "output"
        check_choice(mode, "mode", EMBEDDING_MODES)
        if norm is None:
            norm = "l2" if method == "fgm" else "none"
        check_choice(norm, "norm", PERTURBATION_NORMS)
        super().__init__(**kwargs)
        self.model = model
        self.method, self.epsilon, self.mode, self.norm = method, epsilon, mode, norm
        self._embedding = embedding
        self.built = True

    @property
    def embedding(self):
        """The perturbed ``keras.layers.Embedding``."""
        return self._embedding

    def call(self, inputs, training=None):
        return self.model(inputs, training=training)

    def get_config(self):
        return {"model": keras.saving.serialize_keras_object(self.model),
                "embedding": self._embedding.name, "method": self.method,
                "epsilon": self.epsilon, "mode": self.mode, "norm": self.norm,
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        model = keras.saving.deserialize_keras_object(config.pop("model"),
                                                      custom_objects=custom_objects)
        return cls(model, **config)

    # ------------------------------------------------------------------ TensorFlow
    def _tf_loss(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=True)
        return loss, y_pred

    def _tf_first_pass(self, x, y, sample_weight):
        """Loss, prediction, the tape and the sources of the embedding gradient."""
        import tensorflow as tf

        if self.mode == "matrix":
            with tf.GradientTape() as inner:
                loss, y_pred = self._tf_loss(x, y, sample_weight)
            return inner, loss, y_pred, [self._embedding.embeddings]
        zeros = []

        def watch(k, out):
            z = tf.zeros_like(out)
            inner.watch(z)
            zeros.append(z)
            return out + z

        with tf.GradientTape() as inner, _OutputHook(self._embedding, watch):
            loss, y_pred = self._tf_loss(x, y, sample_weight)
        return inner, loss, y_pred, zeros

    def _tf_train_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        variables = self.trainable_variables
        per_example = self.mode == "output"
        if self.method == "fgm":
            inner, clean, _, sources = self._tf_first_pass(x, y, sample_weight)
            grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(s)
                     for g, s in zip(inner.gradient(clean, sources), sources)]
            deltas = [tf.stop_gradient(d) for d in
                      _perturb_list(grads, self.epsilon, self.norm, per_example)]
            table = self._embedding.embeddings
            if self.mode == "matrix":
                table.assign_add(deltas[0])
                with tf.GradientTape() as tape:
                    loss, y_pred = self._tf_loss(x, y, sample_weight)
                    scaled = self.optimizer.scale_loss(loss)
                gradients = tape.gradient(scaled, variables)
                table.assign_sub(deltas[0])
            else:
                with tf.GradientTape() as tape, _add_deltas(self._embedding, deltas):
                    loss, y_pred = self._tf_loss(x, y, sample_weight)
                    scaled = self.optimizer.scale_loss(loss)
                gradients = tape.gradient(scaled, variables)
        else:
            with tf.GradientTape() as tape:
                inner, clean, y_pred, sources = self._tf_first_pass(x, y, sample_weight)
                grads = [tf.convert_to_tensor(g) if g is not None else tf.zeros_like(s)
                         for g, s in zip(inner.gradient(clean, sources), sources)]
                pen = _penalty(grads, self.epsilon, self.norm, per_example)
                loss = clean + ops.cast(pen, clean.dtype)
                scaled = self.optimizer.scale_loss(loss)
            gradients = tape.gradient(scaled, variables)
        self._loss_tracker.update_state(
            loss, sample_weight=tf.shape(next(i for i in keras.tree.flatten(x) if i is not None))[0])
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    # ------------------------------------------------------------------ JAX
    def _jax_loss_fn(self):
        """``f(tv, ntv, mv, x, y, sw, ov, deltas) -> (loss, aux)``, output deltas added."""
        def f(tv, ntv, mv, x, y, sw, ov, deltas):
            if deltas is None:
                return self.compute_loss_and_updates(tv, ntv, mv, x, y, sw, training=True,
                                                     optimizer_variables=ov)
            with _add_deltas(self._embedding, deltas):
                return self.compute_loss_and_updates(tv, ntv, mv, x, y, sw, training=True,
                                                     optimizer_variables=ov)
        return f

    def _jax_output_zeros(self, tv, ntv, x):
        import jax

        def forward(tv, ntv, x):
            return self.stateless_call(tv, ntv, x, training=True)

        shapes = []

        def record(k, out):
            shapes.append((tuple(out.shape), out.dtype))
            return out

        with _OutputHook(self._embedding, record):
            jax.eval_shape(forward, tv, ntv, x)
        return [ops.zeros(s, dtype=d) for s, d in shapes]

    def _jax_train_step(self, state, data):
        import jax

        tv, ntv, ov, mv = state
        x, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        f = self._jax_loss_fn()
        index = next(i for i, v in enumerate(self.trainable_variables)
                     if v is self._embedding.embeddings)
        per_example = self.mode == "output"

        def with_table(tv, table):
            return list(tv[:index]) + [table] + list(tv[index + 1:])

        def clean_and_grads(tv, ntv, zeros):
            """Loss, aux and the embedding gradient, differentiably in ``tv``."""
            if self.mode == "matrix":
                (loss, aux), g = jax.value_and_grad(
                    lambda table: f(with_table(tv, table), ntv, mv, x, y, sw, ov, None),
                    has_aux=True)(tv[index])
                return loss, aux, [g]
            (loss, aux), g = jax.value_and_grad(
                lambda d: f(tv, ntv, mv, x, y, sw, ov, d), has_aux=True)(zeros)
            return loss, aux, list(g)

        zeros = self._jax_output_zeros(tv, ntv, x) if self.mode == "output" else None
        if self.method == "fgm":
            _, aux, grads = clean_and_grads(tv, ntv, zeros)
            ntv1 = aux[2]
            deltas = [jax.lax.stop_gradient(d) for d in
                      _perturb_list(grads, self.epsilon, self.norm, per_example)]
            if self.mode == "matrix":
                def adv(tv):
                    return f(with_table(tv, tv[index] + deltas[0]), ntv1, mv, x, y, sw, ov, None)
            else:
                def adv(tv):
                    return f(tv, ntv1, mv, x, y, sw, ov, deltas)
            (_, aux), gradients = jax.value_and_grad(adv, has_aux=True)(tv)
            unscaled, y_pred, ntv, mv_out = aux
        else:
            def total(tv):
                _, aux, grads = clean_and_grads(tv, ntv, zeros)
                pen = _penalty(grads, self.epsilon, self.norm, per_example)
                unscaled = aux[0] + ops.cast(pen, aux[0].dtype)
                return unscaled, (unscaled, aux)

            (_, (unscaled, aux)), gradients = jax.value_and_grad(total, has_aux=True)(tv)
            _, y_pred, ntv, mv_out = aux
        tv, ov = self.optimizer.stateless_apply(ov, gradients, tv)
        logs, mv = self._update_metrics_variables(mv, unscaled, x, y, y_pred, sw)
        return logs, (tv, ntv, ov, mv)

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)



def _per_example_loss(loss):
    """``fn(y_true, y_pred) -> per-example losses`` from a Keras loss, its name or a callable."""
    if isinstance(loss, str):
        try:
            loss = keras.losses.get(loss)
        except ValueError as err:
            raise ValueError(f"loss must be a Keras loss, its name or a callable, got "
                             f"{loss!r}.") from err
    if isinstance(loss, keras.losses.Loss):
        return loss.call
    return check_callable(loss, "loss")


def _value_and_grad(fn, args):
    """``fn(args)`` (a scalar) and its gradient with respect to the list of tensors ``args``."""
    if keras.backend.backend() == "jax":
        import jax

        return jax.value_and_grad(fn)(args)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(args)
        value = fn(args)
    return value, tape.gradient(value, args)


class EmbeddingAttack:
    """Predictions of a model on clean and on attacked embeddings, per example.

    Attributes:
        clean: the model's outputs on the clean inputs, ``(N, ...)`` NumPy.
        attacked: its outputs with every example's embedding output moved by the FGM step,
            ``(N, ...)``.
        grad_norm: ``(N,)``, the l2 norm of the gradient of the example's own loss with respect
            to its embedding output (all calls of the layer together).

    Used in: book/sequence/adversarial-training.md
    """

    def __init__(self, clean, attacked, grad_norm):
        self.clean, self.attacked, self.grad_norm = clean, attacked, grad_norm

    def __repr__(self):
        return (f"EmbeddingAttack(N={len(self.grad_norm)}, mean grad_norm="
                f"{float(self.grad_norm.mean()):.4g})")


def embedding_attack(model, embedding, x, y, loss, epsilon, norm="l2", batch_size=256):
    """The one-step FGM attack in embedding space, per example, for evaluation.

    For each example ``i`` with embedding output ``h_i`` (every call of the layer together) and
    loss ``l_i = loss(y_i, model(x_i))``, in inference mode: ``g_i = d l_i / d h_i``,
    ``delta_i =`` :func:`fgm_perturbation` ``(g_i, epsilon, norm)`` (``||delta_i|| = epsilon``
    for the l2 step), and the model's output at ``h_i + delta_i``. The attack moves each
    example in the direction that raises its loss fastest; the accuracy on the attacked outputs
    measures how flat the loss is around the data. The model's weights are not changed.

    Args:
        model: a built ``keras.Model`` (e.g. the ``model`` of an :class:`AdversarialModel`).
        embedding: the ``keras.layers.Embedding`` inside it, or its name.
        x: the inputs, an array (or a list of arrays) with ``N`` examples along axis 0.
        y: the targets, ``(N, ...)``.
        loss: a Keras loss (its ``call`` gives per-example values), its name, or a callable
            ``(y_true, y_pred) -> (batch,)``.
        epsilon: the attack's size, a positive number.
        norm: one of :data:`PERTURBATION_NORMS`.
        batch_size: examples per forward pass, an integer >= 1.

    Returns:
        :class:`EmbeddingAttack` with ``clean``, ``attacked`` and ``grad_norm``.

    Used in: book/sequence/adversarial-training.md
    """
    import numpy as np

    check_backend("embedding_attack", ADVERSARIAL_BACKENDS,
                  "it differentiates through the model with tf.GradientTape or jax.grad")
    layer = _find_embedding(model, embedding)
    fn = _per_example_loss(loss)
    epsilon = check_positive(epsilon, "epsilon")
    check_choice(norm, "norm", PERTURBATION_NORMS)
    batch_size = check_int(batch_size, "batch_size")
    xs = [as_array(a, "x") for a in (x if isinstance(x, (list, tuple)) else [x])]
    y = as_array(y, "y")
    n = len(y)
    if n == 0 or any(a.ndim == 0 or len(a) != n for a in xs):
        raise ValueError(f"x and y must hold the same positive number of examples along axis "
                         f"0, got x of shape(s) {[a.shape for a in xs]} and y of shape "
                         f"{y.shape}.")
    clean, attacked, norms = [], [], []
    for start in range(0, n, batch_size):
        xb = [a[start:start + batch_size] for a in xs]
        xb = xb if isinstance(x, (list, tuple)) else xb[0]
        yb = ops.convert_to_tensor(y[start:start + batch_size])
        shapes, out = _record_output_shapes(layer, lambda xb=xb: model(xb, training=False))
        zeros = [ops.zeros(s, dtype=layer.compute_dtype) for s in shapes]

        def total(deltas, xb=xb, yb=yb):
            with _add_deltas(layer, deltas):
                return ops.sum(fn(yb, model(xb, training=False)))

        _, grads = _value_and_grad(total, zeros)
        grads = list(grads)
        deltas = _perturb_list(grads, epsilon, norm, per_example=True) if norm == "l2" else [
            fgm_perturbation(g, epsilon, norm) for g in grads]
        with _add_deltas(layer, deltas):
            out_adv = model(xb, training=False)
        clean.append(ops.convert_to_numpy(out))
        attacked.append(ops.convert_to_numpy(out_adv))
        norms.append(ops.convert_to_numpy(ops.sqrt(_sq_norm(grads, per_example=True))))
    return EmbeddingAttack(np.concatenate(clean), np.concatenate(attacked), np.concatenate(norms))


# ---- batch-norm recalibration


def recalibrate_batchnorm(model, batches, call=None):
    """Set every batch-norm layer's moving statistics to the average of its batch statistics.

    For each element ``b`` of ``batches``, runs ``call(b)`` (default ``model(b,
    training=True)``) eagerly with every ``BatchNormalization`` layer of ``model`` in training
    mode and its momentum set to 0, so that after the call each layer that ran holds the mean
    and variance of its input over that batch; these are averaged over the batches, and the
    averages become the layers' ``moving_mean`` and ``moving_variance``. Layers that ``call``
    never reaches keep their statistics; momenta are restored even if ``call`` fails.

    NVAE does this before sampling: the statistics accumulated in training come from
    activations driven by the encoder's posterior samples, those at generation time from prior
    samples (at a temperature), and they differ.

    Args:
        model: a Keras layer or model holding ``BatchNormalization`` layers (nested ones
            included).
        batches: an iterable of at least one element passed to ``call``.
        call: a callable ``call(b)`` that runs the part of ``model`` to recalibrate in
            training mode; default ``lambda b: model(b, training=True)``.

    Returns:
        ``{layer path: number of batches it saw}`` for the layers recalibrated (the path of
        the layer's variables, e.g. ``"hierarchical_vae/dec_1/bn1"``).

    Used in: book/generative/nvae.md
    """
    import numpy as np

    from kexue._checks import ArgumentTypeError

    check_instance(model, "model", keras.layers.Layer, "a Keras layer or model")
    if call is None:
        def call(b):
            return model(b, training=True)
    check_callable(call, "call")
    layers = [layer for layer in model._flatten_layers(include_self=True)
              if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        raise ValueError(f"model must hold at least one BatchNormalization layer, got "
                         f"{describe(model)} with none.")
    if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise ArgumentTypeError(f"batches must be an iterable of batches, got "
                                f"{describe(batches)}.")
    momenta = [layer.momentum for layer in layers]
    ran = set()
    sums = {id(layer): [0.0, 0.0, 0] for layer in layers}

    def flagged(layer):
        original = layer.call

        def wrapper(*args, **kwargs):
            ran.add(id(layer))
            return original(*args, **kwargs)
        return wrapper

    try:
        for layer in layers:
            layer.momentum = 0.0
            object.__setattr__(layer, "call", flagged(layer))
        count = 0
        for batch in batches:
            ran.clear()
            call(batch)
            count += 1
            for layer in layers:
                if id(layer) in ran:
                    entry = sums[id(layer)]
                    entry[0] = entry[0] + ops.convert_to_numpy(layer.moving_mean).astype(
                        np.float64)
                    entry[1] = entry[1] + ops.convert_to_numpy(layer.moving_variance).astype(
                        np.float64)
                    entry[2] += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
            if "call" in vars(layer):
                object.__delattr__(layer, "call")
    if count == 0:
        raise ValueError("batches must hold at least one batch, got an empty iterable.")
    seen = {}
    for layer in layers:
        mean_sum, var_sum, n = sums[id(layer)]
        if n:
            layer.moving_mean.assign(mean_sum / n)
            layer.moving_variance.assign(var_sum / n)
            seen[layer.moving_mean.path.rsplit("/", 1)[0]] = n
    return seen
