"""kexue.embeddings: co-occurrence against brute force, the loss and gradient against finite
differences, Adagrad against Keras, the similarity transform against Pearson correlation,
recovery of planted vectors, and the queries of WordVectors."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops
from kexue import embeddings as E


def _random_corpus(n_sentences=200, vocab=30, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(vocab)]
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    return [list(rng.choice(words, size=rng.integers(0, 12), p=p)) for _ in range(n_sentences)]


def _brute_cooccurrence(sentences, index, window):
    V = len(index)
    X = np.zeros((V, V), np.int64)
    for s in sentences:
        ids = [index[w] for w in s if w in index]
        for a in range(len(ids)):
            for b in range(len(ids)):
                if a != b and abs(a - b) <= window:
                    X[ids[a], ids[b]] += 1
    return X


@pytest.mark.parametrize("window", [1, 3, 5])
def test_cooccurrence_equals_brute_force(window):
    sentences = _random_corpus()
    words, counts = E.build_vocab(sentences, min_count=2)
    index = {w: k for k, w in enumerate(words)}
    ids, sids = E.encode(sentences, index)
    X = E.cooccurrence(ids, sids, len(words), window).toarray()
    np.testing.assert_array_equal(X, _brute_cooccurrence(sentences, index, window))
    np.testing.assert_array_equal(X, X.T)


def test_build_vocab_orders_by_count_and_cuts():
    words, counts = E.build_vocab([["b", "a", "a", "c"], ["a", "b", "d"]], min_count=2)
    assert words == ["a", "b"] and counts.tolist() == [3, 2]
    words, _ = E.build_vocab([["b", "a"]], max_size=1)
    assert words == ["a"]  # ties broken by the word


def test_pmi_targets_by_hand():
    sentences = [["a", "b", "c"], ["a", "b"], ["c", "a"]]
    words, counts = E.build_vocab(sentences)
    index = {w: k for k, w in enumerate(words)}
    ids, sids = E.encode(sentences, index)
    X = E.cooccurrence(ids, sids, len(words), window=1)
    i, j, x, pmi = E.pmi_targets(X, counts)
    # pairs within distance 1: a-b, b-c, a-b, c-a: X(a,b)=2, X(b,c)=1, X(a,c)=1; sum X = 8
    # counts a=3, b=2, c=2 (total 7)
    got = {(words[p], words[q]): (xx, v) for p, q, xx, v in zip(i, j, x, pmi)}
    assert got[("a", "b")][0] == 2
    expected = np.log((2 / 8) / ((3 / 7) * (2 / 7)))
    assert abs(got[("a", "b")][1] - expected) < 1e-12
    assert abs(got[("a", "c")][1] - np.log((1 / 8) / ((3 / 7) * (2 / 7)))) < 1e-12
    assert len(got) == 3


def test_glove_weights():
    x = np.array([1.0, 100.0, 1000.0])
    np.testing.assert_allclose(E.glove_weights(x, truncate=False), (x / 100) ** 0.75)
    np.testing.assert_allclose(E.glove_weights(x), [0.01 ** 0.75, 1.0, 1.0])


def _toy_pairs(V=5, d=3, n=12, seed=1):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(V, d))
    i = rng.integers(0, V, n)
    j = (i + rng.integers(1, V, n)) % V
    return v, i, j, rng.normal(size=n), rng.random(n) + 0.1


def test_loss_and_gradient_equal_finite_differences():
    v, i, j, t, w = _toy_pairs()

    def loss_np(vv):  # the library's loss is checked against this one below
        e = (vv[i] * vv[j]).sum(1) - t
        return 0.5 * np.sum(w * e * e)

    grad = ops.convert_to_numpy(E.glove_gradient(ops.convert_to_tensor(v), i, j, t, w))
    h = 1e-6
    fd = np.zeros_like(v)
    for a, b in np.ndindex(*v.shape):
        step = np.zeros_like(v)
        step[a, b] = h
        fd[a, b] = (loss_np(v + step) - loss_np(v - step)) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=1e-7)
    for vv in (v, 2 * v, v[::-1].copy()):
        assert abs(float(E.glove_loss(vv, i, j, t, w)) - loss_np(vv)) < 1e-9


@pytest.mark.tensorflow_only
def test_gradient_equals_autodiff():
    import tensorflow as tf

    v, i, j, t, w = _toy_pairs()
    var = tf.Variable(v)
    with tf.GradientTape() as tape:
        loss = E.glove_loss(var, i, j, t, w)
    auto = tf.convert_to_tensor(tape.gradient(loss, var)).numpy()
    np.testing.assert_allclose(auto, ops.convert_to_numpy(E.glove_gradient(v, i, j, t, w)),
                               atol=1e-12)


def test_adagrad_step_equals_keras_adagrad():
    rng = np.random.default_rng(2)
    v = rng.normal(size=(5, 3)).astype("float32")
    grads = [rng.normal(size=(5, 3)).astype("float32") for _ in range(3)]
    var = keras.Variable(v)
    opt = keras.optimizers.Adagrad(learning_rate=0.1, initial_accumulator_value=1.0,
                                   epsilon=1e-8)
    ours, acc = ops.convert_to_tensor(v), ops.ones((5, 3))
    for g in grads:
        opt.apply_gradients([(ops.convert_to_tensor(g), var)])
        ours, acc = E.adagrad_update(ours, acc, g, 0.1, 1e-8)
    np.testing.assert_allclose(ops.convert_to_numpy(ours), ops.convert_to_numpy(var), atol=1e-6)


def test_fit_recovers_planted_vectors():
    rng = np.random.default_rng(3)
    V, d = 50, 8
    planted = rng.normal(size=(V, d)) / np.sqrt(d)
    i, j = np.triu_indices(V, 1)
    target = (planted[i] * planted[j]).sum(1)
    vec, losses = E.fit_glove(i, j, target, np.ones(len(i)), V, d, epochs=100, batch_size=len(i),
                              learning_rate=0.1, seed=0)
    assert losses[-1] < 1e-3 * losses[0]
    gram = vec.astype(np.float64) @ vec.T
    off = ~np.eye(V, dtype=bool)
    assert np.abs(gram - planted @ planted.T)[off].max() < 0.05


def test_similarity_transform_is_pearson():
    rng = np.random.default_rng(4)
    ctx, a, b = rng.normal(size=(40, 5)), rng.normal(size=5), rng.normal(size=5)
    u = E.similarity_transform(ctx)
    cos = (a @ u) @ (b @ u) / np.linalg.norm(a @ u) / np.linalg.norm(b @ u)
    assert abs(cos - np.corrcoef(ctx @ a, ctx @ b)[0, 1]) < 1e-10


def test_word_vectors_queries_and_contract():
    words = ["a", "b", "c", "d"]
    vec = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
    wv = E.WordVectors(words, vec, np.array([4, 3, 2, 1]))
    assert "a" in wv and "z" not in wv and wv.index["c"] == 2
    assert wv.lookup(["z", "c", "a"]).shape == (2, 2)
    assert wv.most_related("a", 1)[0][0] == "b"
    assert wv.analogy("b", "c", "a", 1)[0][0] in words
    np.testing.assert_allclose(wv.sentence_vector(["a", "c", "zz"]), [1, 1])
    assert wv.keywords(["a", "d", "b"], 1)[0][0] in ("a", "b")
    np.testing.assert_allclose(wv.norms()[0], 1.0)


def test_train_word_vectors_contract():
    sentences = _random_corpus(300, 20, seed=5)
    wv = E.train_word_vectors(sentences, dim=4, window=2, min_count=2, epochs=3, seed=0)
    assert isinstance(wv, E.WordVectors)
    assert wv.vectors.dtype == np.float32 and wv.vectors.shape == (len(wv.words), 4)
    assert wv.counts.dtype == np.int64 and (np.diff(wv.counts) <= 0).all()
    assert len(wv.history) == 3 and wv.history[-1] < wv.history[0]
    again = E.train_word_vectors(sentences, dim=4, window=2, min_count=2, epochs=3, seed=0)
    np.testing.assert_allclose(again.vectors, wv.vectors, atol=1e-6)
