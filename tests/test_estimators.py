"""Known answers for the log-mean-exp estimators (against NumPy in float64)."""

import numpy as np
import pytest
import tensorflow as tf

from tfdgm import estimators


def numpy_log_mean_exp_and_std_error(log_w):
    """log mean(w) and sqrt(s^2 / S) / mean(w), s^2 the sample variance (ddof 1), in float64."""
    w = np.exp(np.asarray(log_w, np.float64))
    mean = w.mean(0)
    return np.log(mean), w.std(0, ddof=1) / np.sqrt(len(w)) / mean


@pytest.fixture
def log_w():
    rng = np.random.default_rng(0)
    # three examples whose log-weights sit far from 0 (the shift must carry them)
    return rng.normal(0, 1.5, (37, 3)) + np.array([-300.0, 0.0, 250.0])


def test_log_mean_exp_matches_numpy(log_w):
    expected, _ = numpy_log_mean_exp_and_std_error(log_w - np.array([-300.0, 0.0, 250.0]))
    expected += np.array([-300.0, 0.0, 250.0])
    np.testing.assert_allclose(estimators.log_mean_exp(log_w), expected, rtol=1e-12)
    np.testing.assert_allclose(estimators.log_mean_exp(log_w.T, axis=1), expected, rtol=1e-12)


def test_std_error_is_the_delta_method_of_the_sample_std(log_w):
    shifted = log_w - log_w.max(0)
    expected_mean, expected_se = numpy_log_mean_exp_and_std_error(shifted)
    estimate, se = estimators.log_mean_exp_and_std_error(log_w)
    np.testing.assert_allclose(estimate, expected_mean + log_w.max(0), rtol=1e-12)
    np.testing.assert_allclose(se, expected_se, rtol=1e-10)
    # float32 inputs give float32 results, close to the float64 answer
    estimate32, se32 = estimators.log_mean_exp_and_std_error(log_w.astype("float32"))
    assert estimate32.dtype == tf.float32
    np.testing.assert_allclose(se32, expected_se, rtol=1e-4)


@pytest.mark.parametrize("chunk", [1, 4, 10, 37, 100])
def test_chunking_does_not_change_the_answer(log_w, chunk):
    calls = []

    def draw(k, seed):
        start = sum(calls)
        calls.append(k)
        return tf.constant(log_w[start : start + k])

    estimate, se = estimators.chunked_log_mean_exp(draw, len(log_w), chunk=chunk, std_error=True)
    expected, expected_se = estimators.log_mean_exp_and_std_error(log_w)
    assert sum(calls) == len(log_w) and max(calls) == min(chunk, len(log_w))
    np.testing.assert_allclose(estimate, expected, rtol=1e-12)
    np.testing.assert_allclose(se, expected_se, rtol=1e-9)
    only = estimators.chunked_log_mean_exp(
        lambda k, seed: tf.constant(log_w[:k]), 5, chunk=5, std_error=False
    )
    np.testing.assert_allclose(only, estimators.log_mean_exp(log_w[:5]), rtol=1e-12)


def test_chunks_get_folded_seeds_and_estimate_a_known_mean():
    """E[exp(z)] = exp(1/2) for z ~ N(0, 1): log of it is 1/2, within the reported error."""
    seeds = []

    def draw(k, seed):
        seeds.append(tuple(np.asarray(seed)))
        return tf.random.stateless_normal([k, 2], seed, dtype=tf.float64)

    estimate, se = estimators.chunked_log_mean_exp(
        draw, 20000, seed=(3, 4), chunk=1000, std_error=True
    )
    assert len(set(seeds)) == 20  # every chunk draws fresh samples
    assert (np.abs(np.asarray(estimate) - 0.5) < 4 * np.asarray(se)).all(), (estimate, se)
    assert (np.asarray(se) < 0.05).all()
    again = estimators.chunked_log_mean_exp(draw, 20000, seed=(3, 4), chunk=1000)
    np.testing.assert_array_equal(again, estimate)


def test_edge_cases():
    # one sample: the estimate is that log-weight, with no spread
    estimate, se = estimators.log_mean_exp_and_std_error(tf.constant([[2.0, -1.0]]))
    np.testing.assert_allclose(estimate, [2.0, -1.0])
    np.testing.assert_array_equal(se, [0.0, 0.0])
    # all weights zero: log 0 = -inf, not NaN
    estimate, _ = estimators.log_mean_exp_and_std_error(tf.constant([-np.inf, -np.inf]))
    assert float(estimate) == -np.inf
    # equal weights: no spread
    _, se = estimators.log_mean_exp_and_std_error(tf.fill([50], 7.0))
    assert float(se) == 0.0
    with pytest.raises(ValueError, match="num_samples"):
        estimators.chunked_log_mean_exp(lambda k, seed: tf.zeros([k]), 0)


def test_log_mean_exp_gradient_is_the_normalized_weights(log_w):
    x = tf.constant(log_w[:, 1])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        plain = estimators.log_mean_exp(x)
        merged = estimators.chunked_log_mean_exp(lambda k, seed: x[:k], len(log_w), chunk=len(x))
    w = np.exp(log_w[:, 1] - log_w[:, 1].max())
    np.testing.assert_allclose(tape.gradient(plain, x), w / w.sum(), rtol=1e-10)
    np.testing.assert_allclose(tape.gradient(merged, x), w / w.sum(), rtol=1e-10)


def test_log_std_error_bounds():
    lower, upper = estimators.log_std_error_bounds(tf.constant(1.0), tf.constant(0.1))
    np.testing.assert_allclose([lower, upper], [1 + np.log(0.7), 1 + np.log(1.3)], rtol=1e-6)
