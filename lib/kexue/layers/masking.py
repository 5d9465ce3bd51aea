"""Masked operations on padded sequences, as functions and as mask-aware Keras 3 layers.

A batch of variable-length sequences is padded to one length ``T``; a mask ``m`` of shape
``(batch, T)`` (or ``(batch, T, 1)``), true/1 at real positions and false/0 at padding, says
which is which. Every operation here gives, on each row, exactly what the same operation
gives on the unpadded row, whatever the padding length:

- :func:`masked_mean`: ``sum_t x_t m_t / max(sum_t m_t, 1)``;
- :func:`masked_max`: the maximum over real positions (the padding moved to ``-inf``; the
  gradient goes to the first maximum);
- :func:`masked_softmax`: a softmax whose padded entries are exactly 0;
- :func:`reverse_valid`: reverse the first ``length`` steps of each row, keep the rest;
- :class:`MaskedBiRNN`: a bidirectional RNN whose backward pass never sees the padding.

All-padding rows give 0 (mean, max) and an all-zero distribution (softmax).

Used in: book/keras/layers-within-layers-and-masks.md
"""

from __future__ import annotations

import functools

import keras
import numpy as np
from keras import ops

from kexue import runtime
from kexue._checks import (
    _is_int,
    as_tensor,
    check_dtype,
    check_int_range,
    check_mask,
    check_shape,
    describe,
    dtype_kind,
)


def _checked_mask(mask, x, name="mask", x_name="x", prefix=False):
    """``mask`` as a ``(batch, T)`` tensor checked against ``x`` ``(batch, T, ...)``.

    Accepts ``(batch, T)`` or ``(batch, T, 1)`` of booleans or 0/1 numbers (a list too); raises
    a ``ValueError`` naming ``name`` when the static shapes disagree with ``x``'s or, for
    concrete masks, when a value is not 0/1 (or, with ``prefix``, the mask is not a prefix).
    """
    if mask is None:
        raise ValueError(f"{name} must be a (batch, T) mask of 0/1 or booleans, got None.")
    mask = as_tensor(mask, name)
    check_dtype(mask, name, ("bool", "number"))
    dims = {}
    check_shape(x, x_name, ("batch", "T", ...), dims)
    if len(mask.shape) == 3 and mask.shape[-1] == 1:
        mask = ops.squeeze(mask, axis=-1)
    if len(mask.shape) != 2:
        raise ValueError(
            f"{name} must have shape (batch, T) or (batch, T, 1), got shape {tuple(mask.shape)}."
        )
    check_shape(mask, name, ("batch", "T"), dims)
    check_mask(mask, name, prefix=prefix)
    return mask


def _float_mask(mask, x, name="mask", prefix=False):
    """``mask`` as a float tensor of ``x``'s dtype, shaped ``x.shape[:2] + (1,)*...``.

    Accepts ``(batch, T)`` or ``(batch, T, 1)``; raises if the static shapes disagree.
    """
    mask = ops.cast(_checked_mask(mask, x, name, prefix=prefix), x.dtype)
    for _ in range(len(x.shape) - 2):
        mask = ops.expand_dims(mask, -1)
    return mask


def _check_axis(axis, x):
    if not _is_int(axis) or axis not in (1, -len(x.shape) + 1):
        raise ValueError(
            f"axis must be the time axis 1 of x with shape {tuple(x.shape)}, got {describe(axis)}."
        )


def _numeric(x, name):
    """``x`` as a tensor of numbers (not booleans or strings), rank >= 2."""
    x = as_tensor(x, name)
    check_dtype(x, name, "number")
    return x


