"""Sigmoid belief nets and the Helmholtz machine, trained by the wake-sleep algorithm.

A sigmoid belief net (Neal, 1992) is a directed model of binary layers h_0 = x, h_1, ..., h_L:

    p(h_L) = prod_j Bernoulli(h_Lj; sigmoid(a_j))
    p(h_l | h_{l+1}) = prod_j Bernoulli(h_lj; sigmoid(G_l h_{l+1} + g_l)_j),   l < L

The Helmholtz machine adds a recognition model, a sigmoid net running the other way,

    q(h_{l+1} | h_l) = prod_j Bernoulli(h_{l+1,j}; sigmoid(R_l h_l + r_l)_j),

and trains both with wake-sleep:

    wake:  h ~ q(h | x) for data x;     generative weights ascend  log p(x, h)
    sleep: (x, h) ~ p(x, h) (a dream);  recognition weights ascend log q(h | x)

Both phases use samples as fixed targets (no gradient through sampling), so they touch
disjoint parameters; one step minimizes ``wake + sleep`` = -log p(x, h_wake) -
log q(h_dream | x_dream). ``log_prob`` estimates log p(x) by importance sampling with q as
the proposal: log (1/S) sum_s p(x, h^s) / q(h^s | x).

**Score-function training** ascends the ELBO E_q[l(x, h)], l = log p(x, h) - log q(h | x),
itself. The generative gradient is E_q[d log p(x, h)]; the recognition gradient is the
score-function (REINFORCE) estimate E_q[l(x, h) d log q(h | x)] (E_q[d log q] = 0).

- ``training="reinforce"``: l d log q with one sample, no control variate.
- ``training="nvil"`` (Mnih & Gregor, 2014): (l - c - b(x)) / max(1, s) d log q, with an
  input-dependent baseline b(x) (an MLP trained to minimize E[(l - c - b(x))^2]), the
  running mean c of l - b(x) (centering) and the running standard deviation s of l - c -
  b(x) (variance normalization; both exponential moving averages, ``nvil_decay``).
  Subtracting anything that does not depend on h leaves the estimate unbiased; dividing
  by s rescales it.
- ``training="vimco"`` (Mnih & Rezende, 2016): K = ``num_samples`` samples h_k ~ q, the
  bound L = log (1/K) sum_k w_k, w_k = p(x, h_k) / q(h_k | x), and the gradient
  sum_k (L - L_-k) d log q(h_k | x) + sum_k w~_k d log w_k, where w~ are the normalized
  weights and L_-k replaces w_k by the geometric mean of the others.

Each is one gradient step on a surrogate loss whose gradient is that estimate (the states
and the learning signals held fixed); ``loss`` reports -ELBO (-L for VIMCO).

References:
    Neal, Connectionist learning of belief networks, Artificial Intelligence 1992.
    Dayan, Hinton, Neal & Zemel, The Helmholtz machine, Neural Computation 1995.
    Hinton, Dayan, Frey & Neal, The wake-sleep algorithm for unsupervised neural
    networks, Science 1995.
    Williams, Simple statistical gradient-following algorithms for connectionist
    reinforcement learning, Machine Learning 1992 (REINFORCE).
    Mnih & Gregor, Neural variational inference and learning in belief networks, ICML 2014.
    Mnih & Rezende, Variational inference for Monte Carlo objectives, ICML 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.estimators import chunked_log_mean_exp

tfd = tfp.distributions

TRAININGS = ("wake_sleep", "nvil", "reinforce", "vimco")


def _bernoulli(logits) -> tfd.Distribution:
    return tfd.Independent(tfd.Bernoulli(logits=tf.cast(logits, tf.float32), dtype=tf.float32), 1)


def _bernoulli_log_prob(logits, h) -> tf.Tensor:
    """log prod_j Bernoulli(h_j; sigmoid(logits_j)) = -sum_j BCE(h_j, logits_j), ``[batch]``:
    ``_bernoulli(logits).log_prob(h)`` with one log1p(exp) per unit where TFP's takes two
    softplus terms and two products (the training step's largest elementwise cost)."""
    h = tf.cast(h, tf.float32)
    logits = tf.broadcast_to(tf.cast(logits, tf.float32), tf.shape(h))  # the prior: one row
    return -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=h, logits=logits), -1)


