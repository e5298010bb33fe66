"""Restricted Boltzmann machines (binary and Gaussian-Bernoulli) and deep belief nets.

An RBM is an undirected bipartite model of visible units v and binary hidden units h:

    Bernoulli visible:  E(v, h) = -v'Wh - b'v - c'h,                       v in {0, 1}^V
    Gaussian visible:   E(v, h) = |v - b|^2 / (2 s^2) - (v/s)'Wh - c'h,   v in R^V

with p(v, h) = exp(-E(v, h)) / Z. Both layers are conditionally independent given the other:

    p(h_j = 1 | v) = sigmoid(c_j + (v/s)'W_j)
    p(v_i = 1 | h) = sigmoid(b_i + W_i h)          (Bernoulli)
    p(v_i | h)     = N(b_i + s W_i h, s^2)         (Gaussian, fixed s = visible_std)

Summing h out gives the free energy F(v) with p(v) = exp(-F(v)) / Z:

    F(v) = -b'v - sum_j softplus(c_j + v'W_j)                          (Bernoulli)
    F(v) = |v - b|^2 / (2 s^2) - sum_j softplus(c_j + (v/s)'W_j)       (Gaussian)

The log-likelihood gradient is E_data[-dF/dtheta] - E_model[-dF/dtheta]. Contrastive
divergence (CD-k) estimates the model term with k steps of block Gibbs sampling started at
the data; persistent CD (PCD) keeps "fantasy particles" running between updates. Both are
implemented as the gradient of mean F(v_data) - mean F(stop_gradient(v_model)).

log Z is exact by enumerating the smaller layer (``EXACT_MAX_UNITS``) or estimated by
annealed importance sampling (AIS) between the RBM with W = 0, c = 0 and the model.

References:
    Smolensky, Information processing in dynamical systems, 1986 ("harmonium").
    Hinton, Training products of experts by minimizing contrastive divergence, 2002.
    Tieleman, Training RBMs using approximations to the likelihood gradient, ICML 2008.
    Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, ICML 2008.
    Hinton, A practical guide to training restricted Boltzmann machines, UTML TR 2010-003.
    Hinton, Osindero & Teh, A fast learning algorithm for deep belief nets, 2006.
    Besag, Statistical analysis of non-lattice data, 1975 (pseudo-likelihood).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel

tfd = tfp.distributions

#: ``log_partition(method="exact")`` enumerates 2^n configurations of the smaller layer
#: (the hidden layer for Gaussian visible units); it refuses for n above this.
EXACT_MAX_UNITS = 20
_CHUNK_BITS = 14  # enumerate 2^14 configurations at a time


class LogPartition(NamedTuple):
    """An exact value or an estimate of log Z.

    ``stddev`` is the standard error of the estimate (delta method, std(w) / (sqrt(M) mean(w))
    for AIS with M chains; 0 when exact); ``lower``/``upper`` bound log(Z_hat -+ 3 se(Z_hat))
    as in Salakhutdinov & Murray (2008); ``method`` is ``"exact"`` or ``"ais"``.
    """

    value: tf.Tensor
    stddev: tf.Tensor
    lower: tf.Tensor
    upper: tf.Tensor
    method: str


def _binary_configurations(num_bits: int, start: int, stop: int) -> tf.Tensor:
    """Rows ``start..stop-1`` of the 2^num_bits binary configurations, float64 ``[n, bits]``."""
    index = tf.range(start, stop, dtype=tf.int64)[:, None]
    bits = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(index, tf.range(num_bits, dtype=tf.int64)), 1
    )
    return tf.cast(bits, tf.float64)


def _split(seed, n: int = 2):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _pooled_std(x) -> float:
    """sqrt(mean_i Var[x_i]): the per-unit standard deviation pooled over units (rounded)."""
    return round(float(np.sqrt(np.mean(np.var(np.asarray(x, np.float64), axis=0)))), 4)


def _in_graph(fn, *args):
    """Run ``fn(*args)`` as a traced graph when called eagerly (long sampling loops run
    ~100x faster than op by op), directly when already inside a graph."""
    if tf.executing_eagerly():
        return tf.function(fn, autograph=False)(*args)
    return fn(*args)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RBM(GenerativeModel):
    """Restricted Boltzmann machine trained by CD-k or persistent CD through Keras ``fit``.

    Args:
        num_visible: V, the number of visible units (the event shape is ``(V,)``).
        num_hidden: H, the number of binary hidden units.
        visible: ``"bernoulli"`` (binary data) or ``"gaussian"`` (real data, fixed
            variance ``visible_std**2``; standardize the data or set ``visible_std``).
        cd_k: Gibbs steps per update (the k of CD-k / PCD-k).
        persistent: persistent CD: the negative phase continues ``num_chains`` fantasy
            particles (a non-trainable variable, saved with the model) instead of
            restarting at the data.
        num_chains: number of persistent chains.
        visible_std: s of the Gaussian visible units (ignored for Bernoulli units).
        sample_steps: Gibbs steps that ``sample`` runs by default (1000).
        ais_chains, ais_betas: default AIS settings of ``log_partition``/``log_prob``.
        weight_std: W is initialized N(0, weight_std^2); biases start at 0.
        seed: seed of the model's random stream.

    The variables are ``kernel`` (W, ``[V, H]``), ``visible_bias`` (b), ``hidden_bias`` (c)
    and, when persistent, ``fantasy_particles`` (``[num_chains, V]``).

    >>> rbm = RBM(3, 2, seed=0)
    >>> bool(abs(float(tf.reduce_sum(tf.exp(rbm.log_prob(np.array(
    ...     [[i >> k & 1 for k in range(3)] for i in range(8)], "float32"))))) - 1) < 1e-5)
    True
    """

    def __init__(
        self,
        num_visible: int,
        num_hidden: int = 64,
        visible: str = "bernoulli",
        cd_k: int = 1,
        persistent: bool = False,
        num_chains: int = 64,
        visible_std: float = 1.0,
        sample_steps: int = 1000,
        ais_chains: int = 200,
        ais_betas: int = 10000,
        weight_std: float = 0.01,
        seed: int | None = None,
        **kwargs,
    ):
        if visible not in ("bernoulli", "gaussian"):
            raise ValueError(f"visible must be 'bernoulli' or 'gaussian', got {visible!r}")
        if int(cd_k) < 1:
            raise ValueError(f"cd_k must be >= 1, got {cd_k}")
        if float(visible_std) <= 0:
            raise ValueError(f"visible_std must be > 0, got {visible_std}")
        super().__init__(
            (int(num_visible),),
            support="binary" if visible == "bernoulli" else "real",
            seed=seed,
            **kwargs,
        )
        self.num_visible = int(num_visible)
        self.num_hidden = int(num_hidden)
        self.visible = visible
        self.cd_k = int(cd_k)
        self.persistent = bool(persistent)
        self.num_chains = int(num_chains)
        self.visible_std = float(visible_std)
        self.sample_steps = int(sample_steps)
        self.ais_chains = int(ais_chains)
        self.ais_betas = int(ais_betas)
        self.weight_std = float(weight_std)
        # The pseudo-likelihood of real-valued units has no closed form: Gaussian RBMs
        # report the reconstruction error only.
        self.metric_names = (
            ("loss", "reconstruction_error", "pseudo_log_likelihood")
            if visible == "bernoulli"
            else ("loss", "reconstruction_error")
        )
        self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]
        object.__setattr__(self, "_log_z_cache", {})  # untracked: see log_partition
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> RBM:
        """An RBM for ``dataset``: Bernoulli visible units for binary data, Gaussian for real
        data (``visible_std`` defaulting to the data's pooled per-pixel standard deviation);
        the visible biases start at the data's log-odds (or mean), as Hinton (2010)
        recommends, and persistent chains start from that base-rate model."""
        if dataset.support == "categorical":
            raise ValueError("RBM models binary or real data, not categorical levels")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        hparams.setdefault("visible", "bernoulli" if dataset.support == "binary" else "gaussian")
        if hparams["visible"] == "gaussian":
            hparams.setdefault("visible_std", _pooled_std(x))
        model = cls(num_visible=x.shape[1], **hparams)
        model.init_visible_bias(x)
        return model

    def _build(self):
        V, H = self.num_visible, self.num_hidden
        self.kernel = self.add_weight(
            shape=(V, H),
            initializer=keras.initializers.RandomNormal(stddev=self.weight_std, seed=self.seed),
            autocast=False,
            name="kernel",
        )
        self.visible_bias = self.add_weight(
            shape=(V,), initializer="zeros", autocast=False, name="visible_bias"
        )
        self.hidden_bias = self.add_weight(
            shape=(H,), initializer="zeros", autocast=False, name="hidden_bias"
        )
        if self.persistent:
            # Under a distribution strategy every replica runs the same chains on its own
            # batch; the first replica's chains are kept.
            self.fantasy_particles = self.add_weight(
                shape=(self.num_chains, V),
                initializer="zeros",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name="fantasy_particles",
            )

    def init_visible_bias(self, x) -> None:
        """Set b to the data's log-odds log(p/(1-p)) (Bernoulli; p clipped to [0.01, 0.99])
        or mean (Gaussian), and restart persistent chains from the model with W = 0."""
        x = np.asarray(x, np.float64)
        if self.visible == "bernoulli":
            p = np.clip(x.mean(0), 0.01, 0.99)
            bias = np.log(p / (1 - p))
        else:
            bias = x.mean(0)
        self.visible_bias.assign(bias.astype("float32"))
        if self.persistent:
            h = tf.zeros([self.num_chains, self.num_hidden])
            self.fantasy_particles.assign(self.visible_conditional(h).sample(seed=self._seed()))

    # ------------------------------------------------------------------ energies
    def _params(self, beta=1.0):
        """(W, b, c) as float32, with W and c scaled by the inverse temperature beta."""
        W = tf.cast(self.kernel, tf.float32)
        b = tf.cast(self.visible_bias, tf.float32)
        c = tf.cast(self.hidden_bias, tf.float32)
        return beta * W, b, beta * c

    def _visible_term(self, v, b):
        """The h-free part of -E: b'v (Bernoulli) or -|v - b|^2 / (2 s^2) (Gaussian)."""
        if self.visible == "bernoulli":
            return tf.linalg.matvec(v, b)
        return -tf.reduce_sum(tf.square(v - b), -1) / (2.0 * self.visible_std**2)

    def _scaled_visible(self, v):
        return v if self.visible == "bernoulli" else v / self.visible_std

    def energy(self, v, h) -> tf.Tensor:
        """E(v, h), ``[batch]``: -v'Wh - b'v - c'h, or |v-b|^2/(2s^2) - (v/s)'Wh - c'h."""
        v, h = tf.cast(v, tf.float32), tf.cast(h, tf.float32)
        W, b, c = self._params()
        vWh = tf.reduce_sum(tf.matmul(self._scaled_visible(v), W) * h, -1)
        return -vWh - self._visible_term(v, b) - tf.linalg.matvec(h, c)

    def free_energy(self, v, beta=1.0) -> tf.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)): -b'v - sum_j softplus(c_j + v'W_j) for Bernoulli
        units, ``[batch]``. With ``beta`` < 1, the free energy of the RBM (beta W, b, beta c)."""
        return self._free_energy_and_pre(v, beta)[0]

    def _free_energy_and_pre(self, v, beta=1.0):
        """(F(v), hidden pre-activations c + (v/s)'W): training reuses the latter."""
        v = tf.cast(v, tf.float32)
        W, b, c = self._params(beta)
        pre = tf.matmul(self._scaled_visible(v), W) + c
        return -self._visible_term(v, b) - tf.reduce_sum(tf.math.softplus(pre), -1), pre

    def hidden_conditional(self, v, beta=1.0) -> tfd.Distribution:
        """p(h | v) = prod_j Bernoulli(sigmoid(c_j + (v/s)'W_j))."""
        W, _, c = self._params(beta)
        logits = tf.matmul(self._scaled_visible(tf.cast(v, tf.float32)), W) + c
        return tfd.Independent(tfd.Bernoulli(logits=logits, dtype=tf.float32), 1)

    def visible_conditional(self, h, beta=1.0) -> tfd.Distribution:
        """p(v | h) = prod_i Bernoulli(sigmoid(b_i + W_i h)) or N(b_i + s W_i h, s^2)."""
        W, b, _ = self._params(beta)
        pre = tf.matmul(tf.cast(h, tf.float32), W, transpose_b=True)
        if self.visible == "bernoulli":
            return tfd.Independent(tfd.Bernoulli(logits=b + pre, dtype=tf.float32), 1)
        s = self.visible_std
        return tfd.Independent(tfd.Normal(b + s * pre, s), 1)

    def hidden_probabilities(self, v) -> tf.Tensor:
        """E[h | v] = sigmoid(c + (v/s)'W), ``[batch, H]``: the RBM's features of v."""
        return self.hidden_conditional(v).mean()

    # ------------------------------------------------------------------ Gibbs sampling
    def gibbs_step(self, v, seed, beta=1.0) -> tf.Tensor:
        """One block Gibbs sweep v -> h ~ p(h|v) -> v' ~ p(v|h)."""
        seed_h, seed_v = _split(seed)
        h = self.hidden_conditional(v, beta).sample(seed=seed_h)
        return self.visible_conditional(h, beta).sample(seed=seed_v)

    def gibbs(self, v, num_steps, seed=None) -> tf.Tensor:
        """Run ``num_steps`` block Gibbs sweeps from ``v``; no gradient flows through it."""
        seed = self._seed(seed)
        v = tf.cast(v, tf.float32)
        if isinstance(num_steps, int) and num_steps <= 4 and not tf.executing_eagerly():
            # CD-k's few steps, unrolled inside the train step (no while-loop overhead)
            for step in range(num_steps):
                v = self.gibbs_step(v, tf.random.experimental.stateless_fold_in(seed, step))
            return tf.stop_gradient(v)

        def chain(v, num_steps, seed):
            def body(step, v):
                fold = tf.random.experimental.stateless_fold_in(seed, step)
                return step + 1, self.gibbs_step(v, fold)

            return tf.while_loop(lambda step, _: step < num_steps, body, (tf.constant(0), v))[1]

        return tf.stop_gradient(_in_graph(chain, v, tf.convert_to_tensor(num_steps), seed))

    def _base_sample(self, num_samples, seed):
        """v from the RBM with W = 0: independent Bernoulli(sigmoid(b)) or N(b, s^2)."""
        return self.visible_conditional(tf.zeros([num_samples, self.num_hidden])).sample(seed=seed)

    def sample(self, num_samples: int, seed=None, num_steps: int | None = None, init=None):
        """Samples after ``num_steps`` (default ``sample_steps`` = 1000) Gibbs sweeps.

        Args:
            num_samples: number of chains run (one sample each).
            seed: int32[2] seed; the model's stream when None.
            num_steps: Gibbs sweeps; default ``self.sample_steps``.
            init: ``"persistent"`` (start from the fantasy particles, cycled to fill
                ``num_samples``; the particles are not changed), ``"fresh"`` (start from the
                base-rate model with W = 0); default persistent for a persistent RBM.

        Returns:
            float32 ``[num_samples, V]`` (binary for Bernoulli units).
        """
        init = init or ("persistent" if self.persistent else "fresh")
        if init not in ("persistent", "fresh"):
            raise ValueError(f"init must be 'persistent' or 'fresh', got {init!r}")
        if init == "persistent" and not self.persistent:
            raise ValueError("init='persistent' needs an RBM built with persistent=True")
        seed_init, seed_chain = _split(self._seed(seed))
        num_steps = self.sample_steps if num_steps is None else num_steps
        if init == "persistent":
            index = tf.range(num_samples) % self.num_chains
            v = tf.gather(tf.convert_to_tensor(self.fantasy_particles), index)
        else:
            v = self._base_sample(num_samples, seed_init)
        return self.gibbs(v, num_steps, seed_chain)

    # ------------------------------------------------------------------ training

    def reconstruction_error(self, v) -> tf.Tensor:
        """|v - E[v | h = E[h|v]]|^2 summed over units, ``[batch]`` (mean-field reconstruction)."""
        return self._reconstruction_error(v, self._free_energy_and_pre(v)[1])

    def _reconstruction_error(self, v, pre):
        v_hat = self.visible_conditional(tf.sigmoid(pre)).mean()
        return tf.reduce_sum(tf.square(tf.cast(v, tf.float32) - v_hat), -1)

    def pseudo_log_likelihood(self, v, seed=None, exact: bool = True) -> tf.Tensor:
        """sum_i log p(v_i | v_-i) = sum_i log sigmoid(F(v with v_i flipped) - F(v)), ``[batch]``.

        ``exact=False`` gives scikit-learn's unbiased one-flip estimate V log sigmoid(...) at
        one random unit per example (what training reports). Bernoulli units only.
        """
        if self.visible != "bernoulli":
            raise ValueError("the pseudo-likelihood is defined here for Bernoulli visible units")
        v = tf.cast(v, tf.float32)
        free, pre = self._free_energy_and_pre(v)
        if not exact:
            return self._one_flip_pseudo_log_likelihood(v, free, pre, self._seed(seed))
        W, b, _ = self._params()
        sign = 1.0 - 2.0 * v  # +1 where v_i = 0 (flip to 1), -1 where v_i = 1
        # F(flip_i v) for every i at once: (batch, V, H) pre-activations
        pre_flip = pre[:, None, :] + sign[:, :, None] * W[None]
        free_flip = (
            free[:, None]
            + tf.reduce_sum(tf.math.softplus(pre[:, None, :]), -1)
            - sign * b
            - tf.reduce_sum(tf.math.softplus(pre_flip), -1)
        )
        return tf.reduce_sum(tf.math.log_sigmoid(free_flip - free[:, None]), -1)

    def _one_flip_pseudo_log_likelihood(self, v, free, pre, seed):
        """V log sigmoid(F(flip_i v) - F(v)) at one uniform random unit i per example."""
        W, b, _ = self._params()
        index = tf.random.stateless_uniform(
            tf.shape(v)[:1], seed, 0, self.num_visible, dtype=tf.int32
        )
        sign = 1.0 - 2.0 * tf.gather(v, index, batch_dims=1)  # (batch,)
        pre_flip = pre + sign[:, None] * tf.gather(W, index)
        free_flip = (
            free
            + tf.reduce_sum(tf.math.softplus(pre), -1)
            - sign * tf.gather(b, index)
            - tf.reduce_sum(tf.math.softplus(pre_flip), -1)
        )
        return self.num_visible * tf.math.log_sigmoid(free_flip - free)

    def contrastive_divergence_loss(self, v_data, v_model) -> tf.Tensor:
        """mean F(v_data) - mean F(v_model): its gradient is minus the CD/PCD estimate of the
        log-likelihood gradient (positive phase on data, negative phase on chain samples)."""
        return self._cd_loss(v_data, v_model)[0]

    def _cd_loss(self, v_data, v_model):
        free_data, pre_data = self._free_energy_and_pre(v_data)
        free_model, _ = self._free_energy_and_pre(tf.stop_gradient(v_model))
        return tf.reduce_mean(free_data) - tf.reduce_mean(free_model), free_data, pre_data

    def _report(self, v, loss, free, pre, seed):
        """Metrics from the positive phase's F(v) and pre-activations (no extra v'W)."""
        free, pre = tf.stop_gradient(free), tf.stop_gradient(pre)
        values = {
            "loss": loss,
            "reconstruction_error": tf.reduce_mean(self._reconstruction_error(v, pre)),
        }
        if self.visible == "bernoulli":
            values["pseudo_log_likelihood"] = tf.reduce_mean(
                self._one_flip_pseudo_log_likelihood(v, free, pre, seed)
            )
        return values

    def objective(self, x, training=False):
        """CD-k loss from the data (chains are never advanced here) and the metrics."""
        seed_chain, seed_pll = _split(self._seed())
        v = tf.cast(x, tf.float32)
        loss, free, pre = self._cd_loss(v, self.gibbs(v, self.cd_k, seed_chain))
        return self._report(v, loss, free, pre, seed_pll)

    def cd_update(self, v, optimizer=None, seed=None) -> dict:
        """One CD-k (or PCD-k) step on the batch ``v``: sample the negative phase, advance the
        persistent chains, apply the gradient of ``contrastive_divergence_loss``."""
        optimizer = optimizer or self.optimizer
        seed_chain, seed_pll = _split(self._seed(seed))
        v = tf.cast(v, tf.float32)
        start = tf.convert_to_tensor(self.fantasy_particles) if self.persistent else v
        v_model = self.gibbs(start, self.cd_k, seed_chain)
        if self.persistent:
            self.fantasy_particles.assign(v_model)
        variables = [self.kernel, self.visible_bias, self.hidden_bias]
        with tf.GradientTape() as tape:
            loss, free, pre = self._cd_loss(v, v_model)
            scaled = self._scaled(loss, optimizer)
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return self._report(v, loss, free, pre, seed_pll)

    def train_step(self, data):
        return self._update_metrics(self.cd_update(self._unpack(data)))

    def compile_default(
        self,
        learning_rate: float = 0.05,
        jit_compile: bool = False,
        steps_per_execution: int = 8,
        **kwargs,
    ):
        """SGD with momentum (Hinton, 2010), the classic RBM rule; what ``tfdgm train`` uses.

        Momentum is 0.9 for CD and 0.5 for persistent CD: with 0.9 the weights move faster
        than the fantasy particles can follow and PCD's test log-likelihood fell on digits
        (see docs/energy.md). The loss is a batch mean, so ``learning_rate`` multiplies the
        example-averaged gradient, as in scikit-learn's ``BernoulliRBM``. Keras runs
        ``steps_per_execution`` CD steps per call (8 was faster than 1 on CPU for a
        784-256 RBM). XLA (``jit_compile``) works but was slower on CPU.
        """
        self.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.5 if self.persistent else 0.9),
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            **kwargs,
        )

    # ------------------------------------------------------------------ partition function
    @property
    def log_prob_method(self) -> str:
        """``"exact"`` when the smaller enumerable layer has at most ``EXACT_MAX_UNITS`` units,
        else ``"ais"``: which estimate of log Z ``log_prob`` uses by default."""
        return "exact" if self._enumerated_units() <= EXACT_MAX_UNITS else "ais"

    def _enumerated_units(self) -> int:
        if self.visible == "gaussian":
            return self.num_hidden
        return min(self.num_visible, self.num_hidden)

    def log_partition(
        self,
        method: str = "exact",
        num_chains: int | None = None,
        num_betas: int | None = None,
        seed=None,
    ) -> LogPartition:
        """log Z = log sum_{v,h} exp(-E(v, h)) (an integral over v for Gaussian units).

        Args:
            method: ``"exact"``: enumerate the 2^n states of the smaller layer (the hidden
                layer for Gaussian units) in float64; raises ValueError for
                n > ``EXACT_MAX_UNITS`` (20). ``"ais"``: annealed importance sampling.
            num_chains, num_betas: AIS chains M and intermediate temperatures K (defaults
                ``ais_chains``, ``ais_betas``).
            seed: AIS seed (int32[2]); the model's stream when None.

        Returns:
            A :class:`LogPartition` (value, stddev, lower, upper, method).

        Called eagerly, the result is a deterministic function of the weights, the method,
        its settings and an explicit seed, and is cached: scoring a test set in batches
        computes log Z once.
        """
        if method not in ("exact", "ais"):
            raise ValueError(f"method must be 'exact' or 'ais', got {method!r}")
        num_chains, num_betas = int(num_chains or self.ais_chains), int(num_betas or self.ais_betas)
        key = None
        if tf.executing_eagerly() and (method == "exact" or seed is not None):
            seed_key = () if method == "exact" else tuple(np.asarray(self._seed(seed)).tolist())
            key = (method, num_chains, num_betas, seed_key, self._weights_digest())
            if key in self._log_z_cache:
                return self._log_z_cache[key]
        if method == "exact":
            value = tf.cast(self._exact_log_partition(), tf.float32)
            zero = tf.zeros([])
            result = LogPartition(value, zero, value, value, "exact")
        else:
            result = self._ais(num_chains, num_betas, seed)
        if key is not None:
            self._log_z_cache.clear()  # keep the latest only
            self._log_z_cache[key] = result
        return result

    def _weights_digest(self) -> str:
        digest = hashlib.sha1()
        for variable in (self.kernel, self.visible_bias, self.hidden_bias):
            digest.update(np.asarray(variable).tobytes())
        return digest.hexdigest()

    def _exact_log_partition(self) -> tf.Tensor:
        n = self._enumerated_units()
        if n > EXACT_MAX_UNITS:
            raise ValueError(
                f"exact log Z enumerates 2^{n} states of the smaller layer; the limit is "
                f"2^{EXACT_MAX_UNITS} (EXACT_MAX_UNITS). Use log_partition(method='ais')."
            )
        W, b, c = (tf.cast(p, tf.float64) for p in self._params())
        enumerate_hidden = self.visible == "gaussian" or self.num_hidden <= self.num_visible
        s = self.visible_std
        parts = []
        for start in range(0, 2**n, 2**_CHUNK_BITS):
            states = _binary_configurations(n, start, min(2**n, start + 2**_CHUNK_BITS))
            if enumerate_hidden and self.visible == "bernoulli":
                # log sum_v exp(-E) = c'h + sum_i softplus(b_i + W_i h)
                wh = tf.matmul(states, W, transpose_b=True)
                log_terms = tf.linalg.matvec(states, c) + tf.reduce_sum(
                    tf.math.softplus(b + wh), -1
                )
            elif enumerate_hidden:
                # the Gaussian integral over v: c'h + b'Wh/s + |Wh|^2/2 (+ V/2 log 2 pi s^2)
                wh = tf.matmul(states, W, transpose_b=True)
                log_terms = (
                    tf.linalg.matvec(states, c)
                    + tf.linalg.matvec(wh, b) / s
                    + 0.5 * tf.reduce_sum(tf.square(wh), -1)
                )
            else:
                log_terms = tf.linalg.matvec(states, b) + tf.reduce_sum(
                    tf.math.softplus(tf.matmul(states, W) + c), -1
                )
            parts.append(tf.reduce_logsumexp(log_terms))
        log_z = tf.reduce_logsumexp(tf.stack(parts))
        if self.visible == "gaussian":
            log_z += 0.5 * self.num_visible * math.log(2 * math.pi * s**2)
        return log_z

    def _base_log_partition(self) -> tf.Tensor:
        """log Z of the RBM with W = 0, c = 0: sum_i softplus(b_i) + H log 2 (Bernoulli) or
        V/2 log(2 pi s^2) + H log 2 (Gaussian)."""
        _, b, _ = self._params()
        hidden = self.num_hidden * math.log(2.0)
        if self.visible == "bernoulli":
            return tf.reduce_sum(tf.math.softplus(b)) + hidden
        return 0.5 * self.num_visible * math.log(2 * math.pi * self.visible_std**2) + hidden

    @staticmethod
    def ais_schedule(num_betas: int) -> tf.Tensor:
        """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, denser near 1: the
        proportions of Salakhutdinov & Murray (500 in [0, .5), 4000 in [.5, .9),
        10000 in [.9, 1])."""
        k1 = max(1, round(num_betas * 500 / 14500))
        k2 = max(1, round(num_betas * 4000 / 14500))
        k3 = max(1, num_betas - k1 - k2)
        betas = np.concatenate(
            [
                np.linspace(0.0, 0.5, k1, endpoint=False),
                np.linspace(0.5, 0.9, k2, endpoint=False),
                np.linspace(0.9, 1.0, k3 + 1),
            ]
        )
        return tf.constant(betas, tf.float32)

    def _ais(self, num_chains: int, num_betas: int, seed) -> LogPartition:
        """AIS from p_0 = RBM(W = 0, b, c = 0) to p_1 = the model through the RBMs
        (beta W, b, beta c). log w = sum_k [F_{beta_{k-1}}(v_k) - F_{beta_k}(v_k)], v_k from
        Gibbs transitions at beta_{k-1}; Z_1 / Z_0 ~ mean(w)."""
        seed = self._seed(seed)
        seed_init, seed_chain = _split(seed)
        betas = self.ais_schedule(num_betas)
        num_steps = int(betas.shape[0]) - 1
        W, b, c = self._params()
        v0 = self._base_sample(num_chains, seed_init)

        def pre_activation(v):
            return tf.matmul(self._scaled_visible(v), W) + c

        def body(k, v, log_w):
            # The b-terms of F cancel between temperatures: only softplus(beta pre) remains.
            pre = pre_activation(v)
            log_w += tf.reduce_sum(
                tf.math.softplus(betas[k + 1] * pre) - tf.math.softplus(betas[k] * pre), -1
            )
            v = self.gibbs_step(
                v, tf.random.experimental.stateless_fold_in(seed_chain, k), betas[k + 1]
            )
            return k + 1, v, log_w

        def anneal(v0):
            return tf.while_loop(
                lambda k, v, log_w: k < num_steps,
                body,
                (tf.constant(0), v0, tf.zeros([num_chains])),
            )[2]

        log_w = _in_graph(anneal, v0)
        log_w = tf.cast(log_w, tf.float64)
        log_mean = tf.reduce_logsumexp(log_w) - math.log(num_chains)
        ratio = tf.exp(log_w - log_mean)  # w / mean(w)
        rel_se = tf.math.reduce_std(ratio) / math.sqrt(num_chains)  # se(Z_hat) / Z_hat
        value = tf.cast(self._base_log_partition(), tf.float64) + log_mean
        lower = value + tf.math.log(tf.maximum(1.0 - 3.0 * rel_se, 1e-30))
        upper = value + tf.math.log1p(3.0 * rel_se)
        f32 = lambda t: tf.cast(t, tf.float32)
        return LogPartition(f32(value), f32(rel_se), f32(lower), f32(upper), "ais")

    # ------------------------------------------------------------------ contract
    def log_prob(self, x, method: str | None = None, log_partition=None, seed=None):
        """log p(v) = -F(v) - log Z, float32 ``[batch]``.

        Args:
            x: a batch ``[batch, V]``.
            method: ``"exact"`` or ``"ais"``; default ``self.log_prob_method`` (exact when
                the smaller layer has <= ``EXACT_MAX_UNITS`` units, AIS otherwise).
            log_partition: a precomputed log Z (a float or a :class:`LogPartition`) to reuse.
            seed: AIS seed; default (0, 0), so that log_prob is a deterministic function of
                the weights (batches scored separately share one log Z estimate).
        """
        v = self._prepare(x)
        if log_partition is None:
            seed = (0, 0) if seed is None else seed
            log_partition = self.log_partition(method or self.log_prob_method, seed=seed)
        if isinstance(log_partition, LogPartition):
            log_partition = log_partition.value
        return -self.free_energy(v) - tf.cast(log_partition, tf.float32)

    def log_likelihood(self, x, method: str | None = None, seed=None) -> dict:
        """Mean log p(x) over a batch with the log Z it used and which method gave it
        (AIS seed (0, 0) by default, as in :meth:`log_prob`)."""
        seed = (0, 0) if seed is None else seed
        log_z = self.log_partition(method or self.log_prob_method, seed=seed)
        log_p = self.log_prob(x, log_partition=log_z)
        return {
            "log_likelihood": float(tf.reduce_mean(log_p)),
            "method": log_z.method,
            "log_partition": float(log_z.value),
            "log_partition_stddev": float(log_z.stddev),
        }

    def summary_metrics(self, dataset) -> dict:
        """Test log-likelihood (exact or AIS, which) and test pseudo-log-likelihood."""
        x = dataset.x_test.reshape(len(dataset.x_test), -1)
        report = self.log_likelihood(x, seed=(0, 0))
        metrics = {
            "test_log_likelihood": report["log_likelihood"],
            "log_likelihood_method": report["method"],
            "log_partition": report["log_partition"],
            "log_partition_stddev": report["log_partition_stddev"],
        }
        if self.visible == "bernoulli":
            metrics["test_pseudo_log_likelihood"] = float(
                tf.reduce_mean(self.pseudo_log_likelihood(x))
            )
        return metrics

    def figures(self, dataset) -> dict:
        """``{"filters": image grid of the columns of W}`` (at most 64) for image data."""
        if dataset.image_shape is None:
            return {}
        from tfdgm import plotting

        filters = np.asarray(self.kernel).T[:64]
        return {"filters": plotting.image_grid(filters, dataset.image_shape, title="RBM filters")}

    def export_endpoints(self):
        """sample (explicit seed), log_prob, free_energy and hidden_probabilities.

        The log_prob endpoint is -F(v) - log Z with log Z computed once, when the endpoints
        are made (exact, or AIS with seed (0, 0)), and stored in the graph as a constant.
        """
        spec = tf.TensorSpec([None, self.num_visible], tf.float32, name="x")
        endpoints = super().export_endpoints()
        log_z = float(self.log_partition(self.log_prob_method, seed=(0, 0)).value)
        endpoints["log_prob"] = (lambda x: self.log_prob(x, log_partition=log_z), [spec])
        endpoints["free_energy"] = (lambda x: self.free_energy(x), [spec])
        endpoints["hidden_probabilities"] = (lambda x: self.hidden_probabilities(x), [spec])
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "num_visible": self.num_visible,
            "num_hidden": self.num_hidden,
            "visible": self.visible,
            "cd_k": self.cd_k,
            "persistent": self.persistent,
            "num_chains": self.num_chains,
            "visible_std": self.visible_std,
            "sample_steps": self.sample_steps,
            "ais_chains": self.ais_chains,
            "ais_betas": self.ais_betas,
            "weight_std": self.weight_std,
        }