def very_negative(dtype):
    """Half the most negative finite number of ``dtype`` (-1.7e38 in float32, -3.3e4 in
    float16): subtracting it from a logit underflows ``exp`` to exactly 0, and, unlike a
    literal ``-1e10``, it does not overflow in half precision.

    For an integer dtype it is half the most negative integer, as an ``int``.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    try:
        name = keras.backend.standardize_dtype(dtype)
        kind = "f" if name == "bfloat16" else np.dtype(name).kind
    except (TypeError, ValueError) as err:
        raise TypeError(f"dtype must be a numeric dtype such as 'float32', got {dtype!r}.") from err
    if name == "bfloat16":
        return float(np.finfo(np.float32).min) / 2
    if kind == "f":
        return float(np.finfo(name).min) / 2
    if kind in "iu":
        return int(np.iinfo(name).min) // 2
    raise TypeError(f"dtype must be a float or integer dtype, got {dtype!r}.")


def padding_mask(ids, pad_id=0):
    """Boolean mask ``ids != pad_id`` of the integer ids ``(batch, T)``.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    ids = _numeric(ids, "ids")
    check_shape(ids, "ids", ("batch", "T"))
    if not _is_int(pad_id):
        raise TypeError(f"pad_id must be an int, got {describe(pad_id)}.")
    return ops.not_equal(ids, pad_id)


def masked_mean(x, mask, axis=1):
    """Mean of ``x`` over the real positions of the time axis.

    ``x`` has shape ``(batch, T, ...)``, ``mask`` ``(batch, T)`` or ``(batch, T, 1)``; the result
    has shape ``(batch, ...)`` and is ``sum_t x_t m_t / max(sum_t m_t, 1)`` (0 for all-padding
    rows).

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    x = _numeric(x, "x")
    if dtype_kind(x) != "f":  # the mean of integers is a float
        x = ops.cast(x, keras.backend.floatx())
    _check_axis(axis, x)
    m = _float_mask(mask, x)
    # where, not x * m: a NaN or inf at a padded position must not reach the sum
    total = ops.sum(ops.where(ops.greater(m, 0), x, ops.zeros_like(x)), axis=1)
    count = ops.maximum(ops.sum(m, axis=1), ops.cast(1.0, x.dtype))
    return total / count


def masked_max(x, mask, axis=1):
    """Maximum of ``x`` over the real positions of the time axis.

    Shapes as in :func:`masked_mean`; all-padding rows give 0. For floats the gradient goes
    to the *first* real position holding the maximum, as Keras's ``MaxPooling1D``'s does
    (Keras's ``GlobalMaxPooling1D``, a plain ``max``, splits it among tied positions
    instead), and never to a padded position; :func:`_max_of_real` says how, and why.
    Integers are maxed after replacing the padding by :func:`very_negative`.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    x = _numeric(x, "x")
    _check_axis(axis, x)
    keep = ops.greater(_float_mask(mask, x), 0)
    if dtype_kind(x) == "f":
        out = _max_of_real(x, keep)
    else:
        out = ops.max(ops.where(keep, x, very_negative(x.dtype)), axis=1)
    any_real = ops.any(keep, axis=1)
    return ops.where(any_real, out, ops.zeros_like(out))


@functools.cache
def _cpu_only():
    """Whether every device the Keras backend can compute on is a CPU."""
    return set(runtime.devices()) == {"CPU"}


def _pooling_skips_nan():
    """Whether :func:`_max_of_real` may move the padding to ``-inf`` by an add: only where the
    max pooling and its gradient are known to skip a NaN, which is TensorFlow's CPU kernels
    outside XLA (tested). XLA's forward skips it on CPU but its gradient may pick it, and on a
    GPU or under JAX the max propagates it; there the padding is replaced with a ``where``.
    """
    if keras.config.backend() != "tensorflow" or not _cpu_only():
        return False
    try:  # tracing inside tf.function(jit_compile=True)? (no public test for it)
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    graph = tf.compat.v1.get_default_graph()
    in_xla = getattr(control_flow_util, "GraphOrParentsInXlaContext", None)
    return in_xla is not None and not in_xla(graph)


