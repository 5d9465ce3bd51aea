"""Sequence-to-sequence generation: a small encoder–decoder, teacher forcing, decoding.

- :func:`make_vocab`, :func:`encode_pairs`: character ids with a begin (``BOS``) and an end
  (``EOS``) token, source ids and the teacher-forcing pair (decoder inputs, labels);
- :func:`build_seq2seq`: a small convolutional encoder–decoder with cross-attention, built
  from ``keras.layers`` (and the tied output layer of :mod:`kexue.layers`);
- :func:`teacher_forcing_loss`: the per-step cross-entropy summed over the target positions
  and divided by their number (padding ignored);
- :func:`random_replace`: corrupt the decoder *inputs* (never the labels) by random tokens;
- :func:`model_decoder`, :func:`greedy_decode`, :func:`beam_search`, :func:`generate`: batched
  decoding with log-probabilities; :func:`sequence_log_prob` scores given outputs;
- :func:`toy_beam_example`: two steps, two choices each, where a wider beam finds a worse
  sequence.

Decoding works on any model through a *step function* ``step(tokens, states) -> (log_probs,
states)``: ``tokens`` ``(N,)`` the last token of each hypothesis, ``states`` a tuple of arrays
whose first axis is ``N``, ``log_probs`` ``(N, V)``. The decoders reorder the states along the
first axis when hypotheses are reordered.

Used in: book/sequence/exposure-bias.md.
"""

from __future__ import annotations

import numpy as np

from kexue._checks import (
    as_array,
    check_callable,
    check_choice,
    check_instance,
    check_int,
    check_int_range,
    check_real,
    describe,
)

__all__ = [
    "BOS_CHAR", "EOS_CHAR", "BOS", "EOS", "make_vocab", "encode_pairs", "decode_ids",
    "build_seq2seq", "teacher_forcing_loss", "random_replace", "model_decoder",
    "greedy_decode", "beam_search", "generate", "sequence_log_prob", "toy_beam_example",
]

BOS_CHAR, EOS_CHAR = "\x02", "\x03"
"""The characters that stand for the begin and end tokens in a :class:`~kexue.text.CharVocab`."""
BOS, EOS = 2, 3
"""Their ids in a vocabulary made by :func:`make_vocab` (0 is padding, 1 unknown)."""


def make_vocab(texts, min_count: int = 2):
    """A :class:`kexue.text.CharVocab` of ``texts`` with ``BOS`` = 2 and ``EOS`` = 3.

    ``texts``: strings (sources and targets). Characters seen fewer than ``min_count`` times
    map to unknown (1); 0 is padding.
    """
    from kexue.text import CharVocab

    min_count = check_int(min_count, "min_count")
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        raise TypeError(f"texts must be a list of strings, got {describe(texts)}.")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a string, got {describe(t)}.")
        if BOS_CHAR in t or EOS_CHAR in t:
            raise ValueError(f"texts[{i}] must not contain the control characters \\x02 or "
                             f"\\x03 (the begin and end tokens), got {t!r:.60}.")
    fitted = CharVocab.fit(texts, min_count=min_count)
    return CharVocab([BOS_CHAR, EOS_CHAR] + fitted.chars)


def _check_vocab(vocab):
    from kexue.text import CharVocab

    check_instance(vocab, "vocab", CharVocab, "a kexue.text.CharVocab made by make_vocab")
    if vocab.index.get(BOS_CHAR) != BOS or vocab.index.get(EOS_CHAR) != EOS:
        raise ValueError(f"vocab must have the begin and end tokens at ids {BOS} and {EOS} "
                         f"(build it with make_vocab), got a vocabulary without them.")
    return vocab


def _check_texts(texts, name):
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)):
        raise TypeError(f"{name} must be a list of strings, got {describe(texts)}.")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t:
            raise ValueError(f"{name}[{i}] must be a non-empty string, got {describe(t)}.")
    return list(texts)


