"""The contract's machinery itself: statistics-based training, dict events, optimizer
groups, the registry, and Keras conventions (Sequential networks, TensorBoard)."""

import ast
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfdgm
from tfdgm import data, registry
from tfdgm.base import PACKAGE, GenerativeModel

tfd = tfp.distributions
ROOT = pathlib.Path(__file__).parent.parent


def _mirrored():
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.skip("two logical CPUs were not configured before TensorFlow started")
    return tf.distribute.MirroredStrategy(
        [d.name for d in devices[:2]], cross_device_ops=tf.distribute.ReductionToOneDevice()
    )


def _binary(n=200, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.3).astype("float32")


# ---------------------------------------------------------------- statistics-based training
def test_statistics_are_summed_over_batches_and_replicas():
    """Counts after fit under two replicas equal NumPy's counts of the data passed to fit,
    with a short last batch, and stay the same however many epochs run."""
    x = _binary(203)
    with _mirrored().scope():
        model = tfdgm.FactorizedCategorical((6,), num_categories=2, smoothing=0.0)
        model.compile_default()
    model.fit(x, epochs=3, batch_size=32, verbose=0)
    expected = np.stack([(x == 0).sum(0), (x == 1).sum(0)], -1)
    np.testing.assert_array_equal(model.counts.numpy(), expected)
    np.testing.assert_allclose(
        model.log_prob(x), np.log(expected[np.arange(6), x.astype(int)] / 203).sum(-1), rtol=1e-5
    )


def test_steps_per_epoch_must_be_whole_executions():
    """Keras 3 runs whole executions of steps_per_execution steps: steps_per_epoch=7 at 4
    per call would train 8 steps an epoch, so it is refused; 8 trains exactly 8."""
    model = tfdgm.FactorizedCategorical((6,), num_categories=2)
    model.compile_default(steps_per_execution=4)
    stream = tf.data.Dataset.from_tensor_slices(_binary(64)).repeat().batch(8)
    with pytest.raises(ValueError, match="steps_per_epoch=7 .* train 8 steps an epoch"):
        model.fit(stream, steps_per_epoch=7, epochs=1, verbose=0)
    model.fit(stream, steps_per_epoch=8, epochs=1, verbose=0)
    assert float(model.counts.numpy().sum()) == 8 * 8 * 6  # 8 batches of 8 counted


def test_uneven_first_batch_over_replicas_is_refused_up_front():
    """Keras builds a model under a MirroredStrategy from the first batch reduced over the
    replicas, which fails with a TensorFlow AddN shape error when the replicas' slices
    differ (33 = 17 + 16): fit and evaluate say so in a ValueError first; an epoch's short
    last batch (203 = 6 x 32 + 11) is fine."""
    x = _binary(66)
    with _mirrored().scope():
        model = tfdgm.FactorizedCategorical((6,), num_categories=2)
        model.compile_default()
    with pytest.raises(ValueError, match="33 examples.*2 replicas.*cannot split evenly"):
        model.fit(x, epochs=1, batch_size=33, verbose=0)
    with pytest.raises(ValueError, match="validation_data has 15 examples"):
        model.fit(x, validation_data=x[:15], epochs=1, batch_size=32, verbose=0)
    pipeline = tf.data.Dataset.from_tensor_slices(x).batch(11)
    with pytest.raises(ValueError, match="11 examples"):
        model.fit(pipeline, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="the data has 5 examples"):
        model.evaluate(x[:5], verbose=0)
    model.fit(x, validation_data=x[:16], epochs=1, batch_size=22, verbose=0)


def test_statistics_are_applied_before_validation():
    """The first epoch's validation loss already uses that epoch's estimate (the M-step
    runs before validation, not after it)."""
    x, x_val = _binary(120, seed=1), _binary(60, seed=2)
    model = tfdgm.FactorizedCategorical((6,), num_categories=2)
    model.compile_default()
    history = model.fit(x, validation_data=x_val, epochs=1, batch_size=50, verbose=0)
    expected = -np.mean(model.log_prob(x_val))
    np.testing.assert_allclose(history.history["val_loss"][0], expected, rtol=1e-5)
    assert history.history["loss"][0] == pytest.approx(6 * np.log(2), rel=1e-5)  # uniform


def test_interrupted_statistics_do_not_leak_into_the_next_fit():
    model = tfdgm.FactorizedCategorical((6,), num_categories=2, smoothing=0.0)
    model.compile_default()
    model.train_on_batch(_binary(50, seed=3))  # a half epoch, never applied
    x = _binary(80, seed=4)
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    assert model.counts.numpy()[:, 1].tolist() == x.sum(0).tolist()


