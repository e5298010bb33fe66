"""The one timing helper of the benchmarks.

``python -m benchmarks`` times *steps inside a training run*: each variant is a
:class:`Session` that keeps its model, optimizer state and input iterator alive, and each
call ``session(steps)`` runs ``steps`` more training steps and returns the seconds they
took, measured around the steps themselves (for ``fit``, from the end of the first batch
call to the end of the last, by :class:`BatchClock`; never a whole ``fit`` call with its
start-up and iterator teardown). :func:`round_robin` calls the variants in turn, ``rounds``
times, so that a change in the machine's load hits every variant alike, and reports the
median and the min-max of seconds per step. :func:`load` is the load average printed
beside every table: on a shared machine only ratios within one table mean anything.

The older scripts (``python benchmarks/bench_flows.py``, ``bench_autoregressive.py``,
``bench_diffusion.py``) import :func:`best_rate` and :func:`fit_runner` as
``from _timing import ...``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

#: ``BENCH_CLOCK=cpu``: time the process's CPU seconds (``time.process_time``, all its
#: threads) instead of wall-clock seconds; on a shared machine the waits for a core then
#: drop out. Run it with ``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1`` so that
#: idle pool threads do not spin on the clock.
CLOCK = os.environ.get("BENCH_CLOCK", "wall")


def clock() -> float:
    """Seconds now: wall-clock (``time.perf_counter``), or CPU time with ``BENCH_CLOCK=cpu``."""
    return time.process_time() if CLOCK == "cpu" else time.perf_counter()


def load() -> str:
    """The 1-, 5- and 15-minute load averages, e.g. ``"1.02 0.98 0.90"``."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def summary(values: list[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def round_robin(sessions: dict[str, Callable[[int], float]], steps: int, rounds: int) -> dict:
    """Seconds per step of each session: one untimed warm-up call of ``steps`` steps each,
    then ``rounds`` rounds in which every session runs ``steps`` steps in turn.

    Returns:
        ``{name: [seconds per step of each round]}``.
    """
    for session in sessions.values():
        session(steps)
    times = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            times[name].append(session(steps) / steps)
    return times


def batch_clock():
    """A Keras callback that records :func:`clock` at the end of every batch
    call (with ``steps_per_execution`` = k, one call is k steps)."""
    import keras

    class BatchClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(clock())

    return BatchClock()


def fit_session(model, stream, steps_per_execution: int) -> Callable[[int], float]:
    """A :class:`Session` of ``model.fit`` on the infinite ``stream``: each call fits
    ``steps`` + one batch call more and times the ``steps`` after the first call's end (so
    the start of ``fit`` and the teardown are outside the timed span; ``steps`` is rounded
    up to whole calls of ``steps_per_execution`` steps)."""
    iterator_stream = stream

    def run(steps: int) -> float:
        calls = -(-steps // steps_per_execution)
        timer = batch_clock()
        model.fit(
            iterator_stream,
            epochs=1,
            steps_per_epoch=(calls + 1) * steps_per_execution,
            verbose=0,
            callbacks=[timer],
        )
        return (timer.ends[-1] - timer.ends[0]) * steps / (calls * steps_per_execution)

    return run


def loop_session(step: Callable[[], object], sync: Callable[[], object]) -> Callable:
    """A session of a hand-written loop: ``step()`` runs one training step; ``sync()``
    waits for the last one (e.g. reads the loss)."""

    def run(steps: int) -> float:
        start = clock()
        for _ in range(steps):
            out = step()
        sync(out)
        return clock() - start

    return run


def steps_per_call(update: Callable, k: int) -> Callable:
    """``step(iterator, seed)``: ``k`` calls of ``update(batch, seed)`` in one
    ``tf.function`` call, each batch fetched inside the graph (as Keras' ``fit`` does with
    ``steps_per_execution`` = k)."""
    import tensorflow as tf

    @tf.function
    def step(iterator, seed):
        loss = update(next(iterator), tf.random.experimental.stateless_fold_in(seed, 0))
        for i in tf.range(1, k):
            loss = update(next(iterator), tf.random.experimental.stateless_fold_in(seed, i))
        return loss

    return step


def calls_session(step: Callable, iterator, k: int) -> Callable:
    """A session of a hand loop of ``k`` steps per call of ``step(iterator, seed)``."""
    import tensorflow as tf

    calls = iter(range(10**9))

    def run(steps: int) -> float:
        start = clock()
        for _ in range(-(-steps // k)):
            out = step(iterator, tf.constant([next(calls), 2]))
        float(out)
        return (clock() - start) * steps / (k * -(-steps // k))

    return run


# ------------------------------------------------------------------ older scripts
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
