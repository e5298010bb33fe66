"""The general Boltzmann machine: visible and hidden binary units with lateral weights.

With visible units v in {0, 1}^V and hidden units h in {0, 1}^H,

    E(v, h) = -v'Rv - v'Wh - h'Sh - b'v - c'h,        p(v, h) = exp(-E(v, h)) / Z,

where R (``[V, V]``) and S (``[H, H]``) are symmetric with zero diagonal (each pair of
units interacts once, through 2 R_ij). They are parametrized so that they stay so: a free
matrix A gives R = triu(A, 1) + triu(A, 1)'. Writing x = (v, h), E = -x'Jx / 2 - a'x with

    J = [[2R, W], [W', 2S]],   a = (b, c),   p(x_i = 1 | x_-i) = sigmoid(a_i + J_i x).

With R = S = 0 this is the RBM of :mod:`tfdgm.models.rbm` (same energies, free energy
and log Z for the same W, b, c).

**Gibbs sampling.** ``sampler="sequential"`` updates one unit at a time, in order;
``"checkerboard"`` updates a layer without lateral weights as one block (its units are
conditionally independent given the other layer) and a layer with them unit by unit.
With R = S = 0 that is the RBM's block Gibbs; with lateral weights in both layers it is
the sequential sweep.

**log Z and log p(v).** Exact log Z enumerates the smallest set of units that the rest
can be summed out against in closed form: v when S = 0 (h is then conditionally
independent), h when R = 0, the joint state otherwise (``EXACT_MAX_UNITS``). The free
energy F(v) = -log sum_h exp(-E(v, h)) is closed form when S = 0,

    F(v) = -b'v - v'Rv - sum_j softplus(c_j + v'W_j),

and enumerates the 2^H hidden states otherwise (H <= ``MAX_ENUMERATED_HIDDEN``). AIS
anneals the couplings, J_beta = beta J, from independent units (log Z_0 = sum_i
softplus(a_i)) over the joint state, one Gibbs sweep per temperature.

**Training** (Salakhutdinov & Hinton, 2009, section 2): the gradient of log p(v) is
E_{p(h|v)}[-dE/dtheta] - E_{p(v,h)}[-dE/dtheta]. The positive phase replaces p(h | v)
by the fully factorized mean-field q(h) = prod_j Bernoulli(mu_j), the fixed point of

    mu = sigmoid(c + W'v + 2 S mu)                 (exact, one step, when S = 0);

the negative phase runs ``num_chains`` persistent Gibbs chains (``gibbs_steps`` sweeps per
update). Both are the gradient of the loss mean E(v, mu) - mean E(x_chain) with the states
held fixed (E is linear in every parameter, and E_q[h'Sh] = mu'S mu as diag S = 0).

References:
    Ackley, Hinton & Sejnowski, A learning algorithm for Boltzmann machines, 1985.
    Salakhutdinov & Hinton, Deep Boltzmann machines, AISTATS 2009.
    Tieleman, Training RBMs using approximations to the likelihood gradient, ICML 2008.
    Neal, Annealed importance sampling, Statistics and Computing 2001.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfdgm import registry
from tfdgm.base import PACKAGE
from tfdgm.partition import EnergyBasedModel, binary_configurations, in_graph

#: The most hidden units ``free_energy`` enumerates when the hidden layer has lateral weights.
MAX_ENUMERATED_HIDDEN = 16
SAMPLERS = ("sequential", "checkerboard")


def _split(seed, n: int = 2):
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def symmetric_zero_diagonal(free) -> tf.Tensor:
    """triu(A, 1) + triu(A, 1)': symmetric with zero diagonal for any square A."""
    upper = tf.linalg.band_part(free, 0, -1) - tf.linalg.band_part(free, 0, 0)
    return upper + tf.transpose(upper)


def _quadratic(x, matrix) -> tf.Tensor:
    """x' M x for every row of x, ``[batch]``."""
    return tf.reduce_sum(tf.matmul(x, matrix) * x, -1)


def bernoulli_logits(logits, seed) -> tf.Tensor:
    """Binary states with p(x = 1) = sigmoid(logits), float32."""
    uniforms = tf.random.stateless_uniform(tf.shape(logits), seed)
    return tf.cast(uniforms < tf.sigmoid(logits), tf.float32)


