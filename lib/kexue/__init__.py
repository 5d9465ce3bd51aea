"""kexue: the tested library behind *Executable Scientific Spaces*.

An executable companion to Su Jianlin's blog *Scientific Spaces* (kexue.fm). The modules
are organised by domain, the way Keras itself is:

- :mod:`kexue.runtime`: the scale knob, seeds, versions;
- :mod:`kexue.data`: the dataset registry and loaders;
- :mod:`kexue.stats`: distributions (angles between random vectors);
- :mod:`kexue.training`: training mechanics (gradient accumulation).
"""

__version__ = "0.1.0"
