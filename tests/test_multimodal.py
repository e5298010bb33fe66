"""Multimodal VAEs: the product of experts, bounds against a VAE and against log p(x),
densities that sum to one, masks. Every model here is tiny and untrained or barely
trained: the identities hold for any weights."""

import itertools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import stats

import tfdgm
from tfdgm import heads
from tfdgm.models.multimodal import MultimodalVAE
from tfdgm.models.vae import kl_warmup_weight

tfd = tfp.distributions
TWO = {"image": ((3,), "binary"), "label": ((), "categorical", 3)}


def _two_modalities(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(2, size=(n, 3)).astype("float32"),
        "label": rng.integers(3, size=n).astype("float32"),
    }


def test_product_of_experts_is_the_normalized_product_of_densities():
    means = np.array([[-1.0, 0.5], [2.0, 0.0], [0.3, -4.0]], np.float32)  # 3 experts, 2 dims
    stddevs = np.array([[0.5, 1.0], [2.0, 0.3], [1.0, 3.0]], np.float32)
    weights = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]], np.float32)  # expert 1 out in dim 1
    product = heads.product_of_experts(means, stddevs, weights)
    assert isinstance(product, tfd.Normal)
    grid = np.linspace(-12, 12, 48001)
    for d in range(2):
        keep = weights[:, d] > 0
        log_density = sum(
            stats.norm.logpdf(grid, m, s) for m, s in zip(means[keep, d], stddevs[keep, d])
        )
        density = np.exp(log_density - log_density.max())
        density /= np.trapezoid(density, grid)
        mean = np.trapezoid(grid * density, grid)
        std = np.sqrt(np.trapezoid((grid - mean) ** 2 * density, grid))
        assert float(product.loc[d]) == pytest.approx(mean, abs=1e-5)
        assert float(product.scale[d]) == pytest.approx(std, rel=1e-5)
        got = product[d].prob(grid.astype(np.float32)).numpy()
        np.testing.assert_allclose(got, density, atol=1e-5 * density.max())
    # the closed form itself: precision-weighted
    precision = 1 / stddevs[:, 0] ** 2
    assert float(product.loc[0]) == pytest.approx((precision * means[:, 0]).sum() / precision.sum())


def _copy_into_vae(model):
    vae = tfdgm.VAE((3,), latent_dim=2, hidden_units=(8,))
    vae.encoder.set_weights(model.encoders[0].get_weights())
    vae.decoder.set_weights(model.decoders[0].get_weights())
    return vae


@pytest.mark.parametrize("fusion", ["poe", "moe", "mopoe"])
def test_one_modality_elbo_is_the_vae_elbo_with_the_same_weights(fusion):
    """PoE and MoPoE (no prior expert): the ELBO; MoE's stratified bound with k = 3: the
    VAE's IWAE_3 (same draws of z for the same seed)."""
    k = 3 if fusion == "moe" else 1
    model = MultimodalVAE(
        {"x": ((3,), "binary")}, 2, fusion, hidden_units=(8,), prior_expert=False, seed=0,
        num_importance_samples=k,
    )  # fmt: skip
    vae = _copy_into_vae(model)
    x = _two_modalities(7)["image"]
    for seed in [(1, 2), (3, 4)]:
        expected = vae.elbo(x, seed=seed) if k == 1 else vae.iwae(x, k, seed=seed)
        np.testing.assert_allclose(model.elbo({"x": x}, seed=seed), expected, rtol=1e-5, atol=1e-5)
    if fusion == "poe":  # the same importance-sampled log p(x) (mixtures draw z otherwise)
        np.testing.assert_allclose(
            model.log_prob({"x": x}, num_samples=30, seed=(5, 6)),
            vae.log_prob(x, num_samples=30, seed=(5, 6)),
            rtol=1e-5,
        )


def test_one_modality_poe_with_the_prior_expert_is_the_vae_elbo_of_the_product():
    model = MultimodalVAE({"x": ((3,), "binary")}, 2, "poe", hidden_units=(8,), seed=0)
    vae = _copy_into_vae(model)
    x = _two_modalities(7)["image"]
    expert = vae.encode(x).distribution
    product = heads.product_of_experts(
        tf.stack([tf.zeros_like(expert.loc), expert.loc]),
        tf.stack([tf.ones_like(expert.scale), expert.scale]),
    )
    q = tfd.Independent(product, 1)
    z = q.sample(1, seed=(1, 2))
    expected = vae.decode(z).log_prob(x)[0] - q.kl_divergence(vae.prior())
    np.testing.assert_allclose(model.elbo({"x": x}, seed=(1, 2)), expected, rtol=1e-5, atol=1e-5)


