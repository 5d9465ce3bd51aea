"""kexue.layers.crf and kexue.layers.memm against brute force over all K**T paths."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from gradients import grads
from keras import ops
from kexue.layers import CRF, MEMM, SoftmaxTagger
from kexue.layers.crf import (
    PAD_LABEL,
    all_paths,
    brute_force_scores,
    crf_log_norm,
    crf_marginals,
    crf_nll,
    crf_path_score,
    viterbi,
    viterbi_decode,
)
from kexue.layers.memm import memm_logits, memm_nll, memm_sequence_log_prob, memm_viterbi
from scipy.special import log_softmax, logsumexp

K = 4


def random_batch(rng, lengths, k=K, scale=1.5):
    t = max(lengths)
    em = rng.normal(scale=scale, size=(len(lengths), t, k))
    trans = rng.normal(scale=scale, size=(k, k))
    mask = (np.arange(t)[None] < np.array(lengths)[:, None]).astype("float64")
    tags = rng.integers(0, k, size=(len(lengths), t))
    return em, trans, mask, tags


def f64(x):
    return ops.convert_to_tensor(x, dtype="float64")


def memm_brute_log_probs(em, trans):
    """log P_MEMM (left to right) of every path of one sequence, step by step."""
    paths = all_paths(*em.shape)
    out = np.zeros(len(paths))
    for i, p in enumerate(paths):
        lp = log_softmax(em[0])[p[0]]
        for k in range(1, len(p)):
            lp += log_softmax(trans[p[k - 1]] + em[k])[p[k]]
        out[i] = lp
    return paths, out


# ------------------------------------------------------------------------------ CRF


@pytest.mark.parametrize("seed", [0, 1])
def test_log_norm_equals_brute_force_mixed_lengths(seed):
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 3, 4, 5, 6, 7]
    em, trans, mask, _ = random_batch(rng, lengths)
    got = ops.convert_to_numpy(crf_log_norm(f64(em), f64(trans), f64(mask)))
    want = [logsumexp(brute_force_scores(em[i, :n], trans)[1]) for i, n in enumerate(lengths)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    got32 = ops.convert_to_numpy(crf_log_norm(em.astype("float32"), trans.astype("float32"), mask))
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-5)


def test_path_score_equals_loop_and_probabilities_sum_to_one():
    rng = np.random.default_rng(2)
    lengths = [5, 3, 1]
    em, trans, mask, tags = random_batch(rng, lengths)
    got = ops.convert_to_numpy(crf_path_score(f64(em), tags, f64(trans), f64(mask)))
    for i, n in enumerate(lengths):
        want = em[i, range(n), tags[i, :n]].sum() + sum(trans[tags[i, k - 1], tags[i, k]] for k in range(1, n))
        assert got[i] == pytest.approx(want, abs=1e-12)
    for i, n in enumerate(lengths):  # exp(-nll) over all paths sums to 1
        paths = all_paths(n, K)
        padded = np.zeros((len(paths), em.shape[1]), dtype=int)
        padded[:, :n] = paths
        em_rep, mask_rep = (np.repeat(a[i : i + 1], len(paths), axis=0) for a in (em, mask))
        nll = ops.convert_to_numpy(crf_nll(f64(em_rep), padded, f64(trans), f64(mask_rep)))
        assert (nll >= 0).all()
        assert np.exp(-nll).sum() == pytest.approx(1.0, abs=1e-10)


def test_marginals_equal_brute_force_and_the_gradient_of_log_z():
    rng = np.random.default_rng(3)
    lengths = [6, 4, 1]
    em, trans, mask, _ = random_batch(rng, lengths)
    got = ops.convert_to_numpy(crf_marginals(f64(em), f64(trans), f64(mask)))
    d_em, d_trans = grads(lambda e, t: ops.sum(crf_log_norm(e, t, mask)), em, trans)
    np.testing.assert_allclose(got, d_em * mask[..., None], atol=1e-10)
    want_pair = np.zeros((K, K))
    for i, n in enumerate(lengths):
        paths, s = brute_force_scores(em[i, :n], trans)
        p = np.exp(s - logsumexp(s))
        want = np.stack([np.bincount(paths[:, k], weights=p, minlength=K) for k in range(n)])
        np.testing.assert_allclose(got[i, :n], want, atol=1e-10)
        np.testing.assert_allclose(got[i, :n].sum(-1), 1.0, atol=1e-12)
        assert (got[i, n:] == 0).all()
        for k in range(1, n):  # expected transition counts
            np.add.at(want_pair, (paths[:, k - 1], paths[:, k]), p)
    np.testing.assert_allclose(d_trans, want_pair, atol=1e-10)


@pytest.mark.tensorflow_only
def test_traced_with_unknown_batch_and_length():
    """Inside a tf.function whose time axis is unknown (fit, then batches of other lengths)."""
    rng = np.random.default_rng(14)
    em, trans, mask, tags = random_batch(rng, [5, 3])
    spec = tf.TensorSpec((None, None, K), tf.float64)

    @tf.function(input_signature=[spec, tf.TensorSpec((None, None), tf.float64)])
    def both(e, m):
        return crf_log_norm(e, trans, m), crf_marginals(e, trans, m)

    log_z, marg = both(em, mask)
    np.testing.assert_allclose(log_z.numpy(), ops.convert_to_numpy(crf_log_norm(em, trans, mask)), atol=1e-12)
    np.testing.assert_allclose(marg.numpy(), ops.convert_to_numpy(crf_marginals(em, trans, mask)), atol=1e-12)
    head = CRF(K)
    model = tagger(head)
    model.compile(optimizer="adam", loss=head.loss)
    for width in (4, 7, 2):  # train_on_batch at new lengths retraces with relaxed shapes
        x = rng.integers(1, 20, (3, width))
        y = rng.integers(0, K, (3, width))
        assert np.isfinite(model.train_on_batch(x, y))


def test_padding_changes_nothing():
    rng = np.random.default_rng(4)
    em, trans, mask, tags = random_batch(rng, [5, 5])
    pad = rng.normal(size=(2, 3, K)) * 100  # garbage in the padding
    em_p = np.concatenate([em, pad], axis=1)
    mask_p = np.concatenate([mask, np.zeros((2, 3))], axis=1)
    tags_p = np.concatenate([tags, rng.integers(0, K, (2, 3))], axis=1)
    for fn in (lambda e, m, t: crf_log_norm(e, trans, m), lambda e, m, t: crf_path_score(e, t, trans, m)):
        np.testing.assert_allclose(ops.convert_to_numpy(fn(em_p, mask_p, tags_p)),
                                   ops.convert_to_numpy(fn(em, mask, tags)), atol=1e-6)
    np.testing.assert_allclose(
        ops.convert_to_numpy(crf_marginals(f64(em_p), f64(trans), f64(mask_p)))[:, :5],
        ops.convert_to_numpy(crf_marginals(f64(em), f64(trans), f64(mask))), atol=1e-10)


@pytest.mark.parametrize("constrained", [False, True])
def test_viterbi_equals_brute_force_argmax(constrained):
    rng = np.random.default_rng(5)
    lengths = [1, 2, 4, 7, 6]
    em, trans, _, _ = random_batch(rng, lengths)
    start, end = ({0, 1}, {0, 3}) if constrained else (None, None)
    got = viterbi_decode(em, trans, lengths, allowed_start=start, allowed_end=end)
    for i, n in enumerate(lengths):
        paths, s = brute_force_scores(em[i, :n], trans)
        if constrained:
            ok = np.isin(paths[:, 0], list(start)) & np.isin(paths[:, -1], list(end))
            s = np.where(ok, s, -np.inf)
        np.testing.assert_array_equal(got[i], paths[np.argmax(s)])
    single = viterbi_decode(em[3], trans)
    np.testing.assert_array_equal(single, got[3])


def test_viterbi_with_position_dependent_edges():
    rng = np.random.default_rng(6)
    unary = rng.normal(size=(1, 5, 3))
    pair = rng.normal(size=(1, 5, 3, 3))
    (path,), (score,) = viterbi(unary, pair)
    paths = all_paths(5, 3)
    s = unary[0, np.arange(5), paths].sum(1) + sum(pair[0, k, paths[:, k - 1], paths[:, k]] for k in range(1, 5))
    np.testing.assert_array_equal(path, paths[np.argmax(s)])
    assert score == pytest.approx(s.max())


def one_sequence_viterbi(unary, edge):
    """Textbook Viterbi of one sequence, a loop over time and tags; ties to the lowest tag."""
    t, k = unary.shape
    delta, back = unary[0].copy(), np.zeros((t, k), dtype=int)
    for pos in range(1, t):
        step = edge[pos] if edge.ndim == 3 else edge
        for j in range(k):
            back[pos, j] = int(np.argmax(delta + step[:, j]))
        delta = np.array([delta[back[pos, j]] + step[back[pos, j], j] for j in range(k)])
        delta = delta + unary[pos]
    path = [int(np.argmax(delta))]
    for pos in range(t - 1, 0, -1):
        path.append(back[pos, path[-1]])
    return path[::-1], delta.max()


@pytest.mark.parametrize("shared", [True, False])
def test_viterbi_equals_a_loop_over_sequences_with_ties_and_padding(shared):
    # integer scores make ties common; -inf entries are forbidden tags or pairs
    rng = np.random.default_rng(7)
    lengths = np.array([1, 6, 3, 6, 2, 5])
    unary = rng.integers(-2, 3, size=(6, 6, 3)).astype("float64")
    unary[rng.random(unary.shape) < 0.15] = -np.inf
    pair = rng.integers(-1, 2, size=(3, 3) if shared else (6, 6, 3, 3)).astype("float64")
    pair[rng.random(pair.shape) < 0.15] = -np.inf
    paths, scores = viterbi(unary, pair, lengths)
    for i, n in enumerate(lengths):
        want, best = one_sequence_viterbi(unary[i, :n], pair if shared else pair[i, :n])
        np.testing.assert_array_equal(paths[i], want)
        assert scores[i] == best


def test_clear_errors_on_mismatched_shapes_and_masks():
    em = np.zeros((2, 5, K))
    with pytest.raises(ValueError, match="trans must have shape"):
        crf_log_norm(em, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="emissions must have shape"):
        crf_log_norm(np.zeros((5, K)), np.zeros((K, K)))
    with pytest.raises(ValueError, match="mask must have shape"):
        crf_log_norm(em, np.zeros((K, K)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="tags must have shape"):
        crf_path_score(em, np.zeros((2, 6), int), np.zeros((K, K)))
    with pytest.raises(ValueError, match="prefix mask"):
        crf_log_norm(em, np.zeros((K, K)), np.array([[1, 0, 1, 0, 0], [1, 1, 1, 1, 1.0]]))
    with pytest.raises(ValueError, match="at least one real position"):
        crf_log_norm(em, np.zeros((K, K)), np.array([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1.0]]))
    with pytest.raises(ValueError, match="lengths must be"):
        viterbi_decode(em, np.zeros((K, K)), lengths=[0, 5])
    with pytest.raises(ValueError, match="Dense\\(4\\)"):
        CRF(K)(keras.Input((None, 7)))


# ----------------------------------------------------------------------------- MEMM


@pytest.mark.parametrize("length", [1, 2, 3, 5, 6])
def test_memm_is_a_distribution_in_both_directions(length):
    rng = np.random.default_rng(length)
    em, trans, _, _ = random_batch(rng, [length])
    paths = all_paths(length, K)
    for reverse in (False, True):
        lp = ops.convert_to_numpy(memm_sequence_log_prob(
            f64(np.repeat(em, len(paths), 0)), paths, f64(trans), reverse=reverse))
        assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-10)
        if not reverse:
            np.testing.assert_allclose(lp, memm_brute_log_probs(em[0], trans)[1], atol=1e-10)


def test_memm_crf_identity_for_every_path():
    """log P_MEMM - log P_CRF = log Z - sum_k log Z_k(y_{k-1}), path by path."""
    rng = np.random.default_rng(7)
    em, trans, _, _ = random_batch(rng, [5])
    paths = all_paths(5, K)
    em_all = f64(np.repeat(em, len(paths), 0))
    lp_memm = ops.convert_to_numpy(memm_sequence_log_prob(em_all, paths, f64(trans)))
    lp_crf = -ops.convert_to_numpy(crf_nll(em_all, paths, f64(trans)))
    log_z = ops.convert_to_numpy(crf_log_norm(em_all, f64(trans)))
    local = logsumexp(ops.convert_to_numpy(memm_logits(em_all, paths, f64(trans))), axis=-1).sum(-1)
    np.testing.assert_allclose(lp_memm - lp_crf, log_z - local, atol=1e-8)


def test_memm_nll_vectorised_equals_loop_and_padding():
    rng = np.random.default_rng(8)
    lengths = [6, 3, 1]
    em, trans, mask, tags = random_batch(rng, lengths)
    for bi in (False, True):
        got = ops.convert_to_numpy(memm_nll(f64(em), tags, f64(trans), f64(mask), bidirectional=bi))
        for i, n in enumerate(lengths):
            e, y = em[i, :n], tags[i, :n]
            fwd = -log_softmax(e[0])[y[0]] - sum(log_softmax(trans[y[k - 1]] + e[k])[y[k]] for k in range(1, n))
            bwd = -log_softmax(e[n - 1])[y[n - 1]] - sum(
                log_softmax(trans[:, y[k + 1]] + e[k])[y[k]] for k in range(n - 1))
            assert got[i] == pytest.approx(0.5 * (fwd + bwd) if bi else fwd, abs=1e-10)
        mean = ops.convert_to_numpy(memm_nll(f64(em), tags, f64(trans), f64(mask), bi, reduction="mean"))
        np.testing.assert_allclose(mean, got / np.array(lengths), atol=1e-12)


def test_backward_memm_is_forward_memm_on_reversed_input_with_transposed_matrix():
    rng = np.random.default_rng(9)
    em, trans, _, tags = random_batch(rng, [6])
    bwd = memm_sequence_log_prob(f64(em), tags, f64(trans), reverse=True)
    fwd_rev = memm_sequence_log_prob(f64(em[:, ::-1].copy()), tags[:, ::-1].copy(), f64(trans.T))
    np.testing.assert_allclose(ops.convert_to_numpy(bwd), ops.convert_to_numpy(fwd_rev), atol=1e-12)


def test_low_rank_transitions_equal_the_dense_product():
    rng = np.random.default_rng(10)
    em, _, mask, tags = random_batch(rng, [5, 2])
    left, right = rng.normal(size=(K, 2)), rng.normal(size=(K, 2))
    for bi in (False, True):
        a = memm_nll(f64(em), tags, (f64(left), f64(right)), f64(mask), bidirectional=bi)
        b = memm_nll(f64(em), tags, f64(left @ right.T), f64(mask), bidirectional=bi)
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-12)
    with pytest.raises(ValueError, match="trans R must have shape"):
        memm_logits(f64(em), tags, (f64(left), f64(right[:, :1])))


def test_memm_viterbi_exact_and_crf_style():
    rng = np.random.default_rng(11)
    lengths = [5, 3]
    em, trans, _, _ = random_batch(rng, lengths)
    exact = memm_viterbi(em, trans, lengths, exact=True)
    raw = memm_viterbi(em, trans, lengths, exact=False)
    for i, n in enumerate(lengths):
        paths, lp = memm_brute_log_probs(em[i, :n], trans)
        np.testing.assert_array_equal(exact[i], paths[np.argmax(lp)])
        paths, s = brute_force_scores(em[i, :n], trans)
        np.testing.assert_array_equal(raw[i], paths[np.argmax(s)])


# ---------------------------------------------------------------------------- layers


def tagger(head, t=None):
    inp = keras.Input((t,), dtype="int32")
    x = keras.layers.Embedding(20, 8)(inp)
    x = keras.layers.Dense(K)(x)
    return keras.Model(inp, head(x))


@pytest.mark.parametrize("make", [lambda: CRF(K, lr_multiplier=10), lambda: MEMM(K, lr_multiplier=3), lambda: MEMM(K, bidirectional=False, rank=2),
                                  lambda: SoftmaxTagger(K)])
def test_heads_round_trip_through_keras_files(tmp_path, make):
    keras.utils.set_random_seed(0)
    head = make()
    model = tagger(head)
    for w in head.weights:
        w.assign(np.random.default_rng(0).normal(size=w.shape))
    x = np.array([[3, 4, 5, 0], [6, 7, 0, 0]])
    y = np.array([[0, 1, 3, PAD_LABEL], [1, 3, PAD_LABEL, PAD_LABEL]])
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    em, em2 = model.predict(x, verbose=0), again.predict(x, verbose=0)
    np.testing.assert_allclose(em, em2)
    head2 = again.layers[-1]
    assert type(head2) is type(head) and head2.get_config() == head.get_config()
    np.testing.assert_allclose(ops.convert_to_numpy(head.loss(y, em)), ops.convert_to_numpy(head2.loss(y, em2)),
                               rtol=1e-6)
    for a, b in zip(head.decode(em, [3, 2]), head2.decode(em2, [3, 2])):
        np.testing.assert_array_equal(a, b)


def test_crf_decode_reads_the_transitions_as_they_are_now():
    # decode, change the weight (set_transitions, then an in-place update as an optimizer makes
    # it), decode again: each decode must follow the current transitions
    rng = np.random.default_rng(13)
    em = rng.normal(size=(3, 5, K))
    head = CRF(K, lr_multiplier=4.0)
    head.build((None, None, K))
    for trans in (rng.normal(scale=3, size=(K, K)), rng.normal(scale=3, size=(K, K))):
        head.set_transitions(trans)
        for got, want in zip(head.decode(em), viterbi_decode(em, trans)):
            np.testing.assert_array_equal(got, want)
    step = rng.normal(scale=3, size=(K, K))
    head._trans.assign_add(step.astype("float32"))
    now = ops.convert_to_numpy(head.trans).astype("float64")
    np.testing.assert_allclose(now, trans + 4.0 * step, rtol=1e-5)
    for got, want in zip(head.decode(em), viterbi_decode(em, now)):
        np.testing.assert_array_equal(got, want)


def test_layer_loss_uses_pad_label_as_mask():
    rng = np.random.default_rng(12)
    em, trans, mask, tags = random_batch(rng, [4, 2])
    crf = CRF(K)
    crf.build((None, None, K))
    crf.set_transitions(trans)
    y = np.where(mask > 0, tags, PAD_LABEL).astype("float32")  # Keras hands labels over as floats
    got = ops.convert_to_numpy(crf.label_loss(y, em.astype("float32")))
    want = ops.convert_to_numpy(crf_nll(em, tags, trans, mask))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # head.loss, the Keras loss to compile with, is the batch mean of the same values
    np.testing.assert_allclose(ops.convert_to_numpy(crf.loss(y, em.astype("float32"))), want.mean(),
                               rtol=1e-5)
    assert crf.loss is crf.loss and crf.loss.head is crf


def test_crf_training_learns_forbidden_transitions():
    """Labels drawn from a chain with forbidden moves: the CRF learns them most negative."""
    rng = np.random.default_rng(13)
    allowed = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0]], float)
    n, t = 600, 12
    y = np.zeros((n, t), int)
    y[:, 0] = rng.choice([0, 1], size=n)
    for k in range(1, t):
        p = allowed[y[:, k - 1]] / allowed[y[:, k - 1]].sum(1, keepdims=True)
        y[:, k] = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    # tokens: the tag with probability 0.6, else a random one of 4 -> ambiguous emissions
    x = np.where(rng.random((n, t)) < 0.6, y, rng.integers(0, K, (n, t))) + 1
    keras.utils.set_random_seed(0)
    head = CRF(K)
    model = tagger(head)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=head.loss)
    model.fit(x, y, epochs=15, batch_size=100, verbose=0)
    g = ops.convert_to_numpy(head.trans)
    assert g[allowed == 0].max() < g[allowed == 1].min()
