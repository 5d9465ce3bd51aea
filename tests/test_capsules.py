"""kexue.capsules against plain NumPy loops: squash, routing, the layer, loss, pair test."""

import keras
import numpy as np
import pytest
from gradients import grads
from kexue import runtime
from kexue.capsules import (
    ROUTINGS,
    Capsule,
    CapsuleLength,
    MarginLoss,
    capsule_classifier,
    cnn_gap_classifier,
    lloyd_kmeans,
    make_pair_testset,
    margin_loss,
    pair_accuracy,
    route,
    shared_trunk_classifier,
    smooth_max,
    smoothed_kmeans_loss,
    soft_assign,
    soft_kmeans,
    squash,
)
from scipy.special import logsumexp

RNG = np.random.default_rng(0)


# -- references: plain loops ------------------------------------------------------------------


def squash_ref(x, k):
    n = np.sqrt((x**2).sum())
    return n**2 / (k + n**2) * x / n


def route_ref(u_hat, iterations, mode, squash_k):
    """Triple loop over (t, j, i) for one batch entry u_hat of shape (k, n, d)."""
    k, n, d = u_hat.shape
    b = np.zeros((n, k))
    c = np.full((n, k), 1.0 / k)
    for t in range(iterations):
        if t > 0:
            for i in range(n):
                e = np.exp(b[i] - b[i].max())
                c[i] = e / e.sum()
        s = np.zeros((k, d))
        for j in range(k):
            for i in range(n):
                s[j] += c[i, j] * u_hat[j, i]
        if t == iterations - 1:
            return np.stack([squash_ref(s[j], squash_k) for j in range(k)]), c
        for j in range(k):
            if mode == "su2018b":
                centre = s[j] / np.sqrt((s[j] ** 2).sum())
            else:
                centre = squash_ref(s[j], squash_k)
            for i in range(n):
                dot = float(u_hat[j, i] @ centre)
                b[i, j] = b[i, j] + dot if mode == "hinton" else dot


# -- squash -----------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1.0, 0.5])
def test_squash_norm_and_direction(k):
    x = RNG.normal(size=(7, 5, 3)) * RNG.uniform(0.01, 10, size=(7, 5, 1))
    y = np.asarray(squash(x, k=k, eps=1e-30))
    nx, ny = np.linalg.norm(x, axis=-1), np.linalg.norm(y, axis=-1)
    np.testing.assert_allclose(ny, nx**2 / (k + nx**2), rtol=1e-6)
    np.testing.assert_allclose(y / ny[..., None], x / nx[..., None], rtol=1e-6, atol=1e-12)
    assert ny.max() < 1


def test_squash_axis_and_zero_gradient():
    x = RNG.normal(size=(4, 6))
    np.testing.assert_allclose(np.asarray(squash(x, axis=0)).T, np.asarray(squash(x.T)),
                               rtol=1e-6)
    (g,) = grads(lambda z: keras.ops.sum(squash(z)), np.zeros((2, 3), "float32"))
    assert np.isfinite(g).all()


def test_squash_bad_k():
    with pytest.raises(ValueError, match="k must be a positive number"):
        squash(np.ones(3), k=0)


# -- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ROUTINGS)
@pytest.mark.parametrize("iterations", [1, 2, 3, 5])
def test_route_matches_loop_reference(mode, iterations):
    u_hat = RNG.normal(size=(2, 3, 5, 4))
    v, c = route(u_hat, iterations, mode, squash_k=0.5, return_coupling=True)
    for b in range(2):
        v_ref, c_ref = route_ref(u_hat[b], iterations, mode, 0.5)
        np.testing.assert_allclose(np.asarray(v)[b], v_ref, atol=1e-5)
        np.testing.assert_allclose(np.asarray(c)[b], c_ref, atol=1e-5)
    np.testing.assert_allclose(np.asarray(c).sum(-1), 1.0, atol=1e-6)


def test_one_pass_is_squashed_uniform_mean_and_hinton_equals_su2018_up_to_two():
    u_hat = RNG.normal(size=(2, 3, 5, 4))
    expect = np.asarray(squash(u_hat.sum(2) / 3, k=0.5))
    for mode in ROUTINGS:
        np.testing.assert_allclose(np.asarray(route(u_hat, 1, mode)), expect, atol=1e-6)
    for r in (1, 2):
        np.testing.assert_allclose(np.asarray(route(u_hat, r, "hinton")),
                                   np.asarray(route(u_hat, r, "su2018")), atol=1e-6)
    diff = np.abs(np.asarray(route(u_hat, 3, "hinton")) - np.asarray(route(u_hat, 3, "su2018")))
    assert diff.max() > 1e-4


