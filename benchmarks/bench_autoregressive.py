"""Autoregressive models: MADE training throughput and sequential sampling time.

1. MADE training, examples/s: tfdgm's ``MADE`` through ``fit`` against a minimal
   hand-written loop (one ``tf.function`` step that takes the next batch from a
   ``tf.data`` iterator, like Keras does, then the same ``tfdgm.nets.MaskedMLP``, the
   categorical negative log-likelihood by formula, Adam), on the same data (binarized
   8x8 digits, tiled to 16 x 1497 examples), batch 64, in one process; the ratio
   fit / hand-written.
2. Sampling, seconds per call of ``model.sample(n)`` (compiled, after a warm-up call) for
   the registry's default Markov, RNN and MADE models on the digits (D = 64 sequential
   steps for each: Markov evaluates its MLP on one position per step, the RNN steps its
   cell once, MADE re-runs the whole masked network).
3. ``--fit-quality``: trains every discrete likelihood model ("histogram", "factorized",
   "markov", "rnn", "made") with its registry defaults (``build``, epochs, batch size,
   learning rate, hparams; Keras seed 0) on its default dataset, prints the test negative
   log-likelihood in nats per example and, with ``--figures DIR``, saves sample grids
   ``DIR/autoregressive_samples_<name>.png`` and ``DIR/autoregressive_data.png``.

    python benchmarks/bench_autoregressive.py [--steps 200] [--repeats 3] [--quick]
    python benchmarks/bench_autoregressive.py --fit-quality [--figures docs/img]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import best_rate, fit_runner  # noqa: E402

from tfdgm import data, nets, registry  # noqa: E402
from tfdgm.models.autoregressive import MADE  # noqa: E402

BATCH, K = 64, 2


def hand_written(x: np.ndarray, hidden, steps: int, repeats: int) -> float:
    """The minimal loop: a MaskedMLP, softmax cross-entropy by formula, Adam, tf.function."""
    depth = x.shape[1]
    network = nets.MaskedMLP(depth, hidden, params_per_dim=K)
    network.build((None, depth))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(network.trainable_variables)

    @tf.function
    def step(iterator):
        xb = next(iterator)  # fetched inside the graph, as Keras' fit does
        with tf.GradientTape() as tape:
            logits = network(xb)  # (batch, D, K); binary levels are the scaled inputs
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(xb, tf.int32), logits)
            loss = tf.reduce_mean(tf.reduce_sum(nll, -1))
        variables = network.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    iterator = iter(tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH).prefetch(2))

    def run():
        for _ in range(steps):
            step(iterator)

    return best_rate(run, steps * BATCH, repeats)


def library(x: np.ndarray, hidden, steps: int, repeats: int, pipeline: bool) -> float:
    """tfdgm's MADE + compile_default + fit on the same network and data."""
    model = MADE(event_shape=x.shape[1:], num_categories=K, hidden_units=hidden, seed=0)
    model.compile_default(learning_rate=1e-3)
    return best_rate(fit_runner(model, x, BATCH, steps, pipeline), steps * BATCH, repeats)


def sampling_times(num_samples: int, repeats: int) -> dict:
    """Seconds per ``sample(num_samples)`` call of each default model (after a warm-up)."""
    digits = data.load("digits")
    times = {}
    for name in ("markov", "rnn", "made"):
        entry = registry.get(name)
        model = entry.build(digits, seed=0, **entry.defaults["hparams"])
        model.sample(num_samples, seed=(0, 0))  # trace
        best = np.inf
        for i in range(repeats):
            start = time.perf_counter()
            model.sample(num_samples, seed=(0, i))
            best = min(best, time.perf_counter() - start)
        times[name] = (best, getattr(model, "num_parameters", None))
    return times


def save_mosaic(images, path: str, label: str, ncols: int = 16):
    """8x8 binary images tiled with gray one-pixel gutters, saved as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = np.asarray(images, np.float32).reshape(-1, 8, 8)
    nrows = -(-len(images) // ncols)
    mosaic = np.full((nrows * 9 + 1, ncols * 9 + 1), 0.35, np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        mosaic[1 + 9 * r : 9 + 9 * r, 1 + 9 * c : 9 + 9 * c] = image
    fig, ax = plt.subplots(figsize=(mosaic.shape[1] / 20, mosaic.shape[0] / 20 + 0.3))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(label, fontsize=8)
    ax.axis("off")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def fit_quality(figures: str | None) -> dict:
    """Test NLL of every discrete model trained with its registry defaults."""
    results = {}
    for name in ("histogram", "factorized", "markov", "rnn", "made"):
        keras.utils.set_random_seed(0)
        entry = registry.get(name)
        dataset = data.load(entry.datasets[0])
        defaults = entry.defaults
        model = entry.build(dataset, seed=0, **defaults.get("hparams", {}))
        model.compile_default(learning_rate=defaults["learning_rate"])
        start = time.perf_counter()
        model.fit(
            dataset.x_train, epochs=defaults["epochs"], batch_size=defaults["batch_size"], verbose=0
        )
        seconds = time.perf_counter() - start
        test = -float(np.mean(model.log_prob(dataset.x_test)))
        train = -float(np.mean(model.log_prob(dataset.x_train)))
        results[name] = (dataset.name, model.num_parameters, train, test, seconds)
        print(
            f"  {name:<10} {dataset.name:<13} {model.num_parameters:>9,} parameters   "
            f"train NLL {train:6.2f}   test NLL {test:6.2f} nats   fit {seconds:5.0f} s",
            flush=True,
        )
        if figures and dataset.image_shape == (8, 8):
            path = os.path.join(figures, f"autoregressive_samples_{name}.png")
            save_mosaic(model.sample(32, seed=(0, 1)), path, f"{name}: samples")
    if figures:
        digits = data.load("digits")
        save_mosaic(digits.x_test[:32], os.path.join(figures, "autoregressive_data.png"), "data")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="few steps (a smoke run)")
    parser.add_argument("--fit-quality", action="store_true", help="test NLL of every model")
    parser.add_argument("--figures", default=None, help="folder for sample grids")
    args = parser.parse_args()
    if args.fit_quality:
        print("Registry defaults, default datasets, Keras seed 0:")
        fit_quality(args.figures)
        return
    steps, repeats = (10, 1) if args.quick else (args.steps, args.repeats)
    hidden = [512, 512]  # the registry default of "made"
    x = np.tile(data.load("digits").x_train, (16, 1))  # 23,952 binary 64-dim examples
    keras.utils.set_random_seed(0)

    print(
        f"MADE {x.shape[1]}-{'-'.join(map(str, hidden))}-{x.shape[1]}x{K}, batch {BATCH}, "
        f"{steps} steps, best of {repeats}, TF {tf.__version__}, Keras {keras.__version__}"
    )
    hand = hand_written(x, hidden, steps, repeats)
    rows = [("hand-written tf.function loop", hand)]
    rows.append(("tfdgm fit (tf.data pipeline)", library(x, hidden, steps, repeats, True)))
    rows.append(("tfdgm fit (NumPy arrays)", library(x, hidden, steps, repeats, False)))
    for label, rate in rows:
        print(f"  {label:<32} {rate:>10,.0f} examples/s   ratio {rate / hand:.2f}")

    num = 100
    print(f"\nSampling {num} digits (64 sequential steps), best of {max(repeats, 2)} calls:")
    for name, (seconds, params) in sampling_times(num, max(repeats, 2)).items():
        print(f"  {name:<8} {seconds * 1000:>8.1f} ms   ({params:,} parameters)")


if __name__ == "__main__":
    main()
