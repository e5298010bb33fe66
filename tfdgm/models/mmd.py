"""The generative moment matching network (GMMN): an implicit model trained by MMD.

No critic: the generator x = G(z), z ~ N(0, I_L) (:class:`tfdgm.adversarial.ImplicitModel`)
minimizes the unbiased estimate of

    MMD^2(P, Q_G) = E[k(x, x')] + E[k(y, y')] - 2 E[k(x, y)],   x, x' ~ P,  y, y' ~ Q_G,

between a data batch and a generated batch under a mixture of Gaussian kernels
k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)).

References:
    Li, Swersky & Zemel, Generative Moment Matching Networks, ICML 2015.
    Dziugaite, Roy & Ghahramani, Training generative neural networks via Maximum Mean
    Discrepancy optimization, UAI 2015.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import metrics, registry
from tfdgm.adversarial import DATASETS, TINY, ImplicitModel
from tfdgm.base import PACKAGE


@registry.register(
    "mmd",
    family="implicit",
    datasets=DATASETS,
    training=dict(epochs=200, batch_size=256),
    hparams=dict(latent_dim=8, hidden_units=(128, 128)),
    tiny=TINY,
    dataset_defaults={"mnist5k-continuous": dict(epochs=40)},  # docs/mnist5k.md
    description="generative moment matching network (MMD with Gaussian kernels)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class MMDNetwork(ImplicitModel):
    """Generative moment matching network (Li et al., 2015; Dziugaite et al., 2015).

    Minimizes the unbiased MMD^2 between a data batch and a generated batch of the same size
    under k(a, b) = sum_s exp(-||a - b||^2 / (2 s^2)), s in ``bandwidths``
    (:func:`tfdgm.metrics.mmd2`). Reported ``loss`` is that MMD^2 estimate. One optimizer.

    Args:
        bandwidths: kernel widths s, in data units. :meth:`for_dataset` scales them with the
            median distance between training points when not given.
        **kwargs: see :class:`ImplicitModel`.

    >>> MMDNetwork(event_shape=(1,), hidden_units=(8,), seed=0).sample(5, seed=(1, 2)).shape
    TensorShape([5, 1])
    """

    metric_names = ("loss",)
    #: Multiples of the median pairwise distance used by ``for_dataset``.
    BANDWIDTH_SCALES = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)

    def __init__(
        self,
        event_shape: Sequence[int],
        bandwidths: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        **kwargs,
    ):
        super().__init__(event_shape, **kwargs)
        self.bandwidths = tuple(float(s) for s in bandwidths)
        if not self.bandwidths or min(self.bandwidths) <= 0:
            raise ValueError(f"bandwidths must be positive, got {bandwidths}")
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        if "bandwidths" not in hparams:
            x = np.asarray(dataset.x_train[:500], np.float64).reshape(
                min(500, len(dataset.x_train)), -1
            )
            distances = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
            median = float(np.median(distances[np.triu_indices(len(x), 1)]))
            hparams["bandwidths"] = tuple(round(median * s, 4) for s in cls.BANDWIDTH_SCALES)
        return super().for_dataset(dataset, **hparams)

    def kernel(self, a, b) -> tf.Tensor:
        """k(a_i, b_j) for all pairs, ``[n, m]``."""
        return metrics.gaussian_kernel(a, b, self.bandwidths)

    def mmd2(self, x, y) -> tf.Tensor:
        """Unbiased MMD^2 between two batches under :meth:`kernel`."""
        flat = lambda t: tf.reshape(tf.cast(t, tf.float32), [tf.shape(t)[0], -1])
        return metrics.mmd2(flat(x), flat(y), kernel=self.kernel, unbiased=True)

    def objective(self, x, training=False):
        x_fake = self.generate(self.noise(tf.shape(x)[0]), training=training)
        return {"loss": self.mmd2(x, x_fake)}

    def get_config(self):
        return {**super().get_config(), "bandwidths": self.bandwidths}
