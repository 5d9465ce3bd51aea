"""Width enlargement of a BERT that keeps its function: a model of width ``k d`` that computes
exactly what the small model of width ``d`` computes.

The invariant: every hidden vector of the wide model is the small one with each coordinate
repeated ``k`` times in place and divided by ``sqrt(k)``, ``h_big = rep_k(h) / sqrt(k)``
(same norm, an orthogonal embedding of the small space). Every weight gets the transform that
keeps the invariant through its module:

- embeddings (token, segment, position) and LayerNorm scales/shifts: repeat along the hidden
  axis, divide by ``sqrt(k)``; a LayerNorm fed by ``repeat / sqrt(k)`` needs ``epsilon / k``;
- a linear layer between two hidden vectors: kernel repeated on both axes, divided by ``k``;
  bias repeated, divided by ``sqrt(k)``;
- attention: the same for value and output; query and key also times ``k^(1/4)``, since the
  head size grows ``k`` times and the scores are divided by its square root;
- a non-homogeneous activation (GeLU): the layer before it maps to a *pure* repeat (kernel
  ``/ sqrt(k)``, bias unscaled), the layer after it divides by ``k sqrt(k)`` (bias by
  ``sqrt(k)``); the MLM head's LayerNorm, fed by that pure repeat, keeps ``epsilon``.

:func:`repeat_axes` is ``rep_k``; :func:`enlarge_bert` builds the wide
:class:`kexue.models.bert.BertModel` and sets every weight, with options that reproduce the
wrong variants (tiled repetition, unscaled ``epsilon``, the FFN bias divided by ``k``, the
linear rule through GeLU) so that a chapter can show each one fail.

Used in: book/transformers/lossless-enlargement.md
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from keras import ops

from kexue._checks import as_array, check_bool, check_choice, check_instance, check_int, describe
from kexue.models.bert import BertConfig, BertModel

__all__ = ["LAYOUTS", "repeat_axes", "enlarge_bert"]

LAYOUTS = ("interleave", "tile")
"""How :func:`repeat_axes` repeats: ``x1 x1 x2 x2 ...`` (interleave) or ``x1 x2 ... x1 x2 ...``
(tile)."""


def repeat_axes(array, k, axes=None, layout="interleave"):
    """``rep_k``: every entry repeated ``k`` times along each axis in ``axes``.

    ``interleave`` repeats in place, ``rep_k(x)_i = x_(i // k)`` (``[x1, x1, x2, x2, ...]``);
    ``tile`` concatenates ``k`` copies (``[x1, x2, ..., x1, x2, ...]``). A matrix repeated on
    both axes has ``rep_k(W)_ij = W_(i // k, j // k)``. ``axes``: an int or a tuple of ints
    (negative ones count from the end), ``None`` for every axis.

    Returns a NumPy array of ``array``'s dtype, each listed axis ``k`` times longer.

    Used in: book/transformers/lossless-enlargement.md
    """
    arr = as_array(array, "array")
    k = check_int(k, "k")
    layout = check_choice(layout, "layout", LAYOUTS)
    if axes is None:
        axes = tuple(range(arr.ndim))
    elif isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, tuple) or not all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes):
        raise TypeError(f"axes must be an int, a tuple of ints or None, got {describe(axes)}.")
    norm = [int(a) + arr.ndim if a < 0 else int(a) for a in axes]
    if any(not 0 <= a < arr.ndim for a in norm) or len(set(norm)) != len(norm):
        raise ValueError(f"axes must be distinct axes of an array of shape {arr.shape}, got "
                         f"{axes}.")
    for a in norm:
        arr = np.repeat(arr, k, axis=a) if layout == "interleave" else np.concatenate(
            [arr] * k, axis=a)
    return arr


def _enlarged_config(config, k, scale_epsilon, split_activation):
    """The wide model's configuration: width, FFN and token-embedding sizes ``k`` times,
    heads unchanged (each head ``k`` times wider), ``epsilon / k`` when scaled; the MLM head's
    LayerNorm, fed by a pure repeat when the activation is split, keeps its ``epsilon``."""
    f = 1 / k if scale_epsilon else 1.0
    return dataclasses.replace(
        config, width=k * config.width, ffn_dim=k * config.ffn_dim,
        embedding_dim=None if config.embedding_dim is None else k * config.embedding_dim,
        ln_epsilon=config.ln_epsilon * f,
        head_ln_epsilon=config.head_epsilon * (1.0 if split_activation else f))


class _Setter:
    """Copies transformed small weights into the wide model and remembers what it set."""

    def __init__(self, k, layout):
        self.k, self.layout, self.done = k, layout, set()

    def __call__(self, dst, src, axes, factor):
        w = ops.convert_to_numpy(src).astype("float64")
        new = repeat_axes(w, self.k, axes, self.layout) * factor
        if tuple(dst.shape) != new.shape:  # a layer whose layout this module does not know
            raise RuntimeError(f"cannot enlarge {src.path}: {w.shape} -> {new.shape}, but the "
                               f"wide model's weight has shape {tuple(dst.shape)}.")
        dst.assign(new.astype(dst.dtype))
        self.done.add(id(dst))

    def dense(self, dst, src, kernel_factor, bias_factor):
        self(dst.kernel, src.kernel, (0, 1), kernel_factor)
        self(dst.bias, src.bias, (0,), bias_factor)

    def norm(self, dst, src):
        s = math.sqrt(self.k)
        self(dst.gamma, src.gamma, (0,), 1 / s)
        self(dst.beta, src.beta, (0,), 1 / s)


def enlarge_bert(model, k=2, *, layout="interleave", scale_epsilon=True, split_activation=True,
                 literal_bias=False):
    """A :class:`~kexue.models.bert.BertModel` ``k`` times wider than ``model`` that computes
    the same function: same MLM logits and attention weights, and every hidden state (the
    embedding output and each block's output) equal to ``rep_k(h) / sqrt(k)``
    (:func:`repeat_axes` on the last axis).

    The wide configuration has ``width``, ``ffn_dim`` (and ``embedding_dim``) times ``k``, the
    same heads (each ``k`` times wider) and ``ln_epsilon / k``; the MLM head's LayerNorm, whose
    input is a pure repeat, keeps the small model's epsilon (``head_ln_epsilon``), so a model
    rebuilt from the configuration (``.keras`` loading, ``pretrain(..., init=big)``) is the
    same function.

    Weight map (``c = k ** 0.25``; "rep" repeats on the hidden axes of the weight):

    ===================================  ==========================  ==========================
    weight                               kernel / table              bias / LayerNorm shift
    ===================================  ==========================  ==========================
    token, segment, position tables      rep, ``/ sqrt(k)``          --
    LayerNorm ``gamma``, ``beta``        rep, ``/ sqrt(k)``          ``epsilon / k``
    query, key                           rep, ``* c / k``            rep, ``* c / sqrt(k)``
    value, attention output, projection  rep, ``/ k``                rep, ``/ sqrt(k)``
    FFN inner, MLM transform             rep, ``/ sqrt(k)``          rep
    FFN outer                            rep, ``/ (k sqrt(k))``      rep, ``/ sqrt(k)``
    MLM LayerNorm                        rep, ``/ sqrt(k)``          ``epsilon`` unchanged
    MLM output bias                      unchanged
    ===================================  ==========================  ==========================

    Args:
        model: the small :class:`~kexue.models.bert.BertModel` (any configuration: pre- or
            post-LN, shared blocks, factorised embedding, GeLU or ReLU); left unchanged.
        k: the width factor, an integer ``>= 1``.
        layout: ``"interleave"`` (right) or ``"tile"`` (wrong with two heads or more: the
            reshape into heads then mixes heads).
        scale_epsilon: ``False`` keeps ``epsilon`` in every LayerNorm (wrong by a little).
        split_activation: ``False`` applies the linear rule (kernel ``/ k``, bias
            ``/ sqrt(k)``) to the layers around the activation too: exact for ReLU, which is
            positively homogeneous, wrong for GeLU.
        literal_bias: ``True`` divides the FFN's outer bias by ``k`` (``b_2 / 2`` at ``k = 2``)
            instead of ``sqrt(k)``: wrong.

    Returns the wide model (built, not compiled).

    Used in: book/transformers/lossless-enlargement.md
    """
    check_instance(model, "model", BertModel, "a kexue.models.bert.BertModel")
    k = check_int(k, "k")
    layout = check_choice(layout, "layout", LAYOUTS)
    scale_epsilon = check_bool(scale_epsilon, "scale_epsilon")
    split_activation = check_bool(split_activation, "split_activation")
    literal_bias = check_bool(literal_bias, "literal_bias")
    small_config = BertConfig.from_dict(model.config)
    big = BertModel(_enlarged_config(small_config, k, scale_epsilon, split_activation))
    s, c = math.sqrt(k), k ** 0.25
    put = _Setter(k, layout)
    # activation layers: (inner kernel, inner bias, outer kernel) factors
    inner = (1 / s, 1.0, 1 / (k * s)) if split_activation else (1 / k, 1 / s, 1 / k)
    outer_bias = 1 / k if literal_bias else 1 / s

    e, E = model.embedding, big.embedding
    for table in ("token", "segment", "position"):
        put(getattr(E, table).embeddings, getattr(e, table).embeddings, (1,), 1 / s)
    if e.projection is not None:
        put.dense(E.projection, e.projection, 1 / k, 1 / s)
    put.norm(E.norm, e.norm)
    for blk, BLK in zip(model.block_layers, big.block_layers):
        a, A = blk.attention, BLK.attention
        put.dense(A.query, a.query, c / k, c / s)
        put.dense(A.key, a.key, c / k, c / s)
        put.dense(A.value, a.value, 1 / k, 1 / s)
        put.dense(A.out, a.out, 1 / k, 1 / s)
        put.norm(BLK.attention_norm, blk.attention_norm)
        put.dense(BLK.ffn_inner, blk.ffn_inner, inner[0], inner[1])
        put.dense(BLK.ffn_outer, blk.ffn_outer, inner[2], outer_bias)
        put.norm(BLK.ffn_norm, blk.ffn_norm)
    if model.final_norm is not None:
        put.norm(big.final_norm, model.final_norm)
    put.dense(big.mlm.transform, model.mlm.transform, inner[0], inner[1])
    put.norm(big.mlm.norm, model.mlm.norm)
    put(big.mlm.logits.bias, model.mlm.logits.bias, (), 1.0)
    missed = [v.path for v in big.trainable_weights if id(v) not in put.done]
    if missed:  # a weight BertModel gained that the map above does not cover
        raise RuntimeError(f"enlarge_bert does not know how to enlarge {missed}.")
    return big
