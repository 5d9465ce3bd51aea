"""The book's small BERT: configuration, model, vocabulary, masking, pre-training, fine-tuning,
and the committed checkpoint that the chapters load.

The parts, kept apart so that the chapters can recombine them:

- :class:`BertConfig`: every size of the network, explicit (``shared_blocks`` for ALBERT's one
  block applied ``layers`` times, ``embedding_dim`` for a factorised token embedding);
- :class:`BertModel`: ``embedding`` (token, segment and learned position embeddings, LayerNorm),
  ``blocks`` (the list of :class:`kexue.layers.TransformerBlock`, one object repeated when
  shared), and ``mlm`` (the masked-language-model head whose output matrix is the token
  embedding itself); ``encode`` gives every hidden state;
- :class:`ClsHead`: a classifier on the first ([CLS]) position, and :func:`build_classifier`;
- :class:`BertVocab` and :func:`build_vocab`: characters of the CLUE *training* texts (TNEWS,
  IFLYTEK, AFQMC; never dev or test) after the five special tokens;
- :func:`mask_tokens`: BERT's masking (15% of the real tokens chosen; of those 80% become
  [MASK], 10% a random character, 10% stay), seeded;
- :func:`pretrain`: MLM pre-training for a fixed number of steps, returning the loss curve and
  the masked-character accuracy on held-out texts;
- the checkpoint: :data:`PRETRAINED` names each committed model's recipe; ``python -m
  kexue.models.bert pretrain`` (``make pretrained``) trains it and writes weights, vocabulary
  and a provenance record under ``kexue/models/pretrained/<name>/``; :func:`load_pretrained`
  loads them only when the weights' sha256 and the hash of the recipe, the code that makes the
  weights and the data all match the record; :func:`load_or_train` retrains otherwise.

Used in: book/transformers/attention.md, book/transformers/lossless-enlargement.md, and the
later chapters of book/transformers/ (ALBERT, ELECTRA, BERT-of-Theseus).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import json
import math
import sys
import textwrap
import time
import warnings
from pathlib import Path

import keras
import numpy as np
from keras import ops

from kexue import runtime
from kexue._checks import (
    as_array,
    check_bool,
    check_choice,
    check_dtype,
    check_instance,
    check_int,
    check_int_range,
    check_real,
    check_shape,
    describe,
)
from kexue.layers.attention import PositionEmbedding, TransformerBlock
from kexue.layers.core import TiedDense
from kexue.text import CharVocab

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""The special tokens, with ids 0 to 4 in this order."""

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
"""Where the committed checkpoints live (inside the package: found wherever it is installed)."""

# ------------------------------------------------------------------------- vocabulary


class BertVocab(CharVocab):
    """Character vocabulary with BERT's special tokens: ids 0-4 are [PAD] [UNK] [CLS] [SEP]
    [MASK], characters follow from id 5 by falling count (:meth:`CharVocab.fit`).

    Used in: book/transformers/attention.md
    """

    CLS = 2
    SEP = 3
    MASK = 4

    def __post_init__(self):
        super().__post_init__()
        offset = len(SPECIAL_TOKENS)
        self.index = {c: i + offset for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + len(SPECIAL_TOKENS)

    @property
    def tokens(self) -> list[str]:
        """Every token in id order (the special tokens first)."""
        return list(SPECIAL_TOKENS) + list(self.chars)

    def save(self, path) -> None:
        """Write one token per line, in id order."""
        Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path) -> BertVocab:
        """Read a file written by :meth:`save`."""
        lines = Path(path).read_text(encoding="utf-8").split("\n")[:-1]
        if tuple(lines[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"path must be a vocabulary file starting with {SPECIAL_TOKENS}, "
                             f"got a file starting with {lines[:5]!r}.")
        return cls(lines[len(SPECIAL_TOKENS):])


def clue_pretraining_texts() -> list[str]:
    """The texts of the CLUE *training* splits the book pre-trains on, in file order: the
    TNEWS titles, the IFLYTEK (FewCLUE) app descriptions and both questions of every AFQMC
    pair. No dev or test text is ever included.

    Used in: book/transformers/attention.md
    """
    from kexue.data import load_clue

    texts = [r["sentence"] for r in load_clue("tnews", "train")]
    texts += [r["sentence"] for r in load_clue("iflytek", "train")]
    for r in load_clue("afqmc", "train"):
        texts += [r["sentence1"], r["sentence2"]]
    return [t.strip() for t in texts if t.strip()]


def build_vocab(texts=None, min_count=2) -> BertVocab:
    """The characters seen at least ``min_count`` times in ``texts`` (default: the CLUE
    training texts, :func:`clue_pretraining_texts`), after the special tokens.

    Used in: book/transformers/attention.md
    """
    texts = clue_pretraining_texts() if texts is None else texts
    return BertVocab.fit(texts, min_count=min_count)


def _check_vocab(vocab):
    return check_instance(vocab, "vocab", BertVocab, "a kexue.models.bert.BertVocab")


def _check_texts(texts, name="texts"):
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not texts:
        raise ValueError(f"{name} must be a non-empty list of strings, got {describe(texts)}.")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"{name}[{i}] must be a string, got {describe(t)}.")
    return list(texts)


def pack_sequences(vocab, texts, seq_len):
    """Pre-training sequences: ``[CLS] a [SEP] b [SEP] ...`` filled greedily from ``texts`` in
    order up to ``seq_len`` tokens, right-padded; a text longer than ``seq_len - 2`` characters
    is cut into pieces. Returns int32 ``(N, seq_len)``.

    Used in: book/transformers/attention.md
    """
    vocab = _check_vocab(vocab)
    texts = _check_texts(texts)
    seq_len = check_int(seq_len, "seq_len", minimum=3)
    piece = seq_len - 2
    rows, cur = [], [vocab.CLS]
    for text in texts:
        ids = vocab.encode(text)
        for start in range(0, len(ids), piece):
            chunk = ids[start:start + piece]
            if len(cur) + len(chunk) + 1 > seq_len:
                rows.append(cur)
                cur = [vocab.CLS]
            cur.extend(int(i) for i in chunk)
            cur.append(vocab.SEP)
    if len(cur) > 1:
        rows.append(cur)
    out = np.zeros((len(rows), seq_len), dtype="int32")
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def classification_inputs(vocab, texts, texts2=None, max_len=64):
    """Fine-tuning inputs ``{"token_ids", "segment_ids"}``, int32 ``(N, max_len)``.

    One text: ``[CLS] a [SEP]``; a pair: ``[CLS] a [SEP] b [SEP]`` with segment 1 on ``b`` and
    its [SEP]. Too long inputs are cut (a pair from its longer side first).

    Used in: book/transformers/attention.md
    """
    vocab = _check_vocab(vocab)
    texts = _check_texts(texts)
    max_len = check_int(max_len, "max_len", minimum=3 if texts2 is None else 5)
    if texts2 is not None:
        texts2 = _check_texts(texts2, "texts2")
        if len(texts2) != len(texts):
            raise ValueError(f"texts2 must have one text per text ({len(texts)}), got "
                             f"{len(texts2)}.")
    ids = np.zeros((len(texts), max_len), dtype="int32")
    seg = np.zeros((len(texts), max_len), dtype="int32")
    for i, text in enumerate(texts):
        a = list(vocab.encode(text))
        b = [] if texts2 is None else list(vocab.encode(texts2[i]))
        room = max_len - (2 if texts2 is None else 3)
        while len(a) + len(b) > room:
            (a if len(a) >= len(b) else b).pop()
        row = [vocab.CLS] + a + [vocab.SEP]
        if texts2 is not None:
            seg[i, len(row): len(row) + len(b) + 1] = 1
            row += b + [vocab.SEP]
        ids[i, : len(row)] = row
    return {"token_ids": ids, "segment_ids": seg}


