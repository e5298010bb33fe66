"""``python -m benchmarks``: tfdgm's ``fit`` against hand-written loops and peers, written
to docs/benchmarks.md.

Every figure is seconds per training step timed inside a training run (see
``benchmarks/_timing.py``), in round-robin rounds; tables give the median and the min-max
over rounds, examples/s, the ratio to the hand-written loop and the achieved GFLOP/s beside
a float32 GEMM ceiling measured in the same run. The peers (PyTorch eager and
``torch.compile`` for the VAE, scikit-learn's ``BernoulliRBM`` for the RBM, normflows at 1
and 2 PyTorch threads for RealNVP) run in their own processes. RealNVP, MAF, MADE, the GAN
and the Helmholtz machine run against hand loops of their own networks
(``benchmarks/suite_families.py``). The load average is printed with every table: on a
shared machine only ratios within one table mean anything.

    python -m benchmarks [--rounds 5] [--quick] [--out docs/benchmarks.md]
    python -m benchmarks --only realnvp,maf [--rounds 5] [--quick]   # print, write nothing

``--only`` runs the named sections (vae, rbm, realnvp, maf, made, gan, helmholtz,
sampling, ais) and prints their tables without writing the page. ``BENCH_CLOCK=cpu``
(with ``TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1``) times CPU seconds instead
of wall-clock seconds (``benchmarks/_timing.py``); the peers' rows stay wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import _timing  # noqa: E402

VAE_BATCHES, VAE_FULL = (32, 128, 512, 2048), (128, 2048)


def peer(name: str, batch: int, steps: int, rounds: int, threads=None) -> list[float] | None:
    """Seconds per step of a peer, run in its own process (None if it failed)."""
    cmd = [sys.executable, "-m", "benchmarks.peers", name, str(batch), str(steps), str(rounds)]
    cmd += [] if threads is None else [str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        print(f"  {name} failed: {done.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["times"]


def gemm_ceiling(rounds: int) -> tuple[float, float, float]:
    """float32 GFLOP/s of a chain of eight 2048 x 2048 matmuls in one tf.function."""
    import tensorflow as tf

    a = tf.random.stateless_normal([2048, 2048], (0, 0)) / 45.0

    @tf.function
    def chain(x):
        for _ in range(8):
            x = tf.matmul(x, a)
        return x[0, 0]

    session = _timing.loop_session(lambda: chain(a), lambda out: float(out))
    times = _timing.round_robin({"gemm": session}, 2, rounds)["gemm"]
    flops = 8 * 2 * 2048**3 / 1e9
    median, fastest, slowest = _timing.summary(times)
    return flops / slowest, flops / fastest, flops / median


def rows(times: dict, batch: int, flop_per_example: float, base: str) -> list[str]:
    """Markdown rows: variant, ms/step median [min-max], examples/s, vs base, vs the
    ten-step hand loop (when there is one), GFLOP/s."""
    out = []
    reference = _timing.summary(times[base])[0]
    ten = times.get(TEN)
    ten = _timing.summary(ten)[0] if ten else None
    for name, values in times.items():
        if values is None:
            continue
        median, low, high = _timing.summary(values)
        vs_ten = f"{ten / median:.2f}" if ten else "n/a"
        out.append(
            f"| {name} | {batch} | {median * 1e3:.2f} [{low * 1e3:.2f}-{high * 1e3:.2f}] | "
            f"{batch / median:,.0f} | {reference / median:.2f} | {vs_ten} | "
            f"{flop_per_example * batch / median / 1e9:.1f} |"
        )
    return out


TEN = "hand loop, 10 steps per call"


NOTES = """## What the defaults are, and why

- **tf.data without autotuning.** Every pipeline tfdgm builds (`Dataset.pipeline`, and the
  one `fit` makes of NumPy arrays) has `tf.data.Options().autotune.enabled = False`
  (`tfdgm.data.without_autotune`). Keras makes a new iterator for every epoch of a finite
  dataset and for every validation pass, and destroying an iterator whose autotuning
  thread runs can block for the rest of that thread's period, 10 ms doubled after every
  round (up to 60 s): `CancellationManager::StartCancel` wakes the thread before it marks
  itself cancelled, so the thread may wait out its period again (`Model::OptimizeLoop`),
  while the iterator's destructor joins it. `TF_CPP_VMODULE=model=2` shows it: a
  `Waiting for N ms` line right after the `del`, which then takes N ms. For an in-memory
  pipeline of your own (slices, shuffle, batch, prefetch) use
  `tfdgm.data.without_autotune(ds)` too; keep autotuning for pipelines with
  `map(num_parallel_calls=tf.data.AUTOTUNE)` or file interleaves, whose parallelism it
  tunes.