def test_route_bad_input():
    with pytest.raises(ValueError, match="u_hat must have shape"):
        route(np.ones((2, 3, 4)), 3)
    with pytest.raises(ValueError, match="routing mode must be one of"):
        route(np.ones((1, 2, 3, 4)), 3, mode="em")
    with pytest.raises(ValueError, match="iterations must be an integer >= 1"):
        route(np.ones((1, 2, 3, 4)), 0)


# -- the Capsule layer ------------------------------------------------------------------------


def test_capsule_shared_is_permutation_invariant_and_takes_any_n():
    runtime.seed(0)
    layer = Capsule(4, 6, routings=3)
    x = RNG.normal(size=(3, 9, 5)).astype("float32")
    perm = RNG.permutation(9)
    y = np.asarray(layer(x))
    assert y.shape == (3, 4, 6)
    np.testing.assert_allclose(np.asarray(layer(x[:, perm])), y, atol=1e-6)
    assert np.asarray(layer(x[:, :4])).shape == (3, 4, 6)


@pytest.mark.parametrize("routing", ROUTINGS)
def test_capsule_votes_and_routing_match_reference(routing):
    runtime.seed(1)
    layer = Capsule(3, 4, routings=3, routing=routing, squash_k=0.5)
    x = RNG.normal(size=(2, 5, 6)).astype("float32")
    y = np.asarray(layer(x))
    w = np.asarray(layer.kernel).reshape(6, 3, 4)
    u_hat = np.einsum("bnd,dkm->bknm", x.astype("float64"), w)
    for b in range(2):
        np.testing.assert_allclose(y[b], route_ref(u_hat[b], 3, routing, 0.5)[0], atol=1e-5)


def test_unshared_with_equal_matrices_is_shared():
    runtime.seed(2)
    shared = Capsule(3, 4, share_weights=True)
    unshared = Capsule(3, 4, share_weights=False)
    x = RNG.normal(size=(2, 7, 5)).astype("float32")
    shared(x)
    unshared(x)
    unshared.kernel.assign(np.repeat(np.asarray(shared.kernel)[None], 7, axis=0))
    np.testing.assert_allclose(np.asarray(unshared(x)), np.asarray(shared(x)), atol=1e-6)
    assert unshared.kernel.shape == (7, 5, 12)
    with pytest.raises(ValueError, match="built for 7 input capsules"):
        unshared(x[:, :4])


def test_capsule_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="num_capsule must be an integer >= 1"):
        Capsule(0, 4)
    with pytest.raises(ValueError, match="routing mode must be one of"):
        Capsule(3, 4, routing="dynamic")
    with pytest.raises(TypeError, match="share_weights must be a bool"):
        Capsule(3, 4, share_weights=1)
    with pytest.raises(ValueError, match="inputs of shape"):
        Capsule(3, 4)(np.ones((2, 5), "float32"))
    with pytest.raises(ValueError, match="fixed number of input capsules"):
        Capsule(3, 4, share_weights=False).build((None, None, 5))


def test_keras_round_trip(tmp_path):
    runtime.seed(3)
    model = capsule_classifier((4, 4, 8, 8), routing="su2018b", squash_k=1.0)
    model.compile(optimizer="adam", loss=MarginLoss(lam=0.5))
    x = RNG.uniform(size=(4, 28, 28, 1)).astype("float32")
    path = tmp_path / "capsule.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-6)
    layer = loaded.get_layer("capsule_head").get_layer("capsule")
    assert (layer.routing, layer.squash_k, layer.routings) == ("su2018b", 1.0, 3)
    assert loaded.loss.lam == 0.5
    # variable input size: a 56x28 pair goes through the same model
    assert loaded.predict(np.zeros((2, 56, 28, 1), "float32"), verbose=0).shape == (2, 10)


def test_parameter_counts_at_the_article_width():
    assert cnn_gap_classifier().count_params() == 276_810
    assert capsule_classifier().count_params() == 279_488


def test_capsule_length():
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(CapsuleLength()(x)), np.linalg.norm(x, axis=-1),
                               rtol=1e-5)


# -- margin loss ------------------------------------------------------------------------------


def test_margin_loss_against_loop():
    y = np.eye(5)[RNG.integers(0, 5, 8)]
    p = RNG.uniform(size=(8, 5))
    ref = np.zeros(8)
    for b in range(8):
        for c in range(5):
            t = y[b, c]
            ref[b] += t * max(0, 0.9 - p[b, c]) ** 2 + 0.25 * (1 - t) * max(0, p[b, c] - 0.1) ** 2
    np.testing.assert_allclose(np.asarray(margin_loss(y, p)), ref, rtol=1e-6)
    np.testing.assert_allclose(float(MarginLoss()(y, p)), ref.mean(), rtol=1e-6)
    assert MarginLoss.from_config(MarginLoss(lam=0.5).get_config()).lam == 0.5
    with pytest.raises(ValueError, match="m_minus < m_plus"):
        MarginLoss(m_plus=0.1, m_minus=0.9)


# -- the pair test ----------------------------------------------------------------------------


