"""kexue.attribution: the distance score against a hand computation, gradient x input against
finite differences, occlusion against a brute-force loop, rank agreement against SciPy."""

import keras
import numpy as np
import pytest
from kexue import attribution, runtime, text
from scipy import stats

F64 = "float64"
PREC = 1e-12 if keras.backend.backend() == "tensorflow" else 1e-6


def chain(cell=keras.layers.SimpleRNN, vocab=12, dim=3, units=2, dtype=F64, seed=0):
    """ids -> Embedding(mask_zero) -> RNN -> Dense(1) 'logit' -> sigmoid, in float64."""
    runtime.seed(seed)
    return keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(vocab, dim, mask_zero=True, dtype=dtype, name="embedding"),
        cell(units, dtype=dtype, name="rnn"),
        keras.layers.Dense(1, dtype=dtype, name="logit"),
        keras.layers.Activation("sigmoid", dtype=dtype, name="probability"),
    ])


def test_distance_saliency_equals_a_hand_computation_on_two_steps():
    model = chain()
    emb, rnn = model.get_layer("embedding"), model.get_layer("rnn")
    emb.set_weights([np.arange(36, dtype=F64).reshape(12, 3) / 20 - 0.8])
    w, u, b = np.array([[0.5, -1.0], [0.3, 0.8], [-0.7, 0.2]]), np.array([[0.9, -0.4], [0.6, 1.1]]), \
        np.array([0.1, -0.2])
    rnn.set_weights([w, u, b])
    ids = np.array([4, 9])
    x1, x2 = emb.get_weights()[0][ids]
    h1 = np.tanh(x1 @ w + b)                      # h_0 = 0
    h2 = np.tanh(x2 @ w + h1 @ u + b)
    d0, d1 = np.linalg.norm(h2), np.linalg.norm(h2 - h1)
    hand = np.array([d0 - d1, d1 - 0.0]) / d0
    states = attribution.state_sequence(model, ids)
    # JAX's CPU matmul runs float64 at reduced precision (about 1e-8 here); TensorFlow is exact
    np.testing.assert_allclose(states, np.stack([h1, h2]), atol=PREC)
    np.testing.assert_allclose(np.asarray(attribution.distance_saliency(states)), hand, atol=PREC)
    raw = np.asarray(attribution.distance_saliency(states, normalize=False))
    np.testing.assert_allclose(raw, hand * d0, atol=PREC)


def test_distance_saliency_on_given_states():
    h = np.array([[3.0, 0.0], [3.0, 4.0]])        # d_0 = 5, d_1 = 4, d_2 = 0
    np.testing.assert_allclose(np.asarray(attribution.distance_saliency(h)), [0.2, 0.8])
    zero = np.zeros((3, 2))                        # a final state of norm 0 scores nothing
    assert np.all(np.asarray(attribution.distance_saliency(zero)) == 0)
    batch = np.stack([h, h[::-1]])
    out = np.asarray(attribution.distance_saliency(batch))
    assert out.shape == (2, 2)
    np.testing.assert_allclose(out.sum(1), 1.0)


@pytest.mark.parametrize("cell", [keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU])
def test_telescoping_masking_and_the_triangle_bound(cell):
    model = chain(cell, units=4)
    ids = np.array([[0, 0, 3, 5, 7, 2, 9], [4, 6, 1, 8, 3, 10, 11]])
    states = attribution.state_sequence(model, ids)
    sub = keras.Model(model.inputs[0], model.get_layer("rnn").output)
    np.testing.assert_allclose(states[:, -1], np.asarray(sub(ids)), atol=1e-12)
    s = np.asarray(attribution.distance_saliency(states))
    np.testing.assert_allclose(s.sum(1), 1.0, atol=PREC)
    assert np.all(s[0, :2] == 0.0)                 # left padding: exactly zero
    raw = np.asarray(attribution.distance_saliency(states, normalize=False))
    path = np.concatenate([np.zeros((2, 1, 4)), states], axis=1)
    assert np.all(np.abs(raw) <= np.linalg.norm(np.diff(path, axis=1), axis=-1) + PREC)
    # a masked token inserted in the middle scores exactly 0 and changes nothing else
    inserted = np.array([3, 5, 0, 7, 2, 9])
    s_ins = np.asarray(attribution.distance_saliency(attribution.state_sequence(model, inserted)))
    assert s_ins[2] == 0.0
    np.testing.assert_allclose(np.delete(s_ins, 2), s[0, 2:], atol=PREC)


def _scaled_row_logit(logit, ids, token, factor):
    emb = logit.get_layer("embedding")
    table = emb.get_weights()[0]
    changed = table.copy()
    changed[token] *= factor
    emb.set_weights([changed])
    try:
        return float(np.asarray(logit(ids[None]))[0, 0])
    finally:
        emb.set_weights([table])