# ---------------------------------------------------------------- dict events
@keras.saving.register_keras_serializable(package=PACKAGE)
class IndependentModalities(GenerativeModel):
    """p(image, label) = prod_i Bernoulli(image_i) x Categorical(label), by counting."""

    density = "exact"

    def __init__(self, seed=None, **kwargs):
        super().__init__(
            events={
                "image": data.EventSpec((4,), "binary"),
                "label": data.EventSpec((), "categorical", 3),
            },
            seed=seed,
            **kwargs,
        )
        self.build()

    def _build(self):
        self.ones = self.add_weight(shape=(4,), initializer="zeros", trainable=False)
        self.labels = self.add_weight(shape=(3,), initializer="ones", trainable=False)
        self.total = self.add_weight(shape=(), initializer="zeros", trainable=False)

    def _parts(self):
        p = (self.ones + 1.0) / (self.total + 2.0)
        return tfd.Independent(tfd.Bernoulli(probs=p, dtype=tf.float32), 1), tfd.Categorical(
            probs=self.labels / tf.reduce_sum(self.labels), dtype=tf.float32
        )

    def batch_statistics(self, x, labels=None):
        counts = tf.reduce_sum(tf.one_hot(tf.cast(x["label"], tf.int32), 3), 0)
        return {"ones": tf.reduce_sum(x["image"], 0), "labels": counts}

    def apply_statistics(self, stats):
        self.ones.assign(stats["ones"])
        self.labels.assign(stats["labels"] + 1.0)
        self.total.assign(tf.reduce_sum(stats["labels"]))

    def objective(self, x, training=False):
        return {"loss": -tf.reduce_mean(self.log_prob(x))}

    def log_prob(self, x, **kwargs):
        x = self._prepare(x)
        image, label = self._parts()
        return image.log_prob(x["image"]) + label.log_prob(x["label"])

    def sample(self, num_samples, seed=None):
        image, label = self._parts()
        seed_image, seed_label = tf.unstack(tf.random.split(self._seed(seed), 2))
        return {
            "image": image.sample(num_samples, seed=seed_image),
            "label": label.sample(num_samples, seed=seed_label),
        }


def _modalities(n=90):
    rng = np.random.default_rng(5)
    return {"image": _binary(n, 4, seed=6), "label": rng.integers(3, size=n).astype("float32")}


def test_dict_events_flow_through_validation_pipelines_and_export(tmp_path):
    x = _modalities()
    model = IndependentModalities()
    model.compile_default()
    pipeline = tf.data.Dataset.from_tensor_slices(x).batch(32)
    model.fit(pipeline, epochs=1, verbose=0)
    np.testing.assert_array_equal(model.ones.numpy(), x["image"].sum(0))
    model.fit(x, epochs=1, batch_size=16, verbose=0)  # a dict of arrays works too
    np.testing.assert_array_equal(model.labels.numpy() - 1, np.bincount(x["label"].astype(int)))
    log_p = model.log_prob({k: v[:5] for k, v in x.items()})
    assert log_p.shape == (5,)

    bad = dict(x, label=x["label"] + 3)  # a level outside the label's support
    with pytest.raises(ValueError, match=r"IndependentModalities\['label'\]"):
        model.fit(bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="expected a dict with keys"):
        model.fit({"image": x["image"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="takes an array|dict"):
        model.log_prob(x["image"])

    model.export(str(tmp_path / "export"))
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    got = loaded.log_prob({k: tf.constant(v[:5]) for k, v in x.items()})
    np.testing.assert_allclose(got, log_p, rtol=1e-6)
    assert set(model.sample(3, seed=(1, 2))) == {"image", "label"}


# ---------------------------------------------------------------- optimizers
def test_compile_refuses_a_loss_and_unknown_groups():
    model = tfdgm.VAE((8,), latent_dim=2, hidden_units=(8,))
    with pytest.raises(ValueError, match="owns its objective"):
        model.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match=r"unknown optimizer group.*\['model'\]"):
        model.compile(generator_optimizer="adam")
    adam = keras.optimizers.Adam(3e-3)
    model.compile(optimizer=adam)
    assert model.optimizer is adam and model.optimizer_for("model") is adam
    with pytest.raises(ValueError, match="has no optimizer 'critic'"):
        model.optimizer_for("critic")


def test_group_optimizers_are_wrapped_under_mixed_float16_and_restored_on_load(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = tfdgm.GAN((2,), latent_dim=2, hidden_units=(8,))
    model.compile(generator_optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer="sgd")
    for group in ("generator", "discriminator"):
        assert isinstance(model.optimizer_for(group), keras.mixed_precision.LossScaleOptimizer)
    model.fit(np.random.default_rng(0).standard_normal((64, 2)), epochs=1, batch_size=32, verbose=0)
    path = str(tmp_path / "gan.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    inner = loaded.optimizer_for("discriminator").inner_optimizer
    assert isinstance(inner, keras.optimizers.SGD)
    assert int(loaded.optimizer_for("generator").iterations) == 2


# ---------------------------------------------------------------- Keras conventions
def test_sequential_networks_work_in_the_vae():
    """A keras.Sequential decoder (which fixes its input rank) takes the [k, batch, L]
    importance samples: the VAE folds them into the batch."""
    encoder = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)])
    decoder = keras.Sequential([keras.layers.Dense(8, activation="relu"), keras.layers.Dense(6)])
    model = tfdgm.VAE(
        (6,), latent_dim=2, encoder=encoder, decoder=decoder, num_importance_samples=3
    )
    model.compile_default()
    x = _binary(64)
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    assert model.log_prob(x[:5], num_samples=7).shape == (5,)
    assert model.sample(4, seed=(0, 1)).shape == (4, 6)


