"""Known-answer tests for the discrete likelihood models: histograms and autoregressive models."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdgm import data
from tfdgm.models.autoregressive import MADE, MarkovAutoregressive, RNNAutoregressive
from tfdgm.models.histogram import MAX_CELLS, FactorizedCategorical, Histogram

FACTORIES = {
    "histogram": lambda shape, k: Histogram(shape, k, smoothing=0.5),
    "factorized": lambda shape, k: FactorizedCategorical(shape, k, smoothing=0.5),
    "markov": lambda shape, k: MarkovAutoregressive(shape, k, window=2, hidden_units=(8,), seed=0),
    "gru": lambda shape, k: RNNAutoregressive(shape, k, cell="gru", units=8, seed=0),
    "lstm": lambda shape, k: RNNAutoregressive(shape, k, cell="lstm", units=8, seed=0),
    "made": lambda shape, k: MADE(shape, k, hidden_units=(32, 32), seed=0),
    "made-order-agnostic": lambda shape, k: MADE(
        shape, k, hidden_units=(16,), order_agnostic=True, num_orders=3, seed=1
    ),
}


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)  # initial weights are drawn from Keras' global stream


def _all_configurations(depth, k):
    return np.array(list(itertools.product(range(k), repeat=depth)), np.float32)


def _structured_data(depth, k, n=256, seed=0):
    """Correlated sequences: a noisy copy chain x_i = x_{i-1} (mod K) with prob. 0.8."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, depth), np.int64)
    x[:, 0] = rng.integers(k, size=n)
    for i in range(1, depth):
        keep = rng.random(n) < 0.8
        x[:, i] = np.where(keep, x[:, i - 1], rng.integers(k, size=n))
    return x.astype(np.float32)


@pytest.mark.parametrize("name", [n for n in FACTORIES if n != "lstm"])  # lstm: same code path
def test_probabilities_sum_to_one_over_the_whole_space(name):
    """sum_x exp(log p(x)) = 1 over {0, 1}^6 (untrained) and {0, 1, 2}^4 (untrained, trained)."""
    binary = FACTORIES[name]((6,), 2)
    total = tf.reduce_sum(tf.exp(binary.log_prob(_all_configurations(6, 2))))
    assert float(total) == pytest.approx(1.0, abs=1e-5)
    shape, k = (2, 2), 3  # a 2x2 "image": events keep their shape
    model = FACTORIES[name](shape, k)
    grid = _all_configurations(4, k).reshape(-1, *shape)
    assert float(tf.reduce_sum(tf.exp(model.log_prob(grid)))) == pytest.approx(1.0, abs=1e-5)
    model.compile_default(learning_rate=3e-2)
    model.fit(_structured_data(4, k, n=64).reshape(-1, *shape), epochs=2, batch_size=32, verbose=0)
    log_p = model.log_prob(grid)
    assert log_p.dtype == tf.float32 and log_p.shape == (len(grid),)
    assert float(tf.reduce_sum(tf.exp(log_p))) == pytest.approx(1.0, abs=1e-5)
    assert float(tf.reduce_max(log_p) - tf.reduce_min(log_p)) > 0.1  # training moved it
    if isinstance(model, MADE) and model.order_agnostic:
        ensemble = model.ensemble_log_prob(grid)
        assert float(tf.reduce_sum(tf.exp(ensemble))) == pytest.approx(1.0, abs=1e-5)
        assert model.network.order == [1, 2, 3, 4]  # natural order restored after fit


def _dependency(model, depth, k):
    """dep[i, j] = max |d logits_i / d one_hot_j| over a random batch."""
    one_hot = tf.one_hot(np.random.default_rng(0).integers(k, size=(32, depth)), k)
    with tf.GradientTape() as tape:
        tape.watch(one_hot)
        logits = model.logits_from_one_hot(one_hot)  # (4, D, K)
    jac = tape.batch_jacobian(logits, one_hot)  # (batch, D, K, D, K)
    return tf.reduce_max(tf.abs(jac), axis=[0, 2, 4]).numpy()


