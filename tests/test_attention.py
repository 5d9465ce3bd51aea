"""kexue.layers.attention: multi-head attention against keras.layers.MultiHeadAttention with
copied kernels, masks against brute force and unpadded computation, the sinusoidal table's
shift identity, and the Synthesizer variants (shapes, parameters, masks, closed forms)."""

import keras
import numpy as np
import pytest
from kexue.layers import attention as att

RNG = np.random.default_rng(0)
B, T, D, H, DK = 2, 6, 8, 2, 4


def np_(x):
    return keras.ops.convert_to_numpy(x)


def batch(n=T, d=D, b=B, seed=0):
    return np.random.default_rng(seed).normal(size=(b, n, d)).astype("float32")


MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


def softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------ scaled dot-product attention


def test_scaled_dot_product_attention_matches_a_loop_over_heads_and_rows():
    q, k, v = (RNG.normal(size=(B, H, T, DK)) for _ in range(3))
    out, w = att.scaled_dot_product_attention(q, k, v, key_mask=MASK, causal=True)
    for b in range(B):
        for h in range(H):
            for i in range(T):
                seen = [j for j in range(T) if MASK[b, j] and j <= i]
                p = softmax(np.array([q[b, h, i] @ k[b, h, j] / 2.0 for j in seen]))
                ref = np.zeros(T)
                ref[seen] = p
                np.testing.assert_allclose(np_(w)[b, h, i], ref, atol=1e-6)
                np.testing.assert_allclose(np_(out)[b, h, i], ref @ v[b, h], atol=1e-6)


def test_all_masked_rows_give_zero_weights_and_outputs():
    q, k, v = (RNG.normal(size=(1, 1, 3, 2)).astype("float32") for _ in range(3))
    out, w = att.scaled_dot_product_attention(q, k, v, key_mask=np.zeros((1, 3), bool))
    assert np.all(np_(w) == 0) and np.all(np_(out) == 0)


def test_attention_mask_combines_key_and_causal_masks():
    keep = np_(att.attention_mask(MASK, 6, 6, causal=True))
    assert keep.shape == (2, 1, 6, 6)
    ref = MASK[:, None, None, :] & np.tril(np.ones((6, 6), bool))[None, None]
    np.testing.assert_array_equal(keep, ref)
    assert att.attention_mask() is None
    # cross-attention with more keys than queries: the last query sees every key
    np.testing.assert_array_equal(np_(att.attention_mask(None, 2, 4, causal=True))[0, 0],
                                  [[1, 1, 1, 0], [1, 1, 1, 1]])


# ------------------------------------------------------------------ the multi-head layer


def copy_into_keras(ours, d=D):
    """keras.layers.MultiHeadAttention with our kernels reshaped to its per-head layout."""
    ref = keras.layers.MultiHeadAttention(ours.heads, ours.head_size, value_dim=ours.value_size,
                                          use_bias=ours.use_bias)
    x = np.zeros((1, 2, d), "float32")
    ref(x, x)
    h, dk, dv = ours.heads, ours.head_size, ours.value_size
    for mine, theirs, size in ((ours.query, ref._query_dense, dk), (ours.key, ref._key_dense, dk),
                               (ours.value, ref._value_dense, dv)):
        weights = [np_(mine.kernel).reshape(d, h, size)]
        if ours.use_bias:
            weights.append(np_(mine.bias).reshape(h, size))
        theirs.set_weights(weights)
    weights = [np_(ours.out.kernel).reshape(h, dv, d)]
    if ours.use_bias:
        weights.append(np_(ours.out.bias))
    ref._output_dense.set_weights(weights)
    return ref


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_equals_keras_with_copied_kernels(use_bias, masked):
    layer = att.MultiHeadSelfAttention(H, DK, use_bias=use_bias, kernel_initializer="random_normal")
    x = batch()
    layer(x)
    if use_bias:  # non-zero biases, so that their layout is tested too
        for dense in (layer.query, layer.key, layer.value, layer.out):
            dense.bias.assign(RNG.normal(size=dense.bias.shape).astype("float32"))
    ref = copy_into_keras(layer)
    key_mask = MASK if masked else None
    ours, w = layer(x, key_mask=key_mask, return_attention=True)
    theirs, w_ref = ref(x, x, attention_mask=None if key_mask is None else np.broadcast_to(
        MASK[:, None, :], (B, T, T)), return_attention_scores=True)
    np.testing.assert_allclose(np_(ours), np_(theirs), atol=1e-5)
    np.testing.assert_allclose(np_(w), np_(w_ref), atol=1e-6)


