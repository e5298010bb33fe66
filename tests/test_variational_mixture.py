"""Known answers for the Bayesian Gaussian mixture: scikit-learn's CAVI from the same start,
the ELBO against a Monte Carlo estimate from the TFP factors, a monotone ELBO, the
Student-t predictive, and SVI reaching the CAVI optimum."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture

from tfdgm.models.variational_mixture import BayesianGaussianMixture

tfd = tfp.distributions


def blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 1.0, (n // 2, d))
    b = rng.normal(3.0, 0.5, (n - n // 2, d))
    return np.concatenate([a, b]).astype(np.float32)


def fitted(x, k=3, epochs=3, seed=0, **kwargs):
    model = BayesianGaussianMixture(x.shape[1:], k, seed=seed, **kwargs)
    model.compile_default()
    history = model.fit(x, epochs=epochs, batch_size=100, verbose=0)
    return model, history


def test_cavi_is_scikit_learns_update_from_the_same_start():
    """The same random responsibilities start both; after 10 sweeps (3 batches each) every
    variational parameter agrees to a relative 1e-4 (float32 against float64)."""
    x, k, sweeps = blobs(), 3, 10
    start = np.random.default_rng(1).dirichlet(np.ones(k), size=len(x))

    class FromStart(SklearnBayesianGaussianMixture):
        def _initialize_parameters(self, X, random_state, xp=None):
            self._initialize(X, start)

    reference = FromStart(
        n_components=k,
        weight_concentration_prior_type="dirichlet_distribution",
        max_iter=sweeps,
        tol=0,
    ).fit(x.astype(np.float64))
    model = BayesianGaussianMixture((3,), k, seed=0)
    model.compile_default()
    model.initialize(x, responsibilities=start)
    history = model.fit(x, epochs=sweeps, batch_size=100, verbose=0)
    got = model.get_parameters()
    for name in ("weight_concentration", "mean_precision", "means", "degrees_of_freedom"):
        want = getattr(reference, name + "_")
        np.testing.assert_allclose(got[name], want, rtol=1e-4, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(got["covariances"], reference.covariances_, rtol=1e-4, atol=1e-5)
    assert np.all(np.diff(history.history["elbo"]) >= -1e-6), history.history["elbo"]


@pytest.fixture(scope="module", params=["full", "diag"])
def small(request):
    """(model, x): 40 points, 2 components, 2 sweeps (shared: the tests only read it)."""
    x = blobs(n=40, d=2, seed=3)
    model, _ = fitted(x, k=2, epochs=2, covariance=request.param, reg_covar=0.0)
    return model, x


def test_elbo_is_the_expectation_under_the_tfp_factors(small):
    """ELBO = E_q[log p(x, z, pi, mu, Lambda) - log q(z, pi, mu, Lambda)]: the closed form
    against a Monte Carlo average over draws of posterior(), z summed exactly."""
    model, x = small
    q, p = model.posterior(), model.prior()
    draws = q.sample(2000, seed=(5, 6))
    log_resp = tf.nn.log_softmax(model.log_joint(x), -1)  # (N, K), q(z) at its optimum
    if model.covariance == "full":
        scale = tf.linalg.cholesky(tf.linalg.inv(draws["precisions"]))
        likelihood = tfd.MultivariateNormalTriL(draws["means"][:, None], scale[:, None])
    else:
        scale = tf.math.rsqrt(draws["precisions"])
        likelihood = tfd.Independent(tfd.Normal(draws["means"][:, None], scale[:, None]), 1)
    log_lik = likelihood.log_prob(x[None, :, None, :])  # (S, N, K)
    log_weights = tf.math.log(draws["weights"])[:, None, :]
    resp = tf.exp(log_resp)
    data = tf.reduce_sum(resp * (log_weights + log_lik - log_resp), axis=(1, 2))
    per_draw = np.asarray(data + p.log_prob(draws) - q.log_prob(draws), np.float64)
    error = per_draw.std() / np.sqrt(len(per_draw))
    assert abs(per_draw.mean() - model.elbo(x)) < 5 * error + 1e-2, (per_draw.mean(), error)


def test_elbo_never_decreases_and_is_reported_exactly():
    x = blobs(n=200, d=2, seed=4)
    model, history = fitted(x, k=4, epochs=4, reg_covar=0.0)
    elbos = history.history["elbo"]
    assert np.all(np.diff(elbos) >= -1e-6), elbos
    # the next epoch reports the ELBO of the current factors, q(z) at its optimum
    before = model.elbo(x) / len(x)
    reported = model.fit(x, epochs=1, batch_size=100, verbose=0).history["elbo"][0]
    assert reported == pytest.approx(before, abs=1e-5)
    assert model.elbo(x) / len(x) >= reported - 1e-6


def test_predictive_density_is_the_student_t_mixture(small):
    model, x = small
    got = model.get_parameters()
    alpha, beta, m, nu = (
        got[k] for k in ("weight_concentration", "mean_precision", "means", "degrees_of_freedom")
    )
    log_weights = np.log(alpha / alpha.sum())
    if model.covariance == "full":
        df = nu + 1 - 2
        scale = got["covariances"] * (nu * (1 + beta) / (beta * df))[:, None, None]
        log_t = np.stack(
            [stats.multivariate_t(m[j], scale[j], df=df[j]).logpdf(x[:10]) for j in range(2)]
        )
    else:  # one Student-t of nu_k degrees of freedom per dimension
        scale = np.sqrt(got["covariances"] * (1 + beta[:, None]) / beta[:, None])
        log_t = stats.t(nu[:, None, None], m[:, None], scale[:, None]).logpdf(x[None, :10]).sum(-1)
    expected = np.logaddexp.reduce(log_weights[:, None] + log_t, axis=0)  # (K, n) -> (n,)
    np.testing.assert_allclose(model.log_prob(x[:10]), expected, rtol=1e-4, atol=1e-4)
    tfp_mixture = model.distribution().log_prob(x[:10])  # MixtureSameFamily of Student-t's
    np.testing.assert_allclose(model.log_prob(x[:10]), tfp_mixture, rtol=1e-5, atol=1e-4)
    assert set(np.unique(model.predict(x))) <= {0, 1}


def test_svi_reaches_the_cavi_optimum():
    """1,000 points in batches of 50: after 20 SVI steps the ELBO is within 1% of that of
    10 CAVI sweeps (the 100,000-point check is ``benchmarks/bench_mixtures.py --svi``)."""
    rng = np.random.default_rng(7)
    means = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    x = (means[rng.choice(3, size=1000)] + rng.normal(0, 0.7, (1000, 2))).astype(np.float32)
    cavi = BayesianGaussianMixture((2,), 3, seed=0)
    cavi.compile_default()
    cavi.fit(x, epochs=10, batch_size=1000, verbose=0)
    svi = BayesianGaussianMixture((2,), 3, inference="svi", num_examples=len(x), seed=0)
    svi.compile_default()
    svi.fit(x, epochs=1, batch_size=50, verbose=0)
    optimum, reached = cavi.elbo(x), svi.elbo(x)
    assert reached == pytest.approx(optimum, rel=0.01), (reached, optimum)


def test_bad_settings_fail_early():
    with pytest.raises(ValueError, match="needs num_examples"):
        BayesianGaussianMixture((2,), 2, inference="svi")
    with pytest.raises(ValueError, match="covariance must be 'full' or 'diag'"):
        BayesianGaussianMixture((2,), 2, covariance="spherical")
    with pytest.raises(ValueError, match="nu_0 > D - 1"):
        BayesianGaussianMixture((3,), 2, degrees_of_freedom_prior=1.0)
