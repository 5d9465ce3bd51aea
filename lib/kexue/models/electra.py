"""Replaced-token detection (ELECTRA): a small masked-language-model generator corrupts the
input, and a discriminator learns, at every token, whether it is the original one.

- :func:`generator_config`: the generator's :class:`~kexue.models.bert.BertConfig`, a
  fraction of the discriminator's width, reading the discriminator's token embedding;
- :class:`ElectraGenerator`: a BERT whose token embedding (``V x E``) is a layer it is given
  (the discriminator's), projected to its own width when that is narrower, with the tied MLM
  head of :class:`~kexue.models.bert.MLMHead`;
- :class:`Electra`: the pair and the discriminator's per-token head, trained with Keras's own
  ``fit``/``train_on_batch`` on every backend: ``call`` masks nothing itself (the batch holds
  BERT's masking from :func:`~kexue.models.bert.mask_tokens`), samples the generator at the
  masked positions (:func:`replace_tokens`), and ``compute_loss`` is
  ``L_MLM(G) + lambda L_RTD(D)`` (:func:`rtd_loss`);
- :func:`pretrain_electra`: the same texts, packing, masking, optimiser and seeding as
  :func:`kexue.models.bert.pretrain`; returns the discriminator as a ``BertModel`` that
  :func:`~kexue.models.bert.build_classifier` takes;
- :func:`rtd_metrics`: replaced-token accuracy beside the trivial "all original" rule, and the
  generator's masked-token accuracy;
- the token-level theory: :func:`rtd_optimal_discriminator` (the Bayes-optimal probability that
  a token was replaced, given its context) and :func:`simulate_rtd`, which draws the corruption
  process for a tabular language.

Used in: book/transformers/albert-electra.md
"""

from __future__ import annotations

import dataclasses
import time
import warnings

import keras
import numpy as np
from keras import ops

from kexue._checks import (
    as_array,
    check_dtype,
    check_finite,
    check_instance,
    check_int,
    check_real,
    check_shape,
    describe,
)
from kexue.layers.attention import PositionEmbedding, TransformerBlock
from kexue.models import bert as _bert  # attributes read at call time: bert may still be importing

__all__ = ["generator_config", "ElectraGenerator", "Electra", "replace_tokens", "rtd_loss",
           "ElectraResult", "pretrain_electra", "rtd_metrics", "rtd_optimal_discriminator",
           "simulate_rtd"]



def generator_config(config, fraction=0.25) -> _bert.BertConfig:
    """The generator of a discriminator with ``config``: the same depth, vocabulary and
    positions, ``fraction`` of its width and feed-forward size (at least one head of the
    discriminator's head size or smaller), and ``embedding_dim`` set to the discriminator's
    token-embedding width ``E``, so that it can read the discriminator's token embedding
    (projected ``E -> fraction * width`` when narrower).

    Used in: book/transformers/albert-electra.md
    """
    c = _bert.BertConfig.from_dict(config)
    fraction = check_real(fraction, "fraction", 0.0, 1.0, low_open=True)
    width = round(c.width * fraction)
    heads = max(1, round(c.heads * fraction))
    if width < 1 or width % heads:
        raise ValueError(f"fraction must leave a width that {heads} head(s) divide, got "
                         f"fraction={fraction} of width {c.width} (= {c.width * fraction}).")
    return dataclasses.replace(c, width=width, heads=heads,
                               ffn_dim=max(1, round(c.ffn_dim * fraction)),
                               embedding_dim=c.token_dim, shared_blocks=False)


