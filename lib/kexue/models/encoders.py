"""Small Transformer encoders for classification, and a synthetic task that needs token–token
attention.

- :func:`encoder_classifier`: ids (one or several id streams whose embeddings are added, like
  BERT's token and segment ids) → learned positions → ``layers`` post-LN Transformer blocks whose
  attention is any :class:`~kexue.layers.attention.SynthesizerAttention` kind → mean over the
  real positions (or the last position) → class logits;
- :func:`encoder_attention`: the attention weights of every block of such a model on a batch;
- :func:`key_value_retrieval`: a seeded content-based lookup task (key–value pairs, then a query
  key; the label is the query's value) that one layer of dot-product attention can solve and
  attention whose weights ignore the other tokens' content cannot.

Used in: book/transformers/synthesizer.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import _is_int, check_choice, check_instance, check_int, check_real, describe
from kexue.layers.attention import (
    SYNTHESIZER_KINDS,
    PositionEmbedding,
    SynthesizerAttention,
    TransformerBlock,
)
from kexue.layers.masking import MaskedGlobalAveragePooling1D

__all__ = ["POOLINGS", "SelectPosition", "encoder_classifier", "encoder_attention",
           "key_value_retrieval", "pooled_classifier"]

POOLINGS = ("mean", "last")
"""How :func:`encoder_classifier` turns the token states into one vector."""


@keras.saving.register_keras_serializable(package="kexue")
class SelectPosition(keras.layers.Layer):
    """The state at one position: ``(B, n, d)`` → ``(B, d)``, ``inputs[:, index]``.

    ``index`` counts from the end when negative (``-1``: the last position, where
    :func:`key_value_retrieval` puts its query). A propagated mask is consumed.

    Used in: book/transformers/synthesizer.md
    """

    def __init__(self, index=-1, **kwargs):
        super().__init__(**kwargs)
        if not _is_int(index):
            raise TypeError(f"index must be an integer, got {describe(index)}.")
        self.index = int(index)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"inputs must have shape (batch, n, d), got shape "
                             f"{tuple(input_shape)}.")
        n = input_shape[1]
        if _is_int(n) and not -n <= self.index < n:
            raise ValueError(f"index must be in [-{n}, {n}) for inputs of {n} positions, got "
                             f"{self.index}.")

    def call(self, inputs, mask=None):
        return inputs[:, self.index]

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(index=self.index)
        return config


def _vocab_sizes(vocab_size):
    if _is_int(vocab_size):
        return (check_int(vocab_size, "vocab_size", minimum=2),)
    if (not isinstance(vocab_size, (list, tuple)) or not vocab_size
            or not all(_is_int(v) and v >= 2 for v in vocab_size)):
        raise ValueError(f"vocab_size must be an integer >= 2 or a non-empty list of them (one "
                         f"per id stream), got {describe(vocab_size)}.")
    return tuple(int(v) for v in vocab_size)


def encoder_classifier(kind, vocab_size, num_classes, max_len, dim=64, heads=4, layers=1,
                       ffn_dim=None, activation="relu", pooling="mean", dropout=0.0,
                       name=None, **attention_options):
    """A Transformer encoder classifier whose attention scores are built the ``kind`` way.

    Inputs: ``(B, n)`` integer ids, ``n <= max_len``, 0 as padding (a list of such arrays, one
    per entry of ``vocab_size``, when ``vocab_size`` is a list: their embeddings are added and
    the first stream's zeros mark the padding). Each token's vector is
    ``h_t = sum_s E_s[ids_s[t]] + P[t]`` (learned positions: the dense and random kinds are tied
    to absolute positions anyway), then ``layers`` post-LN blocks
    ``y = LN(x + A(x))``, ``out = LN(y + W_2 act(W_1 y))`` with ``W_1`` ``(dim, ffn_dim)``
    (``4 dim`` by default, ReLU) and ``A`` a ``SynthesizerAttention(kind, max_len, heads,
    dim // heads, **attention_options)`` that ignores padded keys, then the mean of the real
    positions (``pooling="mean"``) or the state of the last position (``"last"``), then a
    ``Dense(num_classes)`` to logits ``(B, num_classes)``.

    Layers are named ``embedding_<s>``, ``positions``, ``block_<i>`` (its attention,
    ``block_<i>.attention``, is named ``attention_<i>``), ``pool`` and ``logits``.

    Used in: book/transformers/synthesizer.md
    """
    kind = check_choice(kind, "kind", SYNTHESIZER_KINDS)
    sizes = _vocab_sizes(vocab_size)
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    max_len = check_int(max_len, "max_len")
    dim = check_int(dim, "dim")
    heads = check_int(heads, "heads")
    if dim % heads:
        raise ValueError(f"heads must divide dim={dim} (the head size is dim // heads), got "
                         f"heads={heads}.")
    layers = check_int(layers, "layers")
    ffn_dim = 4 * dim if ffn_dim is None else check_int(ffn_dim, "ffn_dim")
    pooling = check_choice(pooling, "pooling", POOLINGS)
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    ids = [keras.Input((None,), dtype="int32", name="token_ids" if len(sizes) == 1
                       else f"ids_{s}") for s in range(len(sizes))]
    streams = [keras.layers.Embedding(v, dim, mask_zero=s == 0, name=f"embedding_{s}")(x)
               for s, (v, x) in enumerate(zip(sizes, ids))]
    h = streams[0] if len(streams) == 1 else keras.layers.Add(name="embeddings")(streams)
    h = PositionEmbedding(max_len, name="positions")(h)
    for i in range(layers):
        attention = SynthesizerAttention(kind, max_len, heads, dim // heads, dropout=dropout,
                                         name=f"attention_{i}", **attention_options)
        h = TransformerBlock(heads, dim // heads, ffn_dim, dropout=dropout,
                             activation=activation, attention=attention, name=f"block_{i}")(h)
    pool = MaskedGlobalAveragePooling1D if pooling == "mean" else SelectPosition
    h = pool(name="pool")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(ids[0] if len(ids) == 1 else ids, logits,
                       name=name or f"{kind}_encoder_classifier")


def encoder_attention(model, inputs):
    """The attention weights of every block of an :func:`encoder_classifier` model.

    ``inputs``: what the model takes (one ``(B, n)`` id array, or the list of them). Returns a
    list with one NumPy array ``(B, heads, n, n)`` per block (row ``i``: how query ``i`` weighs
    the keys; padded keys get weight 0), computed as the model computes them at inference.

    Used in: book/transformers/synthesizer.md
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model built by encoder_classifier, got "
                        f"{describe(model)}.")
    names = {layer.name for layer in model.layers}
    streams = sorted(n for n in names if n.startswith("embedding_"))
    if "positions" not in names or "block_0" not in names or not streams:
        raise ValueError(f"model must be built by encoder_classifier (layers embedding_0, "
                         f"positions, block_0, ...), got layers {sorted(names)}.")
    ids = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    if len(ids) != len(streams):
        raise ValueError(f"inputs must hold one id array per embedding ({len(streams)}), got "
                         f"{len(ids)}.")
    ids = [ops.convert_to_tensor(np.asarray(x), dtype="int32") for x in ids]
    for x in ids:
        if len(x.shape) != 2 or x.shape != ids[0].shape:
            raise ValueError(f"inputs must be (batch, n) id arrays of one shape, got shapes "
                             f"{[tuple(y.shape) for y in ids]}.")
    h = model.get_layer("embedding_0")(ids[0])
    for s in range(1, len(ids)):
        h = h + model.get_layer(f"embedding_{s}")(ids[s])
    h = model.get_layer("positions")(h)
    key_mask = ops.not_equal(ids[0], 0)
    weights, i = [], 0
    while f"block_{i}" in names:
        h, w = model.get_layer(f"block_{i}")(h, key_mask=key_mask, training=False,
                                             return_attention=True)
        weights.append(ops.convert_to_numpy(w))
        i += 1
    return weights


def key_value_retrieval(num, pairs=8, keys=32, values=16, seed=0):
    """A content-based lookup task: ``pairs`` key–value pairs, then a query key.

    Each example has ``pairs + 1`` positions. Position ``t < pairs`` holds the pair
    ``(k_t, v_t)``: distinct keys drawn from ``keys``, values drawn from ``values`` with
    replacement; the last position holds the query ``k_j`` (``j`` uniform) and a null value.
    The label is ``v_j``: which value the query's key carries. The pair order is random, so
    the answer can be found only by comparing the query's content with the keys' content.

    Returns a dict: ``inputs`` ``[key_ids, value_ids]``, both ``(num, pairs + 1)`` int32 (key
    ids ``1..keys``, value ids ``1..values`` and ``values + 1`` for the null value, 0 never
    occurs), ``labels`` ``(num,)`` in ``0..values - 1``, ``position`` ``(num,)`` (``j``) and
    ``vocab_sizes`` ``(keys + 1, values + 2)`` for :func:`encoder_classifier`. Chance
    accuracy is ``1 / values``.

    Used in: book/transformers/synthesizer.md
    """
    num = check_int(num, "num")
    pairs = check_int(pairs, "pairs")
    keys = check_int(keys, "keys", minimum=pairs, what=f"an integer >= pairs={pairs} (the keys "
                                                         f"of one example are distinct)")
    values = check_int(values, "values", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    k = np.argsort(rng.random((num, keys)), axis=1)[:, :pairs] + 1
    v = rng.integers(1, values + 1, (num, pairs))
    j = rng.integers(0, pairs, num)
    rows = np.arange(num)
    key_ids = np.concatenate([k, k[rows, j][:, None]], axis=1).astype("int32")
    value_ids = np.concatenate([v, np.full((num, 1), values + 1)], axis=1).astype("int32")
    return {"inputs": [key_ids, value_ids], "labels": (v[rows, j] - 1).astype("int32"),
            "position": j.astype("int32"), "vocab_sizes": (keys + 1, values + 2)}


# ------------------------------------------------------------ pooled heads for BERT fine-tuning

def pooled_classifier(encoder, num_classes, pooling="mean", dropout=0.1,
                      name="pooled_classifier"):
    """A functional classifier ``{"token_ids", "segment_ids"}`` → logits ``(B, num_classes)``:
    ``encoder`` (a :class:`kexue.models.bert.BertModel`, its own weights, shared: fine-tuning
    changes it) and a :class:`kexue.models.bert.PooledHead` named ``"head"`` (padding, id 0,
    left out of the mean). With ``pooling="cls"`` it computes what :func:`kexue.models.bert.build_classifier`
    computes; :func:`kexue.models.bert.fine_tune` trains either.

    Used in: no chapter at present (the Transformer chapters fine-tune on tagging since
    their classification tasks showed no gain from pre-training); kept, tested, for classification.
    """
    from kexue.models import bert  # here: bert imports this module's package while registering

    check_instance(encoder, "encoder", bert.BertModel, "a kexue.models.bert.BertModel")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    seg = keras.Input((None,), dtype="int32", name="segment_ids")
    h = encoder({"token_ids": ids, "segment_ids": seg})
    head = bert.PooledHead(num_classes, pooling, dropout, name="head")
    logits = head(h, key_mask=ops.not_equal(ids, 0))
    return keras.Model({"token_ids": ids, "segment_ids": seg}, logits, name=name)
