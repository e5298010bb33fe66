"""The model contract every tfdgm model honours.

Subclassing guide
-----------------
A model is a :class:`GenerativeModel` (a ``keras.Model``). A subclass

1. calls ``super().__init__(event_shape=..., support=..., num_categories=..., seed=...)``,
   creates its networks, then calls ``self.build()`` at the end of ``__init__``;
2. implements ``_build()`` (run every network once on a dummy input so all variables exist
   before ``fit``, ``save`` or a ``tf.distribute`` strategy need them);
3. implements ``objective(x, training)`` returning a dict of float32 scalars whose ``"loss"``
   is minimized; the other entries are reported as metrics named in ``metric_names``;
4. implements ``sample(num_samples, seed=None)`` and, where it has a density,
   ``log_prob(x)`` (float32, shape ``[batch]``); without one it leaves ``log_prob`` raising
   :class:`NoDensityError`;
5. writes ``get_config`` as ``{**super().get_config(), <every constructor argument>}``;
6. optionally adds exported endpoints by overriding ``export_endpoints``; optionally
   overrides ``compile_default`` (how ``tfdgm train`` compiles it), ``summary_metrics``
   and ``figures`` (extra numbers and pictures for a run folder).

Models that need more than one optimizer or a sampling phase (GAN, RBM) override
``train_step`` itself; everything else (loss scaling under ``mixed_float16``, scaling by
the number of replicas under a distribution strategy, metric trackers, input validation
before the first step) is done here once.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import data as _data

PACKAGE = "tfdgm"
SUPPORTS = ("binary", "categorical", "real")


class NoDensityError(NotImplementedError):
    """Raised by ``log_prob`` of a model that defines no tractable or estimable density."""


def _as_seed(seed) -> tf.Tensor:
    """A TFP stateless seed (int32[2]) from an int, a pair, or a tensor."""
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int32)
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


class GenerativeModel(keras.Model):
    """Base class: a ``keras.Model`` that is a generative model of events of ``event_shape``.

    Args:
        event_shape: shape of one data point, e.g. ``(64,)`` for flattened 8x8 digits.
        support: ``"binary"``, ``"categorical"`` (integer levels in ``[0, K)``) or
            ``"real"``; inputs are checked against it before training.
        num_categories: K for ``"categorical"`` support (2 for ``"binary"``).
        seed: seed of the model's random stream (sampling during training and ``sample``).
    """

    #: Metrics reported by ``fit``/``evaluate``, in order; ``objective`` returns them.
    metric_names: tuple[str, ...] = ("loss",)

    def __init__(
        self,
        event_shape: Sequence[int],
        support: str = "real",
        num_categories: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if support not in SUPPORTS:
            raise ValueError(f"support must be one of {SUPPORTS}, got {support!r}")
        if support == "categorical" and (num_categories is None or num_categories < 2):
            raise ValueError(f"categorical support needs num_categories >= 2, got {num_categories}")
        self.event_shape = tuple(int(d) for d in event_shape)
        self.support = support
        self.num_categories = 2 if support == "binary" else num_categories
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]

    # ----------------------------------------------------------------- structure
    @property
    def event_size(self) -> int:
        """Number of scalar dimensions of one event, prod(event_shape)."""
        return int(np.prod(self.event_shape))

    def build(self, input_shape=None):
        self._build()
        self.built = True

    def _build(self):
        """Create every variable (run each network once on a dummy input)."""
        raise NotImplementedError

    def call(self, x, training=False):
        """Per-example log-density; models without one return their samples' shape."""
        return self.log_prob(x)

    @property
    def metrics(self):
        return list(self.trackers)

    # ----------------------------------------------------------------- randomness
    def _seed(self, seed=None) -> tf.Tensor:
        """A fresh int32[2] stateless seed from the model's stream, or ``seed`` if given."""
        if seed is not None:
            return _as_seed(seed)
        return tf.cast(self.seed_generator.next(), tf.int32)

    # ----------------------------------------------------------------- objective
    def objective(self, x: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
        """Return ``{"loss": scalar to minimize, <metric>: scalar, ...}`` for a batch."""
        raise NotImplementedError

    def _unpack(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return tf.cast(x, tf.float32)

    def _update_metrics(self, values: dict[str, tf.Tensor], batch_size=None) -> dict:
        """Fold batch means into the trackers, weighted by ``batch_size`` when given (so a
        short last batch counts for what it holds)."""
        weight = None if batch_size is None else tf.cast(batch_size, tf.float32)
        for tracker in self.trackers:
            tracker.update_state(values[tracker.name], sample_weight=weight)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def _minimize(self, loss, variables, optimizer=None, tape=None):
        """Gradient step on ``loss`` (inside ``tape``) with loss scaling and replica scaling."""
        optimizer = optimizer or self.optimizer
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def _scaled(self, loss, optimizer=None):
        """Loss as differentiated: divided by the replica count, scaled for float16."""
        optimizer = optimizer or self.optimizer
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return optimizer.scale_loss(loss / tf.cast(replicas, loss.dtype))

    def train_step(self, data):
        x = self._unpack(data)
        with tf.GradientTape() as tape:
            values = self.objective(x, training=True)
            scaled = self._scaled(values["loss"])
        self._minimize(scaled, self.trainable_variables, tape=tape)
        return self._update_metrics(values, tf.shape(x)[0])

    def test_step(self, data):
        x = self._unpack(data)
        return self._update_metrics(self.objective(x, training=False), tf.shape(x)[0])

    # ----------------------------------------------------------------- contract
    def sample(self, num_samples: int, seed=None) -> tf.Tensor:
        """Draw ``num_samples`` data-space samples, float32 ``[num_samples, *event_shape]``."""
        raise NotImplementedError

    def log_prob(self, x, **kwargs) -> tf.Tensor:
        """log p(x), float32 ``[batch]``."""
        raise NoDensityError(
            f"{type(self).__name__} defines no density: log_prob is not available. "
            "Judge its samples with tfdgm.metrics (Frechet distance, KID, mode coverage)."
        )

    @property
    def has_density(self) -> bool:
        return type(self).log_prob is not GenerativeModel.log_prob

    def validate(self, x) -> np.ndarray:
        """Check ``x`` against the event shape and support; return it as float32 NumPy.

        Raises:
            ValueError: NaN/inf, wrong shape, or values outside the support.
        """
        return _data.check_array(
            x, self.event_shape, self.support, self.num_categories, name=type(self).__name__
        )

    def _prepare(self, x) -> tf.Tensor:
        """``x`` as a float32 tensor, validated first when called eagerly on concrete data
        (inside a traced function, in a train step or an export, it is not)."""
        if tf.executing_eagerly() and not isinstance(x, tf.Variable):
            x = self.validate(np.asarray(x))
        return tf.cast(tf.convert_to_tensor(x), tf.float32)

    def _validate_input(self, x):
        if x is None:
            return
        if isinstance(x, tf.data.Dataset):
            for batch in x.take(1):
                self.validate(np.asarray(self._unpack(batch)))
        elif isinstance(x, (tuple, list)) and len(x) and not np.isscalar(x[0]):
            self.validate(x[0])
        elif isinstance(x, dict):
            raise ValueError(f"{type(self).__name__} takes an array, not a dict of inputs")
        else:
            self.validate(x)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """Keras ``fit``, after checking the inputs (and validation data) up front."""
        self._validate_input(x)
        self._validate_input(validation_data)
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # a pipeline shuffles itself
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """Keras ``evaluate``, after checking the inputs up front."""
        self._validate_input(x)
        return super().evaluate(x, y, *args, **kwargs)

    # ----------------------------------------------------------------- training & reports
    def compile_default(self, learning_rate: float = 1e-3, jit_compile: bool = False, **kwargs):
        """Compile with the model's usual optimizer (Adam); what ``tfdgm train`` calls.

        Models with several optimizers (GANs) or another rule (RBMs) override this.
        """
        self.compile(
            optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile, **kwargs
        )

    def summary_metrics(self, dataset) -> dict:
        """Extra figures of merit for a run's ``metrics.json`` (e.g. FD/KID for GANs)."""
        return {}

    def figures(self, dataset) -> dict:
        """Extra pictures for a run folder: ``{file stem: matplotlib Figure}``."""
        return {}

    # ----------------------------------------------------------------- export
    def export_endpoints(self) -> dict:
        """Functions to export: ``{name: (fn, [tf.TensorSpec, ...])}``, float32 inputs."""
        spec = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        endpoints = {
            "sample": (
                lambda n, seed: self.sample(n, seed=seed),
                [
                    tf.TensorSpec([], tf.int32, name="num_samples"),
                    tf.TensorSpec([2], tf.int32, name="seed"),
                ],
            ),
        }
        if self.has_density:
            endpoints["log_prob"] = (lambda x: self.log_prob(x), [spec])
        return endpoints

    def export(self, filepath, format="tf_saved_model", verbose=None, **kwargs):  # noqa: A002
        """Write a SavedModel with float32 signatures (see :func:`tfdgm.export.export`)."""
        from tfdgm.export import export

        return export(self, filepath)

    # ----------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.saving.serialize_keras_object(self.dtype_policy),
            "seed": self.seed,
        }