@keras.saving.register_keras_serializable(package="kexue")
class ElectraGenerator(keras.Model):
    """A small BERT with a tied MLM head whose token embedding is given.

    ``token_embedding``: a ``keras.layers.Embedding(V, E)`` with ``E = config.token_dim`` (the
    discriminator's, to share it; ``None``: a new one). The rest is the generator's own: a
    ``Dense(E -> width)`` projection when ``E != width``, segment and position embeddings,
    LayerNorm and dropout, ``layers`` post-LN :class:`~kexue.layers.TransformerBlock`, and
    :class:`~kexue.models.bert.MLMHead` (output matrix: the shared embedding).

    ``call(token_ids)`` or ``call({"token_ids", "segment_ids"?, "mlm_positions"?})``, as
    :class:`~kexue.models.bert.BertModel`: ids ``(B, T)``, positions ``(B, P)`` → MLM logits
    ``(B, P, V)``; without positions, the hidden states ``(B, T, width)``.

    Used in: book/transformers/albert-electra.md
    """

    def __init__(self, config, token_embedding=None, **kwargs):
        super().__init__(**kwargs)
        self.config = c = _bert.BertConfig.from_dict(config)
        if c.shared_blocks or c.pre_ln:
            raise ValueError(f"config must describe a post-LN generator with its own blocks "
                             f"(shared_blocks=False, pre_ln=False), got {c}.")
        init = keras.initializers.TruncatedNormal(stddev=c.initializer_range)
        if token_embedding is None:
            token_embedding = keras.layers.Embedding(c.vocab_size, c.token_dim,
                                                     embeddings_initializer=init, name="token")
        check_instance(token_embedding, "token_embedding", keras.layers.Embedding,
                       "a keras.layers.Embedding")
        if (token_embedding.input_dim, token_embedding.output_dim) != (c.vocab_size,
                                                                       c.token_dim):
            raise ValueError(f"token_embedding must map the config's {c.vocab_size} tokens to "
                             f"{c.token_dim} dimensions, got Embedding("
                             f"{token_embedding.input_dim}, {token_embedding.output_dim}).")
        self.token = token_embedding
        self.projection = (keras.layers.Dense(c.width, kernel_initializer=init,
                                              name="projection")
                           if c.token_dim != c.width else None)
        self.segment = keras.layers.Embedding(c.type_vocab_size, c.width,
                                              embeddings_initializer=init, name="segment")
        self.position = PositionEmbedding(c.max_positions, initializer=init, name="position")
        self.norm = keras.layers.LayerNormalization(epsilon=c.ln_epsilon, name="norm")
        self.drop = keras.layers.Dropout(c.dropout)
        self.block_layers = [
            TransformerBlock(c.heads, c.head_size, c.ffn_dim, dropout=c.dropout,
                             activation=c.activation, ln_epsilon=c.ln_epsilon,
                             kernel_initializer=init, name=f"block_{i}")
            for i in range(c.layers)]
        self.mlm = _bert.MLMHead(c, self.token, name="mlm")
        # build every sub-layer now (the shared table only if nobody has built it yet)
        states = (None, None, c.width)
        to_build = [(self.segment, (None, None)), (self.position, states), (self.norm, states)]
        to_build += [(block, states) for block in self.block_layers]
        if self.projection is not None:
            to_build.append((self.projection, (None, None, c.token_dim)))
        if not self.token.built:
            to_build.append((self.token, (None, None)))
        for layer, shape in to_build:
            layer.build(shape)
        self.mlm.build()
        self.built = True

    def encode(self, token_ids, segment_ids=None, training=None):
        """Hidden states ``(B, T, width)`` of ids ``(B, T)`` (padding, id 0, masked out)."""
        # the embedding's arithmetic is BertEmbedding's, on the same named sub-layers
        h = _bert.BertEmbedding.call(self, token_ids, segment_ids, training=training)
        key_mask = ops.not_equal(token_ids, 0)
        for block in self.block_layers:
            h = block(h, key_mask=key_mask, training=training)
        return h

    def call(self, inputs, training=None):
        token_ids, segment_ids, positions = _bert._as_inputs(inputs)
        h = self.encode(token_ids, segment_ids, training=training)
        if positions is None:
            return h
        h = ops.take_along_axis(h, ops.cast(positions, "int32")[:, :, None], axis=1)
        return self.mlm(h)

    def compute_output_spec(self, *args, **kwargs):  # the same shapes as BertModel's
        return _bert.BertModel.compute_output_spec(self, *args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(config=self.config.to_dict())
        return config


def replace_tokens(original_ids, mlm_positions, mlm_weights, sampled_ids):
    """Put ``sampled_ids`` into ``original_ids`` at the masked positions; label the result.

    ``original_ids`` ``(B, T)``; ``mlm_positions``, ``mlm_weights`` (1: a masked slot, 0: an
    unused one) and ``sampled_ids`` ``(B, P)`` (the masked positions of a row are distinct).
    Returns ``(corrupted_ids, labels)``, both ``(B, T)`` int32: ``labels`` is 1 where the token
    differs from the original (a sample equal to the original is labelled 0, "original"), so
    it equals ``sampled != original`` at the masked positions and 0 elsewhere.

    Used in: book/transformers/albert-electra.md
    """
    dims = {}
    check_shape(original_ids, "original_ids", ("batch", "T"), dims)
    for name, value in (("mlm_positions", mlm_positions), ("mlm_weights", mlm_weights),
                        ("sampled_ids", sampled_ids)):
        check_dtype(value, name, "int")
        check_shape(value, name, ("batch", "P"), dims)
    check_dtype(original_ids, "original_ids", "int")
    ids = ops.cast(original_ids, "int32")
    positions = ops.cast(mlm_positions, "int32")
    weights = ops.cast(mlm_weights, "int32")
    length = ops.shape(ids)[1]
    where = ops.one_hot(positions, length, dtype="int32") * weights[:, :, None]  # (B, P, T)
    chosen = ops.sum(where, axis=1)
    values = ops.sum(where * ops.cast(sampled_ids, "int32")[:, :, None], axis=1)
    corrupted = ops.where(chosen > 0, values, ids)
    return corrupted, ops.cast(ops.not_equal(corrupted, ids), "int32")


def rtd_loss(mlm_logits, mlm_labels, mlm_weights, rtd_logits, rtd_labels, real,
             rtd_weight=50.0):
    """ELECTRA's loss ``L_MLM + lambda L_RTD`` and its two parts.

    ``L_MLM``: the generator's cross-entropy on the masked tokens (``mlm_logits`` ``(B, P, V)``,
    ``mlm_labels`` and ``mlm_weights`` ``(B, P)``, mean over the weighted slots); ``L_RTD``: the
    discriminator's binary cross-entropy, from the logits ``rtd_logits`` ``(B, T)`` of "was
    replaced", against ``rtd_labels`` ``(B, T)`` on every real token (``real`` ``(B, T)``, 1
    except on padding), mean over those tokens. Returns ``(total, mlm, rtd)``.

    Used in: book/transformers/albert-electra.md
    """
    rtd_weight = check_real(rtd_weight, "rtd_weight", 0.0)
    dims = {}
    check_shape(mlm_logits, "mlm_logits", ("batch", "P", "V"), dims)
    check_shape(mlm_labels, "mlm_labels", ("batch", "P"), dims)
    check_shape(mlm_weights, "mlm_weights", ("batch", "P"), dims)
    check_shape(rtd_logits, "rtd_logits", ("batch", "T"), dims)
    check_shape(rtd_labels, "rtd_labels", ("batch", "T"), dims)
    check_shape(real, "real", ("batch", "T"), dims)
    w = ops.cast(mlm_weights, mlm_logits.dtype)
    ce = keras.losses.sparse_categorical_crossentropy(mlm_labels, mlm_logits, from_logits=True)
    mlm = ops.sum(ce * w) / ops.maximum(ops.sum(w), 1.0)
    r = ops.cast(real, rtd_logits.dtype)
    y = ops.cast(rtd_labels, rtd_logits.dtype)
    # binary cross-entropy from logits: softplus(z) - y z
    bce = ops.softplus(rtd_logits) - y * rtd_logits
    rtd = ops.sum(bce * r) / ops.maximum(ops.sum(r), 1.0)
    return mlm + rtd_weight * rtd, mlm, rtd


_BATCH_KEYS = ("token_ids", "original_ids", "mlm_positions", "mlm_labels", "mlm_weights")


@keras.saving.register_keras_serializable(package="kexue")
class Electra(keras.Model):
    """A generator and a discriminator trained together by replaced-token detection.

    ``discriminator``: a :class:`~kexue.models.bert.BertModel` (the network kept for
    fine-tuning); the generator is an :class:`ElectraGenerator` of
    :func:`generator_config` ``(config, generator_fraction)`` reading the discriminator's token
    embedding; ``rtd_head``: ``Dense(width, activation) -> Dense(1)`` on each hidden state.

    ``call(batch)``, ``batch`` a dict of int arrays: ``token_ids`` ``(B, T)`` (the masked
    input, as from :func:`~kexue.models.bert.mask_tokens`), ``original_ids`` ``(B, T)``,
    ``mlm_positions``, ``mlm_labels``, ``mlm_weights`` ``(B, P)``, optional ``segment_ids``.
    The generator's logits at the masked positions are sampled (:meth:`sample`:
    ``keras.random.categorical``, the special tokens excluded; no gradient passes the sample), the samples replace the originals (:func:`replace_tokens`), and the discriminator
    reads the corrupted ids. Returns a dict: ``mlm_logits`` ``(B, P, V)``, ``sampled_ids``
    ``(B, P)``, ``corrupted_ids``, ``rtd_labels``, ``rtd_logits`` ``(B, T)``.

    ``compute_loss`` is :func:`rtd_loss` with ``rtd_weight`` (``lambda``, 50 in the paper), so
    that ``compile(optimizer)`` and ``train_on_batch(batch)`` train it on any backend; the
    metrics ``mlm_loss``, ``rtd_loss``, ``rtd_accuracy`` (threshold 0.5 on real tokens) and
    ``replaced_fraction`` are reported with the loss.

    Used in: book/transformers/albert-electra.md
    """

    def __init__(self, discriminator, generator_fraction=0.25, rtd_weight=50.0, seed=0,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(discriminator, dict):
            discriminator = keras.saving.deserialize_keras_object(discriminator)
        check_instance(discriminator, "discriminator", _bert.BertModel,
                       "a kexue.models.bert.BertModel")
        self.discriminator = discriminator
        self.generator_fraction = check_real(generator_fraction, "generator_fraction", 0.0, 1.0,
                                             low_open=True)
        self.rtd_weight = check_real(rtd_weight, "rtd_weight", 0.0)
        self.seed = check_int(seed, "seed", minimum=0)
        c = discriminator.config
        self.generator = ElectraGenerator(generator_config(c, self.generator_fraction),
                                          discriminator.embedding.token, name="generator")
        init = keras.initializers.TruncatedNormal(stddev=c.initializer_range)
        self.rtd_dense = keras.layers.Dense(c.width, activation=c.activation,
                                            kernel_initializer=init, name="rtd_dense")
        self.rtd_out = keras.layers.Dense(1, kernel_initializer=init, name="rtd_out")
        self.rtd_dense.build((None, None, c.width))
        self.rtd_out.build((None, None, c.width))
        self.seed_generator = keras.random.SeedGenerator(self.seed, name="sampling_seed")
        self._trackers = {name: keras.metrics.Mean(name=name) for name in
                          ("mlm_loss", "rtd_loss", "rtd_accuracy", "replaced_fraction")}
        self.built = True

    def sample(self, mlm_logits, training=False):
        """One id per masked slot from ``softmax(mlm_logits)`` ``(B, P, V)`` over the
        non-special tokens: int32 ``(B, P)``, with no gradient. In training the draws come
        from the model's seed generator (new ones every step); otherwise from the fixed seed
        ``seed``, so that inference is a function of the weights and the batch."""
        v = self.discriminator.config.vocab_size
        special = ops.arange(v) < len(_bert.SPECIAL_TOKENS)
        logits = ops.where(special[None, None, :], -1e9, ops.cast(mlm_logits, "float32"))
        flat = ops.reshape(logits, (-1, v))
        seed = self.seed_generator if training else self.seed
        ids = keras.random.categorical(flat, 1, seed=seed, dtype="int32")
        return ops.stop_gradient(ops.reshape(ids, ops.shape(mlm_logits)[:2]))

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict) or any(k not in inputs for k in _BATCH_KEYS):
            raise ValueError(f"inputs must be a dict with keys {_BATCH_KEYS} (and optionally "
                             f"'segment_ids'), got {describe(inputs)}.")
        segments = inputs.get("segment_ids")
        mlm_logits = self.generator({"token_ids": inputs["token_ids"], "segment_ids": segments,
                                     "mlm_positions": inputs["mlm_positions"]},
                                    training=training)
        sampled = self.sample(mlm_logits, training=bool(training))
        corrupted, labels = replace_tokens(inputs["original_ids"], inputs["mlm_positions"],
                                           inputs["mlm_weights"], sampled)
        hidden = self.discriminator.encode(corrupted, segments, training=training)
        rtd_logits = ops.squeeze(self.rtd_out(self.rtd_dense(hidden)), -1)
        return {"mlm_logits": mlm_logits, "sampled_ids": sampled, "corrupted_ids": corrupted,
                "rtd_labels": labels, "rtd_logits": rtd_logits}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        real = ops.not_equal(ops.cast(x["original_ids"], "int32"), 0)
        total, mlm, rtd = rtd_loss(y_pred["mlm_logits"], x["mlm_labels"], x["mlm_weights"],
                                   y_pred["rtd_logits"], y_pred["rtd_labels"], real,
                                   self.rtd_weight)
        r = ops.cast(real, "float32")
        guess = ops.cast(y_pred["rtd_logits"] > 0, "int32")
        hits = ops.cast(ops.equal(guess, y_pred["rtd_labels"]), "float32")
        n = ops.maximum(ops.sum(r), 1.0)
        self._trackers["mlm_loss"].update_state(mlm)
        self._trackers["rtd_loss"].update_state(rtd)
        self._trackers["rtd_accuracy"].update_state(ops.sum(hits * r) / n)
        self._trackers["replaced_fraction"].update_state(
            ops.sum(ops.cast(y_pred["rtd_labels"], "float32") * r) / n)
        return total

    @property
    def metrics(self):
        return [*super().metrics, *self._trackers.values()]

    def compute_output_spec(self, inputs, training=None):
        ids = inputs["original_ids"]
        positions = inputs["mlm_positions"]
        b, t, p = ids.shape[0], ids.shape[1], positions.shape[1]
        v = self.discriminator.config.vocab_size
        return {"mlm_logits": keras.KerasTensor((b, p, v), dtype=self.compute_dtype),
                "sampled_ids": keras.KerasTensor((b, p), dtype="int32"),
                "corrupted_ids": keras.KerasTensor((b, t), dtype="int32"),
                "rtd_labels": keras.KerasTensor((b, t), dtype="int32"),
                "rtd_logits": keras.KerasTensor((b, t), dtype=self.compute_dtype)}

    def get_config(self):
        config = super().get_config()
        config.update(discriminator=keras.saving.serialize_keras_object(self.discriminator),
                      generator_fraction=self.generator_fraction, rtd_weight=self.rtd_weight,
                      seed=self.seed)
        return config


def _electra_batch(sequences, vocab_size, rng):
    batch = _bert.mask_tokens(sequences, vocab_size, rng)
    batch["original_ids"] = np.asarray(sequences, dtype="int32")
    return batch


def rtd_metrics(electra, sequences, seed=1, batch_size=128):
    """How well an :class:`Electra` pair does on ``sequences`` int ``(N, T)``, masked by
    :func:`~kexue.models.bert.mask_tokens` with ``numpy.random.default_rng(seed)`` (the same
    masking every call) and corrupted by the generator's samples (inference mode: drawn with
    the model's fixed seed, so the same every call).

    Returns a dict over the real (non-padding) tokens: ``rtd_accuracy`` (discriminator,
    threshold 0.5), ``trivial_accuracy`` (the rule "every token is original", i.e. one minus
    the replaced fraction), ``replaced_fraction``, ``replaced_recall`` (replaced tokens found),
    and over the masked slots ``generator_accuracy`` (the generator's most likely token is the
    original) and ``sample_equals_original`` (the fraction of samples that happen to be right).

    Used in: book/transformers/albert-electra.md
    """
    check_instance(electra, "electra", Electra, "a kexue.models.electra.Electra")
    seqs = as_array(sequences, "sequences")
    check_shape(seqs, "sequences", ("N", "T"))
    seed = check_int(seed, "seed", minimum=0)
    batch_size = check_int(batch_size, "batch_size")
    sums = _rtd_counts(electra, seqs, np.random.default_rng(seed), batch_size)
    real, masked = max(sums["real"], 1), max(sums["masked"], 1)
    return {"rtd_accuracy": sums["hits"] / real,
            "trivial_accuracy": 1 - sums["replaced"] / real,
            "replaced_fraction": sums["replaced"] / real,
            "replaced_recall": sums["found"] / max(sums["replaced"], 1),
            "generator_accuracy": sums["gen_hits"] / masked,
            "sample_equals_original": sums["same"] / masked}


def _rtd_counts(electra, seqs, rng, batch_size):
    sums = dict.fromkeys(("hits", "real", "replaced", "found", "gen_hits", "same", "masked"), 0)
    for i in range(0, len(seqs), batch_size):
        batch = _electra_batch(seqs[i:i + batch_size], electra.discriminator.config.vocab_size,
                               rng)
        out = {k: ops.convert_to_numpy(v) for k, v in electra(batch, training=False).items()}
        real = batch["original_ids"] != 0
        guess = out["rtd_logits"] > 0
        labels = out["rtd_labels"].astype(bool)
        w = batch["mlm_weights"].astype(bool)
        sums["hits"] += int(((guess == labels) & real).sum())
        sums["real"] += int(real.sum())
        sums["replaced"] += int((labels & real).sum())
        sums["found"] += int((labels & guess & real).sum())
        sums["gen_hits"] += int(((out["mlm_logits"].argmax(-1) == batch["mlm_labels"]) & w).sum())
        sums["same"] += int(((out["sampled_ids"] == batch["mlm_labels"]) & w).sum())
        sums["masked"] += int(w.sum())
    return sums


@dataclasses.dataclass
class ElectraResult:
    """What :func:`pretrain_electra` returns: the ``discriminator`` (a ``BertModel``), the
    ``generator``, the whole ``electra`` pair, per-step ``losses`` (total), ``mlm_losses`` and
    ``rtd_losses``, ``history`` (``(step, rtd_metrics)`` on the held-out sequences every
    ``eval_every`` steps), ``held_out`` (the final :func:`rtd_metrics`), the number of
    ``steps``, the training ``seconds`` (after the first step) and ``first_step`` seconds,
    and the sizes of the ``train`` / ``held_out_sequences`` sets."""

    discriminator: _bert.BertModel
    generator: ElectraGenerator
    electra: Electra
    losses: list
    mlm_losses: list
    rtd_losses: list
    history: list
    held_out: dict
    steps: int
    seconds: float
    first_step: float
    train: int
    held_out_sequences: int


def _split_corpus(config, vocab, texts, seq_len, held_out, rng):
    """(held-out, training) packed sequences: the texts shuffled by ``rng`` and the first
    ``held_out`` fraction set apart, as :func:`kexue.models.bert.pretrain` splits them."""
    vocab, texts = _bert._check_vocab(vocab), _bert._check_texts(texts)
    if len(vocab) != config.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} tokens but config.vocab_size is "
                         f"{config.vocab_size}; they must agree.")
    order = rng.permutation(len(texts))
    cut = int(round(held_out * len(texts)))
    parts = ([texts[i] for i in order[:cut]], [texts[i] for i in order[cut:]])
    return tuple(_bert.pack_sequences(vocab, part, seq_len) if part
                 else np.zeros((0, seq_len), "int32") for part in parts)


