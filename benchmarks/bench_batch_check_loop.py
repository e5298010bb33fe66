"""What checking every batch costs, without ``fit``'s overhead: train steps in one graph.

``bench_batch_check.py`` times ``fit`` with ``check_batches`` on and off; on a shared
machine its run-to-run noise (several %) hides a cost of a few %. Here one
``tf.function`` runs N ``train_step`` calls on the same batch in a ``tf.range`` loop (no
Python, no input pipeline between steps), for two identical VAEs, one with
``model.check_batches = False``; the two loops alternate, each timed in CPU seconds of
the process (``time.process_time``) with TensorFlow on one thread, and the medians of
the repeats are compared::

    python benchmarks/bench_batch_check_loop.py [--repeats 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfdgm import VAE  # noqa: E402

#: (event size, hidden units, latent size, batch, steps per loop)
CASES = {
    "digits VAE 64-256-128-8, batch 64": (64, (256, 128), 8, 64, 300),
    "bench VAE 784-512-256-32, batch 128": (784, (512, 256), 32, 128, 60),
}


def step_loop(dim, hidden, latent, batch, check: bool):
    """A traced loop of ``n`` train steps of a fresh VAE on one fixed binary batch."""
    rng = np.random.default_rng(0)
    x = tf.constant((rng.random((batch, dim)) < 0.3).astype("float32"))
    keras.utils.set_random_seed(0)
    model = VAE((dim,), latent_dim=latent, hidden_units=hidden)
    model.compile_default()
    model.check_batches = check

    @tf.function
    def loop(n):
        for _ in tf.range(n):
            model.train_step(x)
        return tf.constant(0)

    loop(tf.constant(2))  # trace
    return loop


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    for name, (dim, hidden, latent, batch, steps) in CASES.items():
        loops = {check: step_loop(dim, hidden, latent, batch, check) for check in (True, False)}
        times = {True: [], False: []}
        for r in range(args.repeats):
            for check in (True, False) if r % 2 else (False, True):
                start = time.process_time()
                loops[check](tf.constant(steps))
                times[check].append((time.process_time() - start) / steps)
        on, off = statistics.median(times[True]), statistics.median(times[False])
        print(
            f"{name}: {1e3 * off:.3f} ms of CPU a step unchecked, {1e3 * on:.3f} checked: "
            f"the check costs {100 * (on / off - 1):+.1f} % (median of {args.repeats})"
        )


if __name__ == "__main__":
    main()
