"""Known answers for mixtures by EM: scikit-learn's GaussianMixture from the same start,
monotone log-likelihood, closed-form densities and responsibilities, recovered parameters."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from tfdgm.models.mixtures import BernoulliMixture, GaussianMixture, kmeans_plusplus


def two_blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n // 2, d))
    b = rng.normal(3.0, 0.5, (n - n // 2, d)) * np.linspace(1, 2, d)
    return np.concatenate([a, b]).astype(np.float32)


def start(covariance, x, k=3):
    """Initial (weights, means, covariances) in scikit-learn's layouts."""
    d = x.shape[1]
    weights = np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
    means = x[np.linspace(0, len(x) - 1, k).astype(int)].astype(np.float64)
    covariances = {
        "full": np.stack([np.eye(d) * (1 + j) for j in range(k)]),
        "diag": np.ones((k, d)) * np.arange(1, k + 1)[:, None],
        "spherical": np.arange(1.0, k + 1),
    }[covariance]
    return weights, means, covariances


@pytest.mark.parametrize("covariance", ["full", "diag", "spherical"])
def test_same_log_likelihood_as_sklearn_after_the_same_iterations(covariance):
    """From one start, n epochs of fit (3 batches each) = scikit-learn's n EM iterations:
    log-likelihood within 1e-4 nats per point (float32 against float64), parameters alike."""
    x, iterations = two_blobs(), 8
    weights, means, covariances = start(covariance, x)
    model = GaussianMixture((3,), 3, covariance=covariance, reg_covar=1e-4, seed=0)
    model.set_parameters(weights=weights, means=means, covariances=covariances)
    model.compile_default()
    history = model.fit(x, epochs=iterations, batch_size=100, verbose=0)
    precisions = np.linalg.inv(covariances) if covariance == "full" else 1.0 / covariances
    reference = SklearnGaussianMixture(
        3,
        covariance_type=covariance,
        reg_covar=1e-4,
        max_iter=iterations,
        tol=0,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
    ).fit(x.astype(np.float64))
    mean_log_p = float(np.mean(np.asarray(model.log_prob(x), np.float64)))
    assert abs(mean_log_p - reference.score(x.astype(np.float64))) < 1e-4
    got = model.get_parameters()
    np.testing.assert_allclose(got["weights"], reference.weights_, atol=1e-4)
    np.testing.assert_allclose(got["means"], reference.means_, atol=1e-3)
    np.testing.assert_allclose(got["covariances"], reference.covariances_, atol=1e-3)
    # the epoch's loss is -log-likelihood before its M-step: EM never lowers the likelihood
    assert np.all(np.diff(history.history["loss"]) <= 1e-5), history.history["loss"]


def test_log_prob_and_responsibilities_are_the_closed_forms():
    x = two_blobs(n=20)
    weights, means, covariances = start("full", x)
    model = GaussianMixture((3,), 3)
    model.set_parameters(weights=weights, means=means, covariances=covariances)
    joint = np.stack(
        [
            np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
            for w, m, c in zip(weights, means, covariances)
        ],
        axis=1,
    )
    log_px = np.logaddexp.reduce(joint, axis=1)
    np.testing.assert_allclose(model.log_prob(x), log_px, rtol=1e-5, atol=1e-4)
    # the batched solve agrees with TFP's MixtureSameFamily of MultivariateNormalTriL
    np.testing.assert_allclose(model.log_prob(x), model.distribution().log_prob(x), atol=1e-4)
    np.testing.assert_allclose(
        model.responsibilities(x), np.exp(joint - log_px[:, None]), atol=1e-5
    )
    np.testing.assert_array_equal(model.predict(x), joint.argmax(1))


def test_known_gaussian_mixture_is_recovered():
    """1,500 points from a known 2-D mixture: weights, means and covariances come back."""
    rng = np.random.default_rng(1)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 5.0]])
    covariances = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.5, 0.0], [0.0, 0.2]], np.eye(2) * 0.3])
    z = rng.choice(3, size=1500, p=weights)
    x = np.stack([rng.multivariate_normal(means[k], covariances[k]) for k in z]).astype(np.float32)
    model = GaussianMixture((2,), 3, seed=0)
    model.compile_default()
    model.fit(x, epochs=10, batch_size=1500, verbose=0)
    got = model.get_parameters()
    order = [int(np.argmin(((got["means"] - m) ** 2).sum(1))) for m in means]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(got["weights"][order], weights, atol=0.03)
    np.testing.assert_allclose(got["means"][order], means, atol=0.1)
    np.testing.assert_allclose(got["covariances"][order], covariances, atol=0.1)


