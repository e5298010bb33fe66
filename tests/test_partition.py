"""The generic log-partition machinery on a model that is not an RBM: a fully connected
Boltzmann machine f(x) = exp(x'Ax / 2 + b'x) over 8 binary units, whose log Z is
enumerated here in NumPy."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdgm import partition

N = 8


@pytest.fixture
def boltzmann():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.4, (N, N))
    a = np.triu(a, 1) + np.triu(a, 1).T  # symmetric, zero diagonal
    return a, rng.normal(0, 1, N)


def numpy_log_z(a, b):
    x = np.array(list(itertools.product([0.0, 1.0], repeat=N)))
    return np.logaddexp.reduce(0.5 * np.einsum("si,ij,sj->s", x, a, x) + x @ b)


def test_binary_configurations_are_every_state_once():
    rows = np.asarray(partition.binary_configurations(5, 0, 32))
    assert rows.dtype == np.float64 and rows.shape == (32, 5)
    assert len({tuple(r) for r in rows}) == 32
    np.testing.assert_array_equal(rows @ 2.0 ** np.arange(5), np.arange(32))
    np.testing.assert_array_equal(partition.binary_configurations(5, 7, 12), rows[7:12])


@pytest.mark.parametrize("chunk_bits", [2, 5, 14])
def test_enumeration_matches_numpy_for_any_chunk_size(boltzmann, chunk_bits):
    a, b = (tf.constant(t) for t in boltzmann)

    def log_unnormalized(x):
        return 0.5 * tf.reduce_sum(tf.matmul(x, a) * x, -1) + tf.linalg.matvec(x, b)

    log_z = partition.enumerate_log_partition(log_unnormalized, N, chunk_bits=chunk_bits)
    assert log_z.dtype == tf.float64
    np.testing.assert_allclose(float(log_z), numpy_log_z(*boltzmann), rtol=1e-12)
    with pytest.raises(ValueError, match="EXACT_MAX_UNITS"):
        partition.enumerate_log_partition(log_unnormalized, N, max_bits=N - 1)


def test_ais_schedule_runs_from_0_to_1():
    betas = np.asarray(partition.ais_schedule(1000))
    assert betas[0] == 0.0 and betas[-1] == 1.0 and len(betas) == 1001
    assert (np.diff(betas) > 0).all()
    assert (betas >= 0.9).sum() > (betas < 0.5).sum()  # denser near 1


def test_ais_on_a_fully_connected_boltzmann_machine(boltzmann):
    """Base p_0: independent Bernoulli(sigmoid(b)), log Z_0 = sum softplus(b); p_beta has
    couplings beta A; the transition is one sweep of single-site Gibbs at beta."""
    a, b = (tf.constant(t, tf.float32) for t in boltzmann)
    exact = numpy_log_z(*boltzmann)

    def log_unnormalized(x, beta):
        return 0.5 * beta * tf.reduce_sum(tf.matmul(x, a) * x, -1) + tf.linalg.matvec(x, b)

    def transition(x, beta, seed):
        uniforms = tf.random.stateless_uniform(tf.shape(x), seed)
        for i in range(N):  # p(x_i = 1 | x_-i) = sigmoid(b_i + beta A_i x)
            p = tf.sigmoid(b[i] + beta * tf.linalg.matvec(x, a[i]))
            x = tf.tensor_scatter_nd_update(
                tf.transpose(x), [[i]], [tf.cast(uniforms[:, i] < p, x.dtype)]
            )
            x = tf.transpose(x)
        return x

    num_chains = 300
    initial = tf.cast(
        tf.random.stateless_uniform([num_chains, N], (1, 2)) < tf.sigmoid(b), tf.float32
    )
    result = partition.annealed_importance_sampling(
        initial,
        tf.reduce_sum(tf.math.softplus(b)),
        log_unnormalized,
        transition,
        partition.ais_schedule(200),
        seed=tf.constant([3, 4]),
    )
    assert result.method == "ais" and result.value.dtype == tf.float32
    assert 0 < float(result.stddev) < 0.05
    assert float(result.lower) <= exact <= float(result.upper), (exact, result)
    assert abs(float(result.value) - exact) < 4 * float(result.stddev)
    # a wrong base log Z shifts the estimate by exactly that much
    shifted = partition.annealed_importance_sampling(
        initial,
        tf.reduce_sum(tf.math.softplus(b)) + 1.0,
        log_unnormalized,
        transition,
        partition.ais_schedule(200),
        seed=tf.constant([3, 4]),
    )
    np.testing.assert_allclose(float(shifted.value), float(result.value) + 1.0, rtol=1e-6)


def test_cache_recomputes_only_when_weights_or_settings_change():
    weights = keras.Variable(np.ones(3, "float32"))
    calls = []

    def compute():
        calls.append(1)
        return partition.LogPartition.exact(tf.reduce_sum(tf.convert_to_tensor(weights)))

    cache = partition.LogPartitionCache()
    first = cache.get_or_compute(("exact",), [weights], compute)
    assert cache.get_or_compute(("exact",), [weights], compute) is first and len(calls) == 1
    cache.get_or_compute(("ais", 10), [weights], compute)
    assert len(calls) == 2
    weights.assign(np.zeros(3, "float32"))
    assert float(cache.get_or_compute(("ais", 10), [weights], compute).value) == 0.0
    assert len(calls) == 3
    tf.function(lambda: cache.get_or_compute(("ais", 10), [weights], compute).value)()
    assert len(calls) == 4  # never served from the cache inside a traced function
    cache.clear()
    cache.get_or_compute(("ais", 10), [weights], compute)
    assert len(calls) == 5


def test_rbm_log_z_is_cached_per_seed_and_weights():
    from tfdgm import RBM

    rbm = RBM(6, 4, seed=0)
    exact = rbm.log_partition("exact")
    assert rbm.log_partition("exact") is exact
    ais = rbm.log_partition("ais", num_chains=10, num_betas=20, seed=(1, 2))
    assert rbm.log_partition("ais", num_chains=10, num_betas=20, seed=(1, 2)) is ais
    assert rbm.log_partition("ais", num_chains=10, num_betas=20, seed=(1, 3)) is not ais
    rbm.hidden_bias.assign(np.ones(4, "float32"))
    assert float(rbm.log_partition("exact").value) != float(exact.value)
