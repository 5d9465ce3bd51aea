"""Keras 3 layers and the masked operations they use.

Submodules: :mod:`kexue.layers.masking` (masked pooling, softmax, valid-prefix reversal,
bidirectional RNN on padded sequences), :mod:`kexue.layers.core` (layers made of other
layers or of other layers' weights) and :mod:`kexue.layers.reuse` (sub-models, cuts and
rebuilt graphs of functional models). Everything is re-exported here.
"""

from kexue.layers.core import ClassCenters, TiedDense, TwoDense
from kexue.layers.masking import (
    MaskedBiRNN,
    MaskedGlobalAveragePooling1D,
    MaskedGlobalMaxPooling1D,
    MaskedSoftmax,
    masked_max,
    masked_mean,
    masked_softmax,
    padding_mask,
    reverse_valid,
    very_negative,
)
from kexue.layers.reuse import (
    clone_with_weights,
    features_of,
    insert_after,
    replace_layer,
    split_at,
)

__all__ = [
    "ClassCenters",
    "MaskedBiRNN",
    "MaskedGlobalAveragePooling1D",
    "MaskedGlobalMaxPooling1D",
    "MaskedSoftmax",
    "TiedDense",
    "TwoDense",
    "clone_with_weights",
    "features_of",
    "insert_after",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "padding_mask",
    "replace_layer",
    "reverse_valid",
    "split_at",
    "very_negative",
]
