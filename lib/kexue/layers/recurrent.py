"""Recurrent cells beyond Keras's own (used with ``keras.layers.RNN``).

- :class:`OutputGatedGRUCell`: a GRU whose reset gate is moved from the candidate to the
  output, so that the memory path is a pure convex combination ``c_t = (1 - z) c_{t-1} + z ĉ``
  and the output ``h_t = r ∘ c_t`` is gated (a GRU-like cell with an LSTM-like output gate).
"""

from __future__ import annotations

import keras
from keras import ops

from kexue._checks import check_int, describe


def _initializer(value, name):
    """``keras.initializers.get(value)``, with an error that names the argument."""
    try:
        resolved = keras.initializers.get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be a Keras initializer (a name such as 'orthogonal', an "
                         f"Initializer or a config), got {describe(value)}.") from err
    if resolved is None:
        raise ValueError(f"{name} must be a Keras initializer, got {describe(value)}.")
    return resolved


@keras.saving.register_keras_serializable(package="kexue")
class OutputGatedGRUCell(keras.layers.Layer):
    """A GRU-like cell with the reset gate moved to the output.

    With ``u_t = [x_t, h_{t-1}]`` and three blocks of ``kernel`` ``W`` (input, ``(features,
    3 units)``), ``recurrent_kernel`` ``U`` (``(units, 3 units)``) and ``bias`` ``b``, in the
    order update ``z``, output ``r``, candidate::

        z_t = sigmoid(x_t W_z + h_{t-1} U_z + b_z)
        r_t = sigmoid(x_t W_r + h_{t-1} U_r + b_r)
        ĉ_t = tanh(x_t W_c + h_{t-1} U_c + b_c)
        c_t = (1 - z_t) ∘ c_{t-1} + z_t ∘ ĉ_t
        h_t = r_t ∘ c_t

    The states are ``[h, c]`` (``state_size = [units, units]``; the output ``h`` is the first
    state, as in Keras's LSTM cell); inputs ``(batch, features)`` per step, output
    ``(batch, units)``. Use it as ``keras.layers.RNN(OutputGatedGRUCell(units))``. Defaults
    follow Keras's GRU: ``glorot_uniform`` kernel, ``orthogonal`` recurrent kernel, zero bias.

    Used in: book/geometry/rnn-gradients.md
    """

    def __init__(self, units, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = check_int(units, "units", what="a positive integer")
        self.kernel_initializer = _initializer(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = _initializer(recurrent_initializer,
                                                  "recurrent_initializer")
        self.bias_initializer = _initializer(bias_initializer, "bias_initializer")
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"OutputGatedGRUCell needs a known number of input features, got "
                             f"input shape {tuple(input_shape)}.")
        self.kernel = self.add_weight(shape=(features, 3 * self.units), name="kernel",
                                      initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units),
                                                name="recurrent_kernel",
                                                initializer=self.recurrent_initializer)
        self.bias = self.add_weight(shape=(3 * self.units,), name="bias",
                                    initializer=self.bias_initializer)

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        gates_x = ops.matmul(inputs, self.kernel) + self.bias
        gates_h = ops.matmul(h_prev, self.recurrent_kernel)
        zx, rx, cx = ops.split(gates_x, 3, axis=-1)
        zh, rh, ch = ops.split(gates_h, 3, axis=-1)
        z = ops.sigmoid(zx + zh)
        r = ops.sigmoid(rx + rh)
        candidate = ops.tanh(cx + ch)
        c = (1.0 - z) * c_prev + z * candidate
        h = r * c
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config
