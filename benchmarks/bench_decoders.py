"""Decoders: ``viterbi``, ``CRF.decode`` and ``memm_viterbi`` against a plain NumPy Viterbi.

The reference is the textbook batch-vectorised Viterbi in NumPy, written here: a loop over
time of ``(B, K, K)`` max/argmax, then a backtrack over time vectorised over the batch. Shapes
of the chapters' test decoding: a batch of 128 sentences of similar length (T up to 64,
lengths 48..64), K = 4. Used for book/sequence/crf.md and book/sequence/memm.md.
"""

from __future__ import annotations

import _harness
import numpy as np

B, T, K = 128, 64, 4


def numpy_viterbi(unary, trans, lengths):
    """Reference: best paths of ``sum unary[t, a_t] + sum trans[a_{t-1}, a_t]``, list of arrays."""
    b, t, k = unary.shape
    delta = unary[:, 0]
    back = np.empty((b, t, k), dtype=np.intp)
    back[:, 0] = np.arange(k)
    for pos in range(1, t):
        cand = delta[:, :, None] + trans
        best = cand.argmax(axis=1)
        new = np.take_along_axis(cand, best[:, None, :], axis=1)[:, 0] + unary[:, pos]
        live = (pos < lengths)[:, None]
        delta = np.where(live, new, delta)
        back[:, pos] = np.where(live, best, np.arange(k))
    tag = delta.argmax(axis=1)
    path = np.empty((b, t), dtype=np.intp)
    rows = np.arange(b)
    for pos in range(t - 1, -1, -1):
        path[:, pos] = tag
        tag = back[rows, pos, tag]
    return [path[i, :n] for i, n in enumerate(lengths)]


def run(quick):
    import keras
    from kexue.layers import CRF, MEMM
    from kexue.layers.crf import viterbi
    rng = np.random.default_rng(0)
    em = rng.normal(size=(B, T, K)).astype("float32")
    em64 = em.astype("float64")
    lengths = rng.integers(48, T + 1, size=B)
    crf = CRF(K)
    crf.build((None, None, K))
    crf.set_transitions(rng.normal(size=(K, K)))
    memm = MEMM(K, bidirectional=False)
    memm.build((None, None, K))
    memm.set_transitions(rng.normal(size=(K, K)))
    trans = keras.ops.convert_to_numpy(crf.trans).astype("float64")
    ref = numpy_viterbi(em64, trans, lengths)
    got = viterbi(em64, trans, lengths)[0]
    assert all(np.array_equal(a, b) for a, b in zip(ref, got)), "viterbi differs from reference"
    assert all(np.array_equal(a, b) for a, b in zip(ref, crf.decode(em, lengths)))
    fns = {
        "NumPy Viterbi": lambda: numpy_viterbi(em64, trans, lengths),
        "viterbi": lambda: viterbi(em64, trans, lengths),
        "CRF.decode": lambda: crf.decode(em, lengths),
        "memm_viterbi (exact)": lambda: memm.decode(em, lengths, exact=True),
    }
    times = _harness.cpu_times(fns, repeats=5 if quick else 15, inner=5 if quick else 20)
    what = f"decoding B = {B}, T = {T}, K = {K}"
    return [_harness.ratio_row(what, name, "NumPy Viterbi", times)
            for name in ("viterbi", "CRF.decode", "memm_viterbi (exact)")]


if __name__ == "__main__":
    _harness.main("decoders", run)
