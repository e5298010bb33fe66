"""What checking every batch costs: VAE training with ``check_batches`` on and off.

The in-step checks (:mod:`tfdgm.checks`: every value finite and in the support, asserted
before the update) run inside the compiled step. Two identical VAEs, one with
``model.check_batches = False``, train on the same batches; their repeats are interleaved
so that a busy machine slows both alike, and each is timed by the CPU seconds the
process spent (``time.process_time``, all threads), which other jobs on a shared machine
disturb far less than the wall clock; ``--threads 1`` pins TensorFlow to one thread.
Prints examples per CPU second of each and the overhead, for the benchmark VAE of
``bench_vae.py`` (784-512-256-32 MLP, batch 128, synthetic binary images) and the digits
VAE of ``tfdgm train vae`` (64-dim, batch 64)::

    python benchmarks/bench_batch_check.py [--steps 100] [--repeats 5] [--pipeline]
                                           [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _timing import fit_runner  # noqa: E402

from tfdgm import VAE  # noqa: E402

CASES = {
    "bench VAE 784-512-256-32, batch 128": dict(dim=784, hidden=(512, 256), latent=32, batch=128),
    "digits VAE 64-256-128-8, batch 64": dict(dim=64, hidden=(256, 128), latent=8, batch=64),
}


def binary_images(n: int, dim: int) -> np.ndarray:
    """Thresholded smooth random fields, float32 {0, 1}."""
    rng = np.random.default_rng(0)
    return ((rng.standard_normal((n, 16)) @ rng.standard_normal((16, dim))) > 0).astype("float32")


def interleaved_rates(runs: dict, examples: int, repeats: int) -> dict:
    """Best examples per CPU second of each run, their timed calls taken in turn (one
    warm-up each)."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, 0.0)
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.process_time()
            run()
            best[name] = max(best[name], examples / (time.process_time() - start))
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pipeline", action="store_true", help="feed a tf.data pipeline")
    parser.add_argument("--threads", type=int, help="TensorFlow intra- and inter-op threads")
    args = parser.parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    for title, case in CASES.items():
        x = binary_images(args.steps * case["batch"], case["dim"])
        runs = {}
        for checked in (True, False):
            keras.utils.set_random_seed(0)
            model = VAE((case["dim"],), latent_dim=case["latent"], hidden_units=case["hidden"])
            model.check_batches = checked
            model.compile_default()
            runs[checked] = fit_runner(model, x, case["batch"], args.steps, args.pipeline)
        rates = interleaved_rates(runs, args.steps * case["batch"], args.repeats)
        overhead = rates[False] / rates[True] - 1.0
        print(
            f"{title}: checked {rates[True]:,.0f}, unchecked {rates[False]:,.0f} ex/CPU-s, "
            f"check costs {100 * overhead:+.1f} % of the step"
        )


if __name__ == "__main__":
    main()