def pretrain_electra(config, vocab, texts, steps, generator_fraction=0.25, rtd_weight=50.0,
                     batch_size=64, seq_len=None, learning_rate=1e-3, warmup=None,
                     held_out=0.02, seed=0, eval_every=0, eval_sequences=256, log_every=0,
                     jit_compile="auto"):
    """ELECTRA pre-training of a discriminator with ``config`` for a fixed number of steps,
    with the data, masking, optimiser and seeding of :func:`kexue.models.bert.pretrain`.

    The texts are shuffled with ``seed``, the first ``held_out`` fraction kept apart, both
    sets packed into sequences of ``seq_len`` (default ``config.max_positions``); each step
    draws ``batch_size`` sequences, masks them with :func:`~kexue.models.bert.mask_tokens`
    and takes one AdamW step (weight decay 0.01, gradient norm clipped to 1, linear warm-up
    over ``warmup`` steps, default 6%, then cosine decay) on ``L_MLM + rtd_weight L_RTD`` over
    both networks (:class:`Electra`). ``eval_every > 0`` records :func:`rtd_metrics` on the
    first ``eval_sequences`` held-out sequences that often (not counted in ``seconds``).
    ``jit_compile`` goes to ``compile`` (``"auto"``: XLA where Keras chooses it, as in
    :func:`~kexue.models.bert.pretrain`; ``False`` traces faster for a few steps).

    Returns an :class:`ElectraResult`.

    Used in: book/transformers/albert-electra.md
    """
    config = _bert.BertConfig.from_dict(config)
    steps, batch_size, eval_sequences = (check_int(value, name) for name, value in (
        ("steps", steps), ("batch_size", batch_size), ("eval_sequences", eval_sequences)))
    seed, eval_every, log_every = (check_int(value, name, minimum=0) for name, value in (
        ("seed", seed), ("eval_every", eval_every), ("log_every", log_every)))
    if seq_len is None:
        seq_len = config.max_positions
    seq_len = check_int(seq_len, "seq_len", minimum=3, maximum=config.max_positions)
    learning_rate = check_real(learning_rate, "learning_rate", 0.0, low_open=True)
    warmup = check_int(round(0.06 * steps) if warmup is None else warmup, "warmup", minimum=0)
    held_out = check_real(held_out, "held_out", 0.0, 1.0, high_open=True)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    held_seqs, train_seqs = _split_corpus(config, vocab, texts, seq_len, held_out, rng)
    probe = held_seqs[:eval_sequences]

    electra = Electra(_bert.BertModel(config), generator_fraction, rtd_weight, seed=seed)
    if jit_compile not in ("auto", True, False):
        raise ValueError(f"jit_compile must be 'auto', True or False, got {describe(jit_compile)}.")
    electra.compile(optimizer=_bert._optimizer(learning_rate, steps, warmup), jit_compile=jit_compile)
    losses, mlm_losses, rtd_losses, history = [], [], [], []
    first, t0, paused = 0.0, time.perf_counter(), 0.0
    for step in range(steps):
        rows = rng.integers(0, len(train_seqs), batch_size)
        with warnings.catch_warnings():  # the discriminator's MLM head takes no part
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables")
            logs = electra.train_on_batch(
                _electra_batch(train_seqs[rows], config.vocab_size, rng), return_dict=True)
        losses.append(float(logs["loss"]))
        mlm_losses.append(float(logs["mlm_loss"]))
        rtd_losses.append(float(logs["rtd_loss"]))
        if step == 0:
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
        if eval_every and len(probe) and ((step + 1) % eval_every == 0 or step + 1 == steps):
            t1 = time.perf_counter()
            history.append((step + 1, rtd_metrics(electra, probe, seed=seed + 1)))
            paused += time.perf_counter() - t1
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: MLM loss {np.mean(mlm_losses[-log_every:]):.4f}, "
                  f"RTD loss {np.mean(rtd_losses[-log_every:]):.4f}", flush=True)
    seconds = time.perf_counter() - t0 - paused
    final = (history[-1][1] if history and history[-1][0] == steps
             else rtd_metrics(electra, probe, seed=seed + 1) if len(probe) else {})
    return ElectraResult(electra.discriminator, electra.generator, electra, losses, mlm_losses,
                         rtd_losses, history, final, steps, seconds, first, len(train_seqs),
                         len(held_seqs))


