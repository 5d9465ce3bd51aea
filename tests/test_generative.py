"""kexue.generative: the shared sample scores (Fréchet distance against scipy's matrix square
root and the closed form for commuting covariances, class statistics, ring coverage against
brute force), the divergences, GAN training, denoisers and Langevin samplers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from kexue.generative import evaluation

# ---- evaluation


def _random_cov(rng, d):
    a = rng.standard_normal((d, d + 2))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    for d in (1, 3, 12):
        m1, m2 = rng.standard_normal(d), rng.standard_normal(d)
        s1, s2 = _random_cov(rng, d), _random_cov(rng, d)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        direct = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean))
        assert evaluation.frechet_distance(m1, s1, m2, s2) == pytest.approx(direct, rel=1e-8,
                                                                             abs=1e-9)


def test_frechet_distance_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a, b = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 5)
    m1, m2 = rng.standard_normal(5), rng.standard_normal(5)
    # Covariances with the same eigenvectors: W2^2 = |m1-m2|^2 + sum (sqrt(a) - sqrt(b))^2.
    s1, s2 = (q * a) @ q.T, (q * b) @ q.T
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert evaluation.frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-10)
    assert evaluation.frechet_distance(m1, s1, m1, s1) == pytest.approx(0, abs=1e-10)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2 in standard deviations.
    assert evaluation.frechet_distance([0.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(2.0)


def test_frechet_distance_from_features_fits_mean_and_unbiased_covariance():
    rng = np.random.default_rng(2)
    f1 = rng.standard_normal((300, 4))
    f2 = rng.standard_normal((200, 4)) * 2 + 1
    expected = evaluation.frechet_distance(f1.mean(0), np.cov(f1.T), f2.mean(0), np.cov(f2.T))
    assert evaluation.frechet_distance_from_features(f1, f2) == pytest.approx(expected)
    # Large samples of N(0, I) and N(1, 4I) in 4-D: 4 * 1 + 4 * (2 - 1)^2 = 8.
    big1, big2 = rng.standard_normal((200000, 4)), rng.standard_normal((200000, 4)) * 2 + 1
    assert evaluation.frechet_distance_from_features(big1, big2) == pytest.approx(8, rel=0.02)


def test_class_statistics():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(evaluation.class_histogram(probs), [0.5, 0.25, 0.25])
    expected = 0.5 * np.log(1.5) + 2 * 0.25 * np.log(0.75)
    assert evaluation.kl_to_uniform(probs) == pytest.approx(expected)
    assert evaluation.mean_max_probability(probs) == pytest.approx((0.9 + 0.7 + 0.6 + 0.8) / 4)
    assert evaluation.kl_to_uniform(np.eye(4)) == pytest.approx(0.0)
    assert evaluation.kl_to_uniform(np.tile([1.0, 0, 0, 0], (5, 1))) == pytest.approx(np.log(4))


def test_gaussian_ring_and_coverage_against_brute_force():
    x = evaluation.gaussian_ring(4000, modes=8, radius=2.0, std=0.02, seed=3)
    assert x.shape == (4000, 2) and x.dtype == np.float32
    np.testing.assert_array_equal(x, evaluation.gaussian_ring(4000, seed=3))
    cov = evaluation.ring_coverage(x)
    assert cov["modes_covered"] == 8 and cov["high_quality"] > 0.98
    assert cov["kl_to_uniform"] < 0.01
    # Drop three modes and add far-away points, then count by brute force.
    centres = evaluation.ring_centres(8, 2.0)
    keep = np.array([min(range(8), key=lambda k: np.sum((p - centres[k]) ** 2)) >= 3 for p in x])
    y = np.concatenate([x[keep], np.full((100, 2), 5.0, dtype="float32")])
    cov = evaluation.ring_coverage(y)
    counts = np.zeros(8, int)
    good = 0
    for p in y:
        dists = [np.linalg.norm(p - c) for c in centres]
        k = int(np.argmin(dists))
        if dists[k] <= 0.06:
            counts[k] += 1
            good += 1
    np.testing.assert_array_equal(cov["mode_counts"], counts)
    assert cov["high_quality"] == pytest.approx(good / len(y))
    assert cov["modes_covered"] == 5
    none = evaluation.ring_coverage(np.zeros((10, 2)))
    assert none["modes_covered"] == 0 and none["kl_to_uniform"] == pytest.approx(np.log(8))


def test_scorer_on_a_small_classifier():
    scorer = evaluation.train_image_classifier(num_train=3000, epochs=2, seed=0)
    assert scorer.test_accuracy > 0.85
    from kexue import data

    (x, y), _ = data.load_mnist()
    real = x[:300].astype("float32") / 255
    other = x[300:600].astype("float32") / 255
    same = scorer.score(other, reference=real)
    assert same["fd"] >= 0 and same["kl_to_uniform"] < 0.1
    assert same["class_histogram"].shape == (10,)
    # A single repeated digit: no coverage, and far from the real features.
    ones = np.repeat(x[y == 1][:1].astype("float32") / 255, 300, axis=0)
    single = scorer.score(ones, reference=scorer.reference_stats(real))
    assert single["kl_to_uniform"] == pytest.approx(np.log(10))
    assert single["fd"] > 5 * same["fd"]
    # The three input layouts agree.
    p = scorer.probabilities(real[:20])
    np.testing.assert_allclose(scorer.probabilities(real[:20, :, :, None]), p, rtol=1e-6)
    np.testing.assert_allclose(scorer.probabilities(real[:20].reshape(20, 784)), p, rtol=1e-6)
    assert scorer.features(real[:5]).shape == (5, 128)


# ---- divergences

import math  # noqa: E402

import keras  # noqa: E402
from kexue.generative import divergences  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402
from scipy.stats import norm  # noqa: E402


def _numeric_conjugate(row, t):
    """sup_{u > 0} t u - f(u), by bounded scalar maximisation over s = log u."""
    res = minimize_scalar(lambda s: -(t * math.exp(s) - float(row.f(math.exp(s)))),
                          bounds=(-25.0, 12.0), method="bounded", options={"xatol": 1e-12})
    return -res.fun


@pytest.mark.parametrize("name", list(divergences.F_DIVERGENCES))
def test_conjugate_matches_numerical_maximisation(name):
    row = divergences.F_DIVERGENCES[name]
    lo, hi = max(row.domain[0], -3.0), min(row.domain[1], 3.0)
    for t in np.linspace(lo, hi, 9)[1:-1]:
        assert float(row.conjugate(t)) == pytest.approx(_numeric_conjugate(row, t), abs=1e-8)


@pytest.mark.parametrize("name", list(divergences.F_DIVERGENCES))
def test_activation_lands_in_the_domain_and_composition_is_closed_form(name):
    row = divergences.F_DIVERGENCES[name]
    v = np.linspace(-4.0, 4.0, 17)
    a = keras.ops.convert_to_numpy(row.activation(keras.ops.convert_to_tensor(v, "float64")))
    lo, hi = row.domain
    assert np.all((a >= lo) & (a <= hi))
    composed = keras.ops.convert_to_numpy(
        row.conjugate_of_activation(keras.ops.convert_to_tensor(v, "float64")))
    np.testing.assert_allclose(composed, row.conjugate(a), rtol=1e-9, atol=1e-9)
    assert float(row.f(1.0)) == pytest.approx(0.0, abs=1e-15)  # f(1) = 0


def test_gaussian_divergences_match_quadrature_and_known_values():
    known = {  # P = N(0, 1), Q = N(1, 1) and Q = N(1, 1.5^2)
        "total_variation": (0.3829, 0.3461), "kl": (0.5, 0.3499), "reverse_kl": (0.5, 0.7195),
        "squared_hellinger": (0.2350, 0.2207), "jeffrey": (1.0, 1.0694),
        "jensen_shannon": (0.1114, 0.0993), "pearson": (math.e - 1, 0.6004),
        "neyman": (math.e - 1, math.inf)}
    for name, values in known.items():
        for sq, value in zip((1.0, 1.5), values):
            got = divergences.gaussian_f_divergence(name, 0.0, 1.0, 1.0, sq)
            if math.isinf(value):
                assert math.isinf(got)
                continue
            assert got == pytest.approx(value, abs=1e-4)
            quad = divergences.f_divergence_quadrature(
                name, norm(0, 1).logpdf, norm(1, sq).logpdf, -25, 25, log=True)
            assert quad == pytest.approx(got, rel=1e-6, abs=1e-8)


def test_bound_at_the_optimal_critic_equals_the_divergence():
    rng = np.random.default_rng(0)
    xp, xq = rng.normal(0, 1, 200_000), rng.normal(1, 1, 200_000)

    def ratio(x):
        return np.exp(norm(0, 1).logpdf(x) - norm(1, 1).logpdf(x))

    for name, row in divergences.F_DIVERGENCES.items():
        tp = divergences.optimal_critic(name, ratio(xp))
        tq = divergences.optimal_critic(name, ratio(xq))
        true = divergences.gaussian_f_divergence(name, 0, 1, 1, 1)
        bound = divergences.variational_bound(name, tp, tq, logits=False)
        tol = 0.05 if name in ("pearson", "neyman") else 0.01  # heavy-tailed estimators
        assert bound == pytest.approx(true, rel=tol), name
        # the exact (quadrature) bound at T* equals D_f; a shifted critic gives strictly less
        lo, hi = row.domain
        shifted = np.clip(tq + 0.1, None, hi - 1e-9) if np.isfinite(hi) else tq + 0.1
        worse = divergences.variational_bound(name, np.clip(tp + 0.1, None, hi - 1e-9)
                                              if np.isfinite(hi) else tp + 0.1,
                                              shifted, logits=False)
        assert worse < bound, name


def test_js_bound_is_half_the_gan_objective_plus_log2():
    rng = np.random.default_rng(1)
    vr, vf = rng.normal(size=(64, 1)) * 3, rng.normal(size=(64, 1)) * 3
    bound = float(keras.ops.convert_to_numpy(
        divergences.variational_bound("jensen_shannon", vr, vf)))
    sig = 1 / (1 + np.exp(-np.concatenate([vr, vf])))
    gan = np.mean(np.log(sig[:64])) + np.mean(np.log(1 - sig[64:]))
    assert bound == pytest.approx(0.5 * gan + math.log(2), abs=1e-6)


def test_fgan_loss_terms_and_config():
    rng = np.random.default_rng(2)
    vr, vf = rng.normal(size=(16, 1)), rng.normal(size=(16, 1))
    for name, row in divergences.F_DIVERGENCES.items():
        loss = divergences.FGANLoss(name)
        a_r = np.asarray(row.activation(vr))
        a_f = np.asarray(row.activation(vf))
        bound = a_r.mean() - row.conjugate(a_f).mean()
        assert float(loss.d_loss(vr, vf)) == pytest.approx(-bound, rel=1e-5, abs=1e-6)
        assert float(loss.g_loss(vf)) == pytest.approx(-row.conjugate(a_f).mean(), rel=1e-5,
                                                       abs=1e-6)
        if name not in ("kl", "squared_hellinger"):  # the variants on two rows suffice
            continue
        ns = divergences.FGANLoss(name, generator="non_saturating")
        assert float(ns.g_loss(vf)) == pytest.approx(-a_f.mean(), rel=1e-5, abs=1e-6)
        swap = divergences.FGANLoss(name, swap=True)
        assert float(swap.d_loss(vr, vf)) == pytest.approx(
            -(a_f.mean() - row.conjugate(a_r).mean()), rel=1e-5, abs=1e-6)
        again = divergences.FGANLoss.from_config(ns.get_config())
        assert again.get_config() == ns.get_config()
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(divergences.FGANLoss("kl", swap=True)))
    assert isinstance(restored, divergences.FGANLoss) and restored.swap


def test_trained_critics_estimate_gaussian_divergences():
    rng = np.random.default_rng(3)
    out = divergences.estimate_divergences(
        ["kl", "jensen_shannon"], rng.normal(0, 1, 4000), rng.normal(1, 1, 4000),
        rng.normal(0, 1, 20000), rng.normal(1, 1, 20000), steps=100, batch_size=256, width=16,
        evaluations=2, learning_rate=1e-2)
    assert set(out["estimate"]) == {"kl", "jensen_shannon"}
    assert out["train_bound"]["kl"].shape == (2,) and list(out["steps"]) == [50, 100]
    assert out["estimate"]["kl"] == pytest.approx(0.5, rel=0.2)
    assert out["estimate"]["jensen_shannon"] == pytest.approx(0.1114, rel=0.2)


# ---- gan

import keras  # noqa: E402, F811  (also imported above; this block stands on its own)
from kexue.generative import gan as _gan  # noqa: E402

_F64 = "float64"


def _tiny_gan(mode="single_loss", lam=1.0, kind="non_saturating", seed=3):
    """A float64 GAN small enough for exact gradient checks: 2 -> 5 -> 2 and 2 -> 6 -> 1."""
    keras.utils.set_random_seed(0)
    g = keras.Sequential([keras.Input((2,), dtype=_F64),
                          keras.layers.Dense(5, activation="tanh", dtype=_F64),
                          keras.layers.Dense(2, dtype=_F64)])
    d = keras.Sequential([keras.Input((2,), dtype=_F64),
                          keras.layers.Dense(6, activation="tanh", dtype=_F64),
                          keras.layers.Dense(1, dtype=_F64)])
    return _gan.GAN(g, d, 2, loss=_gan.GANLoss(kind), mode=mode, lam=lam, seed=seed)


def _data(n=8):
    return np.random.default_rng(1).normal(size=(n, 2)) + 1.0


def _latent(gan, n):
    """The first latent draw of a GAN built with seed=3 (same generator, same shape)."""
    return keras.ops.convert_to_numpy(keras.random.normal(
        (n, gan.latent_dim), seed=keras.random.SeedGenerator(3), dtype=_F64))


def _weights(gan):
    return [keras.ops.convert_to_numpy(v) for v in gan.trainable_variables]


def _is_d(gan):
    ids = {id(v) for v in gan.discriminator.trainable_variables}
    return [id(v) in ids for v in gan.trainable_variables]


def test_gan_losses_match_closed_forms():
    rng = np.random.default_rng(0)
    r, f = rng.normal(size=(5, 1)), rng.normal(size=(7, 1))
    sp = lambda t: np.logaddexp(0.0, t)  # noqa: E731  softplus
    want = {"non_saturating": (sp(-r).mean() + sp(f).mean(), sp(-f).mean()),
            "minimax": (sp(-r).mean() + sp(f).mean(), -sp(f).mean()),
            "hinge": (np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean(), -f.mean())}
    for kind, (d, g) in want.items():
        loss = _gan.GANLoss(kind)
        assert float(loss.d_loss(r, f)) == pytest.approx(d, rel=1e-6, abs=1e-6)
        assert float(loss.g_loss(f)) == pytest.approx(g, rel=1e-6, abs=1e-6)
        assert _gan.GANLoss.from_config(loss.get_config()).kind == kind
    # the non-saturating d_loss is the cross-entropy of sigmoid(logit) against real = 1
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    ce = float(bce(np.ones_like(r), r)) + float(bce(np.zeros_like(f), f))
    assert float(_gan.GANLoss().d_loss(r, f)) == pytest.approx(ce, rel=1e-5)


@pytest.mark.parametrize("kind", ["non_saturating", "hinge"])
def test_single_loss_gradients(kind):
    lam = 0.5
    gan = _tiny_gan(lam=lam, kind=kind)
    x, z = _data(), np.random.default_rng(2).normal(size=(8, 2))
    is_d = _is_d(gan)
    v_term, g_term = gan.loss_gradients(x, z, "g_term")
    v_single, g_single = gan.loss_gradients(x, z, "single")
    v_d, g_d = gan.loss_gradients(x, z, "d")
    _, g_g = gan.loss_gradients(x, z, "g")
    assert v_term == 0.0                                  # the G term has value 0 ...
    for grad, d in zip(g_term, is_d):
        if d:
            # ... and no gradient to D, to rounding: the +δ and -δ rows of the generated and
            # the stopped copies are summed inside one backward pass of the discriminator.
            assert np.max(np.abs(grad)) <= 1e-15
    assert v_single == pytest.approx(v_d, abs=1e-15)      # so the one loss's value is d_loss
    # Exact in real arithmetic; XLA (the JAX lane) fuses the three discriminator passes
    # differently from one, which costs about 1e-8 relative in float64.
    tol = {"rtol": 1e-6, "atol": 1e-12}
    for a, b, c, e, d in zip(g_single, g_d, g_g, g_term, is_d):
        if d:   # D: the direct discriminator gradient
            np.testing.assert_allclose(a, b, **tol)
        else:   # G: lam times the direct generator gradient; d_loss sends G nothing
            np.testing.assert_allclose(e, c, **tol)
            np.testing.assert_allclose(a, lam * c, **tol)
            assert np.max(np.abs(b)) == 0.0


def test_generator_gradient_against_finite_differences():
    gan = _tiny_gan()
    x, z = _data(), np.random.default_rng(2).normal(size=(8, 2))
    _, grads = gan.loss_gradients(x, z, "g_term")
    var, grad = gan.generator.trainable_variables[0], grads[0]
    w0 = keras.ops.convert_to_numpy(var)
    # Keras's mean on the JAX backend sums float64 in float32 precision (mean of 0.1 and 0.2 is
    # off by 6e-9), so there the step is larger and the tolerance that of float32 rounding.
    jax = keras.backend.backend() == "jax"
    h, rel = (1e-3, 1e-2) if jax else (1e-6, 1e-6)
    for idx in [(0, 0), (1, 3)]:
        values = []
        for sign in (1, -1):
            w = w0.copy()
            w[idx] += sign * h
            var.assign(w)
            values.append(gan.loss_gradients(x, z, "g")[0])
        var.assign(w0)
        assert (values[0] - values[1]) / (2 * h) == pytest.approx(grad[idx], rel=rel, abs=1e-10)


def _sgd_gan(mode, lr, lam=1.0):
    gan = _tiny_gan(mode=mode, lam=lam)
    if mode == "single_loss":
        gan.compile(optimizer=keras.optimizers.SGD(lr))
    else:
        gan.compile(optimizer=keras.optimizers.SGD(lr), d_optimizer=keras.optimizers.SGD(lr))
    return gan


def test_single_loss_step_is_a_simultaneous_sgd_step():
    lr, lam = 0.125, 0.5   # exact in float32, the dtype of Keras's learning-rate variable
    gan = _sgd_gan("single_loss", lr, lam)
    x = _data()
    z = _latent(gan, len(x))
    w0, is_d = _weights(gan), _is_d(gan)
    _, g_d = gan.loss_gradients(x, z, "d")
    _, g_g = gan.loss_gradients(x, z, "g")
    want = [w - lr * (gd if d else lam * gg) for w, gd, gg, d in zip(w0, g_d, g_g, is_d)]
    logs = gan.train_on_batch(x, return_dict=True)
    for got, w in zip(_weights(gan), want):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-8)   # updates are ~1e-2
    assert logs["loss"] == pytest.approx(logs["d_loss"], abs=1e-12)


def test_alternating_step_is_a_d_step_then_a_g_step():
    lr = 0.125
    gan = _sgd_gan("alternating", lr)
    x = _data()
    z = _latent(gan, len(x))
    w0, is_d = _weights(gan), _is_d(gan)
    _, g_d = gan.loss_gradients(x, z, "d")
    d1 = [w - lr * g for w, g, d in zip(w0, g_d, is_d) if d]
    gan.discriminator.set_weights(d1)                     # the G step sees the updated D
    _, g_g = gan.loss_gradients(x, z, "g")
    gan.discriminator.set_weights([w for w, d in zip(w0, is_d) if d])
    want = [w - lr * (gd if d else gg) for w, gd, gg, d in zip(w0, g_d, g_g, is_d)]
    gan.train_on_batch(x)
    for got, w in zip(_weights(gan), want):
        np.testing.assert_allclose(got, w, rtol=1e-6, atol=1e-8)   # updates are ~1e-2
    assert int(keras.ops.convert_to_numpy(gan.d_optimizer.iterations)) == 1


def test_single_and_alternating_differ_at_second_order():
    x = _data()
    diffs = []
    for lr in (2e-3, 1e-3):
        after = {}
        for mode in ("single_loss", "alternating"):
            gan = _sgd_gan(mode, lr)
            gan.train_on_batch(x)
            after[mode] = _weights(gan)
        diffs.append(max(np.max(np.abs(a - b)) for a, b in
                         zip(after["single_loss"], after["alternating"])))
    assert diffs[1] > 0 and 3.5 < diffs[0] / diffs[1] < 4.5, diffs


def test_lam_scales_sgd_but_not_the_first_adam_step():
    x = _data()
    moves = {}
    for opt in ("sgd", "adam"):
        for lam in (1.0, 10.0):
            gan = _tiny_gan(lam=lam)
            gan.compile(optimizer=keras.optimizers.SGD(1e-3) if opt == "sgd"
                        else keras.optimizers.Adam(1e-3))
            g0 = [keras.ops.convert_to_numpy(v) for v in gan.generator.trainable_variables]
            gan.train_on_batch(x)
            moves[opt, lam] = np.concatenate([
                (keras.ops.convert_to_numpy(v) - w).ravel()
                for v, w in zip(gan.generator.trainable_variables, g0)])
    np.testing.assert_allclose(moves["sgd", 10.0], 10 * moves["sgd", 1.0], rtol=1e-5, atol=1e-12)
    rel = np.linalg.norm(moves["adam", 10.0] - moves["adam", 1.0]) / np.linalg.norm(
        moves["adam", 1.0])
    assert rel < 0.01, rel


@pytest.mark.parametrize("mode", ["single_loss", "alternating"])
def test_gan_fit_logs_and_samples(mode):
    keras.utils.set_random_seed(0)
    gan = _gan.GAN(_gan.mlp_generator(2, width=8), _gan.mlp_discriminator(width=8), 2, mode=mode,
                   seed=0)
    gan.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = gan.fit(_data(64).astype("float32"), batch_size=16, epochs=2, verbose=0)
    assert set(history.history) == {"loss", "d_loss", "g_loss"}
    assert len(gan.batch_history["d_loss"]) == len(gan.batch_history["g_loss"]) == 8
    # the per-batch values average to the logged epoch mean
    assert np.mean(gan.batch_history["d_loss"][4:]) == pytest.approx(
        history.history["d_loss"][-1], rel=1e-4)
    s = gan.sample(10, seed=1)
    assert s.shape == (10, 2) and np.array_equal(s, gan.sample(10, seed=1))
    assert not np.array_equal(s, gan.sample(10, seed=2))


def test_builders_shapes():
    g, d = _gan.dcgan_generator(8, channels=4), _gan.dcgan_discriminator(channels=4)
    images = keras.ops.convert_to_numpy(g(np.zeros((3, 8), "float32")))
    assert images.shape == (3, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    assert tuple(d(images).shape) == (3, 1)
    assert tuple(_gan.mlp_generator(3, 5, 4, 1)(np.zeros((2, 3))).shape) == (2, 5)
    assert tuple(_gan.mlp_discriminator(5, 4, 3)(np.zeros((2, 5))).shape) == (2, 1)
    gan = _gan.GAN(g, d, 8, loss=_gan.GANLoss("hinge"), mode="alternating", lam=2.0, seed=1)
    again = _gan.GAN.from_config(gan.get_config())
    assert (again.latent_dim, again.mode, again.lam, again.seed) == (8, "alternating", 2.0, 1)
    assert again.gan_loss.kind == "hinge"


# ---- denoising

from kexue.generative import denoising as _dn  # noqa: E402


def _mixtures():
    one = _dn.GaussianMixture([0.8, 0.2], [-2.0, 2.0], [0.15, 0.4])
    two = _dn.GaussianMixture([0.5, 0.3, 0.2], [[0.0, 0.0], [2.0, 1.0], [-1.0, 2.0]],
                              [0.3, 0.5, 0.2])
    return one, two


def test_mixture_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal, norm

    one, two = _mixtures()
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=7) * 2
    want1 = 0.8 * norm.pdf(x1, -2, 0.15) + 0.2 * norm.pdf(x1, 2, 0.4)
    np.testing.assert_allclose(one.prob(x1), want1, rtol=1e-10)
    x2 = rng.normal(size=(6, 2)) * 1.5
    want2 = sum(w * multivariate_normal(m, s ** 2 * np.eye(2)).pdf(x2)
                for w, m, s in zip(two.weights, two.means, two.stds))
    np.testing.assert_allclose(two.log_prob(x2), np.log(want2), rtol=1e-10)
    ring = _dn.GaussianMixture.ring(modes=8, radius=2.0, std=0.15)
    np.testing.assert_allclose(ring.means, evaluation.ring_centres(8, 2.0))


def test_mixture_score_matches_finite_differences_of_log_density():
    one, two = _mixtures()
    rng = np.random.default_rng(1)
    h = 1e-5
    for mix in (one, two, two.smoothed(0.3)):
        x = rng.normal(size=(5, mix.dim)) * 1.5
        fd = np.stack([(mix.log_prob(x + h * e) - mix.log_prob(x - h * e)) / (2 * h)
                       for e in np.eye(mix.dim)], axis=1)
        np.testing.assert_allclose(mix.score(x), fd, rtol=1e-6, atol=1e-6)
    assert one.score(np.zeros(3)).shape == (3,)


def test_smoothed_mixture_is_the_density_of_the_noisy_variable():
    one, _ = _mixtures()
    sigma = 0.5
    grid = np.linspace(-8, 8, 4001)
    y = np.array([-2.3, 0.1, 1.7])
    kernel = np.exp(-(y[:, None] - grid[None]) ** 2 / (2 * sigma ** 2)) / np.sqrt(
        2 * np.pi * sigma ** 2)
    conv = (kernel * one.prob(grid)[None]).sum(1) * (grid[1] - grid[0])
    np.testing.assert_allclose(one.smoothed(sigma).prob(y), conv, rtol=1e-7)


def test_tweedie_posterior_mean_against_numerical_integration():
    """E[x | y] by brute-force quadrature equals y + σ² ∇log p̂(y) and the closed form."""
    one, _ = _mixtures()
    grid = np.linspace(-6, 6, 6001)
    px = one.prob(grid)
    for sigma in (0.1, 0.3, 1.0):
        y = np.array([-2.5, -1.0, 0.0, 0.7, 2.2])
        like = np.exp(-(y[:, None] - grid[None]) ** 2 / (2 * sigma ** 2))
        brute = (like * px * grid).sum(1) / (like * px).sum(1)
        closed = one.posterior_mean(y, sigma)
        tweedie = _dn.tweedie_denoiser(one.smoothed(sigma).score, y, sigma)
        np.testing.assert_allclose(closed, brute, atol=1e-7)
        np.testing.assert_allclose(tweedie, closed, atol=1e-12)
    _, two = _mixtures()
    y2 = np.random.default_rng(2).normal(size=(4, 2))
    np.testing.assert_allclose(_dn.tweedie_denoiser(two.smoothed(0.4).score, y2, 0.4),
                               two.posterior_mean(y2, 0.4), atol=1e-12)


@pytest.mark.parametrize("eta", [0.1, 0.5])
def test_langevin_stationary_variance_for_the_exact_gaussian_score(eta):
    """N(0, 1): the chain's variance is v / (1 − η/4v), not v (the unadjusted step's bias)."""
    x0 = np.zeros(20000)
    x = _dn.langevin(lambda z: -z, x0, eta, 150, seed=0)
    want = _dn.langevin_stationary_variance(1.0, eta)
    assert want == pytest.approx(1 / (1 - eta / 4))
    se = want * np.sqrt(2 / len(x0))
    assert abs(x.var() - want) < 4 * se
    if eta == 0.5:
        assert x.var() - 1.0 > 4 * se        # the bias is visible


def test_annealed_langevin_steps_and_levels():
    sig = _dn.geometric_sigmas(4.0, 0.25, 5)
    np.testing.assert_allclose(sig, [4, 2, 1, 0.5, 0.25])
    seen = []

    def score(x, s):
        seen.append(s)
        return -x / (1 + s ** 2)

    x, levels = _dn.annealed_langevin(score, np.zeros((5000, 1)), sig, 200, 0.1, seed=0,
                                      return_levels=True)
    assert len(levels) == 5 and seen[0] == 4.0 and seen[-1] == 0.25 and len(seen) == 1000
    # the last level's step is step_size: its stationary variance, bias included
    want = _dn.langevin_stationary_variance(1 + 0.25 ** 2, 0.1)
    assert x.var() == pytest.approx(want, rel=0.06)
    assert levels[0].var() == pytest.approx(
        _dn.langevin_stationary_variance(17.0, 0.1 * 16 ** 2), rel=0.06)


def test_noisy_batches_and_denoiser_learn_the_posterior_mean():
    """A few epochs of fit already bring r much closer to r* than the identity is."""
    import keras

    keras.utils.set_random_seed(0)
    one, _ = _mixtures()
    x = one.sample(3000, seed=0)[:, None].astype("float32")
    ds = _dn.NoisyBatches(x, [0.5], batch_size=100, seed=0)
    (noisy, s), clean, w = ds[0]
    assert noisy.shape == (100, 1) and s.shape == (100, 1) and w.shape == (100,)
    np.testing.assert_allclose(w, 4.0)
    model = _dn.noise_conditional_denoiser((1,), width=32, architecture="mlp", depth=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(ds, epochs=6, verbose=0)
    y = one.smoothed(0.5).sample(500, seed=1)[:, None].astype("float32")
    exact = one.posterior_mean(y, 0.5)
    learned = y + 0.25 * _dn.model_score(model)(y, 0.5)
    assert np.sqrt(np.mean((learned - exact) ** 2)) < 0.5 * np.sqrt(np.mean((y - exact) ** 2))


def test_conv_denoiser_shapes_and_weights():
    model = _dn.noise_conditional_denoiser((8, 8, 1), width=4)
    ds = _dn.NoisyBatches(np.zeros((5, 8, 8, 1), "float32"), [0.1, 1.0], batch_size=4)
    assert len(ds) == 2
    (noisy, s), _, w = ds[1]
    assert noisy.shape == (1, 8, 8, 1) and w.shape == (1, 8, 8)
    out = np.asarray(model([noisy, s]))
    assert out.shape == (1, 8, 8, 1)
    # r = y − σ ε̂: at σ → 0 the denoiser returns its input
    tiny = np.full((1, 1), 1e-8, "float32")
    np.testing.assert_allclose(np.asarray(model([noisy, tiny])), noisy, atol=1e-5)