# ------------------------------------------------------------------------- masking


def mask_tokens(token_ids, vocab_size, rng, rate=0.15, max_predictions=None, num_special=5):
    """BERT's masked-language-model corruption of a batch of token ids.

    In each row, ``round(rate * n)`` of its ``n`` real tokens (ids ``>= num_special``: never
    padding, [CLS], [SEP]) are chosen uniformly (at least one when ``n > 0``, at most
    ``max_predictions``, default ``ceil(rate * T)``); each chosen token independently becomes
    [MASK] (id 4) with probability 0.8, a uniformly random character id with probability 0.1,
    or stays itself with probability 0.1.

    Args:
        token_ids: int ``(B, T)``.
        vocab_size: ``V``; random replacements are drawn from ``[num_special, V)``.
        rng: a ``numpy.random.Generator`` (the masking is reproducible from its seed).

    Returns:
        A dict of int32 arrays: ``token_ids`` ``(B, T)`` corrupted; ``mlm_positions``,
        ``mlm_labels`` (the original ids) and ``mlm_weights`` (1 at a prediction, 0 at the
        padding of the ``P = max_predictions`` slots), each ``(B, P)``.

    Used in: book/transformers/attention.md
    """
    ids = as_array(token_ids, "token_ids")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"token_ids must be integer ids, got dtype {ids.dtype}.")
    check_shape(ids, "token_ids", ("batch", "T"))
    vocab_size = check_int(vocab_size, "vocab_size", minimum=num_special + 1)
    check_int_range(ids, "token_ids", 0, vocab_size)
    check_instance(rng, "rng", np.random.Generator, "a numpy.random.Generator")
    rate = check_real(rate, "rate", 0.0, 1.0, low_open=True)
    b, t = ids.shape
    p = math.ceil(rate * t) if max_predictions is None else check_int(
        max_predictions, "max_predictions", maximum=t)
    real = ids >= num_special
    count = real.sum(axis=1)
    chosen = np.minimum(np.where(count > 0, np.maximum(np.rint(rate * count), 1), 0), p)
    keys = np.where(real, rng.random((b, t)), np.inf)
    positions = np.argsort(keys, axis=1, kind="stable")[:, :p].astype("int32")
    weights = (np.arange(p)[None, :] < chosen[:, None]).astype("int32")
    labels = np.take_along_axis(ids, positions, axis=1).astype("int32") * weights
    u = rng.random((b, p))
    random_ids = rng.integers(num_special, vocab_size, (b, p))
    new = np.where(u < 0.8, 4, np.where(u < 0.9, random_ids, labels))
    out = ids.astype("int32").copy()
    rows = np.repeat(np.arange(b)[:, None], p, axis=1)
    sel = weights.astype(bool)
    out[rows[sel], positions[sel]] = new[sel]
    positions = positions * weights  # unused slots point at [CLS] with weight 0
    return {"token_ids": out, "mlm_positions": positions, "mlm_labels": labels,
            "mlm_weights": weights}


# ------------------------------------------------------------------------- the network


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Every size of a :class:`BertModel`.

    ``width`` = ``heads * head_size``; ``embedding_dim`` (``None``: ``width``) is the token
    embedding's width, projected to ``width`` when smaller (ALBERT's factorisation);
    ``shared_blocks`` applies one block ``layers`` times (ALBERT); ``pre_ln`` switches the
    blocks to pre-LayerNorm (with a final LayerNorm); ``head_ln_epsilon`` (``None``:
    ``ln_epsilon``) is the MLM head's LayerNorm epsilon. ``dropout`` applies to the embeddings,
    the attention weights and every residual branch.

    Used in: book/transformers/attention.md
    """

    vocab_size: int
    width: int = 64
    layers: int = 4
    heads: int = 2
    ffn_dim: int = 256
    max_positions: int = 64
    dropout: float = 0.1
    shared_blocks: bool = False
    embedding_dim: int | None = None
    type_vocab_size: int = 2
    activation: str = "gelu"
    ln_epsilon: float = 1e-6
    head_ln_epsilon: float | None = None
    pre_ln: bool = False
    initializer_range: float = 0.02

    def __post_init__(self):
        check_int(self.vocab_size, "vocab_size", minimum=len(SPECIAL_TOKENS) + 1)
        for name in ("width", "layers", "heads", "ffn_dim", "max_positions", "type_vocab_size"):
            check_int(getattr(self, name), name)
        if self.width % self.heads:
            raise ValueError(f"heads must divide width={self.width} (head size = width / "
                             f"heads), got heads={self.heads}.")
        if self.embedding_dim is not None:
            check_int(self.embedding_dim, "embedding_dim")
        check_real(self.dropout, "dropout", 0.0, 1.0, high_open=True)
        check_bool(self.shared_blocks, "shared_blocks")
        check_bool(self.pre_ln, "pre_ln")
        check_choice(self.activation, "activation", ("gelu", "relu"))
        check_real(self.ln_epsilon, "ln_epsilon", 0.0, low_open=True)
        if self.head_ln_epsilon is not None:
            check_real(self.head_ln_epsilon, "head_ln_epsilon", 0.0, low_open=True)
        check_real(self.initializer_range, "initializer_range", 0.0, low_open=True)

    @property
    def head_size(self) -> int:
        return self.width // self.heads

    @property
    def head_epsilon(self) -> float:
        """The MLM head's LayerNorm epsilon (``head_ln_epsilon`` or ``ln_epsilon``)."""
        return self.ln_epsilon if self.head_ln_epsilon is None else self.head_ln_epsilon

    @property
    def token_dim(self) -> int:
        """The token embedding's width (``embedding_dim`` or ``width``)."""
        return self.embedding_dim or self.width

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config) -> BertConfig:
        if isinstance(config, cls):
            return config
        if not isinstance(config, dict):
            raise TypeError(f"config must be a BertConfig or a dict of its fields, got "
                            f"{describe(config)}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"config must hold BertConfig fields only, got unknown fields "
                             f"{unknown}; expected some of "
                             f"{sorted(fields)}.")
        return cls(**config)


def _initializer(config):
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


