"""Sample quality of trained runs on 8x8 digits, with the spread over sampling seeds.

For each run folder of ``tfdgm train MODEL`` on digits-continuous (a DDPM, or any model
with ``sample(n, seed=...)``: WGAN-GP, GAN, ...), draws as many samples as the test split
has (300) -- a DDPM with DDIM (eta = 0) at ``--steps`` steps, any other model with its own
``sample`` -- for the sampling seeds
(0, 0) (the seed of ``metrics.json`` and ``benchmarks/bench_diffusion.py --run``), (1, 0),
..., (k - 1, 0), and prints FD and KID (``tfdgm.metrics.sample_quality``: the shipped
digits classifier's features, against the 300 test digits) of each seed, their mean and
standard deviation over seeds, and the class proportions the shipped classifier assigns to
the seed-(0, 0) samples beside the test split's (a model that draws the digits in the
wrong proportions pays in KID). The train-vs-test reference is printed once, with the same
spread over 300-image subsets of the train split (``--seeds`` random subsets).

    python scripts/diffusion_quality.py RUN [RUN ...] [--steps 50] [--seeds 5] [--json OUT]

A RUN still training (no ``model.keras`` yet) is read from its ``backup.npz``, the state after
its last finished epoch (the model's weights, EMA included), which gives a learning curve.
``--raw`` samples with the trained weights instead of their EMA (what the EMA is worth).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfdgm  # noqa: E402, F401  (registers every model)
from tfdgm import data, metrics  # noqa: E402
from tfdgm.models.diffusion import DDPM  # noqa: E402


def _classes(classifier, x) -> np.ndarray:
    return np.bincount(classifier.predict(np.asarray(x)), minlength=10) / len(x)


def reference(dataset, seeds: int) -> dict:
    """FD/KID of 300 train digits against the test split: the first subset is the one of
    ``sample_quality(reference=True)``, the others further random subsets."""
    n, fds, kids = len(dataset.x_test), [], []
    first = metrics.sample_quality(dataset.x_train[:n], dataset, reference=True)
    fds.append(first["fd_reference"])
    kids.append(first["kid_reference"])
    for k in range(1, seeds):
        subset = np.random.default_rng(k).permutation(len(dataset.x_train))[:n]
        quality = metrics.sample_quality(dataset.x_train[subset], dataset)
        fds.append(quality["fd"])
        kids.append(quality["kid"])
    return {"fd": fds, "kid": kids}


def load(run: str, dataset):
    """(the run's model, epochs trained): ``model.keras``, or a DDPM's weights in
    ``backup.npz``."""
    if os.path.exists(os.path.join(run, "model.keras")):
        with open(os.path.join(run, "metrics.json")) as f:
            epochs = json.load(f).get("epochs")
        return keras.saving.load_model(os.path.join(run, "model.keras")), epochs
    with open(os.path.join(run, "config.json")) as f:
        hparams = json.load(f)["hparams"]
    ddpm = DDPM.for_dataset(dataset, **hparams)
    with np.load(os.path.join(run, "backup.npz")) as archive:
        stored = json.loads(str(archive["state"]))
        arrays = {path: archive[f"v{i}"] for i, path in enumerate(stored["paths"])}
    for variable in ddpm.weights:
        variable.assign(arrays[variable.path])
    return ddpm, stored["epoch"]


def evaluate(run: str, dataset, steps: int, seeds: int, classifier, raw=False) -> dict:
    model, epochs = load(run, dataset)
    diffusion = isinstance(model, DDPM)
    if raw and diffusion:  # sample with the trained weights: copy them over their EMA
        for ema, weight in zip(model.ema_weights, model.denoiser.trainable_variables):
            ema.assign(weight)
    ddim = dict(num_steps=steps, sampler="ddim", eta=0.0) if diffusion else {}
    n, fds, kids = len(dataset.x_test), [], []
    for k in range(seeds):
        samples = np.asarray(model.sample(n, seed=(k, 0), **ddim))
        quality = metrics.sample_quality(samples, dataset)
        fds.append(quality["fd"])
        kids.append(quality["kid"])
        if k == 0:
            classes = _classes(classifier, samples)
    return {"fd": fds, "kid": kids, "classes": classes.tolist(), "epochs": epochs,
            "sampler": f"DDIM {steps}" if diffusion else "sample"}  # fmt: skip


def _line(name, result):
    fd, kid = np.asarray(result["fd"]), np.asarray(result["kid"])
    spread = (
        f"  mean over {len(fd)} seeds FD {fd.mean():.2f} +- {fd.std(ddof=1):.2f}"
        if len(fd) > 1
        else ""
    )
    kid_spread = f", KID {kid.mean():.3f} +- {kid.std(ddof=1):.3f}" if len(kid) > 1 else ""
    return f"{name:<44} FD {fd[0]:6.2f} KID {kid[0]:6.3f}{spread}{kid_spread}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--raw", action="store_true", help="the trained weights, not the EMA")
    args = parser.parse_args()
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    dataset = data.load("digits-continuous")
    classifier = metrics.digits_classifier((8, 8))
    results = {"reference": reference(dataset, args.seeds)}
    results["reference"]["classes"] = _classes(classifier, dataset.x_test).tolist()
    print(_line("reference (train vs test)", results["reference"]), flush=True)
    for run in args.runs:
        results[run] = evaluate(run, dataset, args.steps, args.seeds, classifier, args.raw)
        name = (
            f"{os.path.basename(run.rstrip('/'))} ({results[run]['epochs']} ep.), "
            f"{results[run]['sampler']}"
        )
        print(_line(name, results[run]))
        print("  classes (seed 0):", " ".join(f"{p:.3f}" for p in results[run]["classes"]),
              flush=True)  # fmt: skip
    print("  classes (test):  ", " ".join(f"{p:.3f}" for p in results["reference"]["classes"]))
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
