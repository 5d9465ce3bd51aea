"""kexue.generative.vae: Gaussian and Bernoulli log-probabilities against scipy, the
residual-normal KL against the Gaussian KL and Monte Carlo, the KL chain rule on a 2-D
Gaussian, the FFHQ latent count, and the hierarchical VAE: training by fit, ELBO and
importance-weighted bounds, sampling, batch-norm recalibration, its cells."""

from __future__ import annotations

import numpy as np
import pytest
from kexue.generative import vae as _vae


def _np(x):
    import keras

    return keras.ops.convert_to_numpy(x).astype("float64")


def test_gaussian_and_bernoulli_log_probs_match_scipy():
    import scipy.stats

    rng = np.random.default_rng(0)
    x, mu = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    logvar = rng.normal(size=(3, 4))
    want = scipy.stats.norm.logpdf(x, mu, np.exp(0.5 * logvar))
    np.testing.assert_allclose(_np(_vae.gaussian_log_prob(x, mu, logvar)), want, rtol=1e-10)
    logits = rng.normal(size=(5, 3)) * 4
    bits = (rng.random((5, 3)) < 0.5).astype("float64")
    want = scipy.stats.bernoulli.logpmf(bits, 1 / (1 + np.exp(-logits)))
    np.testing.assert_allclose(_np(_vae.bernoulli_log_prob(bits, logits)), want, rtol=1e-9)
    # large logits stay finite and exact
    big = np.array([80.0, -80.0])
    np.testing.assert_allclose(_np(_vae.bernoulli_log_prob(np.array([1.0, 0.0]), big)),
                               [-np.exp(-80.0), -np.exp(-80.0)], rtol=1e-6, atol=1e-30)


def test_residual_normal_kl_equals_gaussian_kl_and_monte_carlo():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=3), rng.normal(size=3)
    dmu, dlogvar = 0.5 * rng.normal(size=3), 0.5 * rng.normal(size=3)
    residual = _np(_vae.residual_normal_kl(dmu, dlogvar, logvar))
    direct = _np(_vae.gaussian_kl(mu + dmu, logvar + dlogvar, mu, logvar))
    np.testing.assert_allclose(residual, direct, rtol=1e-6)
    # Monte Carlo: E_posterior[log posterior - log prior], 10^5 draws, summed over 3 dimensions
    n = 100_000
    z = mu + dmu + np.exp(0.5 * (logvar + dlogvar)) * rng.standard_normal((n, 3))
    post = _np(_vae.gaussian_log_prob(z, np.broadcast_to(mu + dmu, z.shape),
                                      np.broadcast_to(logvar + dlogvar, z.shape)))
    prior = _np(_vae.gaussian_log_prob(z, np.broadcast_to(mu, z.shape),
                                       np.broadcast_to(logvar, z.shape)))
    samples = (post - prior).sum(axis=1)
    se = samples.std() / np.sqrt(n)
    assert abs(samples.mean() - residual.sum()) < 3 * se


def test_kl_chain_rule_on_a_two_dimensional_gaussian():
    posterior, prior = (0.3, 0.8, 1.5, -0.2, 0.6), (-0.4, 1.3, 0.7, 0.5, 1.1)
    kl1, kl2 = _vae.chain_kl_terms(posterior, prior)
    joint = _vae.multivariate_gaussian_kl(*_vae.linear_gaussian_chain(*posterior),
                                          *_vae.linear_gaussian_chain(*prior))
    assert kl1 + kl2 == pytest.approx(joint, rel=1e-6)
    # Monte Carlo of the second term: E_{z1 ~ posterior} KL(p(z2|z1) || q(z2|z1))
    rng = np.random.default_rng(2)
    n = 100_000
    m, s, a, b, t = posterior
    mq, sq, aq, bq, tq = prior
    z1 = m + s * rng.standard_normal(n)
    inner = _np(_vae.gaussian_kl(a * z1 + b, np.full(n, 2 * np.log(t)), aq * z1 + bq,
                                 np.full(n, 2 * np.log(tq))))
    assert abs(inner.mean() - kl2) < 3 * inner.std() / np.sqrt(n)
    # and of the joint: E_p[log p(z1, z2) - log q(z1, z2)]
    z2 = a * z1 + b + t * rng.standard_normal(n)
    logp = (_np(_vae.gaussian_log_prob(z1, np.full(n, m), np.full(n, 2 * np.log(s))))
            + _np(_vae.gaussian_log_prob(z2, a * z1 + b, np.full(n, 2 * np.log(t)))))
    logq = (_np(_vae.gaussian_log_prob(z1, np.full(n, mq), np.full(n, 2 * np.log(sq))))
            + _np(_vae.gaussian_log_prob(z2, aq * z1 + bq, np.full(n, 2 * np.log(tq)))))
    d = logp - logq
    assert abs(d.mean() - joint) < 3 * d.std() / np.sqrt(n)


def test_latent_count_of_the_ffhq_hierarchy():
    assert _vae.latent_count([4, 4, 4, 8, 16], [8, 16, 32, 64, 128], 20) == 6_005_760
    assert _vae.latent_count([2, 2], [7, 14], [4, 8]) == 2 * 49 * 4 + 2 * 196 * 8


