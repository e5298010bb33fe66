"""Implicit generative models: GAN, f-GAN, WGAN-GP and the generative moment matching network.

All four push Gaussian noise through a generator network, x = G(z), z ~ N(0, I_L): the model
distribution Q_G has no density to evaluate (``log_prob`` raises :class:`NoDensityError`);
samples are judged with :mod:`tfdgm.metrics`. They differ in the discrepancy between the data
distribution P and Q_G that training drives down.

f-GAN (variational divergence minimization; the GAN is the case f = GAN): a critic V with an
output activation g_f gives T = g_f(V) and the lower bound

    D_f(P || Q_G) >= F(G, V) = E_P[T(x)] - E_{Q_G}[f*(T(x))],                (tight at T = f'(p/q))

maximized over V by the discriminator and minimized over G by the generator ("minimax"), or
with the generator maximizing E_Q[T(G(z))] instead ("non_saturating", Goodfellow et al.'s
-log D trick). For the GAN, T = log D with D = sigmoid(V), and F = V(D, G) + log 4 where
V(D, G) = E_P[log D(x)] + E_Q[log(1 - D(G(z)))] is the minimax value; at the optimal
D*(x) = p(x) / (p(x) + q(x)), V(D*, G) = 2 JS(P, Q_G) - log 4.

WGAN-GP: a critic C approximately 1-Lipschitz, kept so by a penalty on interpolates,

    W(P, Q) ~= max_C E_P[C(x)] - E_Q[C(x)] - lambda E_xhat[(||grad C(xhat)||_2 - 1)^2],
    xhat = eps x + (1 - eps) G(z),  eps ~ U[0, 1].

MMD network (GMMN): no critic; the generator minimizes the unbiased MMD^2 between a data batch
and a generated batch under a mixture of Gaussian kernels sum_s exp(-||a - b||^2 / (2 s^2)).

References:
    Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014.
    Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional
    Generative Adversarial Networks (DCGAN), ICLR 2016.
    Nowozin, Cseke & Tomioka, f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization, NeurIPS 2016.
    Arjovsky, Chintala & Bottou, Wasserstein GAN, ICML 2017.
    Gulrajani et al., Improved Training of Wasserstein GANs, NeurIPS 2017.
    Li, Swersky & Zemel, Generative Moment Matching Networks, ICML 2015.
    Dziugaite, Roy & Ghahramani, Training generative neural networks via Maximum Mean
    Discrepancy optimization, UAI 2015.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import divergences, metrics, nets, registry
from tfdgm.base import PACKAGE, GenerativeModel

_LOG2 = math.log(2.0)

#: f*(g_f(v)) in closed form for each divergence of the table: the same function as
#: ``conjugate(activation(v))`` (tests check it on a grid) without its overflow at the edge
#: of dom f* (e.g. log(1 - exp(t)) as t -> 0 for the GAN).
_CONJUGATE_OF_ACTIVATION = {
    "kl": lambda v: tf.exp(v - 1.0),
    "reverse_kl": lambda v: v - 1.0,
    "pearson": lambda v: 0.25 * tf.square(v) + v,
    "squared_hellinger": lambda v: tf.math.expm1(v),
    "jensen_shannon": lambda v: tf.math.softplus(v) - _LOG2,
    "gan": lambda v: tf.math.softplus(v) - 2.0 * _LOG2,
}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvCritic(keras.layers.Layer):
    """DCGAN-style discriminator for images: two stride-2 3x3 convolutions (``filters``,
    ``2*filters``) with LeakyReLU(0.2), flatten, a linear unit. ``[batch, H*W*C]`` or
    ``[batch, H, W, C]`` -> ``[batch, 1]``. No batch normalization: it couples the examples of
    a batch, which breaks the per-example gradient penalty of WGAN-GP (Gulrajani et al.).
    """

    def __init__(self, image_shape: Sequence[int], filters: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) == 2:
            self.image_shape = self.image_shape + (1,)
        self.filters = int(filters)
        self.convs = [
            keras.layers.Conv2D(f, 3, strides=2, padding="same")
            for f in (self.filters, 2 * self.filters)
        ]
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(1)

    def build(self, input_shape):
        shape = (None,) + self.image_shape
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        flat = int(np.prod(shape[1:]))
        self.out.build((None, flat))

    def call(self, x):
        h = keras.ops.reshape(x, (-1,) + self.image_shape)
        for conv in self.convs:
            h = keras.ops.leaky_relu(conv(h), negative_slope=0.2)
        return self.out(self.flatten(h))

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape, "filters": self.filters}


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
        seed: seed of the model's random stream.
    """

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
        seed: int | None = None,
        **kwargs,
    ):
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
            hparams.setdefault("architecture", "conv")
            hparams.setdefault("output_activation", "sigmoid")
            if hparams["architecture"] == "conv":
                hparams.setdefault("image_shape", dataset.image_shape)
        return cls(event_shape=dataset.event_shape, **hparams)

    def _build(self):
        self.generator(tf.zeros([1, self.latent_dim]))

    # ------------------------------------------------------------------ the model
    def noise(self, num_samples, seed=None) -> tf.Tensor:
        """z ~ N(0, I_L), ``[num_samples, L]``."""
        return tf.random.stateless_normal([num_samples, self.latent_dim], seed=self._seed(seed))

    def generate(self, z, training: bool = False) -> tf.Tensor:
        """x = G(z) (through the output activation), float32 ``[batch, *event_shape]``."""
        x = tf.cast(self.generator(z, training=training), tf.float32)
        if self.output_activation == "sigmoid":
            x = tf.sigmoid(x)
        return tf.reshape(x, [-1, *self.event_shape])

    def sample(self, num_samples: int, seed=None) -> tf.Tensor:
        """x = G(z), z ~ N(0, I): float32 ``[num_samples, *event_shape]``."""
        return self.generate(self.noise(num_samples, seed))

    # ------------------------------------------------------------------ reports
    def summary_metrics(self, dataset) -> dict:
        """FD and KID against the test split (and the train-vs-test reference values; mode
        coverage on "8gaussians"), see :func:`tfdgm.metrics.sample_quality`."""
        return metrics.sample_quality(self, dataset, reference=True)

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        spec_z = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
        endpoints["generate"] = (lambda z: self.generate(z), [spec_z])
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
        }


