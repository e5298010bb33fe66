"""Datasets as NumPy arrays and `tf.data` pipelines: digits, MNIST, 2-D toy densities.

Every dataset is a `Dataset` of float32 arrays with a declared `support`:
"binary" (values in {0, 1}), "categorical" (integer levels 0..K-1 stored as float32)
or "real". Nothing here ever downloads: MNIST is read from a local file or the Keras cache.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf

SUPPORTS = ("binary", "categorical", "real")
KINDS = ("binary", "categorical", "continuous")
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
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    support: str
    num_categories: int | None
    image_shape: tuple | None
    description: str

    def __post_init__(self):
        if self.support not in SUPPORTS:
            raise ValueError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        for field in ("x_train", "x_test"):
            object.__setattr__(self, field, np.asarray(getattr(self, field), np.float32))

    @property
    def event_shape(self) -> tuple:
        """Shape of one example: `x_train.shape[1:]`."""
        return tuple(self.x_train.shape[1:])

    def pipeline(
        self, split: str = "train", batch_size: int = 128, shuffle: bool = True, seed: int = 0
    ) -> tf.data.Dataset:
        """Batches of one split as a `tf.data.Dataset` of float32 tensors.

        Args:
            split: "train" or "test".
            batch_size: examples per batch (the last batch may be smaller).
            shuffle: shuffle over the whole split (reshuffled every epoch) with `seed`.
            seed: shuffle seed.

        Returns:
            A prefetched dataset of (batch, *event_shape) float32 tensors.
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        x = self.x_train if split == "train" else self.x_test
        ds = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _quantized(
    name: str, train: np.ndarray, test: np.ndarray, levels: int, kind: str, image_shape, info: str
) -> Dataset:
    """Dataset from integer images with levels 0..levels-1, as binary, categorical or continuous.

    binary: x > (levels - 1) // 2; categorical: the levels; continuous: (x + u) / levels with
    u ~ U[0.001, 0.999) from `np.random.default_rng(1)` (train drawn first, then test).
    """
    if kind == "binary":
        t = (levels - 1) // 2
        train, test, support, k, how = train > t, test > t, "binary", 2, f"binarized as x > {t}"
    elif kind == "categorical":
        support, k, how = "categorical", levels, f"{levels} integer levels 0..{levels - 1}"
    elif kind == "continuous":
        rng = np.random.default_rng(1)
        train, test = ((a + rng.uniform(_EDGE, 1 - _EDGE, a.shape)) / levels for a in (train, test))
        support, k, how = "real", None, f"dequantized to [0, 1) as (x + u) / {levels}"
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = name if kind == "binary" else f"{name}-{kind}"
    return Dataset(name, train, test, support, k, image_shape, f"{info}, {how}")


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

    images = sklearn_digits().images  # (1797, 8, 8), float64 levels 0..16
    perm = np.random.default_rng(0).permutation(len(images))
    x = images.reshape(len(images), -1) if flatten else images[..., None]
    train, test = x[perm[:1497]], x[perm[1497:]]
    return _quantized("digits", train, test, 17, kind, (8, 8), "scikit-learn digits 8x8")


def _keras_datasets_dirs() -> list[Path]:
    """Where Keras caches datasets: `$KERAS_HOME/datasets`, else `~/.keras/datasets`."""
    if "KERAS_HOME" in os.environ:
        base = Path(os.environ["KERAS_HOME"])
    else:
        home = Path.home() if os.access(Path.home(), os.W_OK) else Path("/tmp")
        base = home / ".keras"
    dirs = [base / "datasets"]
    # Keras falls back to /tmp/.keras when the cache dir is not writable.
    if not os.access(base, os.W_OK):
        dirs.append(Path("/tmp/.keras/datasets"))
    return dirs


