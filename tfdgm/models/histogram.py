"""Count-based likelihood models of discrete data: the joint histogram and its factorized twin.

Both are maximum-likelihood estimates with additive (Laplace) smoothing alpha, learned from
counts (sufficient statistics), not gradients. On events x in {0..K-1}^m with N examples:

    Histogram:              p(x) = (n_x + alpha) / (N + alpha K^m),             K^m - 1 parameters
    FactorizedCategorical:  p(x) = prod_i (n_{i,x_i} + alpha) / (N + alpha K),  m (K - 1) parameters

where n_x counts the examples equal to x and n_{i,k} those with x_i = k. The joint
histogram is exact for any distribution but its parameter count grows as K^m (the curse of
dimensionality: 2^64 - 1 for binary 8x8 digits), so it refuses spaces of more than
``MAX_CELLS`` = 2^20 cells; the factorized model grows linearly but ignores every
dependency between dimensions.

Training goes through Keras ``fit`` as statistics-based training (``batch_statistics`` /
``apply_statistics`` of :class:`tfdgm.GenerativeModel`): each batch's counts are summed
over the epoch (and across replicas), and at the epoch's end the counts are *set* to that
sum, so every epoch gives the same maximum-likelihood estimate of the data passed to
``fit``. The metric ``loss`` is each batch's mean negative log-likelihood under the
estimate before the epoch (the uniform distribution in the first epoch).

References:
    Laplace, Essai philosophique sur les probabilites, 1814 (the rule of succession).
    Bishop, Pattern Recognition and Machine Learning, 2006, Sec. 2.2 (multinomial, Dirichlet).
    Bellman, Dynamic Programming, 1957 (the curse of dimensionality).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import data, registry
from tfdgm.base import PACKAGE, GenerativeModel

tfd = tfp.distributions

#: Largest number of cells K^m the joint histogram accepts.
MAX_CELLS = 2**20

# digits-crop8 (8 pixels, 256 cells), the dataset small enough for the joint histogram,
# lives in tfdgm.data.
CROP8_PIXELS = data.CROP8_PIXELS
load_digits_crop8 = data.load_digits_crop8


def _support(num_categories: int) -> str:
    return "binary" if int(num_categories) == 2 else "categorical"


class _CountModel(GenerativeModel):
    """Shared machinery: counts as a non-trainable variable set from summed statistics."""

    density = "exact"
    weighted_statistics = True  # counts of weighted examples: a weight of 2 counts twice

    def __init__(self, event_shape, num_categories: int, smoothing: float, seed, **kwargs):
        if float(smoothing) < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        super().__init__(
            event_shape,
            support=_support(num_categories),
            num_categories=int(num_categories),
            seed=seed,
            **kwargs,
        )
        self.smoothing = float(smoothing)

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        """The model for ``dataset``'s event shape and number of categories."""
        return cls(
            event_shape=dataset.event_shape, num_categories=dataset.num_categories, **hparams
        )

    def _count_shape(self) -> list[int]:
        raise NotImplementedError

    def _build(self):
        self.counts = self.add_weight(
            shape=self._count_shape(),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name="counts",
        )

    def _levels(self, x) -> tf.Tensor:
        """x as int32 levels, flattened to ``[batch, m]``."""
        return tf.reshape(tf.cast(x, tf.int32), [-1, self.event_size])

    def _batch_counts(self, x, weights=None) -> tf.Tensor:
        raise NotImplementedError

    @property
    def num_examples(self) -> tf.Tensor:
        """N, the number of examples counted so far (float32)."""
        raise NotImplementedError

    def example_objective(self, x, training=False):
        return {"loss": -self.log_prob(x)}

    def batch_statistics(self, x, labels=None, weights=None):
        """The batch's counts (n_x for the histogram, n_ik for the factorized model), each
        example counted ``weights`` times (float32 ``[batch]``; once if None)."""
        return {"counts": self._batch_counts(x, weights)}

    def apply_statistics(self, stats):
        """counts <- the epoch's summed counts: the maximum-likelihood estimate."""
        self.counts.assign(stats["counts"])

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "num_categories": self.num_categories,
            "smoothing": self.smoothing,
        }


