"""Baselines that a Transformer must beat to have shown anything.

- :func:`bag_of_characters`: the mean of the character embeddings of a text (padding left out)
  and one dense layer to class logits. It sees which characters occur and how often, nothing
  of their order; where it matches a Transformer, the task does not need word order or context.
- :func:`character_tagger`: its counterpart for tagging, one character at a time
  (``window=1``) or within a small window (a convolution).

Used in: book/transformers/attention.md and the later chapters of book/transformers/.
"""

from __future__ import annotations

import keras

from kexue._checks import check_int
from kexue.layers.masking import MaskedGlobalAveragePooling1D


def bag_of_characters(vocab_size, num_classes, dim=64, name="bag_of_characters"):
    """A classifier on averaged character embeddings: ``softmax(W mean_t E[x_t] + b)``.

    Input ``token_ids`` ``(B, T)`` integers with 0 as padding (the ids of
    :func:`kexue.models.bert.classification_inputs`; a sentence pair is one bag of both
    sentences' characters); output logits ``(B, num_classes)``. Parameters:
    ``vocab_size * dim + (dim + 1) * num_classes``.

    Used in: no chapter at present (the Transformer chapters fine-tune on tagging since
    their classification tasks showed no gain from pre-training); kept, tested, for classification.
    """
    vocab_size = check_int(vocab_size, "vocab_size", minimum=2)
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    dim = check_int(dim, "dim")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    h = keras.layers.Embedding(vocab_size, dim, mask_zero=True, name="char_embedding")(ids)
    h = MaskedGlobalAveragePooling1D(name="mean")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(ids, logits, name=name)


def character_tagger(vocab_size, num_tags, dim=64, window=1, name=None):
    """A tagger that sees each character and at most its ``window`` nearest neighbours:
    ``window=1`` is the context-free tagger (the bag of characters' counterpart for tagging:
    one embedding and one dense layer per character), ``window=k`` (odd) adds one ReLU
    convolution of width ``k`` over the embeddings (a local window, no further context).

    Input ``token_ids`` ``(B, T)`` (0: padding); output logits ``(B, T, num_tags)``.

    Used in: book/transformers/attention.md
    """
    vocab_size = check_int(vocab_size, "vocab_size", minimum=2)
    num_tags = check_int(num_tags, "num_tags", minimum=2)
    dim = check_int(dim, "dim")
    window = check_int(window, "window")
    if window % 2 == 0:
        raise ValueError(f"window must be odd (the character and as many neighbours on each "
                         f"side), got {window}.")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    h = keras.layers.Embedding(vocab_size, dim, name="char_embedding")(ids)
    if window > 1:
        h = keras.layers.Conv1D(dim, window, padding="same", activation="relu",
                                name="window")(h)
    logits = keras.layers.Dense(num_tags, name="logits")(h)
    return keras.Model(ids, logits, name=name or f"character_tagger_{window}")