def test_tensorboard_callback_writes_logs(tmp_path):
    model = tfdgm.VAE((6,), latent_dim=2, hidden_units=(8,))
    model.compile_default()
    logs = tmp_path / "logs"
    model.fit(
        _binary(64),
        epochs=2,
        batch_size=32,
        verbose=0,
        callbacks=[keras.callbacks.TensorBoard(str(logs))],
    )
    assert list(logs.rglob("events.out.tfevents.*"))


# ---------------------------------------------------------------- registry
def test_registry_imports_no_model_module():
    tree = ast.parse((ROOT / "tfdgm" / "registry.py").read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [m for m in imported if m and m.startswith("tfdgm")], imported


def test_registry_refuses_unknown_settings_and_variant_datasets():
    with pytest.raises(ValueError, match="unknown run settings"):
        registry.register(
            "bad-entry", tfdgm.VAE, family="x", datasets=("digits",), training={"lr": 1}
        )
    with pytest.raises(ValueError, match="dataset not among"):
        registry.register(
            "bad-entry",
            tfdgm.VAE,
            family="x",
            datasets=("digits",),
            variants={"v": dict(dataset="moons")},
        )
    assert "bad-entry" not in registry.MODELS


# ---------------------------------------------------------------- sample weights
def test_fit_on_arrays_pipelines_and_generators_warns_nothing_about_shuffle():
    """Arrays become a pipeline that shuffles itself: Keras is not handed shuffle=True
    with it (its "shuffle=True ... will be ignored" warning); nor for a tf.data pipeline,
    a generator or weighted arrays."""
    import warnings

    x = _binary(32)
    model = tfdgm.FactorizedCategorical((6,), num_categories=2)
    model.compile_default()
    inputs = {
        "arrays": dict(x=x),
        "weighted arrays": dict(x=x, sample_weight=np.ones(32)),
        "pipeline": dict(x=tf.data.Dataset.from_tensor_slices(x).batch(8)),
        "generator": dict(x=(x[i : i + 8] for i in range(0, 32, 8))),
    }
    for form, kwargs in inputs.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(**kwargs, batch_size=None if form in ("pipeline", "generator") else 8,
                      verbose=0)  # fmt: skip
        assert not [w for w in caught if "shuffle" in str(w.message)], form


@pytest.mark.parametrize("name", ["made", "maf"])
def test_a_weight_of_two_repeats_an_example_and_a_weight_of_zero_drops_it(name):
    """fit(x, sample_weight=w), w = 2 on rows 0-3, 0 on rows 4-7, 1 elsewhere, takes the
    step of fit on x with rows 0-3 twice and rows 4-7 left out (one batch each): the same
    loss and the same weights after it; evaluate gives the same weighted mean."""
    from conftest import make_tiny

    models = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        models.append(make_tiny(name))
    (weighted, dataset), (repeated, _) = models
    weighted.run_eagerly = repeated.run_eagerly = True  # tracing would cost 4x more
    x = dataset.x_train[:16]
    w = np.array([2.0] * 4 + [0.0] * 4 + [1.0] * 8, np.float32)
    x_repeated = np.concatenate([x[:4], x[:4], x[8:]])
    h_w = weighted.fit(x, sample_weight=w, batch_size=16, shuffle=False, verbose=0)
    h_r = repeated.fit(x_repeated, batch_size=16, shuffle=False, verbose=0)
    assert h_w.history["loss"][0] == pytest.approx(h_r.history["loss"][0], rel=1e-5)
    for a, b in zip(weighted.weights, repeated.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-6, err_msg=a.path)
    loss = weighted.evaluate((x, None, w), batch_size=5, verbose=0)  # batches of 5, 5, 5, 1
    assert loss == pytest.approx(repeated.evaluate(x_repeated, verbose=0), rel=1e-5)
    unchanged = weighted.evaluate(x, sample_weight=np.full(16, 3.0), verbose=0)
    assert unchanged == pytest.approx(weighted.evaluate(x, verbose=0), rel=1e-5)


@pytest.mark.parametrize(
    "make",
    [
        lambda: tfdgm.FactorizedCategorical((4,), num_categories=2, smoothing=1.0),
        lambda: tfdgm.Histogram((4,), num_categories=2, smoothing=1.0),
        lambda: tfdgm.BayesianNetwork({"b": ["a"], "c": ["a", "b"]}, dict(a=2, b=2, c=2, d=2)),
    ],
    ids=["factorized", "histogram", "bayes-net"],
)
def test_weighted_counts_are_the_counts_of_repeated_examples(make):
    """Counting models weigh their statistics: after fit(x, sample_weight=w) (w = 2, 0
    and 1 as above, in batches of 4 over two replicas) the counts, N and the reported
    loss are exactly those of fit on x with rows 0-3 repeated and rows 4-7 dropped."""
    x = _binary(16, d=4)
    w = np.array([2.0] * 4 + [0.0] * 4 + [1.0] * 8, np.float32)
    x_repeated = np.concatenate([x[:4], x[:4], x[8:]])
    losses, counts = [], []
    for inputs, weights in ((x, w), (x_repeated, None)):
        with _mirrored().scope():
            model = make()
            model.compile_default()
        history = model.fit(inputs, sample_weight=weights, batch_size=4, verbose=0)
        losses.append(history.history["loss"][-1])
        counts.append([v.numpy() for v in model.weights])
    for a, b in zip(*counts, strict=True):
        np.testing.assert_array_equal(a, b)
    assert counts[0][0].sum() in (16, 16 * 4)  # N = the summed weights
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.parametrize("cls", [tfdgm.GaussianMixture, tfdgm.BernoulliMixture])
def test_weighted_em_is_em_on_repeated_examples(cls):
    """From the same start (one M-step on the same responsibilities), an EM epoch on x
    with weights w (2, 0, 1 as above) gives the parameters and loss of an EM epoch on x
    with rows 0-3 repeated and rows 4-7 dropped."""
    x = _binary(16, d=4)
    w = np.array([2.0] * 4 + [0.0] * 4 + [1.0] * 8, np.float32)
    x_repeated = np.concatenate([x[:4], x[:4], x[8:]])
    start = np.random.default_rng(0).dirichlet(np.ones(3), size=16).astype("float32")
    losses, parameters = [], []
    for inputs, weights in ((x, w), (x_repeated, None)):
        model = cls((4,), num_components=3, seed=0)
        model.compile_default()
        model.initialize(x, responsibilities=start)
        history = model.fit(inputs, sample_weight=weights, batch_size=8, verbose=0)
        losses.append(history.history["loss"][0])
        parameters.append([v.numpy() for v in model.weights])
    for a, b in zip(*parameters, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_sample_weights_train_a_vae_from_a_pipeline_and_bad_ones_stop_the_step():
    """The ELBO takes weights from a pipeline's (x, None, w) batches (all weights 3: the
    unweighted step, z drawn alike); a later batch with a negative weight raises before
    the update, naming the model, the batch and the weight; a model without per-example
    losses (a GAN) refuses weights naming itself."""
    from conftest import make_tiny

    from tfdgm import checks

    losses, states = [], []
    for weights in (None, np.full(32, 3.0, np.float32)):
        keras.utils.set_random_seed(0)
        model, dataset = make_tiny("vae")
        x = dataset.x_train[:32]
        model.run_eagerly = True
        data = (x,) if weights is None else (x, None, weights)
        pipeline = tf.data.Dataset.from_tensor_slices(data).batch(16)
        losses.append(model.fit(pipeline, verbose=0).history["loss"][0])
        states.append([v.numpy() for v in model.weights])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for a, b in zip(*states, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    bad = np.ones(8, np.float32)
    bad[5] = -1.0
    before = [v.numpy() for v in model.weights]
    with pytest.raises(ValueError, match=r"VAE: the sample weights of .* hold -1.* index \[5\]"):
        with checks.BatchPosition(model):
            model.train_step((tf.constant(x[:8]), None, tf.constant(bad)))
    for a, b in zip(before, model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    gan, _ = make_tiny("gan")  # refused before any step
    with pytest.raises(ValueError, match="GAN does not take sample weights: its own training"):
        gan.fit(x, sample_weight=np.ones(32), verbose=0)


# ---------------------------------------------------------------- mixed precision
# (Every base configuration's mixed_float16 loss is checked against float32 in
# tests/test_contract.py::test_base_configuration.)


def test_f_gan_critic_steps_under_mixed_float16_where_its_gradient_leaves_float16():
    """A KL f-GAN's critic at V = 20 everywhere: dF/dV = exp(V - 1) / batch ~ 6e6 is past
    float16's 65504 at any loss scale, so a float16 critic's step would be skipped every
    time (the cause of the divergence under mixed_float16); its critic computes in
    float32 and steps. (The Pearson critic, linear in V, stays in float16.)"""
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = tfdgm.FGAN(event_shape=(2,), latent_dim=2, hidden_units=(8,), divergence="kl")
    model.compile_default(learning_rate=1e-3)
    model.discriminator.out.bias.assign([20.0])
    model.discriminator.out.kernel.assign(tf.zeros_like(model.discriminator.out.kernel))
    before = [v.numpy().copy() for v in model.discriminator.trainable_variables]
    values = model.train_step(tf.random.normal([32, 2], seed=1))
    after = model.discriminator.trainable_variables
    assert np.isfinite(float(values["d_loss"]))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, after))
    assert model.discriminator.out.compute_dtype == "float32"
    pearson = tfdgm.FGAN(event_shape=(2,), latent_dim=2, hidden_units=(8,), divergence="pearson")
    assert pearson.discriminator.out.compute_dtype == "float16"


# ---------------------------------------------------------------- the train function
class NoisyMean(GenerativeModel):
    """N(x; mu + noise, I) with fresh noise from the model's stream every step: a
    gradient step whose result depends on every batch and every draw, cheap to trace."""

    metric_names = ("loss", "norm")

    def __init__(self, seed=None, **kwargs):
        super().__init__((3,), seed=seed, **kwargs)
        self.build()

    def _build(self):
        self.mu = self.add_weight(shape=(3,), initializer="zeros", name="mu")

    def objective(self, x, training=False):
        noise = 0.1 * tf.random.stateless_normal([3], self._seed())
        loss = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(x - self.mu - noise), -1))
        return {"loss": loss, "norm": tf.norm(self.mu)}

    def sample(self, num_samples, seed=None):
        return self.mu + tf.random.stateless_normal([num_samples, 3], self._seed(seed))


