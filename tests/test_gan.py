"""Known answers for the implicit models: f-GAN conjugates, the optimal discriminator, the
gradient penalty, and short but real training runs (mode coverage, a two-sample test)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import tfdgm
from tfdgm import data, divergences, metrics
from tfdgm.models.gan import FGAN, GAN, WGANGP, MMDNetwork

NAMES = list(divergences.F_DIVERGENCES)


# ---------------------------------------------------------------- f-GAN conjugates
@pytest.mark.parametrize("name", NAMES)
def test_fenchel_young_on_a_grid_with_equality_at_the_derivative(name):
    """f*(t) >= t u - f(u) for all u > 0, t in dom f*, with equality at t = f'(u)."""
    f = divergences.get(name)
    u = tf.constant(np.geomspace(0.02, 20.0, 60), tf.float64)
    low, high = f.domain
    t_grid = np.linspace(max(low, -6.0), min(high, 4.0), 82)[1:-1]  # open interval
    t = tf.constant(t_grid, tf.float64)
    gap = f.conjugate(t)[:, None] - (t[:, None] * u[None, :] - f.f(u)[None, :])
    assert np.all(np.asarray(gap) >= -1e-9), name
    t_star = f.f_prime(u)
    equality = f.conjugate(t_star) - (t_star * u - f.f(u))
    np.testing.assert_allclose(np.asarray(equality), 0.0, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_stable_conjugate_of_activation_matches_the_table(name):
    f = divergences.get(name)
    model = FGAN(event_shape=(1,), divergence=name, hidden_units=(4,), seed=0)
    v = tf.constant(np.linspace(-8.0, 8.0, 101), tf.float64)
    np.testing.assert_allclose(
        np.asarray(model.conjugate_of_critic(v)),
        np.asarray(f.conjugate(f.activation(v))),
        rtol=1e-9,
        atol=1e-9,
    )
    # and it stays finite where the composed form overflows in float32
    far = tf.constant([-60.0, 60.0]) if name != "kl" else tf.constant([-60.0, 30.0])
    assert np.isfinite(np.asarray(model.conjugate_of_critic(far))).all()


# ---------------------------------------------------------------- optimal critics
# Two 1-D Gaussians P = N(0, 1), Q = N(1, 1.5^2): r(x) = p(x)/q(x) in closed form.
P, Q = (0.0, 1.0), (1.0, 1.5)


def _log_normal(x, loc, scale):
    return -0.5 * ((x - loc) / scale) ** 2 - math.log(scale) - 0.5 * math.log(2 * math.pi)


#: V*(x) such that g_f(V*) = f'(p/q), as a function of log r (inverting each activation).
_OPTIMAL_V = {
    "kl": lambda log_r: log_r + 1.0,
    "reverse_kl": lambda log_r: log_r,
    "pearson": lambda log_r: 2.0 * (tf.exp(log_r) - 1.0),
    "squared_hellinger": lambda log_r: 0.5 * log_r,
    "jensen_shannon": lambda log_r: log_r,
    "gan": lambda log_r: log_r,
}


class _LogRatioCritic(keras.layers.Layer):
    """V(x) = h(log p(x) - log q(x)) * scale for the two Gaussians above."""

    def __init__(self, name_of_f, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.name_of_f, self.scale = name_of_f, scale

    def call(self, x):
        log_r = _log_normal(x, *P) - _log_normal(x, *Q)
        return self.scale * _OPTIMAL_V[self.name_of_f](log_r)


def _divergence_by_quadrature(name):
    """D_f(P || Q) = int q f(p/q) dx on a fine grid (float64)."""
    x = np.linspace(-15, 16, 200_001)
    p, q = np.exp(_log_normal(x, *P)), np.exp(_log_normal(x, *Q))
    integrand = np.asarray(divergences.get(name).f(tf.constant(p / q))) * q
    return float(np.sum(integrand) * (x[1] - x[0]))


def _samples(n=400_000):
    rng = np.random.default_rng(0)
    x_p = (P[0] + P[1] * rng.standard_normal((n, 1))).astype("float32")
    x_q = (Q[0] + Q[1] * rng.standard_normal((n, 1))).astype("float32")
    return x_p, x_q


@pytest.mark.parametrize("name", NAMES)
def test_variational_bound_is_tight_at_the_optimal_critic(name):
    """F(T*) = D_f(P || Q) at T* = f'(p/q), and a worse critic gives less (a lower bound)."""
    x_p, x_q = _samples()
    exact = _divergence_by_quadrature(name)
    optimal = FGAN(event_shape=(1,), divergence=name, discriminator=_LogRatioCritic(name))
    bound = float(optimal.variational_bound(x_p, x_q))
    assert bound == pytest.approx(exact, rel=0.03, abs=0.01), (name, bound, exact)
    worse = FGAN(event_shape=(1,), divergence=name, discriminator=_LogRatioCritic(name, 0.3))
    assert float(worse.variational_bound(x_p, x_q)) < bound - 0.01


def test_gan_value_at_the_optimal_discriminator_is_2_js_minus_log_4():
    x = np.linspace(-15, 16, 200_001)
    p, q = np.exp(_log_normal(x, *P)), np.exp(_log_normal(x, *Q))
    m = 0.5 * (p + q)
    kl = lambda a, b: np.sum(a * np.log(a / b)) * (x[1] - x[0])
    js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    gan = GAN(event_shape=(1,), discriminator=_LogRatioCritic("gan"))  # D* = p / (p + q)
    x_p, x_q = _samples()
    d_star = np.asarray(gan.discriminator_probability(x_p[:5]))
    r = np.exp(_log_normal(x_p[:5, 0], *P) - _log_normal(x_p[:5, 0], *Q))
    np.testing.assert_allclose(d_star, r / (1 + r), rtol=1e-5)
    value = float(gan.value_function(x_p, x_q))
    assert value == pytest.approx(2 * js - math.log(4), abs=0.01)
    # the f-GAN bound of the GAN divergence is V + log 4 = 2 JS
    assert float(gan.variational_bound(x_p, x_q)) == pytest.approx(value + math.log(4), abs=1e-5)


# ---------------------------------------------------------------- gradient penalty
class _Linear(keras.layers.Layer):
    def __init__(self, w, **kwargs):
        super().__init__(**kwargs)
        self.w = tf.constant(w, tf.float32)[:, None]

    def call(self, x):
        return tf.matmul(x, self.w) + 3.0


class _HalfSquaredNorm(keras.layers.Layer):
    def call(self, x):  # C(x) = ||x||^2 / 2, grad C(x) = x
        return 0.5 * tf.reduce_sum(tf.square(x), -1, keepdims=True)


def test_gradient_penalty_is_zero_for_a_1_lipschitz_critic():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(64, 3)), rng.normal(size=(64, 3)) + 2
    unit = WGANGP(event_shape=(3,), discriminator=_Linear([0.6, 0.0, 0.8]))  # ||w|| = 1
    assert float(unit.gradient_penalty(real, fake, seed=(1, 2))) == pytest.approx(0.0, abs=1e-6)
    double = WGANGP(event_shape=(3,), discriminator=_Linear([1.2, 0.0, 1.6]))  # ||w|| = 2
    assert float(double.gradient_penalty(real, fake, seed=(1, 2))) == pytest.approx(1.0, rel=1e-5)


def test_gradient_penalty_is_taken_on_interpolates():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(256, 2)).astype("float32")
    fake = (rng.normal(size=(256, 2)) + 3).astype("float32")
    model = WGANGP(event_shape=(2,), discriminator=_HalfSquaredNorm())
    x_hat = np.asarray(model.interpolate(real, fake, seed=(3, 4)))
    # x_hat = eps real + (1 - eps) fake with one eps in [0, 1] per row
    eps = np.sum((x_hat - fake) * (real - fake), 1) / np.sum((real - fake) ** 2, 1)
    np.testing.assert_allclose(x_hat, eps[:, None] * real + (1 - eps[:, None]) * fake, atol=1e-5)
    assert eps.min() >= 0 and eps.max() <= 1 and eps.std() > 0.2
    # grad C(x_hat) = x_hat, so the penalty is mean (||x_hat|| - 1)^2 at those points
    expected = np.mean((np.linalg.norm(x_hat, axis=1) - 1) ** 2)
    penalty = float(model.gradient_penalty(real, fake, seed=(3, 4)))
    assert penalty == pytest.approx(expected, rel=1e-5)
    assert penalty != pytest.approx(np.mean((np.linalg.norm(real, axis=1) - 1) ** 2), rel=0.05)