def _train_checkpoint(spec, texts=None, log_every=0):
    """Vocabulary and :func:`pretrain_electra` result for an
    :class:`~kexue.models.bert.ElectraSpec` (texts: the CLUE training texts), as
    :func:`kexue.models.bert._train_checkpoint` does for masked-language-model recipes."""
    texts = _bert.clue_pretraining_texts() if texts is None else texts
    vocab = _bert.build_vocab(texts, spec.min_count)
    config = _bert.BertConfig(vocab_size=len(vocab), **spec.config)
    result = pretrain_electra(config, vocab, texts, spec.steps,
                              generator_fraction=spec.generator_fraction,
                              rtd_weight=spec.rtd_weight, batch_size=spec.batch_size,
                              learning_rate=spec.learning_rate, held_out=spec.held_out,
                              seed=spec.seed, log_every=log_every)
    return vocab, result


# ------------------------------------------------------------------ the token-level optimum


def _conditional_table(x, name):
    a = as_array(x, name, "float64")
    check_shape(a, name, ("contexts", "V"))
    check_finite(a, name)
    if np.any(a < 0) or not np.allclose(a.sum(axis=1), 1.0, atol=1e-8):
        raise ValueError(f"{name} must hold one probability distribution per row (non-negative, "
                         f"rows summing to 1), got row sums {a.sum(axis=1)[:4]}.")
    return a


