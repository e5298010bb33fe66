"""AIS on a 784-256 RBM: the old path (a new ``tf.function`` per call, log f at both
temperatures and p(h|v) each from their own v'W) against the current one (one traced
function per model, two products per temperature), same seeds, in one process, calls
alternated. Prints both estimates (they agree to float rounding) and the seconds per call.

    python -m benchmarks.bench_ais [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import _timing  # noqa: E402
from tfdgm import partition  # noqa: E402
from tfdgm.models.rbm import RBM  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = RBM(784, 256, seed=0, weight_std=0.1)

    def old(chains, temperatures, seed):  # what every AIS call did before: retrace, 4 products
        seed = model._seed(seed)
        seed_init, seed_chain = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        initial, log_base, log_f, transition, _ = model._annealing(chains, seed_init)
        betas = partition.ais_schedule(temperatures)
        return partition.annealed_importance_sampling(
            initial, log_base, log_f, transition, betas, seed_chain
        )

    def new(chains, temperatures, seed):
        return model._ais(chains, temperatures, seed)

    print(f"load average {_timing.load()}")
    for chains, temperatures in ((10, 1000), (100, 1000), (1000, 300)):
        a, b = old(chains, temperatures, (1, 2)), new(chains, temperatures, (1, 2))
        times = {"old": [], "new": []}
        for r in range(args.repeats):
            for name, fn in (("old", old), ("new", new)):
                start = time.perf_counter()
                float(fn(chains, temperatures, (r, 5)).value)
                times[name].append(time.perf_counter() - start)
        print(
            f"{chains} chains x {temperatures} temperatures: log Z old {float(a.value):.4f} "
            f"+- {float(a.stddev):.4f}, new {float(b.value):.4f} +- {float(b.stddev):.4f}; "
            f"s/call old {np.median(times['old']):.2f} {np.round(times['old'], 2).tolist()}, "
            f"new {np.median(times['new']):.2f} {np.round(times['new'], 2).tolist()}; "
            f"load {_timing.load()}",
            flush=True,
        )


if __name__ == "__main__":
    main()