class AdversarialModel(ImplicitModel):
    """An :class:`ImplicitModel` trained against a discriminator (critic) V, two optimizers.

    Each ``train_step`` on a real batch x makes ``discriminator_steps`` discriminator updates
    (each with fresh noise, on the same real batch), then one generator update. Subclasses
    implement ``discriminator_objective(x_real, x_fake)`` (a dict with ``"d_loss"``, minimized
    over V, and ``"loss"``, the discrepancy estimate) and ``generator_objective(x_fake)``.

    Args:
        discriminator: a Keras layer x ``[batch, prod(event_shape)]`` -> ``[batch, 1]``;
            default an MLP with LeakyReLU(0.2) or :class:`ConvCritic`.
        discriminator_steps: discriminator updates per generator update.
        **kwargs: see :class:`ImplicitModel`.
    """

    #: Adam's (beta_1, beta_2) in ``compile`` defaults and ``compile_default``.
    adam_betas = (0.5, 0.999)

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
        if self.architecture == "conv":
            discriminator = discriminator or ConvCritic(
                self.image_shape, self.filters, name="discriminator"
            )
        self.discriminator = nets.deserialize(discriminator) or nets.MLP(
            self.hidden_units, 1, activation="leaky_relu", name="discriminator"
        )
        self._optimizer_configs = None

    def _build(self):
        super()._build()
        self.discriminator(tf.zeros([1, self.event_size]))

    def discriminate(self, x, training: bool = False) -> tf.Tensor:
        """Raw discriminator (critic) output V(x), float32 ``[batch]``."""
        x = tf.reshape(tf.convert_to_tensor(x, tf.float32), [-1, self.event_size])
        return tf.cast(self.discriminator(x, training=training), tf.float32)[:, 0]

    def call(self, x, training=False):
        """V(x): the discriminator's output (the model has no density to return)."""
        return self.discriminate(x, training=training)

    def discriminator_objective(self, x_real, x_fake, training=False) -> dict:
        raise NotImplementedError

    def generator_objective(self, x_fake, training=False) -> tf.Tensor:
        raise NotImplementedError

    def objective(self, x, training=False):
        x_fake = self.sample(tf.shape(x)[0])
        values = self.discriminator_objective(x, x_fake, training=training)
        values["g_loss"] = self.generator_objective(x_fake, training=training)
        return values

    # ------------------------------------------------------------------ training
    def compile(
        self,
        generator_optimizer=None,
        discriminator_optimizer=None,
        optimizer=None,
        **kwargs,
    ):
        """Two optimizers: ``generator_optimizer`` and ``discriminator_optimizer``.

        ``optimizer`` (if given) is cloned for whichever of the two is missing; without any,
        both are ``Adam(2e-4, *adam_betas)``. Under ``mixed_float16`` both are wrapped in a
        ``LossScaleOptimizer``. Other keyword arguments (``jit_compile``, ``run_eagerly``,
        ...) go to ``keras.Model.compile``; a ``loss`` is refused (the model owns it).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(f"{type(self).__name__} owns its objective; do not pass loss=")
        kwargs.pop("loss", None)

        def make(opt):
            if opt is None and optimizer is not None:
                opt = _clone(keras.optimizers.get(optimizer))
            elif opt is None:
                opt = keras.optimizers.Adam(2e-4, *self.adam_betas)
            return keras.optimizers.get(opt)

        generator_optimizer = make(generator_optimizer)
        discriminator_optimizer = make(discriminator_optimizer)
        if discriminator_optimizer is generator_optimizer:
            discriminator_optimizer = _clone(generator_optimizer)
        self._optimizer_configs = {
            "generator_optimizer": keras.optimizers.serialize(generator_optimizer),
            "discriminator_optimizer": keras.optimizers.serialize(discriminator_optimizer),
        }
        if self.dtype_policy.name == "mixed_float16":
            wrap = keras.optimizers.LossScaleOptimizer
            generator_optimizer = wrap(generator_optimizer, name="generator_loss_scale")
            discriminator_optimizer = wrap(discriminator_optimizer, name="discriminator_loss_scale")
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        super().compile(optimizer=generator_optimizer, auto_scale_loss=False, **kwargs)
        # Create the slot variables now, outside any tf.function (and inside the
        # distribution strategy's scope if compile is called there).
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    def compile_default(self, learning_rate: float = 2e-4, jit_compile: bool = False, **kwargs):
        """Adam(learning_rate, *adam_betas) for both networks."""
        self.compile(
            generator_optimizer=keras.optimizers.Adam(learning_rate, *self.adam_betas),
            discriminator_optimizer=keras.optimizers.Adam(learning_rate, *self.adam_betas),
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_compile_config(self):
        if self._optimizer_configs is None:
            return None
        return dict(self._optimizer_configs)

    def compile_from_config(self, config):
        self.compile(
            generator_optimizer=keras.optimizers.deserialize(config["generator_optimizer"]),
            discriminator_optimizer=keras.optimizers.deserialize(config["discriminator_optimizer"]),
        )

    def train_step(self, data):
        x = self._unpack(data)
        batch = tf.shape(x)[0]
        d_variables = self.discriminator.trainable_variables
        g_variables = self.generator.trainable_variables
        for _ in range(self.discriminator_steps):
            x_fake = tf.stop_gradient(self.sample(batch))
            with tf.GradientTape() as tape:
                values = self.discriminator_objective(x, x_fake, training=True)
                scaled = self._scaled(values["d_loss"], self.discriminator_optimizer)
            self._minimize(scaled, d_variables, self.discriminator_optimizer, tape)
        with tf.GradientTape() as tape:
            x_fake = self.generate(self.noise(batch), training=True)
            g_loss = self.generator_objective(x_fake, training=True)
            scaled = self._scaled(g_loss, self.generator_optimizer)
        self._minimize(scaled, g_variables, self.generator_optimizer, tape)
        values["g_loss"] = g_loss
        return self._update_metrics(values, batch)

    def figures(self, dataset) -> dict:
        """On 2-D data, the discriminator's output V(x) over the plane with data and samples
        (``discriminator.png``); the CLI draws the sample pictures itself."""
        if tuple(dataset.event_shape) != (2,):
            return {}
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
        return {"discriminator": fig}

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        spec_x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        endpoints["discriminate"] = (lambda x: self.discriminate(x), [spec_x])
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "discriminator": nets.serialize(self.discriminator),
            "discriminator_steps": self.discriminator_steps,
        }


def _clone(optimizer):
    """A fresh optimizer with the same configuration (no shared slot variables)."""
    return type(optimizer).from_config(optimizer.get_config())


@keras.saving.register_keras_serializable(package=PACKAGE)
class FGAN(AdversarialModel):
    """f-GAN: variational divergence minimization of D_f(P || Q_G) (Nowozin et al., 2016).

    T(x) = g_f(V(x)) with the output activation g_f of ``divergence``;
    F = E_P[T(x)] - E_Q[f*(T(x))] <= D_f(P || Q_G). The discriminator minimizes
    ``d_loss = -F``; the generator minimizes ``g_loss = -E_Q[f*(T)]`` ("minimax", i.e. F up to
    a term without G) or ``-E_Q[T]`` ("non_saturating"). Reported ``loss`` is F, the current
    estimate of the divergence; ``real_accuracy``/``fake_accuracy`` count T(x) > f'(1) (the
    optimal critic's value where p = q) as "real".

    Args:
        divergence: a name of :data:`tfdgm.divergences.F_DIVERGENCES` ("kl", "reverse_kl",
            "pearson", "squared_hellinger", "jensen_shannon", "gan").
        loss: generator loss, ``"non_saturating"`` or ``"minimax"``.
        **kwargs: see :class:`AdversarialModel` and :class:`ImplicitModel`.

    >>> model = FGAN(event_shape=(2,), divergence="pearson", hidden_units=(8,), seed=0)
    >>> model.sample(3, seed=(1, 2)).shape
    TensorShape([3, 2])
    """

    metric_names = ("loss", "d_loss", "g_loss", "real_accuracy", "fake_accuracy")
    GENERATOR_LOSSES = ("non_saturating", "minimax")

    def __init__(
        self,
        event_shape: Sequence[int],
        divergence: str = "kl",
        loss: str = "non_saturating",
        **kwargs,
    ):
        divergences.get(divergence)  # ValueError listing the choices
        if loss not in self.GENERATOR_LOSSES:
            raise ValueError(f"loss must be one of {self.GENERATOR_LOSSES}, got {loss!r}")
        super().__init__(event_shape, **kwargs)
        self.divergence = divergence
        self.generator_loss = loss  # not self.loss: keras.Model uses that name for compile's loss
        self.build()

    @property
    def f(self) -> divergences.FDivergence:
        return divergences.get(self.divergence)

    @property
    def real_threshold(self) -> float:
        """f'(1): the optimal critic's value T*(x) = f'(p(x)/q(x)) where p(x) = q(x)."""
        with tf.init_scope():  # a Python float even while tracing a train step
            return float(self.f.f_prime(tf.constant(1.0)))

    def critic(self, x, training: bool = False) -> tf.Tensor:
        """T(x) = g_f(V(x)), float32 ``[batch]``."""
        return self.f.activation(self.discriminate(x, training))

    def conjugate_of_critic(self, v) -> tf.Tensor:
        """f*(g_f(v)) from raw discriminator outputs v, in a numerically stable closed form."""
        return _CONJUGATE_OF_ACTIVATION[self.divergence](v)

    def variational_bound(self, x_real, x_fake, training: bool = False) -> tf.Tensor:
        """F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))], a lower bound on D_f(P || Q)."""
        return self._bound(self.discriminate(x_real, training), self.discriminate(x_fake, training))

    def _bound(self, v_real, v_fake):
        return tf.reduce_mean(self.f.activation(v_real)) - tf.reduce_mean(
            self.conjugate_of_critic(v_fake)
        )

    def discriminator_objective(self, x_real, x_fake, training=False):
        v_real = self.discriminate(x_real, training)
        v_fake = self.discriminate(x_fake, training)
        bound = self._bound(v_real, v_fake)
        threshold = self.real_threshold
        return {
            "loss": bound,
            "d_loss": -bound,
            "real_accuracy": tf.reduce_mean(
                tf.cast(self.f.activation(v_real) > threshold, tf.float32)
            ),
            "fake_accuracy": tf.reduce_mean(
                tf.cast(self.f.activation(v_fake) <= threshold, tf.float32)
            ),
        }

    def generator_objective(self, x_fake, training=False):
        v_fake = self.discriminate(x_fake, training)
        if self.generator_loss == "minimax":
            return -tf.reduce_mean(self.conjugate_of_critic(v_fake))
        return -tf.reduce_mean(self.f.activation(v_fake))

    def get_config(self):
        return {**super().get_config(), "divergence": self.divergence, "loss": self.generator_loss}


