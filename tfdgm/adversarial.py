"""Implicit generative models and adversarial training: the bases of the GANs and the MMD net.

An implicit model pushes Gaussian noise through a generator network,

    x = G(z),  z ~ N(0, I_L),

so its distribution Q_G has no density to evaluate (``log_prob`` raises
:class:`tfdgm.NoDensityError`); samples are judged with :mod:`tfdgm.metrics` (Frechet
distance, KID, mode coverage). :class:`ImplicitModel` holds the generator, the noise, sampling,
the sample-quality report and the exported ``generate``.

:class:`AdversarialModel` adds a discriminator (critic) V and trains the two networks in
alternation: per real batch x, ``discriminator_steps`` updates of V on

    d_loss(x, G(z)),  fresh z each step (G fixed),

then one update of G on g_loss(G(z)) (V fixed), each network with its own optimizer. A
subclass writes ``discriminator_objective(x_real, x_fake)`` (a dict with ``"d_loss"``,
minimized over V, and ``"loss"``, the discrepancy estimate) and
``generator_objective(x_fake)``; :mod:`tfdgm.models.gan` has the f-GAN, GAN and WGAN-GP,
:mod:`tfdgm.models.mmd` the moment matching network.

Class-conditional adversarial models (``num_classes=K``; Mirza & Osindero, 2014): the
generator and the critic both see the one-hot label y, appended to z and to x,

    x = G(z, y),    V(x, y),

and every fake batch is drawn with the labels of the real batch it is compared with, so
the critic judges pairs (x, y) and G learns p(x | y). ``fit(x, y)``,
``sample(n, labels=y)``, ``generate(z, labels=y)``, ``discriminate(x, labels=y)``.

References:
    Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014.
    Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks (DCGAN), ICLR 2016.
    Mirza & Osindero, Conditional Generative Adversarial Nets, arXiv:1411.1784, 2014.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import metrics, nets, training
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.data import EventSpec

#: Datasets of the registered implicit models (the first is the default of ``tfdgm train``).
DATASETS = (
    "8gaussians",
    "digits-continuous",
    "digits",
    "moons",
    "checkerboard",
    "spirals",
    "mnist5k-continuous",
)
#: Hyperparameters small enough for the tests.
TINY = dict(latent_dim=2, hidden_units=(16,), filters=4)


def conv_critic(image_shape: Sequence[int], filters: int = 32, **kwargs) -> nets.ConvEncoder:
    """DCGAN-style critic for images: :class:`tfdgm.nets.ConvEncoder` with LeakyReLU(0.2)
    and one linear output, ``[batch, H*W*C]`` -> ``[batch, 1]``. No batch normalization: it
    couples the examples of a batch, which breaks the per-example gradient penalty of WGAN-GP
    (Gulrajani et al., 2017)."""
    return nets.ConvEncoder(image_shape, 1, filters, activation="leaky_relu", **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE, name="ConvCritic")
class _LegacyConvCritic(nets.ConvEncoder):
    """Loads the critic of models saved while it was a class of its own (``tfdgm>ConvCritic``,
    config ``image_shape``, ``filters``): the same layers and weights as :func:`conv_critic`."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return conv_critic(config.pop("image_shape"), config.pop("filters", 32), **config)


