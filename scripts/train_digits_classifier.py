"""Train the small digits classifier whose features tfdgm.metrics uses for FD and KID.

A multi-layer perceptron 64 -> 128 -> 64 -> 10 (ReLU) on scikit-learn's 8x8 digits, trained on
the train split of ``tfdgm.data.load_digits`` in both of its [0, 1] forms the models produce:
dequantized ("continuous", (x + u) / 17) and binarized (x > 8). The 64 ReLU units of the
penultimate layer are the feature space of the Frechet distance and the kernel inception
distance. The weights are written as NumPy arrays to ``tfdgm/assets/digits_classifier.npz``
together with the test accuracies, so the metrics work offline without Keras files.

Usage::

    python scripts/train_digits_classifier.py            # rewrites the asset
    python scripts/train_digits_classifier.py --out /tmp/c.npz
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits as sklearn_digits  # noqa: E402

from tfdgm import data  # noqa: E402

ASSET = Path(__file__).resolve().parents[1] / "tfdgm" / "assets" / "digits_classifier.npz"


def labelled_digits():
    """(x_train, y_train, x_test, {kind: (x, y)}) with the split of ``tfdgm.data.load_digits``."""
    labels = sklearn_digits().target
    perm = np.random.default_rng(0).permutation(len(labels))
    y_train, y_test = labels[perm[:1497]], labels[perm[1497:]]
    continuous, binary = data.load_digits("continuous"), data.load_digits("binary")
    x_train = np.concatenate([continuous.x_train, binary.x_train])
    y_train2 = np.concatenate([y_train, y_train])
    tests = {"continuous": (continuous.x_test, y_test), "binary": (binary.x_test, y_test)}
    return x_train, y_train2, tests


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSET)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    x_train, y_train, tests = labelled_digits()
    inputs = keras.Input((64,))
    h1 = keras.layers.Dense(128, activation="relu")(inputs)
    h2 = keras.layers.Dense(64, activation="relu")(h1)
    outputs = keras.layers.Dense(10)(keras.layers.Dropout(0.2)(h2))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
    accuracy = {kind: float(model.evaluate(x, y, verbose=0)[1]) for kind, (x, y) in tests.items()}
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    weights = {}
    for i, layer in enumerate(dense):
        kernel, bias = layer.get_weights()
        weights[f"kernel_{i}"] = kernel.astype(np.float32)
        weights[f"bias_{i}"] = bias.astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        **weights,
        test_accuracy_continuous=accuracy["continuous"],
        test_accuracy_binary=accuracy["binary"],
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")
    for kind, value in accuracy.items():
        print(f"test accuracy ({kind} digits, 300 images): {value:.4f}")


if __name__ == "__main__":
    main()