@keras.saving.register_keras_serializable(package=PACKAGE)
class GAN(FGAN):
    """Generative adversarial network (Goodfellow et al., 2014): the f-GAN with f = GAN.

    D(x) = sigmoid(V(x)). The discriminator maximizes
    V(D, G) = E_P[log D(x)] + E_Q[log(1 - D(x))] (binary cross-entropy); the generator
    minimizes E_Q[log(1 - D(G(z)))] (``loss="minimax"``) or -E_Q[log D(G(z))]
    (``loss="non_saturating"``, the default). Reported ``loss`` is V + log 4, the estimate of
    2 JS(P, Q_G) (0 when the discriminator cannot tell); ``d_loss`` is -V - log 4.
    Defaults: MLPs with LeakyReLU discriminators for vectors; DCGAN-style strided
    (transposed) convolutions for images.

    >>> gan = GAN(event_shape=(2,), latent_dim=2, hidden_units=(8,), seed=0)
    >>> gan.sample(4, seed=(1, 2)).shape
    TensorShape([4, 2])
    """

    def __init__(self, event_shape: Sequence[int], loss: str = "non_saturating", **kwargs):
        kwargs.pop("divergence", None)
        super().__init__(event_shape, divergence="gan", loss=loss, **kwargs)

    def discriminator_probability(self, x) -> tf.Tensor:
        """D(x) = sigmoid(V(x)), the probability that x is real, ``[batch]``."""
        return tf.sigmoid(self.discriminate(x))

    def value_function(self, x_real, x_fake) -> tf.Tensor:
        """V(D, G) = E_P[log D(x)] + E_Q[log(1 - D(x))], Monte Carlo over the two batches."""
        v_real, v_fake = self.discriminate(x_real), self.discriminate(x_fake)
        # log D = -softplus(-v), log(1 - D) = -softplus(v)
        return -tf.reduce_mean(tf.math.softplus(-v_real)) - tf.reduce_mean(tf.math.softplus(v_fake))

    def get_config(self):
        config = super().get_config()
        config.pop("divergence")
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class WGANGP(AdversarialModel):
    """Wasserstein GAN with gradient penalty (Gulrajani et al., 2017).

    Critic loss ``d_loss = E_Q[C(x)] - E_P[C(x)] + lambda * gradient_penalty``; generator loss
    ``g_loss = -E_Q[C(G(z))]``. Reported ``loss`` is E_P[C] - E_Q[C], the critic's estimate of
    the Wasserstein-1 distance. Defaults follow the paper: 5 critic steps per generator step,
    lambda = 10, Adam with beta = (0.5, 0.9), no batch normalization in the critic.

    Args:
        gradient_penalty_weight: lambda.
        discriminator_steps: critic updates per generator update (n_critic).
        **kwargs: see :class:`AdversarialModel` and :class:`ImplicitModel`.

    >>> WGANGP(event_shape=(2,), hidden_units=(8,), seed=0).sample(2, seed=(1, 2)).shape
    TensorShape([2, 2])
    """

    metric_names = ("loss", "d_loss", "g_loss", "gradient_penalty")
    adam_betas = (0.5, 0.9)

    def __init__(
        self,
        event_shape: Sequence[int],
        gradient_penalty_weight: float = 10.0,
        discriminator_steps: int = 5,
        **kwargs,
    ):
        super().__init__(event_shape, discriminator_steps=discriminator_steps, **kwargs)
        self.gradient_penalty_weight = float(gradient_penalty_weight)
        self.build()

    def interpolate(self, x_real, x_fake, seed=None) -> tf.Tensor:
        """xhat = eps x_real + (1 - eps) x_fake with one eps ~ U[0, 1] per example."""
        x_real = tf.convert_to_tensor(x_real, tf.float32)
        x_fake = tf.convert_to_tensor(x_fake, tf.float32)
        shape = tf.concat([tf.shape(x_real)[:1], tf.ones([tf.rank(x_real) - 1], tf.int32)], 0)
        eps = tf.random.stateless_uniform(shape, seed=self._seed(seed))
        return eps * x_real + (1.0 - eps) * x_fake

    def gradient_penalty(self, x_real, x_fake, seed=None, training: bool = False) -> tf.Tensor:
        """E_xhat[(||grad_x C(xhat)||_2 - 1)^2] on interpolates xhat (see :meth:`interpolate`)."""
        x_hat = self.interpolate(x_real, x_fake, seed)
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            critic = self.discriminate(x_hat, training)
        grads = tf.reshape(tape.gradient(critic, x_hat), [tf.shape(x_hat)[0], -1])
        # The epsilon keeps the gradient of the norm finite where grad C = 0.
        norm = tf.sqrt(tf.reduce_sum(tf.square(tf.cast(grads, tf.float32)), -1) + 1e-12)
        return tf.reduce_mean(tf.square(norm - 1.0))

    def discriminator_objective(self, x_real, x_fake, training=False):
        wasserstein = tf.reduce_mean(self.discriminate(x_real, training)) - tf.reduce_mean(
            self.discriminate(x_fake, training)
        )
        penalty = self.gradient_penalty(x_real, x_fake, training=training)
        return {
            "loss": wasserstein,
            "d_loss": -wasserstein + self.gradient_penalty_weight * penalty,
            "gradient_penalty": penalty,
        }

    def generator_objective(self, x_fake, training=False):
        return -tf.reduce_mean(self.discriminate(x_fake, training))

    def get_config(self):
        return {**super().get_config(), "gradient_penalty_weight": self.gradient_penalty_weight}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MMDNetwork(ImplicitModel):
    """Generative moment matching network (Li et al., 2015; Dziugaite et al., 2015).

    Minimizes the unbiased MMD^2 between a data batch and a generated batch of the same size
    under k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)), s in ``bandwidths``
    (:func:`tfdgm.metrics.mmd2`). Reported ``loss`` is that MMD^2 estimate. One optimizer.

    Args:
        bandwidths: kernel widths s, in data units. :meth:`for_dataset` scales them with the
            median distance between training points when not given.
        **kwargs: see :class:`ImplicitModel`.

    >>> MMDNetwork(event_shape=(1,), hidden_units=(8,), seed=0).sample(5, seed=(1, 2)).shape
    TensorShape([5, 1])
    """

    metric_names = ("loss",)
    #: Multiples of the median pairwise distance used by ``for_dataset``.
    BANDWIDTH_SCALES = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)

    def __init__(
        self,
        event_shape: Sequence[int],
        bandwidths: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        **kwargs,
    ):
        super().__init__(event_shape, **kwargs)
        self.bandwidths = tuple(float(s) for s in bandwidths)
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise ValueError(f"bandwidths must be positive, got {bandwidths}")
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        if "bandwidths" not in hparams:
            x = np.asarray(dataset.x_train[:500], np.float64).reshape(
                min(500, len(dataset.x_train)), -1
            )
            distances = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
            median = float(np.median(distances[np.triu_indices(len(x), 1)]))
            hparams["bandwidths"] = tuple(round(median * s, 4) for s in cls.BANDWIDTH_SCALES)
        return super().for_dataset(dataset, **hparams)

    def kernel(self, a, b) -> tf.Tensor:
        """k(a_i, b_j) for all pairs, ``[n, m]``."""
        return metrics.gaussian_kernel(a, b, self.bandwidths)

    def mmd2(self, x, y) -> tf.Tensor:
        """Unbiased MMD^2 between two batches under :meth:`kernel`."""
        flat = lambda t: tf.reshape(tf.cast(t, tf.float32), [tf.shape(t)[0], -1])
        return metrics.mmd2(flat(x), flat(y), kernel=self.kernel, unbiased=True)

    def objective(self, x, training=False):
        x_fake = self.generate(self.noise(tf.shape(x)[0]), training=training)
        return {"loss": self.mmd2(x, x_fake)}

    def get_config(self):
        return {**super().get_config(), "bandwidths": self.bandwidths}


