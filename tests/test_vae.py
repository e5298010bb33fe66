"""Known answers for the VAE: normalization on a tiny space, bound ordering, and a
linear-Gaussian model whose marginal likelihood is closed-form."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdgm import VAE, data


def _all_binary(d):
    return np.array(list(itertools.product([0, 1], repeat=d)), np.float32)


@pytest.fixture(scope="module")
def binary_vae():
    """A VAE briefly trained on a skewed distribution over {0,1}^8."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    probs = np.linspace(0.1, 0.9, 8)
    x = (rng.random((512, 8)) < probs).astype(np.float32)
    vae = VAE(event_shape=(8,), latent_dim=2, hidden_units=(32,), seed=0)
    vae.compile_default(learning_rate=1e-2)
    vae.fit(x, epochs=30, batch_size=64, verbose=0)
    return vae


def test_probabilities_sum_to_one_over_binary_space(binary_vae):
    space = _all_binary(8)  # all 256 configurations
    log_p = binary_vae.log_prob(space, num_samples=5000, seed=(3, 4))
    total = np.exp(np.asarray(log_p, np.float64)).sum()
    assert total == pytest.approx(1.0, abs=0.03)


def test_categorical_vae_sums_to_one():
    space = np.array(list(itertools.product(range(3), repeat=4)), np.float32)  # 81 points
    rng = np.random.default_rng(0)
    x = np.minimum(rng.poisson([0.3, 0.8, 1.2, 2.0], size=(512, 4)), 2).astype(np.float32)
    keras.utils.set_random_seed(0)
    vae = VAE(
        event_shape=(4,),
        latent_dim=2,
        likelihood="categorical",
        num_categories=3,
        hidden_units=(32,),
        seed=1,
    )
    # a trained q is a good proposal; an untrained one makes the estimate's variance large
    vae.compile_default(learning_rate=1e-2)
    vae.fit(x, epochs=15, batch_size=64, verbose=0)
    total = np.exp(np.asarray(vae.log_prob(space, num_samples=2000, seed=(1, 1)), np.float64))
    assert total.sum() == pytest.approx(1.0, abs=0.03)


def test_bounds_are_ordered_and_tighten():
    # an untrained q is a poor proposal, so the gaps between the bounds are wide
    x = _all_binary(8)
    vae = VAE(event_shape=(8,), latent_dim=2, hidden_units=(32,), seed=3)
    elbo = np.mean(vae.elbo(x, seed=(1, 0)))
    iwae = [np.mean(vae.iwae(x, k, seed=(1, k))) for k in (5, 50)]
    log_p = np.mean(vae.log_prob(x, num_samples=5000, seed=(2, 0)))
    assert elbo < iwae[0] < iwae[1] < log_p + 0.01
    assert log_p - iwae[1] < iwae[0] - elbo  # the gap shrinks with k


def test_analytic_kl_matches_monte_carlo(binary_vae):
    x = _all_binary(8)[:16]
    q = binary_vae.encode(x)
    z = q.sample(20000, seed=(5, 5))
    mc = np.mean(q.log_prob(z) - binary_vae.prior().log_prob(z), axis=0)
    np.testing.assert_allclose(q.kl_divergence(binary_vae.prior()), mc, atol=0.03)


def test_beta_weights_the_kl(binary_vae):
    x = _all_binary(8)
    parts = binary_vae._bound(tf.constant(x), 1, seed=(0, 9), beta=0.25)
    np.testing.assert_allclose(
        parts["elbo"], parts["reconstruction"] - 0.25 * parts["kl"], rtol=1e-6, atol=1e-5
    )


class Affine(keras.layers.Layer):
    """Fixed affine map x -> [A x + c, constant raw scale] (no trainable weights)."""

    def __init__(self, matrix, offset, raw_scale):
        super().__init__()
        self.matrix = tf.constant(matrix, tf.float32)
        self.offset = tf.constant(offset, tf.float32)
        self.raw_scale = tf.constant(raw_scale, tf.float32)

    def call(self, x):
        loc = tf.matmul(x, self.matrix) + self.offset
        return tf.concat([loc, tf.broadcast_to(self.raw_scale, tf.shape(loc))], -1)


def _inverse_softplus(y):
    return np.log(np.expm1(y))


def _linear_gaussian(exact_posterior: bool):
    """p(z) = N(0, I_2), p(x|z) = N(W z + b, s^2 I_4) with orthogonal columns of W, so the
    exact posterior is diagonal: cov = (I + W^T W / s^2)^-1, mean = cov W^T (x - b) / s^2,
    and p(x) = N(b, W W^T + s^2 I)."""
    rng = np.random.default_rng(0)
    q_mat, _ = np.linalg.qr(rng.standard_normal((4, 2)))
    w = q_mat * np.array([2.0, 0.7])  # (4, 2), orthogonal columns
    b, s = rng.standard_normal(4), 0.5
    decoder = Affine(w.T, b, np.full(4, _inverse_softplus(s - 1e-3)))
    if exact_posterior:
        cov = 1.0 / (1.0 + np.sum(w**2, 0) / s**2)  # (2,)
        a = (cov[:, None] * w.T / s**2).T  # x -> mean, (4, 2)
        encoder = Affine(a, -b @ a, _inverse_softplus(np.sqrt(cov) - 1e-3))
    else:
        encoder = None
    vae = VAE(
        event_shape=(4,),
        latent_dim=2,
        likelihood="normal",
        encoder=encoder,
        decoder=decoder,
        hidden_units=(16,),
        seed=0,
    )
    x = rng.multivariate_normal(b, w @ w.T + s**2 * np.eye(4), size=256).astype(np.float32)
    exact = tf.constant([_mvn_log_pdf(xi, b, w @ w.T + s**2 * np.eye(4)) for xi in x], tf.float32)
    return vae, x, exact


