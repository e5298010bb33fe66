"""DDPM training throughput against a hand-written TensorFlow loop, and sampling time per image.

Training: ``tfdgm.DDPM`` (``compile_default`` + ``fit``) against a minimal loop doing the
same work with the same network (the default 8x8 U-Net, ``tfdgm.denoisers.DenoisingUNet``,
filters 32, channel_mult (1, 2)): t ~ U{1..T}, noise, the simple epsilon loss, Adam, and
the EMA of the weights after every update; batch 64, synthetic 8x8 images in [-1, 1].
Sampling: seconds per image of DDIM (eta = 0) and of the ancestral sampler against the
number of steps, 64 images per call. Prints examples/s, ratios and the machine load
(others may share the CPU: read ratios from one run, best of repeats).

    python benchmarks/bench_diffusion.py [--steps 60] [--repeats 3] [--quick]
    python benchmarks/bench_diffusion.py --run RUN [--plot steps.png] [--seeds 10 --full-seeds 2]
    python benchmarks/bench_diffusion.py --run RUN --guidance 0,1,3 [--sample-steps 50]
    python benchmarks/bench_diffusion.py --step-cost 32,0,64 32,1,64 48,0,64 32,0,128

With ``--run`` (a folder of ``tfdgm train ddpm``): quality against the number of DDIM steps
instead, i.e. FD and KID (``tfdgm.metrics.sample_quality``: the shipped classifier's
features on digits) of as many DDIM (eta = 0) samples as the test split has, seed (0, 0)
(with ``--seeds K``: mean and sd over the seeds (0, 0) ... (K - 1, 0), as
``scripts/diffusion_quality.py``; ``--full-seeds`` draws at T steps, the costly row), at 10,
20, 50, 100 and T steps, with the seconds per image of the first draw, the train-vs-test
reference, and a plot of FD and KID against steps. With ``--guidance`` (a conditional run,
``--hparam num_classes=10``): for each guidance scale w, 1,000 DDIM samples (100 per digit,
seed (0, 3)) and the fraction the shipped digits classifier labels as the asked digit (the
run's ``label_coherence``), with FD and KID of the first as many as the test split has.
With ``--step-cost``: CPU time per training batch of the digits U-Net (cosine, v) for each
``filters,jit,batch``, from ``time.process_time`` (robust to the machine's load).
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

from tfdgm import denoisers  # noqa: E402
from tfdgm.models.diffusion import DDPM  # noqa: E402
from tfdgm.schedules import NoiseSchedule  # noqa: E402

SHAPE, BATCH, T, FILTERS = (8, 8), 64, 1000, 32


def make_data(n: int) -> np.ndarray:
    """Smooth random 8x8 images in [0, 1], flat float32 ``[n, 64]``."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, 6)) @ rng.standard_normal((6, 64))
    return (1.0 / (1.0 + np.exp(-base))).astype(np.float32)


def hand_written(x: np.ndarray, steps: int, repeats: int, jit: bool) -> float:
    """The same U-Net, loss, Adam and EMA written as one tf.function step."""
    net = denoisers.DenoisingUNet(SHAPE, FILTERS, (1, 2), 64)
    net(tf.zeros([1, 64]), tf.ones([1]))
    weights = net.trainable_variables
    ema = [tf.Variable(v) for v in weights]
    log_ab = tf.constant(NoiseSchedule(T).log_alpha_bar, tf.float32)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(weights)

    @tf.function(jit_compile=jit)
    def step(xb, seed):
        y0 = 2.0 * xb - 1.0
        seeds = tf.random.experimental.stateless_split(seed, 2)
        t = tf.random.stateless_uniform([BATCH], seeds[0], 1, T + 1, tf.int32)
        eps = tf.random.stateless_normal(tf.shape(y0), seeds[1])
        ab = tf.exp(tf.gather(log_ab, t))[:, None]
        y_t = tf.sqrt(ab) * y0 + tf.sqrt(1.0 - ab) * eps
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(y_t, tf.cast(t, tf.float32)) - eps))
        optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        for e, v in zip(ema, weights):
            e.assign(0.999 * e + 0.001 * v)
        return loss

    data = tf.data.Dataset.from_tensor_slices(x).repeat().batch(BATCH, True).prefetch(2)
    iterator = iter(data)

    def run():
        for i in range(steps):
            step(next(iterator), tf.constant([i, 0]))

    return best_rate(run, steps * BATCH, repeats)


def model() -> DDPM:
    return DDPM(
        (64,), T, architecture="unet", image_shape=SHAPE, filters=FILTERS, shift=0.5,
        scale=0.5, clip_denoised=True, seed=0,
    )  # fmt: skip


