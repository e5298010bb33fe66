"""The one timing helper of the benchmarks: the best rate over repeated, warmed-up calls.

Benchmarks are run as scripts (``python benchmarks/bench_vae.py``), so they import this
module as ``from _timing import best_rate``. Best-of-repeats is the figure reported: on a
shared machine the slowest repeats measure the other jobs, not the code.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_rate(run: Callable[[], object], examples: int, repeats: int) -> float:
    """Best examples/s over ``repeats`` timed calls of ``run`` (after one warm-up call)."""
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(examples / (time.perf_counter() - start))
    return max(rates)


def fit_runner(model, x, batch: int, steps: int, pipeline: bool) -> Callable[[], object]:
    """A call of ``model.fit`` over ``steps`` batches of ``x``: from a repeated ``tf.data``
    pipeline (``pipeline=True``) or from the NumPy array itself."""
    if pipeline:
        import tensorflow as tf

        stream = tf.data.Dataset.from_tensor_slices(x).repeat().batch(batch).prefetch(2)
        return lambda: model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)
    n = steps * batch
    return lambda: model.fit(x[:n], epochs=1, batch_size=batch, shuffle=False, verbose=0)
