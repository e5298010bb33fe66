"""The measured table of docs/conditional.md: conditional and multimodal VAEs on digits.

Trains, on the binarized 8x8 digits (1,497 train / 300 test, seed 0), a plain VAE, the
conditional VAE (``VAE(num_classes=10)``) and ``MultimodalVAE`` with each fusion on the
image + label modalities, and fits scikit-learn's logistic regression on the same
pixels (and on the plain VAE's posterior means). Reports

- image -> label accuracy on the test split;
- label -> image coherence: of 1,000 images generated from labels (100 per digit), the
  percentage the shipped digits classifier (``tfdgm.metrics``) labels as the asked digit;
- joint coherence: of 1,000 joint samples, the percentage whose image the classifier
  labels as the sampled label;
- test NLL (nats) of the image alone, -log p(image), and given its label,
  -log p(image | label), by importance sampling (1,000 samples, seed (0, 0)).

    python scripts/conditional_multimodal.py --epochs 100 --out results.json

``--label-weight 50`` trains the multimodal models with the label's log-likelihood
weighted by 50 (``likelihood_weights={"label": 50}``, MVAE's weighting); ``--num-subsets``
adds PoE's random subsets; ``--kl-warmup-epochs E`` anneals the KL weight from 0 to 1 over
the first E epochs (``kl_warmup=E * 24`` updates, 24 batches an epoch);
``--importance-samples k`` trains MoE on its stratified IWAE_k; ``--seed s`` seeds the
multimodal models' initialization and training (default 0); ``--no-baselines`` skips the
logistic regressions and VAEs.

Semi-supervised: ``--labelled-fraction f`` keeps the label of a random fraction f of the
training images (``numpy.random.default_rng(--label-seed)``, default seed 0) and masks
the rest (``"mask"`` column 0 for the label); every image is kept. The baselines are then
the logistic regression on the labelled images' pixels and on the plain VAE's posterior
means (the VAE trained on every image, the regression on the labelled ones); the
conditional VAE is skipped (it needs every label).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import tfdgm  # noqa: E402
from tfdgm.models.multimodal import coherence  # noqa: E402

SAMPLES = 1000  # importance samples of every NLL
HIDDEN = (256, 128)


STEPS_PER_EPOCH = 24  # ceil(1497 / 64)


def _labelled(args, n: int) -> np.ndarray:
    """Indices of the training images whose label is kept."""
    rng = np.random.default_rng(args.label_seed)
    return np.sort(rng.permutation(n)[: int(round(args.labelled_fraction * n))])


def _fit(model, x, y=None, epochs=100, seed=0):
    keras.utils.set_random_seed(seed)
    model.compile_default()
    start = time.time()
    args = (x,) if y is None else (x, y)
    model.fit(*args, epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    return round(time.time() - start, 1)


def _nll(log_p) -> float:
    return round(float(-np.mean(np.asarray(log_p))), 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--fusions", default="poe,moe,mopoe")
    parser.add_argument("--label-weight", type=float, default=1.0)
    parser.add_argument("--num-subsets", type=int, default=0)
    parser.add_argument("--kl-warmup-epochs", type=int, default=0)
    parser.add_argument("--importance-samples", type=int, default=1)
    parser.add_argument("--labelled-fraction", type=float, default=1.0)
    parser.add_argument("--label-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="training seed (not the split's)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--out", default="conditional_multimodal.json")
    args = parser.parse_args(argv)

    digits = tfdgm.data.load("digits")
    both = tfdgm.data.load("digits-multimodal")
    x, y, x_test, y_test = digits.x_train, digits.y_train, digits.x_test, digits.y_test
    classifier = tfdgm.metrics.digits_classifier((8, 8))
    rows = {}
    keep = _labelled(args, len(y))
    train = dict(both.x_train)
    if args.labelled_fraction < 1:
        mask = np.ones((len(y), 2), np.float32)  # columns: image, label
        mask[:, 1] = 0.0
        mask[keep, 1] = 1.0
        train["mask"] = mask
    print(f"{len(keep)} of {len(y)} training labels kept", flush=True)

    if not args.no_baselines:
        _baselines(args, rows, x, y, x_test, y_test, classifier, keep)

    for fusion in filter(None, args.fusions.split(",")):  # --fusions "": the baselines only
        extra = dict(num_subsets=args.num_subsets) if fusion == "poe" else {}
        if fusion == "moe":
            extra = dict(num_importance_samples=args.importance_samples)
        keras.utils.set_random_seed(args.seed)  # the initial weights too, whatever ran before
        model = tfdgm.MultimodalVAE(
            both.events,
            latent_dim=args.latent_dim,
            fusion=fusion,
            hidden_units=HIDDEN,
            likelihood_weights={"label": args.label_weight},
            kl_warmup=args.kl_warmup_epochs * STEPS_PER_EPOCH,
            seed=args.seed,
            **extra,
        )
        seconds = _fit(model, train, epochs=args.epochs, seed=args.seed)
        image, label = {"image": x_test}, {"label": y_test.astype("float32")}
        rows[f"MultimodalVAE {fusion}"] = {
            **coherence(model, both),
            "nll_image": _nll(model.log_prob(image, num_samples=SAMPLES, seed=(0, 0))),
            "nll_image_given_label": _nll(
                model.log_prob(image, given=label, num_samples=SAMPLES, seed=(0, 0))
            ),
            "train_seconds": seconds,
        }
        print(fusion, rows[f"MultimodalVAE {fusion}"], flush=True)

    result = {**vars(args), "load": open("/proc/loadavg").read().split()[:3], "rows": rows}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


def _baselines(args, rows, x, y, x_test, y_test, classifier, keep):
    """Logistic regression on the (labelled) pixels, a plain VAE and the conditional VAE."""
    logistic = LogisticRegression(max_iter=2000).fit(x[keep], y[keep])
    rows["logistic regression (pixels)"] = {
        "image_to_label_accuracy": logistic.score(x_test, y_test)
    }

    keras.utils.set_random_seed(0)  # the initial weights too, whatever ran before
    vae = tfdgm.VAE((64,), latent_dim=args.latent_dim, hidden_units=HIDDEN, seed=0)
    seconds = _fit(vae, x, epochs=args.epochs)
    z, z_test = (np.asarray(vae.posterior_location(a)) for a in (x, x_test))
    rows["VAE"] = {
        "image_to_label_accuracy": LogisticRegression(max_iter=2000)
        .fit(z[keep], y[keep])
        .score(z_test, y_test),
        "nll_image": _nll(vae.log_prob(x_test, num_samples=SAMPLES, seed=(0, 0))),
        "train_seconds": seconds,
    }
    if len(keep) < len(y):
        return
    keras.utils.set_random_seed(0)
    cvae = tfdgm.VAE((64,), latent_dim=args.latent_dim, hidden_units=HIDDEN, num_classes=10, seed=0)
    seconds = _fit(cvae, x, y, epochs=args.epochs)
    asked = np.arange(1000) % 10
    images = np.asarray(cvae.sample(1000, seed=(0, 3), labels=asked))
    rows["conditional VAE"] = {
        "label_to_image_coherence": float(np.mean(classifier.predict(images) == asked)),
        "nll_image_given_label": _nll(
            cvae.log_prob(x_test, num_samples=SAMPLES, seed=(0, 0), labels=y_test)
        ),
        "train_seconds": seconds,
    }


if __name__ == "__main__":
    main()