def _exact_log_prob(model, x, mask):
    """log p(x_S) = log of the integral of p(z) prod_{m in S} p(x_m|z) over a 2-D latent,
    by the midpoint rule on [-7, 7]^2 (401^2 cells)."""
    grid = np.linspace(-7, 7, 401).astype("float32")
    z = np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 1, 2)  # (cells, 1, 2)
    x = {k: tf.constant(v) for k, v in x.items()}
    log_joint = model._log_likelihood(x, z, tf.constant(mask)) + model.prior().log_prob(z)
    return (tf.reduce_logsumexp(log_joint, 0) + 2 * np.log(grid[1] - grid[0])).numpy()


#: The tests of the trained models run on one test worker, so its fixture trains once per
#: suite, not once per worker (tests/conftest.py makes --dist loadgroup see the mark).
TRAINED_GROUP = pytest.mark.xdist_group("multimodal-trained")


@pytest.fixture(scope="module")
def trained():
    """One briefly trained model per fusion (MoE with k = 4), and 4 examples, two of
    them with a modality missing."""
    models = {}
    data = _two_modalities(128, seed=3)
    for fusion, k in [("poe", 1), ("moe", 4), ("mopoe", 1)]:
        tf.keras.utils.set_random_seed(0)
        model = MultimodalVAE(TWO, 2, fusion, hidden_units=(16,), num_importance_samples=k, seed=1)
        model.compile_default(learning_rate=1e-2, run_eagerly=True)  # no tracing: faster here
        model.fit(data, epochs=4, batch_size=64, verbose=0)
        models[fusion] = model
    x = _two_modalities(4, seed=1)
    mask = np.array([[1, 1], [1, 1], [1, 0], [0, 1]], np.float32)
    return models, x, mask


@TRAINED_GROUP
@pytest.mark.parametrize("fusion", ["poe", "moe", "mopoe"])
def test_each_bound_is_below_the_importance_sampled_log_likelihood(fusion, trained):
    """E[bound] (mean of 200 draws) <= log p(x_S) by importance sampling (4,000 samples)
    <= the exact log p(x_S) (a grid over the 2-D latent) up to Monte-Carlo error, for
    complete and half-missing examples."""
    models, x, mask = trained
    model = models[fusion]
    draws = 200
    tiled = {k: np.tile(v, (draws,) + (1,) * (v.ndim - 1)) for k, v in {**x, "mask": mask}.items()}
    bounds = model.elbo(tiled, seed=(3, 0)).numpy().reshape(draws, -1)
    bound, error = bounds.mean(0), 3 * bounds.std(0) / np.sqrt(draws)
    log_p = model.log_prob({**x, "mask": mask}, num_samples=4000, seed=(9, 9), chunk=4000)
    exact = _exact_log_prob(model, x, mask)
    assert (bound <= log_p.numpy() + error).all(), (bound, log_p)
    assert (bound <= exact + error).all(), (bound, exact)
    np.testing.assert_allclose(log_p, exact, atol=0.1)


@TRAINED_GROUP
@pytest.mark.parametrize("fusion", ["poe", "moe", "mopoe"])
def test_joint_and_conditional_probabilities_sum_to_one(fusion, trained):
    """sum over every (image, label) of {0,1}^3 x {0,1,2} of p(image, label) = 1, and
    sum over labels of p(label | image) = 1, from the importance-sampled estimates."""
    model = trained[0][fusion]
    cells = np.array(list(itertools.product([0, 1], [0, 1], [0, 1], [0, 1, 2])), np.float32)
    space = {"image": cells[:, :3], "label": cells[:, 3]}
    log_p = model.log_prob(space, num_samples=20000, seed=(1, 1), chunk=5000)
    assert np.exp(log_p.numpy()).sum() == pytest.approx(1.0, abs=0.05)
    images = np.repeat(np.eye(3, dtype=np.float32)[:2], 3, 0)  # two images, every label
    conditional = model.log_prob(
        {"label": np.tile([0.0, 1.0, 2.0], 2).astype("float32")},
        given={"image": images},
        num_samples=20000,
        seed=(2, 2),
        chunk=5000,
    )
    np.testing.assert_allclose(np.exp(conditional.numpy()).reshape(2, 3).sum(1), 1.0, atol=0.05)


