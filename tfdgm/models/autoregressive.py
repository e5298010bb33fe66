"""Autoregressive models of discrete data: Markov (finite window), recurrent, and MADE.

The chain rule factorizes any distribution over x = (x_1, ..., x_D), x_i in {0..K-1}:

    p(x) = prod_i p(x_i | x_<i),    p(x_i | x_<i) = Categorical(x_i; softmax(l_i(x_<i))).

The three models differ in how the logits l_i see the past:

- ``MarkovAutoregressive``: an MLP on the one-hot window x_{i-d..i-1} (zeros before the
  start) and a one-hot of the position i; one network shared by all positions, so the
  parameter count does not grow with D (an order-d Markov chain with position-dependent
  transitions).
- ``RNNAutoregressive``: a GRU or LSTM reads the sequence shifted by one (a start token,
  then x_1..x_{D-1}); its state summarizes the whole history.
- ``MADE``: one masked MLP outputs all D conditionals at once (Germain et al., 2015);
  masks enforce that l_i depends only on x_j with order_j < order_i. With
  ``num_classes=K`` it is class-conditional, p(x | y) = prod_i p(x_i | x_<i, y): the
  one-hot y enters every masked layer unmasked, so l_i(x_<i, y) and log p(x | y) stays
  exact.

All three are trained by teacher forcing: log p(x) of a whole batch in one pass, loss the
mean negative log-likelihood in nats per example. Sampling is sequential (D network steps).

References:
    Bengio & Bengio, Modeling high-dimensional discrete data with multi-layer neural
    networks, NeurIPS 1999.
    Larochelle & Murray, The Neural Autoregressive Distribution Estimator, AISTATS 2011.
    Graves, Generating Sequences With Recurrent Neural Networks, arXiv:1308.0850, 2013.
    Uria, Murray & Larochelle, A Deep and Tractable Density Estimator, ICML 2014.
    Germain, Gregor, Murray & Larochelle, MADE: Masked Autoencoder for Distribution
    Estimation, ICML 2015.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import heads, nets, registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.data import EventSpec
from tfdgm.estimators import log_mean_exp

tfd = tfp.distributions


_DATASETS = ("digits", "digits-categorical", "digits-crop8", "mnist", "fashion-mnist", "mnist5k")


class AutoregressiveModel(GenerativeModel):
    """Base of the autoregressive models: p(x) = prod_i Categorical(x_i; softmax(l_i(x_<i))).

    Subclasses implement ``logits_from_one_hot(one_hot)`` (``[batch, D, K]`` one-hot inputs
    to ``[batch, D, K]`` logits, l_i a function of one_hot[:, :i] only) and may override
    ``sample`` with a cheaper sequential step.
    """

    density = "exact"

    def __init__(self, event_shape, num_categories: int = 2, seed=None, **kwargs):
        num_categories = int(num_categories)
        super().__init__(
            event_shape,
            support="binary" if num_categories == 2 else "categorical",
            num_categories=num_categories,
            seed=seed,
            **kwargs,
        )

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        """The model for ``dataset``'s event shape and number of categories."""
        return cls(
            event_shape=dataset.event_shape, num_categories=dataset.num_categories, **hparams
        )

    def _build(self):
        labels = None if getattr(self, "num_classes", None) is None else tf.zeros([1], tf.int32)
        self._logits(tf.zeros([1, self.event_size, self.num_categories]), labels)

    def _logits(self, one_hot, labels=None):
        """``logits_from_one_hot``, with the labels of a conditional model."""
        if labels is None:
            return self.logits_from_one_hot(one_hot)
        return self.logits_from_one_hot(one_hot, labels=labels)

    # ------------------------------------------------------------------ the model
    def logits_from_one_hot(self, one_hot: tf.Tensor) -> tf.Tensor:
        """Logits l_i(x_<i) of every conditional, ``[batch, D, K]``, from one-hot x."""
        raise NotImplementedError

    def one_hot(self, x) -> tf.Tensor:
        """x (levels, ``[batch, *event_shape]``) as one-hot ``[batch, D, K]`` float32."""
        levels = tf.reshape(tf.cast(x, tf.int32), [-1, self.event_size])
        return tf.one_hot(levels, self.num_categories)

    def conditional_logits(self, x, labels=None) -> tf.Tensor:
        """Teacher-forced logits of p(x_i | x_<i) (p(x_i | x_<i, y) given ``labels``) for
        every i, float32 ``[batch, D, K]``."""
        return tf.cast(self._logits(self.one_hot(x), labels), tf.float32)

    def conditionals(self, x, labels=None) -> tfd.Distribution:
        """prod_i p(x_i | x_<i) with the past taken from ``x``, as a TFP distribution."""
        logits = self.conditional_logits(x, labels)
        flat = tf.reshape(logits, [-1, self.event_size * self.num_categories])
        return heads.categorical(flat, self.event_shape, self.num_categories)

    def log_prob(self, x, labels=None, **kwargs):
        """log p(x) = sum_i log p(x_i | x_<i) (exact), float32 ``[batch]``; a conditional
        model's log p(x | y) for ``labels`` y ``[batch]``."""
        x, labels = self._prepare(x), nets.class_labels(self, labels)
        return self.conditionals(x, labels).log_prob(x)

    def example_objective(self, x, training=False, labels=None):
        return {"loss": -self.conditionals(x, labels).log_prob(x)}  # -log p(x), [batch]

    # ------------------------------------------------------------------ sampling
    def sampling_order(self) -> list[int]:
        """Dimensions in the order they are sampled (0-based)."""
        return list(range(self.event_size))

    def _draw(self, logits, seed, step: int) -> tf.Tensor:
        """x_i ~ Categorical(logits) as int32 ``[n]`` with the step's stateless seed."""
        step_seed = tf.random.experimental.stateless_fold_in(seed, step)
        return tfd.Categorical(logits=tf.cast(logits, tf.float32), dtype=tf.int32).sample(
            seed=step_seed
        )

    def _finish(self, levels) -> tf.Tensor:
        return tf.reshape(tf.cast(levels, tf.float32), [-1, *self.event_shape])

    def sample(self, num_samples: int, seed=None, labels=None):
        """Ancestral sampling x_i ~ p(x_i | x_<i), one dimension after the other.

        A ``tf.while_loop`` over the D dimensions; called eagerly it runs as a compiled
        ``tf.function`` (traced once per model and sampling order). A conditional model
        draws x ~ p(x | y) for ``labels`` y (one for all, or one per sample), or for labels
        drawn uniformly when none are given.
        """
        seed = self._seed(seed)
        labels = nets.class_labels(self, labels, num_samples, tf.reverse(seed, [0]))
        args = () if labels is None else (labels,)
        if tf.executing_eagerly():
            return _compiled_sampler(self)(tf.constant(num_samples, tf.int32), seed, *args)
        return self._sample(num_samples, seed, *args)

    def _sample(self, num_samples, seed, labels=None) -> tf.Tensor:
        """Generic sampler: D passes of the whole network, in ``sampling_order``."""
        depth = self.event_size
        order = tf.constant(self.sampling_order(), tf.int32)

        def body(step, levels):
            i = order[step]
            logits = self._logits(tf.one_hot(levels, self.num_categories), labels)
            value = self._draw(tf.gather(logits, i, axis=1), seed, step)
            return step + 1, levels + tf.one_hot(i, depth, dtype=tf.int32) * value[:, None]

        levels = tf.zeros([num_samples, depth], tf.int32)
        _, levels = tf.while_loop(lambda step, _: step < depth, body, (tf.constant(0), levels))
        return self._finish(levels)

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "num_categories": self.num_categories,
        }


