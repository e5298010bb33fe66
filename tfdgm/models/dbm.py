"""Deep Boltzmann machines: undirected stacks of binary layers (Salakhutdinov & Hinton, 2009).

Layers h_0 = v, h_1, ..., h_L with weights W_l (``[n_l, n_{l+1}]``) between neighbours and
biases b_l:

    E(h_0, ..., h_L) = -sum_{l<L} h_l' W_l h_{l+1} - sum_l b_l' h_l,    p = exp(-E) / Z.

Given its two neighbours a layer is a product of Bernoullis,

    p(h_l = 1 | h_{l-1}, h_{l+1}) = sigmoid(b_l + W_{l-1}' h_{l-1} + W_l h_{l+1}),

so the odd layers are conditionally independent given the even ones and vice versa:
Gibbs sampling alternates the two halves, and either half can be summed out in closed
form, log sum_{odd} exp(-E) = sum_{even} b_l'h_l + sum_{odd l} sum_j softplus(b_l + W_{l-1}'
h_{l-1} + W_l h_{l+1})_j.

**Mean field.** q(h | v) = prod_{l>=1} prod_j Bernoulli(mu_lj) with the fixed point of

    mu_l = sigmoid(b_l + W_{l-1}' mu_{l-1} + W_l mu_{l+1}),   mu_0 = v,

reached by updating the odd then the even hidden layers (each half is an exact coordinate
step, so the bound below never decreases), from a bottom-up pass with doubled weights
mu_l = sigmoid(b_l + 2 W_{l-1}' mu_{l-1}) (mu_L with single weights), for at most
``mean_field_steps`` rounds or until no mu moves by more than ``mean_field_tolerance``.
It gives the variational lower bound

    log p(v) >= -E_q[E(v, h)] + H(q) - log Z = -F_q(v) - log Z,

E_q[E] being E evaluated at the means (E is multilinear with no intra-layer terms).

**Training** through ``fit``: the gradient of the bound is E_q[-dE/dtheta] -
E_p[-dE/dtheta]; the model term comes from ``num_chains`` persistent Gibbs chains
(``gibbs_steps`` sweeps per update). One step minimizes mean E(v, mu) - mean E(chains),
states held fixed.

**Greedy pre-training** (``pretrain_epochs`` > 0, Salakhutdinov & Hinton 2009): RBMs
with doubled inputs at the bottom and doubled tops, trained by CD in the first epochs of
``fit`` and composed (:class:`tfdgm.models.dbn.DoubledRBMPretraining`).

**log Z** is exact by enumerating the smaller half (odd or even layers, at most
``EXACT_MAX_UNITS`` units) with the other summed out, or AIS over the even layers with
the weights annealed, beta W, from independent units (log Z_0 = sum_l sum_j
softplus(b_lj)), one sweep (odd | even, then even | odd) per temperature. ``log_prob`` is
the bound with that log Z (density ``"estimate"``; with AIS also an estimate of log Z);
``exact_log_prob`` enumerates both halves on tiny models.

References:
    Salakhutdinov & Hinton, Deep Boltzmann machines, AISTATS 2009.
    Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, ICML 2008.
    Tieleman, Training RBMs using approximations to the likelihood gradient, ICML 2008.
    Salakhutdinov & Hinton, An efficient learning procedure for deep Boltzmann machines,
    Neural Computation 2012.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.models.boltzmann import PersistentChainsTraining, bernoulli_logits
from tfdgm.models.dbn import DoubledRBMPretraining
from tfdgm.partition import (
    EXACT_MAX_UNITS,
    EnergyBasedModel,
    binary_configurations,
    in_graph,
)


def _split(seed, n: int = 2):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def _bernoulli_entropy(mu) -> tf.Tensor:
    """sum_j H(Bernoulli(mu_j)), ``[batch]`` (0 log 0 = 0)."""
    mu = tf.clip_by_value(mu, 1e-7, 1 - 1e-7)
    return -tf.reduce_sum(mu * tf.math.log(mu) + (1 - mu) * tf.math.log1p(-mu), -1)


@registry.register(
    "dbm",
    family="energy-based",
    datasets=("digits",),
    training=dict(epochs=50, batch_size=32),
    hparams=dict(hidden_sizes=(64, 20), num_chains=100),
    tiny=dict(hidden_sizes=(8, 4), num_chains=16, sample_steps=10, ais_chains=16, ais_betas=50),
    variants={
        "three_layers": dict(hidden_sizes=(6, 4, 3), mean_field_steps=3),
        "pretrained": dict(pretrain_epochs=1),
    },
    description="deep Boltzmann machine (mean-field positive phase, persistent chains, AIS)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class DBM(DoubledRBMPretraining, PersistentChainsTraining, EnergyBasedModel):
    """Deep Boltzmann machine trained through ``fit`` (Salakhutdinov & Hinton, 2009).

    Args:
        layer_sizes: ``[V, H_1, ..., H_L]``, visible first (L >= 1).
        num_chains: persistent chains (non-trainable ``chains_l``, ``[num_chains, n_l]``).
        gibbs_steps: sweeps of the chains per update.
        mean_field_steps, mean_field_tolerance: the positive phase's fixed-point rounds.
        sample_steps: Gibbs sweeps of ``sample`` (from independent units with biases b).
        ais_chains, ais_betas: default AIS settings of ``log_partition``/``log_prob``.
        weight_std: the W_l start N(0, weight_std^2); biases at 0.
        pretrain_epochs: epochs of greedy pre-training per RBM (module docstring), the
            first ``pretrain_epochs`` x L epochs of ``fit`` (give ``fit`` more for joint
            training); each RBM has an optimizer group ``rbm_l`` (SGD, momentum 0.9:
            CD-``gibbs_steps``) beside ``model``; the ``layer`` metric is the RBM being
            trained, or L during joint training. 0: no pre-training.
        seed: seed of the model's random stream.

    >>> dbm = DBM([3, 2, 2], seed=0)
    >>> v = np.array([[i >> k & 1 for k in range(3)] for i in range(8)], "float32")
    >>> round(float(tf.reduce_sum(tf.exp(dbm.exact_log_prob(v)))), 5)
    1.0
    """

    density = "estimate"  # a variational lower bound with an exact or AIS log Z
    default_learning_rate = 0.05  # the digits run of docs/energy.md
    default_steps_per_execution = 8
    metric_names = ("loss", "reconstruction_error")

    def __init__(
        self,
        layer_sizes: Sequence[int],
        num_chains: int = 64,
        gibbs_steps: int = 1,
        mean_field_steps: int = 10,
        mean_field_tolerance: float = 1e-4,
        sample_steps: int = 1000,
        ais_chains: int = 200,
        ais_betas: int = 10000,
        weight_std: float = 0.01,
        pretrain_epochs: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        layer_sizes = [int(n) for n in layer_sizes]
        if int(pretrain_epochs) < 0:
            raise ValueError(f"pretrain_epochs must be >= 0, got {pretrain_epochs}")
        if len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes needs a visible and >= 1 hidden layer, got {layer_sizes}"
            )
        super().__init__((layer_sizes[0],), support="binary", seed=seed, **kwargs)
        self.layer_sizes = layer_sizes
        self.num_chains, self.gibbs_steps = int(num_chains), int(gibbs_steps)
        self.mean_field_steps = int(mean_field_steps)
        self.mean_field_tolerance = float(mean_field_tolerance)
        self.sample_steps = int(sample_steps)
        self.ais_chains, self.ais_betas = int(ais_chains), int(ais_betas)
        self.weight_std = float(weight_std)
        self.pretrain_epochs = int(pretrain_epochs)
        if self.pretrain_epochs:
            self.metric_names = (*self.metric_names, "layer")
            self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]
        self.build()
        self.active_layer = self.pretraining_layer()
        self.reset_chains()

    @classmethod
    def for_dataset(cls, dataset, hidden_sizes: Sequence[int] = (64, 20), **hparams) -> DBM:
        """A DBM ``[V, *hidden_sizes]`` for binary ``dataset``; b_0 at the data's log-odds."""
        if dataset.support != "binary":
            raise ValueError("DBM models binary data")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        model = cls([x.shape[1], *hidden_sizes], **hparams)
        p = np.clip(x.mean(0), 0.01, 0.99)
        model.biases[0].assign(np.log(p / (1 - p)).astype("float32"))
        model.reset_chains()
        return model

    def _build(self):
        sizes = self.layer_sizes
        self.kernels = [
            self.add_weight(
                shape=(n_in, n_out),
                initializer=keras.initializers.RandomNormal(
                    stddev=self.weight_std, seed=None if self.seed is None else self.seed + k
                ),
                autocast=False,
                name=f"kernel_{k}",
            )
            for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))
        ]
        self.biases = [
            self.add_weight(shape=(n,), initializer="zeros", autocast=False, name=f"bias_{k}")
            for k, n in enumerate(sizes)
        ]
        self.chains = [
            self.add_weight(
                shape=(self.num_chains, n),
                initializer="zeros",
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name=f"chains_{k}",
            )
            for k, n in enumerate(sizes)
        ]
        if self.pretrain_epochs:  # RBM l's own bias of h_l (l = 1..L-1), done epochs
            self.pretraining_biases = [
                self.add_weight(
                    shape=(n,), initializer="zeros", autocast=False, name=f"rbm_bias_{k}"
                )
                for k, n in enumerate(sizes[1:-1], start=1)
            ]
            self.pretrained_epochs = self.add_weight(
                shape=(),
                initializer="zeros",
                dtype="int32",
                trainable=False,
                aggregation="only_first_replica",
                name="pretrained_epochs",
            )

    @property
    def num_layers(self) -> int:
        """L + 1, the number of layers including the visible one."""
        return len(self.layer_sizes)

    def set_parameters(self, weights=None, biases=None) -> None:
        """Set W_0..W_{L-1} (``[n_l, n_{l+1}]``) and/or b_0..b_L; any entry may be None."""
        for name, values, variables in (
            ("weights", weights, self.kernels),
            ("biases", biases, self.biases),
        ):
            if values is None:
                continue
            if len(values) != len(variables):
                raise ValueError(f"{name} needs {len(variables)} arrays, got {len(values)}")
            for k, (value, variable) in enumerate(zip(values, variables)):
                if value is None:
                    continue
                value = np.asarray(value, np.float32)
                if value.shape != tuple(variable.shape):
                    raise ValueError(
                        f"{name}[{k}] must have shape {tuple(variable.shape)}, got {value.shape}"
                    )
                variable.assign(value)

    def _params(self, beta=1.0, dtype=tf.float32):
        """([beta W_l], [b_l]) as ``dtype``."""
        return (
            [beta * tf.cast(w, dtype) for w in self.kernels],
            [tf.cast(b, dtype) for b in self.biases],
        )

    # ------------------------------------------------------------------ energies
    def energy(self, layers) -> tf.Tensor:
        """E(h_0, ..., h_L) = -sum_l h_l'W_l h_{l+1} - sum_l b_l'h_l, ``[batch]`` (means
        in place of states give E_q[E] under a factorized q)."""
        W, b = self._params()
        layers = [tf.cast(h, tf.float32) for h in layers]
        e = -sum(tf.linalg.matvec(h, bias) for h, bias in zip(layers, b))
        for k, w in enumerate(W):
            e -= tf.reduce_sum(tf.matmul(layers[k], w) * layers[k + 1], -1)
        return e

    def conditional_logits(self, layers, k: int, beta=1.0, params=None) -> tf.Tensor:
        """b_l + beta (W_{l-1}' h_{l-1} + W_l h_{l+1}): the logits of p(h_l | neighbours)."""
        W, b = params or self._params(beta)
        logits = b[k]
        if k > 0:
            logits = logits + tf.matmul(layers[k - 1], W[k - 1])
        if k < len(W):
            logits = logits + tf.matmul(layers[k + 1], W[k], transpose_b=True)
        return logits

    def _log_marginal(
        self, fixed: dict, beta=1.0, include_fixed_bias: bool = True, dtype=tf.float32
    ) -> tf.Tensor:
        """log sum over the layers not in ``fixed`` (no two adjacent) of exp(-E_beta)."""
        W, b = params = self._params(beta, dtype)
        log_f = 0.0
        for k, h in fixed.items():
            if include_fixed_bias:
                log_f += tf.linalg.matvec(h, b[k])
            if k + 1 in fixed:
                log_f += tf.reduce_sum(tf.matmul(h, W[k]) * fixed[k + 1], -1)
        for k in range(self.num_layers):
            if k not in fixed:
                layers = [fixed.get(k) for k in range(self.num_layers)]
                pre = self.conditional_logits(layers, k, params=params)
                log_f += tf.reduce_sum(tf.math.softplus(pre), -1)
        return log_f

    # ------------------------------------------------------------------ mean field
    def mean_field(self, v, num_steps: int | None = None) -> list[tf.Tensor]:
        """[v, mu_1, ..., mu_L], the mean-field fixed point (module docstring)."""
        W, b = self._params()
        v = tf.cast(v, tf.float32)
        mu = [v]
        for k in range(1, self.num_layers):  # bottom-up with doubled weights below the top
            scale = 1.0 if k == self.num_layers - 1 else 2.0
            mu.append(tf.sigmoid(b[k] + scale * tf.matmul(mu[-1], W[k - 1])))
        num_steps = self.mean_field_steps if num_steps is None else int(num_steps)
        hidden = list(range(1, self.num_layers))
        order = [k for k in hidden if k % 2 == 1] + [k for k in hidden if k % 2 == 0]

        def body(step, delta, *means):
            means = [v, *means]
            old = list(means)
            for k in order:
                means[k] = tf.sigmoid(self.conditional_logits(means, k))
            change = tf.reduce_max([tf.reduce_max(tf.abs(means[k] - old[k])) for k in hidden])
            return (step + 1, change, *means[1:])

        loop = tf.while_loop(
            lambda step, delta, *_: (step < num_steps) & (delta > self.mean_field_tolerance),
            body,
            (tf.constant(0), tf.constant(np.inf, tf.float32), *mu[1:]),
        )
        return [v, *loop[2:]]

    def variational_free_energy(self, v) -> tf.Tensor:
        """F_q(v) = E_q[E(v, h)] - H(q) >= F(v) at the mean-field q, ``[batch]``."""
        mu = self.mean_field(v)
        return self.energy(mu) - sum(_bernoulli_entropy(m) for m in mu[1:])

    def _enumerated_parity(self, clamp_visible: bool = False) -> int:
        """0 (even layers) or 1 (odd), whichever has fewer units to enumerate."""
        count = lambda parity: sum(
            n
            for k, n in enumerate(self.layer_sizes)
            if k % 2 == parity and not (clamp_visible and k == 0)
        )
        return 0 if count(0) < count(1) else 1

    def _enumerate(self, parity: int, skip: tuple = ()):
        """Layers of ``parity`` (but ``skip``), their sizes and total units."""
        layers = [k for k in range(self.num_layers) if k % 2 == parity and k not in skip]
        return (
            layers,
            [self.layer_sizes[k] for k in layers],
            sum(self.layer_sizes[k] for k in layers),
        )

    def free_energy(self, v) -> tf.Tensor:
        """Exact F(v) = -log sum_h exp(-E(v, h)), enumerating the smaller half of the hidden
        layers (<= ``EXACT_MAX_UNITS`` units), ``[batch]``; tiny models only."""
        v = tf.cast(v, tf.float32)
        layers, sizes, total = self._enumerate(self._enumerated_parity(True), skip=(0,))
        if total > EXACT_MAX_UNITS:
            raise ValueError(f"exact F(v) enumerates 2^{total} states (limit 2^{EXACT_MAX_UNITS})")
        if not layers:  # one hidden layer: the RBM's closed form
            return -self._log_marginal({0: v})
        states = tf.cast(binary_configurations(total, 0, 2**total), tf.float32)  # (K, total)
        batch, count = tf.shape(v)[0], 2**total
        fixed = {0: tf.repeat(v, count, axis=0)}  # (batch * count, V), v-major
        for k, part in zip(layers, tf.split(states, sizes, axis=1)):
            fixed[k] = tf.tile(part, [batch, 1])
        log_f = tf.reshape(self._log_marginal(fixed), [batch, count])
        return -tf.reduce_logsumexp(log_f, -1)

    def exact_log_prob(self, v) -> tf.Tensor:
        """log p(v) = -F(v) - log Z, both by enumeration (tiny models), ``[batch]``."""
        v = self._prepare(v)
        return -self.free_energy(v) - self.log_partition("exact").value

    def scored_free_energy(self, x) -> tf.Tensor:
        """What ``log_prob`` scores: F_q(x) >= F(x), so log_prob = -F_q(x) - log Z is the
        variational lower bound (log Z exact when enumerable, else AIS with seed (0, 0))."""
        return self.variational_free_energy(x)

    # ------------------------------------------------------------------ Gibbs sampling
    def gibbs_sweep(self, layers, seed, beta=1.0) -> list[tf.Tensor]:
        """Odd layers given the even ones, then the even ones (v included) given the odd."""
        layers = list(layers)
        seeds = _split(seed, self.num_layers)
        for parity in (1, 0):
            for k in range(parity, self.num_layers, 2):
                layers[k] = bernoulli_logits(self.conditional_logits(layers, k, beta), seeds[k])
        return layers

    def gibbs(self, layers, num_steps, seed=None) -> list[tf.Tensor]:
        """``num_steps`` sweeps from ``layers``; no gradient flows through it."""
        seed = self._seed(seed)

        def chain(num_steps, seed, *layers):
            def body(step, *layers):
                fold = tf.random.experimental.stateless_fold_in(seed, step)
                return (step + 1, *self.gibbs_sweep(layers, fold))

            return tf.while_loop(
                lambda step, *_: step < num_steps, body, (tf.constant(0), *layers)
            )[1:]

        layers = [tf.cast(h, tf.float32) for h in layers]
        out = in_graph(chain, tf.convert_to_tensor(num_steps), seed, *layers)
        return [tf.stop_gradient(h) for h in out]

    def _base_sample(self, num_samples, seed, parity=None) -> list[tf.Tensor]:
        """Independent Bernoulli(sigmoid(b_l)) layers (W = 0), all or those of ``parity``."""
        _, b = self._params()
        seeds = _split(seed, self.num_layers)
        return [
            bernoulli_logits(tf.tile(b[k][None], [num_samples, 1]), seeds[k])
            for k in range(self.num_layers)
            if parity is None or k % 2 == parity
        ]

    def reset_chains(self, seed=None) -> None:
        """Restart the persistent chains from independent units with the current biases."""
        for chain, h in zip(self.chains, self._base_sample(self.num_chains, self._seed(seed))):
            chain.assign(h)

    def sample(self, num_samples: int, seed=None, num_steps: int | None = None) -> tf.Tensor:
        """v after ``num_steps`` (default ``sample_steps``) sweeps from independent units."""
        seed_init, seed_chain = _split(self._seed(seed))
        num_steps = self.sample_steps if num_steps is None else num_steps
        return self.gibbs(self._base_sample(num_samples, seed_init), num_steps, seed_chain)[0]

    # ------------------------------------------------------------------ training
    def _loss(self, v, chains):
        mu = [tf.stop_gradient(m) for m in self.mean_field(v)]
        loss = tf.reduce_mean(self.energy(mu)) - tf.reduce_mean(self.energy(chains))
        W, b = self._params()
        v_hat = tf.sigmoid(b[0] + tf.matmul(mu[1], W[0], transpose_b=True))
        error = tf.reduce_mean(tf.reduce_sum(tf.square(v - v_hat), -1))
        return loss, {"loss": loss, "reconstruction_error": tf.stop_gradient(error)}

    def _chain_state(self):
        return [tf.convert_to_tensor(c) for c in self.chains]

    def _store_chains(self, state) -> None:
        for variable, h in zip(self.chains, state):
            variable.assign(h)

    # ------------------------------------------------------------------ greedy pre-training
    def optimizer_groups(self) -> dict[str, list]:
        """``model`` (every W_l and b_l); with pre-training also ``rbm_l``, RBM l's."""
        groups = {"model": [*self.kernels, *self.biases]}
        if self.pretrain_epochs:
            groups.update({f"rbm_{k}": self._rbm_parameters(k) for k in range(self.num_layers - 1)})
        return groups

    def default_optimizer(self, group: str, learning_rate: float):
        """SGD with momentum 0.5 for ``model`` (persistent chains), 0.9 for the RBMs (CD)."""
        return keras.optimizers.SGD(learning_rate, momentum=0.5 if group == "model" else 0.9)

    def training_update(self, x, labels=None) -> dict:
        """A CD step of the RBM being pre-trained, else a joint persistent-chain step."""
        layer = self.active_layer
        if layer == self.num_layers - 1:
            values = super().training_update(x, labels)
            return (
                {**values, "layer": tf.constant(float(layer))} if self.pretrain_epochs else values
            )
        optimizer = self.optimizer_for(f"rbm_{layer}")
        with tf.GradientTape() as tape:
            loss, values = self._rbm_loss(layer, x, self._seed())
            scaled = self._scaled(loss, optimizer)
        self._minimize(scaled, self._rbm_parameters(layer), optimizer, tape)
        return values

    def objective(self, x, training=False):
        """The loss of the current stage (an RBM's CD loss, or the joint one)."""
        layer = self.active_layer
        if layer == self.num_layers - 1:
            values = super().objective(x, training)
            return (
                {**values, "layer": tf.constant(float(layer))} if self.pretrain_epochs else values
            )
        return self._rbm_loss(layer, x, (0, 0))[1]

    # ------------------------------------------------------------------ partition function
    def _enumerated_units(self) -> int:
        return self._enumerate(self._enumerated_parity())[2]

    def _enumeration(self):
        """log f of the smaller half's states with the other half summed out, float64."""
        layers, sizes, _ = self._enumerate(self._enumerated_parity())

        def log_unnormalized(states):
            fixed = dict(zip(layers, tf.split(states, sizes, axis=1)))
            return self._log_marginal(fixed, dtype=tf.float64)

        return log_unnormalized, 0.0

    def _annealing(self, num_chains: int, seed):
        """AIS over the even layers (odd ones summed out) through beta W; log f_beta keeps
        only the softplus terms of the odd layers (the even biases cancel in the ratios)."""
        even, sizes, _ = self._enumerate(0)

        def unpack(x):
            return dict(zip(even, tf.split(x, sizes, axis=1)))

        def log_unnormalized(x, beta):
            return self._log_marginal(unpack(x), beta, include_fixed_bias=False)

        def transition(x, beta, seed):
            fixed = unpack(x)
            layers = [
                fixed.get(k, tf.zeros([tf.shape(x)[0], n])) for k, n in enumerate(self.layer_sizes)
            ]
            layers = self.gibbs_sweep(layers, seed, beta)
            return tf.concat([layers[k] for k in even], 1)

        initial = tf.concat(self._base_sample(num_chains, seed, parity=0), 1)
        log_z0 = sum(tf.reduce_sum(tf.math.softplus(b)) for b in self._params()[1])
        return initial, log_z0, log_unnormalized, transition

    # ------------------------------------------------------------------ contract
    def summary_metrics(self, dataset) -> dict:
        """The test variational bound with the log Z it used (exact or AIS, seed (0, 0))."""
        metrics = super().summary_metrics(dataset)
        metrics["log_likelihood_method"] = (
            f"variational bound, log Z {metrics['log_likelihood_method']}"
        )
        return metrics

    def export_endpoints(self):
        """sample, log_prob (the bound, log Z a constant) and variational_free_energy."""
        endpoints = GenerativeModel.export_endpoints(self)
        spec = [self.input_signature()]
        log_z = float(self.log_partition(self.log_prob_method, seed=(0, 0)).value)
        endpoints["log_prob"] = (lambda x: self.log_prob(x, log_partition=log_z), spec)
        endpoints["variational_free_energy"] = (lambda x: self.variational_free_energy(x), spec)
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "layer_sizes": self.layer_sizes,
            "num_chains": self.num_chains,
            "gibbs_steps": self.gibbs_steps,
            "mean_field_steps": self.mean_field_steps,
            "mean_field_tolerance": self.mean_field_tolerance,
            "sample_steps": self.sample_steps,
            "ais_chains": self.ais_chains,
            "ais_betas": self.ais_betas,
            "weight_std": self.weight_std,
            "pretrain_epochs": self.pretrain_epochs,
        }