class BertEmbedding(keras.layers.Layer):
    """Token + segment + learned position embeddings, LayerNorm, dropout: ``(B, T)`` ids →
    ``(B, T, width)``. Sub-layers: ``token`` (``Embedding(V, token_dim)``), ``projection``
    (``Dense(width)`` when ``token_dim != width``, else ``None``), ``segment``, ``position``
    (:class:`kexue.layers.PositionEmbedding`), ``norm``.

    Used in: book/transformers/attention.md
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config = BertConfig.from_dict(config)
        init = _initializer(config)
        self.token = keras.layers.Embedding(config.vocab_size, config.token_dim,
                                            embeddings_initializer=init, name="token")
        self.projection = (keras.layers.Dense(config.width, kernel_initializer=init,
                                              name="projection")
                           if config.token_dim != config.width else None)
        self.segment = keras.layers.Embedding(config.type_vocab_size, config.width,
                                              embeddings_initializer=init, name="segment")
        self.position = PositionEmbedding(config.max_positions, initializer=init,
                                          name="position")
        self.norm = keras.layers.LayerNormalization(epsilon=config.ln_epsilon, name="norm")
        self.drop = keras.layers.Dropout(config.dropout)

    def build(self, input_shape=None):
        c = self.config
        self.token.build((None, None))
        if self.projection is not None:
            self.projection.build((None, None, c.token_dim))
        self.segment.build((None, None))
        self.position.build((None, None, c.width))
        self.norm.build((None, None, c.width))

    def call(self, token_ids, segment_ids=None, training=None):
        h = self.token(token_ids)
        if self.projection is not None:
            h = self.projection(h)
        if segment_ids is None:
            segment_ids = ops.zeros_like(token_ids)
        h = self.position(h + self.segment(segment_ids))
        return self.drop(self.norm(h), training=training)


class MLMHead(keras.layers.Layer):
    """Masked-language-model logits: ``LN(act(h W + b)) E^T + c`` with ``E`` the token
    embedding's own matrix (tied, :class:`kexue.layers.TiedDense`): ``(..., width)`` →
    ``(..., V)``.

    Used in: book/transformers/attention.md
    """

    def __init__(self, config, token_embedding, **kwargs):
        super().__init__(**kwargs)
        self.config = config = BertConfig.from_dict(config)
        self.transform = keras.layers.Dense(config.token_dim, activation=config.activation,
                                            kernel_initializer=_initializer(config),
                                            name="transform")
        self.norm = keras.layers.LayerNormalization(epsilon=config.head_epsilon, name="norm")
        self.logits = TiedDense(token_embedding, name="logits")

    def build(self, input_shape=None):
        c = self.config
        self.transform.build((None, c.width))
        self.norm.build((None, c.token_dim))
        self.logits.build((None, c.token_dim))

    def call(self, hidden):
        return self.logits(self.norm(self.transform(hidden)))


def _as_inputs(inputs):
    """``(token_ids, segment_ids or None, mlm_positions or None)`` from ids or a dict."""
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - {"token_ids", "segment_ids", "mlm_positions"})
        if "token_ids" not in inputs or unknown:
            raise ValueError(f"inputs must be token ids or a dict with 'token_ids' (and "
                             f"optionally 'segment_ids', 'mlm_positions'), got keys "
                             f"{sorted(inputs)}.")
        return inputs["token_ids"], inputs.get("segment_ids"), inputs.get("mlm_positions")
    return inputs, None, None


@keras.saving.register_keras_serializable(package="kexue")
class BertModel(keras.Model):
    """A BERT encoder with its tied MLM head, built from a :class:`BertConfig`.

    ``model(token_ids)`` or ``model({"token_ids", "segment_ids"})`` returns the last hidden
    states ``(B, T, width)``; with ``"mlm_positions"`` ``(B, P)`` in the dict it returns the MLM
    logits ``(B, P, V)`` at those positions (the V-way softmax only where it is needed). The
    parts: ``embedding`` (:class:`BertEmbedding`), ``blocks`` (``layers`` entries; the same
    object repeated when ``shared_blocks``), ``final_norm`` (pre-LN only), ``mlm``
    (:class:`MLMHead`). Padding (id 0) is masked out of every attention.

    Used in: book/transformers/attention.md, book/transformers/lossless-enlargement.md
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = BertConfig.from_dict(config)
        c = self.config
        self.embedding = BertEmbedding(c, name="embedding")
        n_blocks = 1 if c.shared_blocks else c.layers
        self.block_layers = [
            TransformerBlock(c.heads, c.head_size, c.ffn_dim, dropout=c.dropout,
                             activation=c.activation, pre_ln=c.pre_ln, ln_epsilon=c.ln_epsilon,
                             kernel_initializer=_initializer(c), name=f"block_{i}")
            for i in range(n_blocks)]
        self.final_norm = (keras.layers.LayerNormalization(epsilon=c.ln_epsilon,
                                                           name="final_norm")
                           if c.pre_ln else None)
        self.mlm = MLMHead(c, self.embedding.token, name="mlm")
        self.embedding.build()
        for block in self.block_layers:
            block.build((None, None, c.width))
        if self.final_norm is not None:
            self.final_norm.build((None, None, c.width))
        self.mlm.build()
        self.built = True

    @property
    def blocks(self) -> list:
        """The ``layers`` blocks in order (one object ``layers`` times when shared)."""
        if self.config.shared_blocks:
            return [self.block_layers[0]] * self.config.layers
        return list(self.block_layers)

    def encode(self, token_ids, segment_ids=None, training=None, return_hidden=False,
               return_attention=False):
        """The hidden states of ``token_ids`` ``(B, T)``.

        Returns ``(B, T, width)``; with ``return_hidden`` the list of ``layers + 1`` states
        (the embedding output, then each block's output; pre-LN: the final LayerNorm applied
        to the last one); with ``return_attention`` also the list of each block's weights
        ``(B, h, T, T)``.
        """
        check_dtype(token_ids, "token_ids", "int")
        check_shape(token_ids, "token_ids", ("batch", "T"))
        length = token_ids.shape[1]
        if isinstance(length, int) and length > self.config.max_positions:
            raise ValueError(f"token_ids must have at most max_positions="
                             f"{self.config.max_positions} positions, got shape "
                             f"{tuple(token_ids.shape)}.")
        key_mask = ops.not_equal(token_ids, 0)
        h = self.embedding(token_ids, segment_ids, training=training)
        hidden, weights = [h], []
        for block in self.blocks:
            h, w = block(h, key_mask=key_mask, training=training, return_attention=True)
            hidden.append(h)
            weights.append(w)
        if self.final_norm is not None:
            hidden[-1] = h = self.final_norm(h)
        out = hidden if return_hidden else h
        return (out, weights) if return_attention else out

    def mlm_logits(self, hidden, positions=None):
        """MLM logits ``(B, T, V)`` of hidden states ``(B, T, width)``, or ``(B, P, V)`` at
        ``positions`` ``(B, P)``."""
        if positions is not None:
            positions = ops.cast(positions, "int32")
            hidden = ops.take_along_axis(hidden, positions[:, :, None], axis=1)
        return self.mlm(hidden)

    def call(self, inputs, training=None):
        token_ids, segment_ids, positions = _as_inputs(inputs)
        h = self.encode(token_ids, segment_ids, training=training)
        return h if positions is None else self.mlm_logits(h, positions)

    def compute_output_spec(self, inputs, training=None):
        # the shapes without tracing call() on symbolic inputs (JAX's symbolic dimensions)
        token_ids, _, positions = _as_inputs(inputs)
        if positions is None:
            return keras.KerasTensor((*token_ids.shape[:2], self.config.width),
                                     dtype=self.compute_dtype)
        return keras.KerasTensor((*positions.shape[:2], self.config.vocab_size),
                                 dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(config=self.config.to_dict())
        return config


@keras.saving.register_keras_serializable(package="kexue")
class ClsHead(keras.layers.Layer):
    """Class logits from the first ([CLS]) position: ``(B, T, d)`` → dropout →
    ``Dense(num_classes)`` → ``(B, num_classes)``.

    Used in: book/transformers/attention.md
    """

    def __init__(self, num_classes, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int(num_classes, "num_classes", minimum=2)
        self.dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
        self.drop = keras.layers.Dropout(self.dropout)
        self.dense = keras.layers.Dense(self.num_classes, name="dense")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"inputs must have shape (batch, T, d) with a known d, got shape "
                             f"{tuple(input_shape)}.")
        self.dense.build((None, input_shape[-1]))

    def call(self, hidden, training=None):
        return self.dense(self.drop(hidden[:, 0], training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout=self.dropout)
        return config


def build_classifier(bert, num_classes, dropout=0.1, name="bert_classifier"):
    """A functional classifier ``{"token_ids", "segment_ids"}`` → logits ``(B, num_classes)``
    on ``bert`` (its own weights, shared: fine-tuning changes ``bert``).

    Used in: book/transformers/attention.md
    """
    check_instance(bert, "bert", BertModel, "a kexue.models.bert.BertModel")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    seg = keras.Input((None,), dtype="int32", name="segment_ids")
    h = bert({"token_ids": ids, "segment_ids": seg})
    logits = ClsHead(num_classes, dropout, name="cls_head")(h)
    return keras.Model({"token_ids": ids, "segment_ids": seg}, logits, name=name)


def untie_blocks(model) -> BertModel:
    """A copy of a shared-block (ALBERT) :class:`BertModel` with the one block untied into
    ``layers`` independent copies, each starting from the shared weights: at step 0 it computes
    exactly the shared model's function, and from then on each layer trains on its own.
    Embeddings, the final LayerNorm and the MLM head are copied; ``model`` is left unchanged.

    ``(B, T)`` ids → the same outputs as ``model``; the parameter count grows by
    ``(layers - 1)`` blocks, the computation not at all.

    Used in: book/transformers/albert-unshared.md
    """
    check_instance(model, "model", BertModel, "a kexue.models.bert.BertModel")
    if not model.config.shared_blocks:
        raise ValueError(f"model must share one block across its layers (shared_blocks=True), "
                         f"got a model with {model.config.layers} independent blocks.")
    untied = BertModel(dataclasses.replace(model.config, shared_blocks=False))
    untied.embedding.set_weights(model.embedding.get_weights())
    shared = model.block_layers[0].get_weights()
    for block in untied.block_layers:
        block.set_weights(shared)
    if model.final_norm is not None:
        untied.final_norm.set_weights(model.final_norm.get_weights())
    untied.mlm.set_weights(model.mlm.get_weights())
    return untied


# ------------------------------------------------------------------------- training


def _mlm_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                      reduction="mean_with_sample_weight")


def _optimizer(learning_rate, steps, warmup):
    warmup = min(warmup, max(steps - 1, 0))
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(steps - warmup, 1), alpha=0.0, warmup_target=learning_rate,
        warmup_steps=warmup) if warmup else keras.optimizers.schedules.CosineDecay(
        learning_rate, max(steps, 1))
    return keras.optimizers.AdamW(schedule, weight_decay=0.01, clipnorm=1.0)


