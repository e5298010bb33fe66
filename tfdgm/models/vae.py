"""Variational auto-encoder (Kingma & Welling, 2014) and its importance-weighted bound.

Generative model p(z) = N(0, I), p(x|z) a likelihood head on a decoder network;
recognition model q(z|x) = N(mu(x), diag sigma(x)^2), optionally pushed through a flow.

    ELBO(x)   = E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))                  (k = 1)
    IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x)        (k > 1)

ELBO <= IWAE_k <= IWAE_{k+1} <= log p(x) (Burda et al., 2016). ``log_prob`` estimates
log p(x) by importance sampling with q as the proposal (IWAE with many samples).

With ``num_classes=K`` it is the conditional VAE (Sohn et al., 2015): q(z|x, y) and
p(x|z, y) see the one-hot label, p(z) stays N(0, I), and every bound is on log p(x | y).
``fit(x, y)`` trains it, ``sample(n, labels=...)`` generates the chosen classes and
``log_prob(x, labels=...)`` estimates log p(x | y).

``kl_warmup=N`` anneals the KL term of the training loss (KL annealing, Bowman et al.
2016; the warm-up of Sonderby et al. 2016): at optimizer step t its weight is
beta * min(1, t / N), so early updates train an auto-encoder; evaluation and the reported
bounds keep the full KL. :func:`kl_warmup_weight` is that schedule, shared with
:class:`tfdgm.MultimodalVAE`.

References:
    Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.
    Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.
    Rezende & Mohamed, Variational Inference with Normalizing Flows, ICML 2015.
    Sohn, Lee & Yan, Learning Structured Output Representation using Deep Conditional
    Generative Models, NeurIPS 2015.
    Bowman et al., Generating Sentences from a Continuous Space, CoNLL 2016.
    Sonderby et al., Ladder Variational Autoencoders, NeurIPS 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import heads, nets, registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.bijectors import FlowLayer
from tfdgm.data import EventSpec
from tfdgm.estimators import chunked_log_mean_exp, log_mean_exp

tfd = tfp.distributions

_HEAD_FOR_SUPPORT = {"binary": "bernoulli", "categorical": "categorical", "real": "normal"}
#: Decoder images per call of ``log_prob`` for the convolutional VAE (chunk x batch): its
#: activations take ~0.33 MB per decoded 28x28 image, so 100 samples of 500 images at once
#: peaked at 18.8 GB; 5,000 keep it near 2.5 GB at the same CPU time.
CONV_DRAWS_PER_CALL = 5000


def kl_warmup_weight(model, steps: int, training: bool):
    """The KL weight of a linear warm-up over ``steps`` updates: min(1, t / steps) at the
    step t of ``model``'s optimizer while training; 1 when evaluating, with no warm-up
    (``steps`` 0) or before ``compile``."""
    optimizer = getattr(model, "optimizer", None)
    if not steps or not training or optimizer is None:
        return 1.0
    return tf.minimum(1.0, tf.cast(optimizer.iterations, tf.float32) / float(steps))


@registry.register(
    "vae",
    family="latent-variable",
    datasets=(
        "digits",
        "digits-categorical",
        "digits-continuous",
        "mnist",
        "fashion-mnist",
        "mnist5k",
        "moons",
        "8gaussians",
    ),
    training=dict(epochs=150, batch_size=64),
    hparams=dict(latent_dim=8, hidden_units=(256, 128)),
    tiny=dict(latent_dim=2, hidden_units=(16,), log_prob_samples=50),
    # conv nets on 28x28 digits; 50 epochs fit the 30-minute budget (docs/mnist5k.md)
    dataset_defaults={"mnist5k": dict(epochs=50, hparams=dict(architecture="conv"))},
    variants={
        "beta4": dict(beta=4.0),
        "iwae": dict(num_importance_samples=3),
        "flow-posterior": dict(posterior_flow="realnvp"),
        "conv": dict(architecture="conv"),
        "categorical": dict(dataset="digits-categorical"),
        "conditional": dict(num_classes=10),
    },
    description="variational auto-encoder (ELBO / IWAE)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(GenerativeModel):
    """Variational auto-encoder trained on the ELBO (or the IWAE bound when k > 1).

    Args:
        event_shape: shape of one data point, e.g. ``(64,)``.
        latent_dim: dimension L of z.
        likelihood: decoder head, ``"bernoulli"``, ``"categorical"`` or ``"normal"``.
        num_categories: K for the categorical head.
        encoder: a Keras layer mapping x to ``2 * latent_dim`` outputs (mu, raw sigma);
            default an MLP (or a convolutional net when ``architecture="conv"``).
        decoder: a Keras layer mapping z to the head's parameters
            (``heads.num_params(likelihood, event_shape, K)`` outputs).
        hidden_units: widths of the default MLP encoder (the decoder mirrors them).
        architecture: ``"mlp"`` or ``"conv"`` (needs ``image_shape``).
        image_shape: ``(H, W)`` or ``(H, W, C)`` of flattened image events, for ``"conv"``.
        beta: weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO.
        num_importance_samples: k of the training bound; 1 trains the ELBO.
        posterior_flow: optional Keras layer with a ``bijector()`` method returning a
            ``tfb.Bijector`` on R^L (e.g. :class:`tfdgm.bijectors.FlowLayer`, or its kind
            ``"realnvp"``/``"maf"`` for a default one): q(z|x) becomes that bijector applied
            to the Normal (the KL is then estimated by Monte Carlo).
        log_prob_samples: default number of importance samples of ``log_prob``.
        num_classes: K for a conditional VAE on labels in [0, K) (MLP networks, vector
            events); None for the unconditional model.
        kl_warmup: number of training steps over which the KL weight of the training
            loss rises linearly from 0 to ``beta`` (:func:`kl_warmup_weight`); 0: none.

    >>> vae = VAE(event_shape=(4,), latent_dim=2, hidden_units=(8,), seed=0)
    >>> vae.elbo(np.ones((3, 4), "float32")).shape
    TensorShape([3])
    """

    density = "estimate"  # importance-sampled log p(x); the ELBO is its lower bound

    metric_names = ("loss", "reconstruction", "kl")

    def __init__(
        self,
        event_shape: Sequence[int],
        latent_dim: int = 16,
        likelihood: str = "bernoulli",
        num_categories: int | None = None,
        encoder: keras.layers.Layer | None = None,
        decoder: keras.layers.Layer | None = None,
        hidden_units: Sequence[int] = (256, 128),
        architecture: str = "mlp",
        image_shape: Sequence[int] | None = None,
        beta: float = 1.0,
        num_importance_samples: int = 1,
        posterior_flow: keras.layers.Layer | None = None,
        log_prob_samples: int = 1000,
        num_classes: int | None = None,
        kl_warmup: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        if likelihood not in heads.HEADS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {heads.HEADS}")
        if architecture not in ("mlp", "conv"):
            raise ValueError(f"architecture must be 'mlp' or 'conv', got {architecture!r}")
        if architecture == "conv" and image_shape is None:
            raise ValueError("architecture='conv' needs image_shape=(H, W) or (H, W, C)")
        if int(num_importance_samples) < 1:
            raise ValueError(f"num_importance_samples must be >= 1, got {num_importance_samples}")
        if int(kl_warmup) < 0:
            raise ValueError(f"kl_warmup must be >= 0 steps, got {kl_warmup}")
        if num_classes is not None and (int(num_classes) < 2 or architecture == "conv"):
            raise ValueError(
                f"num_classes must be >= 2 and needs architecture='mlp', got {num_classes}"
            )
        super().__init__(
            event_shape,
            support=heads.SUPPORT[likelihood],
            num_categories=num_categories,
            seed=seed,
            **kwargs,
        )
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.architecture = architecture
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.beta = float(beta)
        self.num_importance_samples = int(num_importance_samples)
        self.log_prob_samples = int(log_prob_samples)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.kl_warmup = int(kl_warmup)
        if self.num_classes is not None:
            self.accepts_labels = True
            self.label_spec = EventSpec((), "categorical", self.num_classes)
        num_out = heads.num_params(likelihood, self.event_shape, num_categories)
        if architecture == "conv":
            channels = num_out // int(np.prod(self.image_shape[:2]))
            encoder = encoder or nets.ConvEncoder(self.image_shape, 2 * self.latent_dim)
            decoder = decoder or nets.ConvDecoder(self.image_shape, channels)
        self.encoder = nets.deserialize(encoder) or nets.MLP(
            self.hidden_units, 2 * self.latent_dim, name="encoder"
        )
        self.decoder = nets.deserialize(decoder) or nets.MLP(
            self.hidden_units[::-1], num_out, name="decoder"
        )
        if isinstance(posterior_flow, str):  # "realnvp" or "maf": a default flow on R^L
            posterior_flow = FlowLayer(self.latent_dim, kind=posterior_flow, name="posterior_flow")
        self.posterior_flow = nets.deserialize(posterior_flow)
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> VAE:
        """A VAE whose head matches ``dataset.support`` (binary -> Bernoulli, ...)."""
        if dataset.image_shape is not None and hparams.get("architecture") == "conv":
            hparams.setdefault("image_shape", dataset.image_shape)
        return cls(
            event_shape=dataset.event_shape,
            likelihood=_HEAD_FOR_SUPPORT[dataset.support],
            num_categories=dataset.num_categories if dataset.support == "categorical" else None,
            **hparams,
        )

    def _build(self):
        labels = None if self.num_classes is None else tf.zeros([1], tf.int32)
        self.encoder(self._condition(tf.zeros([1, *self.event_shape]), labels))
        self.decoder(self._condition(tf.zeros([1, self.latent_dim]), labels))
        if self.posterior_flow is not None:
            self.posterior_flow.bijector().forward(tf.zeros([1, self.latent_dim]))

    # ------------------------------------------------------------------ labels
    def _condition(self, h, labels):
        """``h`` with the one-hot label appended on its last axis (conditional VAE), the
        label broadcast over ``h``'s leading (sample) dimensions; ``h`` itself otherwise."""
        if self.num_classes is None:
            return h
        if labels is None:
            raise ValueError(f"VAE(num_classes={self.num_classes}) needs labels=")
        onehot = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes, dtype=h.dtype)
        onehot = tf.broadcast_to(onehot, tf.concat([tf.shape(h)[:-1], [self.num_classes]], 0))
        return tf.concat([h, onehot], -1)

    def _labels(self, labels):
        """Labels validated when eager (integers in [0, K)), as int32; None passes."""
        if labels is None or self.num_classes is None:
            return None
        if tf.executing_eagerly():
            labels = self.label_spec.check(np.asarray(labels), "VAE labels")
        return tf.cast(labels, tf.int32)

    # ------------------------------------------------------------------ the model
    def prior(self) -> tfd.Distribution:
        """p(z) = N(0, I_L)."""
        return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0), 1)

    def encode(self, x, labels=None) -> tfd.Distribution:
        """q(z|x) (q(z|x, y) when conditional): diagonal Normal from the encoder, through the
        posterior flow if any."""
        q = heads.normal(self.encoder(self._condition(x, labels)), (self.latent_dim,))
        if self.posterior_flow is not None:
            q = tfd.TransformedDistribution(q, self.posterior_flow.bijector())
        return q

    def posterior_location(self, x, labels=None) -> tf.Tensor:
        """A point summary of q(z|x), ``[batch, L]``: its mean, or with a posterior flow f
        the image f(mu) of the base Normal's mean (the mean through a non-affine flow has
        no closed form)."""
        mean = heads.normal(self.encoder(self._condition(x, labels)), (self.latent_dim,)).mean()
        if self.posterior_flow is None:
            return mean
        return self.posterior_flow.bijector().forward(mean)

    def decode(self, z, labels=None) -> tfd.Distribution:
        """p(x|z) from the decoder and the likelihood head; z is ``[..., L]``.

        Sample dimensions are folded into the batch before the decoder (``[k * batch, L]``),
        so any Keras layer works, ``keras.Sequential`` (which fixes its input rank) included.
        """
        z = self._condition(tf.convert_to_tensor(z), labels)  # (k, batch, L [+ K])
        params = self.decoder(tf.reshape(z, [-1, z.shape[-1]]))  # (k * batch, P)
        params = tf.reshape(params, tf.concat([tf.shape(z)[:-1], tf.shape(params)[1:]], 0))
        return heads.get(self.likelihood, params, self.event_shape, self.num_categories)

    def _log_weights(self, x, num_samples: int, seed, labels=None):
        """log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), z_i ~ q: shape [k, batch]."""
        q = self.encode(x, labels)
        z = q.sample(num_samples, seed=seed)  # (k, batch, L)
        log_likelihood = self.decode(z, labels).log_prob(x)  # (k, batch)
        return log_likelihood, self.prior().log_prob(z) - q.log_prob(z), q

    def elbo(self, x, seed=None, labels=None) -> tf.Tensor:
        """Per-example ELBO E_q[log p(x|z)] - KL(q||p) (one-sample estimate), ``[batch]``."""
        return self._bound(self._prepare(x), 1, seed, labels=self._labels(labels))["elbo"]

    def iwae(self, x, num_samples: int, seed=None, labels=None) -> tf.Tensor:
        """Per-example importance-weighted bound IWAE_k, ``[batch]``."""
        x, labels = self._prepare(x), self._labels(labels)
        return self._bound(x, int(num_samples), seed, labels=labels)["elbo"]

    def _bound(self, x, k: int, seed=None, beta: float = 1.0, labels=None) -> dict:
        log_likelihood, log_ratio, q = self._log_weights(x, k, self._seed(seed), labels)
        if k == 1:
            if self.posterior_flow is None:
                kl = q.kl_divergence(self.prior())  # analytic KL of two Normals
            else:
                kl = -log_ratio[0]  # Monte-Carlo KL through the flow
            reconstruction = log_likelihood[0]
            return {"elbo": reconstruction - beta * kl, "reconstruction": reconstruction, "kl": kl}
        log_w = log_likelihood + beta * log_ratio
        bound = log_mean_exp(log_w)
        return {
            "elbo": bound,
            "reconstruction": tf.reduce_mean(log_likelihood, 0),
            "kl": -tf.reduce_mean(log_ratio, 0),
        }

    def example_objective(self, x, training=False, labels=None):
        beta = self.beta * kl_warmup_weight(self, self.kl_warmup, training)
        values = self._bound(x, self.num_importance_samples, beta=beta, labels=labels)
        return {"loss": -values["elbo"], "reconstruction": values["reconstruction"],
                "kl": values["kl"]}  # fmt: skip

    # ------------------------------------------------------------------ contract
    def log_prob(self, x, num_samples: int | None = None, seed=None, chunk: int = 100, labels=None):
        """Importance-sampled log p(x) ~= log (1/S) sum_s p(x, z_s)/q(z_s|x), ``[batch]``
        (log p(x | y) with ``labels`` y for the conditional VAE).

        ``num_samples`` S defaults to ``log_prob_samples``; samples are drawn ``chunk`` at a
        time to bound memory (for the convolutional VAE, at most
        :data:`CONV_DRAWS_PER_CALL` decoded images per chunk). This is IWAE_S: a lower
        bound in expectation that tightens to log p(x) as S grows.
        """
        x, labels = self._prepare(x), self._labels(labels)
        num_samples = int(num_samples or self.log_prob_samples)
        batch = x.shape[0]
        if self.architecture == "conv" and batch:  # bound the decoder's activations
            chunk = max(1, min(int(chunk), CONV_DRAWS_PER_CALL // int(batch)))

        def draw(k, seed):  # log p(x, z) - log q(z | x), (k, batch)
            log_likelihood, log_ratio, _ = self._log_weights(x, k, seed, labels)
            return log_likelihood + log_ratio

        return chunked_log_mean_exp(draw, num_samples, self._seed(seed), chunk)

    def sample(self, num_samples: int, seed=None, labels=None) -> tf.Tensor:
        """x ~ p(x|z), z ~ p(z): float32 ``[num_samples, *event_shape]``. A conditional VAE
        draws x ~ p(x|z, y) for ``labels`` y (one per sample, or one for all), or for labels
        drawn uniformly when none are given."""
        seed_z, seed_x, seed_y = tf.unstack(
            tf.random.experimental.stateless_split(self._seed(seed), 3)
        )
        z = self.prior().sample(num_samples, seed=seed_z)
        if self.num_classes is not None:
            if labels is None:
                labels = tf.random.stateless_uniform(
                    [num_samples], seed_y, 0, self.num_classes, dtype=tf.int32
                )
            labels = tf.broadcast_to(self._labels(labels), [num_samples])
        return tf.cast(self.decode(z, labels).sample(seed=seed_x), tf.float32)

    def reconstruct(self, x, labels=None) -> tf.Tensor:
        """Mean of p(x | z) at z = posterior_location(x): the reconstruction of ``x``."""
        x, labels = self._prepare(x), self._labels(labels)
        return self.decode(self.posterior_location(x, labels), labels).mean()

    def interpolate(self, x_start, x_end, steps: int = 8) -> tf.Tensor:
        """Decoder means along the straight line between the posterior means of two inputs.

        Returns ``[steps, *event_shape]`` (or ``[batch, steps, ...]`` for batches of pairs).
        """
        z0 = self.posterior_location(self._prepare(np.atleast_2d(x_start)))
        z1 = self.posterior_location(self._prepare(np.atleast_2d(x_end)))
        t = tf.reshape(tf.linspace(0.0, 1.0, steps), [steps, 1, 1])
        z = (1.0 - t) * z0 + t * z1  # (steps, batch, L)
        means = self.decode(z).mean()
        means = tf.experimental.numpy.moveaxis(means, 0, 1)
        return means[0] if np.ndim(x_start) == len(self.event_shape) else means

    def figures(self, dataset) -> dict:
        """The base pictures, plus 32 test images beside their reconstructions."""
        figures = super().figures(dataset) if self.num_classes is None else {}
        if self.num_classes is not None and dataset.image_shape is not None:
            from tfdgm import plotting

            labels = np.repeat(np.arange(self.num_classes), 8)  # a row of 8 per class
            samples = np.asarray(self.sample(len(labels), seed=(0, 1), labels=labels))
            figures["samples"] = plotting.image_grid(
                samples, dataset.image_shape, title="samples, one class a row", vmin=0, vmax=1
            )
        if dataset.image_shape is not None:
            from tfdgm import plotting

            x = dataset.x_test[:32]
            y = None if self.num_classes is None else dataset.y_test[:32]
            pairs = np.stack([x, np.asarray(self.reconstruct(x, y))], 1).reshape(64, -1)
            vmax = (dataset.num_categories - 1) if dataset.support == "categorical" else None
            figures["reconstructions"] = plotting.image_grid(
                pairs,
                dataset.image_shape,
                ncols=16,
                title="test images and reconstructions",
                vmin=0,
                vmax=vmax,
            )
        return figures

    def export_endpoints(self):
        spec_x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        spec_z = tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
        endpoints = super().export_endpoints()
        num_samples = min(self.log_prob_samples, 100)
        if self.num_classes is None:
            endpoints["log_prob"] = (
                lambda x: self.log_prob(x, num_samples=num_samples, seed=(0, 0)),
                [spec_x],
            )
            endpoints["encode"] = (
                lambda x: {
                    "mean": self.posterior_location(x),
                    "stddev": heads.normal(self.encoder(x), (self.latent_dim,)).stddev(),
                },
                [spec_x],
            )
            endpoints["decode"] = (lambda z: self.decode(z).mean(), [spec_z])
            return endpoints
        spec_y = tf.TensorSpec([None], tf.int32, name="labels")
        endpoints["sample"] = (
            lambda n, seed, y: self.sample(n, seed=seed, labels=y),
            [*endpoints["sample"][1], spec_y],
        )
        endpoints["log_prob"] = (
            lambda x, y: self.log_prob(x, num_samples=num_samples, seed=(0, 0), labels=y),
            [spec_x, spec_y],
        )
        endpoints["encode"] = (
            lambda x, y: {
                "mean": self.posterior_location(x, y),
                "stddev": heads.normal(
                    self.encoder(self._condition(x, y)), (self.latent_dim,)
                ).stddev(),
            },
            [spec_x, spec_y],
        )
        endpoints["decode"] = (lambda z, y: self.decode(z, y).mean(), [spec_z, spec_y])
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "latent_dim": self.latent_dim,
            "likelihood": self.likelihood,
            "num_categories": self.num_categories if self.likelihood == "categorical" else None,
            "encoder": nets.serialize(self.encoder),
            "decoder": nets.serialize(self.decoder),
            "hidden_units": self.hidden_units,
            "architecture": self.architecture,
            "image_shape": self.image_shape,
            "beta": self.beta,
            "num_importance_samples": self.num_importance_samples,
            "posterior_flow": nets.serialize(self.posterior_flow),
            "log_prob_samples": self.log_prob_samples,
            "num_classes": self.num_classes,
            "kl_warmup": self.kl_warmup,
        }