def test_several_steps_per_call_train_like_one_step_per_call():
    """fit with 4 steps per call (tfdgm's one-loop train function) takes the same steps on
    the same batches as fit with 1 (Keras' own function): 10 batches an epoch, so the last
    call of an epoch runs 2; a pipeline of unknown length ends its epoch by running out
    of data mid-call. Same step count, weights and logs: a skipped or doubled step, or a
    batch taken and dropped, would change them."""
    from tfdgm import training

    x = np.random.default_rng(0).normal(2.0, 1.0, (160, 3)).astype("float32")
    unknown_length = tf.data.Dataset.from_tensor_slices(x).filter(lambda v: True).batch(16)
    runs = []
    for steps, data_ in ((1, x), (4, x), (4, unknown_length)):
        model = NoisyMean(seed=0)
        model.compile_default(learning_rate=0.05, steps_per_execution=steps)
        history = model.fit(data_, batch_size=16, epochs=2, shuffle=False, verbose=0)
        assert training.runs_steps_in_one_loop(model) == (steps > 1)
        assert int(model.optimizer.iterations) == 20
        runs.append((history.history, model.mu.numpy()))
    (reference, mu), others = runs[0], runs[1:]
    for history, other_mu in others:
        assert history.keys() == reference.keys()
        for key in reference:
            np.testing.assert_allclose(history[key], reference[key], rtol=1e-6)
        np.testing.assert_allclose(other_mu, mu, rtol=1e-6)
