"""Train the small digits classifiers whose features tfdgm.metrics uses for FD and KID.

Multi-layer perceptrons with two ReLU hidden layers (128 and 64 units) and 10 logits, trained
on the train split only, in every [0, 1] form the models produce, and evaluated in NumPy with
the stored weights (what ``tfdgm.metrics.DigitsClassifier`` computes):

- ``--dataset digits``: scikit-learn's 8x8 digits (``tfdgm.data.load_digits``), 64 inputs,
  dequantized ("continuous", (x + u) / 17) and binarized (x > 8); 200 epochs. Test accuracy
  on the 300 test images: 99.3% dequantized, 96.3% binarized.
- ``--dataset mnist5k``: MNIST-5k 28x28 (``tfdgm.data.load_mnist5k``, 4,000 train images),
  784 inputs, dequantized ((x + u) / 256), binarized (x > 127) and stochastically binarized
  (one Bernoulli(x / 255) draw), with random shifts of up to 2 pixels; 60 epochs; weights
  stored as float16 (under 250 KB). Test accuracy on the 1,000 test images: 97.8%
  dequantized, 97.4% binarized, 97.0% stochastic.

The 64 ReLU units of the penultimate layer are the feature space of the Frechet distance and
the kernel inception distance. The weights are written as NumPy arrays to
``tfdgm/assets/<dataset>_classifier.npz`` (``digits_classifier.npz`` for 8x8) with the test
accuracies, so the metrics work offline without Keras files.

Usage::

    python scripts/train_digits_classifier.py                    # rewrites the 8x8 asset
    python scripts/train_digits_classifier.py --dataset mnist5k  # the 28x28 one
    python scripts/train_digits_classifier.py --out /tmp/c.npz
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfdgm import data, metrics  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "tfdgm" / "assets"
#: Per dataset: loader, input forms, epochs, largest shift (pixels), stored float dtype.
SETTINGS = {
    "digits": (data.load_digits, ("continuous", "binary"), 200, 0, np.float32),
    "mnist5k": (data.load_mnist5k, ("continuous", "binary", "stochastic"), 60, 2, np.float16),
}


def labelled(dataset: str):
    """(x_train, y_train, {kind: (x_test, y_test)}): every form's train split, stacked."""
    load, kinds, *_ = SETTINGS[dataset]
    sets = {kind: load(kind) for kind in kinds}
    x_train = np.concatenate([sets[kind].x_train for kind in kinds])
    y_train = np.concatenate([sets[kind].y_train for kind in kinds])
    return x_train, y_train, {kind: (sets[kind].x_test, sets[kind].y_test) for kind in kinds}


def classifier(size: int, shift: int) -> keras.Model:
    """size -> [random shift] -> 128 -> 64 -> dropout 0.2 -> 10 logits."""
    inputs = keras.Input((size,))
    h = inputs
    if shift:  # active only in training
        side = int(round(size**0.5))
        h = keras.layers.Reshape((side, side, 1))(h)
        h = keras.layers.RandomTranslation(shift / side, shift / side, fill_mode="constant")(h)
        h = keras.layers.Flatten()(h)
    h1 = keras.layers.Dense(128, activation="relu")(h)
    h2 = keras.layers.Dense(64, activation="relu")(h1)
    outputs = keras.layers.Dense(10)(keras.layers.Dropout(0.2)(h2))
    return keras.Model(inputs, outputs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(SETTINGS), default="digits")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    _, _, epochs, shift, dtype = SETTINGS[args.dataset]
    stem = "digits" if args.dataset == "digits" else args.dataset
    out = args.out or ASSETS / f"{stem}_classifier.npz"

    keras.utils.set_random_seed(0)
    x_train, y_train, tests = labelled(args.dataset)
    model = classifier(x_train.shape[1], shift)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs or epochs, verbose=0)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    weights = {}
    for i, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        weights[f"kernel_{i}"], weights[f"bias_{i}"] = kernel.astype(dtype), bias.astype(dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **weights)
    stored = metrics.DigitsClassifier(out)  # the accuracy of the weights as stored
    accuracy = {kind: float(np.mean(stored.predict(x) == y)) for kind, (x, y) in tests.items()}
    np.savez_compressed(out, **weights, **{f"test_accuracy_{k}": v for k, v in accuracy.items()})
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")
    for kind, value in accuracy.items():
        print(f"test accuracy ({kind}, {len(tests[kind][1])} images): {value:.4f}")


if __name__ == "__main__":
    main()
