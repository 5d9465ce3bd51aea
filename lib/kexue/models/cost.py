"""What a BERT-family network costs, by formula from its :class:`~kexue.models.bert.BertConfig`:
parameters, multiply-adds per token, and the memory of one training step.

- :func:`parameter_count`: every weight of :class:`~kexue.models.bert.BertModel` counted by
  formula (token embedding ``V E``, projection ``E H + H`` when the embedding is factorised,
  segment and position embeddings, one block or ``layers`` blocks, LayerNorms, the tied MLM
  head); it equals ``BertModel(config).count_params()`` exactly;
- :func:`block_parameters`: one Transformer block, ``4H^2 + 4H + 2HF + F + H + 4H``;
- :func:`multiply_adds_per_token`: the multiply-adds one token costs in a forward pass at
  sequence length ``n`` (one FLOP count is twice that); sharing blocks changes nothing here;
- :func:`training_memory`: parameters, gradients and Adam's two moments (``4P`` floats) beside
  the activations a backward pass keeps (``L B n (8H + 2F) + 2 L B h n^2`` floats and the
  embeddings);
- :func:`pretraining_multiply_adds`: one token's forward multiply-adds in a pre-training step,
  masked language model or ELECTRA (generator, discriminator and detection head), the unit of
  "equal compute".

Used in: book/transformers/albert-electra.md, book/transformers/albert-unshared.md
"""

from __future__ import annotations

from kexue._checks import check_choice, check_int, check_real

__all__ = ["block_parameters", "parameter_count", "multiply_adds_per_token",
           "pretraining_multiply_adds", "training_memory"]


def _config(config):
    from kexue.models.bert import BertConfig

    return BertConfig.from_dict(config)


def block_parameters(config) -> int:
    """Weights of one post-LN or pre-LN Transformer block of width ``H`` and inner size ``F``:
    ``4H^2 + 4H`` (query, key, value, output projections with biases), ``2HF + F + H`` (the
    feed-forward network) and ``4H`` (two LayerNorms, scale and shift).

    ``config``: a :class:`~kexue.models.bert.BertConfig` or a dict of its fields.

    Used in: book/transformers/albert-electra.md, book/transformers/albert-unshared.md
    """
    c = _config(config)
    h, f = c.width, c.ffn_dim
    return 4 * h * h + 4 * h + 2 * h * f + f + h + 4 * h


def parameter_count(config, parts=False):
    """The number of weights of ``BertModel(config)`` (its MLM head included), by formula.

    With ``V`` the vocabulary, ``E`` the token embedding's width, ``H`` the width, ``L`` the
    layers, ``n_max`` the positions and ``S`` the segment types:

    - embedding: ``V E`` (+ ``E H + H`` projection when ``E != H``) + ``S H + n_max H + 2H``;
    - blocks: ``L`` times :func:`block_parameters`, or once when ``shared_blocks``
      (+ ``2H`` for the final LayerNorm of a pre-LN network);
    - MLM head: ``H E + E`` (transform) + ``2E`` (LayerNorm) + ``V`` (output bias; the output
      matrix is the token embedding itself).

    Returns the total, or with ``parts=True`` a dict ``{"embedding", "blocks", "head",
    "total"}``.

    Used in: book/transformers/albert-electra.md, book/transformers/albert-unshared.md
    """
    c = _config(config)
    if not isinstance(parts, bool):
        raise TypeError(f"parts must be True or False, got {parts!r}.")
    v, e, h = c.vocab_size, c.token_dim, c.width
    embedding = v * e + (e * h + h if e != h else 0) + c.type_vocab_size * h
    embedding += c.max_positions * h + 2 * h
    blocks = (1 if c.shared_blocks else c.layers) * block_parameters(c)
    blocks += 2 * h if c.pre_ln else 0
    head = h * e + e + 2 * e + v
    total = embedding + blocks + head
    if parts:
        return {"embedding": embedding, "blocks": blocks, "head": head, "total": total}
    return total


