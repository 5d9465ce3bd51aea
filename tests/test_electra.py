"""kexue.models.electra and the optimal-discriminator helpers of kexue.generative.gan: the
generator's shared embedding, sampling and labels (replaced iff the sample differs from the
original, 0 off the masked positions), no gradient through the sample, the loss against a NumPy
reference, a train step on every backend, pre-training through the library path, and the
token-level optimum against its simulation and a brute-force enumeration."""

import keras
import numpy as np
import pytest
from kexue.generative.gan import fit_logistic_discriminator, optimal_discriminator
from kexue.models import electra as el
from kexue.models.bert import BertConfig, BertModel, BertVocab, mask_tokens

TEXTS = ["今天天气很好", "我们去公园玩吧", "机器学习很有趣", "北京是中国的首都", "你好世界",
         "一二三四五六七八九十"] * 6
VOCAB = BertVocab.fit(TEXTS, min_count=1)
CONFIG = BertConfig(vocab_size=len(VOCAB), width=16, layers=1, heads=2, ffn_dim=16,
                    max_positions=12, dropout=0.0)


def np_(x):
    return keras.ops.convert_to_numpy(x)


def batch(rows=4, seed=0, t=12):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, len(VOCAB), (rows, t)).astype("int32")
    ids[:, 0] = 2
    ids[1, 8:] = 0  # some padding
    out = mask_tokens(ids, len(VOCAB), rng)
    out["original_ids"] = ids
    return out


@pytest.fixture(scope="module")
def pair():
    """One small pair for the tests that only run it (JAX compiles each op per shape once)."""
    return el.Electra(BertModel(CONFIG), generator_fraction=0.25, seed=0)


def test_generator_config_and_shared_embedding(pair):
    g = el.generator_config(CONFIG, 0.25)
    assert (g.width, g.heads, g.ffn_dim, g.embedding_dim, g.layers) == (4, 1, 4, 16, 1)
    model = pair
    assert model.generator.token is model.discriminator.embedding.token
    assert model.generator.projection is not None  # 16 -> 4
    assert model.generator.mlm.logits.embedding is model.discriminator.embedding.token
    ids = {id(v) for v in model.trainable_variables}
    assert len(ids) == len(model.trainable_variables)  # the shared matrix counted once
    full = el.generator_config(CONFIG, 1.0)
    assert full.width == full.token_dim == 16  # no projection at full width


def test_replace_tokens_labels_equal_sampled_not_original_at_masked_positions():
    b = batch()
    rng = np.random.default_rng(3)
    sampled = np.where(rng.random(b["mlm_labels"].shape) < 0.5, b["mlm_labels"],
                       rng.integers(5, len(VOCAB), b["mlm_labels"].shape)).astype("int32")
    corrupted, labels = (np_(t) for t in el.replace_tokens(
        b["original_ids"], b["mlm_positions"], b["mlm_weights"], sampled))
    expected_ids = b["original_ids"].copy()
    expected = np.zeros_like(expected_ids)
    for i in range(len(sampled)):
        for j in range(sampled.shape[1]):
            if b["mlm_weights"][i, j]:
                pos = b["mlm_positions"][i, j]
                expected_ids[i, pos] = sampled[i, j]
                expected[i, pos] = int(sampled[i, j] != b["original_ids"][i, pos])
    np.testing.assert_array_equal(corrupted, expected_ids)
    np.testing.assert_array_equal(labels, expected)
    assert labels.sum() > 0 and (labels == 0).sum() > labels.sum()


def test_call_samples_real_characters_and_labels_them(pair):
    model = pair
    b = batch()
    out = {k: np_(v) for k, v in model(b, training=False).items()}
    w = b["mlm_weights"].astype(bool)
    assert (out["sampled_ids"][w] >= 5).all()  # never a special token
    expected = np.zeros_like(b["original_ids"])
    rows = np.repeat(np.arange(len(w))[:, None], w.shape[1], 1)
    expected[rows[w], b["mlm_positions"][w]] = (out["sampled_ids"][w] != b["mlm_labels"][w])
    np.testing.assert_array_equal(out["rtd_labels"], expected)
    assert out["rtd_logits"].shape == b["original_ids"].shape
    assert out["mlm_logits"].shape == (*b["mlm_positions"].shape, len(VOCAB))


def test_sampling_follows_the_generator_distribution(pair):
    model = pair
    logits = np.full((1, 4000, len(VOCAB)), -30.0, "float32")
    logits[..., 5] = 0.0
    logits[..., 6] = np.log(3.0)
    logits[..., 2] = 5.0  # a special token: never sampled
    ids = np_(model.sample(keras.ops.convert_to_tensor(logits)))
    assert set(np.unique(ids)) <= {5, 6}
    assert abs((ids == 6).mean() - 0.75) < 0.03  # 4 sd of a binomial mean