_DATASETS = ("8gaussians", "digits-continuous", "digits", "moons", "checkerboard", "spirals")
_TINY = dict(latent_dim=2, hidden_units=(16,), filters=4)

registry.register(
    "gan",
    GAN,
    family="implicit",
    datasets=_DATASETS,
    build=GAN.for_dataset,
    defaults=dict(
        epochs=200,
        batch_size=128,
        learning_rate=1e-3,
        hparams=dict(latent_dim=8, hidden_units=(128, 128)),
    ),
    tiny=_TINY,
    description="generative adversarial network (non-saturating or minimax)",
)
registry.register(
    "fgan",
    FGAN,
    family="implicit",
    datasets=_DATASETS,
    build=FGAN.for_dataset,
    defaults=dict(
        epochs=200,
        batch_size=128,
        learning_rate=1e-3,
        hparams=dict(latent_dim=8, hidden_units=(128, 128), divergence="kl"),
    ),
    tiny=_TINY,
    description="f-GAN: variational f-divergence minimization (KL, reverse KL, Pearson, ...)",
)
registry.register(
    "wgan-gp",
    WGANGP,
    family="implicit",
    datasets=_DATASETS,
    build=WGANGP.for_dataset,
    defaults=dict(
        epochs=100,
        batch_size=128,
        learning_rate=1e-3,
        # lambda = 1 rather than the paper's 10: on the 8 Gaussians (radius 2) the default
        # run then covers 8 of 8 modes; with lambda = 10 it covered 5 in the same 100 epochs.
        hparams=dict(latent_dim=8, hidden_units=(128, 128), gradient_penalty_weight=1.0),
    ),
    tiny={**_TINY, "discriminator_steps": 2},
    description="Wasserstein GAN with gradient penalty",
)
registry.register(
    "mmd",
    MMDNetwork,
    family="implicit",
    datasets=_DATASETS,
    build=MMDNetwork.for_dataset,
    defaults=dict(
        epochs=200,
        batch_size=256,
        learning_rate=1e-3,
        hparams=dict(latent_dim=8, hidden_units=(128, 128)),
    ),
    tiny=_TINY,
    description="generative moment matching network (MMD with Gaussian kernels)",
)
