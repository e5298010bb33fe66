"""The machinery behind :class:`tfdgm.GenerativeModel`'s ``fit`` and ``compile``.

Kept apart from ``base.py`` so that the contract reads in one sitting: one optimizer per
group, and statistics-based training (per-batch sums accumulated in non-trainable
variables, all-reduced across replicas, applied once per epoch by
:class:`ApplyStatistics`). Inputs are checked in :mod:`tfdgm.inputs`.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf

from tfdgm.inputs import INITIALIZE_EXAMPLES  # noqa: F401 (its old home)


def clone(optimizer):
    """A fresh optimizer with the same configuration (no shared slot variables)."""
    return type(optimizer).from_config(optimizer.get_config())


def reducible(logs: dict) -> dict:
    """``logs`` as Keras can reduce them: across the workers of a multi-worker strategy
    Keras 3 takes ``strategy.reduce("MEAN", v, axis=0)``, which fails on a scalar
    (tensorflow/tensorflow#72388), so there each value becomes a 1-vector."""
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    ):
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


# ---------------------------------------------------------------- optimizers
def split_compile_config(model, config: dict) -> tuple[dict, dict]:
    """``(optimizer configs by group, the other compile arguments)`` of a saved compile
    config: ``{"optimizers": ..., **kwargs}`` (``get_compile_config``), or from files
    written before contract v2, Keras' own ``optimizer`` or ``<group>_optimizer`` keys."""
    config = dict(config)
    if "optimizers" in config:
        return config.pop("optimizers"), config
    optimizers = {
        k[: -len("_optimizer")]: config.pop(k) for k in list(config) if k.endswith("_optimizer")
    }
    if "optimizer" in config:
        optimizers[next(iter(model.optimizer_groups()))] = config.pop("optimizer")
    keep = ("jit_compile", "steps_per_execution", "run_eagerly")
    return optimizers, {k: config[k] for k in keep if k in config}


def resolve_optimizers(model, optimizer, kwargs: dict) -> dict:
    """One optimizer per ``model.optimizer_groups()`` group from ``compile``'s arguments
    (see :meth:`GenerativeModel.compile`); pops the ``<group>_optimizer`` keywords from
    ``kwargs``, records the optimizers' configs for saving, and wraps each in a
    ``LossScaleOptimizer`` under ``mixed_float16``."""
    name = type(model).__name__
    groups = model.optimizer_groups()
    chosen = {}
    for group in groups:
        given = kwargs.pop(f"{group}_optimizer", None)
        if given is not None:
            chosen[group] = given
    unknown = [k for k in kwargs if k.endswith("_optimizer")]
    if isinstance(optimizer, dict):
        unknown += [f"{k}_optimizer" for k in optimizer if k not in groups]
        chosen = {**optimizer, **chosen}
        optimizer = None
    if unknown:
        raise ValueError(
            f"{name}: unknown optimizer group(s) {unknown}; its groups are {list(groups)}"
        )
    seen = set()
    for index, group in enumerate(groups):
        if group in chosen:
            opt = keras.optimizers.get(chosen[group])
        elif optimizer is not None:
            opt = keras.optimizers.get(optimizer)
            opt = opt if index == 0 else clone(opt)
        else:
            opt = model.default_optimizer(group, model.default_learning_rate)
        if id(opt) in seen:
            opt = clone(opt)
        seen.add(id(opt))
        chosen[group] = opt
    chosen = {group: chosen[group] for group in groups}
    model._optimizer_configs = {
        g: keras.optimizers.serialize(
            o.inner_optimizer if isinstance(o, keras.optimizers.LossScaleOptimizer) else o
        )
        for g, o in chosen.items()
    }
    model._compile_kwargs = {
        k: kwargs[k] for k in ("jit_compile", "steps_per_execution", "run_eagerly") if k in kwargs
    }
    if model.dtype_policy.name == "mixed_float16":
        chosen = {
            g: o
            if isinstance(o, keras.optimizers.LossScaleOptimizer)
            else keras.optimizers.LossScaleOptimizer(o, name=f"{g}_loss_scale")
            for g, o in chosen.items()
        }
    return chosen


# ---------------------------------------------------------------- statistics
def build_statistics(model):
    """Zeroed sums shaped like ``model.batch_statistics`` of a dummy batch."""
    stats = model.batch_statistics(model.dummy_batch())
    stats = stats[0] if isinstance(stats, tuple) else stats
    # every replica computes the same all-reduced sum: keep the first replica's copy
    model._statistic_sums = {
        k: model.add_weight(
            shape=v.shape,
            initializer="zeros",
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name=f"sum_{k}",
        )
        for k, v in stats.items()
    }
    model._statistic_batches = model.add_weight(
        shape=(),
        initializer="zeros",
        dtype="float32",
        trainable=False,
        aggregation="only_first_replica",
        name="statistic_batches",
    )


