"""The flows' objective against the same log p(x) by formula: MatMul ops in the traced
gradient and ms per gradient at batch 2048 (``PYTHONPATH=. python benchmarks/flow_graph_cost.py``)."""
import os, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf, numpy as np
from benchmarks import suite_families as sf
for name in ("realnvp", "maf"):
    model, _ = sf.default_model(name)
    x = tf.constant(sf.make_data(name, 2048))
    hand = sf._flow_log_prob(model)
    def grad_of(f):
        @tf.function
        def g(x):
            with tf.GradientTape() as tape:
                loss = f(x)
            return tape.gradient(loss, model.trainable_variables)
        return g
    fns = {"model objective": grad_of(lambda x: model.objective(x, training=True)["loss"]),
           "hand log_prob": grad_of(lambda x: -tf.reduce_mean(hand(x)))}
    for k, f in fns.items():
        graph = f.get_concrete_function(x).graph
        ops = [op.type for op in graph.get_operations()]
        print(name, k, "ops", len(ops), "MatMul", ops.count("MatMul"), "BatchMatMulV2", ops.count("BatchMatMulV2"), flush=True)
    times = {k: [] for k in fns}
    for r in range(5):
        for k, f in fns.items():
            f(x); t = time.perf_counter()
            for _ in range(10): out = f(x)
            float(tf.reduce_sum(out[0])); times[k].append((time.perf_counter() - t) / 10)
    for k, v in times.items():
        print(name, k, "ms/grad median", round(1e3 * float(np.median(v)), 2), "min", round(1e3 * min(v), 2), flush=True)
print("load", open("/proc/loadavg").read().split()[:3])
