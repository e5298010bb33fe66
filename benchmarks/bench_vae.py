"""VAE training throughput: tfdgm's ``fit`` against a minimal hand-written TensorFlow loop.

Same network (784-512-256-32 MLP encoder, mirrored decoder, Bernoulli likelihood), same
data (synthetic binary 784-dim images, so nothing is downloaded), batch 128, in one
process. Prints examples/s of each variant and the ratio to the hand-written loop; with
``torch`` installed also the same network in PyTorch (eager and ``torch.compile``).

    python benchmarks/bench_vae.py [--steps 150] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import best_rate, fit_runner  # noqa: E402

import tfdgm  # noqa: E402

D, H1, H2, L, BATCH = 784, 512, 256, 32, 128


def make_data(n: int) -> np.ndarray:
    """Binary images with structure (thresholded smooth random fields), float32."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, 16)) @ rng.standard_normal((16, D))
    return (base > 0).astype(np.float32)


def hand_written(x: np.ndarray, steps: int, repeats: int, jit: bool) -> float:
    """The minimal loop: tf.Variables, matmuls, the ELBO by formula, Adam, one tf.function
    per step over a prefetched tf.data pipeline."""
    init = keras.initializers.GlorotUniform(seed=0)
    sizes = [(D, H1), (H1, H2), (H2, 2 * L), (L, H2), (H2, H1), (H1, D)]
    weights = [tf.Variable(init(s)) for s in sizes] + [tf.Variable(tf.zeros(s[1])) for s in sizes]
    kernels, biases = weights[:6], weights[6:]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(weights)

    def mlp(h, ks, bs):
        for i, (k, b) in enumerate(zip(ks, bs)):
            h = tf.matmul(h, k) + b
            if i < len(ks) - 1:
                h = tf.nn.relu(h)
        return h

    @tf.function(jit_compile=jit)
    def step(xb, seed):
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

    data = tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH).prefetch(2)
    iterator = iter(data)

    def run():
        for i in range(steps):
            step(next(iterator), tf.constant([i, 0]))

    return best_rate(run, steps * BATCH, repeats)


def library(x, steps, repeats, jit, policy="float32", pipeline=True) -> float:
    """tfdgm.VAE + compile_default + fit on the same network."""
    keras.mixed_precision.set_global_policy(policy)
    vae = tfdgm.VAE(event_shape=(D,), latent_dim=L, hidden_units=(H1, H2), seed=0)
    vae.compile_default(learning_rate=1e-3, jit_compile=jit)
    rate = best_rate(fit_runner(vae, x, BATCH, steps, pipeline), steps * BATCH, repeats)
    keras.mixed_precision.set_global_policy("float32")
    return rate


def pytorch(x, steps, repeats, compiled: bool) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)

    def mlp(sizes):
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    enc, dec = mlp([D, H1, H2, 2 * L]), mlp([L, H2, H1, D])
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, 1e-3)

    def step(xb):
        mu, raw = enc(xb).chunk(2, -1)
        sigma = torch.nn.functional.softplus(raw) + 1e-3
        z = mu + sigma * torch.randn_like(mu)
        logits = dec(z)
        rec = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, xb, reduction="none"
        ).sum(-1)
        kl = 0.5 * (mu**2 + sigma**2 - 1 - 2 * sigma.log()).sum(-1)
        loss = -(rec - kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    if compiled:
        step = torch.compile(step)
    xt = torch.from_numpy(x)

    def run():
        for i in range(steps):
            j = (i * BATCH) % (len(xt) - BATCH)
            step(xt[j : j + BATCH])

    return best_rate(run, steps * BATCH, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the main comparison")
    args = parser.parse_args()
    x = make_data(args.steps * BATCH)
    flops = 6 * (D * H1 + H1 * H2 + H2 * 2 * L + L * H2 + H2 * H1 + H1 * D)
    print(
        f"VAE {D}-{H1}-{H2}-{L}, batch {BATCH}, {flops / 1e6:.2f} MFLOP/example "
        f"(fwd+bwd), {args.steps} steps x {args.repeats} repeats, best of repeats"
    )
    results = {
        "hand-written tf.function": hand_written(x, args.steps, args.repeats, jit=False),
        "hand-written tf.function + XLA": hand_written(x, args.steps, args.repeats, jit=True),
        "tfdgm fit (tf.data)": library(x, args.steps, args.repeats, jit=False),
        "tfdgm fit (tf.data) + XLA": library(x, args.steps, args.repeats, jit=True),
    }
    if not args.quick:
        results["tfdgm fit (numpy arrays) + XLA"] = library(
            x, args.steps, args.repeats, jit=True, pipeline=False
        )
        results["tfdgm fit mixed_bfloat16 + XLA"] = library(
            x, args.steps, args.repeats, jit=True, policy="mixed_bfloat16"
        )
        results["tfdgm fit mixed_float16 + XLA"] = library(
            x, args.steps, args.repeats, jit=True, policy="mixed_float16"
        )
        for compiled in (False, True):
            rate = pytorch(x, args.steps, args.repeats, compiled)
            if rate is not None:
                results[f"PyTorch {'torch.compile' if compiled else 'eager'}"] = rate
    base = results["hand-written tf.function"]
    base_xla = results["hand-written tf.function + XLA"]
    print(f"{'variant':<34} {'examples/s':>10} {'vs hand':>8} {'vs hand+XLA':>12}")
    for name, rate in results.items():
        print(f"{name:<34} {rate:>10.0f} {rate / base:>8.2f} {rate / base_xla:>12.2f}")


if __name__ == "__main__":
    main()