def _max_of_real(x, keep):
    """``max_t`` of the floats ``x`` ``(batch, T, ...)`` over the positions where the boolean
    ``keep`` (``x``'s rank, 1s after the time axis) is true; ``(batch, ...)``, ``-inf`` or the
    lowest float on all-padding rows (the caller replaces those). The gradient goes to the
    first real position holding the maximum.

    Where TensorFlow runs on the CPU without XLA (:func:`_pooling_skips_nan`) and ``T`` and the
    trailing axes are known, the rows are flattened to ``(batch, T, c)``, the padding is moved
    to ``-inf`` by adding ``0`` / ``-inf`` (one full-size pass), and one ``max_pool`` of window
    and stride ``T`` reduces them; its gradient is one kernel, where that of ``ops.max`` (what
    ``GlobalMaxPooling1D`` uses) takes five full-size passes. A NaN or ``+inf`` at a padded
    position becomes NaN, which that max pooling skips. As with TensorFlow's ``MaxPooling1D``,
    a NaN at a real position is skipped too, and a row whose real values are all ``-inf``
    gives the lowest float rather than ``-inf``.

    Everywhere else the padding is replaced by ``-inf`` with a ``where`` (which no NaN
    survives) and the maximum is read at the first ``argmax`` (:func:`_first_max`): the same
    values and gradient.
    """
    t = x.shape[1]
    rest = tuple(x.shape[2:])
    if isinstance(t, int) and all(isinstance(n, int) for n in rest) and _pooling_skips_nan():
        channels = int(np.prod(rest, dtype=np.int64))
        rows = ops.reshape(x, (-1, t, channels))
        keep = ops.reshape(keep, (-1, t, 1))
        bias = ops.where(keep, ops.cast(0.0, x.dtype), ops.cast(float("-inf"), x.dtype))
        out = ops.max_pool(rows + bias, t, t, padding="valid", data_format="channels_last")
        return ops.reshape(out, (-1,) + rest)
    return _first_max(ops.where(keep, x, ops.cast(float("-inf"), x.dtype)))


def _first_max(x):
    """``max`` of ``x`` ``(batch, T, ...)`` over axis 1, read at the first ``argmax``, so that
    its gradient goes to the first maximum as ``max_pool``'s does; ``(batch, ...)``.

    The read is a sum of ``x`` where the step is the argmax and 0 elsewhere (dense, with no
    gather and no scatter in the gradient, for any ``T``).
    """
    first = ops.expand_dims(ops.argmax(x, axis=1), 1)
    steps = ops.reshape(ops.arange(ops.shape(x)[1], dtype=first.dtype),
                        (1, -1) + (1,) * (len(x.shape) - 2))
    return ops.sum(ops.where(ops.equal(steps, first), x, ops.zeros_like(x)), axis=1)


