"""kexue: the tested library behind *Executable Scientific Spaces*.

An executable companion to Su Jianlin's blog *Scientific Spaces* (kexue.fm). The modules
are organised by domain, the way Keras itself is:

- :mod:`kexue.runtime`: the scale knob, seeds, versions;
- :mod:`kexue.data`: the dataset registry and loaders;
- :mod:`kexue.stats`: distributions (angles between random vectors);
- :mod:`kexue.training`: training mechanics (gradient accumulation, recomputation,
  adversarial training in embedding space);
- :mod:`kexue.activations`: x·min(1, eˣ) as a Keras activation, derivatives, saturation;
- :mod:`kexue.optimizers`: AdaFactor and the rank-1 I-divergence factorisation;
- :mod:`kexue.layers`: masked pooling/softmax/BiRNN, nested and tied layers, class centres,
  sub-models and rebuilt graphs, and the sequence-tagging heads (softmax, CRF, MEMM, Bi-MEMM);
- :mod:`kexue.text`: word segmentation as s/b/m/e tagging and its word-level scorer;
- :mod:`kexue.embeddings`: word vectors fitted to PMI (the simpler GloVe): co-occurrence counts,
  training, and queries (norms, related/similar words, analogies, keywords, sentence vectors);
- :mod:`kexue.losses`: the smoothed cross-entropy, the identity loss, and the multi-label
  softmax cross-entropy (with its pairwise and combinatorial forms);
- :mod:`kexue.metrics`: scores of predictions (multi-label F1, keyword F1, ROUGE-L, BLEU);
- :mod:`kexue.seq2seq`: a small encoder–decoder, teacher forcing, random replacement, greedy
  and beam decoding;
- :mod:`kexue.transport`: earth mover's distance as a linear program, WMD/WCD, WRD and its
  lower bound, nearest neighbours pruned by lower bounds;
- :mod:`kexue.attribution`: which inputs a recurrent classifier's decision rests on (the
  distance-to-final-state score, gradient × input, occlusion, rank agreement, randomised copies);
- :mod:`kexue.capsules`: squash, dynamic routing, the capsule layer, the margin loss, soft K-Means;
- :mod:`kexue.mechanics`: ropes in a rotating frame (the skipping rope) and the RopeChain model;
- :mod:`kexue.geometry`: ellipses by arc length, two sheets glued, and the IsometricRim model;
- :mod:`kexue.generative`: GANs (f-divergences, one-loss training), denoisers and Langevin
  sampling, vector-quantised and hierarchical VAEs, and the shared scores of generated samples;
- :mod:`kexue.regularizers`: weight penalties: the spectral norm of a kernel by power iteration
  and the spectral penalty (a Keras regularizer);
- :mod:`kexue.models`: whole networks several chapters share: the small BERT (configuration,
  embedding, blocks, tied MLM head, masking, pre-training, the committed checkpoint) and the
  bag-of-characters baseline.

Every submodule is reachable as an attribute after ``import kexue`` alone (``kexue.layers``),
imported on first use. ``import kexue`` itself imports neither Keras nor TensorFlow, yet a model
saved with kexue's layers, losses or optimizers loads with ``keras.saving.load_model`` after
``import kexue``: the modules that register Keras-serializable objects
(:data:`SERIALIZABLE_MODULES`) are imported as soon as Keras is (at once if it already is).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import pkgutil
import sys
import warnings

__version__ = "0.1.0"

SUBMODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                          if not m.name.startswith("_")))
"""The public submodules, each imported on first access as ``kexue.<name>``."""

SERIALIZABLE_MODULES = ("kexue.activations", "kexue.capsules", "kexue.geometry", "kexue.layers",
                        "kexue.losses", "kexue.mechanics", "kexue.optimizers", "kexue.training",
                        "kexue.seq2seq", "kexue.generative", "kexue.models.bert",
                        "kexue.regularizers", "kexue.models.encoders",
                        "kexue.models.compression", "kexue.models.electra")
"""The modules whose import registers objects with ``keras.saving.register_keras_serializable``."""


def __getattr__(name):
    if name in SUBMODULES:
        return importlib.import_module(f"kexue.{name}")
    raise AttributeError(f"module 'kexue' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(SUBMODULES))


def register_serializables():
    """Import every module of :data:`SERIALIZABLE_MODULES` (imports Keras)."""
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)


def _register_after_keras():
    try:
        register_serializables()
    except Exception as error:  # never break `import keras` because of kexue
        warnings.warn(f"kexue could not register its Keras objects: {error!r}", stacklevel=2)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds nothing itself; when ``keras`` is first imported, registers kexue's objects
    right after Keras's own ``__init__`` has run."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        _uninstall_hook()
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    """Keras's own loader, followed by :func:`register_serializables`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register_after_keras()

    def __getattr__(self, name):
        return getattr(self._loader, name)


def _uninstall_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterKeras)]


if "keras" in sys.modules:
    _register_after_keras()
elif not any(isinstance(f, _RegisterAfterKeras) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())