class _GreedySchedule(keras.callbacks.Callback):
    """Trains layer floor(e L / E) of an L-layer DBN in epoch e of E (greedy, bottom-up)."""

    def __init__(self, dbn, epochs: int, initial_epoch: int, verbose):
        super().__init__()
        self.dbn, self.epochs, self.initial_epoch, self.verbose = (
            dbn,
            epochs,
            initial_epoch,
            verbose,
        )

    def layer_for(self, epoch: int) -> int:
        num_layers = len(self.dbn.rbms)
        span = max(1, self.epochs - self.initial_epoch)
        return min(num_layers - 1, (epoch - self.initial_epoch) * num_layers // span)

    def on_epoch_begin(self, epoch, logs=None):
        layer = self.layer_for(epoch)
        if layer == self.dbn.active_layer and self.dbn.train_function is not None:
            return
        self.dbn.active_layer = layer
        self.dbn.make_train_function(force=True)  # retrace train_step for the new layer
        self.dbn.test_function = None
        if self.verbose:
            sizes = self.dbn.layer_sizes
            print(
                f"DBN: training layer {layer + 1}/{len(self.dbn.rbms)} "
                f"(RBM {sizes[layer]} -> {sizes[layer + 1]}) from epoch {epoch + 1}"
            )


@keras.saving.register_keras_serializable(package=PACKAGE)
class DBN(GenerativeModel):
    """Deep belief net: a stack of RBMs trained greedily, layer by layer (Hinton et al., 2006).

    Layers h_0 = v, h_1, ..., h_L with sizes ``layer_sizes``. RBM l models h_l with hidden
    layer h_{l+1}; it is trained (CD-k / PCD-k) on samples h_l ~ q(h_l | h_{l-1}) passed up
    through the frozen RBMs below. The generative model is the top RBM over (h_{L-1}, h_L)
    with directed sigmoid layers below it:

        p(h_0, ..., h_{L-1}) = p_top(h_{L-1}) prod_{l<L-1} p(h_l | h_{l+1}),

    where p(h_l | h_{l+1}) is RBM l's p(v | h) and p_top(h) = exp(-F_top(h)) / Z_top.

    Training goes through Keras ``fit``: of E epochs, epoch e trains layer floor(e L / E)
    (the ``layer`` metric says which; a line is printed when the layer changes);
    ``pretrain(x, epochs_per_layer)`` is ``fit`` with E = L * epochs_per_layer.
    ``sample`` runs Gibbs in the top RBM then one directed pass down; ``log_prob``
    importance-samples the hidden layers with the recognition pass q as the proposal.

    Args:
        layer_sizes: ``[V, H_1, ..., H_L]``, visible first (L >= 1 RBMs).
        visible: visible units of the bottom RBM, ``"bernoulli"`` or ``"gaussian"``.
        cd_k, persistent, num_chains, visible_std, sample_steps: as for :class:`RBM`
            (shared by every layer).
        log_prob_samples: default number of importance samples of ``log_prob``.
        seed: seed of the model's random stream (layer l is seeded ``seed + l + 1``).

    References:
        Hinton, Osindero & Teh, A fast learning algorithm for deep belief nets, 2006.
        Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, 2008.
    """

    metric_names = ("loss", "reconstruction_error", "layer")

    def __init__(
        self,
        layer_sizes: Sequence[int],
        visible: str = "bernoulli",
        cd_k: int = 1,
        persistent: bool = False,
        num_chains: int = 64,
        visible_std: float = 1.0,
        sample_steps: int = 1000,
        log_prob_samples: int = 100,
        seed: int | None = None,
        **kwargs,
    ):
        layer_sizes = [int(n) for n in layer_sizes]
        if len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes needs a visible and >= 1 hidden layer, got {layer_sizes}"
            )
        super().__init__(
            (layer_sizes[0],),
            support="binary" if visible == "bernoulli" else "real",
            seed=seed,
            **kwargs,
        )
        self.layer_sizes = layer_sizes
        self.visible = visible
        self.cd_k = int(cd_k)
        self.persistent = bool(persistent)
        self.num_chains = int(num_chains)
        self.visible_std = float(visible_std)
        self.sample_steps = int(sample_steps)
        self.log_prob_samples = int(log_prob_samples)
        self.rbms = [
            RBM(
                n_in,
                n_out,
                visible=visible if layer == 0 else "bernoulli",
                cd_k=cd_k,
                persistent=persistent,
                num_chains=num_chains,
                visible_std=visible_std,
                sample_steps=sample_steps,
                seed=None if seed is None else seed + layer + 1,
                name=f"rbm_{layer}",
            )
            for layer, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]))
        ]
        self.active_layer = 0
        self.build()

    @classmethod
    def for_dataset(cls, dataset, hidden_sizes: Sequence[int] = (64, 32), **hparams) -> DBN:
        """A DBN ``[V, *hidden_sizes]`` for ``dataset`` (Gaussian bottom units for real data);
        the bottom visible biases start at the data's log-odds (or mean)."""
        if dataset.support == "categorical":
            raise ValueError("DBN models binary or real data, not categorical levels")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        hparams.setdefault("visible", "bernoulli" if dataset.support == "binary" else "gaussian")
        if hparams["visible"] == "gaussian":
            hparams.setdefault("visible_std", _pooled_std(x))
        model = cls(layer_sizes=[x.shape[1], *hidden_sizes], **hparams)
        model.rbms[0].init_visible_bias(x)
        return model

    def _build(self):
        pass  # every RBM built its variables in its own __init__

    @property
    def top(self) -> RBM:
        return self.rbms[-1]

    # ------------------------------------------------------------------ training
    def propagate_up(self, x, num_layers: int, seed=None) -> tf.Tensor:
        """h_{num_layers} sampled by passing x up through the first ``num_layers`` RBMs."""
        h = tf.cast(x, tf.float32)
        seeds = _split(self._seed(seed), max(2, num_layers))
        for layer in range(num_layers):
            h = self.rbms[layer].hidden_conditional(h).sample(seed=seeds[layer])
        return tf.stop_gradient(h)

    def train_step(self, data):
        layer = self.active_layer
        seed_up, seed_cd = _split(self._seed())
        h = self.propagate_up(self._unpack(data), layer, seed_up)
        values = self.rbms[layer].cd_update(h, self.optimizer, seed_cd)
        return self._update_metrics(self._with_layer(values, layer))

    def objective(self, x, training=False):
        layer = self.active_layer
        h = self.propagate_up(x, layer)
        return self._with_layer(self.rbms[layer].objective(h), layer)

    @staticmethod
    def _with_layer(values, layer):
        return {
            "loss": values["loss"],
            "reconstruction_error": values["reconstruction_error"],
            "layer": tf.constant(float(layer)),
        }

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        initial_epoch=0,
        **kwargs,
    ):
        """Keras ``fit`` with the greedy schedule: epoch e of ``epochs`` trains layer
        floor(e L / epochs), so give at least L epochs."""
        schedule = _GreedySchedule(self, epochs, initial_epoch, verbose)
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            epochs=epochs,
            verbose=verbose,
            callbacks=[*(callbacks or []), schedule],
            initial_epoch=initial_epoch,
            **kwargs,
        )

    def pretrain(self, x, epochs_per_layer: int = 10, **kwargs):
        """Greedy layer-wise training, ``epochs_per_layer`` epochs of Keras ``fit`` per RBM."""
        return self.fit(x, epochs=epochs_per_layer * len(self.rbms), **kwargs)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Each step updates one layer's variables: build the optimizer for all of them now
        # (Keras would build it lazily for the first layer's variables only).
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # Keras skips models that override compile() unless they restore it themselves.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def compile_default(
        self,
        learning_rate: float = 0.05,
        jit_compile: bool = False,
        steps_per_execution: int = 8,
        **kwargs,
    ):
        """SGD with momentum 0.9 (0.5 when persistent) and 8 steps per execution, as
        :meth:`RBM.compile_default`; one optimizer, each step updates only the layer being
        trained."""
        self.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.5 if self.persistent else 0.9),
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
            **kwargs,
        )

    # ------------------------------------------------------------------ contract
    def sample(self, num_samples: int, seed=None, num_steps: int | None = None) -> tf.Tensor:
        """Gibbs in the top RBM (``num_steps``, default ``sample_steps``), then
        h_l ~ p(h_l | h_{l+1}) down to the visible layer; float32 ``[num_samples, V]``."""
        seeds = _split(self._seed(seed), len(self.rbms) + 1)
        h = self.top.sample(num_samples, seed=seeds[-1], num_steps=num_steps)
        for layer in reversed(range(len(self.rbms) - 1)):
            h = self.rbms[layer].visible_conditional(h).sample(seed=seeds[layer])
        return h

    def log_prob(
        self, x, num_samples: int | None = None, seed=None, chunk: int = 100, log_partition=None
    ):
        """Importance-sampled log p(v) ~= log (1/S) sum_s p(v, h^s) / q(h^s | v), ``[batch]``.

        q(h_1..h_{L-1} | v) = prod_l RBM_l's p(h_{l+1} | h_l) (the recognition pass);
        p(v, h) = p_top(h_{L-1}) prod_l p(h_l | h_{l+1}), with the top RBM's log Z exact
        when it can be, else AIS with seed (0, 0) (or ``log_partition`` if given). An
        unbiased estimate of p(v) (so a stochastic lower bound on log p(v)) for S =
        ``num_samples`` (default ``log_prob_samples``). With a single RBM this is the RBM's
        own log p(v).
        """
        if log_partition is None:
            log_partition = self.top.log_partition(self.top.log_prob_method, seed=(0, 0)).value
        if len(self.rbms) == 1:
            return self.top.log_prob(x, log_partition=log_partition)
        v = self._prepare(x)
        num_samples = int(num_samples or self.log_prob_samples)
        seed_is = self._seed(seed)
        log_z = tf.cast(log_partition, tf.float32)
        batch = tf.shape(v)[0]
        total = None
        for i, start in enumerate(range(0, num_samples, chunk)):
            k = min(chunk, num_samples - start)
            seeds = _split(tf.random.experimental.stateless_fold_in(seed_is, i), len(self.rbms))
            h = tf.reshape(tf.tile(v[None], [k, 1, 1]), [k * batch, -1])  # (k * batch, V)
            log_w = tf.zeros([k * batch])
            for layer, rbm in enumerate(self.rbms[:-1]):
                q = rbm.hidden_conditional(h)
                h_up = q.sample(seed=seeds[layer])
                log_w += rbm.visible_conditional(h_up).log_prob(h) - q.log_prob(h_up)
                h = h_up
            log_w += -self.top.free_energy(h) - log_z
            part = tf.reduce_logsumexp(tf.reshape(log_w, [k, batch]), 0)
            total = part if total is None else tf.reduce_logsumexp(tf.stack([total, part]), 0)
        return total - tf.math.log(float(num_samples))

    def summary_metrics(self, dataset) -> dict:
        """Importance-sampled test log-likelihood (the top RBM's log Z exact or AIS)."""
        x = dataset.x_test.reshape(len(dataset.x_test), -1)
        return {
            "test_log_likelihood": float(tf.reduce_mean(self.log_prob(x, seed=(0, 0)))),
            "log_likelihood_method": f"importance sampling, top log Z {self.top.log_prob_method}",
        }

    def figures(self, dataset) -> dict:
        """``{"filters": the bottom RBM's filters}`` for image data."""
        return self.rbms[0].figures(dataset)

    def export_endpoints(self):
        spec = tf.TensorSpec([None, self.layer_sizes[0]], tf.float32, name="x")
        endpoints = super().export_endpoints()
        log_z = float(self.top.log_partition(self.top.log_prob_method, seed=(0, 0)).value)
        endpoints["log_prob"] = (
            lambda x: self.log_prob(
                x, num_samples=min(self.log_prob_samples, 100), seed=(0, 0), log_partition=log_z
            ),
            [spec],
        )
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "layer_sizes": self.layer_sizes,
            "visible": self.visible,
            "cd_k": self.cd_k,
            "persistent": self.persistent,
            "num_chains": self.num_chains,
            "visible_std": self.visible_std,
            "sample_steps": self.sample_steps,
            "log_prob_samples": self.log_prob_samples,
        }


registry.register(
    "rbm",
    RBM,
    family="energy-based",
    datasets=("digits", "digits-continuous", "mnist", "fashion-mnist"),
    build=RBM.for_dataset,
    defaults=dict(
        epochs=100,
        batch_size=32,
        learning_rate=0.05,
        hparams=dict(num_hidden=64, cd_k=1, persistent=False),
    ),
    tiny=dict(
        num_hidden=8, persistent=True, num_chains=16, sample_steps=20, ais_chains=16, ais_betas=100
    ),
    description="restricted Boltzmann machine (CD-k / persistent CD, exact or AIS log Z)",
)


registry.register(
    "dbn",
    DBN,
    family="energy-based",
    datasets=("digits", "digits-continuous", "mnist", "fashion-mnist"),
    build=DBN.for_dataset,
    defaults=dict(
        epochs=100,
        batch_size=32,
        learning_rate=0.05,
        hparams=dict(hidden_sizes=(64, 20), cd_k=1, log_prob_samples=1000),
    ),
    tiny=dict(hidden_sizes=(8, 4), sample_steps=20, log_prob_samples=20),
    description="deep belief net (greedy layer-wise RBMs, Gibbs in the top, directed pass down)",
)