@registry.register(
    "helmholtz",
    family="latent-variable",
    datasets=("digits", "mnist", "fashion-mnist", "mnist5k"),
    training=dict(epochs=200, batch_size=32),
    hparams=dict(hidden_sizes=(64, 32)),
    tiny=dict(hidden_sizes=(8, 4), log_prob_samples=20),
    variants={
        "one_layer": dict(hidden_sizes=(8,)),
        "nvil": dict(training="nvil"),
        "reinforce": dict(training="reinforce"),
        "vimco": dict(training="vimco", num_samples=3),
    },
    description="Helmholtz machine: sigmoid belief net + recognition model (wake-sleep)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class HelmholtzMachine(GenerativeModel):
    """A sigmoid belief net with a recognition model, trained by wake-sleep.

    Args:
        layer_sizes: ``[V, H_1, ..., H_L]``, data first, top layer last (L >= 1).
        log_prob_samples: default number S of importance samples of ``log_prob``.
        training: ``"wake_sleep"``, ``"nvil"``, ``"reinforce"`` or ``"vimco"`` (module
            docstring).
        num_samples: K, samples per example of ``"vimco"`` (>= 2).
        baseline_units: hidden units of NVIL's baseline MLP b(x).
        nvil_decay: decay of NVIL's moving averages of the signal's mean and variance.
        seed: seed of the model's random stream.

    >>> hm = HelmholtzMachine([3, 2], seed=0)
    >>> hm.sample(4, seed=(1, 2)).shape
    TensorShape([4, 3])
    """

    density = "estimate"  # importance-sampled log p(x)

    metric_names = ("loss", "wake", "sleep")

    def __init__(
        self,
        layer_sizes: Sequence[int],
        log_prob_samples: int = 1000,
        training: str = "wake_sleep",
        num_samples: int = 5,
        baseline_units: int = 100,
        nvil_decay: float = 0.8,
        seed: int | None = None,
        **kwargs,
    ):
        layer_sizes = [int(n) for n in layer_sizes]
        if len(layer_sizes) < 2:
            raise ValueError(f"layer_sizes needs data and >= 1 hidden layer, got {layer_sizes}")
        if training not in TRAININGS:
            raise ValueError(f"training must be one of {TRAININGS}, got {training!r}")
        if training == "vimco" and int(num_samples) < 2:
            raise ValueError(f"vimco needs num_samples >= 2, got {num_samples}")
        super().__init__((layer_sizes[0],), support="binary", seed=seed, **kwargs)
        self.layer_sizes = layer_sizes
        self.log_prob_samples = int(log_prob_samples)
        self.training = training
        self.num_samples = int(num_samples)
        self.baseline_units = int(baseline_units)
        self.nvil_decay = float(nvil_decay)
        if training != "wake_sleep":
            self.metric_names = ("loss", "baseline_loss") if training == "nvil" else ("loss",)
            self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]
        num_layers = len(layer_sizes) - 1
        init = lambda i: keras.initializers.GlorotUniform(seed=None if seed is None else seed + i)
        # generative[l]: h_{l+1} -> logits of h_l;  recognition[l]: h_l -> logits of h_{l+1}
        self.generative = [
            keras.layers.Dense(layer_sizes[i], kernel_initializer=init(i), name=f"generative_{i}")
            for i in range(num_layers)
        ]
        self.recognition = [
            keras.layers.Dense(
                layer_sizes[i + 1], kernel_initializer=init(100 + i), name=f"recognition_{i}"
            )
            for i in range(num_layers)
        ]
        if training == "nvil":  # the input-dependent baseline b(x)
            self.baseline = [
                keras.layers.Dense(self.baseline_units, activation="tanh", name="baseline_0"),
                keras.layers.Dense(1, name="baseline_1"),
            ]
        self.build()

    @classmethod
    def for_dataset(cls, dataset, hidden_sizes: Sequence[int] = (64, 32), **hparams):
        """A Helmholtz machine ``[V, *hidden_sizes]`` for binary ``dataset``; the bottom
        generative biases start at the data's log-odds."""
        if dataset.support != "binary":
            raise ValueError("the Helmholtz machine models binary data")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        model = cls([x.shape[1], *hidden_sizes], **hparams)
        p = np.clip(x.mean(0), 0.01, 0.99)
        model.generative[0].bias.assign(np.log(p / (1 - p)).astype("float32"))
        return model

    def _build(self):
        sizes = self.layer_sizes
        for i, (gen, rec) in enumerate(zip(self.generative, self.recognition)):
            gen.build((None, sizes[i + 1]))
            rec.build((None, sizes[i]))
        self.prior_logits = self.add_weight(
            shape=(sizes[-1],), initializer="zeros", autocast=False, name="prior_logits"
        )
        if self.training == "nvil":
            self.baseline[0].build((None, sizes[0]))
            self.baseline[1].build((None, self.baseline_units))
            # moving mean c and variance s^2 of the learning signal (first replica's kept)
            self.signal_moments = self.add_weight(
                shape=(2,),
                initializer=keras.initializers.Constant([0.0, 1.0]),
                trainable=False,
                autocast=False,
                aggregation="only_first_replica",
                name="signal_moments",
            )

    # ------------------------------------------------------------------ the model
    def prior(self) -> tfd.Distribution:
        """p(h_L) = prod_j Bernoulli(sigmoid(a_j))."""
        return _bernoulli(self.prior_logits)

    def generative_conditional(self, layer: int, h_above) -> tfd.Distribution:
        """p(h_layer | h_{layer+1}) = prod_j Bernoulli(sigmoid(G h_{layer+1} + g)_j)."""
        return _bernoulli(self.generative[layer](h_above))

    def recognition_conditional(self, layer: int, h_below) -> tfd.Distribution:
        """q(h_{layer+1} | h_layer) = prod_j Bernoulli(sigmoid(R h_layer + r)_j)."""
        return _bernoulli(self.recognition[layer](h_below))

    def recognize(self, x, seed=None) -> tuple[list[tf.Tensor], tf.Tensor]:
        """[x, h_1, ..., h_L] with h ~ q(h | x), and log q(h | x) ``[batch]``."""
        seeds = tf.unstack(
            tf.random.experimental.stateless_split(self._seed(seed), len(self.recognition))
        )
        layers, log_q = [tf.cast(x, tf.float32)], 0.0
        for i in range(len(self.recognition)):
            logits = self.recognition[i](layers[-1])
            layers.append(tf.stop_gradient(_bernoulli(logits).sample(seed=seeds[i])))
            log_q += _bernoulli_log_prob(logits, layers[-1])
        return layers, log_q

    def dream(self, num_samples, seed=None) -> list[tf.Tensor]:
        """[h_0, ..., h_L] sampled from the generative model, top down (a "dream")."""
        num = len(self.generative)
        seeds = tf.unstack(tf.random.experimental.stateless_split(self._seed(seed), num + 1))
        layers = [self.prior().sample(num_samples, seed=seeds[-1])]
        for i in reversed(range(num)):
            layers.insert(0, self.generative_conditional(i, layers[0]).sample(seed=seeds[i]))
        return [tf.stop_gradient(h) for h in layers]

    def log_joint(self, layers) -> tf.Tensor:
        """log p(h_0, ..., h_L) = log p(h_L) + sum_l log p(h_l | h_{l+1}), ``[batch]``."""
        log_p = _bernoulli_log_prob(self.prior_logits, layers[-1])
        for i in range(len(self.generative)):
            log_p += _bernoulli_log_prob(self.generative[i](layers[i + 1]), layers[i])
        return log_p

    def log_recognition(self, layers) -> tf.Tensor:
        """log q(h_1, ..., h_L | h_0) = sum_l log q(h_{l+1} | h_l), ``[batch]``."""
        log_q = 0.0
        for i in range(len(self.recognition)):
            log_q += _bernoulli_log_prob(self.recognition[i](layers[i]), layers[i + 1])
        return log_q

    def objective(self, x, training=False):
        """wake = -mean log p(x, h), h ~ q(h|x); sleep = -mean log q(h | x), (x, h) ~ p
        (wake-sleep); -ELBO or -L (VIMCO) for the score-function methods."""
        if self.training != "wake_sleep":
            return self._score_function(x, self._seed())[1]
        seed_wake, seed_sleep = tf.unstack(tf.random.experimental.stateless_split(self._seed(), 2))
        awake, _ = self.recognize(x, seed_wake)
        wake = -tf.reduce_mean(self.log_joint(awake))
        dreams = self.dream(tf.shape(x)[0], seed_sleep)
        sleep = -tf.reduce_mean(self.log_recognition(dreams))
        return {"loss": wake + sleep, "wake": wake, "sleep": sleep}

    # ------------------------------------------------------------------ score functions
    def baseline_value(self, x) -> tf.Tensor:
        """NVIL's input-dependent baseline b(x), ``[batch]``."""
        return tf.cast(self.baseline[1](self.baseline[0](tf.cast(x, tf.float32))), tf.float32)[:, 0]

    def learning_signal(self, x, seed=None):
        """(l = log p(x, h) - log q(h | x), log p(x, h), log q(h | x)) for h ~ q, ``[batch]``
        each; gradients flow into log p and log q (not through the samples)."""
        layers, log_q = self.recognize(x, seed)
        log_p = self.log_joint(layers)
        return log_p - log_q, log_p, log_q

    def score_function_surrogate(self, x, seed=None):
        """(surrogate loss, metrics): the surrogate's gradient is the ``training`` estimator
        of minus the ELBO's (VIMCO: the K-sample bound's) gradient (module docstring)."""
        return self._score_function(x, seed)[:2]

    def _score_function(self, x, seed):
        """(surrogate, metrics, l - b(x) for NVIL's moving averages or None)."""
        x = tf.cast(x, tf.float32)
        if self.training == "vimco":
            return (*self._vimco_surrogate(x, seed), None)
        signal, log_p, log_q = self.learning_signal(x, seed)
        elbo = tf.reduce_mean(tf.stop_gradient(signal))
        metrics = {"loss": -elbo}
        advantage = tf.stop_gradient(signal)
        baseline_loss, residual = 0.0, None
        if self.training == "nvil":
            mean, variance = tf.unstack(tf.convert_to_tensor(self.signal_moments))
            baseline = self.baseline_value(x)
            residual = tf.stop_gradient(advantage - baseline)
            centered = residual - mean
            baseline_loss = tf.reduce_mean(tf.square(tf.stop_gradient(advantage - mean) - baseline))
            advantage = tf.stop_gradient(centered / tf.maximum(1.0, tf.sqrt(variance)))
            metrics["baseline_loss"] = tf.stop_gradient(baseline_loss)
        surrogate = -tf.reduce_mean(log_p + advantage * log_q) + baseline_loss
        return surrogate, metrics, residual

    def _vimco_surrogate(self, x, seed):
        k, batch = self.num_samples, tf.shape(x)[0]
        tiled = tf.reshape(tf.tile(x[None], [k, 1, 1]), [k * batch, self.layer_sizes[0]])
        log_w, _, log_q = (tf.reshape(t, [k, batch]) for t in self.learning_signal(tiled, seed))
        bound = tf.reduce_logsumexp(log_w, 0) - np.log(k)  # L, (batch,)
        fixed = tf.stop_gradient(log_w)
        # L_-k: w_k replaced by the geometric mean of the other K - 1 weights
        others = (tf.reduce_sum(fixed, 0, keepdims=True) - fixed) / (k - 1)
        eye = tf.eye(k, dtype=fixed.dtype)[:, :, None]  # (k, k, 1): row j replaces sample j
        replaced = fixed[None] * (1 - eye) + others[:, None] * eye  # (j, k, batch)
        leave_out = tf.reduce_logsumexp(replaced, 1) - np.log(k)  # (k, batch)
        signal = tf.stop_gradient(bound[None] - leave_out)
        surrogate = -tf.reduce_mean(bound + tf.reduce_sum(signal * log_q, 0))
        return surrogate, {"loss": -tf.reduce_mean(tf.stop_gradient(bound))}

    def training_update(self, x, labels=None) -> dict:
        """Wake-sleep (the default gradient step on ``objective``), or one step on the
        score-function surrogate (then NVIL's moving averages are updated)."""
        if self.training == "wake_sleep":
            return super().training_update(x, labels)
        optimizer = self.optimizer_for("model")
        seed = self._seed()
        with tf.GradientTape() as tape:
            surrogate, metrics, residual = self._score_function(x, seed)
            scaled = self._scaled(surrogate, optimizer)
        self._minimize(scaled, self.trainable_variables, optimizer, tape)
        if residual is not None:  # NVIL: c, s^2 <- moving averages of l - b(x)
            mean, variance = tf.unstack(tf.convert_to_tensor(self.signal_moments))
            decay = self.nvil_decay
            new_mean = decay * mean + (1 - decay) * tf.reduce_mean(residual)
            new_var = decay * variance + (1 - decay) * tf.reduce_mean(
                tf.square(residual - new_mean)
            )
            self.signal_moments.assign(tf.stack([new_mean, new_var]))
        return metrics

    # ------------------------------------------------------------------ contract

    def log_prob(self, x, num_samples: int | None = None, seed=None, chunk: int = 100):
        """log p(x) ~= log (1/S) sum_s p(x, h^s) / q(h^s | x), h^s ~ q(h | x), ``[batch]``.

        An unbiased estimate of p(x) (so a stochastic lower bound on log p(x)) that tightens
        as S (default ``log_prob_samples``) grows; samples are drawn ``chunk`` at a time.
        """
        x = self._prepare(x)
        batch = tf.shape(x)[0]

        def draw(k, seed):  # log p(x, h) - log q(h | x), (k, batch)
            tiled = tf.reshape(tf.tile(x[None], [k, 1, 1]), [k * batch, self.layer_sizes[0]])
            layers, log_q = self.recognize(tiled, seed)
            return tf.reshape(self.log_joint(layers) - log_q, [k, batch])

        num_samples = int(num_samples or self.log_prob_samples)
        return chunked_log_mean_exp(draw, num_samples, self._seed(seed), chunk)

    def sample(self, num_samples: int, seed=None) -> tf.Tensor:
        """x ~ p(x) by ancestral sampling, float32 ``[num_samples, V]``."""
        return self.dream(num_samples, seed)[0]

    def summary_metrics(self, dataset) -> dict:
        """Importance-sampled test log-likelihood (S = ``log_prob_samples``)."""
        x = dataset.x_test.reshape(len(dataset.x_test), -1)
        return {"test_log_likelihood": float(tf.reduce_mean(self.log_prob(x, seed=(0, 0))))}

    def export_endpoints(self):
        spec = tf.TensorSpec([None, self.layer_sizes[0]], tf.float32, name="x")
        endpoints = super().export_endpoints()
        endpoints["log_prob"] = (
            lambda x: self.log_prob(x, num_samples=min(self.log_prob_samples, 100), seed=(0, 0)),
            [spec],
        )
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "layer_sizes": self.layer_sizes,
            "log_prob_samples": self.log_prob_samples,
            "training": self.training,
            "num_samples": self.num_samples,
            "baseline_units": self.baseline_units,
            "nvil_decay": self.nvil_decay,
        }
