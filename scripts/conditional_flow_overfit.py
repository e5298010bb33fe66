"""Held-out log p(x | y) of a conditional flow on digits, every 5 epochs: overfitting or a bug?

Trains ``realnvp`` (8 couplings 128-128) or ``maf`` (5 layers 128-128) on
``digits-continuous`` (seed 0, batch 64, Adam 1e-3, the settings of
``scripts/conditional_coherence.py``), conditional (``num_classes=10``, ``fit(x, y)``) or
not, for 40 epochs, and prints every 5 epochs the mean, median and minimum test log p(x | y)
(nats per image), the train mean and median (first 300 images) and, for the conditional
flow, the test log p under a wrong label (y + 1 mod 10) and the fraction of test images
scored higher under their own label.

    python scripts/conditional_flow_overfit.py realnvp cond
    python scripts/conditional_flow_overfit.py realnvp uncond
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfdgm  # noqa: E402, F401  (registers every model)
from tfdgm import data, registry  # noqa: E402

HPARAMS = {
    "realnvp": dict(num_layers=8, hidden_units=(128, 128)),
    "maf": dict(num_layers=5, hidden_units=(128, 128)),
}


def main(family: str, conditional: bool):
    ds = data.load("digits-continuous")
    keras.utils.set_random_seed(0)
    extra = dict(num_classes=10) if conditional else {}
    model = registry.get(family).build(ds, seed=0, **HPARAMS[family], **extra)
    model.compile_default(learning_rate=1e-3)
    args = (ds.x_train, ds.y_train) if conditional else (ds.x_train,)
    for epoch in range(5, 45, 5):
        model.fit(*args, epochs=5, batch_size=64, verbose=0)
        test = dict(labels=ds.y_test) if conditional else {}
        train = dict(labels=ds.y_train[:300]) if conditional else {}
        lt = np.asarray(model.log_prob(ds.x_test, **test))
        ltr = np.asarray(model.log_prob(ds.x_train[:300], **train))
        line = (
            f"{family} {'cond' if conditional else 'uncond'} epoch {epoch}: test mean "
            f"{lt.mean():.2f} median {np.median(lt):.2f} min {lt.min():.1f}; train mean "
            f"{ltr.mean():.2f} median {np.median(ltr):.2f}"
        )
        if conditional:
            lw = np.asarray(model.log_prob(ds.x_test, labels=(ds.y_test + 1) % 10))
            line += (
                f"; wrong-label test mean {lw.mean():.2f} median {np.median(lw):.2f}"
                f" frac(right > wrong) {np.mean(lt > lw):.3f}"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] == "cond")
