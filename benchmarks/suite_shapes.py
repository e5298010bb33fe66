"""The networks and data every benchmark shares (NumPy only: the peers' processes import
this and never TensorFlow)."""

from __future__ import annotations

import numpy as np

#: VAE layers (in, out): 784-512-256-(2x32) encoder, 32-256-512-784 decoder.
VAE_SIZES = [(784, 512), (512, 256), (256, 64), (32, 256), (256, 512), (512, 784)]
#: A VAE step runs 17 GEMMs: six layers forward, six weight gradients and five input
#: gradients (the data needs none): 2 (3 M - 784 x 512) flops per example, M the
#: multiply-adds of one forward pass.
VAE_FLOP_PER_EXAMPLE = 2 * (3 * sum(a * b for a, b in VAE_SIZES) - 784 * 512)
#: RBM visible and hidden units, SGD learning rate.
RBM_SHAPE = (784, 256, 0.1)
#: A PCD-1 step: five GEMMs of 2 V H flops per example (data v'W; the chains' v'W, h W'
#: and v'W; one weight gradient over data and chains).
RBM_FLOP_PER_EXAMPLE = 10 * 784 * 256


def make_vae_data(n: int) -> np.ndarray:
    """Binary 784-pixel images with structure (thresholded smooth random fields)."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, 16)) @ rng.standard_normal((16, 784))
    return (base > 0).astype(np.float32)


def make_rbm_data(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((n, 16)) @ rng.standard_normal((16, 784))
    return (base > 0.5).astype(np.float32)


def make_moons(n: int, noise: float = 0.05) -> np.ndarray:
    """Two interleaved half circles in 2-D with Gaussian noise, float32 ``[n, 2]``."""
    rng = np.random.default_rng(2)
    angle = rng.uniform(0, np.pi, n)
    upper = rng.random(n) < 0.5
    x = np.where(upper, np.cos(angle), 1 - np.cos(angle))
    y = np.where(upper, np.sin(angle), 0.5 - np.sin(angle))
    points = np.stack([x, y], 1) + noise * rng.standard_normal((n, 2))
    return points.astype(np.float32)
