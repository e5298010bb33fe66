"""Known-answer tests for sigmoid belief nets and the Helmholtz machine: exact enumeration of
tiny models written out in NumPy from the weights."""

import itertools

import keras
import numpy as np
import pytest

from tfdgm import data
from tfdgm.models.helmholtz import HelmholtzMachine


def states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def log_bernoulli(x, logits):
    """sum_j log Bernoulli(x_j; sigmoid(logits_j)), broadcasting."""
    return (x * logits - np.logaddexp(0, logits)).sum(-1)


def random_machine(layer_sizes, seed=0, scale=1.5, recognition_scale=0.3) -> HelmholtzMachine:
    """Random generative weights; a broad random recognition model (a proposal that covers
    the posterior, so importance sampling converges quickly)."""
    model = HelmholtzMachine(layer_sizes, seed=seed)
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        std = recognition_scale if "recognition" in variable.path else scale
        variable.assign(rng.normal(0, std, variable.shape).astype("float32"))
    return model


def exact_log_p(model) -> tuple[np.ndarray, np.ndarray]:
    """All x and log p(x) = log sum_h p(x, h) of a 2-hidden-layer net, from the weights."""
    sizes = model.layer_sizes
    assert len(sizes) == 3
    x, h1, h2 = (states(n) for n in sizes)
    weights = lambda layer: [np.asarray(w, np.float64) for w in layer.weights]
    (g0, b0), (g1, b1) = weights(model.generative[0]), weights(model.generative[1])
    prior = np.asarray(model.prior_logits, np.float64)
    log_joint = (
        log_bernoulli(h2, prior)[None, None, :]  # (x, h1, h2)
        + log_bernoulli(h1[:, None, :], h2 @ g1 + b1)[None]  # p(h1 | h2)
        + log_bernoulli(x[:, None, :], h1 @ g0 + b0)[:, :, None]  # p(x | h1)
    )
    return x, np.logaddexp.reduce(log_joint.reshape(len(x), -1), axis=1)


def test_log_joint_matches_the_weights():
    model = random_machine([3, 2, 2], seed=1)
    x, log_p = exact_log_p(model)
    h1, h2 = states(2), states(2)
    grid = [(a, b, c) for a in x for b in h1 for c in h2]
    layers = [np.array([g[i] for g in grid], "float32") for i in range(3)]
    joint = np.asarray(model.log_joint(layers), np.float64).reshape(len(x), -1)
    np.testing.assert_allclose(np.logaddexp.reduce(joint, axis=1), log_p, atol=1e-5)
    assert abs(np.exp(log_p).sum() - 1) < 1e-6  # the NumPy reference is itself normalized


@pytest.mark.parametrize("seed", [2, 3])
def test_importance_sampled_log_prob_sums_to_one_on_a_tiny_space(seed):
    model = random_machine([3, 2, 2], seed=seed)
    x, log_p = exact_log_p(model)
    estimate = np.exp(
        np.asarray(model.log_prob(x.astype("float32"), num_samples=10000, seed=(1, 2), chunk=5000))
    )
    assert abs(estimate.sum() - 1) < 0.02, estimate.sum()
    np.testing.assert_allclose(estimate, np.exp(log_p), rtol=0.05, atol=2e-3)


def mixture_data(num, rng):
    """Two noisy prototypes 1100 / 0011 with bit-flip probability 0.1."""
    prototypes = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], "float32")
    x = prototypes[rng.integers(2, size=num)]
    return np.abs(x - (rng.random(x.shape) < 0.1)).astype("float32")


def exact_one_layer(model):
    """log p(x) and the exact posterior p(h | x) of a [V, H] net, by enumeration."""
    x, h = states(model.layer_sizes[0]), states(model.layer_sizes[1])
    g, b = (np.asarray(w, np.float64) for w in model.generative[0].weights)
    log_joint = log_bernoulli(h, np.asarray(model.prior_logits, np.float64))[None] + log_bernoulli(
        x[:, None, :], h @ g + b
    )  # (x, h)
    log_p = np.logaddexp.reduce(log_joint, axis=1)
    return x, h, log_p, log_joint - log_p[:, None]


def posterior_kl(model):
    """mean over x of KL(p(h | x) || q(h | x)), weighted by p(x)."""
    x, h, log_p, log_post = exact_one_layer(model)
    r, c = (np.asarray(w, np.float64) for w in model.recognition[0].weights)
    log_q = log_bernoulli(h[None], (x @ r + c)[:, None, :])  # (x, h)
    return float((np.exp(log_p)[:, None] * np.exp(log_post) * (log_post - log_q)).sum())


def test_wake_sleep_raises_exact_likelihood_and_fits_the_recognition_model():
    rng = np.random.default_rng(0)
    x_train = mixture_data(2048, rng)
    model = HelmholtzMachine([4, 2], seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.03))
    x, _, log_p, _ = exact_one_layer(model)
    index = (x_train @ (2.0 ** np.arange(3, -1, -1))).astype(int)  # itertools.product order
    before, kl_before = log_p[index].mean(), posterior_kl(model)
    model.fit(x_train, epochs=8, batch_size=64, verbose=0)
    _, _, log_p, _ = exact_one_layer(model)
    after, kl_after = log_p[index].mean(), posterior_kl(model)
    # the data entropy is about 2.0 nats; a uniform model scores -4 log 2 = -2.77
    assert after > before + 0.3 and after > -2.25, (before, after)
    assert kl_after < kl_before and kl_after < 0.1, (kl_before, kl_after)


def test_training_on_digits_raises_importance_sampled_likelihood():
    digits = data.load("digits")
    model = HelmholtzMachine.for_dataset(digits, hidden_sizes=(32, 16), seed=0)
    model.compile_default(learning_rate=1e-2)
    x = digits.x_test[:100]
    before = float(np.mean(model.log_prob(x, num_samples=100, seed=(0, 0))))
    history = model.fit(digits.x_train, epochs=5, batch_size=32, verbose=0)
    after = float(np.mean(model.log_prob(x, num_samples=100, seed=(0, 0))))
    assert after > before + 2, (before, after)
    assert history.history["sleep"][-1] < history.history["sleep"][0]
    samples = np.asarray(model.sample(6, seed=(1, 2)))
    assert samples.shape == (6, 64) and set(np.unique(samples)) <= {0.0, 1.0}