def test_a_masked_modality_is_an_absent_one():
    model = MultimodalVAE(TWO, 2, "mopoe", hidden_units=(8,), seed=0)
    x = _two_modalities(5)
    masked = {**x, "mask": np.array([[1, 0]] * 5, np.float32)}
    np.testing.assert_allclose(
        model.log_prob(masked, num_samples=20, seed=(1, 1)),
        model.log_prob({"image": x["image"]}, num_samples=20, seed=(1, 1)),
        rtol=1e-6,
    )
    assert model.generate({"label": x["label"]}, "image", seed=(1, 2)).shape == (5, 3)
    with pytest.raises(ValueError, match="mask"):
        model.fit({**x, "mask": np.full((5, 2), 0.5, np.float32)}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expected a dict of modalities"):
        model.encode({"sound": x["image"]})


def test_semi_supervised_fit_and_the_label_is_read_from_the_image():
    """Images of two classes, labels given for a quarter of them: after a short fit the
    label generated from each image is right (a class is one pixel pattern)."""
    rng = np.random.default_rng(0)
    label = rng.integers(2, size=128).astype("float32")
    image = np.where(label[:, None] == 1, [1, 1, 0], [0, 0, 1]).astype("float32")
    mask = np.stack([np.ones(128), rng.random(128) < 0.25], 1).astype("float32")
    model = MultimodalVAE(
        {"image": ((3,), "binary"), "label": ((), "categorical", 2)}, 2, "poe",
        hidden_units=(16,), seed=0,
    )  # fmt: skip
    model.compile_default(learning_rate=3e-2)
    model.fit({"image": image, "label": label, "mask": mask}, epochs=10, batch_size=128, verbose=0)
    z = model.encode({"image": image[:20]}).mean()
    probs = model.decode(z, "label").distribution.probs_parameter().numpy()
    assert (probs.argmax(-1) == label[:20]).mean() == 1.0


@pytest.mark.parametrize("fusion", ["poe", "moe", "mopoe"])
def test_likelihood_weights_scale_only_the_label_term_of_the_training_objective(fusion):
    """With the same weights and draws, the objective with lambda_label = c is
    bound + (c - 1) E_q[log p(label | z)] (affine in c, the added term < 0), lambda = 1 is
    the bound itself, and the reported bound and log p do not depend on lambda."""
    x = _two_modalities(5)
    models = [
        MultimodalVAE(TWO, 2, fusion, hidden_units=(8,), likelihood_weights={"label": c}, seed=0)
        for c in (1.0, 2.0, 4.0)
    ]
    for model in models[1:]:
        model.set_weights(models[0].get_weights())
    seed = tf.constant([1, 2])
    weighted, plain = zip(*[m._bound(*m._inputs(x), seed) for m in models])
    for bound in (weighted[0], *plain[1:]):
        np.testing.assert_allclose(bound, plain[0], rtol=1e-6)
    label_term = (weighted[1] - plain[0]).numpy()  # (2 - 1) E_q[log p(label | z)]
    assert (label_term < 0).all()
    np.testing.assert_allclose(weighted[2] - plain[0], 3 * label_term, rtol=1e-4)
    log_p = [m.log_prob(x, num_samples=10, seed=(3, 3)) for m in (models[0], models[2])]
    np.testing.assert_allclose(*log_p, rtol=1e-6)
    assert models[2].get_config()["likelihood_weights"] == {"label": 4.0}
    with pytest.raises(ValueError, match="likelihood_weights"):
        MultimodalVAE(TWO, likelihood_weights={"sound": 2.0})
    with pytest.raises(ValueError, match="likelihood_weights"):
        MultimodalVAE(TWO, likelihood_weights={"label": 0.0})


@pytest.mark.parametrize("fusion", ["poe", "moe", "mopoe"])
def test_kl_warmup_anneals_only_the_training_kl(fusion):
    """A warm-up over N steps weighs the training KL (MoE: log q - log p(z)) by
    min(1, t / N) at update t: with the same draws the loss is affine in that weight and
    moves with it (PoE, MoPoE: up, the KL being > 0); evaluation and the reported bound
    keep the full KL; after N steps the weight stays 1."""
    x = _two_modalities(5)
    model = MultimodalVAE(TWO, 2, fusion, hidden_units=(8,), kl_warmup=8, seed=0)
    model._seed = lambda seed=None: tf.constant([1, 2])  # the same draws at every step
    assert kl_warmup_weight(model, 8, True) == 1.0  # not compiled: no warm-up
    model.compile_default()
    values = {}
    for t in (0, 2, 8):
        model.optimizer.iterations.assign(t)
        values[t] = model.example_objective(x, training=True)
    loss = {t: v["loss"].numpy() for t, v in values.items()}
    assert (np.abs(loss[8] - loss[0]) > 1e-3).all()
    assert fusion == "moe" or (loss[8] > loss[0]).all()
    np.testing.assert_allclose(loss[2], loss[0] + 0.25 * (loss[8] - loss[0]), rtol=1e-5)
    np.testing.assert_allclose(model.example_objective(x)["loss"], loss[8], rtol=1e-6)
    np.testing.assert_allclose(values[0]["elbo"], values[8]["elbo"], rtol=1e-6)
    model.optimizer.iterations.assign(16)
    assert float(kl_warmup_weight(model, 8, True)) == 1.0
    assert model.get_config()["kl_warmup"] == 8


def test_kl_warmup_of_the_vae_weighs_the_kl_of_the_same_draw():
    """VAE(kl_warmup=N): loss = -(reconstruction - min(1, t / N) kl) at update t."""
    x = _two_modalities(5)["image"]
    vae = tfdgm.VAE((3,), latent_dim=2, hidden_units=(8,), kl_warmup=8, seed=0)
    vae.compile_default()
    for t, weight in ((2, 0.25), (0, 0.0), (12, 1.0)):
        vae.optimizer.iterations.assign(t)
        v = {k: a.numpy() for k, a in vae.example_objective(x, training=True).items()}
        assert (v["kl"] > 1e-3).all()
        expected = -(v["reconstruction"] - weight * v["kl"])
        np.testing.assert_allclose(v["loss"], expected, rtol=1e-5, atol=1e-6)
    assert vae.get_config()["kl_warmup"] == 8
    with pytest.raises(ValueError, match="kl_warmup"):
        tfdgm.VAE((3,), kl_warmup=-1)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="fusion"):
        MultimodalVAE(TWO, fusion="sum")
    with pytest.raises(ValueError, match="num_importance_samples"):
        MultimodalVAE(TWO, fusion="poe", num_importance_samples=3)
    with pytest.raises(ValueError, match="modalities"):
        MultimodalVAE({"mask": ((2,), "binary")})
    with pytest.raises(ValueError, match="kl_warmup"):
        MultimodalVAE(TWO, kl_warmup=-1)
    with pytest.raises(ValueError, match="named modalities"):
        MultimodalVAE.for_dataset(tfdgm.data.load("digits"))


