"""Adversarial models: the f-GAN, the GAN and WGAN-GP (bases in :mod:`tfdgm.adversarial`).

Each trains a generator x = G(z), z ~ N(0, I_L), against a critic; they differ in the
discrepancy between the data distribution P and Q_G that the critic estimates.

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

Each also comes class-conditional (``num_classes=K``, Mirza & Osindero 2014): G(z, y) and
V(x, y) see the one-hot label, fakes are drawn with the real batch's labels, and the
discrepancy is then between the joint distributions of (x, y); see :mod:`tfdgm.adversarial`.

References:
    Goodfellow et al., Generative Adversarial Nets, NeurIPS 2014.
    Nowozin, Cseke & Tomioka, f-GAN: Training Generative Neural Samplers using Variational
    Divergence Minimization, NeurIPS 2016.
    Arjovsky, Chintala & Bottou, Wasserstein GAN, ICML 2017.
    Gulrajani et al., Improved Training of Wasserstein GANs, NeurIPS 2017.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf

from tfdgm import divergences, registry
from tfdgm.adversarial import DATASETS, TINY, AdversarialModel, ImplicitModel
from tfdgm.base import PACKAGE
from tfdgm.models.mmd import MMDNetwork

__all__ = ["FGAN", "GAN", "WGANGP", "AdversarialModel", "ImplicitModel", "MMDNetwork"]

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


@registry.register(
    "fgan",
    family="implicit",
    datasets=DATASETS,
    training=dict(epochs=200, batch_size=128, learning_rate=1e-3),
    hparams=dict(latent_dim=8, hidden_units=(128, 128), divergence="kl"),
    tiny={**TINY, "divergence": "kl"},
    dataset_defaults={"mnist5k-continuous": dict(epochs=40)},  # as the GAN's
    # every other divergence of the table (the tiny base is "kl")
    variants={name: dict(divergence=name) for name in divergences.F_DIVERGENCES if name != "kl"},
    description="f-GAN: variational f-divergence minimization (KL, reverse KL, Pearson, ...)",
)
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
        self.divergence = divergence  # before super().__init__: critic_in_float32 reads it
        super().__init__(event_shape, **kwargs)
        self.generator_loss = loss  # not self.loss: keras.Model uses that name for compile's loss
        self.build()

    @property
    def f(self) -> divergences.FDivergence:
        return divergences.get(self.divergence)

    def critic_in_float32(self) -> bool:
        """True for the divergences whose objective grows exponentially in V (KL, reverse
        KL, squared Hellinger: f*(g_f(v)) = exp(v - 1), E_P[-exp(-v)], expm1(v)). Under
        ``mixed_float16`` their critic's gradient, exp(|V|) / batch, leaves float16's range
        (65504) once |V| > ~17; the loss-scaled critic step is then skipped again and again
        while the generator keeps stepping against the frozen critic, and the bound runs off
        to -inf. Their critic computes in float32 (the generator stays in float16)."""
        return self.divergence in ("kl", "reverse_kl", "squared_hellinger")

    @property
    def real_threshold(self) -> float:
        """f'(1): the optimal critic's value T*(x) = f'(p(x)/q(x)) where p(x) = q(x)."""
        with tf.init_scope():  # a Python float even while tracing a train step
            return float(self.f.f_prime(tf.constant(1.0)))

    def critic(self, x, training: bool = False, labels=None) -> tf.Tensor:
        """T(x) = g_f(V(x)) (V(x, y) given ``labels``), float32 ``[batch]``."""
        return self.f.activation(self.discriminate(x, training, labels))

    def conjugate_of_critic(self, v) -> tf.Tensor:
        """f*(g_f(v)) from raw discriminator outputs v, in a numerically stable closed form."""
        return _CONJUGATE_OF_ACTIVATION[self.divergence](v)

    def variational_bound(self, x_real, x_fake, training: bool = False, labels=None) -> tf.Tensor:
        """F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))], a lower bound on D_f(P || Q)."""
        return self._bound(
            self.discriminate(x_real, training, labels), self.discriminate(x_fake, training, labels)
        )

    def _bound(self, v_real, v_fake):
        return tf.reduce_mean(self.f.activation(v_real)) - tf.reduce_mean(
            self.conjugate_of_critic(v_fake)
        )

    def discriminator_objective(self, x_real, x_fake, training=False, labels=None):
        v_real = self.discriminate(x_real, training, labels)
        v_fake = self.discriminate(x_fake, training, labels)
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

    def generator_objective(self, x_fake, training=False, labels=None):
        v_fake = self.discriminate(x_fake, training, labels)
        if self.generator_loss == "minimax":
            return -tf.reduce_mean(self.conjugate_of_critic(v_fake))
        return -tf.reduce_mean(self.f.activation(v_fake))

    def get_config(self):
        return {**super().get_config(), "divergence": self.divergence, "loss": self.generator_loss}