def sequential_sweep(x, coupling, bias, start: int, stop: int, seed) -> tf.Tensor:
    """Update units ``start..stop-1`` of x one at a time: x_i ~ sigmoid(a_i + J_i x).

    ``coupling`` J is symmetric with zero diagonal (so J_i x does not see x_i itself).
    """
    uniforms = tf.random.stateless_uniform(tf.shape(x), seed)
    num_units = int(x.shape[-1])

    def body(i, x):
        p = tf.sigmoid(bias[i] + tf.linalg.matvec(x, coupling[:, i]))
        new = tf.cast(uniforms[:, i] < p, x.dtype)
        return i + 1, x + (new - x[:, i])[:, None] * tf.one_hot(i, num_units, dtype=x.dtype)

    return tf.while_loop(lambda i, _: i < stop, body, (tf.constant(start), x))[1]


class PersistentChainsTraining:
    """Training through ``fit`` shared by the Boltzmann machines: advance the persistent
    chains ``gibbs_steps`` sweeps, then one gradient step on ``_loss(v, chains)`` = mean
    E(v, mean-field means) - mean E(chains). A subclass implements ``gibbs(state, steps)``,
    ``_loss(v, state)``, ``_chain_state()`` and ``_store_chains(state)``."""

    def objective(self, x, training=False):
        """The training loss against the current chains (which are not advanced)."""
        return self._loss(tf.cast(x, tf.float32), self._chain_state())[1]

    def training_update(self, x, labels=None) -> dict:
        """Advance the chains, then one step on the mean-field / persistent-chain loss."""
        optimizer = self.optimizer_for("model")
        chains = self.gibbs(self._chain_state(), self.gibbs_steps)
        self._store_chains(chains)
        with tf.GradientTape() as tape:
            loss, values = self._loss(tf.cast(x, tf.float32), chains)
            scaled = self._scaled(loss, optimizer)
        self._minimize(scaled, self.optimizer_groups()["model"], optimizer, tape)
        return values

    def default_optimizer(self, group: str, learning_rate: float):
        """SGD with momentum 0.5 (persistent chains must keep up with the weights)."""
        return keras.optimizers.SGD(learning_rate, momentum=0.5)