def encode_pairs(vocab, sources, targets, max_source: int | None = None,
                 max_target: int | None = None):
    """Ids of source texts and the teacher-forcing arrays of their targets.

    Returns ``(source, decoder_input, labels)``, int32, right-padded with 0:
    ``source`` ``(N, S)``; ``decoder_input`` ``(N, T + 1)`` = ``BOS`` then the target;
    ``labels`` ``(N, T + 1)`` = the target then ``EOS``. ``S`` and ``T`` are ``max_source``
    and ``max_target`` or the longest text; a longer text is an error (filter first).
    """
    vocab = _check_vocab(vocab)
    sources, targets = _check_texts(sources, "sources"), _check_texts(targets, "targets")
    if len(sources) != len(targets):
        raise ValueError(f"sources and targets must have the same length, got {len(sources)} "
                         f"sources but {len(targets)} targets.")
    if not sources:
        raise ValueError("sources must hold at least one text, got an empty list.")
    s_len = max(map(len, sources)) if max_source is None else check_int(max_source, "max_source")
    t_len = max(map(len, targets)) if max_target is None else check_int(max_target, "max_target")
    for name, texts, width in (("sources", sources, s_len), ("targets", targets, t_len)):
        longest = max(map(len, texts))
        if longest > width:
            raise ValueError(f"{name} holds a text of {longest} characters, more than the "
                             f"maximum {width}.")
    n = len(sources)
    src = np.zeros((n, s_len), np.int32)
    dec = np.zeros((n, t_len + 1), np.int32)
    lab = np.zeros((n, t_len + 1), np.int32)
    for i, (s, t) in enumerate(zip(sources, targets)):
        src[i, : len(s)] = vocab.encode(s)
        ids = vocab.encode(t)
        dec[i, 0] = BOS
        dec[i, 1: len(t) + 1] = ids
        lab[i, : len(t)] = ids
        lab[i, len(t)] = EOS
    return src, dec, lab


def decode_ids(vocab, ids) -> str:
    """The text of a sequence of ids, cut at the first ``EOS`` and without padding or ``BOS``."""
    vocab = _check_vocab(vocab)
    arr = as_array(ids, "ids")
    if arr.ndim != 1:
        raise ValueError(f"ids must be a 1-D sequence of token ids, got shape {arr.shape}.")
    check_int_range(arr, "ids", 0, len(vocab))
    chars = []
    for i in arr.tolist():
        if i == EOS:
            break
        if i in (0, BOS):
            continue
        chars.append("\ufffd" if i == 1 else vocab.chars[i - 2])
    return "".join(chars)


# ------------------------------------------------------------------------------ the model