class ImplicitModel(GenerativeModel):
    """x = G(z), z ~ N(0, I_L): the generator, sampling, export and sample-quality reports.

    Args:
        event_shape: shape of one data point.
        latent_dim: L, dimension of the noise z.
        generator: a Keras layer z ``[batch, L]`` -> ``[batch, prod(event_shape)]``; default an
            MLP (``architecture="mlp"``) or a DCGAN-style transposed-convolution net
            (``"conv"``, :class:`tfdgm.nets.ConvDecoder`).
        hidden_units: widths of the default MLPs.
        architecture: ``"mlp"`` or ``"conv"`` (needs ``image_shape``).
        image_shape: ``(H, W)`` or ``(H, W, C)`` of flattened image events.
        filters: width of the default convolutional nets.
        output_activation: applied to the generator output: ``None`` (linear, real data) or
            ``"sigmoid"`` (data in [0, 1], e.g. digits).
        num_classes: K of a class-conditional model, labels in [0, K): G (and the critic of
            an :class:`AdversarialModel`) take the one-hot label too (MLP networks); None
            for the unconditional model.
        seed: seed of the model's random stream.
    """

    #: Q_G has no density to evaluate.
    density = "none"

    def __init__(
        self,
        event_shape: Sequence[int],
        latent_dim: int = 8,
        generator: keras.layers.Layer | None = None,
        hidden_units: Sequence[int] = (128, 128),
        architecture: str = "mlp",
        image_shape: Sequence[int] | None = None,
        filters: int = 32,
        output_activation: str | None = None,
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        if num_classes is not None and (int(num_classes) < 2 or architecture == "conv"):
            raise ValueError(
                f"num_classes must be >= 2 and needs architecture='mlp', got {num_classes}"
            )
        if num_classes is not None and not isinstance(self, AdversarialModel):
            raise ValueError(
                f"{type(self).__name__} is not conditional: num_classes is for the adversarial "
                "models (GAN, WGANGP, FGAN)"
            )
        if architecture not in ("mlp", "conv"):
            raise ValueError(f"architecture must be 'mlp' or 'conv', got {architecture!r}")
        if architecture == "conv" and image_shape is None:
            raise ValueError("architecture='conv' needs image_shape=(H, W) or (H, W, C)")
        if output_activation not in (None, "sigmoid"):
            raise ValueError(
                f"output_activation must be None or 'sigmoid', got {output_activation!r}"
            )
        super().__init__(event_shape, support="real", seed=seed, **kwargs)
        self.latent_dim = int(latent_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.architecture = architecture
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.filters = int(filters)
        self.output_activation = output_activation
        self.num_classes = None if num_classes is None else int(num_classes)
        if self.num_classes is not None:
            self.accepts_labels = True
            self.label_spec = EventSpec((), "categorical", self.num_classes)
        if architecture == "conv":
            channels = self.event_size // int(np.prod(self.image_shape[:2]))
            generator = generator or nets.ConvDecoder(
                self.image_shape, channels, self.filters, name="generator"
            )
        self.generator = nets.deserialize(generator) or nets.MLP(
            self.hidden_units, self.event_size, name="generator"
        )

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        """A model for ``dataset``: DCGAN-style nets and a sigmoid output for 8x8/28x28 images
        (values in [0, 1]; binary digits are modelled as grey levels in [0, 1]), MLPs and a
        linear output for vectors. Categorical data is refused."""
        if dataset.support == "categorical":
            raise ValueError(
                f"{cls.__name__} models real-valued data; use the '-continuous' or binary "
                f"version of {dataset.name!r}"
            )
        if dataset.image_shape is not None:
            # conditional models use MLPs (the label is appended to the flattened input)
            hparams.setdefault("architecture", "mlp" if hparams.get("num_classes") else "conv")
            hparams.setdefault("output_activation", "sigmoid")
            if hparams["architecture"] == "conv":
                hparams.setdefault("image_shape", dataset.image_shape)
        return cls(event_shape=dataset.event_shape, **hparams)

    def _build(self):
        self.generator(self._condition(tf.zeros([1, self.latent_dim]), tf.zeros([1], tf.int32)))

    def _condition(self, h, labels):
        """``h`` with the one-hot label appended (conditional model), ``h`` otherwise."""
        if self.num_classes is None:
            return h
        if labels is None:
            raise ValueError(f"{type(self).__name__}(num_classes={self.num_classes}) needs labels=")
        return nets.append_label(h, labels, self.num_classes)

    # ------------------------------------------------------------------ the model
    def noise(self, num_samples, seed=None) -> tf.Tensor:
        """z ~ N(0, I_L), ``[num_samples, L]``."""
        return tf.random.stateless_normal([num_samples, self.latent_dim], seed=self._seed(seed))

    def generate(self, z, training: bool = False, labels=None) -> tf.Tensor:
        """x = G(z) (G(z, y) given ``labels`` y ``[batch]``; through the output activation),
        float32 ``[batch, *event_shape]``."""
        z = self._condition(tf.convert_to_tensor(z, tf.float32), nets.class_labels(self, labels))
        x = tf.cast(self.generator(z, training=training), tf.float32)
        if self.output_activation == "sigmoid":
            x = tf.sigmoid(x)
        return tf.reshape(x, [-1, *self.event_shape])

    def sample(self, num_samples: int, seed=None, labels=None) -> tf.Tensor:
        """x = G(z), z ~ N(0, I): float32 ``[num_samples, *event_shape]``. A conditional model
        draws x = G(z, y) for ``labels`` y (one for all, or one per sample), or for labels
        drawn uniformly when none are given."""
        seed = self._seed(seed)
        labels = nets.class_labels(self, labels, num_samples, tf.reverse(seed, [0]))
        return self.generate(self.noise(num_samples, seed), labels=labels)

    # ------------------------------------------------------------------ reports
    def summary_metrics(self, dataset) -> dict:
        """FD and KID against the test split (and the train-vs-test reference values; mode
        coverage on "8gaussians"), see :func:`tfdgm.metrics.sample_quality`."""
        return metrics.sample_quality(self, dataset, reference=True)

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        spec_z = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
        if self.num_classes is None:
            endpoints["generate"] = (lambda z: self.generate(z), [spec_z])
            return endpoints
        spec_y = tf.TensorSpec([None], tf.int32, name="labels")
        endpoints["sample"] = (
            lambda n, seed, y: self.sample(n, seed=seed, labels=y),
            [*endpoints["sample"][1], spec_y],
        )
        endpoints["generate"] = (lambda z, y: self.generate(z, labels=y), [spec_z, spec_y])
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "latent_dim": self.latent_dim,
            "generator": nets.serialize(self.generator),
            "hidden_units": self.hidden_units,
            "architecture": self.architecture,
            "image_shape": self.image_shape,
            "filters": self.filters,
            "output_activation": self.output_activation,
            "num_classes": self.num_classes,
        }


class AdversarialModel(ImplicitModel):
    """An :class:`ImplicitModel` trained against a discriminator (critic) V, two optimizers.

    Each ``training_update`` on a real batch x makes ``discriminator_steps`` discriminator
    updates (each with fresh noise, on the same real batch), then one generator update, with
    the optimizers of the groups ``"discriminator"`` and ``"generator"``. Subclasses
    implement ``discriminator_objective(x_real, x_fake)`` (a dict with ``"d_loss"``, minimized
    over V, and ``"loss"``, the discrepancy estimate) and ``generator_objective(x_fake)``.

    Args:
        discriminator: a Keras layer x ``[batch, prod(event_shape)]`` -> ``[batch, 1]``;
            default an MLP with LeakyReLU(0.2) or :func:`conv_critic`.
        discriminator_steps: discriminator updates per generator update.
        **kwargs: see :class:`ImplicitModel`.
    """

    #: Adam's (beta_1, beta_2) of ``default_optimizer``.
    adam_betas = (0.5, 0.999)
    default_learning_rate = 2e-4

    def __init__(
        self,
        event_shape: Sequence[int],
        discriminator: keras.layers.Layer | None = None,
        discriminator_steps: int = 1,
        **kwargs,
    ):
        super().__init__(event_shape, **kwargs)
        if int(discriminator_steps) < 1:
            raise ValueError(f"discriminator_steps must be >= 1, got {discriminator_steps}")
        self.discriminator_steps = int(discriminator_steps)
        with training.global_policy("float32" if self.critic_in_float32() else None):
            if self.architecture == "conv":
                discriminator = discriminator or conv_critic(
                    self.image_shape, self.filters, name="discriminator"
                )
            self.discriminator = nets.deserialize(discriminator) or nets.MLP(
                self.hidden_units, 1, activation="leaky_relu", name="discriminator"
            )

    def critic_in_float32(self) -> bool:
        """Whether the critic (built from a config or by default) computes in float32
        under a mixed policy; see :meth:`tfdgm.FGAN.critic_in_float32`."""
        return False

    def _build(self):
        super()._build()
        x = self._condition(tf.zeros([1, self.event_size]), tf.zeros([1], tf.int32))
        self.discriminator(x)

    def discriminate(self, x, training: bool = False, labels=None) -> tf.Tensor:
        """Raw discriminator (critic) output V(x) (V(x, y) given ``labels``), float32
        ``[batch]``."""
        x = tf.reshape(tf.convert_to_tensor(x, tf.float32), [-1, self.event_size])
        x = self._condition(x, nets.class_labels(self, labels))
        return tf.cast(self.discriminator(x, training=training), tf.float32)[:, 0]

    def call(self, x, training=False):
        """V(x): the discriminator's output (the model has no density to return)."""
        return self.discriminate(x, training=training)

    def discriminator_objective(self, x_real, x_fake, training=False, labels=None) -> dict:
        """``labels``: the classes of both batches (conditional models)."""
        raise NotImplementedError

    def generator_objective(self, x_fake, training=False, labels=None) -> tf.Tensor:
        raise NotImplementedError

    def objective(self, x, training=False, labels=None):
        x_fake = self.sample(tf.shape(x)[0], labels=labels)
        values = self.discriminator_objective(x, x_fake, training=training, labels=labels)
        values["g_loss"] = self.generator_objective(x_fake, training=training, labels=labels)
        return values

    # ------------------------------------------------------------------ training
    def optimizer_groups(self) -> dict[str, list]:
        """Two optimizers: one for G, one for V (``compile(generator_optimizer=...,
        discriminator_optimizer=...)`` sets either)."""
        return {
            "generator": self.generator.trainable_variables,
            "discriminator": self.discriminator.trainable_variables,
        }

    def default_optimizer(self, group: str, learning_rate: float):
        """Adam(learning_rate, *adam_betas) for both networks (beta_1 = 0.5, as in DCGAN)."""
        return keras.optimizers.Adam(learning_rate, *self.adam_betas)

    def training_update(self, x, labels=None) -> dict[str, tf.Tensor]:
        """``discriminator_steps`` steps of V on d_loss(x, G(z)) (fresh z each, G fixed),
        then one step of G on g_loss(G(z)) (V fixed); a conditional model draws every
        fake batch with the real batch's ``labels``."""
        batch = tf.shape(x)[0]
        groups = self.optimizer_groups()
        d_optimizer = self.optimizer_for("discriminator")
        g_optimizer = self.optimizer_for("generator")
        for _ in range(self.discriminator_steps):
            x_fake = tf.stop_gradient(self.sample(batch, labels=labels))
            with tf.GradientTape() as tape:
                values = self.discriminator_objective(x, x_fake, training=True, labels=labels)
                scaled = self._scaled(values["d_loss"], d_optimizer)
            self._minimize(scaled, groups["discriminator"], d_optimizer, tape)
        with tf.GradientTape() as tape:
            x_fake = self.generate(self.noise(batch), training=True, labels=labels)
            g_loss = self.generator_objective(x_fake, training=True, labels=labels)
            scaled = self._scaled(g_loss, g_optimizer)
        self._minimize(scaled, groups["generator"], g_optimizer, tape)
        return {**values, "g_loss": g_loss}

    # The pre-v2 attribute names. Keras saves an optimizer's state under the attribute it
    # is reached by, so these also keep the optimizer state of older .keras files loading.
    @property
    def generator_optimizer(self):
        """``optimizer_for("generator")``."""
        return self.optimizer_for("generator")

    @property
    def discriminator_optimizer(self):
        """``optimizer_for("discriminator")``."""
        return self.optimizer_for("discriminator")

    def figures(self, dataset) -> dict:
        """The base pictures and, on 2-D data, the discriminator's output V(x) over the plane
        with data and samples (``discriminator.png``)."""
        figures = super().figures(dataset)
        if tuple(dataset.event_shape) != (2,) or self.num_classes is not None:
            return figures
        import matplotlib.pyplot as plt

        axis = np.linspace(-4, 4, 120, dtype=np.float32)
        grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
        values = np.asarray(self.discriminate(grid)).reshape(len(axis), len(axis))
        samples = np.asarray(self.sample(500, seed=(0, 3)))
        fig, ax = plt.subplots(figsize=(4.5, 4))
        mesh = ax.pcolormesh(axis, axis, values, cmap="RdBu_r", shading="auto")
        fig.colorbar(mesh, ax=ax, label="V(x)")
        ax.scatter(*dataset.x_test[:500].T, s=2, c="k", label="data")
        ax.scatter(*samples.T, s=2, c="orange", label="samples")
        ax.set(xlim=(-4, 4), ylim=(-4, 4), aspect="equal", title=f"{type(self).__name__} critic")
        ax.legend(loc="upper right", fontsize=7, markerscale=3)
        return {**figures, "discriminator": fig}

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        spec_x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        if self.num_classes is None:
            endpoints["discriminate"] = (lambda x: self.discriminate(x), [spec_x])
        else:
            spec_y = tf.TensorSpec([None], tf.int32, name="labels")
            endpoints["discriminate"] = (
                lambda x, y: self.discriminate(x, labels=y),
                [spec_x, spec_y],
            )
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "discriminator": nets.serialize(self.discriminator),
            "discriminator_steps": self.discriminator_steps,
        }
