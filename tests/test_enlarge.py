"""kexue.models.enlarge: the width-k BERT computes the small BERT's function.

The reference is a float64 NumPy forward pass of a BERT written here from the weights alone
(no Keras): the enlarged model's logits equal the small model's to 1e-10 in float64 for
k = 2, 3, 4, and to float32 rounding in Keras; every hidden state is rep_k(h) / sqrt(k) (same
norm); each wrong variant of the transform breaks the identity by the amount its derivation
predicts.
"""

import keras
import numpy as np
import pytest
from keras import ops
from kexue.models.bert import BertConfig, BertModel
from kexue.models.enlarge import enlarge_bert, repeat_axes
from scipy.special import erf

V, T = 20, 7
IDS = np.random.default_rng(1).integers(5, V, (3, T)).astype("int32")
IDS[0, 5:] = 0  # padding: masked out of every attention
SEG = (np.arange(T)[None, :] >= 3).astype("int32").repeat(3, 0)


def np_(x):
    return np.asarray(ops.convert_to_numpy(x), "float64")


def random_bert(seed=0, **kw):
    """A tiny BERT with every weight random and of order one (biases too), so that each wrong
    transform shows; no dropout."""
    cfg = dict(vocab_size=V, width=8, layers=2, heads=2, ffn_dim=16, max_positions=T,
               dropout=0.0, ln_epsilon=1e-6)
    model = BertModel(BertConfig(**{**cfg, **kw}))
    rng = np.random.default_rng(seed)
    for v in model.trainable_weights:
        base = 1.0 if v.path.endswith("gamma") else 0.0
        v.assign((base + rng.normal(0, 0.5, v.shape)).astype(v.dtype))
    return model


