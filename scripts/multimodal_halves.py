"""The multimodal VAE's second set-up on digits: the image's top and bottom halves.

Each binarized 8x8 digit (1,497 train / 300 test, seed 0) is cut into two modalities,
``top`` (rows 0-3, 32 pixels) and ``bottom`` (rows 4-7), and ``MultimodalVAE`` is trained
with each fusion. Reports, on the test split:

- cross-modal coherence: each test image's bottom generated from its top (z ~ q(z | top),
  bottom ~ p(bottom | z)), the two halves put together, and the percentage the shipped
  digits classifier (``tfdgm.metrics``) labels as the true digit; the same from the
  bottom; beside it the classifier on the true test images;
- test NLL (nats per image) by importance sampling (1,000 samples, seed (0, 0)):
  -log p(top, bottom) (the whole image), -log p(bottom | top), -log p(top | bottom);

and draws, for 10 test images (one per digit), the image, then 4 completions of its
bottom from its top, to ``<out>/multimodal_halves.png``.

    python scripts/multimodal_halves.py --epochs 100 --out docs/img
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import tfdgm  # noqa: E402
from tfdgm import plotting  # noqa: E402

SAMPLES = 1000  # importance samples of every NLL
HIDDEN = (256, 128)
HALVES = {"top": ((32,), "binary"), "bottom": ((32,), "binary")}


def halves(x):
    return {"top": x[:, :32], "bottom": x[:, 32:]}


def _nll(log_p) -> float:
    return round(float(-np.mean(np.asarray(log_p))), 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--fusions", default="poe,moe,mopoe")
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args(argv)
    digits = tfdgm.data.load("digits")
    classifier = tfdgm.metrics.digits_classifier((8, 8))
    x_test, y_test = digits.x_test, digits.y_test
    test = halves(x_test)
    truth = float(np.mean(classifier.predict(x_test) == y_test))
    rows = {"classifier on the true test images": truth}
    shown = np.array([np.flatnonzero(y_test == d)[0] for d in range(10)])  # one test image a digit
    pictures = {}
    for fusion in args.fusions.split(","):
        keras.utils.set_random_seed(0)
        model = tfdgm.MultimodalVAE(HALVES, 8, fusion, hidden_units=HIDDEN, seed=0)
        model.compile_default()
        start = time.time()
        model.fit(halves(digits.x_train), epochs=args.epochs, batch_size=64, verbose=0)
        seconds = round(time.time() - start, 1)
        bottom = np.asarray(model.generate({"top": test["top"]}, "bottom", seed=(0, 3)))
        top = np.asarray(model.generate({"bottom": test["bottom"]}, "top", seed=(0, 4)))
        top_given = {"top": test["top"]}
        bottom_given = {"bottom": test["bottom"]}
        rows[fusion] = {
            "top_to_bottom_coherence": float(
                np.mean(classifier.predict(np.concatenate([test["top"], bottom], 1)) == y_test)
            ),
            "bottom_to_top_coherence": float(
                np.mean(classifier.predict(np.concatenate([top, test["bottom"]], 1)) == y_test)
            ),
            "nll_image": _nll(model.log_prob(test, num_samples=SAMPLES, seed=(0, 0))),
            "nll_bottom_given_top": _nll(
                model.log_prob(bottom_given, given=top_given, num_samples=SAMPLES, seed=(0, 0))
            ),
            "nll_top_given_bottom": _nll(
                model.log_prob(top_given, given=bottom_given, num_samples=SAMPLES, seed=(0, 0))
            ),
            "train_seconds": seconds,
        }
        print(fusion, rows[fusion], flush=True)
        tops = np.repeat(test["top"][shown], 4, 0)
        completions = np.asarray(model.generate({"top": tops}, "bottom", seed=(0, 5)))
        grid = np.concatenate(
            [x_test[shown][:, None], np.concatenate([tops, completions], 1).reshape(10, 4, 64)], 1
        )
        pictures[fusion] = grid.reshape(50, 64)
    os.makedirs(args.out, exist_ok=True)
    for fusion, grid in pictures.items():
        fig = plotting.image_grid(
            grid,
            (8, 8),
            ncols=5,
            vmin=0,
            vmax=1,
            title=f"{fusion}: a test digit, then 4 bottoms generated from its top",
        )
        plotting.save(fig, os.path.join(args.out, f"multimodal_halves_{fusion}.png"), dpi=80)
    result = {**vars(args), "load": open("/proc/loadavg").read().split()[:3], "rows": rows}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