def _mvn_log_pdf(x, mean, cov):
    diff = x - mean
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (diff @ np.linalg.solve(cov, diff) + logdet + len(x) * np.log(2 * np.pi))


def test_linear_gaussian_exact_posterior_makes_bounds_exact():
    vae, x, exact = _linear_gaussian(exact_posterior=True)
    np.testing.assert_allclose(vae.log_prob(x, num_samples=10, seed=(0, 1)), exact, atol=2e-3)
    # with q = p(z|x) every importance weight equals p(x): IWAE_k is exact for any k
    np.testing.assert_allclose(vae.iwae(x, 2, seed=(0, 2)), exact, atol=2e-3)
    # and the (one-sample, analytic-KL) ELBO is unbiased for it: the KL gap is 0
    elbo = np.mean([vae.elbo(x, seed=(0, i)) for i in range(64)])
    assert abs(elbo - np.mean(exact)) < 0.02


def test_linear_gaussian_marginal_matches_closed_form():
    vae, x, exact = _linear_gaussian(exact_posterior=False)
    vae.compile_default(learning_rate=1e-2)
    vae.fit(x, epochs=40, batch_size=32, verbose=0)  # trains the encoder only
    estimate = vae.log_prob(x, num_samples=5000, seed=(0, 3))
    assert np.mean(np.abs(estimate - exact)) < 0.05
    assert np.mean(vae.elbo(x, seed=(0, 4))) < np.mean(exact)


def test_conv_vae_on_digit_images():
    digits = data.load("digits")
    vae = VAE.for_dataset(digits, latent_dim=2, architecture="conv", seed=0)
    vae.compile_default()
    history = vae.fit(digits.x_train[:64], epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert vae.sample(3, seed=(1, 2)).shape == (3, 64)
    assert vae.reconstruct(digits.x_test[:5]).shape == (5, 64)
    assert vae.interpolate(digits.x_test[0], digits.x_test[1], steps=4).shape == (4, 64)
    # log_prob decodes at most CONV_DRAWS_PER_CALL images per call (memory): asking for
    # chunks of 100 samples on 500 images gives exactly the chunks of 10 (the same draws;
    # other chunks, such as 5, draw otherwise)
    from tfdgm.models.vae import CONV_DRAWS_PER_CALL

    x = digits.x_train[:500]
    clamped = vae.log_prob(x, num_samples=20, seed=(0, 5), chunk=CONV_DRAWS_PER_CALL // 500)
    np.testing.assert_array_equal(vae.log_prob(x, num_samples=20, seed=(0, 5), chunk=100), clamped)
    assert not np.allclose(vae.log_prob(x, num_samples=20, seed=(0, 5), chunk=5), clamped)


def test_constructor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        VAE(event_shape=(4,), likelihood="poisson")
    with pytest.raises(ValueError, match="image_shape"):
        VAE(event_shape=(4,), architecture="conv")
    with pytest.raises(ValueError, match="num_importance_samples"):
        VAE(event_shape=(4,), num_importance_samples=0)


def test_conditional_vae_sums_to_one_for_every_label():
    """CVAE: sum_x p(x | y) = 1 over {0, 1}^5 for each of three labels, and the labels
    matter: data whose first pixel is the label gets it right far above chance."""
    space = _all_binary(5)
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=600)
    x = (rng.random((600, 5)) < 0.2).astype(np.float32)
    x[:, 0] = y == 1  # the label shows in the data: pixel 0 is on exactly for class 1
    x[:, 1] = y == 2
    keras.utils.set_random_seed(0)
    vae = VAE(event_shape=(5,), latent_dim=2, hidden_units=(32,), num_classes=3, seed=1)
    assert vae.accepts_labels
    vae.compile_default(learning_rate=1e-2)
    vae.fit(x, y, epochs=15, batch_size=64, verbose=0)
    for label in range(3):
        labels = np.full(len(space), label)
        log_p = vae.log_prob(space, num_samples=1000, seed=(1, label), labels=labels)
        assert np.exp(np.asarray(log_p, np.float64)).sum() == pytest.approx(1.0, abs=0.03)
    samples = np.asarray(vae.sample(300, seed=(2, 0), labels=np.repeat([0, 1, 2], 100)))
    assert samples[100:200, 0].mean() > 0.9 and samples[:100, 0].mean() < 0.1
    assert samples[200:, 1].mean() > 0.9 and samples[:200, 1].mean() < 0.1
    with pytest.raises(ValueError, match="needs labels"):
        vae.log_prob(space)
    with pytest.raises(ValueError, match="VAE labels"):
        vae.log_prob(space, labels=np.full(len(space), 3))
