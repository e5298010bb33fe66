"""Known answers for the general Boltzmann machine: brute-force enumeration of a tiny machine
(energies, log Z, log p, the log-likelihood gradient), the RBM as its special case R = S = 0,
Gibbs samplers against the exact distribution."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_rbm import random_rbm

from tfdgm import BoltzmannMachine


def states(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def symmetric(rng, n, scale):
    a = np.triu(rng.normal(0, scale, (n, n)), 1)
    return a + a.T


def random_machine(V, H, seed=0, scale=0.8, visible=True, hidden=True, **kwargs):
    bm = BoltzmannMachine(
        V, H, visible_interactions=visible, hidden_interactions=hidden, seed=seed, **kwargs
    )
    rng = np.random.default_rng(seed)
    bm.set_parameters(
        kernel=rng.normal(0, scale, (V, H)),
        visible_bias=rng.normal(0, 1, V),
        hidden_bias=rng.normal(0, 1, H),
        visible_interactions=symmetric(rng, V, scale) if visible else None,
        hidden_interactions=symmetric(rng, H, scale) if hidden else None,
    )
    return bm


def brute(bm):
    """Energies of every (v, h) from the definition, log p(v) and log Z, in NumPy."""
    R, W, S = (np.asarray(t, np.float64) for t in bm.interactions())
    b, c = (np.asarray(t, np.float64) for t in bm.biases())
    v, h = states(bm.num_visible), states(bm.num_hidden)
    energy = -(
        np.einsum("vi,ij,vj->v", v, R, v)[:, None]
        + v @ W @ h.T
        + np.einsum("hi,ij,hj->h", h, S, h)[None]
        + (v @ b)[:, None]
        + (h @ c)[None]
    )
    log_z = np.logaddexp.reduce(-energy.ravel())
    return v, h, energy, np.logaddexp.reduce(-energy, axis=1) - log_z, log_z


@pytest.mark.parametrize(
    ("visible", "hidden"), [(True, True), (True, False), (False, True), (False, False)]
)
def test_energy_log_partition_and_log_prob_match_brute_force(visible, hidden):
    bm = random_machine(4, 3, seed=1, visible=visible, hidden=hidden)
    v, h, energy, log_p, log_z = brute(bm)
    grid_v, grid_h = np.repeat(v, len(h), 0), np.tile(h, (len(v), 1))
    np.testing.assert_allclose(bm.energy(grid_v, grid_h), energy.ravel(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(bm.log_partition("exact").value), log_z, rtol=1e-7)
    np.testing.assert_allclose(bm.log_prob(v.astype("float32")), log_p, atol=1e-5)
    R, _, S = (np.asarray(t) for t in bm.interactions())
    for m in (R, S):  # the parametrization keeps both symmetric with a zero diagonal
        np.testing.assert_array_equal(m, m.T)
        assert not np.diag(m).any()


def test_rbm_is_the_special_case_without_lateral_weights():
    rbm = random_rbm(5, 3, seed=2)
    bm = BoltzmannMachine(5, 3, visible_interactions=False, hidden_interactions=False, seed=0)
    bm.set_parameters(kernel=rbm.kernel, visible_bias=rbm.visible_bias, hidden_bias=rbm.hidden_bias)
    v, h = states(5), states(3)
    grid_v, grid_h = np.repeat(v, len(h), 0), np.tile(h, (len(v), 1))
    np.testing.assert_allclose(bm.energy(grid_v, grid_h), rbm.energy(grid_v, grid_h), atol=1e-6)
    np.testing.assert_allclose(bm.free_energy(v), rbm.free_energy(v), atol=1e-5)
    np.testing.assert_allclose(
        float(bm.log_partition().value), float(rbm.log_partition().value), rtol=1e-7
    )
    # a full machine with R = S = 0 set explicitly gives the same log Z by joint enumeration
    full = BoltzmannMachine(5, 3, seed=0)
    full.set_parameters(
        kernel=rbm.kernel,
        visible_bias=rbm.visible_bias,
        hidden_bias=rbm.hidden_bias,
        visible_interactions=np.zeros((5, 5)),
        hidden_interactions=np.zeros((3, 3)),
    )
    np.testing.assert_allclose(
        float(full.log_partition().value), float(rbm.log_partition().value), rtol=1e-6
    )


def test_set_parameters_refuses_asymmetric_or_diagonal_interactions():
    bm = BoltzmannMachine(3, 2, seed=0)
    with pytest.raises(ValueError, match="symmetric"):
        bm.set_parameters(visible_interactions=np.triu(np.ones((3, 3)), 1))
    with pytest.raises(ValueError, match="symmetric"):
        bm.set_parameters(hidden_interactions=np.eye(2))
    with pytest.raises(ValueError, match="shape"):
        bm.set_parameters(kernel=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="built with"):
        BoltzmannMachine(3, 2, visible_interactions=False).set_parameters(
            visible_interactions=np.ones((3, 3)) - np.eye(3)
        )


def brute_gradient(bm, x):
    """d mean_x log p(x) / d(W, b, c, R, S) = E_data,p(h|v)[stats] - E_p(v,h)[stats]."""
    v, h, energy, log_p, log_z = brute(bm)
    joint = np.exp(-energy - log_z)  # (v, h)
    index = (x @ 2.0 ** np.arange(bm.num_visible - 1, -1, -1)).astype(int)
    posterior = joint[index] / joint[index].sum(1, keepdims=True)  # p(h | x), (n, h)

    def stats(pv):  # weights over the (v, h) pairs -> expected statistics
        return dict(
            kernel=np.einsum("vh,vi,hj->ij", pv, v, h),
            visible_bias=pv.sum(1) @ v,
            hidden_bias=pv.sum(0) @ h,
            R=np.einsum("vh,vi,vj->ij", pv, v, v),
            S=np.einsum("vh,hi,hj->ij", pv, h, h),
        )

    data_weights = np.zeros_like(joint)
    np.add.at(data_weights, index, posterior / len(x))
    positive, negative = stats(data_weights), stats(joint)
    return {k: positive[k] - negative[k] for k in positive}


def test_log_prob_gradient_matches_brute_force():
    bm = random_machine(4, 3, seed=3, scale=0.5)
    x = states(4)[[1, 3, 6, 7, 9, 12, 14, 15]]
    with tf.GradientTape() as tape:
        mean = tf.reduce_mean(bm.log_prob(x.astype("float32")))
    grads = dict(
        zip(
            ["kernel", "visible_bias", "hidden_bias", "R", "S"],
            tape.gradient(
                mean, [bm.kernel, bm.visible_bias, bm.hidden_bias, bm.visible_free, bm.hidden_free]
            ),
        )
    )
    expected = brute_gradient(bm, x)
    for key in ("kernel", "visible_bias", "hidden_bias"):
        np.testing.assert_allclose(grads[key], expected[key], atol=1e-5, err_msg=key)
    # d/dA of x'(triu(A,1) + triu(A,1)')x = 2 x_i x_j above the diagonal, 0 elsewhere
    for key in ("R", "S"):
        np.testing.assert_allclose(
            grads[key], 2 * np.triu(expected[key], 1), atol=1e-5, err_msg=key
        )


def test_training_step_with_long_chains_follows_the_exact_gradient():
    """S = 0: the mean-field positive phase is exact; 3000 chains x 50 sweeps of the
    sequential sampler give the negative phase; SGD(lr=1) moves theta by the estimate."""
    bm = random_machine(
        4, 3, seed=4, scale=0.5, hidden=False, sampler="sequential", gibbs_steps=50, num_chains=3000
    )
    bm.compile(optimizer=keras.optimizers.SGD(1.0))
    x = states(4)[[1, 3, 6, 7, 9, 12, 14, 15]]
    expected = brute_gradient(bm, x)
    names = ("kernel", "visible_bias", "hidden_bias")
    before = {k: np.asarray(getattr(bm, k)) for k in names} | {"R": np.asarray(bm.visible_free)}
    bm.train_on_batch(np.tile(x, (50, 1)).astype("float32"))
    for key in names:
        np.testing.assert_allclose(
            np.asarray(getattr(bm, key)) - before[key], expected[key], atol=0.04
        )
    step = np.asarray(bm.visible_free) - before["R"]
    np.testing.assert_allclose(np.triu(step, 1), 2 * np.triu(expected["R"], 1), atol=0.08)
    assert np.abs(expected["kernel"]).max() > 0.1


@pytest.mark.parametrize("sampler", ["sequential", "checkerboard"])
def test_gibbs_chains_reach_the_exact_distribution(sampler):
    bm = random_machine(3, 2, seed=5, hidden=False, sampler=sampler)
    _, _, _, log_p, _ = brute(bm)
    samples = np.asarray(bm.sample(20000, seed=(1, 2), num_steps=20))
    codes = (samples @ 2.0 ** np.arange(2, -1, -1)).astype(int)
    empirical = np.bincount(codes, minlength=8) / len(samples)
    assert 0.5 * np.abs(empirical - np.exp(log_p)).sum() < 0.02


def test_ais_agrees_with_exact_log_partition():
    bm = random_machine(6, 4, seed=6, scale=0.4)
    exact = float(bm.log_partition("exact").value)
    ais = bm.log_partition("ais", num_chains=100, num_betas=300, seed=(1, 2))
    assert float(ais.stddev) < 0.05
    assert float(ais.lower) - 0.02 <= exact <= float(ais.upper) + 0.02, (exact, ais)


def test_mean_field_is_a_fixed_point():
    bm = random_machine(5, 4, seed=7, scale=0.3, mean_field_steps=50)
    v = states(5).astype("float32")
    mu = bm.hidden_mean_field(v)
    R, W, S = bm.interactions()
    again = tf.sigmoid(bm.biases()[1] + tf.matmul(v, W) + 2.0 * tf.matmul(mu, S))
    np.testing.assert_allclose(mu, again, atol=1e-5)
