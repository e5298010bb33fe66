"""Restricted Boltzmann machines: binary and Gaussian-Bernoulli visible units.

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
annealed importance sampling (AIS) between the RBM with W = 0, c = 0 and the model, with
the generic machinery of :mod:`tfdgm.partition`. Deep belief nets, stacks of RBMs, are in
:mod:`tfdgm.models.dbn`.

References:
    Smolensky, Information processing in dynamical systems, 1986 ("harmonium").
    Hinton, Training products of experts by minimizing contrastive divergence, 2002.
    Tieleman, Training RBMs using approximations to the likelihood gradient, ICML 2008.
    Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, ICML 2008.
    Hinton, A practical guide to training restricted Boltzmann machines, UTML TR 2010-003.
    Besag, Statistical analysis of non-lattice data, 1975 (pseudo-likelihood).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry
from tfdgm.base import PACKAGE
from tfdgm.partition import (
    EXACT_MAX_UNITS,
    EnergyBasedModel,
    LogPartition,
    ais_schedule,
    in_graph,
    rbm_annealed_log_f,
    rbm_annealing_step,
    rbm_base_log_partition,
    rbm_enumeration,
)

tfd = tfp.distributions
#: Training reports the reconstruction error and one-flip pseudo-likelihood of the first 16
#: examples of a batch (unbiased; ``evaluate`` scores all): its h W' does not grow with it.
TRAIN_METRIC_EXAMPLES = 16

__all__ = ["EXACT_MAX_UNITS", "RBM", "LogPartition"]


def __getattr__(name: str):
    """``tfdgm.models.rbm.DBN`` still works: deep belief nets live in :mod:`tfdgm.models.dbn`."""
    if name == "DBN":
        from tfdgm.models.dbn import DBN

        return DBN
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _split(seed, n: int = 2):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _pooled_std(x) -> float:
    """sqrt(mean_i Var[x_i]): the per-unit standard deviation pooled over units (rounded)."""
    return round(float(np.sqrt(np.mean(np.var(np.asarray(x, np.float64), axis=0)))), 4)


@registry.register(
    "rbm",
    family="energy-based",
    datasets=("digits", "digits-continuous", "mnist", "fashion-mnist", "mnist5k"),
    training=dict(epochs=100, batch_size=32),
    hparams=dict(num_hidden=64, cd_k=1, persistent=False),
    tiny=dict(
        num_hidden=8, persistent=True, num_chains=16, sample_steps=20, ais_chains=16, ais_betas=100
    ),
    dataset_defaults={"mnist5k": dict(hparams=dict(num_hidden=500))},  # 784-500
    variants={
        "cd3": dict(persistent=False, cd_k=3),
        "ais": dict(num_hidden=24),  # 2^24 hidden states: log Z by AIS, density "estimate"
        "gaussian": dict(dataset="digits-continuous"),
    },
    description="restricted Boltzmann machine (CD-k / persistent CD, exact or AIS log Z)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class RBM(EnergyBasedModel):
    """Restricted Boltzmann machine trained by CD-k or persistent CD through Keras ``fit``.

    ``compile_default()`` is SGD with momentum at learning rate 0.05 (:meth:`default_optimizer`).

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

    default_learning_rate = 0.05
    default_steps_per_execution = 8

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

        return tf.stop_gradient(in_graph(chain, v, tf.convert_to_tensor(num_steps), seed))

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
        pre = self._free_energy_and_pre(v)[1]
        if not exact:
            return self._one_flip_pseudo_log_likelihood(v, pre, self._seed(seed))
        return tf.reduce_sum(tf.math.log_sigmoid(self._flip_gap(v, pre)), -1)

    def _one_flip_pseudo_log_likelihood(self, v, pre, seed):
        """V log sigmoid(F(flip_i v) - F(v)) at one uniform random unit i per example."""
        shape = tf.shape(v)[:1]
        index = tf.random.stateless_uniform(shape, seed, 0, self.num_visible, dtype=tf.int32)
        return self.num_visible * tf.math.log_sigmoid(self._flip_gap(v, pre, index))

    def _flip_gap(self, v, pre, index=None):
        """F(v with v_i flipped) - F(v) = -s_i b_i + sum_j [softplus(pre_j) - softplus(pre_j +
        s_i W_ij)], s_i = 1 - 2 v_i, pre = c + v'W: for every unit i (``[batch, V]``, through
        ``[batch, V, H]`` pre-activations) or for one unit per example, ``index`` ``[batch]``."""
        W, b, _ = self._params()
        if index is None:
            sign, b_i, W_i, pre = 1.0 - 2.0 * v, b, W[None], pre[:, None, :]
        else:
            sign = 1.0 - 2.0 * tf.gather(v, index, batch_dims=1)  # (batch,)
            b_i, W_i = tf.gather(b, index), tf.gather(W, index)
        flipped = tf.reduce_sum(tf.math.softplus(pre + sign[..., None] * W_i), -1)
        return tf.reduce_sum(tf.math.softplus(pre), -1) - sign * b_i - flipped

    def contrastive_divergence_loss(self, v_data, v_model) -> tf.Tensor:
        """mean F(v_data) - mean F(v_model): its gradient is minus the CD/PCD estimate of the
        log-likelihood gradient (positive phase on data, negative phase on chain samples)."""
        return self._cd_loss(v_data, v_model)[0]

    def _cd_loss(self, v_data, v_model):
        """(the CD loss, the data's hidden pre-activations c + (v/s)'W for the metrics)."""
        free_data, pre_data = self._free_energy_and_pre(v_data)
        free_model, _ = self._free_energy_and_pre(tf.stop_gradient(v_model))
        return tf.reduce_mean(free_data) - tf.reduce_mean(free_model), pre_data

    def _report(self, v, loss, pre, seed, examples=None):
        """Metrics from the positive phase's hidden pre-activations (no extra v'W), of the
        first ``examples`` examples of the batch (all when None)."""
        v, pre = v[:examples], tf.stop_gradient(pre)[:examples]
        values = {"loss": loss}
        values["reconstruction_error"] = tf.reduce_mean(self._reconstruction_error(v, pre))
        if self.visible == "bernoulli":
            pseudo = self._one_flip_pseudo_log_likelihood(v, pre, seed)
            values["pseudo_log_likelihood"] = tf.reduce_mean(pseudo)
        return values

    def objective(self, x, training=False):
        """CD-k loss from the data (chains are never advanced here) and the metrics."""
        seed_chain, seed_pll = _split(self._seed())
        v = tf.cast(x, tf.float32)
        loss, pre = self._cd_loss(v, self.gibbs(v, self.cd_k, seed_chain))
        return self._report(v, loss, pre, seed_pll)

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
            loss, pre = self._cd_loss(v, v_model)
            scaled = self._scaled(loss, optimizer)
        self._minimize(scaled, variables, optimizer, tape)
        return self._report(v, loss, pre, seed_pll, TRAIN_METRIC_EXAMPLES)

    def training_update(self, x, labels=None) -> dict:
        """One CD-k / PCD-k step (:meth:`cd_update`) with the optimizer of group "model"."""
        return self.cd_update(x, self.optimizer_for("model"))

    def default_optimizer(self, group: str, learning_rate: float):
        """SGD with momentum (Hinton, 2010), the classic RBM rule; what ``compile_default``
        (and ``tfdgm train``) uses, at ``default_learning_rate`` = 0.05 with
        ``default_steps_per_execution`` = 8 CD steps per Keras call (8 was faster than 1 on
        CPU for a 784-256 RBM; XLA, ``jit_compile``, works but was slower on CPU).

        Momentum is 0.9 for CD and 0.5 for persistent CD: with 0.9 the weights move faster
        than the fantasy particles can follow and PCD's test log-likelihood fell on digits
        (see docs/energy.md). The loss is a batch mean, so the learning rate multiplies the
        example-averaged gradient, as in scikit-learn's ``BernoulliRBM``.
        """
        return keras.optimizers.SGD(learning_rate, momentum=0.5 if self.persistent else 0.9)

    # ------------------------------------------------------------------ partition function
    def _enumerated_units(self) -> int:
        """The layer that exact log Z enumerates: the smaller (hidden for Gaussian units)."""
        if self.visible == "gaussian":
            return self.num_hidden
        return min(self.num_visible, self.num_hidden)

    def _enumeration(self):
        """log f(s) of the enumerated layer with the other one summed (or, for Gaussian v,
        integrated) out, float64, and the constant added to log Z
        (:func:`tfdgm.partition.rbm_enumeration`)."""
        W, b, c = (tf.cast(p, tf.float64) for p in self._params())
        return rbm_enumeration(W, b, c, self.visible, self.visible_std)

    def _base_log_partition(self) -> tf.Tensor:
        """log Z of the RBM with W = 0, c = 0 (:func:`tfdgm.partition.rbm_base_log_partition`)."""
        b = self._params()[1]
        return rbm_base_log_partition(b, self.num_hidden, self.visible, self.visible_std)

    #: The AIS temperatures (see :func:`tfdgm.partition.ais_schedule`).
    ais_schedule = staticmethod(ais_schedule)

    def _annealing(self, num_chains: int, seed):
        """AIS from p_0 = RBM(W = 0, b, c = 0) to the model through the RBMs (beta W, b,
        beta c), with -F_beta(v) = (b-term) + sum_j softplus(beta (c_j + (v/s)'W_j)). The
        b-term does not depend on beta and cancels in every ratio, so log f_beta keeps only
        the softplus sum (H log 2 at beta = 0, in log Z_0 too); transitions are block Gibbs
        sweeps at beta, fused with the log f's in two products per temperature
        (:func:`tfdgm.partition.rbm_annealing_step`)."""
        W, _, c = self._params()
        pre_of = lambda v: tf.matmul(self._scaled_visible(v), W) + c
        log_unnormalized = lambda v, beta: rbm_annealed_log_f(pre_of(v), beta)
        transition = lambda v, beta, seed: self.gibbs_step(v, seed, beta)
        step = rbm_annealing_step(pre_of, self.visible_conditional)
        initial = self._base_sample(num_chains, seed)
        return initial, self._base_log_partition(), log_unnormalized, transition, step

    # ------------------------------------------------------------------ contract
    def summary_metrics(self, dataset) -> dict:
        """Test log-likelihood (exact or AIS, which, log Z) and test pseudo-log-likelihood."""
        metrics = super().summary_metrics(dataset)
        if self.visible == "bernoulli":
            x = dataset.x_test.reshape(len(dataset.x_test), -1)
            pseudo = self.pseudo_log_likelihood(x)
            metrics["test_pseudo_log_likelihood"] = float(tf.reduce_mean(pseudo))
        return metrics

    def filters_figure(self, dataset):
        """An image grid of the columns of W (at most 64), or None for non-image data."""
        if dataset.image_shape is None:
            return None
        from tfdgm import plotting

        filters = np.asarray(self.kernel).T[:64]
        return plotting.image_grid(filters, dataset.image_shape, title="RBM filters")

    def figures(self, dataset) -> dict:
        """The base's pictures (samples) and ``"filters"`` (:meth:`filters_figure`)."""
        figures, filters = super().figures(dataset), self.filters_figure(dataset)
        return figures if filters is None else {**figures, "filters": filters}

    def export_endpoints(self):
        """sample, log_prob, free_energy (see :class:`EnergyBasedModel`) and
        hidden_probabilities."""
        endpoints = super().export_endpoints()
        spec = [self.input_signature()]
        endpoints["hidden_probabilities"] = (lambda x: self.hidden_probabilities(x), spec)
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