@pytest.fixture
def float64():
    """Build models in float64 (Keras caches its default dtype policy: set both)."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


# ---------------------------------------------------------------- a NumPy reference of BERT


def _ln(x, layer):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + layer.epsilon) * np_(layer.gamma) + np_(layer.beta)


def _dense(x, layer):
    return x @ np_(layer.kernel) + np_(layer.bias)


def _act(x, name):
    return np.maximum(x, 0) if name == "relu" else 0.5 * x * (1 + erf(x / np.sqrt(2)))


def _attention(x, att, keep):
    b, t, _ = x.shape
    h = att.heads

    def heads(y):  # (B, T, h d) -> (B, h, T, d): head i owns columns i d .. (i+1) d
        return y.reshape(b, t, h, -1).transpose(0, 2, 1, 3)

    q, k, v = (heads(_dense(x, d)) for d in (att.query, att.key, att.value))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    s = np.where(keep[:, None, None, :], s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return _dense((w @ v).transpose(0, 2, 1, 3).reshape(b, t, -1), att.out), w


def reference(model, ids=IDS, seg=SEG):
    """float64 ``(hidden states, attention weights, MLM logits)`` of ``model`` on ``ids``."""
    c, e = model.config, model.embedding
    x = np_(e.token.embeddings)[ids]
    if e.projection is not None:
        x = _dense(x, e.projection)
    x = _ln(x + np_(e.segment.embeddings)[seg] + np_(e.position.embeddings)[: ids.shape[1]],
            e.norm)
    keep, hidden, weights = ids != 0, [x], []
    for blk in model.blocks:
        y = _ln(x, blk.attention_norm) if c.pre_ln else x
        a, w = _attention(y, blk.attention, keep)
        x = x + a if c.pre_ln else _ln(x + a, blk.attention_norm)
        y = _ln(x, blk.ffn_norm) if c.pre_ln else x
        f = _dense(_act(_dense(y, blk.ffn_inner), c.activation), blk.ffn_outer)
        x = x + f if c.pre_ln else _ln(x + f, blk.ffn_norm)
        hidden.append(x)
        weights.append(w)
    if c.pre_ln:
        hidden[-1] = x = _ln(x, model.final_norm)
    u = _ln(_act(_dense(x, model.mlm.transform), c.activation), model.mlm.norm)
    logits = u @ np_(e.token.embeddings).T + np_(model.mlm.logits.bias)
    return hidden, weights, logits


def keras_forward(model, ids=IDS, seg=SEG):
    hidden, weights = model.encode(ids, seg, training=False, return_hidden=True,
                                   return_attention=True)
    return [np_(h) for h in hidden], [np_(w) for w in weights], np_(model.mlm_logits(hidden[-1]))


def gap(small_out, big_out, k):
    """Largest |difference| of the logits, of the attention weights, and of the hidden states
    from rep_k(h) / sqrt(k)."""
    (h, w, z), (H, W, Z) = small_out, big_out
    dh = max(np.abs(Hi - repeat_axes(hi, k, -1) / np.sqrt(k)).max() for hi, Hi in zip(h, H))
    dw = max(np.abs(wi - Wi).max() for wi, Wi in zip(w, W))
    return float(np.abs(Z - z).max()), dw, dh


# ---------------------------------------------------------------------------------- rep_k


def test_repeat_axes_interleaves_or_tiles_and_rescaled_keeps_the_norm():
    x = np.array([1.0, 2.0, 3.0])
    assert repeat_axes(x, 2).tolist() == [1, 1, 2, 2, 3, 3]
    assert repeat_axes(x, 2, layout="tile").tolist() == [1, 2, 3, 1, 2, 3]
    w = np.arange(6.0).reshape(2, 3)
    r = repeat_axes(w, 3)
    i, j = np.indices(r.shape)
    np.testing.assert_array_equal(r, w[i // 3, j // 3])
    assert repeat_axes(w, 2, axes=-1).shape == (2, 6) and repeat_axes(w, 2, ()).shape == (2, 3)
    v = np.random.default_rng(0).normal(size=(4, 5))
    for k in (2, 3, 4):
        np.testing.assert_allclose(np.linalg.norm(repeat_axes(v, k, -1) / np.sqrt(k), axis=-1),
                                   np.linalg.norm(v, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_the_reference_is_the_keras_model(float64, activation):
    model = random_bert(activation=activation, pre_ln=activation == "relu")
    # Keras in float64 is not exact everywhere: TensorFlow's GeLU differs from
    # 0.5 x (1 + erf(x / sqrt 2)) by ~5e-9, JAX's LayerNorm from the formula by ~6e-7
    tol = 1e-10 if activation == "relu" and keras.backend.backend() == "tensorflow" else 2e-6
    for ours, ref in zip(keras_forward(model), reference(model)):
        for a, b in zip(ours if isinstance(ours, list) else [ours],
                        ref if isinstance(ref, list) else [ref]):
            np.testing.assert_allclose(a, b, rtol=0, atol=tol)


# -------------------------------------------------------------------------- exactness


def test_enlargement_is_exact_in_float64(float64):
    small = random_bert()
    ref = reference(small)
    for k in (2, 3, 4):
        big = enlarge_bert(small, k)
        assert big.weights[0].dtype == "float64"
        dz, dw, dh = gap(ref, reference(big), k)
        assert dz < 1e-10 and dw < 1e-12 and dh < 1e-10, (k, dz, dw, dh)
        assert big.config.width == k * 8 and big.config.ffn_dim == k * 16
        assert big.config.heads == 2 and big.config.head_size == k * 4
        assert big.config.ln_epsilon == pytest.approx(1e-6 / k) and big.mlm.norm.epsilon == 1e-6


def test_enlargement_is_exact_in_keras_float32(k=2):  # k = 3, 4: the float64 test above
    small = random_bert()
    assert small.weights[0].dtype == "float32"
    before = [np_(v) for v in small.weights]
    out, big = keras_forward(small), enlarge_bert(small, k)
    big_out = keras_forward(big)
    dz, dw, dh = gap(out, big_out, k)
    scale = np.abs(out[2]).max()
    assert dz < 1e-5 * max(scale, 1) and dw < 1e-5 and dh < 1e-5, (dz, dw, dh, scale)
    for h, H in zip(out[0], big_out[0]):  # norm preservation, per token and layer
        np.testing.assert_allclose(np.linalg.norm(H, axis=-1), np.linalg.norm(h, axis=-1),
                                   atol=1e-5)
    assert all(np.array_equal(b, np_(v)) for b, v in zip(before, small.weights))
    assert big.count_params() == BertModel(big.config).count_params()
    assert big.count_params() > k * small.count_params()


def test_pre_ln_shared_blocks_factorised_embedding_and_relu_are_exact(float64):
    small = random_bert(pre_ln=True, shared_blocks=True, embedding_dim=6, activation="relu")
    for kw in ({}, {"split_activation": False}):  # ReLU: the linear rule is exact too
        big = enlarge_bert(small, 2, **kw)
        assert big.config.embedding_dim == 12 and big.config.shared_blocks
        dz, dw, dh = gap(reference(small), reference(big), 2)
        assert dz < 1e-10 and dh < 1e-10, (kw, dz, dh)
        assert big.count_params() == BertModel(big.config).count_params()


def test_a_model_rebuilt_from_the_config_is_the_same_function(float64):
    small = random_bert(ln_epsilon=1e-3)
    big = enlarge_bert(small, 2)
    assert big.config.ln_epsilon == pytest.approx(5e-4) and big.config.head_ln_epsilon == 1e-3
    again = BertModel(big.config)  # what .keras loading and pretrain(init=big) build
    again.set_weights(big.get_weights())
    assert again.mlm.norm.epsilon == 1e-3
    assert np.abs(reference(again)[2] - reference(small)[2]).max() < 1e-10


def test_without_the_split_activation_the_head_epsilon_is_scaled_too():
    small = random_bert(ln_epsilon=1e-3)
    cfg = enlarge_bert(small, 2, split_activation=False).config
    assert cfg.head_ln_epsilon == pytest.approx(5e-4)
    cfg = enlarge_bert(small, 2, split_activation=False, scale_epsilon=False).config
    assert cfg.head_ln_epsilon == pytest.approx(1e-3) and cfg.ln_epsilon == pytest.approx(1e-3)


# ----------------------------------------------------------------- the wrong variants


def test_negative_controls_break_by_the_predicted_amounts(float64):
    small = random_bert(ln_epsilon=1e-3)  # Keras's default LayerNorm epsilon
    ref = reference(small)

    def logits_gap(model=small, **kw):
        return gap(ref if model is small else reference(model),
                   reference(enlarge_bert(model, 2, **kw)), 2)[0]

    assert logits_gap() < 1e-10
    assert logits_gap(layout="tile") > 1e-2               # the reshape into heads mixes heads
    assert logits_gap(literal_bias=True) > 1e-2          # b2 / 2 instead of b2 / sqrt(2)
    assert logits_gap(split_activation=False) > 1e-2     # GeLU is not homogeneous
    assert 1e-4 < logits_gap(scale_epsilon=False) < 1.0  # epsilon kept: small but clear
    one_head = random_bert(heads=1)
    assert logits_gap(one_head, layout="tile") < 1e-10   # one head: nothing to mix