def masked_softmax(logits, mask, axis=-1):
    """Softmax of ``logits`` along ``axis`` with the masked entries exactly 0.

    ``mask`` either has the shape of ``logits`` (or broadcasts to it), or is a ``(batch, T)``
    key mask for ``logits`` of shape ``(batch, ..., T)`` with ``axis=-1`` (attention scores
    of any number of query/head axes). Masked logits are replaced by :func:`very_negative`,
    so ``exp`` underflows to 0; rows with no real entry give all zeros instead of a uniform
    distribution over padding.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    logits = as_tensor(logits, "logits")
    check_dtype(logits, "logits", "float")
    if mask is None:
        raise ValueError("mask must be a mask of 0/1 or booleans (or use ops.softmax), got None.")
    mask = as_tensor(mask, "mask")
    check_dtype(mask, "mask", ("bool", "number"))
    check_mask(mask, "mask")
    rank, m_rank = len(logits.shape), len(mask.shape)
    if not _is_int(axis) or not -rank <= axis < rank:
        raise ValueError(f"axis must be an axis of logits with shape {tuple(logits.shape)}, "
                         f"got {describe(axis)}.")
    if axis not in (-1, rank - 1) and m_rank != rank:
        raise ValueError(
            f"a (batch, T) mask needs axis=-1; got axis={axis!r} for logits of shape "
            f"{tuple(logits.shape)}."
        )
    if m_rank == 2 and rank > 2:
        if mask.shape[-1] is not None and logits.shape[-1] is not None and (
                mask.shape[-1] != logits.shape[-1]):
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not match the last axis of logits "
                f"of shape {tuple(logits.shape)}."
            )
        for _ in range(rank - 2):
            mask = ops.expand_dims(mask, 1)
    elif m_rank != rank:
        raise ValueError(
            f"mask must have the rank of logits ({rank}) or be a (batch, T) key mask, got "
            f"shape {tuple(mask.shape)} for logits of shape {tuple(logits.shape)}."
        )
    else:
        for i, (a, b) in enumerate(zip(mask.shape, logits.shape)):
            if a is not None and b is not None and a not in (1, b):
                raise ValueError(
                    f"mask of shape {tuple(mask.shape)} does not broadcast to logits of shape "
                    f"{tuple(logits.shape)} (axis {i})."
                )
    keep = ops.greater(ops.cast(mask, logits.dtype), 0)
    keep = ops.broadcast_to(keep, ops.shape(logits))
    p = ops.softmax(ops.where(keep, logits, very_negative(logits.dtype)), axis=axis)
    return ops.where(keep, p, ops.zeros_like(p))


def reverse_valid(x, lengths):
    """Reverse the first ``lengths[b]`` steps of every row ``b`` of ``x``, keep the rest.

    ``x`` has shape ``(batch, T, ...)`` and ``lengths`` ``(batch,)`` integers in ``[0, T]``.
    Step ``t`` of the output is step ``lengths[b] - 1 - t`` of the input for ``t < lengths[b]``
    and step ``t`` otherwise; the map is an involution. It is TensorFlow's
    ``tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)`` written with
    ``keras.ops.take_along_axis``, which exists on every backend.

    Used in: book/keras/layers-within-layers-and-masks.md
    """
    x = as_tensor(x, "x")
    dims = {}
    check_shape(x, "x", ("batch", "T", ...), dims)
    lengths = as_tensor(lengths, "lengths")
    check_dtype(lengths, "lengths", "number")
    check_shape(lengths, "lengths", ("batch",), dims)
    if x.shape[1] is not None:
        check_int_range(lengths, "lengths", 0, int(x.shape[1]) + 1)
    lengths = ops.cast(lengths, "int32")
    t = ops.arange(ops.shape(x)[1], dtype="int32")[None, :]
    ell = lengths[:, None]
    idx = ops.where(t < ell, ell - 1 - t, t)
    for _ in range(len(x.shape) - 2):
        idx = ops.expand_dims(idx, -1)
    return ops.take_along_axis(x, idx, axis=1)


def _mask_lengths(mask):
    """Number of real positions per row of a checked ``(batch, T)`` mask."""
    return ops.cast(ops.sum(ops.cast(mask, "int32"), axis=1), "int32")


class _MaskedGlobalPooling1D(keras.layers.Layer):
    """Shared frame of the masked global poolings: ``(batch, T, d)`` → ``(batch, d)``.

    Subclasses define ``_pool(inputs, mask)``; the mask is consumed (the output has no time
    axis).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        check_shape(inputs, "inputs", ("batch", "T", "d"))
        return self._pool(inputs, mask)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


@keras.saving.register_keras_serializable(package="kexue")
class MaskedGlobalAveragePooling1D(_MaskedGlobalPooling1D):
    """Mean over the real time steps: ``(batch, T, d)`` with mask ``(batch, T)`` → ``(batch, d)``.

    Takes the mask Keras propagates (e.g. from ``Embedding(mask_zero=True)``) and consumes
    it (the output has no time axis, so no mask). Without a mask it is the plain mean.
    Equal to Keras 3's ``GlobalAveragePooling1D`` with a mask, except on all-padding rows:
    ours gives 0, Keras's gives NaN (0/0).

    Used in: book/keras/layers-within-layers-and-masks.md
    """

    def _pool(self, inputs, mask):
        return ops.mean(inputs, axis=1) if mask is None else masked_mean(inputs, mask)


@keras.saving.register_keras_serializable(package="kexue")
class MaskedGlobalMaxPooling1D(_MaskedGlobalPooling1D):
    """Maximum over the real time steps: ``(batch, T, d)`` with mask ``(batch, T)`` → ``(batch, d)``.

    Keras 3's own ``GlobalMaxPooling1D`` has no ``mask`` argument and silently drops a
    propagated mask, so padding can win the maximum; this layer does not. All-padding rows
    give 0. With a mask the gradient goes to the first real maximum of each row (see
    :func:`masked_max`); without one the layer is ``GlobalMaxPooling1D``'s plain ``max``.

    Used in: book/keras/layers-within-layers-and-masks.md
    """

    def _pool(self, inputs, mask):
        return ops.max(inputs, axis=1) if mask is None else masked_max(inputs, mask)


