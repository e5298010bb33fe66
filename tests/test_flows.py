"""Normalizing flows against known answers: Jacobians by autodiff, densities integrated on
grids, exact inverses, closed-form pre-transforms, fit quality on densities we know."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdgm import VAE, data
from tfdgm.bijectors import FlowLayer, bounded
from tfdgm.models.flows import MAF, RealNVP, bits_per_dim

VARIANTS = {
    "realnvp": dict(kind="realnvp"),
    "realnvp-actnorm": dict(kind="realnvp", normalization="actnorm"),
    "realnvp-batch": dict(kind="realnvp", normalization="batch"),
    "realnvp-unbounded": dict(kind="realnvp", log_scale_bound=None),
    "maf": dict(kind="maf"),
    "iaf": dict(kind="maf", inverse=True),
}


def perturb(layer, scale=0.5, seed=0):
    """Overwrite every variable with random values so the flow is far from the identity
    (conditioner outputs start at zero); batch-norm moving variances stay positive."""
    rng = np.random.default_rng(seed)
    for v in layer.weights:
        if "mask" in v.path or "initialized" in v.path:
            continue
        values = scale * rng.standard_normal(v.shape)
        if "moving_variance" in v.path:
            values = np.exp(values)
        v.assign(values.astype("float32"))


def flow_model(kind="realnvp", **kwargs):
    cls = RealNVP if kind == "realnvp" else MAF
    return cls((2,), seed=0, **kwargs)


def integrate_2d(log_prob_fn, bound, n=400):
    """Midpoint rule for the integral of exp(log_prob) over [-bound, bound]^2."""
    h = 2 * bound / n
    axis = -bound + h * (np.arange(n) + 0.5)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    return float(np.sum(np.exp(np.asarray(log_prob_fn(grid), np.float64))) * h * h)


# ------------------------------------------------------------------ bijector mathematics
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dim", [2, 5])
def test_inverse_and_log_det_match_autodiff(variant, dim):
    flow = FlowLayer(dim, num_layers=3, hidden_units=(16,), **VARIANTS[variant])
    perturb(flow, scale=0.3, seed=dim)
    z = np.random.default_rng(1).standard_normal((6, dim)).astype("float32")
    z = tf.constant(z)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        x = flow.bijector().forward(z)
    jacobian = tape.batch_jacobian(x, z, experimental_use_pfor=False).numpy().astype(np.float64)
    sign, log_det = np.linalg.slogdet(jacobian)
    assert np.all(sign != 0)
    assert np.abs(log_det).max() > 0.1  # not the identity
    fldj = flow.bijector().forward_log_det_jacobian(z, event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, log_det, rtol=1e-4, atol=1e-4)
    # a fresh bijector and a copied tensor: TFP's cache cannot hand back z
    x_copy = tf.constant(np.array(x))
    np.testing.assert_allclose(flow.bijector().inverse(x_copy), z, atol=2e-4)
    ildj = flow.bijector().inverse_log_det_jacobian(x_copy, event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, -log_det, rtol=1e-4, atol=1e-4)


def test_made_conditioner_is_autoregressive():
    """x_i of one MAF layer depends on z_{<=i} only: the Jacobian is lower-triangular."""
    flow = FlowLayer(4, num_layers=1, hidden_units=(16,), kind="maf")
    perturb(flow)
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 4)).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        z = flow.bijector().inverse(x)
    jacobian = tape.batch_jacobian(z, x, experimental_use_pfor=False).numpy()
    assert np.abs(np.triu(jacobian, k=1)).max() == 0
    assert np.abs(np.tril(jacobian, k=-1)).max() > 1e-3


def test_bounded_log_scale():
    raw = tf.constant([-1e4, -1.0, 0.0, 1e-3, 1e4])
    out = bounded(raw, 2.0).numpy()
    assert np.all(np.abs(out) <= 2.0) and out[2] == 0
    np.testing.assert_allclose(out[3], 1e-3, rtol=1e-5)  # the identity near zero


def test_identity_at_initialization():
    """Zero-initialized conditioners: an untrained flow is the identity, p = N(0, I)."""
    for kind in ("realnvp", "maf"):
        model = flow_model(kind, num_layers=3, hidden_units=(8,))
        x = np.random.default_rng(0).standard_normal((5, 2)).astype("float32")
        expected = -0.5 * (x**2).sum(-1) - np.log(2 * np.pi)
        np.testing.assert_allclose(model.log_prob(x), expected, rtol=1e-5)


# ------------------------------------------------------------------ densities integrate to 1
@pytest.mark.parametrize(
    "variant, scale", [("realnvp", 0.3), ("maf", 0.3), ("iaf", 0.2), ("realnvp-batch", 0.3)]
)  # IAF's tails grow fast with the scale of the weights
def test_random_flow_density_integrates_to_one(variant, scale):
    kwargs = dict(VARIANTS[variant])
    model = flow_model(kwargs.pop("kind"), num_layers=3, hidden_units=(16,), **kwargs)
    perturb(model.flow, scale=scale)
    x = model.sample(4000, seed=(0, 1)).numpy()
    assert np.all(np.abs(x) < 12.0)  # the grid holds the mass
    z = tf.constant(np.random.default_rng(0).standard_normal((2000, 2)).astype("float32"))
    log_det = model.bijector().forward_log_det_jacobian(z, event_ndims=1).numpy()
    assert log_det.std() > 0.1  # a non-linear map: its volume change varies from point to point
    total = integrate_2d(model.log_prob, bound=12.0, n=600)
    assert abs(total - 1.0) < 1e-2, total


def test_wrong_log_det_fails_to_integrate():
    """The integration test has teeth: dropping the log-det term breaks normalization."""
    model = flow_model("realnvp", num_layers=3, hidden_units=(16,))
    perturb(model.flow, scale=0.3)

    def without_log_det(x):
        return model.base_distribution().log_prob(model.bijector().inverse(x))

    assert abs(integrate_2d(without_log_det, bound=12.0, n=600) - 1.0) > 0.05


# ------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def moons():
    return data.load("moons")


def test_short_fits_stay_finite_and_trained_density_integrates(moons):
    """Three seeds of RealNVP on moons at a high learning rate (1e-2): finite, better than
    the initial N(0, I), and the trained density still integrates to 1."""
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        model = RealNVP((2,), num_layers=4, hidden_units=(32, 32), seed=seed)
        model.compile_default(learning_rate=1e-2)
        initial_ll = float(np.mean(model.log_prob(moons.x_test)))  # about -2.84
        history = model.fit(moons.x_train, epochs=6, batch_size=256, verbose=0)
        assert np.isfinite(history.history["loss"]).all(), seed
        test_ll = float(np.mean(model.log_prob(moons.x_test)))
        assert test_ll > initial_ll + 0.2, (seed, initial_ll, test_ll)
    assert abs(integrate_2d(model.log_prob, bound=6.0, n=500) - 1.0) < 1e-2


def test_batch_norm_moments_in_training_moving_averages_after():
    model = flow_model("realnvp", num_layers=2, hidden_units=(8,), normalization="batch")
    x = 3.0 + 2.0 * np.random.default_rng(0).standard_normal((256, 2)).astype("float32")
    norm = model.flow.norms[0]
    train_lp = model.distribution(batch=x).log_prob(x).numpy()
    # the batch moments standardize x exactly: -log p = log N terms + log(2) per dimension
    z = (x - x.mean(0)) / np.sqrt(x.var(0) + norm.epsilon)
    expected = -0.5 * (z**2).sum(-1) - np.log(2 * np.pi) - 0.5 * np.log(x.var(0) + 1e-5).sum()
    np.testing.assert_allclose(train_lp, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.moving_mean.numpy(), 0.1 * x.mean(0), rtol=1e-4)
    # evaluation uses the moving averages, not the batch
    eval_lp = model.log_prob(x).numpy()
    assert np.abs(eval_lp - train_lp).max() > 1.0


def test_actnorm_data_dependent_init(moons):
    model = flow_model("realnvp", num_layers=2, hidden_units=(8,), normalization="actnorm")
    x = 5.0 + 3.0 * moons.x_train[:512]
    assert model.initialize(x) == 2
    h = model.flow.norms[0].bijector().inverse(x).numpy()
    np.testing.assert_allclose(h.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(h.std(0), 1.0, atol=1e-4)
    assert model.initialize(x) == 0  # only once


# (Every normalization and the IAF also fit, sample, save and load in the contract suite,
# as variants realnvp[actnorm], realnvp[batchnorm] and maf[iaf]; here ActNorm's
# data-dependent initialization must not run again after loading.)
@pytest.mark.parametrize("variant", ["realnvp-actnorm"])
def test_variants_fit_save_load(variant, moons, tmp_path):
    kwargs = dict(VARIANTS[variant])
    model = flow_model(kwargs.pop("kind"), num_layers=2, hidden_units=(8,), **kwargs)
    model.compile_default(learning_rate=1e-3)
    model.fit(moons.x_train[:256], epochs=1, batch_size=64, verbose=0)
    path = str(tmp_path / "flow.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = moons.x_test[:8]
    np.testing.assert_allclose(loaded.log_prob(x), model.log_prob(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.sample(4, seed=(3, 4)), model.sample(4, seed=(3, 4)))
    assert loaded.get_config() == model.get_config()
    if variant == "realnvp-actnorm":  # initialized by fit, and not again after loading
        assert model.initialize(x) == 0 and loaded.initialize(x) == 0


# ------------------------------------------------------------------ fit quality
@pytest.mark.slow
@pytest.mark.parametrize("name, limit", [("8gaussians", 1.6), ("checkerboard", 0.65)])
def test_kl_to_known_density_decreases(name, limit):
    """KL(p_true || p_model) = E_true[log p_true - log p_model], Monte Carlo on the test
    points, from about 2.17 (8gaussians) and 1.12 (checkerboard) nats untrained to below
    ``limit`` after 80 steps. Longer runs and their figures are in docs/flows.md."""
    dataset = data.load(name)
    keras.utils.set_random_seed(0)
    model = RealNVP((2,), num_layers=4, hidden_units=(64, 64), seed=0)
    model.compile_default(learning_rate=5e-3)
    kl_before = model.summary_metrics(dataset)["kl_true_model"]
    model.fit(dataset.x_train, epochs=20, batch_size=512, verbose=0)
    kl = model.summary_metrics(dataset)["kl_true_model"]
    assert kl < limit < kl_before, (kl, kl_before)


# ------------------------------------------------------------------ images and bits/dim
def test_logit_pre_transform_density_in_closed_form():
    """At init the flow is the identity, so p(x) = N(logit(s)) |d logit(s)/dx| with
    s = a + (1 - 2a) x: log p = sum_i log N(y_i) + log(1 - 2a) - log(s_i (1 - s_i))."""
    a = 0.05
    model = RealNVP((2, 2), num_layers=2, hidden_units=(8,), preprocess="logit", logit_alpha=a)
    x = np.random.default_rng(0).uniform(0, 1, (5, 2, 2)).astype("float32")
    s = a + (1 - 2 * a) * x.reshape(5, 4).astype(np.float64)
    y = np.log(s) - np.log1p(-s)
    expected = -0.5 * y**2 - 0.5 * np.log(2 * np.pi) + np.log(1 - 2 * a) - np.log(s * (1 - s))
    np.testing.assert_allclose(model.log_prob(x), expected.sum(-1), rtol=1e-5)
    samples = model.sample(100, seed=(1, 1)).numpy()
    assert samples.shape == (100, 2, 2) and samples.min() > -a and samples.max() < 1 + a


def test_bits_per_dim_of_dequantized_data():
    # uniform density on [0, 1)^D is uniform over the K^D levels: log2 K bits per dimension
    assert float(bits_per_dim(0.0, event_size=3, num_levels=8)) == pytest.approx(3.0)
    # discrete P(l) = integral of p over the bin of l; Jensen: -log2 P(l) / D <= E_u bits/dim
    model = RealNVP((2,), num_layers=2, hidden_units=(8,), preprocess="logit")
    perturb(model.flow, scale=0.3)
    levels, n = 4, 100  # n x n midpoints per bin
    u = (np.arange(n) + 0.5) / n
    uu = np.stack(np.meshgrid(u, u), -1).reshape(-1, 2)
    for level in [(0, 0), (1, 3), (3, 2)]:
        x = ((np.array(level) + uu) / levels).astype("float32")
        log_p = model.log_prob(x).numpy().astype(np.float64)
        prob = np.mean(np.exp(log_p)) / levels**2
        expected_bits = float(np.mean(model.bits_per_dim(x, levels)))
        assert -np.log2(prob) / 2 <= expected_bits + 1e-6
        assert expected_bits - (-np.log2(prob) / 2) < 0.5  # and the bound is not vacuous


# ------------------------------------------------------------------ flow as a VAE posterior
def test_flow_posterior_vae_trains_saves_and_bounds(tmp_path):
    digits = data.load("digits")
    flow = FlowLayer(2, num_layers=2, hidden_units=(16,), kind="realnvp", name="posterior_flow")
    vae = VAE(event_shape=(64,), latent_dim=2, hidden_units=(32,), posterior_flow=flow, seed=0)
    vae.compile_default(learning_rate=3e-3)
    before = [v.numpy() for v in vae.posterior_flow.trainable_variables]
    history = vae.fit(digits.x_train[:512], epochs=4, batch_size=64, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    after = [v.numpy() for v in vae.posterior_flow.trainable_variables]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))  # gradients reach f

    x = digits.x_test[:64]
    elbo = np.mean([vae.elbo(x, seed=(i, 0)).numpy().mean() for i in range(5)])
    log_p = float(np.mean(vae.log_prob(x, num_samples=500, seed=(0, 1))))
    assert elbo <= log_p, (elbo, log_p)

    path = str(tmp_path / "vae.keras")
    vae.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.posterior_flow, FlowLayer)
    np.testing.assert_allclose(
        loaded.log_prob(x[:8], num_samples=50, seed=(0, 0)),
        vae.log_prob(x[:8], num_samples=50, seed=(0, 0)),
        rtol=1e-5,
        atol=1e-5,
    )


# ------------------------------------------------------------------ reverse KL to a target
def gaussian_target(log_z=2.0):
    """An unnormalized correlated Gaussian p~ = Z N(m, L L^T), log Z = ``log_z``: a flow with
    affine couplings can represent it exactly."""
    import tensorflow_probability as tfp

    m = np.array([1.0, -0.5], "float32")
    scale_tril = np.array([[0.8, 0.0], [0.6, 0.5]], "float32")
    normal = tfp.distributions.MultivariateNormalTriL(m, scale_tril)
    return normal, (lambda x: normal.log_prob(x) + log_z), m, scale_tril @ scale_tril.T


def test_reverse_kl_is_kl_minus_log_partition():
    """reverse_kl (forward pass: x = f(z), log q = log p_Z - FLDJ) equals an independent
    Monte-Carlo KL(q || p) - log Z (samples scored by log_prob, the inverse pass) for a
    perturbed flow; without the log-determinant the two would differ by ~E|FLDJ|."""
    normal, target, _, _ = gaussian_target(log_z=2.0)
    for cls in (RealNVP, MAF):
        model = cls((2,), num_layers=2, hidden_units=(8,), seed=0, target_log_prob=target)
        perturb(model.flow, scale=0.3)
        loss = float(model.reverse_kl(10000, seed=(0, 1)))
        x = model.sample(10000, seed=(5, 6))
        terms = (model.log_prob(x) - normal.log_prob(x)).numpy().astype(np.float64)
        standard_error = terms.std() / np.sqrt(len(terms))
        assert abs(loss - (terms.mean() - 2.0)) < 4 * standard_error + 1e-3, (loss, terms.mean())
        assert terms.mean() > 0.1  # far from the target: the comparison is not trivial


def test_reverse_kl_fit_recovers_a_gaussian_target():
    """100 reverse-KL steps through fit (no data) drive KL(q || p) from ~1.7 to < 0.05 nats
    and recover the target's mean and covariance; the last loss is about KL - log Z."""
    normal, target, mean, cov = gaussian_target(log_z=2.0)
    model = RealNVP((2,), num_layers=2, hidden_units=(16,), seed=0, target_log_prob=target)
    model.compile_default(learning_rate=2e-2)
    x0 = model.sample(5000, seed=(1, 2))
    kl_before = float(np.mean(model.log_prob(x0) - normal.log_prob(x0)))
    model.fit(model.target_batches(num_steps=100, batch_size=128), verbose=0)
    x = model.sample(20000, seed=(1, 2))
    kl = float(np.mean(model.log_prob(x) - normal.log_prob(x)))
    assert kl < 0.05 < 1.0 < kl_before, (kl, kl_before)
    np.testing.assert_allclose(x.numpy().mean(0), mean, atol=0.05)
    np.testing.assert_allclose(np.cov(x.numpy().T), cov, atol=0.06)
    assert abs(float(model.reverse_kl(5000, seed=(3, 4))) - (kl - 2.0)) < 0.05