@registry.register(
    "histogram",
    family="likelihood",
    datasets=("digits-crop8",),
    training=dict(epochs=1, batch_size=256),
    hparams=dict(smoothing=1.0),
    tiny=dict(smoothing=1.0),
    variants={"jeffreys": dict(smoothing=0.5)},
    description="joint histogram with Laplace smoothing (tiny spaces only: <= 2^20 cells)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class Histogram(_CountModel):
    """Joint histogram p(x) = (n_x + alpha) / (N + alpha K^m) over all K^m configurations.

    Args:
        event_shape: shape of one event (m = its size).
        num_categories: K (2 for binary data).
        smoothing: alpha, pseudo-count added to every cell (1 is Laplace's rule; 0 the
            maximum-likelihood estimate, which gives unseen configurations probability 0).

    Raises:
        ValueError: when K^m > ``MAX_CELLS``; the message gives the parameter count K^m - 1.

    >>> Histogram((3,), num_categories=2).num_parameters
    7
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_categories: int = 2,
        smoothing: float = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        size = int(np.prod([int(d) for d in event_shape]))
        cells = int(num_categories) ** size
        if cells > MAX_CELLS:
            raise ValueError(
                f"Histogram: a joint histogram of {size} dimensions with {num_categories} "
                f"categories has K^m - 1 = {num_categories}^{size} - 1 = {cells - 1} free "
                f"parameters; this implementation stops at {MAX_CELLS} cells (2^20). Use "
                "FactorizedCategorical or an autoregressive model (markov, rnn, made)."
            )
        super().__init__(event_shape, num_categories, smoothing, seed, **kwargs)
        self.num_cells = cells
        self.build()

    def _count_shape(self):
        return [self.num_cells]

    @property
    def num_parameters(self) -> int:
        """K^m - 1 free parameters (the cell probabilities sum to 1)."""
        return self.num_cells - 1

    @property
    def num_examples(self):
        return tf.reduce_sum(tf.convert_to_tensor(self.counts))

    def cell_index(self, x) -> tf.Tensor:
        """Index of each configuration in the table, sum_i x_i K^(m-1-i): int32 ``[batch]``."""
        strides = self.num_categories ** np.arange(self.event_size - 1, -1, -1)
        return tf.linalg.matvec(self._levels(x), tf.constant(strides, tf.int32))

    def configurations(self, index) -> tf.Tensor:
        """Inverse of :meth:`cell_index`: float32 events ``[n, *event_shape]``."""
        strides = self.num_categories ** np.arange(self.event_size - 1, -1, -1)
        index = tf.cast(index, tf.int32)[:, None]
        levels = (index // tf.constant(strides, tf.int32)) % self.num_categories
        return tf.reshape(tf.cast(levels, tf.float32), [-1, *self.event_shape])

    def _batch_counts(self, x, weights=None):
        cells = self.cell_index(x)
        weights = tf.ones_like(cells, tf.float32) if weights is None else weights
        return tf.math.unsorted_segment_sum(weights, cells, self.num_cells)

    def log_probs_table(self) -> tf.Tensor:
        """log p of every cell, float32 ``[K^m]``: log(n_x + alpha) - log(N + alpha K^m)."""
        counts = tf.convert_to_tensor(self.counts)
        total = tf.reduce_sum(counts) + self.smoothing * self.num_cells
        return tf.math.log(counts + self.smoothing) - tf.math.log(total)

    def log_prob(self, x, **kwargs):
        """log p(x) = log(n_x + alpha) - log(N + alpha K^m), float32 ``[batch]``."""
        x = self._prepare(x)
        return tf.gather(self.log_probs_table(), self.cell_index(x))

    def sample(self, num_samples: int, seed=None):
        """Cells drawn from the table, decoded to events: float32 ``[n, *event_shape]``."""
        table = tfd.Categorical(logits=self.log_probs_table(), dtype=tf.int32)
        return self.configurations(table.sample(num_samples, seed=self._seed(seed)))


@registry.register(
    "factorized",
    family="likelihood",
    datasets=("digits", "digits-categorical", "digits-crop8", "mnist", "fashion-mnist", "mnist5k"),
    training=dict(epochs=1, batch_size=256),
    hparams=dict(smoothing=1.0),
    tiny=dict(smoothing=1.0),
    variants={"categorical": dict(dataset="digits-categorical")},
    description="independent per-dimension categoricals (counts, Laplace smoothing)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class FactorizedCategorical(_CountModel):
    """Independent dimensions: p(x) = prod_i p_i(x_i), p_i(k) = (n_ik + alpha) / (N + alpha K).

    Estimated from per-dimension counts (closed-form maximum likelihood with additive
    smoothing, the same training path as :class:`Histogram`), not by gradient.

    Args:
        event_shape: shape of one event (m = its size).
        num_categories: K (2 for binary data).
        smoothing: alpha, pseudo-count of every (dimension, category).

    >>> FactorizedCategorical((64,), num_categories=2).num_parameters
    64
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_categories: int = 2,
        smoothing: float = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(event_shape, num_categories, smoothing, seed, **kwargs)
        self.build()

    def _count_shape(self):
        return [self.event_size, self.num_categories]

    @property
    def num_parameters(self) -> int:
        """m (K - 1) free parameters."""
        return self.event_size * (self.num_categories - 1)

    @property
    def num_examples(self):
        return tf.reduce_sum(tf.convert_to_tensor(self.counts)[0])

    def _batch_counts(self, x, weights=None):
        one_hot = tf.one_hot(self._levels(x), self.num_categories)  # (batch, m, K)
        if weights is not None:
            one_hot *= weights[:, None, None]
        return tf.reduce_sum(one_hot, axis=0)

    def marginal_logits(self) -> tf.Tensor:
        """log p_i(k), float32 ``[m, K]``."""
        counts = tf.convert_to_tensor(self.counts) + self.smoothing
        return tf.math.log(counts) - tf.math.log(tf.reduce_sum(counts, -1, keepdims=True))

    def distribution(self) -> tfd.Distribution:
        """The product of categoricals as a TFP distribution over one event."""
        logits = tf.reshape(self.marginal_logits(), [*self.event_shape, self.num_categories])
        return tfd.Independent(
            tfd.Categorical(logits=logits, dtype=tf.float32), len(self.event_shape)
        )

    def log_prob(self, x, **kwargs):
        """log p(x) = sum_i log p_i(x_i), float32 ``[batch]``."""
        return self.distribution().log_prob(self._prepare(x))

    def sample(self, num_samples: int, seed=None):
        """x_i ~ p_i independently: float32 ``[n, *event_shape]``."""
        return self.distribution().sample(num_samples, seed=self._seed(seed))