@pytest.mark.parametrize("name", ["markov", "gru", "lstm", "made"])
def test_conditional_i_ignores_inputs_j_at_or_after_i(name):
    depth, k = 7, 3
    model = FACTORIES[name]((depth,), k)
    dep = _dependency(model, depth, k)
    i, j = np.indices(dep.shape)
    assert np.all(dep[j >= i] == 0.0)
    # ... and it does see the value just before it (the test is not vacuous).
    assert np.all(dep[np.arange(1, depth), np.arange(depth - 1)] > 0)
    if name == "markov":  # window d = 2: nothing before i - 2 either
        assert np.all(dep[j < i - 2] == 0.0)


def test_made_masks_follow_an_arbitrary_order():
    depth, k = 6, 2
    model = MADE((depth,), k, hidden_units=(32, 32), seed=0)
    order = [3, 6, 1, 5, 2, 4]
    model.set_order(order)
    dep = _dependency(model, depth, k)
    order = np.array(order)
    later = order[None, :] >= order[:, None]  # later[i, j]: x_j comes at or after x_i
    assert np.all(dep[later] == 0.0) and np.all(dep[~later] > 0)
    assert model.sampling_order() == [2, 4, 0, 5, 3, 1]


@pytest.mark.parametrize("name", ["markov", "gru", "lstm", "made-order-agnostic"])
def test_samples_follow_the_density(name):
    """Sequential sampling draws from exp(log_prob): total variation to the exact table."""
    depth, k, num = 6, 2, 20_000
    model = FACTORIES[name]((depth,), k)
    model.compile_default(learning_rate=3e-2)
    model.fit(_structured_data(depth, k, n=512), epochs=3, batch_size=64, verbose=0)
    grid = _all_configurations(depth, k)
    p = np.exp(model.log_prob(grid).numpy())
    samples = model.sample(num, seed=(3, 4)).numpy()
    freq = np.bincount((samples @ (k ** np.arange(depth - 1, -1, -1))).astype(int), minlength=64)
    tv = 0.5 * np.abs(freq / num - p).sum()
    assert tv < 0.04, tv  # sampling noise alone gives about 0.02
    # The trained model has learned the correlations (a product of marginals would not).
    marginals = np.stack([np.mean(samples == 1, 0)] * len(grid))
    independent = np.prod(np.where(grid == 1, marginals, 1 - marginals), axis=1)
    assert 0.5 * np.abs(independent - p).sum() > 0.2


def test_histogram_is_the_smoothed_empirical_frequency():
    depth, k, alpha = 3, 3, 0.7
    x = _structured_data(depth, k, n=100, seed=2)
    model = Histogram((depth,), k, smoothing=alpha)
    model.compile_default()
    model.fit(x, epochs=1, batch_size=16, shuffle=True, verbose=0)
    grid = _all_configurations(depth, k)
    counts = np.array([np.sum(np.all(x == g, axis=1)) for g in grid])
    expected = (counts + alpha) / (len(x) + alpha * k**depth)
    np.testing.assert_allclose(np.exp(model.log_prob(grid).numpy()), expected, rtol=1e-6)
    assert float(model.num_examples) == len(x)
    # The factorized model: products of smoothed per-dimension frequencies.
    fact = FactorizedCategorical((depth,), k, smoothing=alpha)
    fact.compile_default()
    fact.fit(x, epochs=1, batch_size=16, verbose=0)
    marg = np.stack([(np.sum(x == c, 0) + alpha) / (len(x) + alpha * k) for c in range(k)], -1)
    expected = np.prod([marg[i, grid[:, i].astype(int)] for i in range(depth)], axis=0)
    np.testing.assert_allclose(np.exp(fact.log_prob(grid).numpy()), expected, rtol=1e-6)