def test_bernoulli_em_step_is_the_closed_form_and_recovers_a_known_mixture():
    rng = np.random.default_rng(2)
    truth = np.array([[0.9] * 5 + [0.1] * 5, [0.1] * 5 + [0.9] * 5])
    z = rng.choice(2, size=2000, p=[0.6, 0.4])
    x = (rng.uniform(size=(2000, 10)) < truth[z]).astype(np.float32)
    model = BernoulliMixture((10,), 2, smoothing=0.0, seed=0)
    start_means = np.full((2, 10), 0.5) + np.array([[0.1], [-0.1]]) * np.linspace(-1, 1, 10)
    model.set_parameters(weights=[0.5, 0.5], means=start_means)
    model.compile_default()
    # one EM step written out in NumPy
    joint = np.log(0.5) + x @ np.log(start_means).T + (1 - x) @ np.log(1 - start_means).T
    r = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
    model.fit(x, epochs=1, batch_size=500, verbose=0)
    got = model.get_parameters()
    np.testing.assert_allclose(got["weights"], r.mean(0), atol=1e-5)
    np.testing.assert_allclose(got["means"], (r.T @ x) / r.sum(0)[:, None], atol=1e-5)
    history = model.fit(x, epochs=8, batch_size=1000, verbose=0)
    assert np.all(np.diff(history.history["loss"]) <= 1e-5)
    got = model.get_parameters()
    order = np.argsort(-got["means"][:, 0])
    np.testing.assert_allclose(got["weights"][order], [0.6, 0.4], atol=0.03)
    np.testing.assert_allclose(got["means"][order], truth, atol=0.05)


def test_smoothing_is_the_beta_prior_and_keeps_log_prob_finite():
    x = np.zeros((50, 4), np.float32)
    x[:, 0] = 1.0
    model = BernoulliMixture((4,), 2, smoothing=1.0, seed=0)
    model.compile_default()
    model.fit(x, epochs=3, batch_size=50, verbose=0)
    means = model.get_parameters()["means"]
    # every component sees N_k examples of all-ones column 0 and all-zeros columns 1..3
    counts = model.get_parameters()["weights"] * 50
    np.testing.assert_allclose(means[:, 0], (counts + 1) / (counts + 2), atol=1e-4)
    np.testing.assert_allclose(means[:, 1], 1 / (counts + 2), atol=1e-4)
    assert np.isfinite(model.log_prob(np.ones((1, 4), np.float32))).all()


def test_initialization_uses_the_data_unless_parameters_were_set():
    x = two_blobs(n=200, d=2)
    model = GaussianMixture((2,), 2, seed=0)
    model.compile_default()
    model.fit(x, epochs=1, batch_size=200, verbose=0)
    centers = np.sort(model.get_parameters()["means"][:, 0])
    assert centers[0] < 1.0 < 2.5 < centers[1]  # one seed in each blob (k-means++)
    fixed = GaussianMixture((2,), 2, covariance="spherical")
    fixed.set_parameters(means=[[10.0, 10.0], [11.0, 11.0]], covariances=[1.0, 1.0])
    fixed.initialize(x)  # a no-op: the parameters were set
    np.testing.assert_array_equal(fixed.get_parameters()["means"], [[10, 10], [11, 11]])
    with pytest.raises(ValueError, match=r"covariances must have shape \(2,\)"):
        fixed.set_parameters(covariances=np.ones((2, 2)))
    with pytest.raises(ValueError, match="sum to 1"):
        fixed.set_parameters(weights=[0.5, 0.6])
    with pytest.raises(ValueError, match="covariance must be one of"):
        GaussianMixture((2,), 2, covariance="tied")


def test_loaded_model_resumes_instead_of_reinitializing(tmp_path):
    x = two_blobs(n=100, d=2)
    model = GaussianMixture((2,), 2, covariance="diag", seed=0)
    model.compile_default()
    model.fit(x, epochs=3, batch_size=100, verbose=0)
    model.save(tmp_path / "gmm.keras")
    loaded = keras.models.load_model(tmp_path / "gmm.keras")
    loss = model.fit(x, epochs=1, batch_size=100, verbose=0).history["loss"]
    assert loaded.fit(x, epochs=1, batch_size=100, verbose=0).history["loss"] == pytest.approx(loss)


@pytest.mark.slow
def test_two_replicas_give_the_single_device_update():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("two logical CPUs were not configured before TensorFlow started")
    x = two_blobs(n=128, d=2)
    weights, means, covariances = start("full", x, k=2)
    results = []
    for strategy in (
        tf.distribute.get_strategy(),
        tf.distribute.MirroredStrategy(
            [d.name for d in devices[:2]], cross_device_ops=tf.distribute.ReductionToOneDevice()
        ),
    ):
        with strategy.scope():
            model = GaussianMixture((2,), 2)
            model.set_parameters(weights=weights, means=means, covariances=covariances)
            model.compile_default()
        model.fit(x, epochs=1, batch_size=32, verbose=0)
        results.append(model.get_parameters())
    for key in results[0]:
        np.testing.assert_allclose(results[1][key], results[0][key], atol=1e-5, err_msg=key)


def test_kmeans_plusplus_seeds_are_distinct_points_far_apart():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0], [0.0, 10.0]])
    seeds = kmeans_plusplus(x, 3, np.random.default_rng(0))
    # one seed in each of the three groups
    assert sorted({0 if s < 2 else 1 if s < 4 else 2 for s in seeds}) == [0, 1, 2]
