"""Where a DDPM's variational bound is spent: the reverse-step KLs L_t per step t, by ranges.

For each run folder of ``tfdgm train ddpm``, the terms of -ELBO on the test split (nats per
image, mean over the test images, one y_t ~ q(y_t | y_0) per t and image drawn exactly as
``DDPM.bound_terms(x, seed=(0, 0))`` draws them, so the ranges sum to its ``"diffusion"``):

    L_T = KL(q(y_T | y_0) || N(0, I))                              ("prior")
    L_t = KL(q(y_{t-1} | y_t, y_0) || p(y_{t-1} | y_t)),  t = 2..T  (per range of t)
    L_0 = -log p(x | y_1)                                          ("decoder")

and, per range, the mean squared error of yhat_0 per pixel (diffusion units) and the
per-step KL weight (SNR_{t-1} - SNR_t)/2 with which it enters L_t (for the small variance,
L_t = (SNR_{t-1} - SNR_t)/2 * ||y_0 - yhat_0||^2 exactly). For discrete data also L_t with
yhat_0 snapped to the nearest of the K levels ("snapped": what the same network would cost
if its yhat_0 were rounded), and with ``--snap`` the sum of L_t when it is snapped only
where sqrt(1 - abar_t) < 1/(K - 1) (noise below half the levels' spacing), to show what the
L_t of discrete data cost at small t.

    python scripts/diffusion_bound_terms.py RUN [RUN ...] [--n 300]
"""

from __future__ import annotations

import argparse
import json
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfdgm  # noqa: E402, F401  (registers every model)
from tfdgm import data  # noqa: E402
from tfdgm.models.diffusion import _normal  # noqa: E402

RANGES = ((2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, 300), (301, 1000))


def per_step(model, x, seed=(0, 0)):
    """[T + 1, batch] L_t (index t, t >= 2), the same with yhat_0 snapped to the nearest level
    (discrete data; else zeros), and [T + 1] the mean squared yhat_0 error per pixel, drawn
    as ``bound_terms`` draws them (one network evaluation per t)."""
    y0 = model.normalize(model._prepare(x))
    seed = model._seed(seed)
    rank, levels = len(model.event_shape), model.num_categories if model._levels else None

    @tf.function(autograph=False, reduce_retracing=True)
    def kl_at(t):
        y_t = model.forward_marginal(y0, t).sample(
            seed=tf.random.experimental.stateless_fold_in(seed, t)
        )
        y_hat, _ = model.predict(y_t, t)
        q = model.posterior(y_t, y0, t)
        std = model._reverse_std(t, t - 1)
        kl = q.kl_divergence(_normal(model.posterior(y_t, y_hat, t).mean(), std, rank))
        snapped = tf.zeros_like(kl)
        if levels:
            half = (levels - 1) / 2.0
            y_snap = tf.round((y_hat + 1.0) * half) / half - 1.0
            p = _normal(model.posterior(y_t, y_snap, t).mean(), std, rank)
            snapped = q.kl_divergence(p)
        error = tf.reduce_mean(tf.square(tf.reshape(y_hat - y0, [tf.shape(y0)[0], -1])))
        return kl, snapped, error

    T = model.num_timesteps
    kls, snapped, errors = np.zeros((T + 1, len(x))), np.zeros((T + 1, len(x))), np.zeros(T + 1)
    for t in range(2, T + 1):
        kl, snap, error = kl_at(tf.constant(t))
        kls[t], snapped[t], errors[t] = np.asarray(kl), np.asarray(snap), float(error)
    return kls, snapped, errors


def end_terms(model, x, seed=(0, 0)):
    """(L_T, L_0) ``[batch]`` drawn as ``bound_terms`` draws them (without its loop over t)."""
    y0, seed = model.normalize(model._prepare(x)), model._seed(seed)
    prior = model.forward_marginal(y0, model.num_timesteps).kl_divergence(model.prior())
    y1 = model.forward_marginal(y0, 1).sample(
        seed=tf.random.experimental.stateless_fold_in(seed, 1)
    )
    p = model.decoder(y1)
    if model._levels:
        return prior, -p.log_prob(x)
    return prior, -p.log_prob(y0) + model.event_size * math.log(model.scale)


def weights(model):
    """(SNR_{t-1} - SNR_t)/2 for t = 1..T (index t)."""
    log_ab = model.schedule.log_alpha_bar
    snr = np.exp(log_ab) / (-np.expm1(log_ab)).clip(1e-300)
    return np.concatenate([[0.0], (snr[:-1] - snr[1:]) / 2.0])


def report(run, n, snap):
    with open(os.path.join(run, "config.json")) as f:
        dataset = data.load(json.load(f)["dataset"])
    model = keras.saving.load_model(os.path.join(run, "model.keras"))
    x = dataset.x_test[:n]
    kls, snapped, errors = per_step(model, x)
    prior, decoder = end_terms(model, x)
    terms = {
        "prior": float(np.mean(prior)),
        "diffusion": float(kls[2:].mean(1).sum()),
        "decoder": float(np.mean(decoder)),
    }
    w = weights(model)
    out = {"terms": terms, "ranges": []}
    print(f"{run}: {dataset.name}, {len(x)} test images, T = {model.num_timesteps}, "
          f"{model.schedule.kind}, {model.prediction}")  # fmt: skip
    bound = sum(terms.values())
    print(f"  L_T (prior) {terms['prior']:.3f}, sum L_t (diffusion) {terms['diffusion']:.3f}, "
          f"L_0 (decoder) {terms['decoder']:.3f}, -bound {bound:.3f} nats")  # fmt: skip
    head = f"  {'t':>9} {'sum L_t':>9} {'share':>6} {'mse yhat_0':>11} {'weight':>10}"
    print(f"{head} {'snapped':>9}")
    total = kls[2:].mean(1).sum()
    for lo, hi in RANGES:
        if lo > model.num_timesteps:
            break
        hi = min(hi, model.num_timesteps)
        part = float(kls[lo : hi + 1].mean(1).sum())
        mse = float(errors[lo : hi + 1].mean())
        weight = float(w[lo : hi + 1].mean())
        snap_part = float(snapped[lo : hi + 1].mean(1).sum())
        out["ranges"].append(
            {"t": [lo, hi], "kl": part, "mse": mse, "weight": weight, "snapped": snap_part}
        )
        print(f"  {lo:>4}-{hi:<4} {part:>9.3f} {part / total:>6.1%} {mse:>11.2e} {weight:>10.3g} "
              f"{snap_part:>9.3f}")  # fmt: skip
    if snap and model._levels:
        small = np.sqrt(-np.expm1(model.schedule.log_alpha_bar)) < 1.0 / (model.num_categories - 1)
        mixed = np.where(small[:, None], snapped, kls)
        out["snapped"] = float(mixed[2:].mean(1).sum())
        last = int(np.flatnonzero(small).max())
        print(f"  sum L_t with yhat_0 snapped to the nearest level where sqrt(1 - abar_t) < "
              f"1/(K - 1) (t <= {last}): {out['snapped']:.3f}")  # fmt: skip
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--n", type=int, default=300, help="test images")
    parser.add_argument("--snap", action="store_true", help="also the snapped oracle (discrete)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    results = {run: report(run, args.n, args.snap) for run in args.runs}
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
