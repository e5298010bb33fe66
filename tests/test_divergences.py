"""Known-answer tests for tfdgm.divergences: f-divergences and marginal-likelihood estimators."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

from tfdgm import divergences

tfd = tfp.distributions
NAMES = list(divergences.F_DIVERGENCES)


def _direct(name, p, q):
    """Each divergence written from its definition (not from the generator), numpy float64."""
    m = 0.5 * (p + q)
    kl = lambda a, b: np.sum(np.where(a > 0, a * np.log(a / b), 0.0), axis=-1)
    return {
        "kl": kl(p, q),
        "reverse_kl": kl(q, p),
        "pearson": np.sum((p - q) ** 2 / q, axis=-1),
        "squared_hellinger": np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1),
        "jensen_shannon": kl(p, m) + kl(q, m),  # = 2 JSD, Nowozin et al.'s generator
        "gan": kl(p, m) + kl(q, m),
    }[name]


def test_table_has_the_documented_names():
    assert NAMES == ["kl", "reverse_kl", "pearson", "squared_hellinger", "jensen_shannon", "gan"]
    with pytest.raises(ValueError, match="reverse_kl.*pearson"):
        divergences.get("wasserstein")


@pytest.mark.parametrize("name", NAMES)
def test_generator_vanishes_at_one_and_is_convex(name):
    d = divergences.get(name)
    assert abs(float(d.f(tf.constant(1.0, tf.float64)))) < 1e-12
    u = tf.constant(np.linspace(0.02, 20.0, 2001), tf.float64)
    f = d.f(u).numpy()
    assert np.all(np.diff(f, 2) >= -1e-12), "f is not convex on the grid"
    # f' matches the finite-difference slope of f.
    h = 1e-6
    slope = (d.f(u + h).numpy() - d.f(u - h).numpy()) / (2 * h)
    np.testing.assert_allclose(d.f_prime(u).numpy(), slope, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fenchel_young_inequality_with_equality_at_the_derivative(name):
    d = divergences.get(name)
    low, high = d.domain
    u = np.linspace(0.05, 10.0, 60)
    t = np.linspace(max(low, -6.0), min(high, 6.0), 400)[:-1]  # open at the upper end
    uu, tt = np.meshgrid(u, t)
    f_star = d.conjugate(tf.constant(tt)).numpy()
    gap = f_star - (tt * uu - d.f(tf.constant(uu)).numpy())
    assert np.all(gap >= -1e-9), f"Fenchel-Young violated, min gap {gap.min()}"
    t_star = d.f_prime(tf.constant(u))  # the maximizer: f*(f'(u)) = u f'(u) - f(u)
    assert np.all((t_star.numpy() > low) & (t_star.numpy() < high))
    np.testing.assert_allclose(
        d.conjugate(t_star).numpy(), u * t_star.numpy() - d.f(tf.constant(u)).numpy(), atol=1e-9
    )
    # f* is the supremum: on a fine u grid, max_u t u - f(u) reaches f*(t).
    fine = np.linspace(1e-4, 200.0, 400_001)
    f_fine = d.f(tf.constant(fine)).numpy()
    for t0 in (low + 0.5 if low > -math.inf else -1.0, 0.1 * min(high, 1.0), -0.3):
        if low < t0 < high:
            sup = np.max(t0 * fine - f_fine)
            assert sup == pytest.approx(float(d.conjugate(tf.constant(t0, tf.float64))), abs=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_activation_maps_into_the_conjugate_domain(name):
    d = divergences.get(name)
    low, high = d.domain
    v = tf.constant(np.linspace(-20.0, 20.0, 801), tf.float64)
    t = d.activation(v).numpy()
    assert np.all((t > low) & (t < high))
    assert np.all(np.isfinite(d.conjugate(tf.constant(t)).numpy()))
    assert np.all(np.diff(t) > 0), "activation should be increasing"


@pytest.mark.parametrize("name", NAMES)
def test_categorical_exact_sums_match_definitions_and_monte_carlo(name):
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(5), size=2)
    exact = float(divergences.discrete_f_divergence(p, q, name))
    assert exact == pytest.approx(float(_direct(name, p, q)), rel=1e-5)
    assert exact > 0
    assert float(divergences.discrete_f_divergence(p, p, name)) == pytest.approx(0.0, abs=1e-6)
    # Monte Carlo over q: tolerance from the exact variance of f(p/q) under q.
    num = 100_000
    values = divergences.get(name).f(tf.constant(p / q)).numpy()
    tol = 5 * np.sqrt(np.sum(q * (values - exact) ** 2) / num)
    mc = divergences.f_divergence(
        tfd.Categorical(probs=p.astype("float32")),
        tfd.Categorical(probs=q.astype("float32")),
        name,
        num_samples=num,
        seed=(3, 4),
        closed_form=False,
    )
    assert abs(float(mc) - exact) < tol + 1e-5


def test_non_negativity_on_random_categoricals():
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(0.5 * np.ones(7), size=(2, 50)).astype("float32")
    for name in NAMES:
        assert np.all(divergences.discrete_f_divergence(p, q, name).numpy() >= -1e-6), name


@pytest.mark.parametrize("name", NAMES)
def test_normals_match_quadrature(name):
    p_loc, p_scale, q_loc, q_scale = 0.0, 1.0, 0.7, 1.4
    x = np.linspace(-15.0, 15.0, 60_001)
    dx = x[1] - x[0]
    px, qx = stats.norm.pdf(x, p_loc, p_scale), stats.norm.pdf(x, q_loc, q_scale)
    f_values = divergences.get(name).f(tf.constant(px / qx)).numpy()
    reference = np.sum(qx * f_values) * dx
    second = np.sum(qx * (f_values - reference) ** 2) * dx
    num = 200_000
    p, q = tfd.Normal(p_loc, p_scale), tfd.Normal(q_loc, q_scale)
    mc = divergences.f_divergence(p, q, name, num_samples=num, seed=(1, 2), closed_form=False)
    assert abs(float(mc) - reference) < 5 * math.sqrt(second / num)
    if name in ("kl", "reverse_kl"):
        closed = divergences.f_divergence(p, q, name)  # tfd.kl_divergence
        assert float(closed) == pytest.approx(reference, rel=1e-5)


# ---------------------------------------------------------------- marginal likelihood
def _linear_gaussian():
    """z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_3); p(x) = N(b, W W^T + s^2 I) in closed form."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 2)).astype("float32")
    b = rng.normal(size=3).astype("float32")
    s = 0.1
    x = (rng.normal(size=(5, 2)) @ w.T + b + s * rng.normal(size=(5, 3))).astype("float32")
    prior = tfd.MultivariateNormalDiag(tf.zeros(2))
    likelihood = lambda z: tfd.MultivariateNormalDiag(tf.linalg.matvec(w, z) + b, s * tf.ones(3))
    exact = stats.multivariate_normal(b, w @ w.T + s**2 * np.eye(3)).logpdf(x)
    cov = np.linalg.inv(np.eye(2) + w.T @ w / s**2)  # posterior p(z|x)
    mean = ((x - b) @ w / s**2) @ cov
    return prior, likelihood, x, exact, mean.astype("float32"), cov.astype("float32")


