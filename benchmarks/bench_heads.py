"""Sequence-tagging heads: CRF, MEMM and Bi-MEMM against the per-token softmax head.

Two measurements, at the chapters' shapes (batch 64, K = 4 tags, T = 64 and 256, right
padding on up to half of each row): the head alone (loss and its gradient with respect to
the emissions and the head's weights, in a ``tf.function``), and a whole training step
(``train_on_batch``) of the CRF chapter's encoder (embedding 64, three Conv1D(128, 3)).
Each with ``jit_compile`` off and on (XLA); a head that XLA cannot compile is reported as
failing. Used for book/sequence/crf.md and book/sequence/memm.md.
"""

from __future__ import annotations

import _harness
import numpy as np

BATCH, K, VOCAB = 64, 4, 2000
LENGTHS = (64, 256)


def _heads():
    from kexue.layers import CRF, MEMM, SoftmaxTagger
    return {
        "softmax": lambda: SoftmaxTagger(K),
        "CRF": lambda: CRF(K, lr_multiplier=20.0),
        "MEMM": lambda: MEMM(K, bidirectional=False, lr_multiplier=20.0),
        "Bi-MEMM": lambda: MEMM(K, bidirectional=True, lr_multiplier=20.0),
    }


def _labels(rng, t):
    y = rng.integers(0, K, size=(BATCH, t))
    lengths = rng.integers(t // 2, t + 1, size=BATCH)
    y[np.arange(t)[None] >= lengths[:, None]] = -1
    return y


def _loss_and_grads(head, em, y):
    """A step computing the head's mean loss and its gradient (emissions and head weights).

    The variables are closed over, not passed as arguments: ``tf.function`` would trace
    argument variables as inputs, and the tape would not link them to the head's own reads.
    """
    import tensorflow as tf
    weights = [em, *head.trainable_weights]

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(head.label_loss(y, em))
        return loss, tape.gradient(loss, weights)

    return step


def head_alone(t, jit, repeats, rng):
    import tensorflow as tf
    em = tf.Variable(rng.normal(size=(BATCH, t, K)).astype("float32"))
    y = tf.constant(_labels(rng, t))
    fns = {}
    for name, make in _heads().items():
        head = make()
        head.build((None, None, K))
        fn = tf.function(_loss_and_grads(head, em, y), jit_compile=jit)
        fns[name] = lambda fn=fn: [g.numpy() for g in fn()[1]]
    return _time(fns, f"head alone, T = {t}, jit {'on' if jit else 'off'}", repeats, inner=10)


def train_step(t, jit, repeats, rng):
    import keras
    from kexue import text
    x = rng.integers(2, VOCAB, size=(BATCH, t))
    y = _labels(rng, t)
    fns = {}
    for name, make in _heads().items():
        # keras's seed, not runtime.seed: that one turns on TensorFlow's op determinism,
        # under which Keras silently drops jit_compile=True.
        keras.utils.set_random_seed(0)
        head = make()
        model = text.conv_tagger(VOCAB, head, depth=3, width=128, embed_dim=64)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=head.loss, jit_compile=jit)
        fns[name] = lambda model=model: model.train_on_batch(x, y)
    return _time(fns, f"training step, T = {t}, jit {'on' if jit else 'off'}", repeats, inner=3)


def _time(fns, component, repeats, inner):
    """Ratios CRF / softmax, MEMM / CRF, Bi-MEMM / CRF; a head that fails is reported so."""
    failed = {}
    for name, fn in list(fns.items()):
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - reported in the table
            failed[name] = err
            del fns[name]
    times = _harness.cpu_times(fns, repeats, inner=inner, warmup=1)
    rows = []
    for cand, ref in (("CRF", "softmax"), ("MEMM", "softmax"), ("Bi-MEMM", "softmax"),
                      ("MEMM", "CRF"), ("Bi-MEMM", "CRF")):
        if cand in failed or ref in failed:
            rows.append(_harness.failed_row(component, cand, ref, failed.get(cand) or failed[ref]))
        else:
            rows.append(_harness.ratio_row(component, cand, ref, times))
    return rows


def run(quick):
    import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    repeats = 3 if quick else 11
    rows = []
    for jit in (False, True):
        for t in LENGTHS:
            rows += head_alone(t, jit, repeats, rng)
    for jit in (False, True):
        for t in LENGTHS:
            rows += train_step(t, jit, repeats, rng)
    return rows


if __name__ == "__main__":
    _harness.main("heads", run)
