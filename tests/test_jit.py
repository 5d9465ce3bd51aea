"""Every tagging head of ``kexue.layers`` trains the same with and without XLA.

A small character tagger with each head is trained for a few steps from the same initial
weights with ``jit_compile=True`` and ``jit_compile=False``; the losses agree to 1e-5. On
TensorFlow a Keras model drops ``jit_compile=True`` while op determinism is on (which
``kexue.runtime.seed`` turns on), so the test turns it off for its own duration.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from gradients import op_determinism
from kexue import text
from kexue.layers import CRF, MEMM, SoftmaxTagger

HEADS = {
    "softmax": lambda: SoftmaxTagger(4),
    "CRF": lambda: CRF(4, lr_multiplier=20.0),
    "MEMM": lambda: MEMM(4, bidirectional=False, lr_multiplier=20.0),
    "Bi-MEMM": lambda: MEMM(4, bidirectional=True),
    "Bi-MEMM, rank 2": lambda: MEMM(4, rank=2),
}


@pytest.mark.parametrize("name", HEADS)
def test_heads_train_the_same_with_and_without_jit(name):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 40, size=(12, 10))
    y = rng.integers(0, 4, size=(12, 10))
    y[np.arange(10)[None] >= rng.integers(1, 11, size=12)[:, None]] = -1  # right padding
    losses = {}
    with op_determinism(False):
        for jit in (False, True):
            keras.utils.set_random_seed(0)
            head = HEADS[name]()
            model = text.conv_tagger(40, head, depth=1, width=8, embed_dim=8)
            model.compile(optimizer=keras.optimizers.Adam(0.05), loss=head.loss, jit_compile=jit)
            assert model.jit_compile is jit
            losses[jit] = [float(model.train_on_batch(x, y)) for _ in range(4)]
    assert losses[False][-1] < losses[False][0]  # it trains
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-5, atol=1e-5)