def test_importance_sampling_matches_closed_form_within_its_standard_error():
    prior, likelihood, x, exact, mean, cov = _linear_gaussian()
    chol = np.linalg.cholesky(cov)
    # A proposal close to (but wider than) the posterior.
    q = tfd.MultivariateNormalTriL(mean + 0.2 * chol.sum(1), 1.3 * chol)
    estimate, se = divergences.importance_sampling_marginal(
        prior, likelihood, q, x, num_samples=4000, seed=(0, 1)
    )
    assert estimate.shape == se.shape == (5,) and estimate.dtype == tf.float32
    assert np.all(np.abs(estimate.numpy() - exact) < 4 * se.numpy() + 1e-4)
    assert np.all(se.numpy() < 0.05)
    # The exact posterior is a zero-variance proposal.
    exact_q = tfd.MultivariateNormalTriL(mean, chol)
    est_exact, se_exact = divergences.importance_sampling_marginal(
        prior, likelihood, lambda _: exact_q, x, num_samples=50, seed=(0, 2)
    )
    np.testing.assert_allclose(est_exact.numpy(), exact, atol=1e-3)
    assert np.all(se_exact.numpy() < 1e-3)
    # Naive Monte Carlo from the prior: same target, much larger standard error.
    naive, naive_se = divergences.monte_carlo_marginal(
        prior, likelihood, x, num_samples=4000, seed=(0, 3), chunk=1000
    )
    assert np.all(naive_se.numpy() > 5 * se.numpy())
    assert np.all(np.abs(naive.numpy() - exact) < 4 * naive_se.numpy() + 0.05)


def test_marginal_estimators_accept_a_vae():
    from tfdgm import VAE

    vae = VAE(event_shape=(6,), latent_dim=2, hidden_units=(8,), seed=0)
    x = np.random.default_rng(0).integers(0, 2, size=(4, 6)).astype("float32")
    naive, naive_se = divergences.monte_carlo_marginal(vae.prior(), vae.decode, x, 64, seed=1)
    is_est, is_se = divergences.importance_sampling_marginal(
        vae.prior(), vae.decode, vae.encode, x, 64, seed=1
    )
    for t in (naive, naive_se, is_est, is_se):
        assert t.shape == (4,) and np.all(np.isfinite(t.numpy()))
    # Naive MC is unbiased for p(x): over the whole 6-D binary space it sums to 1. (IS with
    # this untrained encoder, narrower than the prior, has infinite-variance weights.)
    grid = np.array(np.meshgrid(*[[0, 1]] * 6, indexing="ij")).reshape(6, -1).T.astype("float32")
    est, _ = divergences.monte_carlo_marginal(vae.prior(), vae.decode, grid, 2000, seed=2)
    assert float(tf.reduce_sum(tf.exp(est))) == pytest.approx(1.0, abs=0.01)
