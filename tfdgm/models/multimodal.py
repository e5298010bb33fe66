"""Multimodal VAEs: one latent z shared by several modalities x_1..x_M (an image, its label).

Generative model p(z) = N(0, I), p(x_1..x_M | z) = prod_m p_m(x_m | z), one decoder and
likelihood head per modality. Each modality m has an encoder, a Gaussian *expert*
q_m(z | x_m) = N(mu_m, diag s_m^2); the experts of the observed modalities S are fused
into the joint posterior q(z | x_S):

- ``fusion="poe"`` (MVAE, Wu & Goodman 2018): the product of experts with a prior expert,
  q(z | x_S) ~ p(z) prod_{m in S} q_m(z | x_m) (:func:`tfdgm.heads.product_of_experts`),
  trained on the ELBO of the observed set plus the ELBOs of each single modality and of
  ``num_subsets`` random subsets (each reconstructing the modalities it sees):

      L_PoE(x) = ELBO_S(x) + sum_{m in S} ELBO_{{m}}(x) + sum_j ELBO_{S_j}(x),
      ELBO_A(x) = E_{q(z|x_A)}[sum_{m in A} log p(x_m|z)] - KL(q(z|x_A) || p(z));

- ``fusion="moe"`` (MMVAE, Shi et al. 2019): the mixture q(z | x_S) = (1/|S|) sum_m
  q_m(z | x_m), trained on the stratified bound (IWAE with k > 1)

      L_MoE(x) = (1/|S|) sum_{m in S} E_{z_1..k ~ q_m}[log (1/k) sum_i
                 p(x_S, z_i) / q(z_i | x_S)];

- ``fusion="mopoe"`` (Sutter et al. 2021): the mixture over the non-empty subsets A of S
  of their products of experts, trained on the mean of their ELBOs, each reconstructing
  every observed modality (a lower bound of the mixture's ELBO, since KL is convex):

      L_MoPoE(x) = (1/|P(S)|) sum_A [E_{q(z|x_A)}[log p(x_S|z)] - KL(q(z|x_A) || p(z))].

``likelihood_weights={name: lambda_m}`` trains on every objective above with
lambda_m log p(x_m | z) in place of log p(x_m | z) (MVAE's weights, e.g. lambda = 50 for
a 10-class label beside a 64-pixel image, so that the shared z keeps the label); the
reported ``elbo``, ``log_prob`` and the bounds stay unweighted (lambda = 1). So does
``kl_warmup=N``, which anneals KL(q || p) (the IWAE's log p(z) - log q) in the training
objectives by min(1, t / N) at update t, like :class:`tfdgm.VAE`'s.

Every bound is <= log p(x_S). ``log_prob`` estimates log p(x_S) by importance sampling
with q(z | x_S) as the proposal, and log p(x_T | x_G) as log p(x_T, x_G) - log p(x_G).

Inputs are dicts ``{name: batch}``; an optional ``"mask"`` ``[batch, M]`` (columns in the
order of ``modalities``, 1 = observed) marks missing modalities per example, whose
values are ignored (any value in the support will do), so semi-supervised data (images
with and without labels) trains through ``fit``.

References:
    Wu & Goodman, Multimodal Generative Models for Scalable Weakly-Supervised Learning,
    NeurIPS 2018.
    Shi, Siddharth, Paige & Torr, Variational Mixture-of-Experts Autoencoders for
    Multi-Modal Deep Generative Models, NeurIPS 2019.
    Sutter, Daunhawer & Vogt, Generalized Multimodal ELBO, ICLR 2021.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import heads, nets, registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.data import EventSpec, check_array
from tfdgm.estimators import chunked_log_mean_exp, log_mean_exp
from tfdgm.measures import multimodal_coherence as coherence
from tfdgm.models.vae import _HEAD_FOR_SUPPORT, kl_warmup_weight

tfd = tfp.distributions

FUSIONS = ("poe", "moe", "mopoe")
MASK = "mask"


@registry.register(
    "multimodal-vae",
    family="latent-variable",
    datasets=("digits-multimodal",),
    training=dict(epochs=100, batch_size=64),  # docs/conditional.md: MoPoE, label weight 50
    hparams=dict(
        latent_dim=8, hidden_units=(256, 128), fusion="mopoe", likelihood_weights={"label": 50.0}
    ),
    tiny=dict(latent_dim=2, hidden_units=(8,), log_prob_samples=20),
    variants={"moe": dict(fusion="moe", num_importance_samples=2), "mopoe": dict(fusion="mopoe")},
    description="multimodal VAE (product / mixture of experts), image + label",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class MultimodalVAE(GenerativeModel):
    """A VAE over a dict of modalities with a shared latent z and a fused posterior.

    Args:
        modalities: ``{name: tfdgm.data.EventSpec}`` (or ``(shape, support[, K])``
            tuples): binary modalities get a Bernoulli head, categorical ones a
            Categorical head (one-hot into their encoder), real ones a diagonal Normal.
        latent_dim: dimension L of z.
        fusion: ``"poe"``, ``"moe"`` or ``"mopoe"`` (see the module docstring).
        hidden_units: widths of each encoder MLP (each decoder mirrors them).
        num_subsets: PoE only: random modality subsets scored per batch beside the full
            set and the single modalities (MVAE's sub-sampling).
        num_importance_samples: k of the MoE's stratified IWAE bound (1: stratified ELBO).
        prior_expert: whether the products of experts include the prior expert p(z).
        log_prob_samples: default number of importance samples of ``log_prob``.
        likelihood_weights: ``{name: lambda_m}``, weights of the modalities'
            log-likelihoods in the training loss (missing names: 1); see the module
            docstring.
        kl_warmup: training steps of the KL warm-up (``tfdgm.models.vae.kl_warmup_weight``).

    >>> m = MultimodalVAE({"a": ((3,), "binary"), "b": ((), "categorical", 4)}, 2, seed=0)
    >>> m.elbo({"a": np.ones((5, 3), "float32"), "b": np.zeros(5, "float32")}).shape
    TensorShape([5])
    """

    density = "estimate"  # importance-sampled log p(x); the training bounds lie below it
    metric_names = ("loss", "elbo")

    def __init__(
        self,
        modalities: dict,
        latent_dim: int = 16,
        fusion: str = "poe",
        hidden_units: Sequence[int] = (128,),
        num_subsets: int = 0,
        num_importance_samples: int = 1,
        prior_expert: bool = True,
        log_prob_samples: int = 1000,
        likelihood_weights: dict | None = None,
        kl_warmup: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        specs = {str(k): EventSpec.of(v) for k, v in dict(modalities).items()}
        if not 1 <= len(specs) <= 6 or MASK in specs:
            raise ValueError(f"give 1 to 6 modalities, none named {MASK!r}; got {list(specs)}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if int(num_importance_samples) < 1 or (int(num_importance_samples) > 1 and fusion != "moe"):
            raise ValueError(
                f"num_importance_samples must be >= 1 (> 1 only with fusion='moe'), "
                f"got {num_importance_samples} with fusion={fusion!r}"
            )
        if int(num_subsets) < 0 or (int(num_subsets) and fusion != "poe") or int(kl_warmup) < 0:
            raise ValueError(
                f"num_subsets and kl_warmup must be >= 0, num_subsets needs fusion='poe'; "
                f"got {num_subsets}, {kl_warmup}"
            )
        weights = {str(k): float(v) for k, v in dict(likelihood_weights or {}).items()}
        if set(weights) - set(specs) or any(not w > 0 for w in weights.values()):
            raise ValueError(
                f"likelihood_weights must map modalities of {list(specs)} to weights > 0, "
                f"got {likelihood_weights}"
            )
        super().__init__(events=specs, seed=seed, **kwargs)
        self.likelihood_weights = weights
        self.kl_warmup = int(kl_warmup)
        # lambda_m in the order of the modalities, (M,)
        self._lambda = np.array([weights.get(k, 1.0) for k in specs], np.float32)
        self.modalities = specs
        self.names = list(specs)
        self.latent_dim = int(latent_dim)
        self.fusion = fusion
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.num_subsets = int(num_subsets)
        self.num_importance_samples = int(num_importance_samples)
        self.prior_expert = bool(prior_expert)
        self.log_prob_samples = int(log_prob_samples)
        self.likelihoods = {k: _HEAD_FOR_SUPPORT[s.support] for k, s in specs.items()}
        self.encoders = [
            nets.MLP(self.hidden_units, 2 * self.latent_dim, name=f"encoder_{k}")
            for k in self.names
        ]
        self.decoders = [
            nets.MLP(
                self.hidden_units[::-1],
                heads.num_params(self.likelihoods[k], s.shape, s.num_categories),
                name=f"decoder_{k}",
            )
            for k, s in specs.items()
        ]
        # the non-empty subsets of the modalities, one 0/1 row each (MoPoE's mixture)
        rows = itertools.product([0.0, 1.0], repeat=len(self.names))
        self.subsets = np.array([r for r in rows if any(r)], np.float32)  # (T, M)
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> MultimodalVAE:
        """A model of ``dataset``'s modalities (a dataset with ``events``)."""
        if not getattr(dataset, "events", None):
            raise ValueError(
                f"MultimodalVAE needs a dataset of named modalities (e.g. digits-multimodal), "
                f"got {dataset.name!r}"
            )
        return cls(modalities=dataset.events, **hparams)

    def _build(self):
        for name, encoder in zip(self.names, self.encoders):
            encoder(self._features(name, tf.zeros([1, *self.modalities[name].shape])))
        for decoder in self.decoders:
            decoder(tf.zeros([1, self.latent_dim]))

    @property
    def num_classes(self) -> int | None:
        """K of a categorical modality named ``label`` (what ``tfdgm sample --label``
        takes), else None."""
        spec = self.modalities.get("label")
        return spec.num_categories if spec is not None and spec.support == "categorical" else None

    # ------------------------------------------------------------------ inputs
    def validate(self, x):
        """The base checks of every modality, plus an optional binary ``"mask"``."""
        if not (isinstance(x, dict) and MASK in x):
            return super().validate(x)
        out = super().validate({k: v for k, v in x.items() if k != MASK})
        name = f"{type(self).__name__}[{MASK!r}]"
        mask = check_array(x[MASK], (len(self.names),), "binary", name=name)
        if len(mask) != len(out[self.names[0]]):
            raise ValueError(f"{name}: {len(mask)} rows for {len(out[self.names[0]])} examples")
        return {**out, MASK: mask}

    def _inputs(self, x, fill: dict | None = None):
        """(every modality as float32 ``[batch, ...]``, mask ``[batch, M]``) from a dict
        holding any of the modalities (absent ones: zeros, masked out) and an optional
        mask; checked when eager."""
        if not isinstance(x, dict) or not set(x) - {MASK} or set(x) - {MASK, *self.names}:
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise ValueError(
                f"MultimodalVAE: expected a dict of modalities {self.names}, got {got}"
            )
        if tf.executing_eagerly():
            x = {
                k: self.modalities[k].check(v, f"MultimodalVAE[{k!r}]")
                if k != MASK
                else check_array(v, (len(self.names),), "binary", name="MultimodalVAE mask")
                for k, v in x.items()
            }
        x = {k: tf.cast(tf.convert_to_tensor(v), tf.float32) for k, v in x.items()}
        batch = tf.shape(next(v for k, v in x.items() if k != MASK))[0]
        present = tf.stack(
            [tf.fill([batch], 1.0 if k in x else 0.0) for k in self.names], 1
        )  # (batch, M)
        mask = present * x[MASK] if MASK in x else present
        full = {
            k: x[k] if k in x else tf.zeros(tf.concat([[batch], s.shape], 0))
            for k, s in self.modalities.items()
        }
        return full, mask

    def _features(self, name, values):
        """Encoder input of one modality: flattened, categorical levels one-hot."""
        spec = self.modalities[name]
        if spec.support == "categorical":
            values = tf.one_hot(tf.cast(values, tf.int32), spec.num_categories)
        return tf.reshape(values, [tf.shape(values)[0], -1])

    # ------------------------------------------------------------------ the model
    def prior(self) -> tfd.Distribution:
        """p(z) = N(0, I_L)."""
        return tfd.Independent(tfd.Normal(tf.zeros([self.latent_dim]), 1.0), 1)

    def experts(self, x) -> tuple[tf.Tensor, tf.Tensor]:
        """Means and standard deviations of every unimodal expert q_m(z | x_m),
        ``[M, batch, L]`` each (masked modalities included; the fusion drops them)."""
        params = [
            heads.normal(enc(self._features(k, x[k])), (self.latent_dim,)).distribution
            for k, enc in zip(self.names, self.encoders)
        ]
        return tf.stack([p.loc for p in params]), tf.stack([p.scale for p in params])

    def _product(self, loc, scale, weights) -> tuple[tf.Tensor, tf.Tensor]:
        """Loc and scale ``[batch, L]`` of p(z) prod_m q_m^{w_m} (the prior expert always
        when ``prior_expert``, else only where no modality is left)."""
        prior = tf.ones_like(weights[:1])
        if not self.prior_expert:
            prior = tf.cast(tf.reduce_sum(weights, 0, keepdims=True) == 0, tf.float32)
        product = heads.product_of_experts(
            tf.concat([tf.zeros_like(loc[:1]), loc], 0),
            tf.concat([tf.ones_like(scale[:1]), scale], 0),
            tf.concat([prior, weights], 0)[..., None],
        )
        return product.loc, product.scale

    def _components(self, loc, scale, mask):
        """The joint posterior q(z | x_S) as a mixture: component locs and scales
        ``[C, batch, L]`` and log mixture weights ``[C, batch]`` (-inf for absent ones).
        PoE: one product; MoE: the experts (the prior when nothing is observed); MoPoE:
        the products of the subsets of the observed modalities."""
        mask_t = tf.transpose(mask)  # (M, batch)
        count = tf.reduce_sum(mask_t, 0)
        if self.fusion == "poe":
            product = self._product(loc, scale, mask_t)
            return product[0][None], product[1][None], tf.zeros_like(count)[None]
        none = tf.cast(count == 0, tf.float32)[None]  # the prior's weight
        if self.fusion == "moe":
            locs = tf.concat([loc, tf.zeros_like(loc[:1])], 0)
            scales = tf.concat([scale, tf.ones_like(scale[:1])], 0)
            weights = tf.concat([mask_t, none], 0)
        else:
            products = [self._product(loc, scale, row[:, None] * mask_t) for row in self.subsets]
            locs = tf.stack([p[0] for p in products] + [tf.zeros_like(loc[0])])
            scales = tf.stack([p[1] for p in products] + [tf.ones_like(scale[0])])
            inside = tf.reduce_sum(self.subsets[:, :, None] * (1.0 - mask_t)[None], 1) == 0
            weights = tf.concat([tf.cast(inside, tf.float32), none], 0)  # (T + 1, batch)
        weights = weights / tf.reduce_sum(weights, 0)
        return locs, scales, tf.math.log(weights)

    def _posterior(self, x, mask) -> tfd.Distribution:
        locs, scales, log_weights = self._components(*self.experts(x), mask)
        if self.fusion == "poe":
            return tfd.Independent(tfd.Normal(locs[0], scales[0]), 1)
        return tfd.MixtureSameFamily(
            tfd.Categorical(logits=tf.transpose(log_weights)),
            tfd.Independent(
                tfd.Normal(tf.transpose(locs, [1, 0, 2]), tf.transpose(scales, [1, 0, 2])), 1
            ),
        )

    def encode(self, given) -> tfd.Distribution:
        """q(z | x_G) from any subset G of the modalities (a dict, optionally masked): a
        diagonal Normal (PoE) or a mixture of them (MoE, MoPoE); the prior if G is empty."""
        return self._posterior(*self._inputs(given))

    def decode(self, z, name: str) -> tfd.Distribution:
        """p(x_name | z) for z ``[..., L]`` (sample dimensions folded into the batch)."""
        z = tf.convert_to_tensor(z)
        spec, index = self.modalities[name], self.names.index(name)
        params = self.decoders[index](tf.reshape(z, [-1, self.latent_dim]))
        params = tf.reshape(params, tf.concat([tf.shape(z)[:-1], tf.shape(params)[1:]], 0))
        return heads.get(self.likelihoods[name], params, spec.shape, spec.num_categories)

    def _log_likelihood(self, x, z, weights) -> tf.Tensor:
        """sum_m w_m log p(x_m | z) for z ``[..., batch, L]``, weights ``[batch, M]``."""
        return tf.reduce_sum(self._log_likelihoods(x, z) * weights, -1)

    def _log_likelihoods(self, x, z) -> tf.Tensor:
        """log p(x_m | z) of every modality, ``[..., batch, M]``, for z ``[..., batch, L]``."""
        return tf.stack([self.decode(z, k).log_prob(x[k]) for k in self.names], -1)

    def _elbos(self, x, q, reconstructed, seed, beta=1.0) -> tuple[tf.Tensor, tf.Tensor]:
        """E_q[sum_m r_m lambda_m log p(x_m|z)] - beta KL(q || p) and the same with lambda =
        beta = 1 (one sample; ``reconstructed`` r ``[batch, M]``), ``[batch]`` each."""
        terms = self._log_likelihoods(x, q.sample(1, seed=seed)[0]) * reconstructed  # (batch, M)
        kl = q.kl_divergence(self.prior())
        return tf.reduce_sum(terms * self._lambda, -1) - beta * kl, tf.reduce_sum(terms, -1) - kl

    def _elbo_of(self, x, loc, scale, subset, reconstructed, seed, beta=1.0) -> tf.Tensor:
        """The weighted ELBO (``_elbos``) of q the product of the experts of ``subset``
        ``[batch, M]``."""
        q = tfd.Independent(tfd.Normal(*self._product(loc, scale, tf.transpose(subset))), 1)
        return self._elbos(x, q, reconstructed, seed, beta)[0]

    def _bound(self, x, mask, seed, beta=1.0) -> tuple[tf.Tensor, tf.Tensor]:
        """The fusion's training objective with the likelihood weights lambda and the KL
        (IWAE: log p(z) - log q) weighted by ``beta``, and its bound on log p(x_S)
        (lambda = beta = 1) from the same draws, ``[batch]`` each."""
        loc, scale = self.experts(x)
        locs, scales, log_weights = self._components(loc, scale, mask)
        if self.fusion != "moe":  # PoE: the product; MoPoE: the mean of the subsets' ELBOs
            num = len(self.subsets) if self.fusion == "mopoe" else 1  # (the prior left out)
            split = tf.random.experimental.stateless_split(seed, num)
            seeds = [seed] if num == 1 else tf.unstack(split)
            qs = [tfd.Independent(tfd.Normal(locs[t], scales[t]), 1) for t in range(num)]
            elbos = [self._elbos(x, q, mask, s, beta) for q, s in zip(qs, seeds)]
            weights = tf.exp(log_weights[:num])  # (num, batch): 1 for PoE
            return tuple(tf.reduce_sum(weights * tf.stack(e), 0) for e in zip(*elbos))
        k = self.num_importance_samples
        z = tfd.Normal(loc, scale).sample(k, seed=seed)  # (k, M, batch, L): z ~ q_m
        log_q = tfd.Independent(tfd.Normal(locs, scales), 1).log_prob(z[:, :, None])
        log_q = tf.reduce_logsumexp(log_q + log_weights, 2)  # (k, M, batch): q(z | x_S)
        terms = self._log_likelihoods(x, z) * mask  # (k, M, batch, M)
        log_ratio = self.prior().log_prob(z) - log_q
        weights = tf.exp(log_weights[:-1])  # (M, batch): 1/|S| on the observed experts
        ones = np.ones_like(self._lambda)
        log_w = [tf.reduce_sum(terms * lam, -1) + b * log_ratio  # (k, M, batch)
                 for lam, b in ((self._lambda, beta), (ones, 1.0))]  # fmt: skip
        return tuple(tf.reduce_sum(weights * log_mean_exp(w, 0), 0) for w in log_w)

    def elbo(self, x, seed=None) -> tf.Tensor:
        """The fusion's bound on log p(x_S) per example, ``[batch]`` (one-sample estimate)."""
        return self._bound(*self._inputs(x), self._seed(seed))[1]

    def example_objective(self, x, training=False):
        """Per example: minus the fusion's training bound (plus MVAE's sub-sampled subsets
        under ``"poe"``) as ``loss``, and the unweighted bound as ``elbo``; their batch
        means (weighted under ``sample_weight``) are the objective."""
        x, mask = self._inputs(x)
        seed, beta = self._seed(), kl_warmup_weight(self, self.kl_warmup, training)
        total, bound = self._bound(x, mask, seed, beta)
        if self.fusion == "poe" and len(self.names) > 1:  # MVAE's sub-sampled subsets
            loc, scale = self.experts(x)
            extra = [tf.one_hot(i, len(self.names)) * mask for i in range(len(self.names))]
            seeds = tf.random.experimental.stateless_split(seed, 1 + len(extra) + self.num_subsets)
            for j in range(self.num_subsets):
                coin = tf.random.stateless_uniform(tf.shape(mask), seeds[-1 - j]) < 0.5
                extra.append(tf.cast(coin, tf.float32) * mask)
            for subset, s in zip(extra, tf.unstack(seeds[1:])):
                total += self._elbo_of(x, loc, scale, subset, subset, s, beta)
        return {"loss": -total, "elbo": bound}

    # ------------------------------------------------------------------ contract
    def log_prob(self, x, given=None, num_samples: int | None = None, seed=None, chunk: int = 100):
        """Importance-sampled log p(x_S) with q(z | x_S) as the proposal, ``[batch]``; with
        ``given`` (another dict of modalities) log p(x | given) = log p(x, given) -
        log p(given), both with the same seed (consistent as the samples grow)."""
        num_samples = int(num_samples or self.log_prob_samples)
        seed = self._seed(seed)
        if given is not None:
            given = dict(given)
            joint = {**given, **{k: v for k, v in x.items() if k != MASK}}
            return self.log_prob(joint, None, num_samples, seed, chunk) - self.log_prob(
                given, None, num_samples, seed, chunk
            )
        x, mask = self._inputs(x)
        q = self._posterior(x, mask)

        def draw(k, seed):  # log p(x_S, z) - log q(z | x_S), (k, batch)
            z = q.sample(k, seed=seed)
            return self._log_likelihood(x, z, mask) + self.prior().log_prob(z) - q.log_prob(z)

        return chunked_log_mean_exp(draw, num_samples, seed, chunk)

    def sample(self, num_samples: int, seed=None) -> dict:
        """Joint samples z ~ p(z), x_m ~ p(x_m | z): ``{name: float32 [n, ...]}``."""
        seeds = tf.random.experimental.stateless_split(self._seed(seed), 1 + len(self.names))
        z = self.prior().sample(num_samples, seed=seeds[0])
        return {
            k: tf.cast(self.decode(z, k).sample(seed=seeds[1 + i]), tf.float32)
            for i, k in enumerate(self.names)
        }

    def generate(self, given, target=None, seed=None, mean: bool = False):
        """Cross-modal generation: z ~ q(z | x_G), x_T ~ p(x_T | z), one per example.

        Args:
            given: dict of the given modalities (any subset, optionally masked).
            target: a modality name (returns its tensor), a list of names or None (all;
                returns a dict).
            seed: sampling seed.
            mean: return the means of p(x_T | z) instead of samples.
        """
        names = self.names if target is None else [target] if isinstance(target, str) else target
        seeds = tf.random.experimental.stateless_split(self._seed(seed), 1 + len(names))
        z = self.encode(given).sample(seed=seeds[0])
        out = {}
        for i, k in enumerate(names):
            p = self.decode(z, k)
            out[k] = tf.cast(p.mean() if mean else p.sample(seed=seeds[1 + i]), tf.float32)
        return out[target] if isinstance(target, str) else out

    def summary_metrics(self, dataset) -> dict:
        """Coherence on digits with ``image`` and ``label`` modalities (see
        :func:`tfdgm.measures.multimodal_coherence`); nothing for other data."""
        if {"image", "label"} - set(self.names) or dataset.image_shape != (8, 8):
            return {}
        return coherence(self, dataset)

    def figures(self, dataset) -> dict:
        """Joint samples and, with a ``label`` modality, a row of images per label."""
        if "image" not in self.names or dataset.image_shape is None:
            return {}
        from tfdgm import plotting

        figures = {}
        joint = self.sample(64, seed=(0, 1))
        figures["samples"] = plotting.image_grid(
            np.asarray(joint["image"]), dataset.image_shape, title="joint samples", vmin=0, vmax=1
        )
        if "label" in self.names:
            labels = np.repeat(np.arange(self.modalities["label"].num_categories), 8)
            images = self.generate({"label": labels.astype("float32")}, "image", seed=(0, 2))
            figures["label_to_image"] = plotting.image_grid(
                np.asarray(images),
                dataset.image_shape,
                title="images from labels, a row per label",
                vmin=0,
                vmax=1,
            )
        return figures

    def export_endpoints(self):
        specs = [
            tf.TensorSpec([None, *s.shape], tf.float32, name=k) for k, s in self.modalities.items()
        ]
        spec_mask = tf.TensorSpec([None, len(self.names)], tf.float32, name=MASK)
        spec_seed = tf.TensorSpec([2], tf.int32, name="seed")
        num_samples = min(self.log_prob_samples, 100)

        def as_dict(args):
            return {**dict(zip(self.names, args[:-1])), MASK: args[-1]}

        def encode(*args):
            q = self.encode(as_dict(args))
            return {"mean": q.mean(), "stddev": q.stddev()}

        return {
            **super().export_endpoints(),
            "log_prob": (
                lambda *args: self.log_prob(as_dict(args), num_samples=num_samples, seed=(0, 0)),
                [*specs, spec_mask],
            ),
            "encode": (encode, [*specs, spec_mask]),
            "generate": (
                lambda *args: self.generate(as_dict(args[:-1]), seed=args[-1]),
                [*specs, spec_mask, spec_seed],
            ),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "modalities": {
                k: {
                    "shape": list(s.shape),
                    "support": s.support,
                    "num_categories": s.num_categories,
                }
                for k, s in self.modalities.items()
            },
            "latent_dim": self.latent_dim,
            "fusion": self.fusion,
            "hidden_units": self.hidden_units,
            "num_subsets": self.num_subsets,
            "num_importance_samples": self.num_importance_samples,
            "prior_expert": self.prior_expert,
            "log_prob_samples": self.log_prob_samples,
            "likelihood_weights": self.likelihood_weights,
            "kl_warmup": self.kl_warmup,
        }
