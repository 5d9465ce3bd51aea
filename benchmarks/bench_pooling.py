"""Masked global poolings against Keras's own global poolings (forward and gradient).

``MaskedGlobalMaxPooling1D`` against ``GlobalMaxPooling1D`` (which ignores the mask; the
issue's target) and against ``MaxPooling1D(pool_size=T)`` (which ignores it too, and whose
gradient, like ours, goes to the first maximum rather than being split among ties), and
``MaskedGlobalAveragePooling1D`` against ``GlobalAveragePooling1D`` given the mask; inputs
``(64, 128, 128)`` with right padding, the loss the sum of the pooled output, in a
``tf.function`` without XLA. Used for book/keras/layers-within-layers-and-masks.md.
"""

from __future__ import annotations

import _harness
import numpy as np

B, T, D = 64, 128, 128


def _step(layer, x, mask, use_mask):
    import tensorflow as tf

    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=mask) if use_mask else layer(x)
            loss = tf.reduce_sum(out)
        return tape.gradient(loss, x)

    fn = tf.function(step, jit_compile=False)
    return lambda: fn().numpy()


def run(quick):
    import keras
    import tensorflow as tf
    from kexue.layers import MaskedGlobalAveragePooling1D, MaskedGlobalMaxPooling1D
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(B, T, D)).astype("float32"))
    lengths = rng.integers(T // 2, T + 1, size=B)
    mask = tf.constant(np.arange(T)[None] < lengths[:, None])
    fns = {
        "GlobalMaxPooling1D": _step(keras.layers.GlobalMaxPooling1D(), x, mask, False),
        "MaxPooling1D(T)": _step(keras.Sequential([keras.layers.MaxPooling1D(T),
                                                   keras.layers.Flatten()]), x, mask, False),
        "MaskedGlobalMaxPooling1D": _step(MaskedGlobalMaxPooling1D(), x, mask, True),
        "GlobalAveragePooling1D (mask)": _step(keras.layers.GlobalAveragePooling1D(), x, mask, True),
        "MaskedGlobalAveragePooling1D": _step(MaskedGlobalAveragePooling1D(), x, mask, True),
    }
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=5 if quick else 20)
    what = f"pooling forward + gradient, ({B}, {T}, {D}), no XLA"
    return [_harness.ratio_row(what, "MaskedGlobalMaxPooling1D", "GlobalMaxPooling1D", times),
            _harness.ratio_row(what, "MaskedGlobalMaxPooling1D", "MaxPooling1D(T)", times,
                               note="same gradient rule (first maximum)"),
            _harness.ratio_row(what, "MaskedGlobalAveragePooling1D",
                               "GlobalAveragePooling1D (mask)", times)]


if __name__ == "__main__":
    _harness.main("pooling", run)
