"""Denoising diffusion probabilistic models (Ho et al., 2020) and DDIM sampling (Song et al., 2021).

Data x are mapped to y in [-1, 1] (discrete data with K levels: y = 2l/(K-1) - 1; real data:
y = (x - shift)/scale). With beta_1..beta_T, alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s:

    forward step     q(y_t | y_{t-1}) = N(sqrt(alpha_t) y_{t-1}, beta_t I)
    forward marginal q(y_t | y_0)     = N(sqrt(abar_t) y_0, (1 - abar_t) I)
    posterior        q(y_s | y_t, y_0) = N(c_0 y_0 + c_t y_t, var I), s < t, with
                     abar_{t|s} = abar_t/abar_s,
                     c_0 = sqrt(abar_s)(1 - abar_{t|s})/(1 - abar_t),
                     c_t = sqrt(abar_{t|s})(1 - abar_s)/(1 - abar_t),
                     var = (1 - abar_s)(1 - abar_{t|s})/(1 - abar_t)   (Ho et al. eq. 7 for s = t-1)
    reverse step     p(y_s | y_t) = N(posterior mean at y_0 = yhat_0(y_t, t), sigma^2 I),
                     sigma^2 = var ("small") or 1 - abar_{t|s} ("large").

The network f(y_t, t) predicts eps (``prediction="epsilon"``), y_0 (``"x0"``) or
v = sqrt(abar_t) eps - sqrt(1 - abar_t) y_0 (``"v"``, Salimans & Ho, 2022); training minimizes
the simple loss E_{t ~ U{1..T}, eps} ||f(y_t, t) - target||^2 (mean over dimensions).

The variational bound (in nats, per example) is

    log p(x) >= -KL(q(y_T|y_0) || N(0, I)) - sum_{t=2}^T KL(q(y_{t-1}|y_t, y_0) || p(y_{t-1}|y_t))
                + log p(x | y_1),

with the discretized decoder of Ho et al. section 3.3 for discrete data (the probability of
the bin of width 2/(K-1) around y_0 under N(yhat_0(y_1, 1), sigma_1^2), outer bins open) and a
Gaussian density for real data (minus D log scale for the change of units); sigma_1^2 =
var(2, 1) (Ho et al.'s clipped variance). ``log_prob(x, method="ode")`` is instead the exact
log-density of the probability-flow ODE dy/du = -beta(u)/2 [y + score(y, u)], score =
-eps_hat/sqrt(1 - abar(u)), on continuous time u (log abar interpolated linearly between the
integer steps), by the instantaneous change of variables (Chen et al., 2018; Song et al., 2021b).

DDIM (eta >= 0) steps over a subsequence 0 = tau_0 < ... < tau_S = T:
y_s = sqrt(abar_s) yhat_0 + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z, sigma = eta sqrt(var);
eta = 0 is deterministic (and invertible: :meth:`DDPM.encode`), eta = 1 is the ancestral sampler.
Sampling and the bound use exponential-moving-average (EMA) weights of the network.

With ``num_classes=K`` the model is class-conditional with classifier-free guidance (Ho &
Salimans, 2022): f(y_t, t, c) sees a label c in [0, K] (K the null class), training replaces
the label by the null class with probability ``label_dropout``, and sampling uses

    f_w(y_t, t, y) = (1 + w) f(y_t, t, y) - w f(y_t, t, null),   w = ``guidance_scale``

(w = 0: the conditional model, w = -1: the unconditional one; diffusers' scale is 1 + w). Every
parametrization is affine in f at fixed (y_t, t), so guiding f guides eps_hat. ``fit(x, y)``,
``sample(n, labels=...)``, ``log_prob(x, labels=...)`` (the bound of the guided reverse process).

References:
    Sohl-Dickstein et al., Deep Unsupervised Learning using Nonequilibrium Thermodynamics, 2015.
    Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models, NeurIPS 2020.
    Song, Meng & Ermon, Denoising Diffusion Implicit Models, ICLR 2021.
    Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, ICML 2021.
    Song et al., Score-Based Generative Modeling through Stochastic Differential Equations, 2021b.
    Salimans & Ho, Progressive Distillation for Fast Sampling of Diffusion Models, ICLR 2022.
    Ho & Salimans, Classifier-Free Diffusion Guidance, 2022.
    Grathwohl et al., FFJORD, ICLR 2019 (Hutchinson's trace estimator).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import denoisers, nets, registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.data import EventSpec
from tfdgm.diffusion_sampling import SAMPLERS, DiffusionSampling
from tfdgm.schedules import NoiseSchedule

tfd = tfp.distributions

PREDICTIONS = ("epsilon", "x0", "v")
VARIANCES = ("small", "large")
#: Datasets of ``tfdgm train ddpm`` (the first is the default).
DATASETS = tuple(
    "digits-continuous digits digits-categorical mnist-continuous mnist 8gaussians checkerboard "
    "moons spirals".split()
)


#: Constructor arguments kept as attributes of the same name (``get_config``).
_CONFIG = (
    "event_shape num_timesteps prediction ema_decay support variance clip_denoised shift scale "
    "sampler sample_steps eta architecture image_shape filters channel_mult units num_blocks "
    "embedding_dim num_classes guidance_scale label_dropout"
).split()


class _Functions:
    """Holds a model's graph functions out of sight of Keras/TF tracking (not saved)."""

    def __init__(self):
        self.cache = {}