def _masked_inputs(batch):
    return ({"token_ids": batch["token_ids"], "mlm_positions": batch["mlm_positions"]},
            batch["mlm_labels"], batch["mlm_weights"])


def masked_accuracy(model, sequences, seed=1, batch_size=128):
    """Accuracy of ``model``'s MLM predictions on ``sequences`` int ``(N, T)`` masked by
    :func:`mask_tokens` with ``numpy.random.default_rng(seed)``: the fraction of chosen
    positions whose most likely token is the original one (the same masking every call).

    Used in: book/transformers/attention.md
    """
    check_instance(model, "model", BertModel, "a kexue.models.bert.BertModel")
    seqs = as_array(sequences, "sequences")
    check_shape(seqs, "sequences", ("N", "T"))
    batch = mask_tokens(seqs, model.config.vocab_size, np.random.default_rng(seed))
    x, y, w = _masked_inputs(batch)
    hits = total = 0
    for i in range(0, len(seqs), batch_size):
        part = {k: v[i:i + batch_size] for k, v in x.items()}
        logits = ops.convert_to_numpy(model(part, training=False))
        hits += int(((logits.argmax(-1) == y[i:i + batch_size]) * w[i:i + batch_size]).sum())
        total += int(w[i:i + batch_size].sum())
    return hits / max(total, 1)


@dataclasses.dataclass
class PretrainResult:
    """What :func:`pretrain` returns: the ``model``, the per-step MLM ``losses``, the
    ``held_out_accuracy`` (masked characters predicted right on held-out texts), the number of
    ``steps``, the training ``seconds`` (after the first step's tracing) and ``first_step``
    seconds, and the sizes of the ``train`` / ``held_out`` sets in sequences."""

    model: BertModel
    losses: list
    held_out_accuracy: float
    steps: int
    seconds: float
    first_step: float
    train: int
    held_out: int


def pretrain(config, vocab, texts, steps, batch_size=64, seq_len=None, learning_rate=1e-3,
             warmup=None, held_out=0.02, seed=0, log_every=0, init=None):
    """MLM pre-training of a :class:`BertModel` for a fixed number of steps: a fresh one, or,
    with ``init`` (a :class:`BertModel` of the same configuration), a copy of ``init`` trained
    further (``init`` itself is left unchanged).

    The texts are shuffled with ``seed``; the first ``held_out`` fraction of them is kept out
    of training and packed apart; both sets are packed by :func:`pack_sequences` into
    sequences of ``seq_len`` (default ``config.max_positions``). Each step draws
    ``batch_size`` training sequences (seeded), masks them (:func:`mask_tokens`) and takes one
    AdamW step (weight decay 0.01, gradient norm clipped to 1, learning rate warmed up linearly
    over ``warmup`` steps, default 6%, then cosine decay to 0) on the mean cross-entropy over
    the masked positions. ``log_every > 0`` prints the mean loss every so many steps.

    Returns a :class:`PretrainResult`. The run is seeded (initialisation, dropout, batches,
    masking); on TensorFlow the train step is XLA-compiled unless op determinism is already on,
    so two runs agree to rounding rather than bit for bit.

    Used in: book/transformers/attention.md
    """
    config = BertConfig.from_dict(config)
    vocab = _check_vocab(vocab)
    if len(vocab) != config.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} tokens but config.vocab_size is "
                         f"{config.vocab_size}; they must agree.")
    texts = _check_texts(texts)
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    seq_len = config.max_positions if seq_len is None else check_int(
        seq_len, "seq_len", minimum=3, maximum=config.max_positions)
    learning_rate = check_real(learning_rate, "learning_rate", 0.0, low_open=True)
    warmup = round(0.06 * steps) if warmup is None else check_int(warmup, "warmup", minimum=0)
    held_out = check_real(held_out, "held_out", 0.0, 1.0, high_open=True)
    seed = check_int(seed, "seed", minimum=0)
    log_every = check_int(log_every, "log_every", minimum=0)
    if init is not None:
        check_instance(init, "init", BertModel, "a kexue.models.bert.BertModel")
        if init.config != config:
            raise ValueError(f"init must have the configuration being trained, {config}, got "
                             f"{init.config}.")

    # Seeded (Python, NumPy, Keras), without TensorFlow's op determinism, which would turn off
    # the XLA compilation of the train step (a large share of the speed on CPU).
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    n_held = int(round(held_out * len(texts)))
    held_seqs = (pack_sequences(vocab, [texts[i] for i in order[:n_held]], seq_len)
                 if n_held else np.zeros((0, seq_len), "int32"))
    train_seqs = pack_sequences(vocab, [texts[i] for i in order[n_held:]], seq_len)

    model = BertModel(config)
    if init is not None:
        model.set_weights(init.get_weights())
    model.compile(optimizer=_optimizer(learning_rate, steps, warmup), loss=_mlm_loss())
    losses, first, t0 = [], 0.0, time.perf_counter()
    for step in range(steps):
        rows = rng.integers(0, len(train_seqs), batch_size)
        x, y, w = _masked_inputs(mask_tokens(train_seqs[rows], config.vocab_size, rng))
        loss = model.train_on_batch(x, y, sample_weight=w)
        losses.append(float(loss))
        if step == 0:
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: MLM loss {np.mean(losses[-log_every:]):.4f} "
                  f"({(step + 1) / (first + time.perf_counter() - t0):.2f} steps/s)",
                  flush=True)
    seconds = time.perf_counter() - t0
    accuracy = masked_accuracy(model, held_seqs, seed=seed + 1) if len(held_seqs) else float(
        "nan")
    return PretrainResult(model, losses, accuracy, steps, seconds, first, len(train_seqs),
                          len(held_seqs))


