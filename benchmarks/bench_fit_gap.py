"""Where ``fit`` loses time against the ten-step hand loop: the same steps timed as the
hand loop (objective by formula), the model's own ``train_step`` looped ten to a
``tf.function`` call (with and without the in-graph batch checks), and ``fit`` (ten
steps per call by ``compile_default``; with Keras 3's own multi-step train function in
place of tfdgm's one-loop function; with XLA), round-robin in one process.

    PYTHONPATH=. python benchmarks/bench_fit_gap.py realnvp,maf 128,2048 [--rounds 5] [--quick]

``--quick`` leaves out the XLA and no-batch-check rows. Besides the ratio of medians, each
row gives the median over rounds of the hand loop's time over the variant's in the same
round (paired: a change of load between rounds cancels).

Families: vae, rbm (always batch 64), realnvp, maf, made, gan, helmholtz. With
``BENCH_CLOCK=cpu TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1`` the figures are CPU
seconds of one thread, which a shared machine's load disturbs far less than wall time.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from benchmarks import _timing  # noqa: E402
from benchmarks import suite_families as sf  # noqa: E402


def train_step_loop(name: str, x, batch: int, checks: bool = True, k: int = 10):
    """The model's ``train_step`` (compiled by ``compile_default``), ``k`` per call."""
    model, _ = sf.default_model(name)
    model.compile_default(steps_per_execution=1)
    model.check_batches = checks
    iterator = iter(sf.stream(x, batch))

    @tf.function
    def step(iterator):
        logs = model.train_step(next(iterator))
        for _ in tf.range(1, k):
            logs = model.train_step(next(iterator))
        return logs["loss"]

    def run(steps: int) -> float:
        calls = -(-steps // k)
        start = _timing.clock()
        for _ in range(calls):
            out = step(iterator)
        float(out)
        return (_timing.clock() - start) * steps / (k * calls)

    return run


def two_pass(session):
    """``session`` with TFP's own tfb.RealNVP / tfb.MaskedAutoregressiveFlow, which run
    every conditioner twice per log p(x), in place of tfdgm's one-pass bijectors (swapped
    in while the session runs, so its graph is traced with them)."""
    from tfdgm import bijectors

    def run(steps: int) -> float:
        saved = bijectors.FusedRealNVP, bijectors.FusedMAF
        bijectors.FusedRealNVP = bijectors.tfb.RealNVP
        bijectors.FusedMAF = bijectors.tfb.MaskedAutoregressiveFlow
        try:
            return session(steps)
        finally:
            bijectors.FusedRealNVP, bijectors.FusedMAF = saved

    return run


def keras_function(session):
    """``session`` with Keras 3's own multi-step train function: tfdgm's one-loop function
    (``tfdgm.training.multi_step_function``) switched off while it runs, so its model
    makes and keeps Keras' function."""
    from tfdgm import training

    def run(steps: int) -> float:
        saved = training.runs_steps_in_one_loop
        training.runs_steps_in_one_loop = lambda model: False
        try:
            return session(steps)
        finally:
            training.runs_steps_in_one_loop = saved

    return run


def sessions(name: str, x, batch: int, quick: bool = False) -> dict:
    if name == "vae":
        from benchmarks import suite_vae

        out = {
            "hand loop, 10 steps per call": suite_vae.hand_loop(x, batch, k=10),
            "fit (default)": suite_vae.library(x, batch),
            "fit (default), Keras' train function": keras_function(suite_vae.library(x, batch)),
            "fit, steps_per_execution=1": suite_vae.library(x, batch, steps_per_execution=1),
        }
        if not quick:
            out["fit (default) + XLA"] = suite_vae.library(x, batch, jit=True)
        return out
    if name == "rbm":  # batch 64 always (its persistent chains)
        from benchmarks import suite_rbm

        return {
            "hand loop, 10 steps per call": suite_rbm.hand_loop(x, k=10),
            "fit (default)": suite_rbm.library(x),
            "fit (default), Keras' train function": keras_function(suite_rbm.library(x)),
            "fit, steps_per_execution=1": suite_rbm.library(x, 1),
        }
    out = {"hand loop, 10 steps per call": sf.hand_loop(name, x, batch, k=10)}
    if name in ("realnvp", "maf") and not quick:
        out["fit (default), TFP's two-pass bijectors"] = two_pass(sf.library(name, x, batch))
    out["train_step, 10 per call"] = train_step_loop(name, x, batch)
    if not quick:
        out["train_step, 10 per call, no batch checks"] = train_step_loop(name, x, batch, False)
    out["fit (default)"] = sf.library(name, x, batch)
    out["fit (default), Keras' train function"] = keras_function(sf.library(name, x, batch))
    if not quick:
        out["fit (default) + XLA"] = sf.library(name, x, batch, jit=True)
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("families", help="comma-separated, e.g. realnvp,maf")
    parser.add_argument("batches", help="comma-separated, e.g. 128,2048")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="no XLA, no-check rows")
    args = parser.parse_args()
    for name in args.families.split(","):
        for batch in map(int, args.batches.split(",")):
            if name in ("vae", "rbm"):
                from benchmarks import suite_rbm, suite_vae

                suite = suite_vae if name == "vae" else suite_rbm
                x = suite.make_data(max(8 * batch, 4096))
            else:
                x = sf.make_data(name, max(8 * batch, 4096))
            steps = max(20, 4096 // batch)
            times = _timing.round_robin(sessions(name, x, batch, args.quick), steps, args.rounds)
            hand = times["hand loop, 10 steps per call"]
            reference = _timing.summary(hand)[0]
            print(f"{name}, batch {batch}, load average {_timing.load()}:")
            for variant, values in times.items():
                median, low, high = _timing.summary(values)
                paired = statistics.median(h / v for h, v in zip(hand, values))
                print(
                    f"  {variant:42s} {1e3 * median:8.2f} ms [{1e3 * low:.2f}-{1e3 * high:.2f}]"
                    f"  hand loop / this {reference / median:.2f} (paired {paired:.2f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
