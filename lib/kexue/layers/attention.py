"""Attention: scaled dot-product and multi-head attention, position embeddings, the Transformer
block, and the Synthesizer's ways of building the attention scores without token–token products.

Shapes: ``B`` batch, ``h`` heads, ``n`` queries, ``m`` keys, ``d`` the model width, ``d_k`` /
``d_v`` the key / value size per head.

- :func:`scaled_dot_product_attention`: ``softmax(q k^T / sqrt(d_k) + masks) v`` on
  ``(B, h, n, d_k)`` tensors, returning the output and the attention weights;
- :func:`attention_mask`: a key (padding) mask and/or a causal mask as one boolean
  ``(B, 1, n, m)`` mask; masked scores get exactly zero weight, a row with no visible key gives
  zero weights and a zero output (never a uniform average over padding);
- :class:`MultiHeadSelfAttention`: self- or cross-attention with every head in one projection
  per query/key/value (``(d, h d_k)`` kernels, heads split by a reshape in C order: no Python
  loop over heads), optionally returning its weights;
- :class:`SynthesizerAttention`: the same layer with the scores built another way (dense,
  random trainable or fixed, their low-rank factorisations, or a learned mixture with the
  dot product);
- :func:`sinusoidal_positions`, :class:`SinusoidalPositionEmbedding`,
  :func:`sinusoidal_shift_matrix` (``PE(p + k) = M_k PE(p)``) and the learned
  :class:`PositionEmbedding`;
- :class:`TransformerBlock`: attention and a GeLU feed-forward network with residuals and
  LayerNorm, after each sub-layer (post-LN, as in BERT) or before it (pre-LN).

Used in: book/transformers/attention.md, book/transformers/synthesizer.md,
book/transformers/lossless-enlargement.md
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    _is_int,
    as_tensor,
    check_bool,
    check_choice,
    check_dtype,
    check_int,
    check_mask,
    check_real,
    check_shape,
    describe,
)
from kexue.layers.core import _activation
from kexue.layers.masking import masked_softmax

# ------------------------------------------------------------------------- functions


def attention_mask(key_mask=None, queries=None, keys=None, causal=False):
    """One boolean mask ``(B or 1, 1, n, m)`` from a key mask and/or the causal rule.

    ``key_mask`` ``(B, m)`` (booleans or 0/1) marks the real keys; ``causal`` lets query ``i``
    see key ``j`` only when ``j <= i + m - n`` (``j <= i`` for self-attention). ``queries`` and
    ``keys`` are ``n`` and ``m`` (Python ints or scalar tensors; ``keys`` defaults to the key
    mask's length, ``queries`` to ``keys``). Returns ``None`` when there is nothing to mask.

    Used in: book/transformers/attention.md
    """
    causal = check_bool(causal, "causal")
    if key_mask is None and not causal:
        return None
    keep = None
    if key_mask is not None:
        key_mask = as_tensor(key_mask, "key_mask")
        check_dtype(key_mask, "key_mask", ("bool", "number"))
        check_shape(key_mask, "key_mask", ("batch", "m"))
        check_mask(key_mask, "key_mask")
        keep = ops.greater(ops.cast(key_mask, "int32"), 0)[:, None, None, :]
        if keys is None:
            keys = ops.shape(key_mask)[1]
    if causal:
        if keys is None:
            raise ValueError("keys must give the number of keys when causal=True and there is "
                             "no key_mask, got None.")
        queries = keys if queries is None else queries
        i = ops.arange(queries, dtype="int32")[:, None]
        j = ops.arange(keys, dtype="int32")[None, :]
        lower = ops.less_equal(j, i + (keys - queries))[None, None]
        keep = lower if keep is None else ops.logical_and(keep, lower)
    return keep


def _weights(scores, mask):
    """``softmax(scores)`` over the keys, masked scores at exactly zero weight."""
    return ops.softmax(scores, axis=-1) if mask is None else masked_softmax(scores, mask, axis=-1)


def scaled_dot_product_attention(q, k, v, key_mask=None, causal=False, scale=None):
    """``softmax(q k^T * scale) v`` over the key axis, with key and causal masks.

    Args:
        q: queries ``(B, h, n, d_k)``; ``k``: keys ``(B, h, m, d_k)``; ``v``: values
            ``(B, h, m, d_v)``; a float dtype.
        key_mask: ``(B, m)`` booleans or 0/1, true at real keys; masked keys get weight 0.
        causal: query ``i`` sees only keys ``j <= i + m - n``.
        scale: the factor of the scores, ``1 / sqrt(d_k)`` by default.

    Returns:
        ``(out, weights)``: ``(B, h, n, d_v)`` and ``(B, h, n, m)``. A query that sees no key
        (an all-padding row) gets all-zero weights and a zero output.

    Used in: book/transformers/attention.md
    """
    q = as_tensor(q, "q")
    check_dtype(q, "q", "float")
    k = as_tensor(k, "k")
    v = as_tensor(v, "v")
    dims = {}
    check_shape(q, "q", ("batch", "heads", "n", "d_k"), dims)
    check_shape(k, "k", ("batch", "heads", "m", "d_k"), dims)
    check_shape(v, "v", ("batch", "heads", "m", "d_v"), dims)
    if key_mask is not None:
        check_shape(as_tensor(key_mask, "key_mask"), "key_mask", ("batch", "m"), dims)
    if scale is None:
        scale = 1.0 / float(np.sqrt(q.shape[-1])) if q.shape[-1] else None
        if scale is None:
            scale = ops.rsqrt(ops.cast(ops.shape(q)[-1], q.dtype))
    else:
        scale = check_real(scale, "scale", 0.0, low_open=True)
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) * scale
    weights = _weights(scores, attention_mask(key_mask, ops.shape(q)[2], ops.shape(k)[2], causal))
    return ops.matmul(weights, v), weights


def sinusoidal_positions(length, dim, interleave=True, base=10000.0, dtype="float32"):
    """The sinusoidal position table ``PE`` of shape ``(length, dim)``.

    With frequencies ``w_i = base^(-2i/dim)``, ``i < dim/2``: ``PE[p, 2i] = sin(p w_i)`` and
    ``PE[p, 2i+1] = cos(p w_i)`` when ``interleave`` (the article's layout), or the ``dim/2``
    sines followed by the ``dim/2`` cosines otherwise. ``length`` may be a scalar tensor (the
    length of a batch inside a model).

    Used in: book/transformers/attention.md
    """
    dim = check_int(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even (sine and cosine pairs), got {dim}.")
    if _is_int(length):
        check_int(length, "length", minimum=0)
    interleave = check_bool(interleave, "interleave")
    base = check_real(base, "base", 1.0, low_open=True)
    freqs = base ** (-np.arange(0, dim, 2, dtype="float64") / dim)
    if _is_int(length):  # a known length: the table in float64 NumPy, then cast
        angles = np.arange(length, dtype="float64")[:, None] * freqs[None, :]
        sin, cos, xp = np.sin(angles), np.cos(angles), np
    else:  # a length known only when the model runs (float32 angles)
        angles = ops.cast(ops.arange(length), "float32")[:, None] * ops.convert_to_tensor(
            freqs.astype("float32"))[None, :]
        sin, cos, xp = ops.sin(angles), ops.cos(angles), ops
    if interleave:
        table = xp.reshape(xp.stack([sin, cos], axis=-1), (-1, dim))
    else:
        table = xp.concatenate([sin, cos], axis=-1)
    return ops.convert_to_tensor(table, dtype=dtype) if xp is np else ops.cast(table, dtype)


def sinusoidal_shift_matrix(shift, dim, interleave=True, base=10000.0):
    """The ``(dim, dim)`` matrix ``M_k`` with ``PE(p + k) = M_k PE(p)`` for every ``p``.

    Each frequency's (sin, cos) pair is turned by the angle ``k w_i``:
    ``sin((p+k)w) = cos(kw) sin(pw) + sin(kw) cos(pw)``,
    ``cos((p+k)w) = -sin(kw) sin(pw) + cos(kw) cos(pw)``; the matrix is orthogonal and depends
    on ``k`` only. A NumPy float64 array, laid out like :func:`sinusoidal_positions`.

    Used in: book/transformers/attention.md
    """
    if not _is_int(shift):
        raise TypeError(f"shift must be an integer, got {describe(shift)}.")
    dim = check_int(dim, "dim", minimum=2)
    if dim % 2:
        raise ValueError(f"dim must be even (sine and cosine pairs), got {dim}.")
    interleave = check_bool(interleave, "interleave")
    base = check_real(base, "base", 1.0, low_open=True)
    half = dim // 2
    theta = shift * base ** (-np.arange(0, dim, 2, dtype="float64") / dim)
    sin_idx = 2 * np.arange(half) if interleave else np.arange(half)
    cos_idx = sin_idx + 1 if interleave else sin_idx + half
    m = np.zeros((dim, dim))
    m[sin_idx, sin_idx] = np.cos(theta)
    m[sin_idx, cos_idx] = np.sin(theta)
    m[cos_idx, sin_idx] = -np.sin(theta)
    m[cos_idx, cos_idx] = np.cos(theta)
    return m


# ------------------------------------------------------------------------- position layers


@keras.saving.register_keras_serializable(package="kexue")
class SinusoidalPositionEmbedding(keras.layers.Layer):
    """Adds (``merge="add"``) or appends (``merge="concat"``) the sinusoidal position table.

    Input ``(B, n, d)``; output ``(B, n, d)`` for ``"add"`` (the table has width ``d``) or
    ``(B, n, d + dim)`` for ``"concat"``. No weights; a propagated mask passes through.

    Used in: book/transformers/attention.md
    """

    def __init__(self, merge="add", dim=None, interleave=True, base=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.merge = check_choice(merge, "merge", ("add", "concat"))
        if merge == "concat" and dim is None:
            raise ValueError("dim must give the width of the appended table when "
                             "merge='concat', got None.")
        self.dim = None if dim is None else check_int(dim, "dim", minimum=2)
        if self.dim is not None and self.dim % 2:
            raise ValueError(f"dim must be even (sine and cosine pairs), got {dim}.")
        self.interleave = check_bool(interleave, "interleave")
        self.base = check_real(base, "base", 1.0, low_open=True)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"inputs must have shape (batch, n, d), got shape "
                             f"{tuple(input_shape)}.")
        if self.merge == "add" and input_shape[-1] is not None and input_shape[-1] % 2:
            raise ValueError(f"inputs must have an even width d for merge='add', got shape "
                             f"{tuple(input_shape)}.")

    def call(self, inputs):
        dim = self.dim if self.merge == "concat" else inputs.shape[-1]
        n = inputs.shape[1] if _is_int(inputs.shape[1]) else ops.shape(inputs)[1]
        table = sinusoidal_positions(n, dim, self.interleave, self.base, inputs.dtype)
        if self.merge == "add":
            return inputs + table[None]
        table = ops.broadcast_to(table[None], (ops.shape(inputs)[0], ops.shape(inputs)[1], dim))
        return ops.concatenate([inputs, table], axis=-1)

    def compute_output_shape(self, input_shape):
        if self.merge == "add":
            return tuple(input_shape)
        return (*input_shape[:-1], None if input_shape[-1] is None else input_shape[-1] + self.dim)

    def get_config(self):
        config = super().get_config()
        config.update(merge=self.merge, dim=self.dim, interleave=self.interleave, base=self.base)
        return config


@keras.saving.register_keras_serializable(package="kexue")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned position table ``P`` ``(max_len, d)``: ``x + P[:n]``.

    Input ``(B, n, d)`` with ``n <= max_len``; output of the same shape. The table is the
    weight ``embeddings`` (so that a model can be widened or copied weight by weight).

    Used in: book/transformers/synthesizer.md, book/transformers/lossless-enlargement.md
    """

    def __init__(self, max_len, initializer="truncated_normal", **kwargs):
        super().__init__(**kwargs)
        self.max_len = check_int(max_len, "max_len")
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"inputs must have shape (batch, n, d) with a known d, got shape "
                             f"{tuple(input_shape)}.")
        _check_length(input_shape[1], self.max_len)
        self.embeddings = self.add_weight(shape=(self.max_len, input_shape[-1]),
                                          initializer=self.initializer, name="embeddings")

    def call(self, inputs):
        _check_length(inputs.shape[1], self.max_len)
        return inputs + self.embeddings[None, : ops.shape(inputs)[1]]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(max_len=self.max_len,
                      initializer=keras.initializers.serialize(self.initializer))
        return config


def _check_length(n, max_len, name="inputs"):
    if _is_int(n) and n > max_len:  # a static length (not None, not a symbolic JAX dimension)
        raise ValueError(f"{name} must have at most max_len={max_len} positions, got {n}.")


# ------------------------------------------------------------------------- attention layers


def _split_heads(x, heads):
    """``(B, n, h d)`` → ``(B, h, n, d)`` (the head axis split off in C order)."""
    b, n = ops.shape(x)[0], ops.shape(x)[1]
    return ops.transpose(ops.reshape(x, (b, n, heads, -1)), (0, 2, 1, 3))


def _merge_heads(x):
    """``(B, h, n, d)`` → ``(B, n, h d)``."""
    b, h, n, d = x.shape
    shape = ops.shape(x)
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)),
                       (shape[0], shape[2], (h * d) if h and d else -1))


