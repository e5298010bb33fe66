"""tfdgm: deep generative models on TensorFlow, TensorFlow Probability and Keras 3."""

__version__ = "0.1.0"

from tfdgm import (
    bijectors,
    callbacks,
    data,
    denoisers,
    divergences,
    estimators,
    heads,
    metrics,
    nets,
    partition,
    plotting,
    registry,
)
from tfdgm.base import GenerativeModel, NoDensityError
from tfdgm.export import export
from tfdgm.models.autoregressive import MADE, MarkovAutoregressive, RNNAutoregressive
from tfdgm.models.bayesian_network import BayesianNetwork
from tfdgm.models.boltzmann import BoltzmannMachine
from tfdgm.models.dbm import DBM
from tfdgm.models.dbn import DBN
from tfdgm.models.diffusion import DDPM
from tfdgm.models.flows import MAF, RealNVP
from tfdgm.models.gan import FGAN, GAN, WGANGP
from tfdgm.models.helmholtz import HelmholtzMachine
from tfdgm.models.histogram import FactorizedCategorical, Histogram
from tfdgm.models.mixtures import BernoulliMixture, GaussianMixture
from tfdgm.models.mmd import MMDNetwork
from tfdgm.models.multimodal import MultimodalVAE
from tfdgm.models.rbm import RBM
from tfdgm.models.vae import VAE
from tfdgm.models.variational_mixture import BayesianGaussianMixture

__all__ = [
    "DBM",
    "DBN",
    "DDPM",
    "FGAN",
    "GAN",
    "MADE",
    "MAF",
    "RBM",
    "VAE",
    "WGANGP",
    "BayesianGaussianMixture",
    "BayesianNetwork",
    "BernoulliMixture",
    "BoltzmannMachine",
    "FactorizedCategorical",
    "GaussianMixture",
    "GenerativeModel",
    "HelmholtzMachine",
    "Histogram",
    "MMDNetwork",
    "MarkovAutoregressive",
    "MultimodalVAE",
    "NoDensityError",
    "RNNAutoregressive",
    "RealNVP",
    "bijectors",
    "callbacks",
    "data",
    "denoisers",
    "divergences",
    "estimators",
    "export",
    "heads",
    "metrics",
    "nets",
    "partition",
    "plotting",
    "registry",
]
