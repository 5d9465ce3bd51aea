"""kexue.models.encoders: the encoder classifier for every Synthesizer kind (shapes, parameter
counts, padding, pooling), its attention maps against a closed form, and the key–value
retrieval task (seeded, and its label a function of the inputs that a brute-force reader
recovers exactly)."""

import keras
import numpy as np
import pytest
from kexue.layers.attention import SYNTHESIZER_KINDS
from kexue.models import encoders as enc

V, C, L, D, H = 20, 3, 6, 8, 2


def np_(x):
    return keras.ops.convert_to_numpy(x)


def ids(seed=0, b=3, n=L):
    x = np.random.default_rng(seed).integers(1, V, (b, n)).astype("int32")
    x[0, 4:] = 0  # the first example has two padding positions
    return x


def model(kind="dot", **kw):
    keras.utils.set_random_seed(0)
    return enc.encoder_classifier(kind, V, C, L, dim=D, heads=H, **kw)


# ------------------------------------------------------------------ the retrieval task


def test_retrieval_label_is_the_value_of_the_matching_key():
    task = enc.key_value_retrieval(500, pairs=8, keys=32, values=16, seed=3)
    keys, values = task["inputs"]
    assert keys.shape == values.shape == (500, 9) and task["vocab_sizes"] == (33, 18)
    assert keys.min() >= 1 and keys.max() <= 32 and values.min() >= 1 and values.max() <= 17
    assert all(len(set(row[:8])) == 8 for row in keys)          # distinct keys per example
    assert np.all(values[:, 8] == 17) and np.all(values[:, :8] <= 16)
    # a brute-force reader: find the query's key among the pairs and read its value
    match = np.array([list(row[:8]).index(row[8]) for row in keys])
    np.testing.assert_array_equal(match, task["position"])
    np.testing.assert_array_equal(values[np.arange(500), match] - 1, task["labels"])
    # the answer's position is spread over all pairs, and the labels over all values
    assert set(match) == set(range(8)) and set(task["labels"]) == set(range(16))


def test_retrieval_is_seeded():
    a, b = enc.key_value_retrieval(50, seed=1), enc.key_value_retrieval(50, seed=1)
    c = enc.key_value_retrieval(50, seed=2)
    for x, y in zip(a["inputs"], b["inputs"]):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a["inputs"][0], c["inputs"][0])


# ------------------------------------------------------------------ the encoder classifier


@pytest.mark.parametrize("kind", SYNTHESIZER_KINDS)
def test_every_kind_builds_classifies_and_ignores_padding(kind):
    m = model(kind, factors=(2, 3), rank=2)
    x = ids()
    logits = np_(m(x))
    assert logits.shape == (3, C) and np.all(np.isfinite(logits))
    att = m.get_layer("block_0").attention
    emb, pos, block = m.get_layer("embedding_0"), m.get_layer("positions"), m.get_layer("block_0")
    assert m.count_params() == (emb.count_params() + pos.count_params() + block.count_params()
                                + (D + 1) * C)
    assert block.count_params() == att.count_params() + 2 * (2 * D) + (D + 1) * 4 * D + (
        4 * D + 1) * D  # attention, two LayerNorms, the FFN of width 4 D
    # the padded example equals the same example without its padding
    np.testing.assert_allclose(logits[0], np_(m(x[:1, :4]))[0], atol=1e-5)


def test_streams_add_and_the_last_position_is_read():
    m = enc.encoder_classifier("dot", (V, 5), C, L, dim=D, heads=H, pooling="last")
    a = ids()
    a[0, 4:] = 1  # "last" reads the last position: this task has no padding
    b = np.random.default_rng(1).integers(1, 5, a.shape).astype("int32")
    h = m.get_layer("embedding_0")(a) + m.get_layer("embedding_1")(b)
    h = m.get_layer("block_0")(m.get_layer("positions")(h))
    ref = np_(m.get_layer("logits")(h[:, -1]))
    np.testing.assert_allclose(np_(m([a, b])), ref, atol=1e-5)


def test_attention_maps_of_random_scores_are_their_masked_softmax():
    m = model("random")
    x = ids()
    (w,) = enc.encoder_attention(m, x)
    assert w.shape == (3, H, L, L)
    r = np_(m.get_layer("block_0").attention.random_scores)
    ref = np.exp(r - r.max(-1, keepdims=True))
    ref = np.broadcast_to(ref / ref.sum(-1, keepdims=True), w.shape).copy()
    np.testing.assert_allclose(w[1:], ref[1:], atol=1e-6)
    masked = np.exp(r[:, :, :4] - r[:, :, :4].max(-1, keepdims=True))
    np.testing.assert_allclose(w[0, :, :, :4], masked / masked.sum(-1, keepdims=True), atol=1e-6)
    assert np.all(w[0, :, :, 4:] == 0)


def test_attention_maps_match_the_layer_for_each_block():
    m = model("dot", layers=2)
    x = ids()
    maps = enc.encoder_attention(m, x)
    assert len(maps) == 2
    h = m.get_layer("positions")(m.get_layer("embedding_0")(x))
    h = m.get_layer("block_0")(h)
    _, w = m.get_layer("block_1").attention(h, key_mask=x != 0, return_attention=True)
    np.testing.assert_allclose(maps[1], np_(w), atol=1e-5)


def test_select_position():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    layer = enc.SelectPosition(1)
    np.testing.assert_array_equal(np_(layer(x)), x[:, 1])
    again = enc.SelectPosition.from_config(layer.get_config())
    np.testing.assert_array_equal(np_(again(x)), x[:, 1])
    np.testing.assert_array_equal(np_(enc.SelectPosition()(x)), x[:, -1])


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="heads"):
        enc.encoder_classifier("dot", V, C, L, dim=10, heads=4)
    with pytest.raises(ValueError, match="keys"):
        enc.key_value_retrieval(10, pairs=8, keys=4)
    with pytest.raises(ValueError, match="inputs"):
        enc.encoder_attention(model(), [ids(), ids()])