def _normal(loc, scale, event_rank):
    return tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=event_rank)


@registry.register(
    "ddpm",
    family="diffusion",
    datasets=DATASETS,
    training=dict(epochs=100, batch_size=64),
    hparams=dict(num_timesteps=1000, filters=32, embedding_dim=64),
    dataset_defaults={  # measured (10 draws) and timed in docs/diffusion.md
        "digits-continuous": dict(
            epochs=150,
            hparams=dict(schedule="cosine", prediction="v", sampler="ddim", sample_steps=50),
        )
    },
    # the contract's tiny models: an MLP denoiser (the U-Net's trace costs 10x), the U-Net
    # as one variant of its own
    tiny=dict(
        num_timesteps=20, architecture="mlp", filters=4, units=16, num_blocks=1, embedding_dim=8
    ),
    variants={
        "unet": dict(architecture="unet", channel_mult=(1,)),  # 1 level: every U-Net branch
        # options paired two by two: each still runs once, in 2 fewer contract cases
        "x0-cosine": dict(prediction="x0", schedule="cosine"),
        "v": dict(prediction="v", variance="large"),
        "binary": dict(dataset="digits"),
        "ddim-8gaussians": dict(dataset="8gaussians", sampler="ddim", sample_steps=5),
        "conditional": dict(num_classes=10, guidance_scale=1.0),
    },
    description="denoising diffusion (DDPM/DDIM sampling, variational bound)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class DDPM(DiffusionSampling, GenerativeModel):
    """Denoising diffusion probabilistic model with EMA weights, DDPM/DDIM samplers and its bound.

    Args:
        event_shape: shape of one data point.
        num_timesteps: T.
        schedule: ``"linear"`` or ``"cosine"`` (see :class:`NoiseSchedule`).
        prediction: what the network predicts, ``"epsilon"``, ``"x0"`` or ``"v"``.
        denoiser: a Keras layer ``call(y, t)`` with y ``[batch, prod(event_shape)]`` and t
            ``[batch]`` float timesteps, returning ``[batch, prod(event_shape)]``; default a
            :class:`tfdgm.denoisers.DenoisingUNet` (``architecture="unet"``) or
            :class:`tfdgm.denoisers.DenoisingMLP`.
        ema_decay: EMA decay; update n uses min(ema_decay, (1 + n)/(10 + n)).
        support, num_categories: as :class:`tfdgm.GenerativeModel` (discrete data get the
            discretized decoder).
        variance: reverse-process variance, ``"small"`` (posterior variance) or ``"large"``.
        clip_denoised: clip yhat_0 to [-1, 1] (bounded data).
        shift, scale: real data are y = (x - shift)/scale.
        sampler, sample_steps, eta: defaults of :meth:`sample` (``None`` steps: T).
        architecture: ``"unet"`` (needs ``image_shape``) or ``"mlp"``.
        image_shape, filters, channel_mult: the default U-Net.
        units, num_blocks: the default MLP.
        embedding_dim: width of the default network's time embedding.
        num_classes: K of a class-conditional model with classifier-free guidance (the
            denoiser takes labels in [0, K], K the null class), or None.
        guidance_scale: w, sampling (and the bound) with (1 + w) f(., y) - w f(., null).
        label_dropout: probability that training replaces a label by the null class.

    >>> model = DDPM((2,), num_timesteps=10, units=8, num_blocks=1, embedding_dim=4, seed=0)
    >>> model.sample(3, seed=(1, 2)).shape, model.log_prob(np.zeros((4, 2), "float32")).shape
    (TensorShape([3, 2]), TensorShape([4]))
    """

    density = "bound"

    def __init__(
        self,
        event_shape: Sequence[int],
        num_timesteps: int = 1000,
        schedule: str = "linear",
        prediction: str = "epsilon",
        denoiser: keras.layers.Layer | None = None,
        ema_decay: float = 0.999,
        support: str = "real",
        num_categories: int | None = None,
        variance: str = "small",
        clip_denoised: bool = False,
        shift: float = 0.0,
        scale: float = 1.0,
        sampler: str = "ddpm",
        sample_steps: int | None = None,
        eta: float = 0.0,
        architecture: str = "mlp",
        image_shape: Sequence[int] | None = None,
        filters: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        units: int = 128,
        num_blocks: int = 3,
        embedding_dim: int = 64,
        num_classes: int | None = None,
        guidance_scale: float = 0.0,
        label_dropout: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ):
        for value, choices in zip(
            (prediction, sampler, variance), (PREDICTIONS, SAMPLERS, VARIANCES)
        ):
            if value not in choices:
                raise ValueError(f"expected one of {choices}, got {value!r}")
        if architecture not in ("mlp", "unet") or (architecture == "unet" and image_shape is None):
            raise ValueError("architecture must be 'mlp' or 'unet' (with image_shape)")
        if int(num_timesteps) < 2:
            raise ValueError(f"num_timesteps must be >= 2, got {num_timesteps}")
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not 0.0 <= float(label_dropout) <= 1.0:
            raise ValueError(f"label_dropout must be in [0, 1], got {label_dropout}")
        if support == "binary":
            num_categories = 2
        super().__init__(event_shape, support, num_categories, seed=seed, **kwargs)
        self.schedule = NoiseSchedule(num_timesteps, schedule)
        self.num_timesteps, self.prediction = int(num_timesteps), prediction
        self.ema_decay, self.variance = float(ema_decay), variance
        self.clip_denoised = bool(clip_denoised or support != "real")
        self.shift, self.scale = float(shift), float(scale)
        self.sampler, self.eta = sampler, float(eta)
        self.sample_steps = None if sample_steps is None else int(sample_steps)
        self.architecture = architecture
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)
        self.filters, self.channel_mult = int(filters), tuple(int(m) for m in channel_mult)
        self.units, self.num_blocks = int(units), int(num_blocks)
        self.embedding_dim = int(embedding_dim)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.guidance_scale, self.label_dropout = float(guidance_scale), float(label_dropout)
        if self.num_classes is not None:
            self.accepts_labels = True
            self.label_spec = EventSpec((), "categorical", self.num_classes)
        classes = {"num_classes": self.num_classes, "name": "denoiser"}
        if denoiser is None and architecture == "unet":
            unet = (self.image_shape, self.filters, self.channel_mult, self.embedding_dim)
            denoiser = denoisers.DenoisingUNet(*unet, **classes)
        self.denoiser = nets.deserialize(denoiser) or denoisers.DenoisingMLP(
            self.event_size, self.units, self.num_blocks, self.embedding_dim, **classes
        )
        self._functions = _Functions()
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> DDPM:
        """A DDPM for ``dataset``: a U-Net for images, an MLP for vectors; discrete data with
        its levels, data in [0, 1] scaled to [-1, 1] (clipped), other real data by its std."""
        if dataset.image_shape is not None:
            hparams.setdefault("architecture", "unet")
            hparams.setdefault("image_shape", dataset.image_shape)
        if dataset.support == "real":
            x = np.asarray(dataset.x_train)
            if x.min() >= 0.0 and x.max() <= 1.0:
                hparams = {"shift": 0.5, "scale": 0.5, "clip_denoised": True, **hparams}
            else:
                hparams = {"shift": 0.0, "scale": round(float(x.std()), 3) or 1.0, **hparams}
        return cls(
            event_shape=dataset.event_shape,
            support=dataset.support,
            num_categories=dataset.num_categories if dataset.support != "real" else None,
            **hparams,
        )

    def _build(self):
        self.denoiser(tf.zeros([1, self.event_size]), tf.ones([1]))
        self.ema_weights = [
            self._replicated_state(v.shape, f"ema_{i}")
            for i, v in enumerate(self.denoiser.trainable_variables)
        ]
        for ema, v in zip(self.ema_weights, self.denoiser.trainable_variables):
            ema.assign(v)
        self.ema_updates = self._replicated_state((), "ema_updates")

    def _replicated_state(self, shape, name):
        # non-trainable; every replica holds the same value (the update follows the
        # all-reduced gradient step), so assignments in replica context keep the first one's
        return self.add_weight(
            shape=shape, initializer="zeros", dtype="float32", trainable=False,
            aggregation="only_first_replica", name=name,
        )  # fmt: skip

    # ------------------------------------------------------------------ data <-> diffusion space
    @property
    def _levels(self) -> int | None:
        return None if self.support == "real" else int(self.num_categories)

    def normalize(self, x) -> tf.Tensor:
        """Data x -> diffusion space y (levels l -> 2l/(K-1) - 1; real x -> (x - shift)/scale)."""
        x = tf.cast(x, tf.float32)
        if self._levels:
            return 2.0 * x / (self._levels - 1) - 1.0
        return (x - self.shift) / self.scale

    def denormalize(self, y, quantize: bool = True) -> tf.Tensor:
        """Diffusion space y -> data (discrete: the nearest level, unless ``quantize=False``)."""
        if self._levels:
            levels = (y + 1.0) * (self._levels - 1) / 2.0
            return tf.clip_by_value(tf.round(levels), 0, self._levels - 1) if quantize else levels
        return y * self.scale + self.shift

    # ------------------------------------------------------------------ the processes
    def _log_alpha_bar(self, t):
        """log abar_t for integer (or continuous float) t, scalar or [batch], shaped to
        broadcast over the event dimensions."""
        t = tf.convert_to_tensor(t)
        log_ab = self.schedule.log_alpha_bar_at(t)
        return tf.reshape(log_ab, tf.concat([tf.shape(t), [1] * len(self.event_shape)], 0))

    def _rates(self, t):
        """(abar_t, 1 - abar_t), the second without cancellation near t = 0."""
        log_ab = self._log_alpha_bar(t)
        return tf.exp(log_ab), -tf.math.expm1(log_ab)

    def prior(self) -> tfd.Distribution:
        """p(y_T) = N(0, I)."""
        return _normal(tf.zeros(self.event_shape), 1.0, len(self.event_shape))

    def forward_step(self, y_prev, t) -> tfd.Distribution:
        """q(y_t | y_{t-1}) = N(sqrt(alpha_t) y_{t-1}, beta_t I)."""
        log_alpha = self._log_alpha_bar(t) - self._log_alpha_bar(tf.convert_to_tensor(t) - 1)
        beta = -tf.math.expm1(log_alpha)
        return _normal(tf.exp(log_alpha / 2) * y_prev, tf.sqrt(beta), len(self.event_shape))

    def forward_marginal(self, y0, t) -> tfd.Distribution:
        """q(y_t | y_0) = N(sqrt(abar_t) y_0, (1 - abar_t) I)."""
        ab, one_minus = self._rates(t)
        return _normal(tf.sqrt(ab) * y0, tf.sqrt(one_minus), len(self.event_shape))

    def _posterior_moments(self, t, s):
        ab_t, omab_t = self._rates(t)
        ab_s, omab_s = self._rates(s)
        log_ab_ts = self._log_alpha_bar(t) - self._log_alpha_bar(s)
        omab_ts = -tf.math.expm1(log_ab_ts)  # 1 - abar_{t|s}
        c0 = tf.sqrt(ab_s) * omab_ts / omab_t
        ct = tf.sqrt(1.0 - omab_ts) * omab_s / omab_t
        return c0, ct, omab_s * omab_ts / omab_t, omab_ts

    def posterior(self, y_t, y0, t, s=None) -> tfd.Distribution:
        """q(y_s | y_t, y_0) (s = t - 1 by default), see the module docstring."""
        s = tf.convert_to_tensor(t) - 1 if s is None else s
        c0, ct, var, _ = self._posterior_moments(t, s)
        return _normal(c0 * y0 + ct * y_t, tf.sqrt(var), len(self.event_shape))

    def _network(self, y, t, ema: bool, labels=None):
        """f(y, t) (f(y, t, c) with labels c of a conditional model, None: the null class)."""
        n = tf.shape(y)[0]
        flat = tf.reshape(y, [n, self.event_size])
        times = tf.broadcast_to(tf.cast(t, tf.float32), [n])
        given = {} if self.num_classes is None else {"labels": labels}
        if ema:
            state = [tf.convert_to_tensor(v) for v in self.denoiser.non_trainable_variables]
            ema_values = [tf.convert_to_tensor(v) for v in self.ema_weights]
            out, _ = self.denoiser.stateless_call(ema_values, state, flat, times, **given)
        else:
            out = self.denoiser(flat, times, **given)
        return tf.reshape(tf.cast(out, tf.float32), tf.shape(y))

    def _guided(self, y, t, ema, labels, guidance_scale):
        """(1 + w) f(y, t, labels) - w f(y, t, null), both branches in one batch; f(y, t,
        null) without labels, f(y, t, labels) alone at w = 0."""
        w = self.guidance_scale if guidance_scale is None else guidance_scale
        labels = None if labels is None else tf.cast(labels, tf.int32)
        if labels is None or (isinstance(w, (int, float)) and w == 0):
            return self._network(y, t, ema, labels)
        t = tf.convert_to_tensor(t)
        t = t if t.shape.rank == 0 else tf.concat([t, t], 0)
        null = tf.fill(tf.shape(labels), self.num_classes)
        both = self._network(tf.concat([y, y], 0), t, ema, tf.concat([labels, null], 0))
        conditional, unconditional = tf.split(both, 2)
        return (1.0 + w) * conditional - w * unconditional

    def predict(
        self, y_t, t, ema: bool = True, clip: bool | None = None, labels=None, guidance_scale=None
    ):
        """(yhat_0, eps_hat) from the network at (y_t, t), EMA weights by default; yhat_0 is
        clipped to [-1, 1] (and eps_hat re-derived from it) when ``clip_denoised``. A
        conditional model is guided towards ``labels`` int32 ``[batch]`` (the module
        docstring; w defaults to ``guidance_scale``); without labels it is its unconditional
        branch."""
        f = self._guided(y_t, t, ema, labels, guidance_scale)
        ab, omab = self._rates(t)
        if self.prediction == "epsilon":
            y0, eps = (y_t - tf.sqrt(omab) * f) / tf.sqrt(ab), f
        elif self.prediction == "x0":
            y0, eps = f, (y_t - tf.sqrt(ab) * f) / tf.sqrt(omab)
        else:  # v = sqrt(abar) eps - sqrt(1 - abar) y_0
            y0, eps = tf.sqrt(ab) * y_t - tf.sqrt(omab) * f, tf.sqrt(omab) * y_t + tf.sqrt(ab) * f
        if self.clip_denoised if clip is None else clip:
            y0 = tf.clip_by_value(y0, -1.0, 1.0)
            eps = (y_t - tf.sqrt(ab) * y0) / tf.sqrt(omab)
        return y0, eps

    def _reverse_std(self, t, s):
        _, _, var, omab_ts = self._posterior_moments(t, s)
        return tf.sqrt(var if self.variance == "small" else omab_ts)

    def reverse(self, y_t, t, s=None, labels=None) -> tfd.Distribution:
        """p(y_s | y_t) = N(posterior mean at yhat_0(y_t, t), sigma^2 I), s = t - 1 by default
        (guided towards ``labels`` for a conditional model)."""
        s = tf.convert_to_tensor(t) - 1 if s is None else s
        y0, _ = self.predict(y_t, t, labels=labels)
        return _normal(
            self.posterior(y_t, y0, t, s).mean(), self._reverse_std(t, s), len(self.event_shape)
        )

    def decoder(self, y1, labels=None, guidance_scale=None) -> tfd.Distribution:
        """p(x | y_1): for K levels the discretized Gaussian (Ho et al. section 3.3) over the
        levels 0..K-1, else N(yhat_0, sigma_1^2) in diffusion units; sigma_1^2 = var(2, 1)."""
        y0, _ = self.predict(y1, 1, labels=labels, guidance_scale=guidance_scale)
        sigma = tf.sqrt(self._posterior_moments(2, 1)[2])
        if not self._levels:
            return _normal(y0, sigma, len(self.event_shape))
        half = (self._levels - 1) / 2.0  # level l = (y + 1) * half; bins [l - 1/2, l + 1/2)
        inner = tfd.Normal((y0 + 1.0) * half - 0.5, sigma * half)
        quantized = tfd.QuantizedDistribution(inner, low=0.0, high=float(self._levels - 1))
        return tfd.Independent(quantized, reinterpreted_batch_ndims=len(self.event_shape))

    # ------------------------------------------------------------------ training
    def example_objective(self, x, training=False, labels=None):
        """The simple loss per example, mean_d (f(y_t, t) - target)_d^2 with its own
        t ~ U{1..T} and noise (the batch mean is E_{t, eps} of Ho et al.'s L_simple; with
        ``sample_weight`` the weighted mean); a conditional model's labels are replaced by
        the null class K with probability ``label_dropout`` (classifier-free guidance
        trains both branches at once)."""
        y0, seed = self.normalize(x), self._seed()
        seed_t, seed_eps = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        if self.num_classes is not None:
            labels = self.drop_labels(labels, tf.random.experimental.stateless_fold_in(seed, 2))
        t = tf.random.stateless_uniform(
            [tf.shape(y0)[0]], seed_t, 1, self.num_timesteps + 1, tf.int32
        )
        eps = tf.random.stateless_normal(tf.shape(y0), seed_eps)
        ab, omab = self._rates(t)
        y_t = tf.sqrt(ab) * y0 + tf.sqrt(omab) * eps
        target = {"epsilon": eps, "x0": y0, "v": tf.sqrt(ab) * eps - tf.sqrt(omab) * y0}
        f = self._network(y_t, t, ema=not training, labels=labels)
        error = tf.square(f - target[self.prediction])
        return {"loss": tf.reduce_mean(tf.reshape(error, [tf.shape(error)[0], -1]), axis=-1)}

    def drop_labels(self, labels, seed) -> tf.Tensor:
        """``labels`` with each replaced by the null class K with probability
        ``label_dropout`` (a stateless draw from ``seed``), int32."""
        labels = tf.cast(labels, tf.int32)
        drop = tf.random.stateless_uniform(tf.shape(labels), seed) < self.label_dropout
        return tf.where(drop, self.num_classes, labels)

    def after_update(self):
        """EMA of the network weights: w_ema <- d w_ema + (1 - d) w,
        d = min(ema_decay, (1 + n)/(10 + n)) at update n."""
        n = tf.convert_to_tensor(self.ema_updates)
        decay = tf.minimum(self.ema_decay, (1.0 + n) / (10.0 + n))
        for ema, v in zip(self.ema_weights, self.denoiser.trainable_variables):
            ema.assign(decay * tf.convert_to_tensor(ema) + (1.0 - decay) * tf.convert_to_tensor(v))
        self.ema_updates.assign(n + 1.0)

    # ------------------------------------------------------------------ the bound
    def bound_terms(self, x, seed=None, labels=None, guidance_scale=None) -> dict[str, tf.Tensor]:
        """The terms of -ELBO in nats, each ``[batch]``: ``"prior"`` KL(q(y_T|y_0) || p(y_T)),
        ``"diffusion"`` sum_{t=2}^T KL(q(y_{t-1}|y_t, y_0) || p(y_{t-1}|y_t)) (one y_t per t),
        ``"decoder"`` -log p(x|y_1) (with the change of units for real data). A conditional
        model's reverse process is guided towards ``labels`` (``[batch]``, required)."""
        labels = nets.class_labels(self, labels)
        w = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        bound = self._function(("bound", w), lambda x, seed, y: self._bound_terms(x, seed, y, w))
        return bound(self._prepare(x), self._seed(seed), labels)

    def _function(self, key, fn):
        """``fn`` as a graph function, traced once per model (shapes left free)."""
        cache = self._functions.cache
        if key not in cache:
            cache[key] = tf.function(fn, autograph=False, reduce_retracing=True)
        return cache[key]

    def _bound_terms(self, x, seed, labels, w):
        y0, rank = self.normalize(x), len(self.event_shape)

        def kl_at(t, total):
            y_t = self.forward_marginal(y0, t).sample(
                seed=tf.random.experimental.stateless_fold_in(seed, t)
            )
            y_hat, _ = self.predict(y_t, t, labels=labels, guidance_scale=w)
            q = self.posterior(y_t, y0, t)
            p = _normal(self.posterior(y_t, y_hat, t).mean(), self._reverse_std(t, t - 1), rank)
            return t + 1, total + q.kl_divergence(p)

        total = tf.zeros(tf.shape(y0)[:1])
        _, diffusion = tf.while_loop(lambda t, _: t <= self.num_timesteps, kl_at, (2, total))
        y1 = self.forward_marginal(y0, 1).sample(
            seed=tf.random.experimental.stateless_fold_in(seed, 1)
        )
        p = self.decoder(y1, labels, w)
        if self._levels:
            decoder = -p.log_prob(x)
        else:
            decoder = -p.log_prob(y0) + self.event_size * math.log(self.scale)
        prior = self.forward_marginal(y0, self.num_timesteps).kl_divergence(self.prior())
        return {"prior": prior, "diffusion": diffusion, "decoder": decoder}

    def elbo(self, x, seed=None, labels=None, guidance_scale=None) -> tf.Tensor:
        """The variational bound on log p(x) (log p(x | y) given ``labels``) in nats,
        ``[batch]`` (one y_t per t and example)."""
        return -tf.add_n(list(self.bound_terms(x, seed, labels, guidance_scale).values()))

    def log_prob(self, x, seed=None, method: str = "bound", labels=None, **kwargs) -> tf.Tensor:
        """``method="bound"``: :meth:`elbo` (density kind "bound"); ``"ode"``: the exact
        log-density of the probability-flow ODE (real data, see :meth:`ode_log_prob`);
        log p(x | y) of a conditional model given ``labels``."""
        if method == "ode":
            return self.ode_log_prob(x, seed=seed, labels=labels, **kwargs)
        if method != "bound":
            raise ValueError(f"method must be 'bound' or 'ode', got {method!r}")
        return self.elbo(x, seed, labels, **kwargs)

    def get_config(self):
        return {
            **super().get_config(),
            **{key: getattr(self, key) for key in _CONFIG},
            "schedule": self.schedule.kind,
            "denoiser": nets.serialize(self.denoiser),
            "num_categories": self.num_categories if self._levels else None,
        }