def _read_idx(path: Path) -> np.ndarray:
    """A uint8 array from an IDX file (gzipped or not): magic 0x0000080N, then N big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(np.frombuffer(data, ">u4", count=ndim, offset=4).astype(int))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


_IDX_IMAGES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def _read_images(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x_train, x_test) uint8 images from a Keras-format .npz or a directory of IDX gz files."""
    if source.is_dir():
        return tuple(_read_idx(source / f) for f in _IDX_IMAGES)
    with np.load(source, allow_pickle=False) as f:
        return f["x_train"], f["x_test"]


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
        candidates = [d / entry for d in _keras_datasets_dirs()]
    found = [c for c in candidates if c.is_file() or all((c / f).is_file() for f in _IDX_IMAGES)]
    if not found:
        loader = "fashion_mnist" if fashion else "mnist"
        raise FileNotFoundError(
            f"{name} not found; looked for {', '.join(map(str, candidates))}. This library never "
            f"downloads: run `keras.datasets.{loader}.load_data()` once on a machine with "
            f"internet (it fills the Keras cache), or pass path= to a Keras-format .npz file."
        )
    train, test = _read_images(found[0])
    if flatten:
        train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    else:
        train, test = train[..., None], test[..., None]
    info = f"{'Fashion-MNIST' if fashion else 'MNIST'} 28x28 from {found[0]}"
    return _quantized(name, train, test, 256, kind, (28, 28), info)


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


def _sample_toy(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """n points (n, 2) from a toy set (moons excluded; it comes from scikit-learn)."""
    if name == "8gaussians":
        centers = toy_mode_centers()[rng.integers(8, size=n)]
        return centers + _GAUSS_STD * rng.standard_normal((n, 2))
    if name == "checkerboard":
        black = np.array([(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0])
        return black[rng.integers(8, size=n)] - 2 + rng.random((n, 2))
    # spirals: arm a in {0, 1}, angle 3 pi t (1.5 turns), radius 2 t, t = sqrt(U) for
    # roughly uniform density along the arms, plus N(0, 0.05^2) noise.
    t = np.sqrt(rng.random(n))
    angle = 3 * np.pi * t + np.pi * rng.integers(2, size=n)
    xy = 2 * t[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    return xy + 0.05 * rng.standard_normal((n, 2))


def load_toy(name: str, num_train: int = 2000, num_test: int = 1000, seed: int = 0) -> Dataset:
    """A 2-D toy set: "moons", "8gaussians", "checkerboard" or "spirals".

    - moons: `sklearn.datasets.make_moons(noise=0.05, random_state=seed)`, then standardized
      per coordinate with the train mean and std (applied to train and test).
    - 8gaussians: equal mixture of N(c_k, 0.2^2 I), c_k = 2 (cos k pi/4, sin k pi/4).
    - checkerboard: uniform over the 8 black unit squares of a 4x4 board on [-2, 2]^2
      (cells with even i + j), density 1/8 there.
    - spirals: two interleaved arms, radius 2t at angle 3 pi t (+ pi for the second arm),
      t = sqrt(U[0, 1)), plus N(0, 0.05^2) noise.

    Train and test are the first `num_train` and last `num_test` of one draw with `seed`.

    >>> load_toy("8gaussians", num_train=10, num_test=5).x_train.shape
    (10, 2)
    """
    if name not in TOYS:
        raise ValueError(f"unknown toy set {name!r}; available: {sorted(TOYS)}")
    n = num_train + num_test
    if name == "moons":
        from sklearn.datasets import make_moons

        x = make_moons(n, noise=0.05, random_state=seed)[0]
        mean, std = x[:num_train].mean(0), x[:num_train].std(0)
        x = (x - mean) / std
    else:
        x = _sample_toy(name, n, np.random.default_rng(seed))
    return Dataset(name, x[:num_train], x[num_train:], "real", None, None, f"2-D toy: {name}")


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
    "mnist": partial(load_mnist, kind="binary"),
    "mnist-categorical": partial(load_mnist, kind="categorical"),
    "mnist-continuous": partial(load_mnist, kind="continuous"),
    "fashion-mnist": partial(load_mnist, kind="binary", fashion=True),
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
