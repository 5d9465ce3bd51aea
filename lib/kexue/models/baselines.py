"""Baselines that a Transformer must beat to have shown anything.

- :func:`bag_of_characters`: the mean of the character embeddings of a text (padding left out)
  and one dense layer to class logits. It sees which characters occur and how often, nothing
  of their order; where it matches a Transformer, the task does not need word order or context.

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

    Used in: book/transformers/attention.md
    """
    vocab_size = check_int(vocab_size, "vocab_size", minimum=2)
    num_classes = check_int(num_classes, "num_classes", minimum=2)
    dim = check_int(dim, "dim")
    ids = keras.Input((None,), dtype="int32", name="token_ids")
    h = keras.layers.Embedding(vocab_size, dim, mask_zero=True, name="char_embedding")(ids)
    h = MaskedGlobalAveragePooling1D(name="mean")(h)
    logits = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(ids, logits, name=name)