# Compiled samplers, kept outside the models so that saving and export never see them.
_SAMPLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled_sampler(model: AutoregressiveModel):
    """``tf.function`` of ``model._sample`` for its current sampling order (cached)."""
    cache = _SAMPLERS.setdefault(model, {})
    key = tuple(model.sampling_order())
    if key not in cache:
        ref = weakref.ref(model)
        cache[key] = tf.function(lambda n, seed, *y: ref()._sample(n, seed, *y), autograph=False)
    return cache[key]


# ====================================================================== Markov
@registry.register(
    "markov",
    family="autoregressive",
    datasets=_DATASETS,
    training=dict(epochs=100, batch_size=64),
    hparams=dict(window=16, hidden_units=(256,)),
    tiny=dict(window=2, hidden_units=(8,)),
    # an epoch of mnist5k is ~30 s of CPU: 100 would take 50 min (docs/mnist5k.md)
    dataset_defaults={"mnist5k": dict(epochs=20)},
    variants={"categorical": dict(dataset="digits-categorical")},
    description="order-d Markov autoregressive model (shared MLP on a one-hot window)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class MarkovAutoregressive(AutoregressiveModel):
    """Order-d autoregressive model: l_i = MLP([onehot(x_{i-d}), ..., onehot(x_{i-1}), e_i]).

    Window entries before the start of the sequence are all-zero vectors (distinct from
    every one-hot level); e_i is the one-hot of the position. The MLP is shared across
    positions: (d K + D) h_1 + ... + h_L K weights, independent of D except for e_i.

    Args:
        event_shape: shape of one event (D = its size, in row-major order).
        num_categories: K.
        window: d, how many previous values each conditional sees.
        hidden_units: widths of the MLP.
        position: add the position one-hot e_i (else the conditionals are stationary).

    >>> MarkovAutoregressive((5,), window=2, hidden_units=(8,)).log_prob(np.zeros((3, 5))).shape
    TensorShape([3])
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_categories: int = 2,
        window: int = 8,
        hidden_units: Sequence[int] = (128,),
        position: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, seed, **kwargs)
        if int(window) < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.position = bool(position)
        self.network = nets.MLP(self.hidden_units, self.num_categories, name="network")
        self.build()

    def _features(self, window_one_hot, position_one_hot):
        """[..., d, K] window and [..., D] position -> MLP inputs [..., d K (+ D)]."""
        shape = tf.concat([tf.shape(window_one_hot)[:-2], [self.window * self.num_categories]], 0)
        flat = tf.reshape(window_one_hot, shape)
        return tf.concat([flat, position_one_hot], -1) if self.position else flat

    def logits_from_one_hot(self, one_hot):
        depth, batch = self.event_size, tf.shape(one_hot)[0]
        padded = tf.pad(one_hot, [[0, 0], [self.window, 0], [0, 0]])  # (batch, d + D, K)
        # window[:, i, j] = x_{i - d + j}: position i sees the d values before it
        window = tf.stack([padded[:, j : j + depth] for j in range(self.window)], axis=2)
        positions = tf.broadcast_to(tf.eye(depth), [batch, depth, depth])
        return self.network(self._features(window, tf.cast(positions, one_hot.dtype)))

    def _sample(self, num_samples, seed):
        """x_i ~ p(x_i | x_{i-d..i-1}): D evaluations of the MLP on one position each."""
        depth, width = self.event_size, self.window + self.event_size

        def body(i, history):
            window = tf.one_hot(
                tf.gather(history, i + tf.range(self.window), axis=1), self.num_categories
            )
            position = tf.broadcast_to(tf.one_hot(i, depth), [num_samples, depth])
            value = self._draw(self.network(self._features(window, position)), seed, i)
            slot = tf.one_hot(self.window + i, width, dtype=tf.int32)
            return i + 1, history + slot * (value[:, None] + 1)  # -1 -> value

        # -1 marks "before the start": tf.one_hot maps it to the zero vector.
        history = tf.fill([num_samples, width], -1)
        _, history = tf.while_loop(lambda i, _: i < depth, body, (tf.constant(0), history))
        return self._finish(history[:, self.window :])

    @property
    def num_parameters(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.trainable_variables))

    def get_config(self):
        return {
            **super().get_config(),
            "window": self.window,
            "hidden_units": self.hidden_units,
            "position": self.position,
        }


# ====================================================================== RNN
@registry.register(
    "rnn",
    family="autoregressive",
    datasets=_DATASETS,
    training=dict(epochs=30, batch_size=64),
    hparams=dict(units=128),
    tiny=dict(units=8),
    variants={"lstm": dict(cell="lstm")},
    description="recurrent (GRU/LSTM) autoregressive model",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class RNNAutoregressive(AutoregressiveModel):
    """Recurrent autoregressive model: h_i = cell(h_{i-1}, onehot(x_{i-1})), l_i = W h_i + b.

    The input at step 1 is a start token (an extra, K+1-th category), so l_1 sees nothing
    and l_i sees x_1..x_{i-1} through the state. Sampling steps the cell once per dimension.

    Args:
        event_shape: shape of one event (D = its size, in row-major order).
        num_categories: K.
        cell: ``"gru"`` or ``"lstm"``.
        units: width of the recurrent state.

    >>> RNNAutoregressive((5,), units=8).log_prob(np.zeros((3, 5))).shape
    TensorShape([3])
    """

    default_learning_rate = 1e-2

    def __init__(
        self,
        event_shape: Sequence[int],
        num_categories: int = 2,
        cell: str = "gru",
        units: int = 128,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, seed, **kwargs)
        if cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {cell!r}")
        self.cell = cell
        self.units = int(units)
        layer = keras.layers.GRU if cell == "gru" else keras.layers.LSTM
        self.rnn = layer(self.units, return_sequences=True, name="rnn")
        self.readout = keras.layers.Dense(self.num_categories, name="readout")
        self.build()

    def _inputs(self, one_hot):
        """[start, x_1, ..., x_{D-1}] as one-hot over K + 1 symbols, ``[batch, D, K + 1]``."""
        batch = tf.shape(one_hot)[0]
        shifted = tf.pad(one_hot[:, :-1], [[0, 0], [0, 0], [0, 1]])  # K + 1 channels
        start = tf.one_hot(tf.fill([batch, 1], self.num_categories), self.num_categories + 1)
        return tf.concat([tf.cast(start, shifted.dtype), shifted], axis=1)

    def logits_from_one_hot(self, one_hot):
        return self.readout(self.rnn(self._inputs(one_hot)))

    def _sample(self, num_samples, seed):
        """x_i ~ p(x_i | state): D steps of the recurrent cell."""
        cell, depth = self.rnn.cell, self.event_size
        sizes = cell.state_size if isinstance(cell.state_size, list) else [cell.state_size]

        def body(i, token, levels, *states):
            h, states = cell(tf.one_hot(token, self.num_categories + 1), list(states))
            states = states if isinstance(states, (list, tuple)) else [states]
            value = self._draw(self.readout(h), seed, i)
            levels = levels + tf.one_hot(i, depth, dtype=tf.int32) * value[:, None]
            return (i + 1, value, levels, *states)

        start = tf.fill([num_samples], self.num_categories)  # the start token
        levels = tf.zeros([num_samples, depth], tf.int32)
        states = [tf.zeros([num_samples, size], cell.compute_dtype) for size in sizes]
        loop = tf.while_loop(
            lambda i, *_: i < depth, body, (tf.constant(0), start, levels, *states)
        )
        return self._finish(loop[2])

    def default_optimizer(self, group, learning_rate):
        """Adam with the gradient clipped to global norm 1, the usual guard for recurrent nets
        (without it, loss spikes appeared on the digits at learning rate 3e-3)."""
        return keras.optimizers.Adam(learning_rate, global_clipnorm=1.0)

    @property
    def num_parameters(self) -> int:
        return int(sum(np.prod(v.shape) for v in self.trainable_variables))

    def get_config(self):
        return {**super().get_config(), "cell": self.cell, "units": self.units}


# ====================================================================== MADE
@registry.register(
    "made",
    family="autoregressive",
    datasets=_DATASETS,
    training=dict(epochs=60, batch_size=64),
    hparams=dict(hidden_units=(512, 512)),
    tiny=dict(hidden_units=(16,)),
    variants={
        "order-agnostic": dict(order_agnostic=True, num_orders=2),
        "conditional": dict(num_classes=10),  # the digit classes
    },
    description="MADE: masked autoencoder for distribution estimation",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class MADE(AutoregressiveModel):
    """Masked autoencoder for distribution estimation: [l_1, ..., l_D] = MaskedMLP(x / (K-1)).

    The inputs are the level values scaled to [0, 1] (D inputs; for binary data these are
    the bits themselves); ``tfdgm.nets.MaskedMLP`` masks make l_i depend only on x_j with
    order_j < order_i, so one pass gives every conditional.

    Order-agnostic training (Uria et al., 2014; Germain et al., 2015, Sec. 4): with
    ``order_agnostic=True`` the model draws ``num_orders`` orders (the natural order
    1..D first, the others random permutations from ``seed``) and ``fit`` switches the
    masks to a random one of them before every batch (``MaskedMLP.set_order``), so one set
    of weights learns all of them. After ``fit`` the natural order is restored: ``log_prob``
    and ``sample`` use it (and the exported endpoints too). :meth:`ensemble_log_prob`
    averages the densities of all orders, log (1/O) sum_o p_o(x) (eager only).

    Args:
        event_shape: shape of one event (D = its size).
        num_categories: K.
        hidden_units: widths of the masked hidden layers.
        order_agnostic: train over ``num_orders`` orders.
        num_orders: O, number of orders for order-agnostic training and the ensemble.
        num_classes: K of the class-conditional MADE p(x | y), y in [0, K): the one-hot y
            is an unmasked input of every layer (``MaskedMLP(context_dim=K)``); ``fit(x, y)``,
            ``log_prob(x, labels=y)``, ``sample(n, labels=y)``. None: unconditional.

    >>> MADE((5,), hidden_units=(16,)).log_prob(np.zeros((3, 5))).shape
    TensorShape([3])
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_categories: int = 2,
        hidden_units: Sequence[int] = (256, 256),
        order_agnostic: bool = False,
        num_orders: int = 8,
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        super().__init__(event_shape, num_categories, seed, **kwargs)
        self.num_classes = None if num_classes is None else int(num_classes)
        if self.num_classes is not None:
            self.accepts_labels = True
            self.label_spec = EventSpec((), "categorical", self.num_classes)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.order_agnostic = bool(order_agnostic)
        self.num_orders = int(num_orders) if self.order_agnostic else 1
        rng = np.random.default_rng(0 if seed is None else seed)
        natural = list(range(1, self.event_size + 1))
        self.orders = [natural] + [
            [int(o) for o in rng.permutation(self.event_size) + 1]
            for _ in range(self.num_orders - 1)
        ]
        self.network = nets.MaskedMLP(
            self.event_size,
            self.hidden_units,
            params_per_dim=self.num_categories,
            context_dim=self.num_classes,
            name="made",
        )
        self.build()

    def logits_from_one_hot(self, one_hot, labels=None):
        values = tf.range(self.num_categories, dtype=one_hot.dtype)
        levels = tf.linalg.matvec(one_hot, values) / (self.num_categories - 1)  # (batch, D)
        if self.num_classes is None:
            return self.network(levels)
        if labels is None:
            raise ValueError(f"MADE(num_classes={self.num_classes}) needs labels=")
        return self.network(levels, tf.one_hot(tf.cast(labels, tf.int32), self.num_classes))

    def sampling_order(self):
        return [int(i) for i in np.argsort(self.network.order)]

    def set_order(self, order: Sequence[int]):
        """Use ``order`` (a permutation of 1..D) for the conditionals from now on."""
        self.network.set_order(order)

    def fit_callbacks(self, epochs, initial_epoch, verbose, callbacks):
        """Order-agnostic models switch the masks' order before every batch."""
        return [_OrderSwitcher(self)] if self.order_agnostic else []

    def ensemble_log_prob(self, x, labels=None) -> tf.Tensor:
        """log (1/O) sum_o p_o(x) over the ``num_orders`` orders, float32 ``[batch]``
        (of p_o(x | y) given ``labels``).

        A mixture of O normalized densities, hence normalized; eager only (it rewires the
        masks once per order and restores the current order at the end).
        """
        x, labels = self._prepare(x), nets.class_labels(self, labels)
        current = list(self.network.order)
        parts = []
        try:
            for order in self.orders:
                self.network.set_order(order)
                parts.append(self.conditionals(x, labels).log_prob(x))
        finally:
            self.network.set_order(current)
        return log_mean_exp(tf.stack(parts), 0)

    @property
    def num_parameters(self) -> int:
        """Trainable weights (masked-out entries included: they exist but stay unused)."""
        return int(sum(np.prod(v.shape) for v in self.trainable_variables))

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "order_agnostic": self.order_agnostic,
            "num_orders": self.num_orders,
            "num_classes": self.num_classes,
        }

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        if self.num_classes is None:
            return endpoints
        spec_x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        spec_y = tf.TensorSpec([None], tf.int32, name="labels")
        endpoints["sample"] = (
            lambda n, seed, y: self.sample(n, seed=seed, labels=y),
            [*endpoints["sample"][1], spec_y],
        )
        endpoints["log_prob"] = (lambda x, y: self.log_prob(x, labels=y), [spec_x, spec_y])
        return endpoints


class _OrderSwitcher(keras.callbacks.Callback):
    """Order-agnostic training: a random order of ``model.orders`` before every batch."""

    def __init__(self, made: MADE):
        super().__init__()
        self.made = made
        self.rng = np.random.default_rng(made.seed)

    def on_train_batch_begin(self, batch, logs=None):
        self.made.set_order(self.made.orders[self.rng.integers(len(self.made.orders))])

    def on_test_begin(self, logs=None):  # validation during fit uses the natural order
        self.made.set_order(self.made.orders[0])

    def on_train_end(self, logs=None):
        self.made.set_order(self.made.orders[0])