def accumulate_statistics(model, x, labels, weights=None):
    """Add a batch's statistics (summed over replicas; weighted sums given ``weights``)
    to the running sums; returns the batch's metrics."""
    extra = {} if weights is None else {"weights": weights}
    stats = model.batch_statistics(x, labels=labels, **extra)
    if isinstance(stats, tuple):
        stats, values = stats
    else:
        values = model._objective(x, labels, training=True, weights=weights)
    stats = {k: tf.cast(v, tf.float32) for k, v in stats.items()}
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        stats = context.all_reduce("sum", stats)
    # Keras' assign_add is assign(self + delta): spelled out so that it is clear every
    # replica writes the same all-reduced value
    for key, value in stats.items():
        total = model._statistic_sums[key]
        total.assign(tf.convert_to_tensor(total) + value)
    model._statistic_batches.assign(tf.convert_to_tensor(model._statistic_batches) + 1.0)
    return values


def reset_statistics(model):
    """Zero the running sums."""
    for total in [*model._statistic_sums.values(), model._statistic_batches]:
        total.assign(tf.zeros_like(total))


def apply_pending_statistics(model) -> bool:
    """Apply the statistics summed since the last call, if any; True if applied."""
    with model.distribute_strategy.scope():
        if float(model._statistic_batches.numpy()) == 0.0:
            return False
        stats = {k: tf.identity(tf.convert_to_tensor(v)) for k, v in model._statistic_sums.items()}
        model.apply_statistics(stats)
        reset_statistics(model)
    return True


class ApplyStatistics(keras.callbacks.Callback):
    """Statistics-based training: apply an epoch's summed statistics before validation
    (``on_test_begin`` inside ``fit``) or at the epoch's end, whichever comes first."""

    def on_train_begin(self, logs=None):
        reset_statistics(self.model)  # drop what an interrupted fit left behind

    def on_test_begin(self, logs=None):
        apply_pending_statistics(self.model)

    def on_epoch_end(self, epoch, logs=None):
        apply_pending_statistics(self.model)


# ---------------------------------------------------------------- precision
@contextlib.contextmanager
def global_policy(name: str | None):
    """Layers created inside get the Keras dtype policy ``name`` (None: no change), e.g.
    a network kept in float32 under ``mixed_float16`` (layers created inside a layer take
    the global policy, not their parent's)."""
    saved = keras.mixed_precision.global_policy()
    if name is not None:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(saved)


# ---------------------------------------------------------------- the train function
def runs_steps_in_one_loop(model) -> bool:
    """Whether :func:`multi_step_function` serves ``model``: several steps per call, traced
    (not ``run_eagerly``), without XLA (Keras compiles each step apart from the iterator
    ops), on one device (no ``tf.distribute`` strategy), and the base ``train_step``."""
    from tfdgm.base import GenerativeModel

    return (
        int(model.steps_per_execution) > 1
        and not model.run_eagerly
        and not model.jit_compile
        and not tf.distribute.has_strategy()
        and model.distribute_strategy is tf.distribute.get_strategy()
        and type(model).train_step is GenerativeModel.train_step
    )


def multi_step_function(model, fallback):
    """``fit``'s train function for ``steps_per_execution`` = k > 1: one ``tf.function``
    call runs up to k ``train_step`` calls in a ``tf.while_loop`` over the batches of the
    iterator, and returns the last step's logs (the trackers' results).

    Keras 3's own function runs each step as a nested ``tf.function`` inside a ``tf.cond``
    per step; here the step is traced into the loop's body once and only the fetch of the
    next batch is conditional (so the k-th step does not take a batch it will not use).
    The same steps run, on the same batches: when the data run out mid-call the loop stops
    there (a partial last call), and a call that finds no batch at all raises
    ``StopIteration``, which ends the epoch as Keras' function does. ``fallback`` (Keras'
    function) serves any input that is not a ``tf.data`` iterator (``train_on_batch``).
    """
    steps = int(model.steps_per_execution)

    def logs():  # what train_step returns, before any step of this call
        return reducible({tracker.name: tracker.result() for tracker in model.trackers})

    @tf.function(reduce_retracing=True)
    def run(iterator):
        def more(step, logs, batch):
            return tf.logical_and(step < steps, batch.has_value())

        def body(step, logs, batch):
            logs = model.train_step(batch.get_value())
            batch = tf.cond(step + 1 < steps, iterator.get_next_as_optional, lambda: batch)
            return step + 1, logs, batch

        first = iterator.get_next_as_optional()
        done, last, _ = tf.while_loop(more, body, (tf.constant(0), logs(), first))
        return done > 0, last

    def function(iterator):
        if not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            return fallback(iterator)
        ran, last = run(iterator)
        if not bool(ran):
            raise StopIteration
        return last

    return function