def test_histogram_counts_add_up_across_replicas():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("two logical CPUs were not configured before TensorFlow started")
    x = _structured_data(4, 2, n=96)
    with tf.distribute.MirroredStrategy([d.name for d in devices[:2]]).scope():
        model = Histogram((4,), 2)
        model.compile_default()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    counts = np.bincount((x @ (2 ** np.arange(3, -1, -1))).astype(int), minlength=16)
    np.testing.assert_array_equal(np.asarray(model.counts), counts)


def test_histogram_refuses_large_spaces_with_the_parameter_count():
    with pytest.raises(ValueError, match=str(2**64 - 1)):
        Histogram((64,), 2)
    with pytest.raises(ValueError, match=str(17**8 - 1)):
        Histogram((8,), 17)
    assert Histogram((20,), 2).num_parameters == MAX_CELLS - 1  # the largest accepted


def test_parameter_counts():
    assert Histogram((8,), 2).num_parameters == 2**8 - 1
    assert Histogram((4,), 3).num_parameters == 3**4 - 1
    assert FactorizedCategorical((64,), 17).num_parameters == 64 * 16
    d, k, depth, h = 3, 4, 10, 16
    markov = MarkovAutoregressive((depth,), k, window=d, hidden_units=(h,))
    assert markov.num_parameters == (d * k + depth) * h + h + h * k + k
    made = MADE((depth,), k, hidden_units=(h,))
    assert made.num_parameters == depth * h + h + h * depth * k + depth * k


def test_digits_crop8_is_registered_and_small():
    ds = data.load("digits-crop8")
    assert ds.event_shape == (8,) and ds.support == "binary" and ds.image_shape == (2, 4)
    full = data.load_digits()
    np.testing.assert_array_equal(ds.x_train, full.x_train[:, [26, 27, 28, 29, 34, 35, 36, 37]])


# ------------------------------------------------------------------ class-conditional MADE
def test_conditional_made_sums_to_one_for_every_label_and_samples_follow_it():
    """MADE(num_classes=3) on {0, 1, 2}^3 after a short fit(x, y): sum_x p(x | y) = 1 for
    every y; the conditionals differ between labels, even the first one (which sees no x,
    only y); samples for y follow p(. | y) (total variation)."""
    depth, k, classes = 3, 3, 3
    rng = np.random.default_rng(0)
    y = rng.integers(classes, size=192)
    x = np.clip(y[:, None] + rng.integers(-1, 2, size=(192, depth)), 0, k - 1)  # x near y
    model = MADE((depth,), k, hidden_units=(16,), num_classes=classes, seed=0)
    model.compile_default(learning_rate=3e-2)
    model.fit(x.astype("float32"), y, epochs=3, batch_size=32, verbose=0)
    grid = _all_configurations(depth, k)
    tables = []
    for label in range(classes):
        log_p = model.log_prob(grid, labels=np.full(len(grid), label))
        assert float(tf.reduce_sum(tf.exp(log_p))) == pytest.approx(1.0, abs=1e-5)
        tables.append(np.exp(log_p.numpy()))
    first = [table.reshape(k, -1).sum(1) for table in tables]  # p(x_1 | y)
    assert np.abs(first[0] - first[2]).max() > 0.1  # x_1 depends on y
    num = 6000
    samples = model.sample(num, labels=2, seed=(1, 2)).numpy()
    freq = np.bincount((samples @ k ** np.arange(depth - 1, -1, -1)).astype(int), minlength=27)
    assert 0.5 * np.abs(freq / num - tables[2]).sum() < 0.04


def test_conditional_made_labels_checked_and_exported_signature():
    model = MADE((4,), 2, hidden_units=(8,), num_classes=2, seed=0)
    x = np.zeros((2, 4), "float32")
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        model.log_prob(x, labels=[0, 2])
    with pytest.raises(ValueError, match="is conditional"):
        model.fit(x, epochs=1, verbose=0)
    names = [spec.name for spec in model.export_endpoints()["log_prob"][1]]
    assert names == ["x", "labels"]