def multiply_adds_per_token(config, seq_len, mlm_fraction=0.0):
    """Multiply-adds of one token's forward pass through ``BertModel(config)`` at sequence
    length ``n = seq_len`` (a FLOP count is twice this):

    ``L (4H^2 + 2HF + 2nH)`` for the blocks (the four projections, the feed-forward network,
    then ``nH`` for the scores ``QK^T`` and ``nH`` for the weighted values), ``+ E H`` for the
    projection of a factorised embedding, ``+ mlm_fraction (H E + E V)`` for the MLM head when
    it runs on that fraction of the tokens (0: the encoder alone, as in fine-tuning and
    inference; BERT's pre-training: 0.15). Biases, LayerNorms, softmax and activations are
    left out (they are ``O(H)`` or ``O(n)`` per token). Sharing the blocks (ALBERT) changes
    no term: each of the ``L`` layers is still computed.

    Used in: book/transformers/albert-electra.md, book/transformers/albert-unshared.md
    """
    c = _config(config)
    n = check_int(seq_len, "seq_len")
    mlm_fraction = check_real(mlm_fraction, "mlm_fraction", 0.0, 1.0)
    h, e = c.width, c.token_dim
    total = c.layers * (4 * h * h + 2 * h * c.ffn_dim + 2 * n * h)
    total += e * h if e != h else 0
    return int(round(total + mlm_fraction * (h * e + e * c.vocab_size)))


def training_memory(config, batch_size, seq_len, bytes_per_float=4):
    """Memory of one Adam training step of ``BertModel(config)`` on ``batch_size`` sequences
    of ``seq_len`` tokens, in bytes, split into what scales with the parameters and what
    scales with the batch (an estimate: the backend's workspace and temporaries are left out).

    - ``parameters``, ``gradients``: ``P`` floats each (:func:`parameter_count`);
    - ``optimizer``: Adam's two moments, ``2P`` floats;
    - ``activations``: what the backward pass keeps, per layer ``B n (8H + 2F)`` floats (the
      block's input, ``Q``, ``K``, ``V``, the attention output, its projection, the first
      LayerNorm's output, the second residual sum; the feed-forward pre-activation and
      activation) plus ``2 B h n^2`` (attention logits and weights), for every one of the ``L``
      layers whether or not they share weights, plus ``3 B n H`` for the embeddings.

    Returns a dict of those four, ``"weights_and_optimizer"`` (``4P`` floats), and
    ``"total"``, all in bytes.

    Used in: book/transformers/albert-electra.md, book/transformers/albert-unshared.md
    """
    c = _config(config)
    b = check_int(batch_size, "batch_size")
    n = check_int(seq_len, "seq_len")
    size = check_int(bytes_per_float, "bytes_per_float")
    p = parameter_count(c)
    h, f = c.width, c.ffn_dim
    activations = c.layers * (b * n * (8 * h + 2 * f) + 2 * b * c.heads * n * n) + 3 * b * n * h
    out = {"parameters": p * size, "gradients": p * size, "optimizer": 2 * p * size,
           "activations": activations * size}
    out["weights_and_optimizer"] = 4 * p * size
    out["total"] = out["weights_and_optimizer"] + out["activations"]
    return out


def pretraining_multiply_adds(config, seq_len, objective="mlm", generator_fraction=0.25,
                              mask_rate=0.15):
    """Multiply-adds of one token's forward pass in a pre-training step of the network
    ``config`` at sequence length ``seq_len``: for ``objective="mlm"`` the encoder and the MLM
    head on the ``mask_rate`` fraction of the tokens (:func:`multiply_adds_per_token`); for
    ``"electra"`` the generator of :func:`kexue.models.electra.generator_config` ``(config,
    generator_fraction)`` with its MLM head on the masked fraction, plus the discriminator's
    encoder on every token, plus its detection head ``H^2 + H`` per token. The backward pass
    costs about twice the forward one in both, so the ratio of two of these is the ratio of
    the steps' compute: "equal compute" gives each objective ``steps`` inversely proportional
    to it.

    Used in: book/transformers/albert-electra.md
    """
    c = _config(config)
    objective = check_choice(objective, "objective", ("mlm", "electra"))
    mask_rate = check_real(mask_rate, "mask_rate", 0.0, 1.0)
    if objective == "mlm":
        return multiply_adds_per_token(c, seq_len, mask_rate)
    from kexue.models.electra import generator_config

    generator = generator_config(c, generator_fraction)
    return (multiply_adds_per_token(generator, seq_len, mask_rate)
            + multiply_adds_per_token(c, seq_len) + c.width * c.width + c.width)
