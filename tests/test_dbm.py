"""Known answers for deep Boltzmann machines: brute-force enumeration of every layer of tiny
DBMs (energies, log Z, log p(v)), the variational bound below the exact log p, the
mean-field fixed point, AIS against enumeration, the exact log-likelihood gradient."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_rbm import random_rbm

from tfdgm import DBM, data


def states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def random_dbm(sizes, seed=0, scale=1.0, **kwargs) -> DBM:
    dbm = DBM(sizes, seed=seed, **kwargs)
    rng = np.random.default_rng(seed)
    dbm.set_parameters(
        weights=[rng.normal(0, scale, (a, b)) for a, b in zip(sizes[:-1], sizes[1:])],
        biases=[rng.normal(0, 1, n) for n in sizes],
    )
    return dbm


def brute(dbm):
    """-E over every joint state (rows: v in itertools order), log p(v), log Z (NumPy)."""
    W = [np.asarray(w, np.float64) for w in dbm.kernels]
    b = [np.asarray(c, np.float64) for c in dbm.biases]
    grids = [states(n) for n in dbm.layer_sizes]
    joint = np.array(
        [
            sum(h @ c for h, c in zip(hs, b)) + sum(hs[k] @ W[k] @ hs[k + 1] for k in range(len(W)))
            for hs in itertools.product(*grids)
        ]
    ).reshape(len(grids[0]), -1)
    log_z = np.logaddexp.reduce(joint.ravel())
    return grids[0], np.logaddexp.reduce(joint, axis=1) - log_z, log_z, joint


@pytest.mark.parametrize("sizes", [(3, 2, 3), (2, 3, 2, 2), (4, 3)])
def test_log_partition_and_exact_log_prob_match_brute_force(sizes):
    dbm = random_dbm(sizes, seed=sum(sizes))
    v, log_p, log_z, _ = brute(dbm)
    np.testing.assert_allclose(float(dbm.log_partition("exact").value), log_z, rtol=1e-7)
    np.testing.assert_allclose(dbm.exact_log_prob(v.astype("float32")), log_p, atol=1e-5)
    # the energy at one joint state, from the definition
    rng = np.random.default_rng(0)
    layers = [rng.integers(0, 2, (5, n)).astype("float32") for n in sizes]
    W, b = [np.asarray(w) for w in dbm.kernels], [np.asarray(c) for c in dbm.biases]
    expected = -sum(h @ c for h, c in zip(layers, b)) - sum(
        ((layers[k] @ W[k]) * layers[k + 1]).sum(-1) for k in range(len(W))
    )
    np.testing.assert_allclose(dbm.energy(layers), expected, rtol=1e-5, atol=1e-5)


def test_one_hidden_layer_is_an_rbm():
    rbm = random_rbm(4, 3, seed=3)
    dbm = DBM([4, 3], seed=0)
    dbm.set_parameters(weights=[rbm.kernel], biases=[rbm.visible_bias, rbm.hidden_bias])
    v = states(4).astype("float32")
    np.testing.assert_allclose(dbm.exact_log_prob(v), rbm.log_prob(v), atol=1e-5)
    # with one hidden layer q(h | v) = p(h | v) exactly: the bound is tight
    np.testing.assert_allclose(dbm.log_prob(v), rbm.log_prob(v), atol=1e-4)


@pytest.mark.parametrize("sizes", [(3, 2, 3), (2, 3, 2, 2)])
def test_variational_bound_is_below_exact_and_mean_field_is_a_fixed_point(sizes):
    dbm = random_dbm(sizes, seed=5, mean_field_steps=100, mean_field_tolerance=1e-7)
    v = states(sizes[0]).astype("float32")
    exact, bound = np.asarray(dbm.exact_log_prob(v)), np.asarray(dbm.log_prob(v))
    assert (bound <= exact + 1e-5).all(), bound - exact
    assert (exact - bound).max() > 1e-3  # a real gap: the posterior is not factorized
    mu = dbm.mean_field(v)
    for k in range(1, len(sizes)):
        np.testing.assert_allclose(mu[k], tf.sigmoid(dbm.conditional_logits(mu, k)), atol=1e-5)
    # the bound at the fixed point beats the bound at the initial bottom-up pass
    worse = DBM(list(sizes), mean_field_steps=0, seed=0)
    worse.set_parameters(weights=list(dbm.kernels), biases=list(dbm.biases))
    assert (np.asarray(worse.log_prob(v)) <= bound + 1e-5).all()


def test_ais_matches_enumeration():
    dbm = random_dbm((6, 5, 4), seed=7, scale=0.5)
    exact = float(dbm.log_partition("exact").value)
    ais = dbm.log_partition("ais", num_chains=100, num_betas=500, seed=(1, 2))
    assert ais.method == "ais" and float(ais.stddev) < 0.05
    assert float(ais.lower) - 0.02 <= exact <= float(ais.upper) + 0.02, (exact, ais)


def test_gibbs_chains_reach_the_exact_distribution():
    dbm = random_dbm((3, 2, 2), seed=8)
    _, log_p, _, _ = brute(dbm)
    samples = np.asarray(dbm.sample(20000, seed=(3, 4), num_steps=30))
    codes = (samples @ 2.0 ** np.arange(2, -1, -1)).astype(int)
    empirical = np.bincount(codes, minlength=8) / len(samples)
    assert 0.5 * np.abs(empirical - np.exp(log_p)).sum() < 0.02


def test_training_step_matches_the_gradient_of_the_bound():
    """SGD(lr=1) moves theta by E_q[-dE] - E_p[-dE]: the mean-field term exactly, the model
    term from 4000 chains x 100 sweeps, against enumeration of E_p."""
    sizes = (3, 2, 2)
    dbm = random_dbm(sizes, seed=9, scale=0.5, num_chains=4000, gibbs_steps=100)
    dbm.compile(optimizer=keras.optimizers.SGD(1.0))
    x = states(3)[[1, 3, 5, 6, 7]].astype("float32")
    _, _, log_z, joint = brute(dbm)
    p = np.exp(joint - log_z).ravel()  # over itertools.product(v, h1, h2)
    configs = [np.concatenate(c) for c in itertools.product(*[states(n) for n in sizes])]
    configs = np.array(configs)
    v, h1, h2 = configs[:, :3], configs[:, 3:5], configs[:, 5:]
    mu = [np.asarray(m, np.float64) for m in dbm.mean_field(x)]
    expected = [
        mu[0].T @ mu[1] / len(x) - (v * p[:, None]).T @ h1,
        mu[1].T @ mu[2] / len(x) - (h1 * p[:, None]).T @ h2,
    ]
    before = [np.asarray(w) for w in dbm.kernels]
    dbm.train_on_batch(x)
    for w, b0, g in zip(dbm.kernels, before, expected):
        np.testing.assert_allclose(np.asarray(w) - b0, g, atol=0.03)
    assert max(np.abs(g).max() for g in expected) > 0.1


@pytest.mark.slow
def test_fit_on_digits_raises_the_bound():
    """10 epochs on binarized digits: the bound (exact log Z, 16 odd units) rose by 2.7
    nats when written (-24.64 to -21.95)."""
    digits = data.load("digits")
    dbm = DBM.for_dataset(digits, hidden_sizes=(16, 8), seed=0, num_chains=100)
    before = float(tf.reduce_mean(dbm.log_prob(digits.x_test)))
    dbm.compile_default(learning_rate=0.05)
    history = dbm.fit(digits.x_train, epochs=10, batch_size=32, verbose=0)
    after = float(tf.reduce_mean(dbm.log_prob(digits.x_test)))
    assert after > before + 1.5, (before, after)
    assert np.isfinite(history.history["loss"]).all()
