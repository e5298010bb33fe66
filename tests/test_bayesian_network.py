"""Known answers for discrete Bayesian networks: the course's parameter counts, counting
estimates against NumPy, exact posteriors against a brute-force joint, clear errors."""

import itertools

import numpy as np
import pytest

from tfdgm.models.bayesian_network import MAX_QUERY_CONFIGURATIONS, BayesianNetwork

# the course's example: age, gender and marital status independent; salary depends on age
# and marital status, the label y on salary and gender
PARENTS = {"salary": ["age", "marital"], "y": ["salary", "gender"]}
CARDINALITIES = {"age": 3, "salary": 3, "gender": 2, "marital": 2, "y": 2}


def course_data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    age, gender, marital = rng.integers(3, size=n), rng.integers(2, size=n), rng.integers(2, size=n)
    salary = np.minimum(age + marital * rng.integers(2, size=n), 2)
    y = (rng.uniform(size=n) < 0.2 + 0.3 * salary / 2 + 0.3 * gender).astype(int)
    return np.stack([age, salary, gender, marital, y], 1).astype(np.float32)


@pytest.fixture(scope="module")
def net():
    """The course's network fitted on 400 examples with pseudo-count 1/2 (shared: the
    tests only read it, or refit it on the same data)."""
    net = BayesianNetwork(PARENTS, CARDINALITIES, pseudo_count=0.5, seed=0)
    net.compile_default()
    net.fit(course_data(), epochs=1, batch_size=128, verbose=0)
    return net


def brute_joint(net):
    """p(x) of every configuration, float64 [3, 3, 2, 2, 2], from the tables alone."""
    tables = {v: np.asarray(net.table(v), np.float64) for v in CARDINALITIES}
    joint = np.zeros(list(CARDINALITIES.values()))
    for config in itertools.product(*[range(k) for k in CARDINALITIES.values()]):
        value = dict(zip(CARDINALITIES, config))
        p = 1.0
        for v in CARDINALITIES:
            p *= tables[v][tuple(value[u] for u in net.parents[v]) + (value[v],)]
        joint[config] = p
    return joint


def test_parameter_counts_of_the_course_example():
    net = BayesianNetwork(PARENTS, CARDINALITIES)
    # 3 + 2 + 2 + (3 * 3 * 2) + (2 * 3 * 2) entries; 3 + 9 + 18 + 36 + 72 by the chain rule
    assert net.num_probabilities() == 37
    assert net.num_probabilities("chain") == 138
    assert net.num_free_parameters() == 2 + 1 + 1 + 2 * 6 + 1 * 6 == 22
    assert net.num_free_parameters("chain") == 3 * 3 * 2 * 2 * 2 - 1 == 71


def test_tables_are_smoothed_counts_and_log_prob_is_exact(net):
    x = course_data()
    levels = x.astype(int)
    counts = np.zeros((3, 2, 3))  # salary | age, marital
    np.add.at(counts, (levels[:, 0], levels[:, 3], levels[:, 1]), 1)
    expected = (counts + 0.5) / (counts.sum(-1, keepdims=True) + 3 * 0.5)
    np.testing.assert_allclose(net.table("salary"), expected, rtol=1e-6)
    joint = brute_joint(net)
    assert abs(joint.sum() - 1) < 1e-6
    np.testing.assert_allclose(net.log_prob(x[:50]), np.log(joint[tuple(levels[:50].T)]), rtol=1e-5)
    # a second epoch re-estimates from the same counts: the same tables
    net.fit(x, epochs=2, batch_size=100, verbose=0)
    np.testing.assert_allclose(net.table("salary"), expected, rtol=1e-6)


def test_query_is_the_enumerated_posterior(net):
    joint = brute_joint(net)  # axes age, salary, gender, marital, y
    posterior = net.query("y", {"age": 2, "gender": 1})
    expected = joint[2, :, 1].sum(axis=(0, 1))
    np.testing.assert_allclose(posterior, expected / expected.sum(), rtol=1e-5)
    pair = net.query(["age", "marital"], {"y": 1})
    expected = joint[..., 1].sum(axis=(1, 2))
    np.testing.assert_allclose(pair, expected / expected.sum(), rtol=1e-5)
    np.testing.assert_allclose(net.query("salary"), joint.sum(axis=(0, 2, 3, 4)), rtol=1e-5)


def test_ancestral_samples_follow_the_joint(net):
    samples = np.asarray(net.sample(20000, seed=(3, 4))).astype(int)
    frequencies = np.zeros(list(CARDINALITIES.values()))
    np.add.at(frequencies, tuple(samples.T), 1.0 / len(samples))
    np.testing.assert_allclose(frequencies, brute_joint(net), atol=0.012)


def test_bad_structures_and_levels_fail_before_training():
    with pytest.raises(ValueError, match="cycle a -> b -> c -> a"):
        BayesianNetwork({"b": ["a"], "c": ["b"], "a": ["c"]}, {"a": 2, "b": 2, "c": 2})
    with pytest.raises(ValueError, match="unknown variable 'income'"):
        BayesianNetwork({"y": ["income"]}, {"y": 2})
    with pytest.raises(ValueError, match="unknown variable 'z'"):
        BayesianNetwork({"z": ["y"]}, {"y": 2})
    with pytest.raises(ValueError, match="cardinality >= 2"):
        BayesianNetwork({}, {"y": 1})
    net = BayesianNetwork(PARENTS, CARDINALITIES)
    net.compile_default()
    bad = course_data(8)
    bad[0, 2] = 2  # gender has levels 0, 1
    with pytest.raises(ValueError, match=r"variable 'gender' \(column 2\) has 2 levels"):
        net.fit(bad, epochs=1, verbose=0)
    assert all(float(np.asarray(c).sum()) == 0 for c in net.counts.values())
    with pytest.raises(ValueError, match="outside 0..1"):
        net.query("y", {"gender": 2})


def test_query_refuses_networks_too_large_to_enumerate():
    names = {f"x{i}": 2 for i in range(21)}
    net = BayesianNetwork({}, names)
    with pytest.raises(
        ValueError, match=f"2097152 configurations, more than {MAX_QUERY_CONFIGURATIONS}"
    ):
        net.query("x0")
    evidence = {f"x{i}": 0 for i in range(1, 6)}
    np.testing.assert_allclose(net.query("x0", evidence), [0.5, 0.5])  # 2^16 configurations
