"""``steps_per_execution`` and XLA for the VAE at one batch size: the hand loop, ``fit``
with 1 and with 10 steps per call, with and without XLA, timed inside training runs in
round-robin rounds (see ``_timing``).

    python -m benchmarks.bench_steps [--batch 128] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from benchmarks import _timing  # noqa: E402
from benchmarks import suite_vae as vae  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    x, batch = vae.make_data(max(8 * args.batch, 4096)), args.batch
    sessions = {
        "hand loop": vae.hand_loop(x, batch),
        "fit, steps_per_execution=1": vae.library(x, batch, steps_per_execution=1),
        "fit, steps_per_execution=10": vae.library(x, batch, steps_per_execution=10),
        "fit, steps_per_execution=1 + XLA": vae.library(x, batch, True, 1),
        "fit, steps_per_execution=10 + XLA": vae.library(x, batch, True, 10),
    }
    times = _timing.round_robin(sessions, max(10, 4096 // batch), args.rounds)
    base = _timing.summary(times["hand loop"])[0]
    print(f"VAE batch {batch}, {args.rounds} rounds, load average {_timing.load()}")
    for name, values in times.items():
        median, low, high = _timing.summary(values)
        spread = f"{median * 1e3:.2f} [{low * 1e3:.2f}-{high * 1e3:.2f}]"
        print(f"| {name} | {spread} | {base / median:.2f} |")


if __name__ == "__main__":
    main()
