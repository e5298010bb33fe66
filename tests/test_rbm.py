"""Known-answer tests for RBMs: brute-force partition functions, exact gradients,
exact distributions of tiny models (all computed here in NumPy from the weights)."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdgm import data
from tfdgm.models.rbm import EXACT_MAX_UNITS, RBM


def states(n: int) -> np.ndarray:
    """All 2^n binary vectors, float64 [2^n, n]."""
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_rbm(num_visible, num_hidden, seed=0, scale=1.0, **kwargs) -> RBM:
    rbm = RBM(num_visible, num_hidden, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    rbm.kernel.assign(rng.normal(0, scale, (num_visible, num_hidden)).astype("float32"))
    rbm.visible_bias.assign(rng.normal(0, 1, num_visible).astype("float32"))
    rbm.hidden_bias.assign(rng.normal(0, 1, num_hidden).astype("float32"))
    return rbm


def params(rbm):
    return [np.asarray(p, np.float64) for p in (rbm.kernel, rbm.visible_bias, rbm.hidden_bias)]


def brute_energy(rbm, v, h):
    """E(v, h) for every pair, [len(v), len(h)], written out from the definition."""
    W, b, c = params(rbm)
    if rbm.visible == "bernoulli":
        return -(v @ W @ h.T) - (v @ b)[:, None] - (h @ c)[None]
    s = rbm.visible_std
    quad = ((v - b) ** 2).sum(-1) / (2 * s**2)
    return quad[:, None] - (v / s) @ W @ h.T - (h @ c)[None]


def brute_log_p(rbm):
    """Exact log p(v) of a Bernoulli RBM over all visible states, summing both layers."""
    v, h = states(rbm.num_visible), states(rbm.num_hidden)
    log_joint = -brute_energy(rbm, v, h)
    log_z = np.logaddexp.reduce(log_joint.ravel())
    return v, np.logaddexp.reduce(log_joint, axis=1) - log_z, log_z


# ---------------------------------------------------------------- energies and log Z
@pytest.mark.parametrize("shape", [(5, 3), (3, 6), (4, 4)])
def test_exact_log_partition_equals_enumeration_of_both_layers(shape):
    rbm = random_rbm(*shape, seed=sum(shape))
    v, log_p, log_z = brute_log_p(rbm)
    result = rbm.log_partition("exact")
    assert result.method == "exact"
    np.testing.assert_allclose(float(result.value), log_z, rtol=1e-6)
    h = states(shape[1])
    np.testing.assert_allclose(
        rbm.energy(np.repeat(v, len(h), 0), np.tile(h, (len(v), 1))),
        brute_energy(rbm, v, h).ravel(),
        rtol=1e-5,
        atol=1e-5,
    )
    free = -np.logaddexp.reduce(-brute_energy(rbm, v, h), axis=1)
    np.testing.assert_allclose(rbm.free_energy(v), free, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rbm.log_prob(v), log_p, atol=1e-5)


def test_gaussian_log_partition_equals_numerical_integral():
    rbm = random_rbm(2, 3, seed=4, visible="gaussian", visible_std=0.7)
    axis = np.linspace(-10, 10, 501)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    h = states(3)
    log_unnorm = np.logaddexp.reduce(-brute_energy(rbm, grid, h), axis=1)
    log_z = np.log(np.exp(log_unnorm).sum() * (axis[1] - axis[0]) ** 2)
    np.testing.assert_allclose(float(rbm.log_partition("exact").value), log_z, rtol=1e-5)
    density = np.exp(np.asarray(rbm.log_prob(grid.astype("float32")), np.float64))
    assert abs(density.sum() * (axis[1] - axis[0]) ** 2 - 1) < 1e-3


def test_ais_agrees_with_exact_within_its_spread():
    for rbm in (
        random_rbm(10, 6, seed=1),
        random_rbm(6, 5, seed=2, visible="gaussian", scale=0.5),
    ):
        exact = float(rbm.log_partition("exact").value)
        ais = rbm.log_partition("ais", num_chains=200, num_betas=1000, seed=(3, 4))
        assert ais.method == "ais"
        assert float(ais.stddev) < 0.05  # an informative spread, not a vacuous one
        assert float(ais.lower) <= exact <= float(ais.upper), (exact, ais)


def test_exact_log_partition_refuses_large_layers_and_log_prob_says_which():
    big = RBM(EXACT_MAX_UNITS + 5, EXACT_MAX_UNITS + 1, seed=0)
    with pytest.raises(ValueError, match="EXACT_MAX_UNITS"):
        big.log_partition("exact")
    assert big.log_prob_method == "ais"
    assert RBM(64, EXACT_MAX_UNITS, seed=0).log_prob_method == "exact"
    assert RBM(EXACT_MAX_UNITS + 1, 200, seed=0).log_prob_method == "ais"
    with pytest.raises(ValueError, match="method"):
        big.log_partition("bogus")


def test_log_prob_sums_to_one_over_all_visible_states():
    rbm = random_rbm(6, 5, seed=3)
    v = states(6).astype("float32")
    assert abs(float(tf.reduce_sum(tf.exp(rbm.log_prob(v)))) - 1) < 1e-5
    # with an AIS estimate of log Z instead, up to the estimate's error
    ais_total = float(tf.reduce_sum(tf.exp(rbm.log_prob(v, method="ais", seed=(1, 1)))))
    assert abs(ais_total - 1) < 0.05


def test_pseudo_log_likelihood_matches_enumeration():
    rbm = random_rbm(5, 3, seed=5)
    v, log_p, _ = brute_log_p(rbm)
    index = {tuple(row): i for i, row in enumerate(v)}
    expected = []
    for row, lp in zip(v, log_p):
        total = 0.0
        for i in range(5):
            flipped = row.copy()
            flipped[i] = 1 - flipped[i]
            total += lp - np.logaddexp(lp, log_p[index[tuple(flipped)]])
        expected.append(total)
    np.testing.assert_allclose(rbm.pseudo_log_likelihood(v), expected, rtol=1e-5, atol=1e-5)
    # the one-flip estimate (what training reports) is unbiased
    draws = np.stack([rbm.pseudo_log_likelihood(v, seed=(i, 0), exact=False) for i in range(400)])
    standard_error = draws.std(0) / np.sqrt(len(draws))
    assert (np.abs(draws.mean(0) - expected) < 4 * standard_error + 1e-3).all()


# ---------------------------------------------------------------- learning
def exact_gradient(rbm, x):
    """d/dtheta mean_x log p(x) by enumeration: E_data[dF] - E_model[dF] with the sign of -F."""
    W, b, c = params(rbm)
    v, log_p, _ = brute_log_p(rbm)
    sig = lambda a: 1 / (1 + np.exp(-a))
    p = np.exp(log_p)
    hd, hm = sig(c + x @ W), sig(c + v @ W)
    return (
        x.T @ hd / len(x) - (v * p[:, None]).T @ hm,
        x.mean(0) - p @ v,
        hd.mean(0) - p @ hm,
    )


@pytest.mark.parametrize("persistent", [False, True])
def test_cd_k_gradient_with_long_chains_approaches_exact_gradient(persistent):
    """One train_step with SGD(lr=1) moves theta by the CD-k (PCD-k) gradient estimate."""
    rbm = random_rbm(4, 3, seed=6, cd_k=100, persistent=persistent, num_chains=4000)
    rbm.compile(optimizer=keras.optimizers.SGD(1.0))
    x = states(4)[[1, 3, 6, 7, 9, 12, 14, 15]]
    before = params(rbm)
    grads = exact_gradient(rbm, x)
    rbm.train_on_batch(np.tile(x, (500, 1)).astype("float32"))
    steps = [a - b for a, b in zip(params(rbm), before)]
    for step, grad in zip(steps, grads):
        np.testing.assert_allclose(step, grad, atol=0.04)
    assert max(np.abs(g).max() for g in grads) > 0.2  # a gradient worth matching
    if persistent:
        assert np.asarray(rbm.fantasy_particles).any()  # the chains moved from their start


def test_gibbs_chains_converge_to_exact_distribution():
    rbm = random_rbm(4, 3, seed=7)
    v, log_p, _ = brute_log_p(rbm)
    samples = np.asarray(rbm.sample(20000, seed=(5, 6), num_steps=30, init="fresh"))
    codes = samples @ (2.0 ** np.arange(3, -1, -1))  # itertools.product order
    empirical = np.bincount(codes.astype(int), minlength=16) / len(samples)
    total_variation = 0.5 * np.abs(empirical - np.exp(log_p)).sum()
    assert total_variation < 0.02, total_variation


def test_gaussian_gibbs_matches_exact_mixture_mean():
    """p(v) = sum_h pi(h) N(b + s W h, s^2 I), pi(h) ~ exp(c'h + b'Wh/s + |Wh|^2/2)."""
    rbm = random_rbm(2, 3, seed=8, visible="gaussian", visible_std=0.5)
    W, b, c = params(rbm)
    h = states(3)
    log_pi = h @ c + (h @ W.T) @ b / 0.5 + 0.5 * ((h @ W.T) ** 2).sum(-1)
    pi = np.exp(log_pi - np.logaddexp.reduce(log_pi))
    mean = pi @ (b + 0.5 * h @ W.T)
    samples = np.asarray(rbm.sample(20000, seed=(1, 3), num_steps=30))
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.03)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_training_on_binarized_digits_raises_exact_log_likelihood(digits):
    rbm = RBM.for_dataset(digits, num_hidden=16, seed=0)  # 2^16 hidden states: exact log Z
    before = rbm.log_likelihood(digits.x_test)
    assert before["method"] == "exact"
    rbm.compile_default()
    history = rbm.fit(digits.x_train, epochs=5, batch_size=32, verbose=0)
    after = rbm.log_likelihood(digits.x_test)
    assert after["log_likelihood"] > before["log_likelihood"] + 1.5, (before, after)
    pll = history.history["pseudo_log_likelihood"]
    assert pll[-1] > pll[0]
    assert set(rbm.figures(digits)) == {"samples", "filters"}


def test_persistent_chains_survive_save_and_load(tmp_path, digits):
    rbm = RBM.for_dataset(digits, num_hidden=8, persistent=True, num_chains=16, seed=1)
    rbm.compile_default()
    rbm.fit(digits.x_train[:64], epochs=1, batch_size=32, verbose=0)
    rbm.save(tmp_path / "rbm.keras")
    loaded = keras.models.load_model(tmp_path / "rbm.keras")
    np.testing.assert_array_equal(loaded.fantasy_particles, rbm.fantasy_particles)
    assert not loaded.fantasy_particles.trainable
    np.testing.assert_array_equal(
        loaded.sample(20, seed=(1, 2), num_steps=5), rbm.sample(20, seed=(1, 2), num_steps=5)
    )


def test_gaussian_rbm_fits_continuous_digits():
    continuous = data.load("digits-continuous")
    rbm = RBM.for_dataset(continuous, num_hidden=8, visible_std=0.3, seed=0)
    assert rbm.visible == "gaussian" and rbm.support == "real"
    rbm.compile_default(learning_rate=0.01)
    before = float(tf.reduce_mean(rbm.log_prob(continuous.x_test)))
    history = rbm.fit(continuous.x_train, epochs=3, batch_size=32, verbose=0)
    assert set(history.history) == {"loss", "reconstruction_error"}
    assert float(tf.reduce_mean(rbm.log_prob(continuous.x_test))) > before


def test_build_on_a_built_rbm_is_a_no_op():
    rbm = random_rbm(5, 3, seed=11, persistent=True, num_chains=4)
    before = {v.path: np.asarray(v) for v in rbm.weights}
    identities = [id(v) for v in rbm.weights]
    rbm.build((None, 5))
    assert [id(v) for v in rbm.weights] == identities
    for v in rbm.weights:
        np.testing.assert_array_equal(v, before[v.path])


def test_default_optimizer_is_sgd_with_momentum():
    cd, pcd = RBM(4, 3, seed=0), RBM(4, 3, persistent=True, seed=0)
    cd.compile_default()
    pcd.compile_default()
    for model, momentum in ((cd, 0.9), (pcd, 0.5)):
        optimizer = model.optimizer_for("model")
        assert isinstance(optimizer, keras.optimizers.SGD)
        assert optimizer.momentum == momentum
        np.testing.assert_allclose(float(optimizer.learning_rate), 0.05)
    assert cd.density == "exact" and RBM(30, 30, seed=0).density == "estimate"
