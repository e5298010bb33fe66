"""Label -> image pictures of a multimodal VAE on digits, and how varied they are.

Trains ``MultimodalVAE`` on the image + label of the binarized digits (as
``scripts/conditional_multimodal.py`` does: MLPs 256-128, batch 64, Adam 1e-3, seed before
building), generates 100 images per label (z ~ q(z | label), seed (0, 3)), writes a grid of
10 per digit to ``<out>/multimodal_<fusion>_label_to_image.png``, and prints

- coherence: the fraction the shipped digits classifier reads as the asked digit;
- spread: the mean over digits of the per-pixel standard deviation of the decoder means
  E[image | z] of that digit's 100 draws, beside the same for the model's reconstructions
  of the test images of that digit (z the mean of q(z | image)): 0 would be one image per
  digit whatever the noise; the reconstructions' spread is what the model shows of the
  test digits' variety.

    python scripts/multimodal_label_grid.py --fusion poe --latent-dim 4 --label-weight 50
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import tfdgm  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fusion", default="poe")
    parser.add_argument("--latent-dim", type=int, default=8)
    parser.add_argument("--label-weight", type=float, default=50.0)
    parser.add_argument("--kl-warmup-epochs", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/img")
    args = parser.parse_args(argv)

    both = tfdgm.data.load("digits-multimodal")
    keras.utils.set_random_seed(args.seed)
    model = tfdgm.MultimodalVAE(
        both.events,
        latent_dim=args.latent_dim,
        fusion=args.fusion,
        hidden_units=(256, 128),
        likelihood_weights={"label": args.label_weight},
        kl_warmup=args.kl_warmup_epochs * 24,
        seed=args.seed,
    )
    model.compile_default()
    model.fit(both.x_train, epochs=args.epochs, batch_size=64, shuffle=True, verbose=0)

    asked = np.repeat(np.arange(10), 100)
    z = model.encode({"label": asked.astype("float32")}).sample(seed=(0, 3))
    means = np.asarray(model.decode(z, "image").mean()).reshape(10, 100, -1)
    images = np.asarray(model.generate({"label": asked.astype("float32")}, "image", seed=(0, 3)))
    read = tfdgm.metrics.digits_classifier((8, 8)).predict(images)
    test, labels = both.x_test["image"], both.y_test
    recon = np.asarray(model.decode(model.encode({"image": test}).mean(), "image").mean())
    spread = float(np.mean([means[c].std(0).mean() for c in range(10)]))
    data_spread = float(np.mean([recon[labels == c].std(0).mean() for c in range(10)]))
    grid = images.reshape(10, 100, -1)[:, :10].reshape(100, -1)
    name = f"multimodal_{args.fusion}_label_to_image.png"
    title = f"{args.fusion}, latent {args.latent_dim}: images from labels, a row per digit"
    fig = tfdgm.plotting.image_grid(grid, (8, 8), ncols=10, vmin=0, vmax=1, title=title)
    os.makedirs(args.out, exist_ok=True)
    fig.savefig(os.path.join(args.out, name), dpi=80)
    load = open("/proc/loadavg").read().split()[:3]
    print(
        f"{vars(args)}: coherence {100 * np.mean(read == asked):.1f} %, spread of the decoder "
        f"means {spread:.3f} (reconstructed test images of a digit: {data_spread:.3f}); "
        f"load {load}"
    )


if __name__ == "__main__":
    main()
