"""Tests for tfdgm.data: digits, MNIST loaders (on tiny local files), toy densities, check_array."""

import gzip

import numpy as np
import pytest
import sklearn.datasets

from tfdgm import data


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
    assert names == sorted(data.DATASETS) and {"digits", "mnist", "spirals"} <= set(names)
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
