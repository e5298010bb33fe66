"""RBM training throughput and quality: tfdgm's ``fit`` against scikit-learn's ``BernoulliRBM``
and a minimal hand-written TensorFlow loop, in one process; plus the time of AIS.

Network 784-256, batch 64, plain SGD with learning rate 0.1 (scikit-learn's rule: its step is
lr / batch * sum, i.e. lr times the batch mean, as tfdgm's loss is a batch mean). Data: MNIST
binarized (x > 127) when the Keras cache has it (``--mnist``), else scikit-learn's 8x8 digits
upsampled to 28x28 (bilinear) and thresholded at 0.5, so nothing is downloaded. The number
of training examples is cut to a multiple of the batch size: scikit-learn splits the data
into equal slices, and a short last minibatch over-weights its negative phase.

Rows:
- scikit-learn ``BernoulliRBM`` (persistent CD-1, chains kept as hidden states);
- tfdgm ``RBM(persistent=True, cd_k=1)`` and ``RBM(cd_k=1)`` trained by Keras ``fit``;
- hand-written TF loops (the whole epoch inside one ``tf.function``) for PCD-1 and CD-1.

Held-out quality: the exact pseudo-log-likelihood sum_i log p(v_i | v_-i) of the test set
(all 784 flips, not scikit-learn's one-flip estimate), computed with the same formula for
every model (scikit-learn's weights are loaded into a tfdgm RBM).

``--threads N`` limits TensorFlow and the BLAS under scikit-learn to N threads each (on a
shared machine, BLAS with 2 threads slowed scikit-learn tenfold when other jobs held the
cores). ``--chain-variants`` adds a NumPy PCD-1 twice: with scikit-learn's hidden-state
chains and with tfdgm's visible-state chains, to separate the algorithms from the code.
``--jit`` compiles tfdgm's ``fit`` with XLA.

    python benchmarks/bench_rbm.py [--epochs 10] [--repeats 2] [--threads N] [--mnist]
                                   [--chain-variants] [--jit]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import best_rate as timed  # noqa: E402

from tfdgm import data  # noqa: E402
from tfdgm.models.rbm import RBM  # noqa: E402

V, H, BATCH, LR = 784, 256, 64, 0.1


def load(use_mnist: bool) -> tuple[np.ndarray, np.ndarray, str]:
    if use_mnist:
        ds = data.load("mnist")
        return ds.x_train, ds.x_test[:1000], "MNIST binarized (x > 127)"
    ds = data.load_digits("categorical", flatten=False)  # levels 0..16, (n, 8, 8, 1)
    up = lambda x: tf.image.resize(x / 16.0, (28, 28)).numpy().reshape(len(x), -1) > 0.5
    return (
        up(ds.x_train).astype("float32"),
        up(ds.x_test).astype("float32"),
        "digits 8x8 upsampled to 28x28 (bilinear) and thresholded at 0.5",
    )


def held_out_pll(kernel, visible_bias, hidden_bias, x_test) -> float:
    rbm = RBM(V, H, seed=0)
    rbm.kernel.assign(np.asarray(kernel, "float32"))
    rbm.visible_bias.assign(np.asarray(visible_bias, "float32"))
    rbm.hidden_bias.assign(np.asarray(hidden_bias, "float32"))
    return float(
        np.mean(
            [
                np.mean(rbm.pseudo_log_likelihood(x_test[i : i + 100]))
                for i in range(0, len(x_test), 100)
            ]
        )
    )


def sklearn_rbm(x, epochs, repeats):
    from sklearn.neural_network import BernoulliRBM

    models = []

    def run():
        model = BernoulliRBM(H, learning_rate=LR, batch_size=BATCH, n_iter=epochs, random_state=0)
        models.append(model.fit(x))

    rate = timed(run, epochs * len(x), repeats)
    m = models[-1]
    return rate, (m.components_.T, m.intercept_visible_, m.intercept_hidden_)


def tfdgm_rbm(x, epochs, repeats, persistent, jit=False):
    models = []

    def run():
        model = RBM(V, H, persistent=persistent, num_chains=BATCH, cd_k=1, seed=0)
        # as compile_default, without its momentum (scikit-learn has none)
        model.compile(optimizer=keras.optimizers.SGD(LR), steps_per_execution=8, jit_compile=jit)
        initial = [np.asarray(w) for w in model.weights]
        model.fit(x, epochs=1, batch_size=BATCH, verbose=0)  # trace outside the timing
        for weight, value in zip(model.weights, initial):  # then start again from scratch
            weight.assign(value)
        start = time.perf_counter()
        model.fit(x, epochs=epochs, batch_size=BATCH, verbose=0)
        models.append((model, time.perf_counter() - start))

    for _ in range(repeats):
        run()
    model, _ = models[-1]
    rate = max(epochs * len(x) / seconds for _, seconds in models)
    return rate, (model.kernel, model.visible_bias, model.hidden_bias), model


def tfdgm_train_step_loop(x, epochs, repeats, persistent):
    """The library's own ``train_step`` called from one ``tf.function`` per epoch, as the
    hand-written loop is: the RBM's math without Keras ``fit``'s per-step and per-epoch work."""
    model = RBM(V, H, persistent=persistent, num_chains=BATCH, cd_k=1, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(LR))
    model.optimizer.build(model.trainable_variables)
    initial = [np.asarray(w) for w in model.weights]
    batches = tf.constant(x.reshape(-1, BATCH, V))

    @tf.function
    def epoch():
        for i in tf.range(tf.shape(batches)[0]):
            model.train_step(batches[i])

    def run():
        for weight, value in zip(model.weights, initial):
            weight.assign(value)
        for _ in range(epochs):
            epoch()

    return timed(run, epochs * len(x), repeats), (
        model.kernel,
        model.visible_bias,
        model.hidden_bias,
    )


def hand_written(x, epochs, repeats, persistent):
    """The minimal loop: tf.Variables and the CD update by formula, one tf.function per
    epoch looping over the batches with tf.range."""
    init = keras.initializers.RandomNormal(stddev=0.01, seed=0)
    W, b, c = tf.Variable(init((V, H))), tf.Variable(tf.zeros(V)), tf.Variable(tf.zeros(H))
    chains = tf.Variable(tf.zeros((BATCH, V)))
    batches = tf.constant(x.reshape(-1, BATCH, V))

    def bernoulli(p, seed):
        return tf.cast(tf.random.stateless_uniform(tf.shape(p), seed) < p, tf.float32)

    @tf.function
    def epoch(seed):
        for i in tf.range(tf.shape(batches)[0]):
            s = tf.random.experimental.stateless_split(
                tf.random.experimental.stateless_fold_in(seed, i), 2
            )
            v0 = batches[i]
            start = chains if persistent else v0
            h = bernoulli(tf.sigmoid(tf.matmul(start, W) + c), s[0])
            v1 = bernoulli(tf.sigmoid(tf.matmul(h, W, transpose_b=True) + b), s[1])
            if persistent:
                chains.assign(v1)
            ph0, ph1 = tf.sigmoid(tf.matmul(v0, W) + c), tf.sigmoid(tf.matmul(v1, W) + c)
            W.assign_add(LR / BATCH * (tf.matmul(v0, ph0, True) - tf.matmul(v1, ph1, True)))
            b.assign_add(LR * tf.reduce_mean(v0 - v1, 0))
            c.assign_add(LR * tf.reduce_mean(ph0 - ph1, 0))

    counter = [0]
    initial = [np.asarray(v) for v in (W, b, c, chains)]

    def run():  # every run trains from scratch for ``epochs`` epochs
        for variable, value in zip((W, b, c, chains), initial):
            variable.assign(value)
        for _ in range(epochs):
            counter[0] += 1
            epoch(tf.constant([counter[0], 0]))

    return timed(run, epochs * len(x), repeats), (W, b, c)


def numpy_pcd(x, epochs, hidden_chains: bool, seed: int = 0):
    """PCD-1 in NumPy. hidden_chains=True is scikit-learn's rule (keep h, draw the negative
    v from it with the new weights); False keeps v and runs a full sweep, as tfdgm does."""
    rng = np.random.RandomState(seed)
    W, b, c = rng.normal(0, 0.01, (V, H)), np.zeros(V), np.zeros(H)
    h_chain, v_chain = np.zeros((BATCH, H)), np.zeros((BATCH, V))
    sigmoid = lambda a: 1 / (1 + np.exp(-a))
    for _ in range(epochs):
        for i in range(0, len(x), BATCH):
            v0 = x[i : i + BATCH]
            ph0 = sigmoid(v0 @ W + c)
            if not hidden_chains:
                h_chain = (rng.uniform(size=(BATCH, H)) < sigmoid(v_chain @ W + c)) * 1.0
            v1 = (rng.uniform(size=(BATCH, V)) < sigmoid(h_chain @ W.T + b)) * 1.0
            v_chain, ph1 = v1, sigmoid(v1 @ W + c)
            W += LR / BATCH * (v0.T @ ph0 - v1.T @ ph1)
            b += LR * (v0 - v1).mean(0)
            c += LR * (ph0 - ph1).mean(0)
            h_chain = (rng.uniform(size=ph1.shape) < ph1) * 1.0
    return W, b, c


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="threads for TF and BLAS")
    parser.add_argument("--mnist", action="store_true", help="use MNIST from the Keras cache")
    parser.add_argument("--chain-variants", action="store_true")
    parser.add_argument("--jit", action="store_true", help="tfdgm fit with jit_compile=True")
    args = parser.parse_args()
    if args.threads:
        import threadpoolctl

        threadpoolctl.threadpool_limits(args.threads)
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(0)  # fit's shuffling
    x_train, x_test, source = load(args.mnist)
    x_train = x_train[: len(x_train) // BATCH * BATCH]
    print(f"data: {source}; {len(x_train)} train, {len(x_test)} test; {V}-{H}, batch {BATCH}")
    threads = f"{args.threads} thread(s) each" if args.threads else "default threads"
    print(f"SGD lr {LR}, {args.epochs} epochs per timed run, best of {args.repeats}; {threads}\n")

    rows = {}
    rows["scikit-learn BernoulliRBM (PCD-1)"] = sklearn_rbm(x_train, args.epochs, args.repeats)
    rate, params, pcd_model = tfdgm_rbm(x_train, args.epochs, args.repeats, True, args.jit)
    rows["tfdgm RBM fit, PCD-1"] = rate, params
    rate, params, _ = tfdgm_rbm(x_train, args.epochs, args.repeats, False, args.jit)
    rows["tfdgm RBM fit, CD-1"] = rate, params
    rows["tfdgm train_step in tf.function, PCD-1"] = tfdgm_train_step_loop(
        x_train, args.epochs, args.repeats, True
    )
    rows["tfdgm train_step in tf.function, CD-1"] = tfdgm_train_step_loop(
        x_train, args.epochs, args.repeats, False
    )
    rows["hand-written tf.function, PCD-1"] = hand_written(x_train, args.epochs, args.repeats, True)
    rows["hand-written tf.function, CD-1"] = hand_written(x_train, args.epochs, args.repeats, False)

    reference = rows["scikit-learn BernoulliRBM (PCD-1)"][0]
    print(f"{'':40s} {'examples/s':>11s} {'vs sklearn':>10s} {'held-out PLL':>13s}")
    for name, (rate, params) in rows.items():
        pll = held_out_pll(*params, x_test)
        print(f"{name:40s} {rate:11.0f} {rate / reference:10.2f} {pll:13.2f}")
    pcd = rows["tfdgm RBM fit, PCD-1"][0] / rows["hand-written tf.function, PCD-1"][0]
    cd = rows["tfdgm RBM fit, CD-1"][0] / rows["hand-written tf.function, CD-1"][0]
    print(f"\ntfdgm fit / hand-written loop: PCD-1 {pcd:.2f}, CD-1 {cd:.2f}")
    pcd = (
        rows["tfdgm train_step in tf.function, PCD-1"][0]
        / rows["hand-written tf.function, PCD-1"][0]
    )
    cd = (
        rows["tfdgm train_step in tf.function, CD-1"][0] / rows["hand-written tf.function, CD-1"][0]
    )
    print(f"tfdgm train_step / hand-written loop: PCD-1 {pcd:.2f}, CD-1 {cd:.2f}")

    if args.chain_variants:
        for name, hidden in (
            ("hidden-state (scikit-learn)", True),
            ("visible-state (tfdgm)", False),
        ):
            pll = held_out_pll(*numpy_pcd(x_train, args.epochs, hidden), x_test)
            print(f"NumPy PCD-1 with {name} chains: held-out PLL {pll:.2f}")

    for chains, betas in [(100, 1000), (100, 10000)]:
        start = time.perf_counter()
        estimate = pcd_model.log_partition("ais", num_chains=chains, num_betas=betas, seed=(0, 0))
        seconds = time.perf_counter() - start
        print(
            f"AIS {chains} chains x {betas} temperatures on the PCD-1 model: {seconds:.1f} s, "
            f"log Z = {float(estimate.value):.2f} +- {float(estimate.stddev):.2f}"
        )


if __name__ == "__main__":
    main()
