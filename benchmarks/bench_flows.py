"""Normalizing-flow training throughput: tfdgm's ``fit`` against minimal hand-written loops.

RealNVP (8 affine couplings, conditioners 1-64-64-2, log-scale 3 tanh(s/3)) and MAF
(8 MADE layers 2-64-64-4) on two moons, batch 256, Adam, in one process. Variants:

- hand-written tf.function: tf.Variables and the coupling / MADE algebra written out
  (z2 = (x2 - t(x1)) exp(-s(x1)), log-det = -sum s), no TFP, no Keras model;
- tfdgm model in a hand-written tf.function loop: the same ``RealNVP``/``MAF`` objects
  (TFP bijectors around Keras conditioners), without ``fit``;
- tfdgm ``fit``: the library's path (``compile_default`` + ``fit`` on a tf.data pipeline);
- normflows (PyTorch), the same RealNVP settings, if ``torch`` and ``normflows`` import.

Prints examples/s of each and the ratio to the hand-written loop. ``--quality`` instead
measures fit quality over seeds with the registry settings (see ``quality``).

    python benchmarks/bench_flows.py [--steps 200] [--repeats 3] [--quick]
    python benchmarks/bench_flows.py --quality [--epochs 200] [--learning-rate 2e-3] [--seeds 3]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import best_rate  # noqa: E402

from tfdgm import data  # noqa: E402
from tfdgm.models.flows import MAF, RealNVP  # noqa: E402
from tfdgm.nets import made_masks  # noqa: E402

BATCH, HIDDEN, BOUND = 256, (64, 64), 3.0
LAYERS = {"realnvp": 8, "maf": 8}


def pipeline(x):
    return iter(tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH).prefetch(2))


def _mlp_params(sizes, init, zero_last=True):
    params = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        kernel = tf.zeros((a, b)) if (last and zero_last) else init((a, b))
        params += [tf.Variable(kernel), tf.Variable(tf.zeros(b))]
    return params


def _mlp(h, params, masks=None):
    for i in range(0, len(params), 2):
        kernel = params[i] if masks is None else params[i] * masks[i // 2]
        h = tf.matmul(h, kernel) + params[i + 1]
        if i < len(params) - 2:
            h = tf.nn.relu(h)
    return h


def hand_written(kind: str, x, steps: int, repeats: int, jit: bool = False) -> float:
    """The minimal loop: tf.Variables and the flow's algebra, one tf.function per step."""
    init = keras.initializers.GlorotUniform(seed=0)
    layers = LAYERS[kind]
    if kind == "realnvp":
        nets = [_mlp_params([1, *HIDDEN, 2], init) for _ in range(layers)]
        masks = None
    else:
        nets = [_mlp_params([2, *HIDDEN, 4], init) for _ in range(layers)]
        masks = made_masks([1, 2], HIDDEN)
        masks[-1] = np.repeat(masks[-1], 2, axis=1)  # (i, p) -> output i * 2 + p
        masks = [tf.constant(m) for m in masks]
    weights = [v for net in nets for v in net]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(weights)

    def log_prob(h):
        log_det = tf.zeros(tf.shape(h)[:1])
        for k, net in enumerate(nets):
            if kind == "realnvp":  # coupling: keep h1, move h2
                h1, h2 = h[:, :1], h[:, 1:]
                t, s = tf.split(_mlp(h1, net), 2, axis=-1)
                s = BOUND * tf.tanh(s / BOUND)
                h = tf.concat([h1, (h2 - t) * tf.exp(-s)], axis=-1)
            else:  # MAF inverse: all conditionals in one masked pass
                params = tf.reshape(_mlp(h, net, masks), [-1, 2, 2])
                t, s = params[..., 0], BOUND * tf.tanh(params[..., 1] / BOUND)
                h = (h - t) * tf.exp(-s)
            log_det -= tf.reduce_sum(s, -1)
            if k < len(nets) - 1:
                h = tf.reverse(h, axis=[-1])
        return -0.5 * tf.reduce_sum(h**2, -1) - np.log(2 * np.pi) + log_det

    @tf.function(jit_compile=jit)
    def step(xb):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(log_prob(xb))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        return loss

    iterator = pipeline(x)

    def run():
        for _ in range(steps):
            step(next(iterator))

    return best_rate(run, steps * BATCH, repeats)


def make_model(kind):
    cls = RealNVP if kind == "realnvp" else MAF
    return cls((2,), num_layers=LAYERS[kind], hidden_units=HIDDEN, log_scale_bound=BOUND, seed=0)


def model_hand_loop(kind: str, x, steps: int, repeats: int) -> float:
    """The tfdgm model (TFP bijectors, Keras conditioners) in a hand-written loop."""
    model = make_model(kind)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(xb):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(model.distribution().log_prob(xb))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    iterator = pipeline(x)

    def run():
        for _ in range(steps):
            step(next(iterator))

    return best_rate(run, steps * BATCH, repeats)


