"""Autoregressive models over grids of discrete codes: the prior a VQ-VAE samples from.

A grid of codes ``c (rows, cols)`` with entries in ``[0, K)`` is read in raster order as a
sequence ``c_0 … c_{L−1}`` (``L = rows · cols``) and modelled as
``p(c) = Π_t p(c_t | c_{<t})``. The network sees the sequence shifted right behind a start
token (code ``K``) and predicts every position at once; causal attention keeps position ``t``
from seeing ``c_t`` or anything after it.

- :class:`GridPositionEmbedding`: adds a learned row and a learned column embedding of each
  position of the grid;
- :func:`code_transformer`: the causal Transformer (token + row + column embeddings, pre-norm
  blocks of ``keras.layers.MultiHeadAttention(use_causal_mask=True)`` and a ReLU MLP, logits
  over the ``K`` codes);
- :func:`prior_inputs`: the shifted inputs and the targets of a batch of code grids, for
  ``fit`` with sparse cross-entropy;
- :func:`code_nll`: the mean negative log-likelihood per code, in nats;
- :func:`sample_codes`: seeded, batched ancestral sampling of code grids.

Used in: book/generative/vq-vae.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue import _checks
from kexue._checks import as_array, check_int, check_real, describe

__all__ = [
    "GridPositionEmbedding",
    "code_transformer",
    "prior_inputs",
    "code_nll",
    "sample_codes",
]


@keras.saving.register_keras_serializable(package="kexue")
class GridPositionEmbedding(keras.layers.Layer):
    """``h (batch, rows·cols, dim) -> h + row_emb[t // cols] + col_emb[t % cols]``.

    Position ``t`` of the raster-ordered sequence lies in row ``t // cols`` and column
    ``t % cols``; each gets a learned vector of size ``dim``.

    Used in: book/generative/vq-vae.md
    """

    def __init__(self, rows, cols, **kwargs):
        super().__init__(**kwargs)
        self.rows = check_int(rows, "rows")
        self.cols = check_int(cols, "cols")

    def build(self, input_shape):
        length, dim = input_shape[-2], input_shape[-1]
        if length is not None and length != self.rows * self.cols:
            raise ValueError(f"h must have rows*cols={self.rows * self.cols} positions, got "
                             f"shape {tuple(input_shape)}.")
        init = keras.initializers.RandomNormal(stddev=0.02)
        self.row_embedding = self.add_weight(shape=(self.rows, dim), initializer=init,
                                             name="row_embedding")
        self.col_embedding = self.add_weight(shape=(self.cols, dim), initializer=init,
                                             name="col_embedding")

    def call(self, h):
        pos = (self.row_embedding[:, None, :] + self.col_embedding[None, :, :])
        pos = ops.reshape(pos, (self.rows * self.cols, -1))
        return h + ops.cast(pos, h.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(rows=self.rows, cols=self.cols)
        return config


def _grid(grid):
    if (not isinstance(grid, (tuple, list)) or len(grid) != 2
            or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0
                       for n in grid)):
        raise ValueError(f"grid must be (rows, cols) of positive integers, got "
                         f"{describe(grid)}.")
    return int(grid[0]), int(grid[1])


def code_transformer(num_codes, grid=(7, 7), d_model=64, heads=4, layers=2, mlp_ratio=4,
                     dropout=0.0, name="code_transformer"):
    """A causal Transformer over raster-ordered code grids.

    Input ``(batch, L)`` int tokens in ``[0, num_codes]`` (``num_codes`` is the start token):
    the grid shifted right, ``[K, c_0, …, c_{L−2}]`` (:func:`prior_inputs`). Output
    ``(batch, L, num_codes)`` logits, position ``t`` predicting ``c_t``. Token embedding plus
    :class:`GridPositionEmbedding` (the row and column of the predicted position), ``layers``
    pre-norm blocks ``h += MHA(LN h)`` (causal, ``heads`` heads of ``d_model / heads``) and
    ``h += W₂ relu(W₁ LN h)`` (hidden ``mlp_ratio · d_model``), a final LayerNorm and a Dense
    to ``num_codes``.

    Used in: book/generative/vq-vae.md
    """
    num_codes = check_int(num_codes, "num_codes", 2)
    rows, cols = _grid(grid)
    d_model = check_int(d_model, "d_model")
    heads = check_int(heads, "heads")
    if d_model % heads:
        raise ValueError(f"d_model must be divisible by heads={heads}, got {d_model}.")
    layers = check_int(layers, "layers", 0)
    mlp_ratio = check_int(mlp_ratio, "mlp_ratio")
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    L = keras.layers
    tokens = keras.Input((rows * cols,), dtype="int32", name="tokens")
    h = L.Embedding(num_codes + 1, d_model, name="token_embedding")(tokens)
    h = GridPositionEmbedding(rows, cols, name="grid_position")(h)
    for i in range(layers):
        a = L.LayerNormalization(name=f"block{i}_ln1")(h)
        a = L.MultiHeadAttention(heads, d_model // heads, dropout=dropout,
                                 name=f"block{i}_attention")(a, a, use_causal_mask=True)
        h = L.Add(name=f"block{i}_add1")([h, a])
        m = L.LayerNormalization(name=f"block{i}_ln2")(h)
        m = L.Dense(mlp_ratio * d_model, activation="relu", name=f"block{i}_mlp1")(m)
        m = L.Dense(d_model, name=f"block{i}_mlp2")(m)
        if dropout:
            m = L.Dropout(dropout)(m)
        h = L.Add(name=f"block{i}_add2")([h, m])
    h = L.LayerNormalization(name="final_ln")(h)
    logits = L.Dense(num_codes, name="logits")(h)
    return keras.Model(tokens, logits, name=name)


def _prior_shape(model):
    """``(num_codes, rows, cols)`` of a model built by :func:`code_transformer`."""
    _checks.check_instance(model, "model", keras.Model, "a Keras model built by code_transformer")
    grids = [layer for layer in model.layers if isinstance(layer, GridPositionEmbedding)]
    if len(grids) != 1:
        raise ValueError(f"model must hold one GridPositionEmbedding (a model built by "
                         f"code_transformer), got {len(grids)} in {model.name!r}.")
    return int(model.outputs[0].shape[-1]), grids[0].rows, grids[0].cols


def prior_inputs(codes, num_codes):
    """``(inputs, targets)`` for ``fit`` from code grids ``codes (n, rows, cols)``.

    ``targets (n, L)`` int32 is the raster-ordered grid; ``inputs (n, L)`` the same shifted
    right by one with the start token ``num_codes`` in front.

    Used in: book/generative/vq-vae.md
    """
    num_codes = check_int(num_codes, "num_codes", 2)
    codes = as_array(codes, "codes")
    _checks.check_shape(codes, "codes", (None, None, None))
    if codes.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got {describe(codes)}.")
    _checks.check_int_range(codes, "codes", 0, num_codes)
    targets = codes.reshape(len(codes), -1).astype("int32")
    inputs = np.concatenate([np.full((len(codes), 1), num_codes, "int32"), targets[:, :-1]],
                            axis=1)
    return inputs, targets


def code_nll(model, codes, batch_size=500):
    """Mean negative log-likelihood per code (nats) of code grids ``codes (n, rows, cols)``
    under the prior ``model`` (:func:`code_transformer`); ``log K`` for a uniform guess.

    Used in: book/generative/vq-vae.md
    """
    num_codes, _, _ = _prior_shape(model)
    batch_size = check_int(batch_size, "batch_size")
    inputs, targets = prior_inputs(codes, num_codes)
    total = 0.0
    for i in range(0, len(inputs), batch_size):
        logits = ops.convert_to_numpy(model(inputs[i:i + batch_size], training=False))
        logits = logits.astype("float64")
        logits -= logits.max(axis=-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
        total -= np.take_along_axis(logp, targets[i:i + batch_size, :, None], axis=-1).sum()
    return float(total / targets.size)


def sample_codes(model, num, temperature=1.0, seed=0, batch_size=512, progress=False):
    """Draw ``num`` code grids ``(num, rows, cols)`` int32 from the prior ``model``.

    Ancestral sampling in raster order: at step ``t`` the whole prefix is run through the
    model (no cache; causal attention makes the later positions irrelevant) and ``c_t`` is drawn
    from ``softmax(logits_t / temperature)`` with NumPy's generator seeded by ``seed``, so that
    the draws repeat. ``progress`` shows a bar over the positions.

    Used in: book/generative/vq-vae.md
    """
    num_codes, rows, cols = _prior_shape(model)
    num = check_int(num, "num")
    temperature = check_real(temperature, "temperature", 0.0, low_open=True)
    seed = check_int(seed, "seed", 0)
    batch_size = check_int(batch_size, "batch_size")
    progress = _checks.check_bool(progress, "progress")
    length = rows * cols
    rng = np.random.default_rng(seed)
    tokens = np.full((num, length), num_codes, "int32")
    out = np.zeros((num, length), "int32")
    steps = range(length)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="sampling codes", leave=False)
    for t in steps:
        for i in range(0, num, batch_size):
            logits = ops.convert_to_numpy(model(tokens[i:i + batch_size], training=False))
            z = logits[:, t, :].astype("float64") / temperature
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            u = rng.random((len(p), 1))
            draw = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), num_codes - 1)
            out[i:i + batch_size, t] = draw
            if t + 1 < length:
                tokens[i:i + batch_size, t + 1] = draw
    return out.reshape(num, rows, cols)

