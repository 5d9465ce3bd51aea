"""Generative models and the one way this book scores their samples.

Submodules:

- :mod:`kexue.generative.evaluation`: scoring samples, shared by every generative chapter: a small
  image classifier trained with a fixed seed, the KL divergence of its predicted-class histogram
  to the uniform (mode coverage), the mean maximum probability (sharpness), the Fréchet distance
  between real and generated samples in the classifier's penultimate features ("FD-MLP"), and
  the ring of Gaussians with its 2-D mode coverage;
- :mod:`kexue.generative.divergences`: f-divergences, their convex conjugates, the variational
  lower bound and the f-GAN losses;
- :mod:`kexue.generative.gan`: GAN training as a Keras model, by alternating updates or by one
  loss with stop gradients, and the generators and discriminators of the chapters;
- :mod:`kexue.generative.denoising`: optimal denoisers, scores of smoothed densities, and
  (annealed) Langevin sampling;
- :mod:`kexue.generative.quantization`: vector quantisation with a learned codebook, the
  straight-through estimator and the VQ-VAE;
- :mod:`kexue.generative.autoregressive`: causal models of a grid of discrete codes, used as the
  prior from which a VQ-VAE samples;
- :mod:`kexue.generative.vae`: variational autoencoders, Gaussian KL divergences, the residual
  normal posterior and hierarchies of latent groups.

Every public name of the submodules is re-exported here.
"""

from kexue.generative import (
    autoregressive,
    denoising,
    divergences,
    evaluation,
    gan,
    quantization,
    vae,
)
from kexue.generative.autoregressive import *  # noqa: F403
from kexue.generative.denoising import *  # noqa: F403
from kexue.generative.divergences import *  # noqa: F403
from kexue.generative.evaluation import *  # noqa: F403
from kexue.generative.gan import *  # noqa: F403
from kexue.generative.quantization import *  # noqa: F403
from kexue.generative.vae import *  # noqa: F403

__all__ = sorted(set(evaluation.__all__) | set(divergences.__all__) | set(gan.__all__)
                 | set(denoising.__all__) | set(quantization.__all__)
                 | set(autoregressive.__all__) | set(vae.__all__))