@registry.register(
    "gan",
    family="implicit",
    datasets=DATASETS,
    training=dict(epochs=200, batch_size=128, learning_rate=1e-3),
    hparams=dict(latent_dim=8, hidden_units=(128, 128)),
    tiny=TINY,
    dataset_defaults={"mnist5k-continuous": dict(epochs=40)},  # docs/mnist5k.md
    variants={"minimax": dict(loss="minimax"), "conditional": dict(num_classes=8)},  # 8 modes
    description="generative adversarial network (non-saturating or minimax)",
)
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

    fixed_arguments = ("divergence",)  # not a hyperparameter of `tfdgm train gan`

    def __init__(self, event_shape: Sequence[int], loss: str = "non_saturating", **kwargs):
        kwargs.pop("divergence", None)
        super().__init__(event_shape, divergence="gan", loss=loss, **kwargs)

    def discriminator_probability(self, x, labels=None) -> tf.Tensor:
        """D(x) = sigmoid(V(x)) (D(x, y) given ``labels``), the probability that x is real,
        ``[batch]``."""
        return tf.sigmoid(self.discriminate(x, labels=labels))

    def value_function(self, x_real, x_fake, labels=None) -> tf.Tensor:
        """V(D, G) = E_P[log D(x)] + E_Q[log(1 - D(x))], Monte Carlo over the two batches."""
        v_real = self.discriminate(x_real, labels=labels)
        v_fake = self.discriminate(x_fake, labels=labels)
        # log D = -softplus(-v), log(1 - D) = -softplus(v)
        return -tf.reduce_mean(tf.math.softplus(-v_real)) - tf.reduce_mean(tf.math.softplus(v_fake))

    def get_config(self):
        config = super().get_config()
        config.pop("divergence")
        return config


@registry.register(
    "wgan-gp",
    family="implicit",
    datasets=DATASETS,
    training=dict(epochs=100, batch_size=128, learning_rate=1e-3),
    # lambda = 1 rather than the paper's 10: on the 8 Gaussians (radius 2) the default
    # run then covers 8 of 8 modes; with lambda = 10 it covered 5 in the same 100 epochs.
    hparams=dict(latent_dim=8, hidden_units=(128, 128), gradient_penalty_weight=1.0),
    tiny={**TINY, "discriminator_steps": 2},
    dataset_defaults={"mnist5k-continuous": dict(epochs=15)},  # docs/mnist5k.md
    variants={"conditional": dict(num_classes=8)},  # the 8 Gaussians' modes
    description="Wasserstein GAN with gradient penalty",
)
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

    def gradient_penalty(
        self, x_real, x_fake, seed=None, training: bool = False, labels=None
    ) -> tf.Tensor:
        """E_xhat[(||grad_x C(xhat)||_2 - 1)^2] on interpolates xhat (see :meth:`interpolate`);
        a conditional critic C(xhat, y) keeps the pair's label (the gradient is in x only)."""
        x_hat = self.interpolate(x_real, x_fake, seed)
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            critic = self.discriminate(x_hat, training, labels)
        grads = tf.reshape(tape.gradient(critic, x_hat), [tf.shape(x_hat)[0], -1])
        # The epsilon keeps the gradient of the norm finite where grad C = 0.
        norm = tf.sqrt(tf.reduce_sum(tf.square(tf.cast(grads, tf.float32)), -1) + 1e-12)
        return tf.reduce_mean(tf.square(norm - 1.0))

    def discriminator_objective(self, x_real, x_fake, training=False, labels=None):
        wasserstein = tf.reduce_mean(self.discriminate(x_real, training, labels)) - tf.reduce_mean(
            self.discriminate(x_fake, training, labels)
        )
        penalty = self.gradient_penalty(x_real, x_fake, training=training, labels=labels)
        return {
            "loss": wasserstein,
            "d_loss": -wasserstein + self.gradient_penalty_weight * penalty,
            "gradient_penalty": penalty,
        }

    def generator_objective(self, x_fake, training=False, labels=None):
        return -tf.reduce_mean(self.discriminate(x_fake, training, labels))

    def get_config(self):
        return {**super().get_config(), "gradient_penalty_weight": self.gradient_penalty_weight}