def test_rtd_loss_against_numpy():
    rng = np.random.default_rng(0)
    mlm_logits = rng.normal(size=(2, 3, 7)).astype("float32")
    labels = rng.integers(0, 7, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 0]])
    rtd_logits = rng.normal(size=(2, 5)).astype("float32")
    rtd_labels = rng.integers(0, 2, (2, 5))
    real = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]])
    total, mlm, rtd = (float(np_(t)) for t in el.rtd_loss(
        keras.ops.convert_to_tensor(mlm_logits), labels, weights,
        keras.ops.convert_to_tensor(rtd_logits), rtd_labels, real, rtd_weight=50.0))
    logp = mlm_logits - np.log(np.exp(mlm_logits).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    ref_mlm = (ce * weights).sum() / weights.sum()
    d = 1 / (1 + np.exp(-rtd_logits.astype("float64")))
    bce = -(rtd_labels * np.log(d) + (1 - rtd_labels) * np.log(1 - d))
    ref_rtd = (bce * real).sum() / real.sum()
    assert mlm == pytest.approx(ref_mlm, rel=1e-5)
    assert rtd == pytest.approx(ref_rtd, rel=1e-5)
    assert total == pytest.approx(ref_mlm + 50 * ref_rtd, rel=1e-5)


@pytest.mark.tensorflow_only
def test_no_gradient_reaches_the_generator_from_the_rtd_loss():
    import tensorflow as tf

    model = el.Electra(BertModel(CONFIG), seed=0)
    b = batch()
    real = b["original_ids"] != 0
    with tf.GradientTape(persistent=True) as tape:
        out = model(b, training=True)
        _, mlm, rtd = el.rtd_loss(out["mlm_logits"], b["mlm_labels"], b["mlm_weights"],
                                  out["rtd_logits"], out["rtd_labels"], real)
    shared = {id(v) for v in model.discriminator.embedding.token.trainable_variables}
    generator_only = [v for v in model.generator.trainable_variables if id(v) not in shared]
    assert generator_only
    for g in tape.gradient(rtd, generator_only):
        assert g is None or not np.any(np_(tf.convert_to_tensor(g)))
    # the generator does learn from its own MLM loss, and the discriminator not from it
    assert any(g is not None for g in tape.gradient(mlm, generator_only))
    disc_only = [v for v in model.discriminator.block_layers[0].trainable_variables]
    assert all(g is None for g in tape.gradient(mlm, disc_only))


def test_pretrain_electra_trains_and_returns_a_classifier_ready_discriminator():
    from kexue.models.bert import build_classifier

    # jit_compile="auto": XLA under JAX, none for TensorFlow on a CPU (the faster choice each)
    result = el.pretrain_electra(CONFIG, VOCAB, TEXTS, steps=12, batch_size=8, warmup=0,
                                 learning_rate=3e-3, held_out=0.2, eval_every=6,
                                 eval_sequences=4)
    assert isinstance(result.discriminator, BertModel)
    assert result.discriminator is result.electra.discriminator
    assert len(result.losses) == len(result.mlm_losses) == len(result.rtd_losses) == 12
    for total, mlm, rtd in zip(result.losses, result.mlm_losses, result.rtd_losses):
        assert total == pytest.approx(mlm + 50 * rtd, rel=1e-4)
    assert np.mean(result.losses[-3:]) < result.losses[0]
    assert [s for s, _ in result.history] == [6, 12]
    m = result.held_out
    assert m == result.history[-1][1] and 0 <= m["rtd_accuracy"] <= 1
    assert m["trivial_accuracy"] == pytest.approx(1 - m["replaced_fraction"])
    clf = build_classifier(result.discriminator, 3)
    x = {"token_ids": np.full((2, 6), 7, "int32"), "segment_ids": np.zeros((2, 6), "int32")}
    assert np_(clf(x)).shape == (2, 3)


def test_rtd_metrics_is_reproducible(pair):
    model = pair
    seqs = batch()["original_ids"]
    assert el.rtd_metrics(model, seqs, seed=4) == el.rtd_metrics(model, seqs, seed=4)


# ------------------------------------------------------------------ the optimal discriminator


def test_optimal_discriminator_maximises_the_gan_objective_pointwise():
    p, q = np.array([0.2, 0.5, 0.0, 0.3]), np.array([0.6, 0.5, 0.4, 0.0])
    d = optimal_discriminator(p, q)
    np.testing.assert_allclose(d, [0.25, 0.5, 0.0, 1.0])
    grid = np.linspace(1e-6, 1 - 1e-6, 20001)
    for pi, qi, di in zip(p, q, d):
        value = pi * np.log(grid) + qi * np.log(1 - grid)
        assert abs(grid[value.argmax()] - di) < 1e-3
    assert np.isnan(optimal_discriminator(0.0, 0.0))


def test_logistic_fit_recovers_the_gaussian_log_ratio():
    rng = np.random.default_rng(0)
    mu = 1.0
    w, b = fit_logistic_discriminator(rng.normal(0, 1, 20000), rng.normal(mu, 1, 20000))
    assert abs(w[0] + mu) < 0.05 and abs(b - mu**2 / 2) < 0.05
    w0, b0 = fit_logistic_discriminator(rng.normal(0, 1, 20000), rng.normal(0, 1, 20000))
    assert abs(w0[0]) < 0.05 and abs(b0) < 0.05


# ------------------------------------------------------------------ the token-level optimum


def _bigram(k=6, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.5), size=k)
    q = 0.5 * p + 0.5 / k
    return p, q