def fine_tune(model, x, y, validation=None, epochs=3, batch_size=32, learning_rate=1e-4,
              seed=0, verbose=0, sample_weight=None):
    """Train a classifier (:func:`build_classifier` or a baseline) on ``x`` (a dict of int
    arrays as from :func:`classification_inputs`; keys the model does not take are dropped)
    and integer labels ``y`` ``(N,)`` with AdamW and a linear warm-up (10%) and decay; or a
    tagger (:func:`build_tagger`) on labels ``(N, T)`` with ``sample_weight`` ``(N, T)`` (1 on
    the positions that count, as from :func:`tagging_inputs`).

    Returns the Keras ``History``'s dict: ``loss``, ``accuracy`` and, with ``validation=(x_dev,
    y_dev)`` (or ``(x_dev, y_dev, weights_dev)``), ``val_loss``, ``val_accuracy`` per epoch;
    with weights, accuracy is over the weighted positions.

    Used in: book/transformers/attention.md
    """
    check_instance(model, "model", keras.Model, "a keras.Model")
    if not isinstance(x, dict):
        raise TypeError(f"x must be a dict of input arrays (classification_inputs), got "
                        f"{describe(x)}.")
    names = [t.name for t in model.inputs]

    def pick(d):
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"x must hold the model's inputs {names}, got keys {sorted(d)}.")
        return {n: d[n] for n in names} if len(names) > 1 else d[names[0]]

    y = as_array(y, "y")
    n = len(next(iter(x.values())))
    if y.ndim == 2:
        check_shape(y, "y", (n, next(iter(x.values())).shape[1]))
    else:
        check_shape(y, "y", (n,))
    return _compile_and_fit(model, pick, x, y, validation, epochs, batch_size, learning_rate,
                            seed, verbose, sample_weight)