def test_cross_attention_equals_keras():
    layer = att.MultiHeadSelfAttention(H, DK)
    x, c = batch(n=3), batch(n=5, seed=1)
    layer(x, context=c)
    ref = copy_into_keras(layer)
    np.testing.assert_allclose(np_(layer(x, context=c)), np_(ref(x, c)), atol=1e-5)


def test_causal_layer_ignores_future_tokens():
    layer = att.MultiHeadSelfAttention(H, DK, causal=True)
    x = batch()
    y = x.copy()
    y[:, 4:] = RNG.normal(size=y[:, 4:].shape)
    np.testing.assert_allclose(np_(layer(x))[:, :4], np_(layer(y))[:, :4], atol=1e-6)
    assert np.abs(np_(layer(x))[:, 4:] - np_(layer(y))[:, 4:]).max() > 1e-3


def test_padding_gives_the_unpadded_outputs():
    layer = att.MultiHeadSelfAttention(H, DK)
    x = batch(n=4, b=1)
    padded = np.concatenate([x, RNG.normal(size=(1, 10, D)).astype("float32")], axis=1)
    mask = np.arange(14)[None] < 4
    out, w = layer(padded, key_mask=mask, return_attention=True)
    np.testing.assert_allclose(np_(out)[:, :4], np_(layer(x)), atol=1e-6)
    assert np.abs(np_(w)[..., 4:]).max() < 1e-9


def test_propagated_mask_is_the_key_mask():
    ids = np.array([[3, 4, 5, 0, 0]])
    emb = keras.layers.Embedding(8, D, mask_zero=True)
    layer = att.MultiHeadSelfAttention(H, DK)
    out = layer(emb(ids))
    np.testing.assert_allclose(np_(out)[:, :3], np_(layer(emb(ids[:, :3]))), atol=1e-6)


def test_without_positions_attention_is_permutation_equivariant():
    layer = att.MultiHeadSelfAttention(H, DK)
    x = batch()
    perm = RNG.permutation(T)
    np.testing.assert_allclose(np_(layer(x[:, perm])), np_(layer(x))[:, perm], atol=1e-5)
    with_pe = keras.Sequential([att.SinusoidalPositionEmbedding(), layer])
    assert np.abs(np_(with_pe(x[:, perm])) - np_(with_pe(x))[:, perm]).max() > 1e-3


# ------------------------------------------------------------------ position embeddings


def test_sinusoidal_shift_matrix_moves_the_table():
    pe = np_(att.sinusoidal_positions(600, 16, dtype="float64"))
    for k in (1, 7, 88):
        m = att.sinusoidal_shift_matrix(k, 16)
        np.testing.assert_allclose(pe[k:k + 512], pe[:512] @ m.T, atol=1e-9)
        np.testing.assert_allclose(m @ m.T, np.eye(16), atol=1e-12)
    freqs = 10000.0 ** (-np.arange(0, 16, 2) / 16)
    p, q = 300, 41
    assert pe[p] @ pe[q] == pytest.approx(np.cos((p - q) * freqs).sum(), abs=1e-9)
    # float32 table: the same identity to float32 accuracy
    pe32 = np_(att.sinusoidal_positions(520, 16))
    np.testing.assert_allclose(pe32[7:], pe32[:-7] @ att.sinusoidal_shift_matrix(7, 16).T, atol=1e-4)