# ---------------------------------------------------------------- command line
def test_cvae_is_the_conditional_vae_on_the_command_line():
    from tfdgm import runs, settings

    run = runs.Run.resolve("cvae", epochs=1)
    assert run.entry.cls is tfdgm.VAE and run.hparams["num_classes"] == 10
    assert run.out == "runs/cvae-digits"
    assert "cvae = vae with {'num_classes': 10, 'architecture': 'mlp'}" in settings.describe("cvae")
    run = runs.Run.resolve("cvae", dataset="mnist5k")  # its conv default is unconditional
    assert run.hparams["architecture"] == "mlp" and run.hparams["num_classes"] == 10
    with pytest.raises(settings.RunError, match="choose one of:.*cvae"):
        runs.Run.resolve("cvea")
    run = runs.Run.resolve("multimodal-vae", hparams={"fusion": "moe"})
    assert run.dataset.events and run.hparams["fusion"] == "moe"


def test_hparams_reach_the_base_constructors_of_the_adversarial_models():
    """``--hparam num_classes=10`` (ImplicitModel's argument, reached through **kwargs)."""
    from tfdgm import registry, settings

    for name in ("gan", "fgan", "wgan-gp"):
        arguments = settings.model_arguments(registry.get(name))
        assert {"num_classes", "latent_dim", "hidden_units"} <= set(arguments), name
        settings.check_hparams(registry.get(name), {"num_classes": 10})
    with pytest.raises(settings.RunError, match="no hyperparameter 'seed'"):
        settings.check_hparams(registry.get("gan"), {"seed": 1})
    # the GAN sets its base's divergence itself; the f-GAN takes it
    assert "divergence" in settings.model_arguments(registry.get("fgan"))
    with pytest.raises(settings.RunError, match="no hyperparameter 'divergence'"):
        settings.check_hparams(registry.get("gan"), {"divergence": "kl"})


def test_sample_weights_weigh_the_per_example_bound():
    """The training bound is a mean over examples: weights of one train exactly like no
    weights, and weights (1, 1, 0, 0) give the mean of the first two examples' losses
    drawn with the same seed."""
    x = _two_modalities(4)

    def model():
        tf.keras.utils.set_random_seed(0)
        return MultimodalVAE(TWO, 2, "poe", hidden_units=(8,), seed=0)

    def trained(weights):
        m = model()
        m.compile_default(learning_rate=1e-2, run_eagerly=True)
        m.fit(x, sample_weight=weights, epochs=2, batch_size=4, verbose=0, shuffle=False)
        return m.get_weights()

    assert model().takes_sample_weight
    for a, b in zip(trained(None), trained(np.ones(4, np.float32))):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    per_example = model().example_objective(x)["loss"].numpy()
    weighted = model()._objective(x, None, False, tf.constant([1.0, 1.0, 0.0, 0.0]))
    np.testing.assert_allclose(float(weighted["loss"]), per_example[:2].mean(), rtol=1e-5)
    assert per_example.shape == (4,) and per_example[2:].mean() != per_example[:2].mean()