# ---------------------------------------------------------------- API
@pytest.mark.parametrize("cls", [GAN, FGAN, WGANGP, MMDNetwork])
def test_log_prob_raises_a_clear_error(cls):
    model = cls(event_shape=(2,), hidden_units=(4,), seed=0)
    with pytest.raises(tfdgm.NoDensityError, match=f"{cls.__name__}.*tfdgm.metrics"):
        model.log_prob(np.zeros((3, 2), "float32"))
    assert not model.has_density


def test_a_model_without_a_density_exports_after_build(tmp_path):
    """After ``build(shape)`` Keras would add a serving signature calling ``self(x)``,
    which a model without a density refuses (NoDensityError at export); the export holds
    tfdgm's endpoints only, and samples like the model."""
    model = MMDNetwork(event_shape=(2,), hidden_units=(4,), seed=0)
    model.build((None, 2))
    loaded = tf.saved_model.load(model.export(str(tmp_path / "export")))
    assert "log_prob" not in list(loaded.signatures.keys())
    seed = tf.constant([1, 2], tf.int32)
    np.testing.assert_allclose(loaded.sample(tf.constant(5), seed), model.sample(5, seed=(1, 2)))


def test_compile_gives_two_optimizers_and_counts_discriminator_steps():
    model = WGANGP(event_shape=(2,), hidden_units=(8,), discriminator_steps=3, seed=0)
    assert list(model.optimizer_groups()) == ["generator", "discriminator"]
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    generator, discriminator = (
        model.optimizer_for("generator"),
        model.optimizer_for("discriminator"),
    )
    assert generator is not discriminator
    assert generator.get_config() == discriminator.get_config()
    assert model.generator_optimizer is generator  # the pre-v2 attribute names still read
    x = data.load_toy("8gaussians", num_train=64, num_test=8).x_train
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    assert int(generator.iterations) == 2
    assert int(discriminator.iterations) == 6
    with pytest.raises(ValueError, match="owns its objective"):
        model.compile(loss="mse")