def test_sinusoidal_layouts_are_a_permutation_and_the_layer_adds_or_appends():
    inter = np_(att.sinusoidal_positions(5, 6))
    split = np_(att.sinusoidal_positions(5, 6, interleave=False))
    np.testing.assert_allclose(inter[:, [0, 2, 4, 1, 3, 5]], split, atol=1e-7)
    np.testing.assert_allclose(
        split @ att.sinusoidal_shift_matrix(3, 6, interleave=False).T,
        np_(att.sinusoidal_positions(8, 6, interleave=False))[3:], atol=1e-5)
    x = batch(n=5, d=6)
    np.testing.assert_allclose(np_(att.SinusoidalPositionEmbedding()(x)), x + inter, atol=1e-6)
    cat = np_(att.SinusoidalPositionEmbedding("concat", dim=4)(x))
    assert cat.shape == (B, 5, 10)
    np.testing.assert_allclose(cat[0, :, 6:], np_(att.sinusoidal_positions(5, 4)), atol=1e-7)


def test_learned_position_embedding_adds_its_first_rows():
    layer = att.PositionEmbedding(10)
    x = batch(n=4)
    out = np_(layer(x))
    np.testing.assert_allclose(out, x + np_(layer.embeddings)[:4], atol=1e-7)


# ------------------------------------------------------------------ Synthesizer variants

L = 6


def synth(kind, **kw):
    kw.setdefault("use_bias", False)
    layer = att.SynthesizerAttention(kind, L, H, DK, **kw)
    layer(batch())
    return layer


def expected_params(kind, d=D, h=H, dk=DK, hidden=D, rank=8, factors=(2, 3)):
    qkv = lambda n: n * d * h * dk  # noqa: E731  (q, k or v projections, no bias)
    out = h * dk * d
    score = {"dot": qkv(2), "dense": d * hidden + hidden + hidden * h * L + h * L,
             "random": h * L * L, "factorized_random": 2 * h * L * rank,
             "factorized_dense": d * hidden + hidden + sum(hidden * h * f + h * f
                                                           for f in factors)}
    if kind == "mix":
        return qkv(1) + out + score["random"] + score["dot"] + 2
    return qkv(1) + out + score[kind]


@pytest.mark.parametrize("kind", att.SYNTHESIZER_KINDS)
def test_synthesizer_shapes_parameters_masks(kind):
    layer = synth(kind, causal=True)
    x = batch()
    out, w = layer(x, key_mask=MASK, return_attention=True)
    assert out.shape == (B, T, D) and w.shape == (B, H, T, T)
    assert layer.count_params() == expected_params(kind)
    w = np_(w)
    assert np.all(w[0, ..., 4:] == 0) and np.all(np.triu(w[1, 0], 1) == 0)
    np.testing.assert_allclose(w[1].sum(-1), 1.0, atol=1e-6)
    # causal: perturbing later tokens leaves earlier outputs unchanged
    y = x.copy()
    y[:, 3:] += 1.0
    np.testing.assert_allclose(np_(layer(x))[:, :3], np_(layer(y))[:, :3], atol=1e-6)
    # padding: real outputs do not depend on what the padding holds
    z = x.copy()
    z[0, 4:] = 100.0
    np.testing.assert_allclose(np_(layer(x, key_mask=MASK))[0, :4],
                               np_(layer(z, key_mask=MASK))[0, :4], atol=1e-5)


def test_synthesizer_dot_equals_the_standard_layer():
    layer = synth("dot", use_bias=True)
    ref = att.MultiHeadSelfAttention(H, DK)
    ref(batch())
    ref.set_weights(layer.get_weights())
    np.testing.assert_allclose(np_(layer(batch(), key_mask=MASK)),
                               np_(ref(batch(), key_mask=MASK)), atol=1e-6)


def test_random_with_zero_scores_averages_the_prefix():
    layer = synth("random", causal=True, output_projection=False)
    layer.random_scores.assign(np.zeros((H, L, L), "float32"))
    x = batch()
    v = (x @ np_(layer.value.kernel)).reshape(B, T, H, DK)
    ref = np.cumsum(v, axis=1) / np.arange(1, T + 1)[None, :, None, None]
    np.testing.assert_allclose(np_(layer(x)), ref.reshape(B, T, H * DK), atol=1e-6)