def _compile_and_fit(model, select, x, y, validation, epochs, batch_size, learning_rate, seed,
                     verbose, sample_weight):
    """The training part of :func:`fine_tune`, shared with
    :func:`kexue.models.compression.fit_theseus`: checks ``sample_weight`` (``y``'s shape) and
    the settings, compiles ``model`` with AdamW (linear warm-up over 10% of the steps, then
    decay), the cross-entropy of the logits and accuracy (weighted with weights), and fits it on
    ``select(x)`` (``select``: the model's inputs out of a dict, applied to the validation
    inputs too). Returns the ``History``'s dict."""
    if sample_weight is not None:
        sample_weight = as_array(sample_weight, "sample_weight", dtype="float32")
        check_shape(sample_weight, "sample_weight", y.shape)
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    learning_rate = check_real(learning_rate, "learning_rate", 0.0, low_open=True)
    steps = epochs * math.ceil(len(y) / batch_size)
    keras.utils.set_random_seed(check_int(seed, "seed", minimum=0))
    weighted = sample_weight is not None
    model.compile(optimizer=_optimizer(learning_rate, steps, max(steps // 10, 1)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  **{"weighted_metrics" if weighted else "metrics": ["accuracy"]})
    val = None
    if validation is not None:
        if len(validation) not in (2, 3):
            raise ValueError(f"validation must be (x, y) or (x, y, weights), got "
                             f"{len(validation)} items.")
        val = (select(validation[0]), as_array(validation[1], "validation labels"),
               *([as_array(validation[2], "validation weights", dtype="float32")]
                 if len(validation) == 3 else []))
    with warnings.catch_warnings():  # a BERT's MLM head takes no part in classification
        warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
        history = model.fit(select(x), y, sample_weight=sample_weight, batch_size=batch_size,
                            epochs=epochs, validation_data=val, verbose=verbose, shuffle=True)
    return history.history


# ------------------------------------------------------------------------- the checkpoint


@dataclasses.dataclass(frozen=True)
class PretrainSpec:
    """The recipe of a committed checkpoint: the network (``config``, without the vocabulary
    size, which comes from the vocabulary), the vocabulary's ``min_count`` and the training
    settings of :func:`pretrain`.

    Used in: book/transformers/attention.md
    """

    config: dict
    steps: int = 5000
    batch_size: int = 64
    learning_rate: float = 1e-3
    held_out: float = 0.02
    min_count: int = 2
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.config, dict) or "vocab_size" in self.config:
            raise TypeError(f"config must be a dict of BertConfig fields without vocab_size "
                            f"(the vocabulary sets it), got {describe(self.config)}.")
        BertConfig.from_dict({"vocab_size": 100, **self.config})  # names the bad field
        for name in ("steps", "batch_size", "min_count"):
            check_int(getattr(self, name), name)
        check_int(self.seed, "seed", minimum=0)
        check_real(self.learning_rate, "learning_rate", 0.0, low_open=True)
        check_real(self.held_out, "held_out", 0.0, 1.0, high_open=True)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ElectraSpec(PretrainSpec):
    """The recipe of a checkpoint pre-trained by replaced-token detection
    (:func:`kexue.models.electra.pretrain_electra`): the fields of :class:`PretrainSpec` for
    the discriminator, its data and its training, plus the generator's width as a fraction of
    the discriminator's (``generator_fraction``) and the weight of the detection loss
    (``rtd_weight``). The committed weights are the discriminator's.

    Used in: book/transformers/albert-electra.md
    """

    generator_fraction: float = 0.25
    rtd_weight: float = 50.0

    def __post_init__(self):
        super().__post_init__()
        check_real(self.generator_fraction, "generator_fraction", 0.0, 1.0, low_open=True)
        check_real(self.rtd_weight, "rtd_weight", 0.0)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "objective": "electra"}


PRETRAINED = {
    "small-bert": PretrainSpec(
        config=dict(width=64, layers=4, heads=2, ffn_dim=256, max_positions=72, dropout=0.1)),
    # ALBERT of the same size and compute: one block applied 4 times, a 32-wide factorised
    # token embedding, the same data, steps and optimiser.
    "small-albert": PretrainSpec(
        config=dict(width=64, layers=4, heads=2, ffn_dim=256, max_positions=72, dropout=0.1,
                    shared_blocks=True, embedding_dim=32)),
    # ELECTRA with the small BERT's network as discriminator and a generator a quarter as
    # wide, at the small BERT's compute: 4,568 steps cost the multiply-adds of its 5,000
    # (kexue.models.cost.pretraining_multiply_adds; a test checks the equality).
    "small-electra": ElectraSpec(
        config=dict(width=64, layers=4, heads=2, ffn_dim=256, max_positions=72, dropout=0.1),
        steps=4568, generator_fraction=0.25),
}
"""The committed checkpoints by name: the recipe each was trained with."""

REGISTERED_SHA256 = {
    "small-bert": "85c751bd8b0427832ce2087fb72806e0e905ff22f085bc9466fc70a8dc611c26",
    "small-albert": "cddc66c4e2880a03c2f5f1336c11dff84967c8957acd44eb45d55aa8f5759d21",
    "small-electra": "2643351341b77ee4ef524760bbf17faf0d701c2054df1ec2d559ccc2908b1569",
}
"""The sha256 of each committed checkpoint's weights, registered in the library as the data
files are: the committed folder is used only when its record and its file carry this value
(after `make pretrained`, the command prints the new value to put here)."""

# The code that determines the weights (model, masking, data reading, training); an edit to
# any of these invalidates the checkpoint, an edit elsewhere (docstrings, comments, other
# modules) does not.
_WEIGHT_CODE = (
    "kexue.models.bert:BertVocab", "kexue.models.bert:clue_pretraining_texts",
    "kexue.models.bert:build_vocab", "kexue.models.bert:pack_sequences",
    "kexue.models.bert:mask_tokens", "kexue.models.bert:BertConfig",
    "kexue.models.bert:_initializer", "kexue.models.bert:BertEmbedding",
    "kexue.models.bert:MLMHead", "kexue.models.bert:BertModel",
    "kexue.models.bert:_mlm_loss", "kexue.models.bert:_optimizer",
    "kexue.models.bert:_masked_inputs", "kexue.models.bert:pretrain",
    "kexue.models.bert:_train_checkpoint",
    "kexue.layers.attention:PositionEmbedding", "kexue.layers.attention:TransformerBlock",
    "kexue.layers.attention:MultiHeadSelfAttention", "kexue.layers.attention:attention_mask",
    "kexue.layers.attention:_weights", "kexue.layers.attention:_split_heads",
    "kexue.layers.attention:_merge_heads", "kexue.layers.masking:masked_softmax",
    "kexue.layers.masking:very_negative", "kexue.layers.core:TiedDense",
    "kexue.text:CharVocab", "kexue.data:load_clue", "kexue.data:_read_json_lines",
)
# An ELECTRA checkpoint is made by the same code plus the generator, the replacement, the
# detection loss and the ELECTRA training loop.
_ELECTRA_CODE = _WEIGHT_CODE + (
    "kexue.models.electra:generator_config", "kexue.models.electra:ElectraGenerator",
    "kexue.models.electra:replace_tokens", "kexue.models.electra:rtd_loss",
    "kexue.models.electra:Electra", "kexue.models.electra:_electra_batch",
    "kexue.models.electra:_split_corpus", "kexue.models.electra:pretrain_electra",
    "kexue.models.electra:_train_checkpoint",
)
_DATA_FILES = ("clue/tnews/train.json", "clue/tnews/labels.json",
               "clue/iflytek_fewclue/train_few_all.json", "clue/afqmc/train.csv")


def _code_of(ref):
    """The source of one function or class without its docstrings, comments, blank lines and
    trailing spaces (plain text, so that the hash does not depend on the Python version)."""
    import importlib
    import io
    import tokenize

    module, name = ref.split(":")
    source = textwrap.dedent(inspect.getsource(getattr(importlib.import_module(module), name)))
    drop = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            drop.update(range(body[0].lineno - 1, body[0].end_lineno))
    comments = {tok.start[0] - 1: tok.start[1]
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    kept = []
    for i, line in enumerate(source.splitlines()):
        if i not in drop:
            line = line[: comments.get(i, len(line))].rstrip()
            if line.strip():
                kept.append(line)
    return "\n".join(kept)


def _sha(text) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def provenance_hashes(spec, code=None) -> dict:
    """The hashes a checkpoint's record must match: ``recipe`` (the :class:`PretrainSpec`),
    ``code`` (the syntax trees, without docstrings or comments, of the functions and classes
    that determine the weights: by default those of :func:`pretrain`, plus those of
    :func:`kexue.models.electra.pretrain_electra` for an :class:`ElectraSpec`), ``data`` (the
    registered sha256 of the CLUE training files) and ``total`` (all three).

    Used in: book/transformers/attention.md
    """
    check_instance(spec, "spec", PretrainSpec, "a kexue.models.bert.PretrainSpec")
    from kexue.data import REGISTRY

    if code is None:
        code = _ELECTRA_CODE if isinstance(spec, ElectraSpec) else _WEIGHT_CODE

    recipe = _sha(json.dumps(spec.to_dict(), sort_keys=True))
    code_hash = _sha("\n".join(f"{ref}\n{_code_of(ref)}" for ref in code))
    data = _sha(json.dumps({f: REGISTRY[f].accepted() for f in _DATA_FILES}, sort_keys=True))
    return {"recipe": recipe, "code": code_hash, "data": data,
            "total": _sha(recipe + code_hash + data)}


class CheckpointError(ValueError):
    """A committed checkpoint that is missing, corrupt or stale (made by other code, data or
    settings than the current ones)."""


def _train_checkpoint(spec, texts=None, log_every=0):
    """Vocabulary and :func:`pretrain` result for ``spec`` (texts: the CLUE training texts)."""
    texts = clue_pretraining_texts() if texts is None else texts
    vocab = build_vocab(texts, spec.min_count)
    config = BertConfig(vocab_size=len(vocab), **spec.config)
    result = pretrain(config, vocab, texts, spec.steps, batch_size=spec.batch_size,
                      learning_rate=spec.learning_rate, held_out=spec.held_out, seed=spec.seed,
                      log_every=log_every)
    return vocab, result


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _result_summary(result):
    """``(network, fields)`` of a pre-training result for its record: the network to save (the
    model of :func:`pretrain`, the discriminator of ELECTRA) and its steps, time, data sizes,
    loss curves and held-out quality (masked accuracy; for ELECTRA the detection metrics of
    :func:`kexue.models.electra.rtd_metrics` and the generator's masked accuracy)."""
    from kexue.models import electra

    check_instance(result, "result", (PretrainResult, electra.ElectraResult),
                   "a kexue.models.bert.PretrainResult or kexue.models.electra.ElectraResult")
    seconds = result.seconds + result.first_step
    fields = {"steps": result.steps, "seconds": round(seconds, 1),
              "steps_per_second": round(result.steps / max(seconds, 1e-9), 3),
              "train_sequences": result.train}
    if isinstance(result, PretrainResult):
        return result.model, {**fields, "held_out_sequences": result.held_out,
                              "held_out_masked_accuracy": result.held_out_accuracy,
                              "losses": [round(v, 4) for v in result.losses]}
    return result.discriminator, {
        **fields, "held_out_sequences": result.held_out_sequences,
        "held_out_rtd": {k: round(float(v), 6) for k, v in result.held_out.items()},
        "held_out_generator_accuracy": result.held_out.get("generator_accuracy"),
        "losses": [round(v, 4) for v in result.losses],
        "mlm_losses": [round(v, 4) for v in result.mlm_losses],
        "rtd_losses": [round(v, 5) for v in result.rtd_losses]}


def _trainer(spec):
    """The function that trains ``spec``'s checkpoint: ``(spec, texts=None, log_every=0) ->
    (vocab, result)``."""
    if isinstance(spec, ElectraSpec):
        from kexue.models import electra

        return electra._train_checkpoint
    return _train_checkpoint


def write_checkpoint(directory, name, spec, vocab, result) -> dict:
    """Write ``model.weights.h5``, ``vocab.txt`` and ``provenance.json`` into ``directory``;
    return the record (the recipe and its hashes, the weights' sha256 and size, steps, seed,
    seconds, the loss curve, the held-out masked accuracy, the package versions).

    Used in: book/transformers/attention.md
    """
    check_instance(spec, "spec", PretrainSpec, "a kexue.models.bert.PretrainSpec")
    model, summary = _result_summary(result)
    vocab = _check_vocab(vocab)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / "model.weights.h5"
    bare = BertModel(model.config)  # an uncompiled copy: no optimizer state in the file
    bare.set_weights(model.get_weights())
    bare.save_weights(weights)
    vocab.save(directory / "vocab.txt")
    record = {
        "name": name,
        "spec": spec.to_dict(),
        "config": model.config.to_dict(),
        "hashes": provenance_hashes(spec),
        "weights_sha256": _file_sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "vocab_sha256": _file_sha256(directory / "vocab.txt"),
        "seed": spec.seed,
        **summary,
        "versions": runtime.versions(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    (directory / "provenance.json").write_text(json.dumps(record, indent=1) + "\n",
                                               encoding="utf-8")
    return record


def _spec_for(name, spec):
    if spec is not None:
        return check_instance(spec, "spec", PretrainSpec, "a kexue.models.bert.PretrainSpec")
    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {tuple(PRETRAINED)} (or pass spec=), got "
                         f"{describe(name)}.")
    return PRETRAINED[name]


def read_record(name="small-bert", directory=None) -> dict:
    """The provenance record of a checkpoint (``directory``: default the committed one).

    Used in: book/transformers/attention.md
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a checkpoint name, got {describe(name)}.")
    path = Path(directory or PRETRAINED_DIR / name) / "provenance.json"
    if not path.exists():
        raise CheckpointError(f"no checkpoint {name!r}: {path} does not exist; train it with "
                              f"`make pretrained`.")
    return json.loads(path.read_text(encoding="utf-8"))


def check_checkpoint(name="small-bert", directory=None, spec=None) -> dict:
    """The record of checkpoint ``name`` if its files are intact and it was made by the current
    recipe, code and data; else :class:`CheckpointError` saying which of them differs.

    Used in: book/transformers/attention.md
    """
    spec = _spec_for(name, spec)
    committed = directory is None
    directory = Path(directory or PRETRAINED_DIR / name)
    record = read_record(name, directory)
    registered = REGISTERED_SHA256.get(name) if committed else None
    if registered is not None and record.get("weights_sha256") != registered:
        raise CheckpointError(
            f"checkpoint {name!r}: its record names weights with sha256 "
            f"{str(record.get('weights_sha256'))[:16]}..., but the library registers "
            f"{registered[:16]}... (kexue.models.bert.REGISTERED_SHA256); after `make "
            f"pretrained`, register the new value there and commit both.")
    for file, key in (("model.weights.h5", "weights_sha256"), ("vocab.txt", "vocab_sha256")):
        path = directory / file
        if not path.exists():
            raise CheckpointError(f"checkpoint {name!r} has no {file}; train it again with "
                                  f"`make pretrained`.")
        sha = _file_sha256(path)
        if sha != record.get(key):
            raise CheckpointError(
                f"checkpoint {name!r}: {file} has sha256 {sha[:16]}..., but the record says "
                f"{str(record.get(key))[:16]}...; the file is corrupt or was replaced, so it is "
                f"not used. Train it again with `make pretrained`.")
    now = provenance_hashes(spec)
    stale = [part for part in ("recipe", "code", "data")
             if record.get("hashes", {}).get(part) != now[part]]
    if stale:
        raise CheckpointError(
            f"checkpoint {name!r} is stale: its {' and '.join(stale)} hash differs from the "
            f"current one (the {'/'.join(stale)} that make the weights changed since it was "
            f"trained), so it is not used. Train it again with `make pretrained`.")
    return record


def load_pretrained(name="small-bert", directory=None, spec=None):
    """``(model, vocab, record)`` of a committed checkpoint, only after
    :func:`check_checkpoint` (weights sha256, recipe, code and data hashes) has passed; any
    mismatch raises :class:`CheckpointError` and nothing stale is ever returned.

    Used in: book/transformers/attention.md
    """
    record = check_checkpoint(name, directory, spec)
    directory = Path(directory or PRETRAINED_DIR / name)
    vocab = BertVocab.load(directory / "vocab.txt")
    model = BertModel(record["config"])
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"checkpoint {name!r}: the vocabulary has {len(vocab)} tokens but "
                              f"the model {model.config.vocab_size}.")
    model.load_weights(directory / "model.weights.h5")
    return model, vocab, record


def load_or_train(name="small-bert", directory=None, spec=None, log_every=0):
    """:func:`load_pretrained`, or, when the checkpoint is missing or stale, a warning saying
    why and the same recipe trained now (nothing is written). Returns ``(model, vocab,
    record)``; a retrained record has ``"retrained": True`` and no sha256.

    Used in: book/transformers/attention.md
    """
    try:
        return load_pretrained(name, directory, spec)
    except CheckpointError as err:
        spec = _spec_for(name, spec)
        warnings.warn(f"{err} Training {name!r} here instead ({spec.steps} steps).",
                      stacklevel=2)
    hashes = provenance_hashes(spec)
    vocab, result = _trainer(spec)(spec, log_every=log_every)
    model, summary = _result_summary(result)
    record = {"name": name, "spec": spec.to_dict(), "config": model.config.to_dict(),
              "hashes": hashes, "seed": spec.seed, **summary, "retrained": True}
    return model, vocab, record


# ------------------------------------------------------------------------- tagging


def tagging_inputs(vocab, texts, tags=None, max_len=64):
    """Per-character tagging inputs: ``[CLS] text [SEP]`` right-padded, as
    :func:`classification_inputs` builds them, so character ``i`` of a text sits at position
    ``i + 1``. Texts must fit (at most ``max_len - 2`` characters: cut longer ones first, e.g.
    with :func:`kexue.text.chunk_words`).

    Returns ``x`` (``{"token_ids", "segment_ids"}``, int32 ``(N, max_len)``); with ``tags`` (one
    int sequence per text, one tag per character), ``(x, y, w)``: labels ``y`` int32 ``(N,
    max_len)`` (0 off the characters) and weights ``w`` float32 ``(N, max_len)``, 1 on the
    characters and 0 on [CLS], [SEP] and padding.

    Used in: book/transformers/attention.md
    """
    texts = _check_texts(texts)
    max_len = check_int(max_len, "max_len", minimum=3)
    long = [i for i, t in enumerate(texts) if len(t) > max_len - 2]
    if long:
        raise ValueError(f"texts must have at most max_len - 2 = {max_len - 2} characters, "
                         f"but text {long[0]} has {len(texts[long[0]])} (and {len(long)} in "
                         f"all); cut them first.")
    x = classification_inputs(vocab, texts, max_len=max_len)
    if tags is None:
        return x
    if not isinstance(tags, (list, tuple)) or len(tags) != len(texts):
        raise ValueError(f"tags must hold one tag sequence per text ({len(texts)}), got "
                         f"{describe(tags)}.")
    y = np.zeros((len(texts), max_len), dtype="int32")
    w = np.zeros((len(texts), max_len), dtype="float32")
    for i, (text, t) in enumerate(zip(texts, tags)):
        t = as_array(t, "tags", dtype="int64")
        if t.shape != (len(text),) or (t < 0).any():
            raise ValueError(f"tags must give one non-negative tag per character: text {i} has "
                             f"{len(text)} characters and tags of shape {t.shape}.")
        y[i, 1:len(text) + 1] = t
        w[i, 1:len(text) + 1] = 1.0
    return x, y, w


def build_tagger(bert, num_tags, dropout=0.1, name="bert_tagger"):
    """A functional tagger ``{"token_ids", "segment_ids"}`` → logits ``(B, T, num_tags)``:
    dropout and one dense layer on every position of ``bert``'s output (its own weights,
    shared: fine-tuning changes ``bert``).

    Used in: book/transformers/attention.md
    """
    check_instance(bert, "bert", BertModel, "a kexue.models.bert.BertModel")
    num_tags = check_int(num_tags, "num_tags", minimum=2)
    dropout = check_real(dropout, "dropout", 0.0, 1.0, high_open=True)
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    seg = keras.Input((None,), dtype="int32", name="segment_ids")
    h = keras.layers.Dropout(dropout, name="tag_dropout")(
        bert({"token_ids": ids, "segment_ids": seg}))
    logits = keras.layers.Dense(num_tags, name="tag_logits")(h)
    return keras.Model({"token_ids": ids, "segment_ids": seg}, logits, name=name)


def segmentation_pieces(sentences, max_len=64) -> list:
    """Segmented sentences (each a list of words) cut at word boundaries into pieces of at
    most ``max_len - 2`` characters (:func:`kexue.text.chunk_words`), so that each piece with
    [CLS] and [SEP] fits ``max_len`` positions. Returns the pieces, in order, each a list of
    words.

    Used in: book/transformers/attention.md, book/transformers/albert-electra.md,
    book/transformers/albert-unshared.md, book/transformers/bert-of-theseus.md
    """
    from kexue.text import chunk_words

    max_len = check_int(max_len, "max_len", minimum=3)
    if not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of word lists, got {describe(sentences)}.")
    return [piece for words in sentences for piece in chunk_words(words, max_len - 2)]


def segmentation_inputs(vocab, pieces, max_len=64):
    """Word segmentation as character tagging: ``(x, y, w)`` of :func:`tagging_inputs` for
    word pieces (from :func:`segmentation_pieces`), with the s/b/m/e tags of
    :func:`kexue.text.words_to_tags` (4 tags) as labels.

    Used in: book/transformers/attention.md, book/transformers/albert-electra.md,
    book/transformers/albert-unshared.md, book/transformers/bert-of-theseus.md
    """
    from kexue.text import words_to_tags

    if not isinstance(pieces, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) for p in pieces):
        raise TypeError(f"pieces must be a list of word lists, got {describe(pieces)}.")
    return tagging_inputs(vocab, ["".join(p) for p in pieces],
                          [words_to_tags(p) for p in pieces], max_len=max_len)


def segmented_words(pieces, logits):
    """The words a tagger's output ``logits`` ``(N, T, 4)`` (or predicted tags ``(N, T)``)
    cuts each piece into, reading the tag of character ``i`` at position ``i + 1`` as
    :func:`tagging_inputs` lays the inputs out: one list of words per piece.

    Used in: book/transformers/attention.md, book/transformers/albert-electra.md,
    book/transformers/albert-unshared.md
    """
    from kexue.text import tags_to_words

    pred = as_array(logits, "logits")
    if pred.ndim == 3:
        pred = pred.argmax(-1)
    check_shape(pred, "logits", ("N", "T"))
    if not isinstance(pieces, (list, tuple)) or len(pieces) != len(pred):
        raise ValueError(f"pieces must hold one word list per row of logits ({len(pred)}), "
                         f"got {describe(pieces)}.")
    out = []
    for i, piece in enumerate(pieces):
        chars = "".join(piece)
        if len(chars) + 2 > pred.shape[1]:
            raise ValueError(f"piece {i} has {len(chars)} characters, more than the "
                             f"{pred.shape[1] - 2} the logits' {pred.shape[1]} positions hold.")
        out.append(tags_to_words(chars, pred[i, 1:len(chars) + 1]))
    return out



# ------------------------------------------------------------------------- pooled heads

HEAD_POOLINGS = ("cls", "mean")
"""How :class:`PooledHead` reads the hidden states: the [CLS] position or the mean."""


@keras.saving.register_keras_serializable(package="kexue")
class PooledHead(ClsHead):
    """A :class:`ClsHead` that can read the mean of the token states instead of [CLS].

    ``pooling="cls"``: the first position's state, exactly :class:`ClsHead`; ``"mean"``: the
    mean of the states of the real positions, ``sum_t m_t h_t / sum_t m_t`` with ``key_mask``
    ``m`` ``(B, T)`` (True or 1 at a real token, as ``token_ids != 0``; the plain mean without
    it). Then dropout and ``Dense(num_classes)``: ``(B, T, d)`` → logits ``(B, num_classes)``.
    Masked-language-model pre-training never makes the [CLS] state a target, while every
    position's state is one, which is why the mean can carry more of what it taught.

    Used in: no chapter at present (the Transformer chapters fine-tune on tagging since
    their classification tasks showed no gain from pre-training); kept, tested, for classification.
    """

    def __init__(self, num_classes, pooling="mean", dropout=0.1, **kwargs):
        super().__init__(num_classes, dropout, **kwargs)
        self.pooling = check_choice(pooling, "pooling", HEAD_POOLINGS)

    def call(self, hidden, key_mask=None, training=None):
        from kexue.layers.masking import masked_mean

        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif key_mask is None:
            pooled = ops.mean(hidden, axis=1)
        else:
            pooled = masked_mean(hidden, key_mask)
        return self.dense(self.drop(pooled, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(pooling=self.pooling)
        return config

def main(argv=None):
    """``python -m kexue.models.bert pretrain [--name NAME] [--steps N] [--seed S] [--out DIR]``:
    train a registered checkpoint and write it (default: into the package, where
    :func:`load_pretrained` looks). ``--steps``/``--seed`` change the recipe, and the record
    says so (a checkpoint made with a changed recipe does not load as the registered one)."""
    parser = argparse.ArgumentParser(prog="python -m kexue.models.bert")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pretrain", help="pre-train a registered checkpoint and write it")
    p.add_argument("--name", default="small-bert", choices=sorted(PRETRAINED))
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="output folder (default: the committed one)")
    p.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    spec = PRETRAINED[args.name]
    changes = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    spec = dataclasses.replace(spec, **changes)
    out = Path(args.out) if args.out else PRETRAINED_DIR / args.name
    print(f"Pre-training {args.name!r}: {spec.to_dict()} -> {out}", flush=True)
    # The record's hashes describe the code that runs: read them before training, and refuse to
    # write if the source files changed on disk meanwhile (the hashes are read from the files).
    hashes = provenance_hashes(spec)
    t0 = time.perf_counter()
    vocab, result = _trainer(spec)(spec, log_every=args.log_every)
    if provenance_hashes(spec) != hashes:
        raise CheckpointError(
            "the code that makes the weights changed on disk during training, so the record "
            "could not say which code made them; nothing was written. Run `make pretrained` "
            "again without editing kexue/models/bert.py or the modules it hashes meanwhile.")
    record = write_checkpoint(out, args.name, spec, vocab, result)
    quality = (f"held-out masked accuracy {record['held_out_masked_accuracy']:.3f}"
               if "held_out_masked_accuracy" in record else
               f"held-out detection accuracy {record['held_out_rtd']['rtd_accuracy']:.3f} "
               f"(all-original rule {record['held_out_rtd']['trivial_accuracy']:.3f})")
    print(f"Done in {time.perf_counter() - t0:.0f} s ({record['steps_per_second']} steps/s): "
          f"final loss {np.mean(result.losses[-50:]):.3f}, {quality}; "
          f"weights {record['weights_bytes'] / 1e6:.2f} MB, "
          f"sha256 {record['weights_sha256']}", flush=True)
    if out == PRETRAINED_DIR / args.name:
        print(f"Register it: REGISTERED_SHA256[{args.name!r}] = {record['weights_sha256']!r} in "
              f"kexue/models/bert.py, and commit {out}.", flush=True)
    return record


if __name__ == "__main__":  # pragma: no cover
    from kexue.models.bert import main as _main  # the importable module's objects, not __main__'s

    _main(sys.argv[1:])