def library(kind: str, x, steps: int, repeats: int, jit: bool = False) -> float:
    """tfdgm: compile_default + fit on a tf.data pipeline."""
    model = make_model(kind)
    model.compile_default(learning_rate=1e-3, jit_compile=jit)
    ds = tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH).prefetch(2)

    def run():
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)

    return best_rate(run, steps * BATCH, repeats)


def normflows_realnvp(x, steps: int, repeats: int) -> float | None:
    """normflows' RealNVP with the same couplings (MLP 1-64-64-2, zero init), swaps, N(0, I)."""
    try:
        import normflows as nf
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    flows = []
    for _ in range(LAYERS["realnvp"]):
        flows.append(nf.flows.AffineCouplingBlock(nf.nets.MLP([1, *HIDDEN, 2], init_zeros=True)))
        flows.append(nf.flows.Permute(2, mode="swap"))
    model = nf.NormalizingFlow(nf.distributions.base.DiagGaussian(2, trainable=False), flows)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt = torch.from_numpy(x)

    def run():
        for i in range(steps):
            j = (i * BATCH) % (len(xt) - BATCH)
            loss = model.forward_kld(xt[j : j + BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return best_rate(run, steps * BATCH, repeats)


def quality(epochs: int, learning_rate: float, seeds: int, jit: bool = True):
    """Fit quality over seeds with the registry settings (8 layers, batch 128, Adam, XLA).

    Two moons: RealNVP with the log-scale unbounded and bounded (3 tanh(s/3)): does the loss
    stay finite, and the held-out log-likelihood per point. 8gaussians and checkerboard:
    KL(p_true || p_model) = E_true[log p_true - log p_model] on the 1,000 test points, as
    the mean (the KL estimate) and the median of the per-point log-ratios.
    """
    print(f"{epochs} epochs, batch 128, Adam {learning_rate:g}, XLA {jit}, seeds 0..{seeds - 1}")
    moons = data.load("moons")
    for bound in (None, BOUND):
        for seed in range(seeds):
            keras.utils.set_random_seed(seed)
            model = RealNVP((2,), hidden_units=HIDDEN, log_scale_bound=bound, seed=seed)
            model.compile_default(learning_rate=learning_rate, jit_compile=jit)
            loss = model.fit(moons.x_train, epochs=epochs, batch_size=128, verbose=0)
            finite = bool(np.isfinite(loss.history["loss"]).all())
            test_ll = float(np.mean(model.log_prob(moons.x_test))) if finite else float("nan")
            print(f"moons RealNVP bound={bound} seed={seed} finite={finite} test_ll={test_ll:.3f}")
    for name in ("8gaussians", "checkerboard"):
        toy = data.load(name)
        for cls in (RealNVP, MAF):
            for seed in range(seeds):
                keras.utils.set_random_seed(seed)
                model = cls((2,), hidden_units=HIDDEN, seed=seed)
                model.compile_default(learning_rate=learning_rate, jit_compile=jit)
                model.fit(toy.x_train, epochs=epochs, batch_size=128, verbose=0)
                ratio = data.toy_log_prob(name, toy.x_test) - model.log_prob(toy.x_test).numpy()
                print(
                    f"{name} {cls.__name__} seed={seed} KL={ratio.mean():.3f} "
                    f"median={np.median(ratio):.3f} max={ratio.max():.1f}"
                )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="RealNVP only, no XLA")
    parser.add_argument("--quality", action="store_true", help="fit quality over seeds")
    parser.add_argument("--epochs", type=int, default=200, help="of --quality")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="of --quality")
    parser.add_argument("--seeds", type=int, default=3, help="of --quality")
    args = parser.parse_args()
    if args.quality:
        return quality(args.epochs, args.learning_rate, args.seeds)
    x = data.load("moons").x_train
    print(
        f"two moons ({len(x)} points), batch {BATCH}, conditioners {HIDDEN}, "
        f"{args.steps} steps x {args.repeats} repeats, best of repeats, "
        f"{os.cpu_count()} CPU threads"
    )
    print(f"{'variant':<58} {'examples/s':>10} {'vs hand':>8}")
    for kind in ("realnvp",) if args.quick else ("realnvp", "maf"):
        results = {
            "hand-written tf.function": hand_written(kind, x, args.steps, args.repeats),
            "tfdgm model in a hand tf.function loop": model_hand_loop(
                kind, x, args.steps, args.repeats
            ),
            "tfdgm fit": library(kind, x, args.steps, args.repeats),
        }
        if not args.quick:
            results["hand-written tf.function + XLA"] = hand_written(
                kind, x, args.steps, args.repeats, jit=True
            )
            results["tfdgm fit + XLA"] = library(kind, x, args.steps, args.repeats, jit=True)
        if kind == "realnvp":
            rate = normflows_realnvp(x, args.steps, args.repeats)
            if rate is None:
                print("(normflows not importable: skipped)")
            else:
                results["normflows (PyTorch eager)"] = rate
        base = results["hand-written tf.function"]
        name = f"{kind.upper()} {LAYERS[kind]} layers"
        for variant, rate in results.items():
            print(f"{name + ': ' + variant:<58} {rate:>10.0f} {rate / base:>8.2f}")


if __name__ == "__main__":
    main()
