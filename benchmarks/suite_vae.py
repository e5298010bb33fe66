"""VAE: tfdgm ``fit`` against a hand-written TensorFlow loop of the same network.

The network: 784-512-256-(2x32) MLP encoder, 32-256-512-784 decoder, Bernoulli
likelihood, Adam at 1e-3, synthetic binary images (nothing downloaded). A training step
runs 17 GEMMs, 5.73 MFLOP per example (see suite_shapes).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from benchmarks import _timing
from benchmarks.suite_shapes import VAE_FLOP_PER_EXAMPLE, VAE_SIZES, make_vae_data
from tfdgm import VAE
from tfdgm.data import without_autotune

D, H1, H2, L = 784, 512, 256, 32
SIZES, FLOP_PER_EXAMPLE, make_data = VAE_SIZES, VAE_FLOP_PER_EXAMPLE, make_vae_data


def stream(x: np.ndarray, batch: int) -> tf.data.Dataset:
    return without_autotune(tf.data.Dataset.from_tensor_slices(x).repeat().batch(batch).prefetch(2))


def hand_loop(x: np.ndarray, batch: int, jit: bool = False, k: int = 1):
    """The minimal loop: variables, matmuls, the ELBO by formula, Keras' Adam, one
    ``tf.function`` per step over the same pipeline (``k`` > 1: ``k`` steps per call, the
    batches fetched inside the graph, as ``fit`` does with ``steps_per_execution``)."""
    init = keras.initializers.GlorotUniform(seed=0)
    kernels = [tf.Variable(init(s)) for s in SIZES]
    biases = [tf.Variable(tf.zeros(s[1])) for s in SIZES]
    weights = kernels + biases
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(weights)

    def mlp(h, ks, bs):
        for i, (k, b) in enumerate(zip(ks, bs)):
            h = tf.matmul(h, k) + b
            h = tf.nn.relu(h) if i < len(ks) - 1 else h
        return h

    def update(xb, seed):
        with tf.GradientTape() as tape:
            mu, raw = tf.split(mlp(xb, kernels[:3], biases[:3]), 2, axis=-1)
            sigma = tf.nn.softplus(raw) + 1e-3
            z = mu + sigma * tf.random.stateless_normal(tf.shape(mu), seed)
            logits = mlp(z, kernels[3:], biases[3:])
            rec = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(xb, logits), -1)
            kl = 0.5 * tf.reduce_sum(mu**2 + sigma**2 - 1.0 - 2.0 * tf.math.log(sigma), -1)
            loss = -tf.reduce_mean(rec - kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    iterator = iter(stream(x, batch))
    counter = iter(range(10**9))
    if k == 1:
        step = tf.function(update, jit_compile=jit)
        return _timing.loop_session(
            lambda: step(next(iterator), tf.constant([next(counter), 0])), lambda loss: float(loss)
        )
    return _timing.calls_session(_timing.steps_per_call(update, k), iterator, k)


def library(x: np.ndarray, batch: int, jit: bool = False, steps_per_execution=None):
    """tfdgm.VAE, ``compile_default`` (its steps_per_execution unless given), ``fit``."""
    vae = VAE(event_shape=(D,), latent_dim=L, hidden_units=(H1, H2), seed=0)
    kwargs = {} if steps_per_execution is None else {"steps_per_execution": steps_per_execution}
    vae.compile_default(learning_rate=1e-3, jit_compile=jit, **kwargs)
    return _timing.fit_session(vae, stream(x, batch), int(vae.steps_per_execution))


def sessions(x, batch: int, full: bool) -> dict:
    out = {
        "hand loop": hand_loop(x, batch),
        "hand loop, 10 steps per call": hand_loop(x, batch, k=10),
        "tfdgm fit (default)": library(x, batch),
    }
    if full:
        out["hand loop + XLA"] = hand_loop(x, batch, jit=True)
        out["tfdgm fit, steps_per_execution=1"] = library(x, batch, steps_per_execution=1)
        out["tfdgm fit (default) + XLA"] = library(x, batch, jit=True)
    return out