def build_seq2seq(vocab_size: int, dim: int = 128, heads: int = 4, kernel_size: int = 3,
                  name: str = "seq2seq"):
    """A small convolutional encoder–decoder with cross-attention, from ``keras.layers``.

    Inputs ``[source (N, S), decoder_input (N, T)]`` int ids (0 = padding); output the logits
    ``(N, T, vocab_size)`` of the next token at every target position. One ``Embedding``
    (``"embedding"``, ``dim``) serves source, target and output:

    - encoder: the source embeddings (zero at padding), then two residual ``Conv1D`` blocks
      (``kernel_size``, ``"same"`` padding, ReLU, layer normalisation);
    - decoder: the target embeddings, two residual *causal* ``Conv1D`` blocks (position ``t``
      sees tokens ``<= t`` only), a residual ``MultiHeadAttention`` (``heads``) from every
      target position to the non-padding source positions, and a residual feed-forward block;
    - output: ``kexue.layers.TiedDense``, logits ``h E^T + b`` with the embedding matrix ``E``,
      so copying a source character is easy to learn.

    The convolutions give every position its neighbourhood (no position embeddings are
    needed); no position sees a later target token, so one forward pass computes every
    teacher-forced step. :func:`model_decoder` runs the encoder once and the decoder step by
    step, with the same layers.

    Used in: book/sequence/exposure-bias.md.
    """
    import keras
    from keras import ops

    from kexue.layers import TiedDense

    vocab_size = check_int(vocab_size, "vocab_size", minimum=5)
    dim = check_int(dim, "dim", minimum=2)
    heads = check_int(heads, "heads")
    kernel_size = check_int(kernel_size, "kernel_size")
    if dim % heads:
        raise ValueError(f"dim must be a multiple of heads={heads}, got {dim}.")
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty string, got {describe(name)}.")
    L = keras.layers
    embedding = L.Embedding(vocab_size, dim, name="embedding")

    def block(x, padding, prefix):
        for i in (1, 2):
            h = L.Conv1D(dim, kernel_size, padding=padding, activation="relu",
                         name=f"{prefix}_conv{i}")(x)
            x = L.LayerNormalization(name=f"{prefix}_norm{i}")(L.Add()([x, h]))
        return x

    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="decoder_input")
    src_mask = ops.cast(ops.not_equal(source, 0), "float32")
    enc = block(embedding(source) * ops.expand_dims(src_mask, -1), "same", "enc")
    x = block(embedding(target_in), "causal", "dec")
    attention_mask = ops.expand_dims(ops.greater(src_mask, 0.5), 1)  # (N, 1, S)
    ctx = L.MultiHeadAttention(heads, dim // heads, name="attention")(
        x, enc, attention_mask=attention_mask)
    x = L.LayerNormalization(name="attention_norm")(L.Add()([x, ctx]))
    h = L.Dense(2 * dim, activation="relu", name="ffn_in")(x)
    h = L.Dense(dim, name="ffn_out")(h)
    x = L.LayerNormalization(name="ffn_norm")(L.Add()([x, h]))
    logits = TiedDense(embedding, name="logits")(x)
    return keras.Model([source, target_in], logits, name=name)


_PARTS = ("embedding", "enc_conv1", "enc_norm1", "enc_conv2", "enc_norm2", "dec_conv1",
          "dec_norm1", "dec_conv2", "dec_norm2", "attention", "attention_norm", "ffn_in",
          "ffn_out", "ffn_norm", "logits")


def _seq2seq_parts(model):
    """``encode(source) -> (outputs, mask)`` and ``decode(prefix, outputs, mask) -> logits``,
    calling the layers of a :func:`build_seq2seq` model in the order the model does, or
    ``None`` for another model."""
    from keras import ops

    names = {layer.name for layer in model.layers}
    if not set(_PARTS) <= names:
        return None
    g = {n: model.get_layer(n) for n in _PARTS}

    def block(x, prefix):
        for i in (1, 2):
            x = g[f"{prefix}_norm{i}"](x + g[f"{prefix}_conv{i}"](x))
        return x

    def encode(source):
        mask = ops.cast(ops.not_equal(source, 0), "float32")
        return block(g["embedding"](source) * ops.expand_dims(mask, -1), "enc"), mask

    def decode(prefix, enc, mask):
        x = block(g["embedding"](prefix), "dec")
        ctx = g["attention"](x, enc, attention_mask=ops.expand_dims(ops.greater(mask, 0.5), 1))
        x = g["attention_norm"](x + ctx)
        x = g["ffn_norm"](x + g["ffn_out"](g["ffn_in"](x)))
        return g["logits"](x)

    return encode, decode, g