@registry.register(
    "boltzmann",
    family="energy-based",
    datasets=("digits",),
    training=dict(epochs=50, batch_size=32, learning_rate=0.01),
    hparams=dict(num_hidden=16, num_chains=64),
    tiny=dict(num_hidden=4, num_chains=16, sample_steps=10, ais_chains=16, ais_betas=50),
    variants={
        "visible_only": dict(hidden_interactions=False),
        "restricted": dict(visible_interactions=False, hidden_interactions=False),
        "sequential": dict(sampler="sequential"),
    },
    description="general Boltzmann machine (lateral weights, mean-field + persistent chains)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class BoltzmannMachine(PersistentChainsTraining, EnergyBasedModel):
    """Boltzmann machine E = -v'Rv - v'Wh - h'Sh - b'v - c'h, trained through ``fit``.

    Args:
        num_visible: V (the event shape is ``(V,)``).
        num_hidden: H.
        visible_interactions: whether R (visible-visible weights) exists; else R = 0.
        hidden_interactions: whether S (hidden-hidden weights) exists; else S = 0.
        sampler: ``"checkerboard"`` or ``"sequential"`` Gibbs (module docstring).
        gibbs_steps: sweeps of the persistent chains per update.
        num_chains: persistent chains (non-trainable ``chains`` ``[num_chains, V + H]``).
        mean_field_steps: fixed-point iterations of the positive phase (when S exists).
        sample_steps: Gibbs sweeps of ``sample`` (from independent units with biases a).
        ais_chains, ais_betas: default AIS settings of ``log_partition``/``log_prob``.
        weight_std: W, R, S start N(0, weight_std^2) (R, S through the free matrices).
        seed: seed of the model's random stream.

    >>> bm = BoltzmannMachine(3, 2, seed=0)
    >>> v = np.array([[i >> k & 1 for k in range(3)] for i in range(8)], "float32")
    >>> round(float(tf.reduce_sum(tf.exp(bm.log_prob(v)))), 5)
    1.0
    """

    default_learning_rate = 0.01
    default_steps_per_execution = 8
    metric_names = ("loss", "reconstruction_error")

    def __init__(
        self,
        num_visible: int,
        num_hidden: int = 16,
        visible_interactions: bool = True,
        hidden_interactions: bool = True,
        sampler: str = "checkerboard",
        gibbs_steps: int = 1,
        num_chains: int = 64,
        mean_field_steps: int = 10,
        sample_steps: int = 1000,
        ais_chains: int = 200,
        ais_betas: int = 10000,
        weight_std: float = 0.01,
        seed: int | None = None,
        **kwargs,
    ):
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        super().__init__((int(num_visible),), support="binary", seed=seed, **kwargs)
        self.num_visible, self.num_hidden = int(num_visible), int(num_hidden)
        self.visible_interactions = bool(visible_interactions)
        self.hidden_interactions = bool(hidden_interactions)
        self.sampler = sampler
        self.gibbs_steps = int(gibbs_steps)
        self.num_chains = int(num_chains)
        self.mean_field_steps = int(mean_field_steps)
        self.sample_steps = int(sample_steps)
        self.ais_chains, self.ais_betas = int(ais_chains), int(ais_betas)
        self.weight_std = float(weight_std)
        self.build()
        self.reset_chains()

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> BoltzmannMachine:
        """A machine for binary ``dataset``; visible biases at the data's log-odds."""
        if dataset.support != "binary":
            raise ValueError("BoltzmannMachine models binary data")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        model = cls(num_visible=x.shape[1], **hparams)
        p = np.clip(x.mean(0), 0.01, 0.99)
        model.set_parameters(visible_bias=np.log(p / (1 - p)))
        model.reset_chains()
        return model

    def _build(self):
        V, H = self.num_visible, self.num_hidden
        init = lambda i: keras.initializers.RandomNormal(
            stddev=self.weight_std, seed=None if self.seed is None else self.seed + i
        )
        weight = lambda shape, name, initializer="zeros": self.add_weight(
            shape=shape, initializer=initializer, autocast=False, name=name
        )
        self.kernel = weight((V, H), "kernel", init(0))
        self.visible_bias = weight((V,), "visible_bias")
        self.hidden_bias = weight((H,), "hidden_bias")
        self.visible_free = (
            weight((V, V), "visible_free", init(1)) if self.visible_interactions else None
        )
        self.hidden_free = (
            weight((H, H), "hidden_free", init(2)) if self.hidden_interactions else None
        )
        self.chains = self.add_weight(
            shape=(self.num_chains, V + H),
            initializer="zeros",
            trainable=False,
            autocast=False,
            aggregation="only_first_replica",
            name="chains",
        )

    # ------------------------------------------------------------------ parameters
    def interactions(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(R, W, S) as float32 (R or S zeros where the machine has none)."""
        V, H = self.num_visible, self.num_hidden
        R = (
            tf.zeros([V, V])
            if self.visible_free is None
            else symmetric_zero_diagonal(tf.cast(self.visible_free, tf.float32))
        )
        S = (
            tf.zeros([H, H])
            if self.hidden_free is None
            else symmetric_zero_diagonal(tf.cast(self.hidden_free, tf.float32))
        )
        return R, tf.cast(self.kernel, tf.float32), S

    def biases(self) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(self.visible_bias, tf.float32), tf.cast(self.hidden_bias, tf.float32)

    def coupling(self, beta=1.0) -> tuple[tf.Tensor, tf.Tensor]:
        """(beta J, a) of E = -x'Jx/2 - a'x over x = (v, h): J = [[2R, W], [W', 2S]]."""
        R, W, S = self.interactions()
        top = tf.concat([2.0 * R, W], 1)
        bottom = tf.concat([tf.transpose(W), 2.0 * S], 1)
        return beta * tf.concat([top, bottom], 0), tf.concat(self.biases(), 0)

    def set_parameters(
        self,
        kernel=None,
        visible_bias=None,
        hidden_bias=None,
        visible_interactions=None,
        hidden_interactions=None,
    ) -> None:
        """Set W ``[V, H]``, b, c, R ``[V, V]``, S ``[H, H]`` (R, S symmetric, zero diagonal)."""
        for name, value, variable in (
            ("kernel", kernel, self.kernel),
            ("visible_bias", visible_bias, self.visible_bias),
            ("hidden_bias", hidden_bias, self.hidden_bias),
        ):
            if value is not None:
                value = np.asarray(value, np.float32)
                if value.shape != tuple(variable.shape):
                    raise ValueError(
                        f"{name} must have shape {tuple(variable.shape)}, got {value.shape}"
                    )
                variable.assign(value)
        for name, value, free in (
            ("visible_interactions", visible_interactions, self.visible_free),
            ("hidden_interactions", hidden_interactions, self.hidden_free),
        ):
            if value is None:
                continue
            value = np.asarray(value, np.float64)
            if free is None:
                if np.any(value):
                    raise ValueError(f"this machine was built with {name}=False")
                continue
            if value.shape != tuple(free.shape):
                raise ValueError(f"{name} must have shape {tuple(free.shape)}, got {value.shape}")
            if not np.allclose(value, value.T) or np.any(np.diag(value)):
                raise ValueError(f"{name} must be symmetric with zero diagonal")
            free.assign(np.triu(value, 1).astype("float32"))

    # ------------------------------------------------------------------ energies
    def energy(self, v, h) -> tf.Tensor:
        """E(v, h) = -v'Rv - v'Wh - h'Sh - b'v - c'h, ``[batch]``."""
        v, h = tf.cast(v, tf.float32), tf.cast(h, tf.float32)
        R, W, S = self.interactions()
        b, c = self.biases()
        vWh = tf.reduce_sum(tf.matmul(v, W) * h, -1)
        return -(
            _quadratic(v, R)
            + vWh
            + _quadratic(h, S)
            + tf.linalg.matvec(v, b)
            + tf.linalg.matvec(h, c)
        )

    def free_energy(self, v) -> tf.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)), ``[batch]``: closed form when S = 0, else by
        enumerating the 2^H hidden states (H <= ``MAX_ENUMERATED_HIDDEN``)."""
        v = tf.cast(v, tf.float32)
        R, W, S = self.interactions()
        b, c = self.biases()
        visible = _quadratic(v, R) + tf.linalg.matvec(v, b)
        pre = tf.matmul(v, W) + c  # (batch, H)
        if not self.hidden_interactions:
            return -visible - tf.reduce_sum(tf.math.softplus(pre), -1)
        if self.num_hidden > MAX_ENUMERATED_HIDDEN:
            raise ValueError(
                f"F(v) enumerates 2^{self.num_hidden} hidden states (limit "
                f"2^{MAX_ENUMERATED_HIDDEN}) when the hidden layer has lateral weights"
            )
        h = tf.cast(binary_configurations(self.num_hidden, 0, 2**self.num_hidden), tf.float32)
        log_f = tf.matmul(pre, h, transpose_b=True) + _quadratic(h, S)[None]  # (batch, 2^H)
        return -visible - tf.reduce_logsumexp(log_f, -1)

    def hidden_mean_field(self, v, num_steps: int | None = None) -> tf.Tensor:
        """mu, the fixed point of mu = sigmoid(c + W'v + 2 S mu) (``num_steps`` parallel
        iterations from mu = sigmoid(c + W'v); exact p(h_j = 1 | v) when S = 0), ``[batch, H]``."""
        R, W, S = self.interactions()
        pre = tf.matmul(tf.cast(v, tf.float32), W) + self.biases()[1]
        mu = tf.sigmoid(pre)
        if self.hidden_interactions:
            for _ in range(self.mean_field_steps if num_steps is None else num_steps):
                mu = tf.sigmoid(pre + 2.0 * tf.matmul(mu, S))
        return mu

    # ------------------------------------------------------------------ Gibbs sampling
    def gibbs_sweep(self, x, seed, beta=1.0) -> tf.Tensor:
        """One Gibbs sweep over x = (v, h) ``[batch, V + H]`` at inverse temperature beta."""
        coupling, bias = self.coupling(beta)
        V, N = self.num_visible, self.num_visible + self.num_hidden
        seeds = _split(seed, 2)
        for layer, (start, stop, lateral) in enumerate(
            ((V, N, self.hidden_interactions), (0, V, self.visible_interactions))
        ):
            if lateral or self.sampler == "sequential":
                x = sequential_sweep(x, coupling, bias, start, stop, seeds[layer])
            else:
                logits = bias[start:stop] + tf.matmul(x, coupling[:, start:stop])
                x = tf.concat(
                    [x[:, :start], bernoulli_logits(logits, seeds[layer]), x[:, stop:]], 1
                )
        return x

    def gibbs(self, x, num_steps, seed=None) -> tf.Tensor:
        """``num_steps`` Gibbs sweeps from the joint states x; no gradient flows through it."""
        seed = self._seed(seed)

        def chain(x, num_steps, seed):
            def body(step, x):
                return step + 1, self.gibbs_sweep(
                    x, tf.random.experimental.stateless_fold_in(seed, step)
                )

            return tf.while_loop(lambda step, _: step < num_steps, body, (tf.constant(0), x))[1]

        x = tf.cast(x, tf.float32)
        return tf.stop_gradient(in_graph(chain, x, tf.convert_to_tensor(num_steps), seed))

    def _base_sample(self, num_samples, seed) -> tf.Tensor:
        """Joint states of independent units, p(x_i = 1) = sigmoid(a_i) (J = 0)."""
        bias = self.coupling()[1]
        return bernoulli_logits(tf.tile(bias[None], [num_samples, 1]), seed)

    def sample(self, num_samples: int, seed=None, num_steps: int | None = None) -> tf.Tensor:
        """v after ``num_steps`` (default ``sample_steps``) sweeps from independent units."""
        seed_init, seed_chain = _split(self._seed(seed))
        num_steps = self.sample_steps if num_steps is None else num_steps
        x = self.gibbs(self._base_sample(num_samples, seed_init), num_steps, seed_chain)
        return x[:, : self.num_visible]

    # ------------------------------------------------------------------ training
    def reset_chains(self, seed=None) -> None:
        """Restart the persistent chains from independent units with the current biases."""
        self.chains.assign(self._base_sample(self.num_chains, self._seed(seed)))

    def _loss(self, v, chains):
        """mean E(v, mu) - mean E(chains): minus the gradient's mean-field estimate."""
        mu = tf.stop_gradient(self.hidden_mean_field(v))
        chains = tf.stop_gradient(chains)
        V = self.num_visible
        positive = tf.reduce_mean(self.energy(v, mu))
        loss = positive - tf.reduce_mean(self.energy(chains[:, :V], chains[:, V:]))
        R, W, _ = self.interactions()
        v_hat = tf.sigmoid(
            self.biases()[0] + 2.0 * tf.matmul(v, R) + tf.matmul(mu, W, transpose_b=True)
        )
        error = tf.reduce_mean(tf.reduce_sum(tf.square(v - v_hat), -1))
        return loss, {"loss": loss, "reconstruction_error": tf.stop_gradient(error)}

    def _chain_state(self):
        return tf.convert_to_tensor(self.chains)

    def _store_chains(self, state) -> None:
        self.chains.assign(state)

    # ------------------------------------------------------------------ partition function
    def _enumerated_units(self) -> int:
        """v when S = 0, h when R = 0 (the smaller if both), else all V + H units."""
        sizes = []
        if not self.hidden_interactions:
            sizes.append(self.num_visible)
        if not self.visible_interactions:
            sizes.append(self.num_hidden)
        return min(sizes) if sizes else self.num_visible + self.num_hidden

    def _enumeration(self):
        R, W, S = (tf.cast(t, tf.float64) for t in self.interactions())
        b, c = (tf.cast(t, tf.float64) for t in self.biases())
        n = self._enumerated_units()
        if not self.hidden_interactions and n == self.num_visible:
            return (
                lambda v: (
                    _quadratic(v, R)
                    + tf.linalg.matvec(v, b)
                    + tf.reduce_sum(tf.math.softplus(tf.matmul(v, W) + c), -1)
                ),
                0.0,
            )
        if not self.visible_interactions:
            return (
                lambda h: (
                    _quadratic(h, S)
                    + tf.linalg.matvec(h, c)
                    + tf.reduce_sum(tf.math.softplus(tf.matmul(h, W, transpose_b=True) + b), -1)
                ),
                0.0,
            )
        coupling, bias = (tf.cast(t, tf.float64) for t in self.coupling())
        return lambda x: 0.5 * _quadratic(x, coupling) + tf.linalg.matvec(x, bias), 0.0

    def _annealing(self, num_chains: int, seed):
        """AIS over x = (v, h) from J = 0 (log Z_0 = sum_i softplus(a_i)) through beta J;
        log f_beta(x) = beta x'Jx / 2 (the a'x term cancels in every ratio)."""
        coupling, bias = self.coupling()

        def log_unnormalized(x, beta):
            return 0.5 * beta * _quadratic(x, coupling)

        transition = lambda x, beta, seed: self.gibbs_sweep(x, seed, beta)
        initial = self._base_sample(num_chains, seed)
        return initial, tf.reduce_sum(tf.math.softplus(bias)), log_unnormalized, transition

    def get_config(self):
        return {
            **super().get_config(),
            "num_visible": self.num_visible,
            "num_hidden": self.num_hidden,
            "visible_interactions": self.visible_interactions,
            "hidden_interactions": self.hidden_interactions,
            "sampler": self.sampler,
            "gibbs_steps": self.gibbs_steps,
            "num_chains": self.num_chains,
            "mean_field_steps": self.mean_field_steps,
            "sample_steps": self.sample_steps,
            "ais_chains": self.ais_chains,
            "ais_betas": self.ais_betas,
            "weight_std": self.weight_std,
        }
