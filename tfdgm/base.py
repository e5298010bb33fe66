"""The model contract every tfdgm model honours.

Subclassing guide
-----------------
A model is a :class:`GenerativeModel` (a ``keras.Model``). A subclass

1. calls ``super().__init__(event_shape=..., support=..., num_categories=..., seed=...)``
   (or ``events={name: tfdgm.data.EventSpec(...)}`` for a dict of modalities), creates its
   networks, then calls ``self.build()`` at the end of ``__init__``;
2. implements ``_build()`` (run every network once on a dummy input so all variables exist
   before ``fit``, ``save`` or a ``tf.distribute`` strategy need them);
3. declares ``density``: ``"exact"`` (``log_prob`` is log p(x)), ``"estimate"`` (a
   stochastic estimate, e.g. importance sampling or AIS), ``"bound"`` (a lower bound such
   as an ELBO) or ``"none"`` (``log_prob`` raises :class:`NoDensityError`);
4. says how it learns, with one of
   - ``example_objective(x, training)`` returning per-example values ``{"loss": [batch],
     <metric>: [batch]}``, whose batch means (weighted means under ``sample_weight``)
     one gradient step per batch minimizes: the model then takes sample weights;
   - ``objective(x, training)`` returning a dict of float32 scalars whose ``"loss"`` is
     minimized by one gradient step per batch (the default ``training_update``);
   - ``training_update(x, labels)``: its own update of one batch (several optimizers, a
     sampling phase) returning the metrics dict; optimizers come from
     ``optimizer_groups()`` / ``default_optimizer(group, learning_rate)`` and are reached
     with ``optimizer_for(group)``;
   - ``batch_statistics(x, labels)`` returning per-batch *sums* and
     ``apply_statistics(stats)``: statistics-based training with no optimizer (counting,
     EM, coordinate-ascent VI). The base sums the statistics over the batches of an epoch
     (all-reduced across replicas) and applies them once per epoch, before validation;
5. implements ``sample(num_samples, seed=None)`` and, unless ``density == "none"``,
   ``log_prob(x)`` (float32, shape ``[batch]``);
6. writes ``get_config`` as ``{**super().get_config(), <every constructor argument>}``;
7. optionally: ``after_update()`` (EMA weights, clipping, projections; run inside the
   compiled step after every update), ``initialize(x)`` (data-dependent initialization
   before the first step), ``fit_callbacks(...)`` (callbacks ``fit`` needs), extra
   exported endpoints (``export_endpoints``), ``summary_metrics`` and ``figures`` (numbers
   and pictures for a run folder; ``figures`` adds to ``super().figures(dataset)``).

A model never overrides ``fit``, ``compile`` or ``train_step``: loss scaling under
``mixed_float16``, division by the number of replicas under a distribution strategy,
one optimizer per group, metric trackers weighted by batch size (or summed sample
weights), input validation before the first step, labels and sample weights are handled
here once. ``docs/contract.md`` walks through a new model file.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfdgm import checks as _checks
from tfdgm import data as _data
from tfdgm import inputs as _inputs
from tfdgm import training as _training

PACKAGE = "tfdgm"
SUPPORTS = ("binary", "categorical", "real")
#: What ``log_prob`` returns: log p(x) exactly, a stochastic estimate of it, a lower bound
#: on it, or nothing (``log_prob`` raises :class:`NoDensityError`).
DENSITIES = ("exact", "estimate", "bound", "none")
INITIALIZE_EXAMPLES = _inputs.INITIALIZE_EXAMPLES


class NoDensityError(NotImplementedError):
    """Raised by ``log_prob`` of a model that defines no tractable or estimable density."""


def _as_seed(seed) -> tf.Tensor:
    """A TFP stateless seed (int32[2]) from an int, a pair, or a tensor."""
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int32)
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


def _as_float32(x):
    return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), x)


class GenerativeModel(keras.Model):
    """Base class: a ``keras.Model`` that is a generative model of events of ``event_shape``.

    Args:
        event_shape: shape of one data point, e.g. ``(64,)`` for flattened 8x8 digits.
        support: ``"binary"``, ``"categorical"`` (integer levels in ``[0, K)``) or
            ``"real"``; inputs are checked against it before training.
        num_categories: K for ``"categorical"`` support (2 for ``"binary"``).
        seed: seed of the model's random stream (sampling during training and ``sample``).
        events: instead of the three above, a dict ``{name: tfdgm.data.EventSpec}`` of
            named modalities; inputs are then dicts of arrays.
    """

    #: Metrics reported by ``fit``/``evaluate``, in order; ``objective`` returns them.
    metric_names: tuple[str, ...] = ("loss",)
    #: What ``log_prob`` returns, one of :data:`DENSITIES`.
    density: str = "none"
    #: Whether ``fit(x, y)`` passes ``y`` as ``labels=`` (conditional models), and the
    #: :class:`tfdgm.data.EventSpec` labels are checked against before training.
    accepts_labels: bool = False
    label_spec = None
    #: ``compile_default``'s learning rate and Keras steps per ``tf.function`` call (10:
    #: one call per step weighs most at small batches; docs/benchmarks.md).
    default_learning_rate: float = 1e-3
    default_steps_per_execution: int = 10
    #: Whether ``batch_statistics`` takes ``weights=`` (then ``sample_weight`` works).
    weighted_statistics: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if isinstance(cls.density, str) and cls.density not in DENSITIES:
            raise TypeError(
                f"{cls.__name__}.density must be one of {DENSITIES}, got {cls.density!r}"
            )
        # sample(-1), sample(2.5), sample("3"): a ValueError (a no-op if wrapped already)
        cls.sample = _checks.checked_sample(cls.sample)

    def __init__(
        self,
        event_shape: Sequence[int] | None = None,
        support: str = "real",
        num_categories: int | None = None,
        seed: int | None = None,
        events: dict | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if events is not None:
            self.events = {k: _data.EventSpec.of(v) for k, v in events.items()}
            self.event_shape = {k: v.shape for k, v in self.events.items()}
            self.support, self.num_categories = "mixed", None
        else:
            if event_shape is None:
                raise ValueError(f"{type(self).__name__} needs event_shape (or events)")
            spec = _data.EventSpec(tuple(event_shape), support, num_categories)
            self.events = None
            self.event_shape = spec.shape
            self.support = spec.support
            self.num_categories = spec.num_categories
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self.trackers = [keras.metrics.Mean(name=name) for name in self.metric_names]
        self._optimizers = {}
        self._optimizer_configs = None

    # ----------------------------------------------------------------- structure
    @property
    def event_size(self) -> int:
        """Number of scalar dimensions of one event, prod(event_shape)."""
        if self.events is not None:
            return int(sum(np.prod(s.shape) for s in self.events.values()))
        return int(np.prod(self.event_shape))

    @property
    def has_density(self) -> bool:
        """Whether ``log_prob`` returns something (``density != "none"``)."""
        return self.density != "none"

    @property
    def uses_statistics(self) -> bool:
        """Whether the model trains by summed statistics (``batch_statistics``)."""
        return type(self).batch_statistics is not GenerativeModel.batch_statistics

    def build(self, input_shape=None):
        """Create every variable; a no-op on a built model (Keras convention)."""
        if self.built:
            return
        self._build()
        if self.uses_statistics:
            _training.build_statistics(self)
        self.built = True

    def _build(self):
        """Create every variable (run each network once on a dummy input)."""
        raise NotImplementedError

    def call(self, x, training=False):
        """``log_prob(x)``: float32 ``[batch]`` for models with a density; a model with
        ``density == "none"`` raises :class:`NoDensityError` unless it overrides ``call``
        (a GAN returns its critic's output V(x))."""
        return self.log_prob(x)

    @property
    def metrics(self):
        return list(self.trackers)

    def dummy_batch(self, batch_size: int = 1):
        """Zeros shaped like a batch of events (valid under every support)."""
        if self.events is not None:
            return {k: tf.zeros([batch_size, *v.shape]) for k, v in self.events.items()}
        return tf.zeros([batch_size, *self.event_shape])

    def input_signature(self, name: str = "x"):
        """The float32 ``tf.TensorSpec`` (or dict of them) of a batch of events."""
        if self.events is not None:
            return {
                k: tf.TensorSpec([None, *v.shape], tf.float32, name=k)
                for k, v in self.events.items()
            }
        return tf.TensorSpec([None, *self.event_shape], tf.float32, name=name)

    # ----------------------------------------------------------------- randomness
    def _seed(self, seed=None) -> tf.Tensor:
        """A fresh int32[2] stateless seed from the model's stream, or ``seed`` if given."""
        if seed is not None:
            return _as_seed(seed)
        return tf.cast(self.seed_generator.next(), tf.int32)

    # ----------------------------------------------------------------- hooks
    def example_objective(self, x, training: bool = False, **kwargs) -> dict[str, tf.Tensor]:
        """Per-example ``{"loss": [batch] to minimize, <metric>: [batch], ...}`` whose
        batch means are the objective; a model that writes it takes ``sample_weight``
        (then sum_i w_i v_i / sum_i w_i: a weight of 2 counts an example twice)."""
        raise NotImplementedError

    def objective(self, x: tf.Tensor, training: bool = False, **kwargs) -> dict[str, tf.Tensor]:
        """Return ``{"loss": scalar to minimize, <metric>: scalar, ...}`` for a batch
        (default: the means of ``example_objective``)."""
        return _inputs.weighted_means(self.example_objective(x, training=training, **kwargs))

    @property
    def takes_sample_weight(self) -> bool:
        """Whether ``fit``/``evaluate`` take ``sample_weight``: the model writes
        ``example_objective`` and trains by the default gradient step, or by statistics
        that it can weigh (``weighted_statistics``)."""
        cls = type(self)
        if cls.example_objective is GenerativeModel.example_objective:
            return False
        if self.uses_statistics:
            return self.weighted_statistics
        return cls.training_update is GenerativeModel.training_update

    def optimizer_groups(self) -> dict[str, list]:
        """``{group: variables}``, one optimizer each; default one group ``"model"``."""
        return {"model": self.trainable_variables}

    def default_optimizer(self, group: str, learning_rate: float):
        """The optimizer ``compile_default`` (and ``compile()`` without one) gives a group."""
        return keras.optimizers.Adam(learning_rate)

    def optimizer_for(self, group: str):
        """The compiled optimizer of ``group``."""
        if group not in self._optimizers:
            raise ValueError(
                f"{type(self).__name__} has no optimizer {group!r} (compiled: "
                f"{sorted(self._optimizers) or 'none, call compile() first'})"
            )
        return self._optimizers[group]

    def training_update(self, x, labels=None) -> dict[str, tf.Tensor]:
        """One update on a batch; returns the metrics. Default: a gradient step on
        ``objective(x, training=True)["loss"]`` over the single optimizer group."""
        return self._gradient_step(x, labels)

    def _gradient_step(self, x, labels=None, weights=None) -> dict[str, tf.Tensor]:
        (group, variables), *rest = self.optimizer_groups().items()
        if rest:
            raise NotImplementedError(
                f"{type(self).__name__} has several optimizer groups: implement training_update"
            )
        optimizer = self.optimizer_for(group)
        with tf.GradientTape() as tape:
            values = self._objective(x, labels, training=True, weights=weights)
            scaled = self._scaled(values["loss"], optimizer)
        self._minimize(scaled, variables, optimizer, tape)
        return values

    def after_update(self) -> None:
        """Run inside the compiled step after every update (EMA, clipping, projections)."""
        return  # a body besides the docstring: AutoGraph cannot convert an empty one

    def batch_statistics(self, x, labels=None) -> dict[str, tf.Tensor]:
        """Sufficient statistics of a batch, as *sums* over its examples (statistics-based
        models only). May return ``(stats, metrics)`` to report metrics computed on the way
        (else ``objective(x)`` gives them). A model with ``weighted_statistics`` also
        takes ``weights=`` (float32 ``[batch]``) and returns the weighted sums."""
        raise NotImplementedError

    def apply_statistics(self, stats: dict[str, tf.Tensor]) -> None:
        """Set the parameters from one epoch's summed ``batch_statistics``."""
        raise NotImplementedError

    def initialize(self, x) -> None:
        """Data-dependent initialization from up to ``INITIALIZE_EXAMPLES`` training
        examples, called by ``fit`` before the first step (a no-op by default)."""

    def fit_callbacks(self, epochs: int, initial_epoch: int, verbose, callbacks: list) -> list:
        """Callbacks the model needs during ``fit`` (``callbacks`` are the user's)."""
        return []

    # ----------------------------------------------------------------- steps
    def _objective(self, x, labels, training, weights=None):
        kwargs = {"labels": labels} if self.accepts_labels else {}
        if weights is None:
            return self.objective(x, training=training, **kwargs)
        values = self.example_objective(x, training=training, **kwargs)
        return _inputs.weighted_means(values, weights)

    def _unpack_batch(self, data):
        """``(x, labels, weights)`` of a batch; weights as float32 ``[batch]`` or None."""
        x, y, w = keras.utils.unpack_x_y_sample_weight(data)
        y = _inputs.labels_of(y)
        if w is not None:
            if not self.takes_sample_weight:
                raise ValueError(_inputs.weights_refusal(self))
            w = tf.reshape(tf.cast(w, tf.float32), [-1])
        return _as_float32(x), y, w

    def _batch_weight(self, x, weights=None):
        """What a batch counts for in the epoch's means: its size, or its summed weights."""
        if weights is not None:
            return tf.reduce_sum(weights)
        return tf.shape(tf.nest.flatten(x)[0])[0]

    def _update_metrics(self, values: dict[str, tf.Tensor], batch_size=None) -> dict:
        """Fold batch means into the trackers, weighted by ``batch_size`` when given (so a
        short last batch counts for what it holds)."""
        weight = None if batch_size is None else tf.cast(batch_size, tf.float32)
        for tracker in self.trackers:
            tracker.update_state(values[tracker.name], sample_weight=weight)
        return _training.reducible({tracker.name: tracker.result() for tracker in self.trackers})

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
        x, labels, weights = self._unpack_batch(data)
        # every op of the update waits for the batch's checks (finite, in support)
        with tf.control_dependencies(_checks.batch_checks(self, data, "training")):
            if self.uses_statistics:
                values = _training.accumulate_statistics(self, x, labels, weights)
            elif weights is not None:
                values = self._gradient_step(x, labels, weights)
            else:
                values = self.training_update(x, labels=labels)
            self.after_update()
        return self._update_metrics(values, self._batch_weight(x, weights))

    def make_train_function(self, force=False):
        """Keras' train function; with several steps per call on one device, one
        ``tf.function`` loop of ``train_step`` (:func:`tfdgm.training.multi_step_function`:
        the same steps, without Keras' nested function and ``tf.cond`` per step)."""
        if self.train_function is not None and not force:
            return self.train_function
        super().make_train_function(force=True)
        if _training.runs_steps_in_one_loop(self):
            self.train_function = _training.multi_step_function(self, self.train_function)
        return self.train_function

    def test_step(self, data):
        x, labels, weights = self._unpack_batch(data)
        with tf.control_dependencies(_checks.batch_checks(self, data, "test")):
            values = self._objective(x, labels, training=False, weights=weights)
        return self._update_metrics(values, self._batch_weight(x, weights))

    # ----------------------------------------------------------------- contract
    def sample(self, num_samples: int, seed=None) -> tf.Tensor:
        """Draw ``num_samples`` data-space samples, float32 ``[num_samples, *event_shape]``."""
        raise NotImplementedError

    def log_prob(self, x, **kwargs) -> tf.Tensor:
        """log p(x), float32 ``[batch]`` (exact, an estimate or a bound: see ``density``)."""
        raise NoDensityError(
            f"{type(self).__name__} defines no density: log_prob is not available. "
            "Judge its samples with tfdgm.metrics (Frechet distance, KID, mode coverage)."
        )

    def validate(self, x):
        """Check ``x`` against the event shape and support; return it as float32 NumPy
        (a dict of arrays for a model of named modalities).

        Raises:
            ValueError: NaN/inf, wrong shape, or values outside the support.
        """
        return _inputs.validate(self, x)

    def _prepare(self, x):
        """``x`` as a float32 tensor, validated first when called eagerly on concrete data
        (inside a traced function, in a train step or an export, it is not)."""
        return _inputs.prepare(self, x)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        callbacks=None,
        validation_data=None,
        initial_epoch=0,
        **kwargs,
    ):
        """Keras ``fit``, after checking the inputs (and validation data) up front; runs
        ``initialize`` on the first examples, then trains with the model's callbacks."""
        x, y, batch_size, validation_data, examples = _inputs.fit_inputs(
            self, x, y, batch_size, validation_data, kwargs
        )
        if type(self).initialize is not GenerativeModel.initialize and examples is not None:
            self.initialize(examples)
        callbacks = list(callbacks or [])
        extra = self.fit_callbacks(
            epochs=epochs, initial_epoch=initial_epoch, verbose=verbose, callbacks=callbacks
        )
        if self.uses_statistics:
            extra = [*extra, _training.ApplyStatistics()]
        x, validation_data = _checks.xla_pipelines(self, x, validation_data)
        with _checks.BatchPosition(self) as position:  # a failed batch check: ValueError
            return super().fit(
                x,
                y,
                batch_size=batch_size,
                epochs=epochs,
                verbose=verbose,
                callbacks=[*callbacks, *extra, position],
                validation_data=validation_data,
                initial_epoch=initial_epoch,
                **kwargs,
            )

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """Keras ``evaluate``, after checking the inputs up front (not again for ``fit``'s
        validation passes: Keras evaluates its cached iterator of the validation data that
        ``fit`` checked, and the compiled step checks every batch)."""
        if not kwargs.get("_use_cached_eval_dataset"):
            x, y = _inputs.evaluate_inputs(self, x, y, kwargs)
        with _checks.BatchPosition(self):  # a failed batch check: ValueError
            return super().evaluate(x, y, *args, **kwargs)

    # ----------------------------------------------------------------- compile
    def compile(self, optimizer=None, loss=None, **kwargs):
        """Keras ``compile`` with one optimizer per ``optimizer_groups()`` group.

        Args:
            optimizer: one optimizer (the first group gets it, other groups a fresh copy
                of it), a dict ``{group: optimizer}``, or None (``default_optimizer``).
            loss: refused: the model owns its objective.
            **kwargs: ``<group>_optimizer=`` for one group (e.g.
                ``generator_optimizer=``); the rest (``jit_compile``,
                ``steps_per_execution``, ``run_eagerly``) goes to ``keras.Model.compile``.

        Under ``mixed_float16`` every optimizer is wrapped in a ``LossScaleOptimizer``.
        """
        if loss is not None:
            raise ValueError(f"{type(self).__name__} owns its objective; do not pass loss=")
        groups = self.optimizer_groups()
        chosen = _training.resolve_optimizers(self, optimizer, kwargs)
        self._optimizers = chosen
        super().compile(optimizer=next(iter(chosen.values())), auto_scale_loss=False, **kwargs)
        # slot variables now, outside any tf.function (and inside the strategy's scope if
        # compile is called there); each optimizer knows only its group's variables
        for group, variables in groups.items():
            if not chosen[group].built:
                chosen[group].build(variables)

    def compile_default(
        self, learning_rate: float | None = None, jit_compile: bool = False, **kwargs
    ):
        """Compile with the model's usual optimizers (``default_optimizer`` per group, at
        ``learning_rate``, default ``default_learning_rate``) and
        ``default_steps_per_execution`` (1 inside a ``tf.distribute`` scope); what ``tfdgm
        train`` calls."""
        rate = self.default_learning_rate if learning_rate is None else float(learning_rate)
        # inside a tf.distribute scope one step per call: Keras 3's multi-step loop failed
        # there ("You must feed a value for placeholder ... multi_step_on_iterator")
        steps = 1 if tf.distribute.has_strategy() else self.default_steps_per_execution
        kwargs.setdefault("steps_per_execution", steps)
        self.compile(
            optimizer={g: self.default_optimizer(g, rate) for g in self.optimizer_groups()},
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_compile_config(self):
        if self._optimizer_configs is None:
            return None
        return {"optimizers": dict(self._optimizer_configs), **self._compile_kwargs}

    def compile_from_config(self, config):
        optimizers, config = _training.split_compile_config(self, config)
        optimizers = {g: keras.optimizers.deserialize(c) for g, c in optimizers.items()}
        self.compile(optimizer=optimizers, **config)

    # ----------------------------------------------------------------- reports
    def summary_metrics(self, dataset) -> dict:
        """Extra figures of merit for a run's ``metrics.json`` (e.g. FD/KID for GANs)."""
        return {}

    def figures(self, dataset) -> dict:
        """Pictures for a run folder, ``{file stem: matplotlib Figure}``: a grid of 64
        samples for image data; for 2-D data, test data beside 2,000 samples and, with a
        density, its heat map. Subclasses add to ``super().figures(dataset)``."""
        from tfdgm import plotting

        return plotting.model_figures(self, dataset)

    # ----------------------------------------------------------------- export
    def export_endpoints(self) -> dict:
        """Functions to export: ``{name: (fn, [tf.TensorSpec, ...])}``, float32 inputs."""
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
            endpoints["log_prob"] = (lambda x: self.log_prob(x), [self.input_signature()])
        return endpoints

    @property
    def _default_save_signature(self):
        """None: the export's signatures are ``export_endpoints`` (Keras would add
        ``self(x)`` once ``build(shape)`` ran; no density, no ``call``)."""
        return None

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