def test_rtd_optimum_by_enumeration_and_perfect_generator():
    p, q = _bigram()
    m = 0.2
    d = el.rtd_optimal_discriminator(p, q, m)
    k = p.shape[1]
    for c in range(k):  # enumerate (masked?, original x, sample s)
        seen, repl = np.zeros(k), np.zeros(k)
        for x in range(k):
            seen[x] += (1 - m) * p[c, x]
            for s in range(k):
                seen[s] += m * p[c, x] * q[c, s]
                repl[s] += m * p[c, x] * q[c, s] * (s != x)
        np.testing.assert_allclose(d[c], repl / seen, rtol=1e-12)
    np.testing.assert_allclose(el.rtd_optimal_discriminator(p, p, m), m * (1 - p), rtol=1e-12)


def test_simulation_matches_the_optimum_within_three_standard_errors():
    p, q = _bigram(k=5, seed=1)
    seen, replaced = el.simulate_rtd(p, q, 0.3, draws=200_000, seed=0)
    assert seen.sum() == 200_000
    d = el.rtd_optimal_discriminator(p, q, 0.3)
    ok = seen >= 1000
    se = np.sqrt(d * (1 - d) / np.maximum(seen, 1))
    z = np.abs(replaced / np.maximum(seen, 1) - d)[ok] / np.maximum(se[ok], 1e-12)
    assert ok.sum() > 10 and (z < 3.5).mean() > 0.97
    a, b = el.simulate_rtd(p, q, 0.3, draws=5000, seed=2)
    a2, b2 = el.simulate_rtd(p, q, 0.3, draws=5000, seed=2)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)


# ------------------------------------------------------------------ the committed ELECTRA recipe


def test_electra_checkpoint_path_writes_loads_and_hashes_its_own_code(tmp_path):
    from kexue.models import bert

    spec = bert.ElectraSpec(config=dict(width=16, layers=1, heads=2, ffn_dim=16,
                                        max_positions=12, dropout=0.0),
                            steps=2, batch_size=4, learning_rate=1e-2, held_out=0.2, min_count=1)
    assert spec.to_dict()["objective"] == "electra"
    assert bert._trainer(spec) is el._train_checkpoint
    vocab, result = bert._trainer(spec)(spec, texts=TEXTS)
    record = bert.write_checkpoint(tmp_path, "tiny-electra", spec, vocab, result)
    assert record["steps"] == 2 and len(record["rtd_losses"]) == 2
    assert set(record["held_out_rtd"]) >= {"rtd_accuracy", "trivial_accuracy"}
    assert "held_out_masked_accuracy" not in record  # the generator's is named as such
    assert record["held_out_generator_accuracy"] == pytest.approx(
        result.held_out["generator_accuracy"], abs=1e-6)
    # the record hashes the ELECTRA code too: an MLM recipe with the same fields differs
    mlm = bert.PretrainSpec(**{k: v for k, v in spec.to_dict().items()
                               if k not in ("objective", "generator_fraction", "rtd_weight")})
    assert bert.provenance_hashes(spec)["code"] != bert.provenance_hashes(mlm)["code"]
    assert bert.provenance_hashes(spec)["recipe"] != bert.provenance_hashes(mlm)["recipe"]
    model, vocab2, record2 = bert.load_pretrained("tiny-electra", tmp_path, spec)
    assert record2 == record and vocab2.tokens == vocab.tokens
    ids = bert.classification_inputs(vocab, TEXTS[:2], max_len=12)
    np.testing.assert_allclose(np_(model(ids)), np_(result.discriminator(ids)), atol=1e-6)
    with pytest.raises(bert.CheckpointError, match="recipe"):
        bert.check_checkpoint("tiny-electra", tmp_path, mlm)


def test_the_electra_checkpoint_gets_the_small_berts_compute():
    from kexue.models import bert, cost

    mlm, rtd = bert.PRETRAINED["small-bert"], bert.PRETRAINED["small-electra"]
    assert {k: v for k, v in rtd.to_dict().items()
            if k not in ("steps", "objective", "generator_fraction", "rtd_weight")} == \
        {k: v for k, v in mlm.to_dict().items() if k != "steps"}
    config = BertConfig(vocab_size=4486, **mlm.config)
    n = config.max_positions
    budget = mlm.steps * cost.pretraining_multiply_adds(config, n)
    per_step = cost.pretraining_multiply_adds(config, n, "electra", rtd.generator_fraction)
    assert abs(rtd.steps * per_step - budget) <= per_step / 2  # the nearest whole step
    # by hand: generator (4 blocks of width 16, MLM head on 15%), discriminator, head
    g = el.generator_config(config, 0.25)
    by_hand = (g.layers * (4 * 16 ** 2 + 2 * 16 * 64 + 2 * n * 16) + 64 * 16
               + 0.15 * (16 * 64 + 64 * 4486)
               + 4 * (4 * 64 ** 2 + 2 * 64 * 256 + 2 * n * 64) + 64 * 64 + 64)
    assert per_step == pytest.approx(by_hand, abs=1)