def test_bad_target_log_prob_refused_before_training():
    with pytest.raises(ValueError, match="callable"):
        RealNVP((2,), num_layers=1, hidden_units=(4,), target_log_prob=3.0)
    with pytest.raises(ValueError, match="finite log densities"):
        RealNVP((2,), num_layers=1, hidden_units=(4,), target_log_prob=lambda x: x)
    with pytest.raises(ValueError, match="no target_log_prob"):
        RealNVP((2,), num_layers=1, hidden_units=(4,)).reverse_kl(10)


# ------------------------------------------------------------------ class-conditional flows
@pytest.mark.parametrize("kind", ["realnvp", "maf"])
def test_conditional_density_integrates_to_one_per_label(kind):
    """A perturbed conditional flow (conditioners take the one-hot y): exp log p(x | y)
    integrates to 1 on a grid for each y, p(.|0) != p(.|1), and the log-det of f(.; y)
    matches the autodiff Jacobian."""
    model = flow_model(kind, num_layers=2, hidden_units=(16,), num_classes=2)
    perturb(model.flow, scale=0.3)
    for y in (0, 1):
        total = integrate_2d(lambda g, y=y: model.log_prob(g, labels=np.full(len(g), y)), 10.0, 300)
        assert abs(total - 1.0) < 1e-2, (y, total)
    x = np.random.default_rng(0).standard_normal((50, 2)).astype("float32")
    gap = model.log_prob(x, labels=np.zeros(50)) - model.log_prob(x, labels=np.ones(50))
    assert np.abs(gap).max() > 0.1  # the label matters
    z = tf.constant(x[:6])
    labels = tf.constant([0, 1, 0, 1, 1, 0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(z)
        out = model.bijector(labels=labels).forward(z)
    jacobian = tape.batch_jacobian(out, z, experimental_use_pfor=False).numpy()
    fldj = model.bijector(labels=labels).forward_log_det_jacobian(z, event_ndims=1)
    np.testing.assert_allclose(fldj, np.linalg.slogdet(jacobian)[1], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["realnvp", "maf"])
def test_conditional_flow_with_logit_pre_transform_is_normalized_and_reads_the_label(kind):
    """The digits' set-up in 2-D: a conditional flow on [0, 1)^2 through the logit
    pre-transform. Perturbed, p(x | y) integrates to 1 on the square for each y; after a
    short fit(x, y) on two classes in opposite corners, held-out points score higher under
    their own label than under the other (the conditioning reaches log_prob)."""
    cls = RealNVP if kind == "realnvp" else MAF
    model = cls((2,), num_layers=2, hidden_units=(16,), preprocess="logit", num_classes=2, seed=0)
    perturb(model.flow, scale=0.3)
    n, a = 150, model.logit_alpha  # the support: x = (sigmoid(.) - a) / (1 - 2a)
    low, high = -a / (1 - 2 * a), (1 - a) / (1 - 2 * a)
    axis = low + (high - low) * (np.arange(n) + 0.5) / n
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype("float32")
    for y in (0, 1):
        log_p = np.asarray(model.log_prob(grid, labels=np.full(len(grid), y)), np.float64)
        assert abs(np.exp(log_p).sum() * ((high - low) / n) ** 2 - 1.0) < 1e-2, y
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=1200)
    x = np.clip(0.25 + 0.5 * y[:, None] + 0.08 * rng.standard_normal((1200, 2)), 0.01, 0.99)
    x = x.astype("float32")
    model.compile_default(learning_rate=2e-2)
    model.fit(x[:1000], y[:1000], epochs=10, batch_size=500, verbose=0)
    right = np.asarray(model.log_prob(x[1000:], labels=y[1000:]))
    wrong = np.asarray(model.log_prob(x[1000:], labels=1 - y[1000:]))
    assert np.mean(right > wrong) > 0.9 and np.mean(right - wrong) > 2.0


def test_conditional_flow_labels_checked():
    model = flow_model("realnvp", num_layers=1, hidden_units=(4,), num_classes=3)
    x = np.zeros((2, 2), "float32")
    with pytest.raises(ValueError, match="needs labels"):
        model.log_prob(x)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        model.log_prob(x, labels=[0, 3])
    with pytest.raises(ValueError, match="is conditional"):
        model.fit(x, epochs=1, verbose=0)
    assert model.sample(4, labels=2, seed=(0, 1)).shape == (4, 2)
    with pytest.raises(ValueError, match="unconditional"):
        RealNVP((2,), num_classes=2, target_log_prob=lambda x: x[:, 0])


# ------------------------------------------------------------------ one conditioner pass
ONE_PASS = {
    "realnvp": dict(kind="realnvp"),
    "realnvp-conditional-logit": dict(kind="realnvp", num_classes=2, preprocess="logit"),
    "maf-conditional-logit": dict(kind="maf", num_classes=2, preprocess="logit"),
    "realnvp-batch": dict(kind="realnvp", normalization="batch"),
}


def one_pass_case(name):
    """A perturbed 2-layer flow, a batch in (0, 1) (for the logit) and labels (or None)."""
    options = dict(ONE_PASS[name])
    model = flow_model(options.pop("kind"), num_layers=2, hidden_units=(8,), **options)
    perturb(model.flow, scale=0.3, seed=3)
    x = np.random.default_rng(4).uniform(0.05, 0.95, (16, 2)).astype("float32")
    labels = np.arange(16) % 2 if model.num_classes else None
    return model, x, labels


def loss_and_grads(model, x, labels):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.example_objective(x, training=True, labels=labels)["loss"])
    return loss, tape.gradient(loss, model.trainable_variables)


