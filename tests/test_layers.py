"""kexue.layers: masked operations against explicit computations on the unpadded rows,
mask propagation, nested and tied layers, save/load round trips, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from gradients import grads, op_determinism
from kexue import runtime
from kexue.layers import (
    ClassCenters,
    MaskedBiRNN,
    MaskedGlobalAveragePooling1D,
    MaskedGlobalMaxPooling1D,
    MaskedSoftmax,
    TiedDense,
    TwoDense,
    clone_with_weights,
    features_of,
    insert_after,
    masked_max,
    masked_mean,
    masked_softmax,
    masking,
    padding_mask,
    replace_layer,
    reverse_valid,
    split_at,
    very_negative,
)

RNG = np.random.default_rng(0)


def padded(lengths, T, d=3, fill=0.0, rng=RNG):
    """Random rows of the given lengths, right-padded with `fill` to length T."""
    rows = [rng.normal(size=(n, d)).astype("float32") for n in lengths]
    x = np.full((len(lengths), T, d), fill, dtype="float32")
    m = np.zeros((len(lengths), T), dtype=bool)
    for i, r in enumerate(rows):
        x[i, : len(r)] = r
        m[i, : len(r)] = True
    return rows, x, m


def roundtrip(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    return keras.models.load_model(path)


# -- the worked numbers ---------------------------------------------------------------------

def test_article_worked_examples():
    x = np.array([[1, 0, 3, 4, 5, 0, 0, 0]], "float32")[..., None]
    m = np.array([[1, 1, 1, 1, 1, 0, 0, 0]])
    assert float(np.mean(x)) == pytest.approx(1.625)
    assert float(masked_mean(x, m)[0, 0]) == pytest.approx(2.6)
    neg = np.array([[-1, -2, -3, -4, -5, 0, 0, 0]], "float32")[..., None]
    assert float(np.max(neg)) == 0.0
    assert float(masked_max(neg, m)[0, 0]) == -1.0
    r = reverse_valid(np.array([[1, 0, 3, 4, 5, 0, 0, 0]]), [5])
    np.testing.assert_array_equal(np.asarray(r), [[5, 4, 3, 0, 1, 0, 0, 0]])


# -- identity with the unpadded computation, whatever the padding ---------------------------

@pytest.mark.parametrize("seed", range(50))
def test_mean_max_equal_numpy_on_unpadded_rows(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 9, size=4)
    T = int(lengths.max() + rng.integers(0, 6))
    rows, x, m = padded(lengths, T, fill=float(rng.normal() * 10), rng=rng)
    mean, mx = np.asarray(masked_mean(x, m)), np.asarray(masked_max(x, m))
    for i, r in enumerate(rows):
        np.testing.assert_allclose(mean[i], r.mean(0), atol=1e-6)
        np.testing.assert_array_equal(mx[i], r.max(0))


def test_masked_softmax_rows_and_zeros():
    rows, x, m = padded([1, 3, 5, 2], 7, d=1, fill=100.0)
    logits = x[..., 0]
    p = np.asarray(masked_softmax(logits, m))
    for i, r in enumerate(rows):
        ref = np.exp(r[:, 0] - r[:, 0].max())
        np.testing.assert_allclose(p[i, : len(r)], ref / ref.sum(), atol=1e-6)
        assert np.all(p[i, len(r):] == 0.0)
        assert abs(p[i].sum() - 1) < 1e-6
    # a (batch, T) key mask on (batch, heads, queries, T) attention scores
    scores = RNG.normal(size=(4, 2, 3, 7)).astype("float32")
    p4 = np.asarray(masked_softmax(scores, m))
    np.testing.assert_array_equal(p4[:, :, :, :][~np.broadcast_to(m[:, None, None], p4.shape)], 0)
    np.testing.assert_allclose(p4.sum(-1), 1, atol=1e-6)


def test_half_precision_does_not_overflow():
    x = np.array([[1.0, 2.0, 3.0, 0.0]], "float16")
    m = np.array([[1, 1, 1, 0]])
    p = np.asarray(masked_softmax(x, m))
    assert np.all(np.isfinite(p)) and p[0, 3] == 0
    assert very_negative("float16") == pytest.approx(-65504 / 2)


def test_all_padding_rows_and_length_one():
    _, x, m = padded([0, 1, 4], 5)
    mean, mx = np.asarray(masked_mean(x, m)), np.asarray(masked_max(x, m))
    np.testing.assert_array_equal(mean[0], 0)
    np.testing.assert_array_equal(mx[0], 0)
    np.testing.assert_array_equal(mean[1], x[1, 0])
    np.testing.assert_array_equal(mx[1], x[1, 0])
    p = np.asarray(masked_softmax(x[..., 0], m))
    np.testing.assert_array_equal(p[0], 0)
    np.testing.assert_array_equal(p[1], [1, 0, 0, 0, 0])
    # the (batch, T, 1) mask form gives the same
    np.testing.assert_array_equal(np.asarray(masked_mean(x, m[..., None])), mean)


def test_padding_mask():
    np.testing.assert_array_equal(np.asarray(padding_mask([[3, 1, 0, 0]])), [[1, 1, 0, 0]])
    np.testing.assert_array_equal(np.asarray(padding_mask([[3, 1, 0]], pad_id=1)), [[1, 0, 1]])


# -- reverse_valid -------------------------------------------------------------------------------

@pytest.mark.tensorflow_only
def test_reverse_valid_is_tf_reverse_sequence_and_an_involution():
    x = RNG.normal(size=(5, 6, 2)).astype("float32")
    lengths = np.array([0, 1, 3, 6, 4])
    ours = np.asarray(reverse_valid(x, lengths))
    ref = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0).numpy()
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(np.asarray(reverse_valid(ours, lengths)), x)


# -- layers and mask propagation -------------------------------------------------------------------

def embed_model(pool, T=None):
    inp = keras.Input((T,), dtype="int32")
    h = keras.layers.Embedding(50, 4, mask_zero=True, name="emb")(inp)
    h = TwoDense(8, 4, name="two_dense")(h)
    return keras.Model(inp, pool(h))


@pytest.mark.parametrize("pool_cls,reduce", [(MaskedGlobalAveragePooling1D, np.mean),
                                             (MaskedGlobalMaxPooling1D, np.max)])
def test_pooling_layers_are_invariant_to_padding(pool_cls, reduce, tmp_path):
    runtime.seed(0)
    model = embed_model(pool_cls())
    ids = np.array([[5, 7, 9, 0, 0, 0], [4, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    longer = np.pad(ids, ((0, 0), (0, 10)))
    out, out_long = np.asarray(model(ids)), np.asarray(model(longer))
    np.testing.assert_allclose(out, out_long, atol=1e-6)
    # explicit computation on the unpadded rows
    emb = model.get_layer("emb")
    two = model.get_layer("two_dense")
    for i in range(2):
        row = ids[i][ids[i] > 0]
        ref = reduce(np.asarray(two(emb(row[None])))[0], axis=0)
        np.testing.assert_allclose(out[i], ref, atol=1e-6)
    np.testing.assert_array_equal(out[2], 0)
    loaded = roundtrip(model, tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded(longer)), out_long)


def test_average_pooling_equals_keras_builtin_with_mask():
    _, x, m = padded([2, 5, 1], 6, d=3)
    ours = np.asarray(MaskedGlobalAveragePooling1D()(x, mask=m))
    ref = np.asarray(keras.layers.GlobalAveragePooling1D()(x, mask=m))
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_keras_global_max_pooling_leaks_but_ours_does_not():
    x = -np.abs(RNG.normal(size=(1, 5, 2))).astype("float32") - 1
    x[:, 3:] = 0.0
    m = np.array([[1, 1, 1, 0, 0]], bool)
    assert np.all(np.asarray(keras.layers.GlobalMaxPooling1D()(x)) == 0)  # padding wins
    np.testing.assert_array_equal(np.asarray(MaskedGlobalMaxPooling1D()(x, mask=m)),
                                  x[:, :3].max(1))


def test_masked_softmax_layer_takes_propagated_mask(tmp_path):
    inp = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(20, 1, mask_zero=True)(inp)
    scores = keras.layers.Reshape((-1,))(h)
    model = keras.Model(inp, MaskedSoftmax()(scores, mask=keras.ops.not_equal(inp, 0)))
    ids = np.array([[3, 4, 0, 0], [5, 0, 0, 0], [0, 0, 0, 0]])
    p = np.asarray(model(ids))
    np.testing.assert_array_equal(p[:, 2:], 0)
    np.testing.assert_allclose(p[:2].sum(-1), 1, atol=1e-6)
    np.testing.assert_array_equal(p[1], [1, 0, 0, 0])
    np.testing.assert_array_equal(p[2], 0)                  # all padding: no distribution
    s = np.asarray(model.layers[2](model.layers[1](ids)))
    ref = np.exp(s[0, :2]) / np.exp(s[0, :2]).sum()
    np.testing.assert_allclose(p[0, :2], ref, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(roundtrip(model, tmp_path)(ids)), p)


def test_keras_average_pooling_gives_nan_on_all_padding_rows():
    x, m = np.ones((1, 3, 2), "float32"), np.zeros((1, 3), bool)
    assert np.isnan(np.asarray(keras.layers.GlobalAveragePooling1D()(x, mask=m))).all()
    np.testing.assert_array_equal(np.asarray(MaskedGlobalAveragePooling1D()(x, mask=m)), 0)


def test_two_dense_is_two_dense_layers(tmp_path):
    runtime.seed(0)
    layer = TwoDense(6, 3, hidden_activation="tanh", output_activation="sigmoid")
    x = RNG.normal(size=(4, 5)).astype("float32")
    y = np.asarray(layer(x))
    assert len(layer.trainable_weights) == 4
    assert layer.count_params() == 5 * 6 + 6 + 6 * 3 + 3
    ref = keras.Sequential([keras.Input((5,)), keras.layers.Dense(6, activation="tanh"),
                            keras.layers.Dense(3, activation="sigmoid")])
    ref.set_weights(layer.get_weights())
    np.testing.assert_allclose(y, np.asarray(ref(x)), atol=1e-6)
    w1, b1, w2, b2 = layer.get_weights()
    manual = 1 / (1 + np.exp(-(np.tanh(x @ w1 + b1) @ w2 + b2)))
    np.testing.assert_allclose(y, manual, atol=1e-6)
    model = keras.Sequential([keras.Input((5,)), layer])
    np.testing.assert_array_equal(np.asarray(roundtrip(model, tmp_path)(x)), y)


def randomize_biases(layer, rng):
    weights = layer.get_weights()
    layer.set_weights([w if w.ndim > 1 else rng.normal(size=w.shape).astype(w.dtype)
                       for w in weights])


def test_masked_birnn_equals_keras_bidirectional_with_mask(tmp_path):
    runtime.seed(0)
    rng = np.random.default_rng(1)
    _, x, m = padded([8, 5, 3, 1], 8, d=4, rng=rng)
    ours = MaskedBiRNN(keras.layers.LSTM(6, return_sequences=True))
    y = np.asarray(ours([x, m.astype("float32")]))
    randomize_biases(ours, rng)
    y = np.asarray(ours([x, m.astype("float32")]))
    bi = keras.layers.Bidirectional(keras.layers.LSTM(6, return_sequences=True))
    bi(x, mask=m)
    bi.forward_layer.set_weights(ours.forward_rnn.get_weights())
    bi.backward_layer.set_weights(ours.backward_rnn.get_weights())
    ref_masked = np.asarray(bi(x, mask=m))
    ref_unmasked = np.asarray(bi(x))
    valid = np.broadcast_to(m[..., None], y.shape)
    assert np.abs(y - ref_masked)[valid].max() <= 1e-6
    assert np.abs(y - ref_unmasked)[valid].max() > 1e-3
    np.testing.assert_array_equal(y[~valid], 0)
    # padding-length invariance and a save/load round trip
    x_long = np.pad(x, ((0, 0), (0, 5), (0, 0)), constant_values=3.0)
    m_long = np.pad(m, ((0, 0), (0, 5)))
    np.testing.assert_allclose(np.asarray(ours([x_long, m_long]))[:, :8], y, atol=1e-6)
    inp_x, inp_m = keras.Input((None, 4)), keras.Input((None,))
    model = keras.Model([inp_x, inp_m], ours([inp_x, inp_m]))
    np.testing.assert_array_equal(np.asarray(roundtrip(model, tmp_path)([x, m])), y)
    summed = MaskedBiRNN(keras.layers.GRU(5, return_sequences=True), merge_mode="sum")
    assert summed([x, m]).shape == (4, 8, 5)


def test_class_centers_is_a_lookup_and_its_gradient(tmp_path):
    runtime.seed(0)
    layer = ClassCenters(3, 2)
    x = RNG.normal(size=(6, 2)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 0])
    layer([x, y])
    C = RNG.normal(size=(3, 2)).astype("float32")
    layer.set_weights([C])
    d = np.asarray(layer([x, y[:, None]]))
    np.testing.assert_allclose(d[:, 0], ((x - np.eye(3)[y] @ C) ** 2).sum(-1), atol=1e-6)
    lam = 0.2
    (grad,) = grads(lambda c: lam * keras.ops.sum(layer.stateless_call([c], [], [x, y])[0]), C)
    ref = np.zeros_like(C)
    for c in range(3):
        ref[c] = (-2 * lam * (x[y == c] - C[c])).sum(0)
    np.testing.assert_allclose(grad, ref, atol=1e-6)
    xi, yi = keras.Input((2,)), keras.Input((), dtype="int32")
    model = keras.Model([xi, yi], layer([xi, yi]))
    np.testing.assert_array_equal(np.asarray(roundtrip(model, tmp_path)([x, y])), d)


def test_tied_dense_shares_the_variable(tmp_path):
    runtime.seed(0)
    emb = keras.layers.Embedding(11, 4, name="tok")
    tied = TiedDense(emb, name="tied")
    inp = keras.Input((None,), dtype="int32")
    model = keras.Model(inp, tied(emb(inp)))
    assert tied.kernel is emb.embeddings
    assert [v.path for v in tied.trainable_weights if v is not emb.embeddings] == ["tied/bias"]
    assert len(model.trainable_weights) == 2  # one embedding matrix, one bias
    assert model.count_params() == 11 * 4 + 11
    ids = np.array([[1, 2, 3], [4, 5, 0]])
    tied.bias.assign(RNG.normal(size=11).astype("float32"))
    E, b = np.asarray(emb.embeddings), np.asarray(tied.bias)
    np.testing.assert_allclose(np.asarray(model(ids)), E[ids] @ E.T + b, atol=1e-5)
    rev = keras.layers.ReversibleEmbedding(11, 4, tie_weights=True)
    rev.build((None,))
    rev.embeddings.assign(E)
    h = RNG.normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(np.asarray(TiedDense(emb, use_bias=False)(h)),
                               np.asarray(rev(h, reverse=True)), atol=1e-6)
    loaded = roundtrip(model, tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded(ids)), np.asarray(model(ids)))
    assert loaded.get_layer("tied").kernel is loaded.get_layer("tok").embeddings


# -- bad input ------------------------------------------------------------------------------------

def test_bad_input_raises():
    x = np.zeros((2, 5, 3), "float32")
    with pytest.raises(ValueError, match=r"mask must have shape \(batch=2, T=5\)"):
        masked_mean(x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="mask must have shape"):
        masked_max(x, np.ones((2, 5, 3, 1)))
    with pytest.raises(ValueError, match="axis"):
        masked_mean(x, np.ones((2, 5)), axis=2)
    with pytest.raises(ValueError, match="mask"):
        masked_softmax(np.zeros((2, 5)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="lengths"):
        reverse_valid(x, np.ones((2, 1)))
    with pytest.raises(ValueError, match="ids"):
        padding_mask(np.zeros(3))
    with pytest.raises(ValueError, match="return_sequences"):
        MaskedBiRNN(keras.layers.LSTM(3))
    with pytest.raises(TypeError, match="rnn"):
        MaskedBiRNN(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="merge_mode"):
        MaskedBiRNN(keras.layers.LSTM(3, return_sequences=True), merge_mode="mul")
    with pytest.raises(ValueError, match="hidden_dim"):
        TwoDense(0, 3)
    with pytest.raises(ValueError, match="inputs must have shape"):
        MaskedGlobalAveragePooling1D()(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="features"):
        ClassCenters(3, 2)([np.zeros((2, 5)), np.zeros(2, "int32")])
    with pytest.raises(TypeError, match="embedding"):
        TiedDense(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="output_dim"):
        TiedDense(keras.layers.Embedding(5, 4))(np.zeros((2, 3)))


# -- reuse: sub-models, cuts, rebuilt graphs -------------------------------------------------------

def residual_mlp():
    runtime.seed(0)
    inp = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="stem")(inp)
    branch = keras.layers.Dense(8, activation="relu", name="branch")(h)
    h = keras.layers.Add(name="block_add")([h, branch])
    h = keras.layers.ReLU(name="block_out")(h)
    out = keras.layers.Dense(3, name="head")(h)
    return keras.Model(inp, out, name="res")


X6 = RNG.normal(size=(5, 6)).astype("float32")


def test_features_of_equals_intermediate_outputs():
    model = residual_mlp()
    feats = features_of(model, ["stem", "block_out"])
    stem, block = (np.asarray(t) for t in feats(X6))
    w, b = model.get_layer("stem").get_weights()
    np.testing.assert_allclose(stem, np.maximum(X6 @ w + b, 0), atol=1e-6)
    np.testing.assert_allclose(np.asarray(model.get_layer("head")(block)), np.asarray(model(X6)),
                               atol=1e-6)
    assert features_of(model, "stem")(X6).shape == (5, 8)


def test_split_at_composes_to_the_model_and_rejects_a_bypassed_cut():
    model = residual_mlp()
    head, tail = split_at(model, "block_out")
    np.testing.assert_array_equal(np.asarray(tail(head(X6))), np.asarray(model(X6)))
    assert tail.count_params() == model.get_layer("head").count_params()
    assert head.count_params() + tail.count_params() == model.count_params()
    with pytest.raises(ValueError):
        split_at(model, "branch")          # the skip from "stem" bypasses the cut
    head2, tail2 = split_at(model, ["stem", "branch"])
    np.testing.assert_array_equal(np.asarray(tail2(head2(X6))), np.asarray(model(X6)))


def test_replace_and_insert_share_the_other_layers():
    model = residual_mlp()
    same = replace_layer(model, "block_out", keras.layers.LeakyReLU(negative_slope=0.0))
    np.testing.assert_array_equal(np.asarray(same(X6)), np.asarray(model(X6)))
    assert same.get_layer("stem") is model.get_layer("stem")
    tanh = replace_layer(model, "block_out", keras.layers.Activation("tanh"))
    assert np.abs(np.asarray(tanh(X6)) - np.asarray(model(X6))).max() > 1e-4
    ident = keras.layers.Dense(8, kernel_initializer="identity", name="inserted")
    bigger = insert_after(model, "block_out", ident)
    np.testing.assert_array_equal(np.asarray(bigger(X6)), np.asarray(model(X6)))
    assert bigger.count_params() == model.count_params() + 8 * 8 + 8
    assert "inserted" in [layer.name for layer in bigger.layers]


def test_clone_with_weights_is_equal_but_independent():
    model = residual_mlp()
    fresh = keras.models.clone_model(model)
    assert np.abs(np.asarray(fresh(X6)) - np.asarray(model(X6))).max() > 1e-3
    copy = clone_with_weights(model)
    np.testing.assert_array_equal(np.asarray(copy(X6)), np.asarray(model(X6)))
    copy.get_layer("head").kernel.assign(np.zeros((8, 3), "float32"))
    assert np.abs(np.asarray(copy(X6)) - np.asarray(model(X6))).max() > 1e-3


def test_reuse_bad_input():
    model = residual_mlp()

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(X6)
    with pytest.raises(TypeError, match="not a functional model"):
        split_at(sub, "dense")
    with pytest.raises(ValueError, match="no layer named"):
        features_of(model, "nope")
    with pytest.raises(TypeError, match="new_layer"):
        replace_layer(model, "stem", "relu")
    with pytest.raises(TypeError, match="keras.Model"):
        clone_with_weights("model")


# ------------------------------------------------------------------- recurrent: OutputGatedGRUCell


def test_output_gated_gru_cell_matches_its_equations():
    """RNN(OutputGatedGRUCell) over a sequence equals the NumPy recurrence
    z, r = sigmoid(.), c = (1 - z) c + z tanh(.), h = r c (float64)."""
    from kexue.layers import OutputGatedGRUCell

    rng = np.random.default_rng(0)
    cell = OutputGatedGRUCell(3, bias_initializer="random_normal", dtype="float64")
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype="float64")
    x = rng.normal(size=(2, 5, 4))
    seq, h_last, c_last = (keras.ops.convert_to_numpy(v)
                           for v in layer(keras.ops.convert_to_tensor(x, "float64")))
    w, u, b = (keras.ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel,
                                                      cell.bias))

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    tol = 1e-12 if keras.backend.backend() != "jax" else 1e-6   # JAX: ops.tanh in float32
    h, c = np.zeros((2, 3)), np.zeros((2, 3))
    for t in range(5):
        zx, rx, cx = np.split(x[:, t] @ w + b, 3, axis=-1)
        zh, rh, ch = np.split(h @ u, 3, axis=-1)
        z, r = sigmoid(zx + zh), sigmoid(rx + rh)
        c = (1 - z) * c + z * np.tanh(cx + ch)
        h = r * c
        np.testing.assert_allclose(seq[:, t], h, atol=tol)
    np.testing.assert_allclose(h_last, h, atol=tol)
    np.testing.assert_allclose(c_last, c, atol=tol)
    assert cell.state_size == [3, 3] and cell.output_size == 3


def test_output_gated_gru_cell_config_and_training():
    from kexue.layers import OutputGatedGRUCell

    cell = OutputGatedGRUCell(5, recurrent_initializer="glorot_uniform", name="og")
    again = OutputGatedGRUCell.from_config(cell.get_config())
    assert again.get_config() == cell.get_config()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 2)), keras.layers.RNN(OutputGatedGRUCell(8)),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = np.random.default_rng(1).normal(size=(64, 6, 2)).astype("float32")
    y = x[:, 0, :1] + x[:, -1, :1]
    losses = model.fit(x, y, epochs=20, batch_size=16, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0]


def first_max_grad(x, m, weights):
    """Brute force: the gradient of ``sum(masked_max(x, m) * weights)``: each row's weight at
    the first real position holding its maximum, 0 everywhere else."""
    want = np.zeros_like(x)
    for b in range(x.shape[0]):
        real = np.flatnonzero(m[b])
        for c in np.ndindex(x.shape[2:]):
            if real.size:
                want[(b, real[np.argmax(x[(b, real) + c])]) + c] = weights[(b,) + c]
    return want


def test_masked_max_gradient_goes_to_the_first_real_maximum_and_skips_padding():
    # rows: distinct values; a tie of two real maxima; padding larger than the real values
    # (and NaN); all padding; padding of +inf between two tied maxima.
    x = np.array([[[1.0], [3.0], [2.0]], [[2.0], [2.0], [0.0]], [[0.0], [9.0], [np.nan]],
                  [[5.0], [np.nan], [1.0]], [[4.0], [np.inf], [4.0]]], dtype="float32")
    m = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1]], dtype="float32")
    weights = np.array([[2.0], [3.0], [5.0], [7.0], [11.0]], dtype="float32")
    (g,) = grads(lambda v: keras.ops.sum(masked_max(v, m) * weights), x)
    want = np.zeros_like(x)
    want[0, 1] = 2.0
    want[1, 0] = 3.0
    want[2, 0] = 5.0
    want[4, 0] = 11.0
    np.testing.assert_array_equal(g, want)
    np.testing.assert_array_equal(np.asarray(masked_max(x, m)),
                                  [[3.0], [2.0], [0.0], [0.0], [4.0]])


@pytest.mark.parametrize("add", [True, False], ids=["padding-by-add", "padding-by-where"])
def test_masked_max_equals_brute_force_with_ties_and_holes(add, monkeypatch):
    # both paths (add and max_pool; where and argmax), on small integers (many ties), masks with holes,
    # padding above, below and equal to the real maximum, two trailing axes
    monkeypatch.setattr(masking, "_pooling_skips_nan", lambda: add)
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, size=(6, 9, 2, 3)).astype("float32")
    m = rng.random((6, 9)) < 0.6
    m[0], m[1], m[2] = True, False, np.arange(9) < 4
    x[~m] = rng.choice(np.array([9.0, -9.0, 0.0, 3.0], "float32"), size=x[~m].shape)
    weights = rng.normal(size=(6, 2, 3)).astype("float32")
    (g,) = grads(lambda v: keras.ops.sum(masked_max(v, m) * weights), x)
    np.testing.assert_array_equal(g, first_max_grad(x, m, weights))
    real = np.where(m[:, :, None, None], x, -np.inf).max(axis=1)
    want = np.where(m.any(axis=1)[:, None, None], real, 0.0)
    np.testing.assert_array_equal(np.asarray(masked_max(x, m)), want)


def test_masked_max_pooling_matches_keras_max_pooling_on_unpadded_rows():
    # the unmasked reference with the same gradient rule: MaxPooling1D with the whole time axis
    # as its window (values and gradients exactly equal, ties included)
    x = RNG.integers(-2, 3, size=(4, 7, 5)).astype("float32")
    weights = RNG.normal(size=(4, 5)).astype("float32")
    ref = keras.Sequential([keras.layers.MaxPooling1D(7), keras.layers.Flatten()])
    ours = MaskedGlobalMaxPooling1D()
    ones = np.ones((4, 7), bool)
    (g_ref,) = grads(lambda v: keras.ops.sum(ref(v) * weights), x)
    (g,) = grads(lambda v: keras.ops.sum(ours(v, mask=ones) * weights), x)
    np.testing.assert_array_equal(g, g_ref)
    np.testing.assert_array_equal(np.asarray(ours(x, mask=ones)), np.asarray(ref(x)))


def tf_masked_max_and_grad(weights, **function_options):
    """A ``tf.function`` (with ``function_options``) of ``(x, mask)`` giving ``masked_max(x,
    mask)`` and the gradient of ``sum(masked_max(x, mask) * weights)`` with respect to ``x``."""
    @tf.function(**function_options)
    def fn(v, mask):
        with tf.GradientTape() as tape:
            tape.watch(v)
            out = masked_max(v, mask)
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, v)

    return fn


@pytest.mark.parametrize("jit", [False, True], ids=["graph", "compiled"])
def test_masked_max_padding_of_nan_and_inf_never_leaks_when_compiled(jit):
    # the padding moved by an add (TensorFlow on CPU) or a where, inside a traced function:
    # tf.function without and with XLA, or jax.jit
    _, x, m = padded([3, 1, 6, 0], 6, d=4)
    poisoned = x.copy()
    poisoned[~m] = np.where(RNG.random(poisoned[~m].shape) < 0.5, np.nan, np.inf)
    weights = RNG.normal(size=(4, 4)).astype("float32")

    def value_and_grad(v):
        if keras.backend.backend() == "tensorflow":
            fn = tf_masked_max_and_grad(weights, jit_compile=jit)
            return [np.asarray(t) for t in fn(tf.constant(v), tf.constant(m))]
        import jax

        def fn(v):
            out = masked_max(v, m)
            return keras.ops.sum(out * weights), out

        grad_fn = jax.value_and_grad(fn, has_aux=True)
        (_, out), g = (jax.jit(grad_fn) if jit else grad_fn)(v)
        return np.asarray(out), np.asarray(g)

    with op_determinism(True):  # as kexue.runtime.seed leaves it; no MaxPoolGrad under XLA
        clean, dirty = value_and_grad(x), value_and_grad(poisoned)
    np.testing.assert_array_equal(dirty[0], clean[0])
    np.testing.assert_array_equal(dirty[1], clean[1])
    np.testing.assert_array_equal(clean[1], first_max_grad(x, m, weights))
    assert np.all(dirty[0][3] == 0)


def test_masked_max_without_a_static_time_axis():
    # T unknown while tracing: the maximum is read at the argmax (same values and gradient)
    _, x, m = padded([3, 1, 6, 0], 6, d=4)
    x[0, 0] = x[0, 1] = x[0, :3].max(axis=0) + 1  # ties in every channel of row 0
    weights = RNG.normal(size=(4, 4)).astype("float32")
    masked = np.where(m[:, :, None], x, -np.inf).astype("float32")
    (g,) = grads(lambda v: keras.ops.sum(masking._first_max(v) * weights), masked)
    np.testing.assert_array_equal(g[:3], first_max_grad(x, m, weights)[:3])
    if keras.backend.backend() != "tensorflow":
        return  # JAX traces with static shapes: only TensorFlow meets an unknown T

    fn = tf_masked_max_and_grad(weights, input_signature=[
        tf.TensorSpec((None, None, 4)), tf.TensorSpec((None, None), tf.bool)])
    out, g = fn(tf.constant(x), tf.constant(m))
    np.testing.assert_array_equal(out.numpy(), np.asarray(masked_max(x, m)))
    np.testing.assert_array_equal(g.numpy(), first_max_grad(x, m, weights))


def test_masked_max_takes_the_max_pool_path_only_on_tensorflow_cpu_outside_xla():
    # the fast path (add, max_pool) where its NaN handling is tested above; a where elsewhere
    if keras.backend.backend() != "tensorflow":
        assert not masking._pooling_skips_nan()
        return
    seen = {}

    def probe(key):
        seen[key] = masking._pooling_skips_nan()
        return tf.constant(0.0)

    probe("eager")
    tf.function(lambda: probe("graph"))()
    tf.function(lambda: probe("xla"), jit_compile=True)()
    assert seen == {"eager": True, "graph": True, "xla": False}
