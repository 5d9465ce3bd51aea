"""Gradients for the tests on whichever Keras backend runs them (TensorFlow or JAX).

``grads(fn, *arrays)``: the gradients of the scalar ``fn(*arrays)`` with respect to each array.
``op_determinism(enabled)``: a context with TensorFlow's op determinism on or off.
``model_grads(model, loss_fn, x, y, compiled=False)``: the gradients of ``loss_fn(y, model(x,
training=True))`` with respect to ``model.trainable_variables``; the model's non-trainable state
(seed generators, statistics) moves on as it would in a training step.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

BACKEND = keras.backend.backend()


def grads(fn, *arrays):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        xs = [tf.convert_to_tensor(a) for a in arrays]
        with tf.GradientTape() as tape:
            for x in xs:
                tape.watch(x)
            out = fn(*xs)
        return [np.asarray(tf.convert_to_tensor(g)) for g in tape.gradient(out, xs)]  # sparse too
    if BACKEND == "jax":
        import jax

        argnums = tuple(range(len(arrays)))
        return [np.asarray(g) for g in jax.grad(fn, argnums=argnums)(*map(np.asarray, arrays))]
    raise NotImplementedError(f"no gradient helper for the {BACKEND} backend")


def model_grads(model, loss_fn, x, y, compiled=False):
    if BACKEND == "tensorflow":
        import tensorflow as tf

        def step(x, y):
            with tf.GradientTape() as tape:
                loss = loss_fn(y, model(x, training=True))
            return tape.gradient(loss, model.trainable_variables)

        if compiled:
            step = tf.function(step)
        return [np.asarray(tf.convert_to_tensor(g)) for g in step(x, y)]
    if BACKEND == "jax":
        import jax

        def loss_of(trainable, non_trainable, x, y):
            pred, non_trainable = model.stateless_call(trainable, non_trainable, x, training=True)
            return loss_fn(y, pred), non_trainable

        step = jax.grad(loss_of, has_aux=True)
        if compiled:
            step = jax.jit(step)
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        g, non_trainable = step(trainable, non_trainable, x, y)
        for variable, value in zip(model.non_trainable_variables, non_trainable):
            variable.assign(value)
        return [np.asarray(a) for a in g]
    raise NotImplementedError(f"no gradient helper for the {BACKEND} backend")


@contextlib.contextmanager
def op_determinism(enabled):
    """TensorFlow's op determinism on or off for the block, as it was after it (XLA refuses
    some gradients under it, and Keras models drop ``jit_compile=True`` while it is on)."""
    if keras.backend.backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    (config.enable_op_determinism if enabled else config.disable_op_determinism)()
    try:
        yield
    finally:
        (config.enable_op_determinism if was else config.disable_op_determinism)()
