"""Whole networks that several chapters share.

- :mod:`kexue.models.bert`: the book's small BERT (a configuration, the embedding, the list of
  Transformer blocks and the tied masked-language-model head, kept apart so that they can be
  recombined), its character vocabulary from the CLUE training texts, MLM masking and
  pre-training, fine-tuning for classification, and the committed, hash-checked checkpoint;
- :mod:`kexue.models.baselines`: the taggers without self-attention (one character, or a
  window) that every Transformer tagging result is shown beside, and a bag-of-characters
  classifier.
- :mod:`kexue.models.compression`: a fine-tuned BERT compressed into fewer layers by module
  replacement (BERT-of-Theseus), and a model cut to its first layers.
- :mod:`kexue.models.encoders`: small Transformer encoder classifiers with any Synthesizer
  attention, and a synthetic key–value retrieval task.
- :mod:`kexue.models.enlarge`: a BERT made ``k`` times wider that computes the same function
  (every weight repeated and rescaled).

Used in: the chapters of book/transformers/.
"""

import importlib

_SUBMODULES = ("baselines", "bert", "compression", "encoders", "enlarge")


def __getattr__(name):  # imported on first use, so that `python -m kexue.models.bert` runs clean
    if name in _SUBMODULES:
        return importlib.import_module(f"kexue.models.{name}")
    raise AttributeError(f"module 'kexue.models' has no attribute {name!r}")

# ALBERT and ELECTRA: cost by formula (kexue.models.cost: parameters, multiply-adds, training
# memory) and replaced-token-detection pre-training (kexue.models.electra)
_SUBMODULES += ("cost", "electra")