def teacher_forcing_loss(y_true, y_pred):
    """Mean cross-entropy of the gold next tokens over the non-padding target positions.

    ``y_true`` ``(N, T)`` int labels, 0 = padding; ``y_pred`` ``(N, T, V)`` logits. Returns a
    scalar: the sum over all labelled positions of the batch of ``-log softmax(y_pred)[y]``,
    divided by their number, so every target token weighs the same whatever its sequence's
    length. A Keras loss (``model.compile(loss=teacher_forcing_loss)``), registered for
    ``.keras`` saving.
    """
    from keras import ops

    y_true = ops.cast(y_true, "int32")
    if len(y_pred.shape) != 3 or len(y_true.shape) != 2:
        raise ValueError(f"y_true must have shape (N, T) and y_pred (N, T, V), got shapes "
                         f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}.")
    logp = ops.log_softmax(ops.cast(y_pred, "float32") if y_pred.dtype == "float16"
                           else y_pred, axis=-1)
    picked = ops.take_along_axis(logp, ops.expand_dims(y_true, -1), axis=-1)[..., 0]
    mask = ops.cast(ops.not_equal(y_true, 0), picked.dtype)
    return -ops.sum(picked * mask) / ops.maximum(ops.sum(mask), 1.0)


def _register():
    import keras

    keras.saving.register_keras_serializable(package="kexue")(teacher_forcing_loss)


_register()


# ------------------------------------------------------------------------ random replacement


def random_replace(decoder_input, p_apply: float = 0.5, p_token: float = 0.3,
                   pool: str = "target", vocab_size: int | None = None, rng=None):
    """Replace decoder-input tokens by random tokens; the labels are left to the caller.

    ``decoder_input`` ``(N, T)`` int ids with ``BOS`` (2) first and 0 as padding. Each row is
    chosen with probability ``p_apply``; in a chosen row every token after ``BOS`` that is not
    padding is replaced with probability ``p_token`` by a uniform draw from ``pool``:
    ``"target"``, the row's own tokens after ``BOS`` (the target sequence); ``"vocab"``, the
    ids ``[4, vocab_size)`` (every character, no special token). A draw may return the token
    it replaces. Returns ``(replaced (N, T), events (N, T) bool)``, ``events`` marking the
    positions that were drawn again.
    """
    x = as_array(decoder_input, "decoder_input")
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise ValueError(f"decoder_input must be a 2-D array of token ids, got "
                         f"{describe(decoder_input)}.")
    if x.shape[1] and not (x[:, 0] == BOS).all():
        raise ValueError(f"decoder_input must start every row with BOS={BOS}, got first ids "
                         f"{sorted(set(x[:, 0].tolist()))[:5]}.")
    p_apply = check_real(p_apply, "p_apply", 0.0, 1.0)
    p_token = check_real(p_token, "p_token", 0.0, 1.0)
    pool = check_choice(pool, "pool", ("target", "vocab"))
    if pool == "vocab":
        vocab_size = check_int(vocab_size, "vocab_size", minimum=5)
        check_int_range(x, "decoder_input", 0, vocab_size)
    if rng is None:
        rng = np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {describe(rng)}.")
    n, t = x.shape
    body = np.zeros_like(x, dtype=bool)
    body[:, 1:] = x[:, 1:] != 0
    rows = rng.random(n) < p_apply
    events = body & rows[:, None] & (rng.random((n, t)) < p_token)
    out = x.copy()
    if pool == "vocab":
        out[events] = rng.integers(4, vocab_size, size=int(events.sum()))
        return out, events
    lengths = body.sum(axis=1)
    r_idx, c_idx = np.nonzero(events)
    # uniform position among the row's target tokens, which sit at columns 1..length
    picks = 1 + np.floor(rng.random(len(r_idx)) * lengths[r_idx]).astype(np.int64)
    out[r_idx, c_idx] = x[r_idx, picks]
    return out, events


# ------------------------------------------------------------------------------ decoding


