"""tfdgm: deep generative models on TensorFlow, TensorFlow Probability and Keras 3."""

__version__ = "0.1.0"

from tfdgm import data, heads, nets, registry
from tfdgm.base import GenerativeModel, NoDensityError
from tfdgm.export import export
from tfdgm.models import VAE

__all__ = [
    "GenerativeModel",
    "NoDensityError",
    "VAE",
    "data",
    "export",
    "heads",
    "nets",
    "registry",
]