def test_make_pair_testset():
    x = RNG.integers(0, 255, size=(200, 28, 28)).astype("uint8")
    y = RNG.integers(0, 10, 200)
    images, pairs = make_pair_testset(x, y, np.random.default_rng(0))
    assert images.shape[1:] == (56, 28, 1) and images.dtype == np.uint8
    assert len(images) == len(pairs) and 150 < len(pairs) < 200
    assert (pairs[:, 0] < pairs[:, 1]).all()
    # each half is a test image with the label in the pair
    for img, pair in zip(images[:20], pairs[:20]):
        top = np.flatnonzero((x == img[:28, :, 0]).all(axis=(1, 2)))
        bottom = np.flatnonzero((x == img[28:, :, 0]).all(axis=(1, 2)))
        assert {y[top[0]], y[bottom[0]]} == set(pair)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        make_pair_testset(x, y, 0)
    with pytest.raises(ValueError, match="y must have shape"):
        make_pair_testset(x, y[:10], np.random.default_rng(0))


def test_pair_accuracy():
    scores = np.array([[0.9, 0.8, 0.1], [0.9, 0.4, 0.1], [0.1, 0.9, 0.8], [0.9, 0.1, 0.8]])
    pairs = np.array([[0, 1], [0, 1], [0, 1], [0, 1]])
    assert pair_accuracy(scores, pairs) == (0.5, 0.25)
    with pytest.raises(ValueError, match="pairs must have shape"):
        pair_accuracy(scores, pairs[:2])


# -- soft K-Means -----------------------------------------------------------------------------


def test_smooth_max_bound():
    x = RNG.normal(size=(6, 20))
    for K in (1.0, 10.0, 100.0):
        sm = np.asarray(smooth_max(x, K))
        np.testing.assert_allclose(sm, logsumexp(K * x, axis=-1) / K, rtol=1e-10)
        gap = sm - x.max(-1)
        assert (gap >= -1e-12).all() and (gap <= np.log(20) / K + 1e-12).all()


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    U = np.concatenate([c + 0.7 * rng.normal(size=(100, 2)) for c in centres])
    return U, U[rng.choice(len(U), 3, replace=False)]


def test_soft_kmeans_euclid_is_weighted_mean_and_tends_to_lloyd():
    U, V0 = _blobs()
    V1, _ = soft_kmeans(U, V0, K=1.0, iters=1)
    c = np.asarray(soft_assign(U, V0, 1.0))
    np.testing.assert_allclose(np.asarray(V1), (c.T @ U) / c.sum(0)[:, None], rtol=1e-10)
    V, _ = soft_kmeans(U, V0, K=100.0, iters=100)
    V_lloyd, _ = lloyd_kmeans(U, V0, iters=100)
    np.testing.assert_allclose(np.asarray(V), V_lloyd, atol=1e-8)


def test_normalized_dot_gradient_and_stationarity():
    U = RNG.normal(size=(30, 4))
    V = RNG.normal(size=(3, 4))
    c = np.asarray(soft_assign(U, V, 2.0, "normalized_dot"))
    (grad,) = grads(lambda v: smoothed_kmeans_loss(U, v, 2.0, "normalized_dot"), V)
    ref = np.zeros((3, 4))
    for j in range(3):
        v = V[j]
        vh = v / np.linalg.norm(v)
        proj = np.eye(4) - np.outer(vh, vh)
        for i in range(30):
            ref[j] += c[i, j] * (-(proj @ U[i]) / np.linalg.norm(v))
    np.testing.assert_allclose(grad, ref, atol=1e-6)
    Vc, _ = soft_kmeans(U, V, 2.0, iters=300, metric="normalized_dot")
    (g,) = grads(lambda v: smoothed_kmeans_loss(U, v, 2.0, "normalized_dot"), np.asarray(Vc))
    assert np.linalg.norm(g) < 1e-6


def test_kmeans_bad_input():
    with pytest.raises(ValueError, match="metric must be"):
        soft_assign(np.ones((3, 2)), np.ones((2, 2)), metric="cosine")
    with pytest.raises(ValueError, match="same d"):
        soft_kmeans(np.ones((3, 2)), np.ones((2, 3)))


def test_shared_trunk_classifier():
    model = shared_trunk_classifier((4, 4, 8, 8), heads=("cnn", "hinton", "su2018b"))
    out = model.predict(np.zeros((3, 28, 28, 1), "float32"), verbose=0)
    assert sorted(out) == ["cnn", "hinton", "su2018b"]
    assert all(v.shape == (3, 10) for v in out.values())
    trunk = model.get_layer("trunk").count_params()
    assert model.count_params() == trunk + sum(
        model.get_layer(h).count_params() for h in ("cnn", "hinton", "su2018b"))
    with pytest.raises(ValueError, match="each head must be"):
        shared_trunk_classifier(heads=("cnn", "max"))