def test_random_is_linear_and_dot_is_not():
    rnd, dot = synth("random"), synth("dot")
    x1, x2 = batch(seed=1), batch(seed=2)
    np.testing.assert_allclose(np_(rnd(x1 + x2)), np_(rnd(x1)) + np_(rnd(x2)), atol=1e-5)
    np.testing.assert_allclose(np_(rnd(3.0 * x1)), 3.0 * np_(rnd(x1)), atol=1e-5)
    assert np.abs(np_(dot(x1 + x2)) - np_(dot(x1)) - np_(dot(x2))).max() > 1e-3


def test_factorized_random_has_low_rank():
    layer = synth("factorized_random", rank=2)
    b = np_(layer._scores(keras.ops.convert_to_tensor(batch()), None))
    assert np.linalg.matrix_rank(b[0, 0].astype("float64"), tol=1e-4) <= 2


@pytest.mark.parametrize("transpose_b2", [False, True])
def test_factorized_dense_tiles_its_two_heads(transpose_b2):
    layer = synth("factorized_dense", factors=(2, 3), transpose_b2=transpose_b2)
    x = keras.ops.convert_to_tensor(batch())
    hid = layer.dense_hidden(x)
    b1 = np_(layer.dense_scores_a(hid)).reshape(B, T, H, 2).transpose(0, 2, 1, 3)
    b2 = np_(layer.dense_scores_b(hid)).reshape(B, T, H, 3).transpose(0, 2, 1, 3)
    tiled_b2 = (np.repeat(b2, 2, axis=-1) if transpose_b2 else np.tile(b2, (1, 1, 1, 2)))
    ref = np.tile(b1, (1, 1, 1, 3)) * tiled_b2
    np.testing.assert_allclose(np_(layer._scores(x, None)), ref, atol=1e-5)


def test_mixture_with_one_hot_weights_is_the_pure_variant():
    mix = synth("mix", mix=("random", "dot"))
    mix.mix_logits.assign(np.array([50.0, -50.0], "float32"))
    pure = synth("random")
    pure.value.set_weights(mix.value.get_weights())
    pure.out.set_weights(mix.out.get_weights())
    pure.random_scores.assign(mix.random_scores)
    np.testing.assert_allclose(np_(mix(batch())), np_(pure(batch())), atol=1e-5)


def test_fixed_random_scores_are_not_trained():
    layer = synth("random", trainable_random=False)
    assert all(w is not layer.random_scores for w in layer.trainable_weights)
    assert any(w is layer.random_scores for w in layer.non_trainable_weights)


# ------------------------------------------------------------------ the Transformer block


def _layer_norm(x, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


@pytest.mark.parametrize("pre_ln", [False, True])
def test_transformer_block_composes_its_sublayers(pre_ln):
    block = att.TransformerBlock(H, DK, 16, pre_ln=pre_ln, ln_epsilon=1e-6)
    x = batch()
    out = np_(block(x, key_mask=MASK))
    attend = lambda y: np_(block.attention(y, key_mask=MASK))  # noqa: E731
    ffn = lambda y: np_(block.ffn_outer(block.ffn_inner(y)))  # noqa: E731
    ln = lambda y: _layer_norm(y, 1e-6)  # noqa: E731 (the norms start at gamma 1, beta 0)
    if pre_ln:
        y = x + attend(ln(x))
        ref = y + ffn(ln(y))
    else:
        y = ln(x + attend(x))
        ref = ln(y + ffn(y))
    np.testing.assert_allclose(out, ref, atol=1e-4)
    # and padding never reaches the real positions
    np.testing.assert_allclose(out[0, :4], np_(block(x[:1, :4]))[0], atol=1e-5)


def test_transformer_block_takes_a_synthesizer():
    block = att.TransformerBlock(H, DK, 16, attention=att.SynthesizerAttention("random", L, H, DK))
    out, w = block(batch(), return_attention=True)
    assert out.shape == (B, T, D) and w.shape == (B, H, T, T)
    again = att.TransformerBlock.from_config(block.get_config())
    assert isinstance(again.attention, att.SynthesizerAttention)
    again(batch())  # builds around the already built, deserialized attention layer
    again.set_weights(block.get_weights())
    np.testing.assert_allclose(np_(again(batch())), np_(out), atol=1e-6)