@pytest.mark.parametrize("cls, betas", [(GAN, (0.5, 0.999)), (WGANGP, (0.5, 0.9))])
def test_default_optimizers_are_adam_with_the_papers_betas(cls, betas):
    model = cls(event_shape=(2,), hidden_units=(4,), seed=0)
    model.compile()
    for group in ("generator", "discriminator"):
        config = model.optimizer_for(group).get_config()
        assert (config["beta_1"], config["beta_2"]) == betas
        assert config["learning_rate"] == pytest.approx(2e-4)
    mmd = MMDNetwork(event_shape=(2,), hidden_units=(4,), seed=0)
    assert len(mmd.optimizer_groups()) == 1


def test_named_optimizers_train_their_network_and_survive_save_load(tmp_path):
    """compile(generator_optimizer=, discriminator_optimizer=) puts each on its network;
    save/load restores both (class, configuration, step counts, slot values)."""
    model = GAN(event_shape=(2,), hidden_units=(8,), discriminator_steps=2, seed=0)
    model.compile(
        generator_optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        discriminator_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.3),
    )
    generator_before = [np.array(v) for v in model.generator.trainable_variables]
    discriminator_before = [np.array(v) for v in model.discriminator.trainable_variables]
    x = data.load_toy("8gaussians", num_train=64, num_test=8).x_train
    model.fit(x, epochs=2, batch_size=32, verbose=0)
    for before, network in [
        (generator_before, model.generator),
        (discriminator_before, model.discriminator),
    ]:
        assert any(not np.allclose(b, v) for b, v in zip(before, network.trainable_variables))
    assert isinstance(model.optimizer_for("generator"), keras.optimizers.SGD)
    assert int(model.optimizer_for("generator").iterations) == 4
    assert int(model.optimizer_for("discriminator").iterations) == 8

    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    for group, cls in [
        ("generator", keras.optimizers.SGD),
        ("discriminator", keras.optimizers.Adam),
    ]:
        saved, restored = model.optimizer_for(group), loaded.optimizer_for(group)
        assert isinstance(restored, cls)
        assert restored.get_config() == saved.get_config()
        assert int(restored.iterations) == int(saved.iterations)
        for a, b in zip(saved.variables, restored.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    loaded.fit(x, epochs=1, batch_size=32, verbose=0)
    assert int(loaded.optimizer_for("generator").iterations) == 6
    assert int(loaded.optimizer_for("discriminator").iterations) == 12


def test_critic_of_a_pre_split_file_loads_as_a_conv_encoder():
    """Models saved before the split named their conv critic ``tfdgm>ConvCritic``."""
    digits = data.load("digits-continuous")
    model = GAN.for_dataset(digits, latent_dim=2, filters=4, seed=0)
    assert isinstance(model.discriminator, tfdgm.nets.ConvEncoder)
    assert model.discriminator.activation == "leaky_relu"
    config = model.get_config()
    critic = config["discriminator"]
    legacy = {
        "module": "tfdgm.models.gan",
        "class_name": "ConvCritic",
        "registered_name": "tfdgm>ConvCritic",
        "config": {
            "name": "discriminator",
            "trainable": True,
            "dtype": critic["config"]["dtype"],
            "image_shape": [8, 8, 1],
            "filters": 4,
        },
    }
    clone = GAN.from_config({**config, "discriminator": legacy})
    assert clone.get_config()["discriminator"]["config"] == critic["config"]
    clone.set_weights(model.get_weights())
    x = digits.x_test[:5]
    np.testing.assert_allclose(clone.discriminate(x), model.discriminate(x), rtol=1e-6)


def test_mixed_float16_wraps_both_optimizers(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = GAN(event_shape=(2,), hidden_units=(8,), seed=0)
    model.compile_default(learning_rate=1e-3)
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    model.fit(np.zeros((32, 2), "float32"), epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(loaded.discriminator_optimizer, keras.optimizers.LossScaleOptimizer)
    inner = loaded.discriminator_optimizer.inner_optimizer
    assert inner.get_config()["beta_1"] == 0.5


def test_generator_losses_follow_their_formulas():
    x = data.load_toy("8gaussians", num_train=64, num_test=8).x_train
    fake = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    for loss in ("minimax", "non_saturating"):
        gan = GAN(event_shape=(2,), hidden_units=(8,), loss=loss, seed=0)
        d_fake = np.asarray(gan.discriminator_probability(fake), np.float64)
        expected = (
            np.mean(np.log1p(-d_fake)) + math.log(4)
            if loss == "minimax"
            else -np.mean(np.log(d_fake))
        )
        assert float(gan.generator_objective(fake)) == pytest.approx(expected, rel=1e-4)
        values = gan.discriminator_objective(x, fake)
        assert float(values["loss"]) == pytest.approx(
            float(gan.value_function(x, fake)) + math.log(4), abs=1e-5
        )


def test_jensen_shannon_fgan_trains_exactly_like_the_gan():
    """The JS and GAN generators differ by (u - 1) log 2 and a constant: the same gradients,
    so with the same seed both models take identical steps; both bounds estimate 2 JS."""
    x = data.load_toy("8gaussians", num_train=128, num_test=8).x_train
    models = []
    for cls, kwargs in [(GAN, {}), (FGAN, {"divergence": "jensen_shannon"})]:
        keras.utils.set_random_seed(0)
        model = cls(event_shape=(2,), hidden_units=(8,), seed=0, **kwargs)
        model.compile_default(learning_rate=1e-2)
        history = model.fit(x, epochs=2, batch_size=32, verbose=0, shuffle=False)
        models.append((model, history.history))
    (gan, h_gan), (js, h_js) = models
    for a, b in zip(gan.weights, js.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h_js["loss"], h_gan["loss"], atol=1e-5)
    assert h_gan["real_accuracy"] == h_js["real_accuracy"]


# ---------------------------------------------------------------- short real training
def _train_on_8_gaussians(model, steps, batch_size=256, learning_rate=1e-3):
    keras.utils.set_random_seed(0)
    toys = data.load_toy("8gaussians", num_train=batch_size * 50, num_test=10)
    model.compile_default(learning_rate=learning_rate)
    model.fit(toys.x_train, epochs=steps // 50, batch_size=batch_size, verbose=0)
    samples = model.sample(2000, seed=(1, 2))
    return metrics.mode_coverage(samples), metrics.high_quality_fraction(samples)


@pytest.mark.slow
def test_gan_covers_the_modes_of_8_gaussians():
    model = GAN(event_shape=(2,), latent_dim=8, hidden_units=(64, 64), seed=0)
    modes, quality = _train_on_8_gaussians(model, steps=1600)
    assert modes >= 7 and quality > 0.5, (modes, quality)


@pytest.mark.slow
def test_wgan_gp_covers_the_modes_of_8_gaussians():
    # lambda = 1 instead of the paper's 10: on this small toy set it converges in far fewer
    # steps (with lambda = 10 it needs about 2000 generator steps).
    model = WGANGP(
        event_shape=(2,),
        latent_dim=8,
        hidden_units=(64, 64),
        discriminator_steps=3,
        gradient_penalty_weight=1.0,
        seed=0,
    )
    modes, quality = _train_on_8_gaussians(model, steps=800)
    assert modes >= 7 and quality > 0.5, (modes, quality)


@pytest.mark.slow
def test_mmd_network_matches_a_1d_target_by_a_two_sample_test():
    rng = np.random.default_rng(0)
    target = lambda n: rng.gamma(2.0, 1.0, (n, 1)).astype("float32")  # skewed, non-Gaussian
    keras.utils.set_random_seed(0)
    model = MMDNetwork(
        event_shape=(1,),
        latent_dim=4,
        hidden_units=(32, 32),
        bandwidths=(0.1, 0.3, 1.0, 3.0),
        seed=0,
    )
    reference = target(1000)[:, 0]
    before = np.asarray(model.sample(1000, seed=(1, 2)))[:, 0]
    assert stats.ks_2samp(before, reference).pvalue < 1e-6  # the test can tell them apart
    model.compile_default(learning_rate=3e-3)
    model.fit(target(256 * 20), epochs=20, batch_size=256, verbose=0)
    after = np.asarray(model.sample(1000, seed=(1, 2)))[:, 0]
    assert stats.ks_2samp(after, reference).pvalue > 0.01


# ---------------------------------------------------------------- class-conditional
@pytest.mark.parametrize("cls", [FGAN, GAN, WGANGP])
def test_conditional_generator_and_critic_depend_on_the_label(cls):
    model = cls(event_shape=(2,), latent_dim=2, hidden_units=(16,), num_classes=3, seed=0)
    z = np.random.default_rng(0).standard_normal((5, 2)).astype("float32")
    x0, x2 = model.generate(z, labels=np.zeros(5)), model.generate(z, labels=np.full(5, 2))
    assert x0.shape == (5, 2) and np.abs(x0 - x2).min() > 0  # same z, another label
    v0, v1 = model.discriminate(x0, labels=[0] * 5), model.discriminate(x0, labels=[1] * 5)
    assert np.abs(v0 - v1).min() > 0
    np.testing.assert_array_equal(
        model.sample(4, labels=1, seed=(3, 4)), model.sample(4, labels=[1] * 4, seed=(3, 4))
    )
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        model.sample(2, labels=[0, 3])
    with pytest.raises(ValueError, match="is conditional"):
        model.fit(np.zeros((8, 2), "float32"), epochs=1, verbose=0)
    assert [s.name for s in model.export_endpoints()["generate"][1]] == ["z", "labels"]


def test_conditional_gan_puts_each_class_where_its_data_is():
    """Two classes at (-2, 0) and (2, 0): after a short fit(x, y) the samples drawn for each
    label lie on their class's side (the unconditional marginal would straddle both)."""
    rng = np.random.default_rng(0)
    y = rng.integers(2, size=1024)
    x = np.stack([4.0 * y - 2.0, np.zeros(1024)], 1) + 0.3 * rng.standard_normal((1024, 2))
    model = GAN(event_shape=(2,), latent_dim=2, hidden_units=(32, 32), num_classes=2, seed=0)
    model.compile_default(learning_rate=2e-3)
    model.fit(x.astype("float32"), y, epochs=8, batch_size=64, verbose=0)
    for label, sign in [(0, -1.0), (1, 1.0)]:
        samples = model.sample(500, labels=label, seed=(1, label)).numpy()
        assert sign * np.median(samples[:, 0]) > 1.0, (label, np.median(samples, 0))
        assert np.mean(sign * samples[:, 0] > 0) > 0.9
