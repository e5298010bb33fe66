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


# ---------------------------------------------------------------- score-function training
def score_machine(training, seed=0, **kwargs):
    """A random [3, 2] sigmoid belief net trained by ``training`` (all weights random)."""
    model = HelmholtzMachine([3, 2], training=training, seed=seed, baseline_units=4, **kwargs)
    rng = np.random.default_rng(seed)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(0, 1.0, variable.shape).astype("float32"))
    return model


X = states(3)[[1, 2, 5, 6, 7]].astype("float32")


def exact_bound_gradient(model, num_samples=1):
    """d/dtheta mean_x E[log (1/K) sum_k w_k] by enumerating h (K = 1: the ELBO)."""
    import tensorflow as tf

    h = states(2).astype("float32")
    variables = model.generative + model.recognition
    variables = [v for layer in variables for v in layer.trainable_weights] + [model.prior_logits]
    with tf.GradientTape() as tape:
        xs = tf.repeat(X, len(h), 0)
        hs = tf.tile(h, [len(X), 1])
        log_q = tf.reshape(model.log_recognition([xs, hs]), [len(X), len(h)])
        log_w = tf.reshape(model.log_joint([xs, hs]), [len(X), len(h)]) - log_q
        if num_samples == 1:
            bound = tf.reduce_sum(tf.exp(log_q) * log_w, 1)
        else:  # K = 2: all pairs (h_i, h_j)
            pair_q = log_q[:, :, None] + log_q[:, None, :]
            pair_w = tf.reduce_logsumexp(
                tf.stack(
                    [
                        log_w[:, :, None] + 0 * log_w[:, None, :],
                        log_w[:, None, :] + 0 * log_w[:, :, None],
                    ]
                ),
                0,
            )
            bound = tf.reduce_sum(tf.exp(pair_q) * (pair_w - np.log(2.0)), [1, 2])
        mean = tf.reduce_mean(bound)
    return variables, [np.asarray(g) for g in tape.gradient(mean, variables)]


def estimator_draws(model, variables, repeats=10, copies=2000):
    """Gradients of minus the surrogate on ``repeats`` batches of ``copies`` x X each."""
    import tensorflow as tf

    batch = tf.constant(np.tile(X, (copies, 1)))

    @tf.function  # one trace for all repeats
    def draw(seed):
        with tf.GradientTape() as tape:
            surrogate, _ = model.score_function_surrogate(batch, seed=seed)
        return [-g for g in tape.gradient(surrogate, variables)]

    return [[np.asarray(g) for g in draw(tf.constant([r, 7]))] for r in range(repeats)]


@pytest.mark.parametrize("training", ["reinforce", "nvil", "vimco"])
def test_score_function_estimators_are_unbiased(training):
    """The mean of each estimator equals the exact gradient of the ELBO (VIMCO, K = 2: of
    the two-sample bound) computed by enumeration, within 4 standard errors."""
    model = score_machine(training, seed=1, num_samples=2)
    if training == "nvil":  # a baseline and a centering term that are far from zero
        model.signal_moments.assign([0.7, 1.0])
    variables, exact = exact_bound_gradient(model, 2 if training == "vimco" else 1)
    draws = estimator_draws(model, variables)
    for i, (variable, expected) in enumerate(zip(variables, exact)):
        values = np.stack([d[i] for d in draws])
        se = values.std(0, ddof=1) / np.sqrt(len(values))
        assert (np.abs(values.mean(0) - expected) <= 4 * se + 2e-3).all(), (
            variable.path,
            values.mean(0),
            expected,
            se,
        )
    assert max(np.abs(g).max() for g in exact) > 0.1


def recognition_variance(model, variables, repeats=20, copies=250):
    draws = estimator_draws(model, variables, repeats, copies)
    rec = [i for i, v in enumerate(variables) if "recognition" in v.path]
    return sum(
        (np.stack([d[i] for d in draws]).var(0, ddof=1) * copies * len(X)).sum() for i in rec
    )


def test_nvil_control_variates_reduce_the_gradient_variance():
    """After NVIL has fitted its baseline, its recognition gradient (per example) has far
    less variance than plain REINFORCE's at the same weights (factor 20 when written)."""
    nvil = score_machine("nvil", seed=2)
    nvil.compile(optimizer=keras.optimizers.Adam(0.01))
    nvil.fit(np.tile(X, (100, 1)), epochs=2, batch_size=50, verbose=0)
    reinforce = HelmholtzMachine([3, 2], training="reinforce", seed=2)
    for layer, theirs in zip(
        reinforce.generative + reinforce.recognition, nvil.generative + nvil.recognition
    ):
        for mine, w in zip(layer.trainable_weights, theirs.trainable_weights):
            mine.assign(w)
    reinforce.prior_logits.assign(nvil.prior_logits)
    variables = lambda m: [v for layer in m.recognition for v in layer.trainable_weights]
    factor = recognition_variance(reinforce, variables(reinforce)) / recognition_variance(
        nvil, variables(nvil)
    )
    print(f"variance factor REINFORCE / NVIL: {factor:.1f}")
    assert factor > 3, factor


def test_bernoulli_log_prob_by_formula_is_tfps():
    """The training step's log-probabilities by sigmoid cross-entropy equal TFP's Bernoulli
    log_prob, also at saturated logits and with the prior's one row of logits."""
    from tfdgm.models.helmholtz import _bernoulli, _bernoulli_log_prob

    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(0, 3, (5, 6)), [[-60, -20, 0, 20, 60, 1]]]).astype(
        "float32"
    )
    h = (rng.random((6, 6)) < 0.5).astype("float32")
    np.testing.assert_allclose(
        _bernoulli_log_prob(logits, h), _bernoulli(logits).log_prob(h), rtol=1e-6, atol=1e-5
    )
    np.testing.assert_allclose(
        _bernoulli_log_prob(logits[0], h), _bernoulli(logits[0]).log_prob(h), rtol=1e-6, atol=1e-5
    )