def _log_softmax_np(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def model_decoder(model):
    """The ``(init, step)`` pair that decodes a ``[source, decoder_input] -> logits`` model.

    ``init(source (B, S))`` returns the initial decoding states; ``step(tokens (N,), states)``
    appends ``tokens`` to the prefixes and returns the log-probabilities of the next token,
    ``(log_probs (N, V), new_states)``, as NumPy float64.

    For a :func:`build_seq2seq` model the encoder runs once, in ``init``, and each step runs
    the decoder on the last tokens it can see (its causal convolutions reach back
    ``1 + 2 (kernel_size - 1)`` tokens; attention and feed-forward act per position), so
    a step costs the same at every length. Any other model is run whole on ``[source,
    prefix]`` at every step. Either way the probabilities are those of the teacher-forced
    forward pass with the model's own weights.
    """
    import keras
    from keras import ops

    check_instance(model, "model", keras.Model, "a keras.Model taking [source, decoder_input]")
    if len(model.inputs) != 2:
        raise ValueError(f"model must take two inputs [source, decoder_input], got "
                         f"{len(model.inputs)} inputs.")
    parts = _seq2seq_parts(model)
    window = None
    if parts is not None:
        window = 1 + sum((parts[2][n].kernel_size[0] - 1) * parts[2][n].dilation_rate[0]
                         for n in ("dec_conv1", "dec_conv2"))

    def init(source):
        src = as_array(source, "source").astype("int32")
        if src.ndim != 2:
            raise ValueError(f"source must have shape (B, S), got shape {src.shape}.")
        empty = np.zeros((len(src), 0), np.int32)
        if parts is None:
            return (src, empty)
        enc, mask = parts[0](ops.convert_to_tensor(src))
        return (ops.convert_to_numpy(enc), ops.convert_to_numpy(mask), empty)

    def step(tokens, states):
        prefix = np.concatenate([states[-1], np.asarray(tokens, np.int32)[:, None]], axis=1)
        if parts is not None:
            prefix = prefix[:, -window:]
            logits = parts[1](ops.convert_to_tensor(prefix), ops.convert_to_tensor(states[0]),
                              ops.convert_to_tensor(states[1]))[:, -1]
        else:
            logits = model([states[0], prefix], training=False)[:, -1]
        logp = _log_softmax_np(ops.convert_to_numpy(logits).astype("float64"))
        return logp, (*states[:-1], prefix)

    return init, step


def _check_decode_args(step, states, max_len, bos_id, eos_id):
    check_callable(step, "step")
    if not isinstance(states, (tuple, list)) or not states:
        raise TypeError(f"states must be a non-empty tuple of arrays (first axis: batch), got "
                        f"{describe(states)}.")
    states = tuple(np.asarray(s) for s in states)
    batch = states[0].shape[0] if states[0].ndim else None
    if batch is None or any(s.ndim == 0 or s.shape[0] != batch for s in states):
        raise ValueError(f"states must share their first axis (the batch), got shapes "
                         f"{[s.shape for s in states]}.")
    max_len = check_int(max_len, "max_len")
    bos_id = check_int(bos_id, "bos_id", minimum=0)
    if eos_id is not None:
        eos_id = check_int(eos_id, "eos_id", minimum=0)
    return states, batch, max_len, bos_id, eos_id


def _strip(seq, eos_id):
    seq = list(seq)
    if eos_id is not None and eos_id in seq:
        seq = seq[: seq.index(eos_id)]
    return seq


def greedy_decode(step, states, max_len: int, bos_id: int = BOS, eos_id: int | None = EOS):
    """Greedy decoding: at every step the most probable next token, for a batch at once.

    ``step(tokens (N,), states) -> (log_probs (N, V), states)``; ``states``: a tuple of
    arrays with first axis ``B``. Stops at ``eos_id`` (``None``: never) or after ``max_len``
    tokens. Returns ``(sequences, log_probs)``: ``B`` lists of token ids (without ``EOS``)
    and ``(B,)`` the sum of their log-probabilities, ``EOS`` included.
    """
    states, batch, max_len, bos_id, eos_id = _check_decode_args(step, states, max_len, bos_id,
                                                                eos_id)
    tokens = np.full(batch, bos_id, np.int64)
    done = np.zeros(batch, bool)
    score = np.zeros(batch)
    seqs = np.zeros((batch, 0), np.int64)
    for _ in range(max_len):
        logp, states = step(tokens, states)
        logp = np.asarray(logp, "float64")
        tok = logp.argmax(axis=1)
        score += np.where(done, 0.0, logp[np.arange(batch), tok])
        tok = np.where(done, eos_id if eos_id is not None else 0, tok)
        seqs = np.concatenate([seqs, tok[:, None]], axis=1)
        if eos_id is not None:
            done |= tok == eos_id
        tokens = tok
        if done.all():
            break
    return [_strip(s, eos_id) for s in seqs.tolist()], score


def beam_search(step, states, beam: int, max_len: int, bos_id: int = BOS,
                eos_id: int | None = EOS, return_beams: bool = False):
    """Beam search over a batch: keep the ``beam`` best prefixes of every example.

    At every step each live prefix is extended by every token; of the ``beam × V``
    extensions of an example the ``beam`` with the highest summed log-probability survive
    (a finished prefix, one that emitted ``eos_id``, survives unchanged, competing with its
    score). The search ends when all kept prefixes of every example are finished or after
    ``max_len`` tokens; the answer is the kept prefix with the highest score. The score is the
    plain sum of log-probabilities, without length normalisation, so ``beam = 1`` is greedy
    decoding and a beam of at least ``V ** max_len`` is the exact argmax over all sequences.

    Returns ``(sequences, log_probs)`` as :func:`greedy_decode`; with ``return_beams`` also
    the kept prefixes of every example, ``(B, beam)`` lists, and their ``(B, beam)`` scores.
    """
    states, batch, max_len, bos_id, eos_id = _check_decode_args(step, states, max_len, bos_id,
                                                                eos_id)
    beam = check_int(beam, "beam")
    n = batch * beam
    states = tuple(np.repeat(s, beam, axis=0) for s in states)
    tokens = np.full(n, bos_id, np.int64)
    scores = np.full((batch, beam), -np.inf)
    scores[:, 0] = 0.0
    done = np.zeros((batch, beam), bool)
    seqs = np.zeros((batch, beam, 0), np.int64)
    for _ in range(max_len):
        logp, new_states = step(tokens, states)
        logp = np.asarray(logp, "float64")
        vocab = logp.shape[1]
        logp = logp.reshape(batch, beam, vocab)
        if eos_id is not None and done.any():
            frozen = np.full(vocab, -np.inf)
            frozen[eos_id] = 0.0
            logp = np.where(done[..., None], frozen, logp)
        cand = (scores[..., None] + logp).reshape(batch, beam * vocab)
        k = min(beam, beam * vocab)
        top = np.argpartition(-cand, k - 1, axis=1)[:, :k] if k < beam * vocab else \
            np.tile(np.arange(beam * vocab), (batch, 1))
        # order the survivors by score (ties: lower index first, so results are reproducible)
        top_scores = np.take_along_axis(cand, top, axis=1)
        order = np.lexsort((top, -top_scores), axis=1)
        top = np.take_along_axis(top, order, axis=1)[:, :beam]
        src, tok = top // vocab, top % vocab
        scores = np.take_along_axis(cand, top, axis=1)
        seqs = np.concatenate([np.take_along_axis(seqs, src[..., None], axis=1),
                               tok[..., None]], axis=2)
        done = np.take_along_axis(done, src, axis=1)
        if eos_id is not None:
            done |= tok == eos_id
        flat = (np.arange(batch)[:, None] * beam + src).ravel()
        states = tuple(np.asarray(s)[flat] for s in new_states)
        tokens = tok.ravel()
        if done[np.isfinite(scores)].all():
            break
    best = scores.argmax(axis=1)
    out = [_strip(seqs[b, best[b]], eos_id) for b in range(batch)]
    best_scores = scores[np.arange(batch), best]
    if return_beams:
        beams = [[_strip(seqs[b, j], eos_id) for j in range(beam)] for b in range(batch)]
        return out, best_scores, beams, scores
    return out, best_scores


def generate(model, source, beam: int = 1, max_len: int = 32, batch_size: int = 256):
    """Decode a :func:`build_seq2seq` model on ``source`` ``(B, S)`` ids, in batches.

    ``beam = 1`` is :func:`greedy_decode`, larger beams :func:`beam_search`. Returns
    ``(sequences, log_probs)``: ``B`` lists of ids (without ``EOS``) and ``(B,)`` their
    log-probabilities under the model, ``EOS`` included.
    """
    beam = check_int(beam, "beam")
    max_len = check_int(max_len, "max_len")
    batch_size = check_int(batch_size, "batch_size")
    init, step = model_decoder(model)
    src = as_array(source, "source")
    if src.ndim != 2:
        raise ValueError(f"source must have shape (B, S), got shape {src.shape}.")
    seqs, scores = [], []
    for lo in range(0, len(src), batch_size):
        states = init(src[lo: lo + batch_size])
        if beam == 1:
            s, sc = greedy_decode(step, states, max_len)
        else:
            s, sc = beam_search(step, states, beam, max_len)
        seqs += s
        scores.append(sc)
    return seqs, np.concatenate(scores) if scores else np.zeros(0)


def sequence_log_prob(model, source, decoder_input, labels):
    """``log p(labels | source)`` under teacher forcing: ``(N,)``, the sum over the labelled
    (non-zero) positions of the log-probabilities of the model's one forward pass."""
    import keras
    from keras import ops

    check_instance(model, "model", keras.Model, "a keras.Model")
    lab = as_array(labels, "labels").astype("int32")
    dec = as_array(decoder_input, "decoder_input").astype("int32")
    if lab.shape != dec.shape or lab.ndim != 2:
        raise ValueError(f"labels must have the shape of decoder_input (N, T), got shapes "
                         f"{lab.shape} and {dec.shape}.")
    logits = ops.convert_to_numpy(model([as_array(source, "source").astype("int32"), dec],
                                        training=False)).astype("float64")
    logp = _log_softmax_np(logits)
    picked = np.take_along_axis(logp, lab[..., None], axis=-1)[..., 0]
    return (picked * (lab != 0)).sum(axis=1)


# ------------------------------------------------------------------------------ the toy


def toy_beam_example():
    """The two-step toy in which beam search of width 2 finds a worse sequence than greedy.

    Tokens ``a, b, c, d`` (ids 0-3; the begin token is 4). First step: ``p(a) = 0.6``,
    ``p(c) = 0.4``; second step: ``p(b|a) = 0.55``, ``p(d|a) = 0.45``, ``p(b|c) = 0.1``,
    ``p(d|c) = 0.9``. The target is ``(a, b)``: every step of it is the most probable choice
    given the gold prefix, yet ``(c, d)`` has the highest probability of all four paths.

    Returns a dict: ``first`` and ``second`` (the tables), ``paths`` (each two-letter path to
    its probability, computed by multiplying the tables), ``step`` (the step function over the
    tables, state = the last token) and ``tokens`` (``"abcd"``).
    """
    tokens = "abcd"
    first = {"a": 0.6, "c": 0.4}
    second = {"a": {"b": 0.55, "d": 0.45}, "c": {"b": 0.1, "d": 0.9}}
    paths = {x + y: first[x] * second[x][y] for x in first for y in second[x]}
    table = np.full((5, 4), -np.inf)  # row: previous token (4 = begin), column: next token
    for x, p in first.items():
        table[4, tokens.index(x)] = np.log(p)
    for x, row in second.items():
        for y, p in row.items():
            table[tokens.index(x), tokens.index(y)] = np.log(p)

    def step(prev, states):
        prev = np.asarray(prev, np.int64)
        return table[prev], states

    return {"first": first, "second": second, "paths": paths, "step": step,
            "tokens": tokens}