def rtd_optimal_discriminator(p, q, mask_rate=0.15):
    """The Bayes-optimal replaced-token detector of a one-position corruption process.

    The true next token follows ``p[c, w] = p(w | c)``; with probability ``mask_rate`` = ``m``
    the position is masked and the generator's sample ``w ~ q(. | c)`` takes its place (a
    sample equal to the original counts as original). The probability that the token seen,
    ``w``, was replaced is

    ``m q(w|c) (1 - p(w|c)) / ((1 - m) p(w|c) + m q(w|c))``

    (``nan`` where ``w`` is never seen in ``c``). With ``q = p`` it is ``m (1 - p(w|c))``.
    ``p``, ``q``: ``(contexts, V)`` row-stochastic arrays. Returns ``(contexts, V)`` float64.

    Used in: book/transformers/albert-electra.md
    """
    p = _conditional_table(p, "p")
    q = _conditional_table(q, "q")
    check_shape(q, "q", p.shape)
    m = check_real(mask_rate, "mask_rate", 0.0, 1.0, low_open=True, high_open=True)
    seen = (1 - m) * p + m * q
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, m * q * (1 - p) / np.where(seen > 0, seen, 1.0), np.nan)


def simulate_rtd(p, q, mask_rate=0.15, draws=100_000, context_probs=None, seed=0):
    """Draw the corruption process of :func:`rtd_optimal_discriminator` ``draws`` times.

    Each draw: a context ``c`` from ``context_probs`` (default uniform), the original token
    ``x ~ p(. | c)``; with probability ``mask_rate`` a sample ``s ~ q(. | c)`` replaces it
    (label "replaced" iff ``s != x``), else ``x`` is kept (label "original"). Returns
    ``(seen, replaced)``, int64 ``(contexts, V)`` counts: how often ``w`` was the token seen in
    context ``c``, and how often it was a replacement; ``replaced / seen`` estimates the
    optimum.

    Used in: book/transformers/albert-electra.md
    """
    p = _conditional_table(p, "p")
    q = _conditional_table(q, "q")
    check_shape(q, "q", p.shape)
    m = check_real(mask_rate, "mask_rate", 0.0, 1.0, low_open=True, high_open=True)
    draws = check_int(draws, "draws")
    k, v = p.shape
    if context_probs is None:
        pc = np.full(k, 1.0 / k)
    else:
        pc = _conditional_table(np.asarray(context_probs, dtype="float64")[None, :],
                                "context_probs")[0]
        if pc.shape != (k,):
            raise ValueError(f"context_probs must have one probability per context ({k}), got "
                             f"shape {pc.shape}.")
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))

    def draw(table, rows):  # one token per row of `table[rows]`, by inverse CDF
        cdf = np.cumsum(table[rows], axis=1)
        u = rng.random(len(rows))[:, None] * cdf[:, -1:]
        return np.minimum((u >= cdf).sum(axis=1), v - 1)

    seen = np.zeros((k, v), dtype="int64")
    replaced = np.zeros((k, v), dtype="int64")
    for start in range(0, draws, 200_000):  # in chunks: memory (chunk, V)
        n = min(200_000, draws - start)
        c = rng.choice(k, size=n, p=pc)
        x = draw(p, c)
        masked = rng.random(n) < m
        s = draw(q, c)
        w = np.where(masked, s, x)
        is_replaced = masked & (s != x)
        np.add.at(seen, (c, w), 1)
        np.add.at(replaced, (c, w), is_replaced.astype("int64"))
    return seen, replaced