@keras.saving.register_keras_serializable(package="kexue")
class MaskedSoftmax(keras.layers.Layer):
    """Softmax over the last axis with masked entries exactly 0 (see :func:`masked_softmax`).

    Input ``(batch, ..., T)``; the mask is the propagated ``(batch, T)`` mask or one given
    explicitly as ``mask=``. The output keeps the input's shape and passes the mask on.

    Used in: book/keras/layers-within-layers-and-masks.md
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return ops.softmax(inputs, axis=-1)
        return masked_softmax(inputs, mask, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kexue")
class MaskedBiRNN(keras.layers.Layer):
    """Bidirectional RNN on right-padded sequences with an explicit mask.

    ``call([x, mask])`` with ``x`` of shape ``(batch, T, d)`` and ``mask`` ``(batch, T)`` or
    ``(batch, T, 1)`` (1 on a prefix of each row). The forward copy of ``rnn`` reads ``x`` as
    it is (the padding comes after the real steps, so it cannot reach them); the backward
    copy reads ``reverse_valid(x)``, in which the real steps are reversed and still come
    first, and its output is reversed back. Both are multiplied by the mask, then merged:
    ``merge_mode="concat"`` gives ``(batch, T, 2 u)``, ``"sum"`` gives ``(batch, T, u)``.

    ``rnn`` must return sequences; the backward copy is a fresh instance built from its
    config.

    Used in: book/keras/layers-within-layers-and-masks.md
    """

    def __init__(self, rnn, merge_mode="concat", **kwargs):
        super().__init__(**kwargs)
        if isinstance(rnn, dict):
            rnn = keras.layers.deserialize(rnn)
        if not isinstance(rnn, keras.layers.RNN):
            raise TypeError(
                f"rnn must be a keras.layers.RNN (LSTM, GRU, ...), got {type(rnn).__name__}."
            )
        if not rnn.return_sequences:
            raise ValueError("rnn must have return_sequences=True, got return_sequences=False.")
        if rnn.go_backwards:
            raise ValueError("rnn must read forwards (go_backwards=False).")
        if merge_mode not in ("concat", "sum") or not isinstance(merge_mode, str):
            raise ValueError(f"merge_mode must be 'concat' or 'sum', got {describe(merge_mode)}.")
        self.merge_mode = merge_mode
        self.forward_rnn = rnn
        config = rnn.get_config()
        config["name"] = f"{rnn.name}_backward"
        self.backward_rnn = rnn.__class__.from_config(config)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2 or not all(
                isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"inputs must be a list [x, mask] (MaskedBiRNN), got inputs of "
                             f"shape {input_shape}.")
        x_shape = input_shape[0]
        self.forward_rnn.build(x_shape)
        self.backward_rnn.build(x_shape)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(
                f"inputs must be a list [x, mask] (MaskedBiRNN), got {describe(inputs)}.")
        x, mask = inputs
        check_shape(x, "x", ("batch", "T", "d"))
        mask = _checked_mask(mask, x, prefix=True)
        keep = ops.greater(ops.cast(mask, "int32"), 0)[..., None]
        lengths = _mask_lengths(mask)
        forward = self.forward_rnn(x)
        backward = reverse_valid(self.backward_rnn(reverse_valid(x, lengths)), lengths)
        # where, not * mask: whatever the padding holds (NaN) must not reach the output
        forward = ops.where(keep, forward, ops.zeros_like(forward))
        backward = ops.where(keep, backward, ops.zeros_like(backward))
        if self.merge_mode == "concat":
            return ops.concatenate([forward, backward], axis=-1)
        return forward + backward

    def compute_output_shape(self, input_shape):
        x_shape = input_shape[0]
        units = self.forward_rnn.cell.units if hasattr(self.forward_rnn, "cell") else None
        width = 2 * units if self.merge_mode == "concat" else units
        return (*x_shape[:-1], width)

    def get_config(self):
        config = super().get_config()
        config.update(rnn=keras.layers.serialize(self.forward_rnn), merge_mode=self.merge_mode)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["rnn"] = keras.layers.deserialize(config["rnn"])
        return cls(**config)