@pytest.mark.parametrize("name", sorted(ONE_PASS))
def test_one_pass_log_prob_equals_tfp_bijectors(name, monkeypatch):
    """The fused bijectors give TFP's tfb.RealNVP / tfb.MaskedAutoregressiveFlow's log p(x),
    training loss and its gradients, and samples with their log q (reverse KL), to float32
    round-off."""
    from tfdgm import bijectors

    model, x, labels = one_pass_case(name)
    state = [v.numpy() for v in model.non_trainable_variables]  # batch-norm averages

    def run():
        for v, value in zip(model.non_trainable_variables, state):
            v.assign(value)
        draws = model.distribution(labels=labels).experimental_sample_and_log_prob(16, seed=(1, 2))
        return [model.log_prob(x, labels=labels), *draws, *loss_and_grads(model, x, labels)]

    ours = run()
    monkeypatch.setattr(bijectors, "FusedRealNVP", bijectors.tfb.RealNVP)
    monkeypatch.setattr(bijectors, "FusedMAF", bijectors.tfb.MaskedAutoregressiveFlow)
    theirs = run()
    for mine, tfps in zip(ours[:-1], theirs[:-1]):
        np.testing.assert_allclose(mine, tfps, rtol=1e-5, atol=1e-5)
    for mine, tfps in zip(ours[-1], theirs[-1]):
        np.testing.assert_allclose(mine, tfps, rtol=1e-4, atol=1e-5)


def count_matmuls(fn, *args) -> int:
    graph = tf.function(fn, autograph=False).get_concrete_function(*args).graph
    return sum(op.type in ("MatMul", "BatchMatMulV2") for op in graph.get_operations())


@pytest.mark.parametrize("name", ["realnvp", "maf-conditional-logit"])
def test_log_prob_runs_each_conditioner_once(name):
    """log p(x) holds one conditioner's MatMuls per layer (TFP's own bijectors ran every
    conditioner twice: once for the inverse, once for the log-det)."""
    model, x, labels = one_pass_case(name)
    net = model.flow.transforms[0]
    inputs = x[:, :1] if model.kind == "realnvp" else x
    context = None if labels is None else tf.one_hot(labels, 2)
    per_layer = count_matmuls(lambda h: net(h, context), tf.constant(inputs))
    assert per_layer >= 2  # hidden and output layer
    assert count_matmuls(lambda x: model.log_prob(x, labels=labels), x) == 2 * per_layer