- **`steps_per_execution`.** `compile_default` runs `default_steps_per_execution` steps per
  `tf.function` call: 10 for every family (8 for the Boltzmann machines, as measured
  before); compare the `steps_per_execution=1` rows. Callbacks then see one batch call
  per 10 steps; pass `steps_per_execution=1` to `compile_default` for batch-by-batch
  callbacks. The k steps of a call run in one `tf.while_loop` of `train_step`
  (`GenerativeModel.make_train_function`, `tfdgm.training.multi_step_function`), not
  Keras 3's nested `tf.function` and `tf.cond` per step (one device, no XLA; see below).
- **XLA** (`jit_compile=True`) is not `compile_default`'s default: compare the `+ XLA`
  rows. It is faster for the flows (RealNVP and MAF: `fit` 1.2-1.4x at batch 128,
  `benchmarks/bench_fit_gap.py`), which is why `tfdgm train realnvp|maf` turns it on;
  level or slower for the VAE at batch 2048, the GAN and MADE, and 2.5x slower for the
  Helmholtz machine. It stays off in `compile_default` because compiling costs seconds
  per model: with it, the flows' tests took 109 s of CPU instead of 68.
- **Flows evaluate each conditioner once per log p(x)**: `tfdgm.bijectors.FusedRealNVP`
  and `FusedMAF` return the inverse and its log-determinant from one conditioner call
  (TFP's `BijectorCacheWithGreedyAttrs`), where `tfb.RealNVP` and
  `tfb.MaskedAutoregressiveFlow` call the conditioner for each.
- **RBM metrics**: training reports the reconstruction error and the one-flip
  pseudo-likelihood of the first 16 examples of each batch (`evaluate` scores all).
- **AIS** is one `tf.function` per model, traced once per (chains, temperatures) and
  reused; the RBM's annealing step makes two products per temperature (one v'W for both
  log-weight terms and p(h|v), then h W').
""".splitlines()

HEADER = [
    "| variant | batch | ms/step median [min-max] | examples/s | vs hand loop | "
    "vs 10-step hand loop | GFLOP/s |",
    "|---|---|---|---|---|---|---|",
]


def vae(rounds: int, quick: bool) -> list[str]:
    from benchmarks import suite_vae

    lines = [f"### VAE ({suite_vae.FLOP_PER_EXAMPLE / 1e6:.2f} MFLOP per example and step)", ""]
    scaling = ["| batch | hand loop | tfdgm fit | PyTorch eager | (examples/s, medians) |"]
    scaling.append("|---|---|---|---|---|")
    for batch in VAE_FULL if quick else VAE_BATCHES:
        x = suite_vae.make_data(max(8 * batch, 4096))
        steps = max(4, 4096 // batch)
        full = batch in VAE_FULL
        times = _timing.round_robin(suite_vae.sessions(x, batch, full), steps, rounds)
        times["PyTorch eager"] = peer("vae-torch", batch, steps, rounds)
        if full:
            times["PyTorch torch.compile"] = peer("vae-torch-compile", batch, steps, rounds)
            # under load PyTorch's second thread spins (see benchmarks/peers.py)
            times["PyTorch eager, 1 thread"] = peer("vae-torch", batch, steps, rounds, 1)
            lines += [f"Batch {batch}, load average {_timing.load()}:", "", *HEADER]
            lines += rows(times, batch, suite_vae.FLOP_PER_EXAMPLE, "hand loop") + [""]
            print("\n".join(lines[-len(times) - 5 :]), flush=True)
        rates = [
            f"{batch / _timing.summary(times[name])[0]:,.0f}" if times.get(name) else "n/a"
            for name in ("hand loop", "tfdgm fit (default)", "PyTorch eager")
        ]
        scaling.append(f"| {batch} | " + " | ".join(rates) + " | |")
    lines += [f"Examples/s against batch size (load average {_timing.load()}):", "", *scaling]
    return lines + [""]


def rbm(rounds: int) -> list[str]:
    from benchmarks import suite_rbm

    x = suite_rbm.make_data(64 * 64)
    times = _timing.round_robin(suite_rbm.sessions(x, full=True), 64, rounds)
    times["scikit-learn BernoulliRBM"] = peer("rbm-sklearn", 64, 64, rounds)
    lines = [
        f"### RBM 784-256, PCD-1 ({suite_rbm.FLOP_PER_EXAMPLE / 1e6:.2f} MFLOP per example)",
        "",
        f"Batch 64, load average {_timing.load()}:",
        "",
        *HEADER,
        *rows(times, 64, suite_rbm.FLOP_PER_EXAMPLE, "hand loop"),
        "",
    ]
    print("\n".join(lines), flush=True)
    return lines


FAMILY_TITLES = {
    "realnvp": "RealNVP (8 couplings, conditioners 1-64-64-2, two moons)",
    "maf": "MAF (8 MADE layers 2-64-64-4, two moons)",
    "made": "MADE (64-512-512-128 masked MLP, binary 8x8 digits)",
    "gan": "GAN (generator 8-128-128-2, discriminator 2-128-128-1, 8 Gaussians)",
    "helmholtz": "Helmholtz machine (64-64-32 sigmoid belief net, wake-sleep, digits)",
}


def families(rounds: int, quick: bool, only=None) -> list[str]:
    """Every family of suite_families at batch 128 and 2048 (normflows beside RealNVP)."""
    from benchmarks import suite_families

    lines = []
    for name, title in FAMILY_TITLES.items():
        if only is not None and name not in only:
            continue
        model, _ = suite_families.default_model(name)
        flop = suite_families.flop_per_example(name, model)
        lines += [f"### {title} ({flop / 1e6:.3f} MFLOP per example and step)", ""]
        for batch in (128, 2048):
            x = suite_families.make_data(name, max(8 * batch, 4096))
            steps = max(20, 4096 // batch)
            sessions = suite_families.sessions(name, x, batch, full=not quick)
            times = _timing.round_robin(sessions, steps, rounds)
            if name == "realnvp":
                times["normflows (PyTorch eager, 1 thread)"] = peer(
                    "realnvp-normflows", batch, steps, rounds, threads=1
                )
                times["normflows (PyTorch eager, 2 threads)"] = peer(
                    "realnvp-normflows", batch, steps, rounds, threads=2
                )
            lines += [f"Batch {batch}, load average {_timing.load()}:", "", *HEADER]
            lines += rows(times, batch, flop, "hand loop") + [""]
            print("\n".join(lines[-len(times) - 5 :]), flush=True)
    return lines


def _seconds(call, repeats: int) -> float:
    """Median seconds of ``call()`` over ``repeats`` timed calls, after one untimed."""
    import numpy as np

    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(call())
        times.append(time.perf_counter() - start)
    return _timing.summary(times)[0]


def sampling(quick: bool) -> list[str]:
    """Seconds per ``sample`` call of the autoregressive models (one step per dimension)
    and of DDPM (per image, against the number of steps), default models on digits."""
    from benchmarks.suite_families import default_model
    from tfdgm import data, registry, settings

    repeats = 2 if quick else 3
    digits = data.load("digits")
    lines = ["### Sampling time", "", f"Autoregressive models (load {_timing.load()}):", ""]
    lines += [
        "| model | steps (dimensions) | 64 samples (s) | 1024 samples (s) | ms per step, 1024 |"
    ]
    lines += ["|---|---|---|---|---|"]
    for name in ("markov", "rnn", "made"):
        entry = registry.get(name)
        _, hparams = settings.entry_settings(entry)
        model = (entry.build or entry.cls.for_dataset)(digits, seed=0, **hparams)
        cells = [
            _seconds(lambda n=n, m=model: m.sample(n, seed=(0, 1)), repeats) for n in (64, 1024)
        ]
        steps = model.event_size
        lines.append(
            f"| {name} | {steps} | {cells[0]:.3f} | {cells[1]:.3f} | {cells[1] / steps * 1e3:.2f} |"
        )
    model, _ = default_model("ddpm") if "ddpm" in registry.names() else (None, None)
    if model is not None:
        counts = (10, 100) if quick else (10, 100, 1000)
        lines += ["", f"DDPM (U-Net, 64 images of 8x8 digits; load {_timing.load()}):", ""]
        lines += ["| sampler | steps | seconds per call | ms per image | ms per image and step |"]
        lines += ["|---|---|---|---|---|"]
        for sampler in ("ddpm", "ddim"):
            for steps in counts:

                def call(steps=steps, sampler=sampler):
                    return model.sample(64, seed=(0, 1), num_steps=steps, sampler=sampler)

                sec = _seconds(call, 1 if steps >= 1000 else repeats)
                lines.append(
                    f"| {sampler} | {steps} | {sec:.2f} | {sec / 64 * 1e3:.1f} | "
                    f"{sec / 64 / steps * 1e3:.3f} |"
                )
    print("\n".join(lines), flush=True)
    return lines + [""]


def ais(quick: bool) -> list[str]:
    """Seconds of one AIS estimate (traced once, then timed) for chains x temperatures."""
    import tensorflow as tf

    from tfdgm.models.rbm import RBM

    model = RBM(784, 256, seed=0, weight_std=0.05)
    chains, temperatures = ((10, 100), (100,)) if quick else ((10, 100, 1000), (100, 1000))
    lines = ["### AIS (RBM 784-256)", "", f"Seconds per estimate (load {_timing.load()}):", ""]
    lines += ["| chains | " + " | ".join(f"{k} temperatures" for k in temperatures) + " |"]
    lines += ["|---" * (len(temperatures) + 1) + "|"]
    for m in chains:
        cells = []
        for k in temperatures:
            model.log_partition("ais", num_chains=m, num_betas=k, seed=(0, 1))  # trace
            start = time.perf_counter()
            tf.identity(model.log_partition("ais", num_chains=m, num_betas=k, seed=(m, k)).value)
            cells.append(f"{time.perf_counter() - start:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    print("\n".join(lines), flush=True)
    return lines + [""]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="batches 128 and 2048 only")
    parser.add_argument("--out", default=os.path.join("docs", "benchmarks.md"))
    parser.add_argument("--only", help="comma-separated sections; prints, writes nothing")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(f"load average at start: {_timing.load()}; clock: {_timing.CLOCK}", flush=True)
    if args.only:
        only = set(args.only.split(","))
        if "vae" in only:
            vae(args.rounds, args.quick)
        if "rbm" in only:
            rbm(args.rounds)
        families(args.rounds, args.quick, only)
        if "sampling" in only:
            sampling(args.quick)
        if "ais" in only:
            ais(args.quick)
        return
    low, high, median = gemm_ceiling(args.rounds)
    ceiling = f"float32 GEMM ceiling (8 chained 2048x2048 matmuls): {median:.0f} GFLOP/s"
    ceiling += f" [{low:.0f}-{high:.0f}], load average {_timing.load()}"
    print(ceiling, flush=True)
    body = [ceiling, ""]
    sections = [
        lambda: vae(args.rounds, args.quick),
        lambda: rbm(args.rounds),
        lambda: families(args.rounds, args.quick),
        lambda: sampling(args.quick),
    ]
    for section in sections:
        body += section()
        write(args.out, body, args, (time.perf_counter() - start) / 60)  # so far
    body += ais(args.quick)
    minutes = (time.perf_counter() - start) / 60
    write(args.out, body, args, minutes)
    print(f"wrote {args.out} ({minutes:.1f} min)")


#: The page's hand-written sections (each with its own command) start at this line and
#: are kept when the command writes the page again.
KEEP = "<!-- sections below: not written by python -m benchmarks; each gives its command -->"


def write(path: str, body: list[str], args, minutes: float) -> None:
    import platform

    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    command += f" --rounds {args.rounds}" if args.rounds != 5 else ""
    head = [
        "# Benchmarks",
        "",
        "Written by `" + command + "` (everything down to *What the defaults are* is its "
        f"output; {minutes:.0f} minutes on {os.cpu_count()} cores, "
        f"{platform.processor() or 'CPU'}). "
        "Each figure is seconds per training step timed inside one training run, "
        f"{args.rounds} round-robin rounds of every variant; median [min-max]. "
        "*vs hand loop* is the hand loop's median over the variant's. The machine is shared: "
        "compare within one table only.",
        "",
    ]
    kept = [KEEP]
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if KEEP in old:
            kept = [KEEP + old.split(KEEP, 1)[1].rstrip("\n")]
    with open(path, "w") as f:
        f.write("\n".join(head + body + NOTES + [""] + kept) + "\n")


if __name__ == "__main__":
    main()