def library(x, steps, repeats, jit) -> float:
    ddpm = model()
    ddpm.compile_default(learning_rate=1e-3, jit_compile=jit)
    return best_rate(fit_runner(ddpm, x, BATCH, steps, True), steps * BATCH, repeats)


def sampling(num_steps, repeats, n=64) -> dict:
    """Best seconds per image over ``repeats`` calls (after a warm-up) per sampler and steps."""
    ddpm, out = model(), {}
    for sampler in ("ddim", "ddpm"):
        for s in num_steps:
            ddpm.sample(n, seed=(0, 0), num_steps=s, sampler=sampler)
            times = []
            for r in range(repeats):
                start = time.perf_counter()
                ddpm.sample(n, seed=(r, 1), num_steps=s, sampler=sampler)
                times.append((time.perf_counter() - start) / n)
            out[sampler, s] = min(times)
    return out


def quality_against_steps(run: str, plot: str | None, seeds=1, full_seeds=None) -> None:
    import json

    from tfdgm import data, metrics

    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    with open(os.path.join(run, "config.json")) as f:
        dataset = data.load(json.load(f)["dataset"])
    ddpm = keras.saving.load_model(os.path.join(run, "model.keras"))
    reference = metrics.sample_quality(
        dataset.x_train[: len(dataset.x_test)], dataset, reference=True
    )
    print(f"{dataset.name}, T = {ddpm.num_timesteps}, {len(dataset.x_test)} samples per draw")
    print(f"train vs test reference: FD {reference['fd_reference']:.3f}, "
          f"KID {reference['kid_reference']:.4f}")  # fmt: skip
    print(f"{'sampler':<6} {'steps':>5} {'draws':>5} {'FD':>8} {'sd':>6} {'KID':>8} {'sd':>7} "
          f"{'ms/image':>9}  (FD, KID of seed (0, 0))")  # fmt: skip
    rows = []
    for steps in (10, 20, 50, 100, ddpm.num_timesteps):
        n, fds, kids, seconds = len(dataset.x_test), [], [], None
        draws = seeds if steps < ddpm.num_timesteps or full_seeds is None else full_seeds
        for k in range(draws):  # seeds (0, 0), (1, 0), ... as scripts/diffusion_quality.py
            start = time.perf_counter()
            samples = np.asarray(ddpm.sample(n, seed=(k, 0), num_steps=steps, sampler="ddim"))
            seconds = seconds or (time.perf_counter() - start) / n  # the first call's
            quality = metrics.sample_quality(samples, dataset)
            fds.append(quality["fd"])
            kids.append(quality["kid"])
        fd, kid, ddof = np.asarray(fds), np.asarray(kids), min(1, draws - 1)
        rows.append((steps, fd.mean(), fd.std(ddof=ddof), kid.mean(), kid.std(ddof=ddof)))
        print(f"{'ddim':<6} {steps:>5} {draws:>5} {fd.mean():>8.3f} {fd.std(ddof=ddof):>6.3f} "
              f"{kid.mean():>8.4f} {kid.std(ddof=ddof):>7.4f} {1e3 * seconds:>9.2f}  "
              f"({fd[0]:.3f}, {kid[0]:.4f})", flush=True)  # fmt: skip
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    if plot:
        label = "DDIM (eta = 0)"
        if seeds > 1:
            label += f", mean +- sd of {seeds} draws"
            label += f" ({full_seeds} at T)" if full_seeds not in (None, seeds) else ""
        reference = (reference["fd_reference"], reference["kid_reference"])
        plot_steps(rows, reference, label, f"DDPM on {dataset.name}", plot)


