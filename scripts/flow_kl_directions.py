"""Forward against reverse KL: a RealNVP fitted to a two-mode 2-D target both ways.

The target is p = 1/2 N((-1.5, 0), 0.5^2 I) + 1/2 N((3, 2.5), 0.5^2 I) (one mode near the
untrained flow's N(0, I), one far from it), given to the reverse-KL
fit only as the unnormalized log density log p~ = log p + log Z (log Z = 3, unknown to the
model), and to the forward-KL fit only as samples.

- forward KL (maximum likelihood): ``RealNVP(...).fit(samples)`` minimizes KL(p || q);
  it is mode-covering (q must put mass wherever p has some).
- reverse KL: ``RealNVP(..., target_log_prob=log_p_tilde).fit(flow.target_batches(...))``
  minimizes KL(q || p) - log Z on the flow's own samples; it is mode-seeking (q is
  penalized wherever it puts mass that p does not have, not for missing a mode).

Prints both KLs of both fits (Monte Carlo, 20,000 samples) and the mass each fit puts near
the far mode (x_1 > 1; the target's is 0.5), and writes
``docs/img/flows_forward_vs_reverse_kl.png``.

Usage::

    nice -n 5 python scripts/flow_kl_directions.py [--steps 1500] [--seed 0] [--out docs/img]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from tfdgm import RealNVP  # noqa: E402

tfd = tfp.distributions
LOG_Z = 3.0
FLOW = dict(num_layers=6, hidden_units=(64, 64))


def target() -> tfd.Distribution:
    return tfd.MixtureSameFamily(
        tfd.Categorical(probs=[0.5, 0.5]),
        tfd.MultivariateNormalDiag([[-1.5, 0.0], [3.0, 2.5]], [[0.5, 0.5], [0.5, 0.5]]),
    )


def kls(model, p, n=20000):
    """KL(p || q) on target samples and KL(q || p) on model samples, and q's far mass."""
    xp = p.sample(n, seed=(7, 7))
    xq = model.sample(n, seed=(8, 8))
    forward = float(np.mean(p.log_prob(xp) - model.log_prob(xp)))
    reverse = float(np.mean(model.log_prob(xq) - p.log_prob(xq)))
    return forward, reverse, float(np.mean(xq.numpy()[:, 0] > 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="gradient steps of each fit")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args()
    p = target()
    steps, batch = args.steps, args.batch_size

    keras.utils.set_random_seed(args.seed)
    start = time.time()
    forward_fit = RealNVP((2,), seed=args.seed, **FLOW)
    forward_fit.compile_default(learning_rate=1e-3)
    data = p.sample(10 * batch, seed=(args.seed, 1)).numpy()  # 10 batches per epoch
    forward_fit.fit(data, batch_size=batch, epochs=max(1, steps // 10), verbose=0)
    forward_seconds = time.time() - start

    keras.utils.set_random_seed(args.seed)
    start = time.time()
    reverse_fit = RealNVP(
        (2,), seed=args.seed, target_log_prob=lambda x: p.log_prob(x) + LOG_Z, **FLOW
    )
    reverse_fit.compile_default(learning_rate=1e-3)
    history = reverse_fit.fit(reverse_fit.target_batches(steps, batch), verbose=0)
    reverse_seconds = time.time() - start

    print(f"load {open('/proc/loadavg').read().split()[:3]}")
    print("fit | KL(p||q) | KL(q||p) | mass x1>1 | seconds")
    for name, model, secs in [
        ("forward KL (maximum likelihood)", forward_fit, forward_seconds),
        ("reverse KL (target_log_prob)", reverse_fit, reverse_seconds),
    ]:
        forward, reverse, right = kls(model, p)
        print(f"{name} | {forward:.3f} | {reverse:.3f} | {right:.3f} | {secs:.0f}")
    final = history.history["loss"][-1]
    print(f"last reverse-KL epoch loss {final:.3f} (KL(q||p) - log Z, log Z = {LOG_Z})")

    axis = np.linspace(-4.0, 5.5, 191).astype("float32")
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), sharex=True, sharey=True)
    panels = [
        ("target p", p.log_prob(grid).numpy()),
        (
            "forward KL: min KL(p || q)\n(maximum likelihood, mode-covering)",
            forward_fit.log_prob(grid).numpy(),
        ),
        (
            "reverse KL: min KL(q || p)\n(target_log_prob, mode-seeking)",
            reverse_fit.log_prob(grid).numpy(),
        ),
    ]
    for ax, (title, log_density) in zip(axes, panels):
        ax.imshow(
            np.exp(log_density).reshape(len(axis), len(axis)),
            origin="lower",
            extent=[axis[0], axis[-1], axis[0], axis[-1]],
            cmap="viridis",
        )
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "flows_forward_vs_reverse_kl.png")
    fig.savefig(path, dpi=90)
    print("wrote", path)


if __name__ == "__main__":
    main()
