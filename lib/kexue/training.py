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
