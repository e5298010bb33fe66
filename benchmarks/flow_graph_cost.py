"""The flows' objective against the same log p(x) by formula: MatMul ops in the traced
gradient and ms per gradient, the two alternated in one process.

    PYTHONPATH=. python benchmarks/flow_graph_cost.py [--batch 128 2048] [--rounds 5]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from benchmarks import _timing  # noqa: E402
from benchmarks import suite_families as sf  # noqa: E402


def grad_of(model, f):
    @tf.function
    def g(x):
        with tf.GradientTape() as tape:
            loss = f(x)
        return tape.gradient(loss, model.trainable_variables)

    return g


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, nargs="+", default=[2048])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for name in ("realnvp", "maf"):
        model, _ = sf.default_model(name)
        hand = sf._flow_log_prob(model)
        fns = {
            "model objective": grad_of(
                model, lambda x, m=model: m.objective(x, training=True)["loss"]
            ),
            "hand log_prob": grad_of(model, lambda x, h=hand: -tf.reduce_mean(h(x))),
        }
        for batch in args.batch:
            x = tf.constant(sf.make_data(name, batch))
            for k, f in fns.items():
                ops = [op.type for op in f.get_concrete_function(x).graph.get_operations()]
                print(f"{name} {k}: {len(ops)} ops, {ops.count('MatMul')} MatMul", flush=True)
            times = {k: [] for k in fns}
            repeats = max(10, 20480 // batch)
            for _ in range(args.rounds):
                for k, f in fns.items():
                    f(x)
                    start = time.perf_counter()
                    for _ in range(repeats):
                        out = f(x)
                    float(tf.reduce_sum(out[0]))
                    times[k].append((time.perf_counter() - start) / repeats)
            for k, v in times.items():
                median, low, high = _timing.summary(v)
                print(
                    f"{name} batch {batch} {k}: ms/gradient median {1e3 * median:.2f} "
                    f"[{1e3 * low:.2f}-{1e3 * high:.2f}]",
                    flush=True,
                )
    print("load", _timing.load())


if __name__ == "__main__":
    main()