@pytest.mark.parametrize("cell", [keras.layers.LSTM, keras.layers.GRU])
def test_gradient_x_input_equals_finite_differences(cell):
    model = chain(cell, units=3, seed=1)
    ids = np.array([0, 5, 2, 8, 11, 3])           # distinct tokens: one row each
    gamma = attribution.gradient_x_input(model, ids, output="logit")
    assert gamma[0] == 0.0
    # TensorFlow runs these float64 RNNs exactly; Keras's JAX RNN loses digits (about 1e-7
    # relative), so there the difference quotient needs a larger step and a looser tolerance
    eps, rel = (1e-6, 1e-6) if PREC < 1e-9 else (1e-3, 2e-2)
    logit = keras.Model(model.inputs[0], model.get_layer("logit").output)
    for t in range(1, len(ids)):                  # d/de f(e_t (1 + eps)) = <grad_t, e_t>
        fd = (_scaled_row_logit(logit, ids, ids[t], 1 + eps)
              - _scaled_row_logit(logit, ids, ids[t], 1 - eps)) / (2 * eps)
        assert gamma[t] == pytest.approx(fd, rel=rel, abs=1e-9)
    batch = attribution.gradient_x_input(model, np.stack([ids, ids[::-1]]), output="logit")
    np.testing.assert_allclose(batch[0], gamma, atol=1e-12)


def test_occlusion_equals_a_brute_force_loop():
    model = chain(keras.layers.LSTM, units=3, seed=2)
    rows = np.array([[0, 0, 4, 7, 4, 9], [3, 1, 5, 10, 2, 6]])
    got = attribution.occlusion(model, rows, batch_size=4)
    for row, scores in zip(rows, got):
        tokens = row[row != 0]
        base = float(np.asarray(model(tokens[None]))[0, 0])
        want = []
        for t in range(len(tokens)):               # delete token t, run the shorter sentence
            shorter = np.delete(tokens, t)
            want.append(base - float(np.asarray(model(shorter[None]))[0, 0]))
        np.testing.assert_allclose(scores[row != 0], want, atol=1e-12)
        assert np.all(scores[row == 0] == 0)
    single = attribution.occlusion(model, rows[1], output="logit")
    assert single.shape == (6,)


def test_rank_agreement_matches_scipy():
    rng = np.random.default_rng(0)
    for n in (2, 5, 17):
        a, b = rng.normal(size=n), rng.normal(size=n)
        b_ties = np.round(b, 0)
        for x, y in ((a, b), (a, b_ties), (np.round(a), b_ties)):
            if np.ptp(x) == 0 or np.ptp(y) == 0:
                continue                           # no ranking: NaN, checked below
            assert attribution.rank_agreement(x, y) == pytest.approx(
                stats.spearmanr(x, y).statistic, abs=1e-12)
            assert attribution.rank_agreement(x, y, "kendall") == pytest.approx(
                stats.kendalltau(x, y).statistic, abs=1e-12)
    a, b = np.array([5.0, 4, 3, 2, 1]), np.array([1.0, 9, 8, 0, 7])
    assert attribution.rank_agreement(a, b, "top_k", k=2) == 0.5   # {0, 1} vs {1, 2}
    assert np.isnan(attribution.rank_agreement(np.ones(4), a[:4]))
    assert np.isnan(attribution.rank_agreement(a[:4], np.ones(4), "kendall"))


def test_randomized_copy_reinitialises_only_the_named_layers():
    model = chain(keras.layers.LSTM, units=3)
    before = [w.copy() for w in model.get_weights()]
    copy = attribution.randomized_copy(model, ["rnn"], seed=3)
    again = attribution.randomized_copy(model, ["rnn"], seed=3)
    for w, v in zip(before, model.get_weights()):
        np.testing.assert_array_equal(w, v)        # the original is untouched
    for name in ("embedding", "logit"):
        for w, v in zip(model.get_layer(name).get_weights(), copy.get_layer(name).get_weights()):
            np.testing.assert_array_equal(w, v)
    kernel = model.get_layer("rnn").get_weights()[0]
    assert np.abs(copy.get_layer("rnn").get_weights()[0] - kernel).max() > 1e-3
    for w, v in zip(copy.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(w, v)        # reproducible
    every = attribution.randomized_copy(model)
    assert np.abs(every.get_layer("embedding").get_weights()[0]
                  - model.get_layer("embedding").get_weights()[0]).max() > 1e-3


def test_rank_tokens_and_html():
    ranked = attribution.rank_tokens(["a", "b", "c"], [0.1, 0.5, -0.2])
    assert ranked == [(1, "b", 0.5), (0, "a", 0.1), (2, "c", -0.2)]
    page = attribution.saliency_html(["<b>", "ok"], [1.0, -0.5], sep="", label="x & y")
    assert "&lt;b&gt;" in page and "<b>" not in page and "x &amp; y" in page
    assert "rgba(49,130,189,0.375)" in page and 'title="+1.000"' in page


@pytest.mark.parametrize("cell", text.RNN_CELLS)
def test_rnn_classifier_builds_and_explains(cell):
    runtime.seed(0)
    model = text.rnn_classifier(20, embed_dim=4, units=3, cell=cell)
    ids = np.array([[0, 3, 4, 5], [6, 7, 8, 9]])
    assert tuple(model(ids).shape) == (2, 1)
    assert [la.name for la in model.layers[1:]] == ["embedding", "rnn", "dropout", "logit",
                                                    "probability"]
    s = np.asarray(attribution.distance_saliency(attribution.state_sequence(model, ids)))
    np.testing.assert_allclose(s.sum(1), 1.0, atol=1e-5)
