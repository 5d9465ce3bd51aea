"""Keras 3 layers and the masked operations they use.

Submodules: :mod:`kexue.layers.masking` (masked pooling, softmax, valid-prefix reversal,
bidirectional RNN on padded sequences), :mod:`kexue.layers.core` (layers made of other
layers or of other layers' weights), :mod:`kexue.layers.reuse` (sub-models, cuts and
rebuilt graphs of functional models), and the sequence-tagging heads with one interface:
:mod:`kexue.layers.crf` (``SoftmaxTagger``, ``CRF``, Viterbi) and :mod:`kexue.layers.memm`
(``MEMM``, Bi-MEMM), :mod:`kexue.layers.recurrent` (recurrent cells for
``keras.layers.RNN``), and :mod:`kexue.layers.attention` (multi-head and Synthesizer
attention, position embeddings, the Transformer block). The layers and the most used
functions are re-exported here.
"""

from kexue.layers.attention import (
    MultiHeadSelfAttention,
    PositionEmbedding,
    SinusoidalPositionEmbedding,
    SynthesizerAttention,
    TransformerBlock,
    attention_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
    sinusoidal_shift_matrix,
)
from kexue.layers.core import ClassCenters, TiedDense, TwoDense
from kexue.layers.crf import CRF, SoftmaxTagger, TaggingLoss, viterbi_decode
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
from kexue.layers.memm import MEMM, memm_viterbi
from kexue.layers.recurrent import OutputGatedGRUCell
from kexue.layers.reuse import (
    clone_with_weights,
    features_of,
    insert_after,
    replace_layer,
    split_at,
)

__all__ = [
    "CRF",
    "ClassCenters",
    "MEMM",
    "MaskedBiRNN",
    "MaskedGlobalAveragePooling1D",
    "MaskedGlobalMaxPooling1D",
    "MaskedSoftmax",
    "OutputGatedGRUCell",
    "TiedDense",
    "TwoDense",
    "clone_with_weights",
    "features_of",
    "insert_after",
    "masked_max",
    "masked_mean",
    "masked_softmax",
    "padding_mask",
    "memm_viterbi",
    "replace_layer",
    "reverse_valid",
    "SoftmaxTagger",
    "TaggingLoss",
    "split_at",
    "very_negative",
    "viterbi_decode",
    # attention and the Transformer block
    "MultiHeadSelfAttention",
    "PositionEmbedding",
    "SinusoidalPositionEmbedding",
    "SynthesizerAttention",
    "TransformerBlock",
    "attention_mask",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
    "sinusoidal_shift_matrix",
]
