"""kexue: the tested library behind *Executable Scientific Spaces*.

An executable companion to Su Jianlin's blog *Scientific Spaces* (kexue.fm). The modules
are organised by domain, the way Keras itself is:

- :mod:`kexue.runtime`: the scale knob, seeds, versions;
- :mod:`kexue.data`: the dataset registry and loaders;
- :mod:`kexue.stats`: distributions (angles between random vectors);
- :mod:`kexue.training`: training mechanics (gradient accumulation, recomputation);
- :mod:`kexue.optimizers`: AdaFactor and the rank-1 I-divergence factorisation;
- :mod:`kexue.layers`: masked pooling/softmax/BiRNN, nested and tied layers, class centres,
  sub-models and rebuilt graphs, and the sequence-tagging heads (softmax, CRF, MEMM, Bi-MEMM);
- :mod:`kexue.text`: word segmentation as s/b/m/e tagging and its SIGHAN-style scorer;
- :mod:`kexue.losses`: the smoothed cross-entropy and the identity loss;
- :mod:`kexue.capsules`: squash, dynamic routing, the capsule layer, the margin loss, soft K-Means.
"""

__version__ = "0.1.0"