@keras.saving.register_keras_serializable(package="kexue")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product attention, every head in one projection.

    ``call(x, context=None, key_mask=None)`` with ``x`` ``(B, n, d)`` and ``context``
    ``(B, m, d_c)`` (cross-attention; ``x`` itself when ``None``) returns ``(B, n, d_out)``:
    ``Q = x W_q``, ``K = c W_k``, ``V = c W_v`` with kernels ``(d, h d_k)``, split into ``h``
    heads by a reshape (C order: head ``i`` owns columns ``i d_k .. (i+1) d_k``), attention per
    head as in :func:`scaled_dot_product_attention`, heads concatenated, then ``W_o``
    ``(h d_v, d_out)`` when ``output_projection`` (``d_out`` = ``output_dim`` or ``d``).

    ``key_mask`` ``(B, m)`` marks the real keys; for self-attention the mask Keras propagates
    is used when none is given. ``causal=True`` hides later keys. With
    ``return_attention=True`` the call returns ``(out, weights)``, weights ``(B, h, n, m)``.
    ``dropout`` drops attention weights in training.

    With copied kernels (``W_q.reshape(d, h, d_k)``, ``W_o.reshape(h, d_v, d_out)``) it equals
    ``keras.layers.MultiHeadAttention(h, d_k)``.

    Used in: book/transformers/attention.md, book/transformers/synthesizer.md,
    book/transformers/lossless-enlargement.md
    """

    def __init__(self, heads, head_size, value_size=None, output_dim=None, use_bias=True,
                 output_projection=True, causal=False, dropout=0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.heads = check_int(heads, "heads")
        self.head_size = check_int(head_size, "head_size")
        self.value_size = self.head_size if value_size is None else check_int(
            value_size, "value_size")
        self.output_dim = None if output_dim is None else check_int(output_dim, "output_dim")
        self.use_bias = check_bool(use_bias, "use_bias")
        self.output_projection = check_bool(output_projection, "output_projection")
        self.causal = check_bool(causal, "causal")
        self.dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True
        self._dropout = keras.layers.Dropout(self.dropout)

    # the pieces a subclass may change: which projections exist and how scores are made
    def _uses_query_key(self):
        return True

    def _dense(self, units, name):
        return keras.layers.Dense(units, use_bias=self.use_bias,
                                  kernel_initializer=self.kernel_initializer, name=name)

    def build(self, inputs_shape, context_shape=None):
        input_shape = inputs_shape
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"inputs must have shape (batch, n, d) with a known d, got shape "
                             f"{tuple(input_shape)}.")
        context_shape = input_shape if context_shape is None else context_shape
        d = input_shape[-1]
        if self._uses_query_key():
            self.query = self._dense(self.heads * self.head_size, "query")
            self.query.build(input_shape)
            self.key = self._dense(self.heads * self.head_size, "key")
            self.key.build(context_shape)
        self.value = self._dense(self.heads * self.value_size, "value")
        self.value.build(context_shape)
        if self.output_projection:
            self.out = self._dense(self.output_dim or d, "out")
            self.out.build((*input_shape[:-1], self.heads * self.value_size))
        self._build_scores(input_shape)

    def _build_scores(self, input_shape):
        """Weights of the scores other than the query/key projections (none here)."""

    def _dot_scores(self, x, context):
        q = _split_heads(self.query(x), self.heads)
        k = _split_heads(self.key(context), self.heads)
        return ops.matmul(q, ops.swapaxes(k, -1, -2)) / float(np.sqrt(self.head_size))

    def _scores(self, x, context):
        """Attention logits ``(B, h, n, m)``."""
        return self._dot_scores(x, context)

    def call(self, inputs, context=None, key_mask=None, mask=None, training=None,
             return_attention=False):
        x = inputs
        dims = {}
        check_shape(x, "inputs", ("batch", "n", "d"), dims)
        if context is None:
            context = x
            if key_mask is None:
                key_mask = mask
        else:
            check_shape(context, "context", ("batch", "m", None), dims)
        if key_mask is not None:
            key_mask = as_tensor(key_mask, "key_mask")
            if len(key_mask.shape) == 3 and key_mask.shape[-1] == 1:
                key_mask = ops.squeeze(key_mask, -1)
            check_shape(key_mask, "key_mask", ("batch", "m" if "m" in dims else "n"), dims)
        scores = self._scores(x, context)
        v = _split_heads(self.value(context), self.heads)
        keep = attention_mask(key_mask, ops.shape(x)[1], ops.shape(context)[1], self.causal)
        weights = _weights(scores, keep)
        dropped = self._dropout(weights, training=training) if self.dropout > 0 else weights
        out = _merge_heads(ops.matmul(dropped, v))
        if self.output_projection:
            out = self.out(out)
        return (out, weights) if return_attention else out

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, inputs_shape, context_shape=None):
        input_shape = inputs_shape
        width = (self.output_dim or input_shape[-1]) if self.output_projection else (
            self.heads * self.value_size)
        return (*input_shape[:-1], width)

    def get_config(self):
        config = super().get_config()
        config.update(heads=self.heads, head_size=self.head_size, value_size=self.value_size,
                      output_dim=self.output_dim, use_bias=self.use_bias,
                      output_projection=self.output_projection, causal=self.causal,
                      dropout=self.dropout,
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config


SYNTHESIZER_KINDS = ("dot", "dense", "random", "factorized_dense", "factorized_random", "mix")
"""The ways :class:`SynthesizerAttention` builds the attention scores."""


def _default_factors(n):
    a = int(np.sqrt(n))
    while n % a:
        a -= 1
    return a, n // a


@keras.saving.register_keras_serializable(package="kexue")
class SynthesizerAttention(MultiHeadSelfAttention):
    """Multi-head attention whose scores ``B`` (per head, ``(n, n)``) need no token–token
    product; everything else (values, masks, softmax, output projection) is
    :class:`MultiHeadSelfAttention`'s.

    ``kind``:

    - ``"dot"``: ``B = Q K^T / sqrt(d_k)`` (the standard layer);
    - ``"dense"``: ``B = relu(x W_1 + b_1) W_2 + b_2``, ``W_2`` ``(hidden, h L)``: row ``i``
      depends on token ``i`` alone, column ``j`` is absolute position ``j`` (``L = max_len``);
    - ``"random"``: ``B = R`` ``(h, L, L)``, trainable or fixed (``trainable_random``);
    - ``"factorized_dense"``: two narrow heads ``B_1`` ``(n, a)`` and ``B_2`` ``(n, b)`` with
      ``a b = L``, tiled to ``L`` columns and multiplied: column ``j`` is
      ``B_1[:, j mod a] * B_2[:, j mod b]``, or ``B_2[:, j div a]`` with ``transpose_b2`` (then
      every pair ``(j mod a, j div a)`` occurs once);
    - ``"factorized_random"``: ``B = R_1 R_2^T`` with ``R_1, R_2`` ``(h, L, rank)``;
    - ``"mix"``: ``B = sum_i alpha_i B_i`` over the kinds in ``mix``,
      ``alpha = softmax(logits)`` with learned logits (zeros at first).

    Inputs ``(B, n, d)`` with ``n <= max_len``; scores are cut to the first ``n`` columns (and
    rows for the random kinds). Self-attention only (no ``context``) except for ``"dot"``.

    Used in: book/transformers/synthesizer.md
    """

    def __init__(self, kind, max_len, heads, head_size, hidden=None, rank=8, factors=None,
                 trainable_random=True, transpose_b2=False, mix=("random", "dot"),
                 random_initializer=None, **kwargs):
        super().__init__(heads, head_size, **kwargs)
        self.kind = check_choice(kind, "kind", SYNTHESIZER_KINDS)
        self.max_len = check_int(max_len, "max_len")
        self.hidden = None if hidden is None else check_int(hidden, "hidden")
        self.rank = check_int(rank, "rank")
        if factors is None:
            factors = _default_factors(self.max_len)
        if (not isinstance(factors, (list, tuple)) or len(factors) != 2
                or not all(_is_int(f) and f > 0 for f in factors)
                or factors[0] * factors[1] != self.max_len):
            raise ValueError(f"factors must be two positive integers (a, b) with "
                             f"a * b == max_len={self.max_len}, got {describe(factors)}.")
        self.factors = (int(factors[0]), int(factors[1]))
        self.trainable_random = check_bool(trainable_random, "trainable_random")
        self.transpose_b2 = check_bool(transpose_b2, "transpose_b2")
        if isinstance(mix, str) or not isinstance(mix, (list, tuple)) or len(mix) < 2:
            raise ValueError(f"mix must be a list of at least two kinds, got {describe(mix)}.")
        for m in mix:
            check_choice(m, "mix", SYNTHESIZER_KINDS[:-1])
        if len(set(mix)) != len(mix):
            raise ValueError(f"mix must not repeat a kind, got {describe(mix)}.")
        self.mix = tuple(mix)
        self.random_initializer = keras.initializers.get(
            random_initializer or keras.initializers.RandomNormal(stddev=1.0))

    @property
    def kinds(self):
        """The kinds of score this layer computes (several for ``"mix"``)."""
        return self.mix if self.kind == "mix" else (self.kind,)

    def _uses_query_key(self):
        return "dot" in self.kinds

    def _build_scores(self, input_shape):
        _check_length(input_shape[1], self.max_len)
        h, L = self.heads, self.max_len
        kinds = self.kinds
        if {"dense", "factorized_dense"} & set(kinds):
            self.dense_hidden = keras.layers.Dense(
                self.hidden or input_shape[-1], activation="relu", name="dense_hidden",
                kernel_initializer=self.kernel_initializer)
            self.dense_hidden.build(input_shape)
            hidden_shape = (*input_shape[:-1], self.hidden or input_shape[-1])
        if "dense" in kinds:
            self.dense_scores = self._score_dense(h * L, "dense_scores", hidden_shape)
        if "factorized_dense" in kinds:
            a, b = self.factors
            self.dense_scores_a = self._score_dense(h * a, "dense_scores_a", hidden_shape)
            self.dense_scores_b = self._score_dense(h * b, "dense_scores_b", hidden_shape)
        if "random" in kinds:
            self.random_scores = self.add_weight(
                shape=(h, L, L), initializer=self.random_initializer, name="random_scores",
                trainable=self.trainable_random)
        if "factorized_random" in kinds:
            self.random_left = self.add_weight(
                shape=(h, L, self.rank), initializer=self.random_initializer,
                name="random_left", trainable=self.trainable_random)
            self.random_right = self.add_weight(
                shape=(h, L, self.rank), initializer=self.random_initializer,
                name="random_right", trainable=self.trainable_random)
        if self.kind == "mix":
            self.mix_logits = self.add_weight(shape=(len(kinds),), initializer="zeros",
                                              name="mix_logits")

    def _score_dense(self, units, name, input_shape):
        layer = keras.layers.Dense(units, name=name, kernel_initializer=self.kernel_initializer)
        layer.build(input_shape)
        return layer

    def factorized_columns(self):
        """Column maps ``(cols_a, cols_b)`` of the factorised dense kind: column ``j`` of
        ``B`` is ``B_1[:, cols_a[j]] * B_2[:, cols_b[j]]`` (NumPy int arrays of length L)."""
        a, b = self.factors
        j = np.arange(self.max_len)
        return j % a, (j // a if self.transpose_b2 else j % b)

    def _kind_scores(self, kind, x, context, n):
        if kind == "dot":
            return self._dot_scores(x, x if context is None else context)
        if kind == "dense":
            return _split_heads(self.dense_scores(self.dense_hidden(x)), self.heads)[..., :n]
        if kind == "factorized_dense":
            hid = self.dense_hidden(x)
            b1 = _split_heads(self.dense_scores_a(hid), self.heads)
            b2 = _split_heads(self.dense_scores_b(hid), self.heads)
            cols_a, cols_b = self.factorized_columns()
            scores = ops.take(b1, cols_a, axis=-1) * ops.take(b2, cols_b, axis=-1)
            return scores[..., :n]
        if kind == "random":
            r = self.random_scores
        else:
            r = ops.einsum("hik,hjk->hij", self.random_left, self.random_right)
        r = r[:, :n, :n][None]
        return ops.broadcast_to(r, (ops.shape(x)[0], self.heads, ops.shape(x)[1],
                                    ops.shape(x)[1]))

    def _scores(self, x, context):
        if context is not None and context is not x and self.kind != "dot":
            raise ValueError(f"context must be None: kind={self.kind!r} is self-attention only "
                             f"(its scores are tied to positions), got {describe(context)}.")
        _check_length(x.shape[1], self.max_len)
        n = ops.shape(x)[1]
        if self.kind != "mix":
            return self._kind_scores(self.kind, x, context, n)
        alpha = ops.softmax(self.mix_logits)
        return sum(alpha[i] * self._kind_scores(kind, x, context, n) for i, kind in enumerate(self.kinds))

    def get_config(self):
        config = super().get_config()
        config.update(kind=self.kind, max_len=self.max_len, hidden=self.hidden, rank=self.rank,
                      factors=list(self.factors), trainable_random=self.trainable_random,
                      transpose_b2=self.transpose_b2, mix=list(self.mix),
                      random_initializer=keras.initializers.serialize(self.random_initializer))
        return config


# ------------------------------------------------------------------------- the Transformer block


@keras.saving.register_keras_serializable(package="kexue")
class TransformerBlock(keras.layers.Layer):
    """Attention and a feed-forward network, each with a residual connection and LayerNorm.

    Input ``(B, n, d)``, output ``(B, n, d)``. With ``F(y) = W_2 act(W_1 y + b_1) + b_2``
    (``W_1`` ``(d, ffn_dim)``, GeLU by default) and ``A`` the attention layer:

    - post-LN (BERT, the default): ``y = LN(x + A(x))``, ``out = LN(y + F(y))``;
    - pre-LN (``pre_ln=True``): ``y = x + A(LN(x))``, ``out = y + F(LN(y))`` (a network of such
      blocks needs a final LayerNorm).

    ``attention``: the attention layer (a :class:`MultiHeadSelfAttention` or subclass, or its
    serialized config); by default ``MultiHeadSelfAttention(heads, head_size)`` with the block's
    dropout and ``causal``. ``dropout`` applies to the attention weights and to each residual
    branch. ``call(x, key_mask=None, return_attention=False)``; the propagated mask is used as
    the key mask when none is given and passed on.

    Used in: book/transformers/attention.md, book/transformers/synthesizer.md,
    book/transformers/lossless-enlargement.md
    """

    def __init__(self, heads, head_size, ffn_dim, dropout=0.0, activation="gelu", pre_ln=False,
                 ln_epsilon=1e-6, causal=False, attention=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.heads = check_int(heads, "heads")
        self.head_size = check_int(head_size, "head_size")
        self.ffn_dim = check_int(ffn_dim, "ffn_dim")
        self.dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
        self.activation = keras.activations.serialize(_activation(activation, "activation"))
        self.pre_ln = check_bool(pre_ln, "pre_ln")
        self.ln_epsilon = check_real(ln_epsilon, "ln_epsilon", 0.0, low_open=True)
        self.causal = check_bool(causal, "causal")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if isinstance(attention, dict):
            attention = keras.layers.deserialize(attention)
        if attention is None:
            attention = MultiHeadSelfAttention(heads, head_size, causal=causal, dropout=dropout,
                                               kernel_initializer=kernel_initializer,
                                               name="attention")
        if not isinstance(attention, MultiHeadSelfAttention):
            raise TypeError(f"attention must be a kexue MultiHeadSelfAttention (or subclass), "
                            f"got {describe(attention)}.")
        self.attention = attention
        self.attention_norm = keras.layers.LayerNormalization(epsilon=ln_epsilon,
                                                              name="attention_norm")
        self.ffn_inner = keras.layers.Dense(ffn_dim, activation=activation, name="ffn_inner",
                                            kernel_initializer=kernel_initializer)
        self.ffn_norm = keras.layers.LayerNormalization(epsilon=ln_epsilon, name="ffn_norm")
        self._drop = keras.layers.Dropout(self.dropout)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"inputs must have shape (batch, n, d) with a known d, got shape "
                             f"{tuple(input_shape)}.")
        d = input_shape[-1]
        if self.attention.output_projection and self.attention.output_dim not in (None, d):
            raise ValueError(f"attention must output the block's width d={d}, got output_dim="
                             f"{self.attention.output_dim}.")
        if not self.attention.output_projection and (
                self.attention.heads * self.attention.value_size != d):
            raise ValueError(f"attention without output projection must give heads * "
                             f"value_size == d={d}, got {self.attention.heads} * "
                             f"{self.attention.value_size}.")
        if not self.attention.built:  # a deserialized attention layer arrives built
            self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_inner.build(input_shape)
        self.ffn_outer = keras.layers.Dense(d, name="ffn_outer",
                                            kernel_initializer=self.kernel_initializer)
        self.ffn_outer.build((*input_shape[:-1], self.ffn_dim))
        self.ffn_norm.build(input_shape)

    def call(self, inputs, key_mask=None, mask=None, training=None, return_attention=False):
        check_shape(inputs, "inputs", ("batch", "n", "d"))
        key_mask = mask if key_mask is None else key_mask
        x = inputs
        y = self.attention_norm(x) if self.pre_ln else x
        att, weights = self.attention(y, key_mask=key_mask, training=training,
                                      return_attention=True)
        x = x + self._drop(att, training=training)
        if not self.pre_ln:
            x = self.attention_norm(x)
        y = self.ffn_norm(x) if self.pre_ln else x
        x = x + self._drop(self.ffn_outer(self.ffn_inner(y)), training=training)
        if not self.pre_ln:
            x = self.ffn_norm(x)
        return (x, weights) if return_attention else x

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(heads=self.heads, head_size=self.head_size, ffn_dim=self.ffn_dim,
                      dropout=self.dropout, activation=self.activation, pre_ln=self.pre_ln,
                      ln_epsilon=self.ln_epsilon, causal=self.causal,
                      attention=keras.layers.serialize(self.attention),
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