def _tiny_vae(**kwargs):
    import keras

    keras.utils.set_random_seed(0)
    kwargs.setdefault("scales", ((2, 1, 2), (4, 2, 2)))
    return _vae.HierarchicalVAE((8, 8, 1), channels=4, seed=1, **kwargs)


_BITS = (np.random.default_rng(3).random((6, 8, 8, 1)) < 0.4).astype("float32")


def test_hierarchical_vae_trains_and_bounds_are_ordered():
    import keras

    model = _tiny_vae(kl_warmup_steps=4, spectral_strength=1e-3, scales=((2, 1, 2), (4, 1, 2)))
    assert model.num_groups == 2 and model.latent_dims == [8, 32]
    # eager under TensorFlow (no tracing); compiled under JAX, where eager ops are slow
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  run_eagerly=keras.backend.backend() == "tensorflow")
    history = model.fit(_BITS, batch_size=3, epochs=1, verbose=0).history
    assert history["beta"][-1] == pytest.approx((1e-4 + 1 / 4) / 2, rel=1e-5)  # steps 0, 1 of 4
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert history["nelbo"][-1] == pytest.approx(history["recon"][-1] + history["kl"][-1],
                                                 rel=1e-5)
    out = model(_BITS, training=False)
    assert tuple(out["logits"].shape) == (6, 8, 8, 1) and tuple(out["kl"].shape) == (6, 2)
    np.testing.assert_array_equal(_np(model(_BITS)["logits"]), _np(out["logits"]))
    elbo, kl = model.elbo(_BITS, seed=2, return_kl=True)
    assert elbo.shape == (6,) and kl.shape == (6, 2) and (kl >= 0).all()
    np.testing.assert_array_equal(elbo, model.elbo(_BITS, seed=2))
    iwae, same_draws = model.iwae_bound(_BITS, k=8, seed=4, batch_size=16, return_elbo=True)
    assert (iwae >= same_draws - 1e-9).all()                      # Jensen, on the same draws
    one, one_elbo = model.iwae_bound(_BITS, k=1, seed=4, return_elbo=True)
    np.testing.assert_allclose(one, one_elbo, rtol=1e-12)


def test_residual_and_direct_posteriors_and_sampling():
    direct = _tiny_vae(residual_posterior=False, scales=((4, 2, 2),))
    logits, kl, ratio = direct._forward(_BITS, training=False, sample=True, with_ratio=True)
    assert tuple(ratio.shape) == (6, 2)
    assert (_np(kl) >= 0).all() and np.isfinite(_np(logits)).all()
    samples = direct.sample(5, temperature=0.7, seed=3, batch_size=2)
    assert samples.shape == (5, 8, 8, 1) and samples.min() >= 0 and samples.max() <= 1
    np.testing.assert_array_equal(samples, direct.sample(5, temperature=0.7, seed=3))
    cold = [direct.sample(2, temperature=0.0, seed=s) for s in (0, 1)]
    np.testing.assert_array_equal(cold[0], cold[1])


def test_recalibration_touches_only_the_decoder():
    import keras

    model = _tiny_vae(scales=((4, 1, 2),))
    enc_bn = model.encoder_cells[0].steps[0]
    before = _np(enc_bn.moving_mean)
    seen = model.recalibrate_batchnorm(num_batches=2, batch_size=4, temperature=0.5)
    assert len(seen) == 4 * model.num_groups + 4 * len(model.plain_cells)
    assert set(seen.values()) == {2}
    np.testing.assert_array_equal(_np(enc_bn.moving_mean), before)
    dec_bn = model.group_cells[0].steps[0]
    assert dec_bn.momentum == pytest.approx(0.99) and isinstance(dec_bn, keras.layers.Layer)


def test_cells_and_squeeze_excitation():
    import keras

    x = np.random.default_rng(5).normal(size=(2, 4, 4, 8)).astype("float32")
    se = _vae.SqueezeExcitation(reduction=2)
    out = _np(se(x))
    w1, b1, w2, b2 = (np.asarray(w, "float64") for w in se.get_weights())
    gate = 1 / (1 + np.exp(-(np.maximum(x.mean(axis=(1, 2)) @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(out, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)
    for cell in (_vae.EncoderCell(8), _vae.DecoderCell(8, expand=3)):
        assert tuple(cell(x).shape) == x.shape
        again = cell.__class__.from_config(cell.get_config())
        assert again.get_config() == cell.get_config()
    flat = _vae.DecoderCell(8, residual_scale=0.0)
    np.testing.assert_array_equal(_np(flat(x)), x.astype("float64"))
    assert isinstance(flat, keras.layers.Layer)


def test_bernoulli_batches_redraw_every_epoch():
    grey = np.random.default_rng(6).random((400, 3)).astype("float32")
    batches = _vae.BernoulliBatches(grey, batch_size=128, seed=0)
    assert len(batches) == 4 and batches[3].shape == (16, 3)
    first = np.concatenate([batches[i] for i in range(len(batches))])
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert abs(first.mean() - grey.mean()) < 0.05
    batches.on_epoch_end()
    second = np.concatenate([batches[i] for i in range(len(batches))])
    assert not np.array_equal(first, second)
    again = _vae.BernoulliBatches(grey, batch_size=128, seed=0)
    np.testing.assert_array_equal(again[0], first[:128])
