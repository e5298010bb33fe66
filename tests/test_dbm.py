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


# ---------------------------------------------------------------- greedy pre-training
def pretraining_dbm(sizes, seed=0, **kwargs):
    """A random DBM with pre-training on (its RBMs' own biases random too)."""
    dbm = random_dbm(sizes, seed=seed, scale=0.5, pretrain_epochs=1, **kwargs)
    rng = np.random.default_rng(seed + 1)
    for bias in dbm.pretraining_biases:
        bias.assign(rng.normal(0, 1, bias.shape).astype("float32"))
    return dbm


def copies_rbm_brute(w, a, c, u, d):
    """-E over every state of an RBM with u tied visible copies and d tied hidden copies
    (E = -sum_ab v_a'W h_b - a' sum_a v_a - c' sum_b h_b), rows: the copies' joint state."""
    V, H = w.shape
    vs = [np.split(s, u) for s in states(u * V)]
    hs = [np.split(s, d) for s in states(d * H)]
    neg_e = np.array([[sum(vi @ w @ hj for vi in v for hj in h) + a @ sum(v) + c @ sum(h)
                       for h in hs] for v in vs])  # fmt: skip
    return vs, neg_e


def test_doubled_rbms_free_energy_matches_enumeration_of_the_copies():
    """RBM 0 of a 3-2-2 DBM sees two copies of v, RBM 1 two copies of h2: F(s) with s the
    sum of the visible copies equals -log sum over the copies' hidden states."""
    dbm = pretraining_dbm((3, 2, 2), seed=11)
    assert [dbm.rbm_copies(k) for k in range(2)] == [(2, 1), (1, 2)]
    for layer, (u, d) in enumerate([(2, 1), (1, 2)]):
        w, a, c = (np.asarray(p, np.float64) for p in dbm._rbm_parameters(layer))
        vs, neg_e = copies_rbm_brute(w, a, c, u, d)
        tied = [k for k, v in enumerate(vs) if all((x == v[0]).all() for x in v)]
        expected = -np.logaddexp.reduce(neg_e[tied], axis=1)
        s = np.array([u * vs[k][0] for k in tied], "float32")
        np.testing.assert_allclose(dbm.rbm_free_energy(layer, s), expected, rtol=1e-5)


def test_pretraining_step_follows_the_exact_gradient_of_the_doubled_rbm():
    """SGD(lr=1) on RBM 0 (two tied copies of v) with CD-100 from 4000 rows moves W_0 by
    E_data[(v_1 + v_2) h'] - E_model[(v_1 + v_2) h'], enumerated over both copies and h."""
    dbm = pretraining_dbm((3, 2, 2), seed=12, gibbs_steps=100)
    dbm.compile(optimizer=keras.optimizers.SGD(1.0))
    x = np.tile(states(3)[[1, 3, 5, 6, 7]], (800, 1)).astype("float32")
    w, a, c = (np.asarray(p, np.float64) for p in dbm._rbm_parameters(0))
    vs, neg_e = copies_rbm_brute(w, a, c, 2, 1)
    p = np.exp(neg_e - np.logaddexp.reduce(neg_e.ravel()))  # (visible copies, h)
    s = np.array([v[0] + v[1] for v in vs])
    model_term = s.T @ p @ states(2)
    data = np.unique(x, axis=0)
    data_term = (2 * data).T @ (1 / (1 + np.exp(-(c + 2 * data @ w)))) / len(data)
    before = np.asarray(dbm.kernels[0])
    dbm.train_on_batch(x)
    np.testing.assert_allclose(
        np.asarray(dbm.kernels[0]) - before, data_term - model_term, atol=0.03
    )
    np.testing.assert_array_equal(dbm.kernels[1], pretraining_dbm((3, 2, 2), seed=12).kernels[1])
    assert np.abs(data_term - model_term).max() > 0.1


def test_compose_halves_the_middle_weights_and_averages_the_biases():
    dbm = pretraining_dbm((3, 2, 2, 2), seed=13)
    assert [dbm.rbm_copies(k) for k in range(3)] == [(2, 1), (1, 1), (1, 2)]
    W = [np.asarray(w) for w in dbm.kernels]
    b, own = [np.asarray(c) for c in dbm.biases], [np.asarray(c) for c in dbm.pretraining_biases]
    dbm.compose_pretrained()
    for k, expected in enumerate([W[0], W[1] / 2, W[2]]):
        np.testing.assert_allclose(dbm.kernels[k], expected, rtol=1e-6)
    for k, expected in enumerate([b[0], (b[1] + own[0]) / 2, (b[2] + own[1]) / 2, b[3]]):
        np.testing.assert_allclose(dbm.biases[k], expected, rtol=1e-6)


def test_pretraining_through_fit_starts_from_a_better_bound():
    """Greedy pre-training (5 epochs per RBM, over two fit calls) of a 64-16-8 DBM on 300
    digits: the composed DBM's variational bound (exact log Z) on held-out digits is above
    the random start's (-24.95 -> -23.03 nats when written; more epochs give more)."""
    keras.utils.set_random_seed(0)
    digits = data.load("digits")
    x, x_test = digits.x_train[:300], digits.x_test[:100]
    dbm = DBM.for_dataset(digits, hidden_sizes=(16, 8), seed=0, num_chains=32, pretrain_epochs=5)
    start = float(tf.reduce_mean(dbm.log_prob(x_test)))
    dbm.compile_default()
    first = dbm.fit(x, epochs=5, batch_size=16, verbose=0)  # RBM 0 only
    top = np.asarray(dbm.kernels[1])
    second = dbm.fit(x, epochs=5, batch_size=16, verbose=0)  # RBM 1, then composed
    assert first.history["layer"] == [0] * 5 and second.history["layer"] == [1] * 5
    assert not np.allclose(top, dbm.kernels[1]) and dbm.pretraining_layer() == 2
    after = float(tf.reduce_mean(dbm.log_prob(x_test)))
    assert after > start + 1.2, (start, after)
