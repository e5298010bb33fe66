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

References:
    Neal, Connectionist learning of belief networks, Artificial Intelligence 1992.
    Dayan, Hinton, Neal & Zemel, The Helmholtz machine, Neural Computation 1995.
    Hinton, Dayan, Frey & Neal, The wake-sleep algorithm for unsupervised neural
    networks, Science 1995.
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


def _bernoulli(logits) -> tfd.Distribution:
    return tfd.Independent(tfd.Bernoulli(logits=tf.cast(logits, tf.float32), dtype=tf.float32), 1)


@registry.register(
    "helmholtz",
    family="latent-variable",
    datasets=("digits", "mnist", "fashion-mnist"),
    training=dict(epochs=200, batch_size=32),
    hparams=dict(hidden_sizes=(64, 32)),
    tiny=dict(hidden_sizes=(8, 4), log_prob_samples=20),
    variants={"one_layer": dict(hidden_sizes=(8,))},
    description="Helmholtz machine: sigmoid belief net + recognition model (wake-sleep)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class HelmholtzMachine(GenerativeModel):
    """A sigmoid belief net with a recognition model, trained by wake-sleep.

    Args:
        layer_sizes: ``[V, H_1, ..., H_L]``, data first, top layer last (L >= 1).
        log_prob_samples: default number S of importance samples of ``log_prob``.
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
        seed: int | None = None,
        **kwargs,
    ):
        layer_sizes = [int(n) for n in layer_sizes]
        if len(layer_sizes) < 2:
            raise ValueError(f"layer_sizes needs data and >= 1 hidden layer, got {layer_sizes}")
        super().__init__((layer_sizes[0],), support="binary", seed=seed, **kwargs)
        self.layer_sizes = layer_sizes
        self.log_prob_samples = int(log_prob_samples)
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
            q = self.recognition_conditional(i, layers[-1])
            layers.append(tf.stop_gradient(q.sample(seed=seeds[i])))
            log_q += q.log_prob(layers[-1])
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
        log_p = self.prior().log_prob(layers[-1])
        for i in range(len(self.generative)):
            log_p += self.generative_conditional(i, layers[i + 1]).log_prob(layers[i])
        return log_p

    def log_recognition(self, layers) -> tf.Tensor:
        """log q(h_1, ..., h_L | h_0) = sum_l log q(h_{l+1} | h_l), ``[batch]``."""
        log_q = 0.0
        for i in range(len(self.recognition)):
            log_q += self.recognition_conditional(i, layers[i]).log_prob(layers[i + 1])
        return log_q

    def objective(self, x, training=False):
        """wake = -mean log p(x, h), h ~ q(h|x); sleep = -mean log q(h | x), (x, h) ~ p."""
        seed_wake, seed_sleep = tf.unstack(tf.random.experimental.stateless_split(self._seed(), 2))
        awake, _ = self.recognize(x, seed_wake)
        wake = -tf.reduce_mean(self.log_joint(awake))
        dreams = self.dream(tf.shape(x)[0], seed_sleep)
        sleep = -tf.reduce_mean(self.log_recognition(dreams))
        return {"loss": wake + sleep, "wake": wake, "sleep": sleep}

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
        }