def plot_steps(rows, reference, label: str, title: str, path: str) -> None:
    """FD and KID (mean, sd as error bars) against DDIM steps, beside the reference's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps, fd, fd_sd, kid, kid_sd = map(np.asarray, zip(*rows))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, y, sd, ref, name in (
        (axes[0], fd, fd_sd, reference[0], "FD"),
        (axes[1], kid, kid_sd, reference[1], "KID"),
    ):
        ax.errorbar(steps, y, yerr=sd, fmt="o-", capsize=3, label=label)
        ax.axhline(ref, color="gray", ls="--", label="train vs test (one draw)")
        ax.set(xscale="log", xlabel="sampling steps", ylabel=f"{name} (classifier features)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{title}: quality against DDIM steps")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def step_cost(configs) -> None:
    """CPU seconds per training batch of the digits U-Net (cosine, v) in ``fit``, for each
    ``filters,jit,batch`` (e.g. ``32,0,64``): one warm-up epoch, then 3 epochs timed with
    ``time.process_time`` (CPU time of this process: robust to other jobs' load)."""
    from tfdgm import data

    dataset = data.load("digits-continuous")
    x = np.asarray(dataset.x_train, np.float32)
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    for config in configs:
        filters, jit, batch = (int(v) for v in config.split(","))
        ddpm = DDPM.for_dataset(dataset, filters=filters, schedule="cosine", prediction="v")
        ddpm.compile_default(1e-3, jit_compile=bool(jit))
        ddpm.fit(x, epochs=1, batch_size=batch, verbose=0)
        start = time.process_time()
        ddpm.fit(x, epochs=3, batch_size=batch, verbose=0)
        batches = 3 * -(-len(x) // batch)
        cpu = (time.process_time() - start) / batches
        print(f"filters {filters:>3} jit {bool(jit)!s:<5} batch {batch:>4}: "
              f"{1e3 * cpu:6.1f} ms CPU per batch, {1e6 * cpu / batch:6.0f} us per example, "
              f"{ddpm.denoiser.count_params():,} parameters", flush=True)  # fmt: skip
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


def coherence_against_guidance(run: str, scales, steps: int) -> None:
    import json

    from tfdgm import data, metrics

    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    with open(os.path.join(run, "config.json")) as f:
        dataset = data.load(json.load(f)["dataset"])
    ddpm = keras.saving.load_model(os.path.join(run, "model.keras"))
    classifier = metrics.digits_classifier(dataset.image_shape[:2])
    asked, n = np.arange(1000) % 10, len(dataset.x_test)
    print(f"{dataset.name}, T = {ddpm.num_timesteps}, DDIM {steps} steps, 1000 samples")
    print(f"{'w':>5} {'coherence':>9} {'FD':>8} {'KID':>8} {'ms/image':>9}")
    for w in scales:
        start = time.perf_counter()
        samples = np.asarray(ddpm.sample(
            len(asked), seed=(0, 3), num_steps=steps, sampler="ddim", labels=asked,
            guidance_scale=w,
        ))  # fmt: skip
        seconds = (time.perf_counter() - start) / len(asked)
        coherence = float(np.mean(classifier.predict(samples) == asked))
        quality = metrics.sample_quality(samples[:n], dataset)
        print(f"{w:>5g} {100 * coherence:>8.1f}% {quality['fd']:>8.3f} {quality['kid']:>8.4f} "
              f"{1e3 * seconds:>9.2f}", flush=True)  # fmt: skip
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="no XLA, sampling up to 100 steps")
    parser.add_argument("--run", help="a ddpm run folder: quality against DDIM steps")
    parser.add_argument("--plot", help="with --run: write the FD-against-steps plot here")
    parser.add_argument("--seeds", type=int, default=1, help="with --run: draws per row")
    parser.add_argument("--full-seeds", type=int, help="with --run: draws at T steps (--seeds)")
    parser.add_argument("--guidance", help="with --run: coherence at these scales, e.g. 0,1,3")
    parser.add_argument("--sample-steps", type=int, default=50, help="with --guidance")
    parser.add_argument("--step-cost", nargs="+", help="CPU per batch of FILTERS,JIT,BATCH ...")
    args = parser.parse_args()
    if args.step_cost:
        return step_cost(args.step_cost)
    if args.run and args.guidance:
        scales = [float(w) for w in args.guidance.split(",")]
        return coherence_against_guidance(args.run, scales, args.sample_steps)
    if args.run:
        return quality_against_steps(args.run, args.plot, args.seeds, args.full_seeds)
    x = make_data(args.steps * BATCH)
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    print(
        f"DDPM U-Net 8x8 (filters {FILTERS}, mult (1, 2)), T = {T}, batch {BATCH}, "
        f"{args.steps} steps x {args.repeats} repeats, best of repeats"
    )
    results = {
        "hand-written tf.function": hand_written(x, args.steps, args.repeats, jit=False),
        "tfdgm fit (tf.data)": library(x, args.steps, args.repeats, jit=False),
    }
    if not args.quick:
        results["hand-written tf.function + XLA"] = hand_written(x, args.steps, args.repeats, True)
        results["tfdgm fit (tf.data) + XLA"] = library(x, args.steps, args.repeats, jit=True)
    base = results["hand-written tf.function"]
    print(f"{'training':<34} {'examples/s':>10} {'vs hand':>8}")
    for name, rate in results.items():
        print(f"{name:<34} {rate:>10.0f} {rate / base:>8.2f}")
    steps = (10, 20, 50, 100) if args.quick else (10, 20, 50, 100, 1000)
    times = sampling(steps, args.repeats)
    print(f"{'sampling (64 images per call)':<34} {'ms/image':>10} {'ms/image/step':>14}")
    for (sampler, s), seconds in times.items():
        print(f"{sampler + f' {s} steps':<34} {1e3 * seconds:>10.2f} {1e3 * seconds / s:>14.3f}")
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
