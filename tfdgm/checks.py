"""Every batch checked inside the compiled step, before any weight changes.

``fit`` validates arrays up front and the first batches of a ``tf.data`` pipeline
(:func:`tfdgm.inputs.check_inputs`); what comes later, from a pipeline, a generator or
a ``keras.utils.PyDataset``, is checked here, in ``train_step`` and ``test_step``:

- at trace time (once per input signature): a numeric dtype and a batch shape of
  ``(batch, *event_shape)`` (per modality for dict events), else ``ValueError``;
- in the graph, for every batch: every value finite and in the support (binary values
  in {0, 1}; integer categories in [0, K); real values finite), and the labels of a
  conditional model (``label_spec``) likewise. A failing ``tf.debugging.Assert`` names
  the model, the split, the first offending value and its index (sample weights must be
  finite and >= 0); the step's update runs under ``tf.control_dependencies`` of these
  asserts, so no weight changes first.

``fit``/``evaluate`` turn the assert's ``InvalidArgumentError`` into a ``ValueError``
that also names the epoch and batch (:class:`BatchPosition`). XLA drops assert ops
silently, so under ``jit_compile`` ``fit`` maps ``tf.data`` inputs through the same
checks, outside the compiled step (:func:`xla_pipelines`). ``model.check_batches =
False`` turns the in-graph checks off. Their cost, by ``python
benchmarks/bench_batch_check.py --threads 1`` (CPU seconds, runs interleaved) on the shared
2-core machine at a load of about 4 on 2026-12-07, two runs (``--steps 100 --repeats 5``,
then ``--steps 200 --repeats 11``): +5.5 % and +1.4 % of the step for the 784-512-256-32
VAE at batch 128, -6.4 % and +5.7 % for the digits VAE at batch 64: within the noise of
``fit`` on this machine. Train steps looped in one graph (``python
benchmarks/bench_batch_check_loop.py``, one thread, median of 9 alternated repeats), three
runs at the same load: -0.8, +0.9, +3.1 % (digits VAE, batch 64; 0.8-1.0 ms of CPU a
step) and -3.9, +1.2, +0.3 % (784-512-256-32 VAE, batch 128; 11-12 ms): about 1 %, under
the 3 % target, with a run-to-run spread of a few %.
"""

from __future__ import annotations

import functools
import re

import keras
import numpy as np
import tensorflow as tf

#: Prefix of every assert message of this module (how ``fit`` recognizes them).
MARKER = "tfdgm batch check:"


def _specs(model) -> dict:
    """``{name used in messages: (key or None, EventSpec)}`` of the model's inputs."""
    from tfdgm.data import EventSpec

    name = type(model).__name__
    if model.events is not None:
        return {f"{name}[{k!r}]": (k, spec) for k, spec in model.events.items()}
    return {name: (None, EventSpec(model.event_shape, model.support, model.num_categories))}


def _assert_in(values: tf.Tensor, spec, label: str, split: str) -> list:
    """Asserts that ``values`` (any numeric dtype) are a batch of ``spec``'s shape (when
    the static shape leaves it open), finite and in ``spec``'s support."""
    if not (values.dtype.is_floating or values.dtype.is_integer or values.dtype.is_bool):
        raise ValueError(f"{label}: a {split} batch of dtype {values.dtype.name}; expected numbers")
    expected = f"; expected ({', '.join(['batch', *map(str, spec.shape)])})"
    if values.shape.rank is not None and (
        values.shape.rank != len(spec.shape) + 1
        or not values.shape[1:].is_compatible_with(spec.shape)
    ):
        raise ValueError(f"{label}: a {split} batch of shape {tuple(values.shape)}{expected}")
    asserts = []
    if not values.shape[1:].is_fully_defined():  # known only when the batch comes
        shape = tf.shape(values, out_type=tf.int32)
        same = tf.size(shape) == len(spec.shape) + 1
        same &= tf.reduce_all(tf.equal(shape[1:], tf.constant(spec.shape, tf.int32)))
        head = f"{MARKER} {label}: a {split} batch of shape"
        asserts.append(tf.debugging.Assert(same, [head, shape, expected]))
    x = tf.cast(values, tf.float32)
    ok = tf.math.is_finite(x)
    expected = "finite values"
    if spec.support == "binary":
        ok &= tf.equal(x, 0.0) | tf.equal(x, 1.0)
        expected = "binary values in {0, 1}"
    elif spec.support == "categorical":
        ok &= tf.equal(x, tf.floor(x)) & (x >= 0.0) & (x < float(spec.num_categories))
        expected = f"integer categories in [0, {spec.num_categories})"
    bad = tf.where(tf.logical_not(ok))[:1]  # evaluated only when the assert fails
    asserts.append(tf.debugging.Assert(
        tf.reduce_all(ok),
        [f"{MARKER} {label}: a {split} batch holds", tf.gather_nd(x, bad), "at index", bad,
         f"; expected {expected}"],
        summarize=8,
    ))  # fmt: skip
    return asserts


def batch_checks(model, data, split: str = "training") -> list:
    """The assert ops of one batch ``data`` (``x``, ``(x, y)`` or ``(x, y, w)``); empty
    when ``model.check_batches`` is False. Shape and dtype errors raise at trace time."""
    if not getattr(model, "check_batches", True):
        return []
    from tfdgm.inputs import labels_of

    x, y, weights = keras.utils.unpack_x_y_sample_weight(data)
    y, checks = labels_of(y), []
    for label, (key, spec) in _specs(model).items():
        if key is not None and (not isinstance(x, dict) or key not in x):
            raise ValueError(f"{label}: a {split} batch without the modality {key!r}")
        values = tf.convert_to_tensor(x if key is None else x[key])
        checks.extend(_assert_in(values, spec, label, split))
    label_spec = getattr(model, "label_spec", None)
    if y is not None and label_spec is not None:
        name = f"{type(model).__name__} labels"
        checks.extend(_assert_in(tf.convert_to_tensor(y), label_spec, name, split))
    if weights is not None:
        checks.append(_assert_weights(tf.convert_to_tensor(weights), type(model).__name__, split))
    return checks


def _assert_weights(weights: tf.Tensor, name: str, split: str):
    """The assert that a batch's sample weights are finite and >= 0."""
    w = tf.reshape(tf.cast(weights, tf.float32), [-1])
    ok = tf.math.is_finite(w) & (w >= 0.0)
    bad = tf.where(tf.logical_not(ok))[:1]
    return tf.debugging.Assert(
        tf.reduce_all(ok),
        [f"{MARKER} {name}: the sample weights of a {split} batch hold", tf.gather_nd(w, bad),
         "at index", bad, "; expected finite weights >= 0"],
        summarize=8,
    )  # fmt: skip


def checked_pipeline(model, dataset: tf.data.Dataset, split: str) -> tf.data.Dataset:
    """``dataset`` with every element checked by :func:`batch_checks` (outside any XLA
    cluster: the tf.data runtime runs the asserts)."""

    def check(*element):
        data = element[0] if len(element) == 1 else element
        with tf.control_dependencies(batch_checks(model, data, split)):
            return tf.nest.map_structure(tf.identity, data)

    return dataset.map(check)


def xla_pipelines(model, x, validation_data):
    """Under ``jit_compile`` (where XLA drops the in-step asserts), ``x`` and
    ``validation_data`` with their ``tf.data`` batches checked in the pipeline."""
    if not getattr(model, "check_batches", True) or not getattr(model, "jit_compile", False):
        return x, validation_data
    if isinstance(x, tf.data.Dataset):
        x = checked_pipeline(model, x, "training")
    if isinstance(validation_data, tf.data.Dataset):
        validation_data = checked_pipeline(model, validation_data, "test")
    return x, validation_data


class BatchPosition(keras.callbacks.Callback):
    """Where ``fit`` is (epoch, training or test batch); as a context manager around
    ``fit``/``evaluate`` it re-raises a failed batch check as a ``ValueError`` saying so.

    >>> with BatchPosition(None):
    ...     pass
    """

    def __init__(self, model):
        super().__init__()
        self.owner = model
        self.where = ""

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _batches(self, split: str, batch: int) -> str:
        steps = int(getattr(self.owner, "steps_per_execution", 1) or 1)  # one call runs these
        return f"{split} batch {batch + 1}" if steps == 1 else (
            f"one of {split} batches {batch + 1}-{batch + steps}"
        )  # fmt: skip

    def on_train_batch_begin(self, batch, logs=None):
        epoch = getattr(self, "_epoch", 0) + 1
        self.where = f"{self._batches('training', batch)} of epoch {epoch}"

    def on_test_batch_begin(self, batch, logs=None):
        self.where = self._batches("test", batch)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if not isinstance(error, tf.errors.InvalidArgumentError) or MARKER not in str(error):
            return False
        raise ValueError(self.describe(str(error))) from None

    def describe(self, text: str) -> str:
        """The one-line message of a failed check (``text``: the assert's error, whose
        data are the message head, the value, "at index", the index, the expectation)."""
        if "Summarized data:" in text:  # eager: one datum a line, strings as b'...'
            parts = text.split("Summarized data:", 1)[1].strip().split("\n")
            parts = [re.sub(r"^b'(.*)'$", r"\1", p.strip()) for p in parts]
        else:  # graph: assertion failed: [head] [value] [at index] [[i j]] [tail]
            body = text.split("assertion failed:", 1)[-1].split("\n")[0]
            parts = re.findall(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]", body)
        numbers = lambda part: ", ".join(re.findall(r"-?\d+", part))
        if len(parts) == 5:  # a value out of support
            head, value, _, index, tail = parts
            found = f"{value.strip()} at index [{numbers(index)}] (row, then position in the event)"
        elif len(parts) == 3:  # a shape
            head, shape, tail = parts
            found = f"({numbers(shape)})"
        else:
            return " ".join(text.split())
        head = head.replace(MARKER, "").strip()
        if self.where:
            head = re.sub(r"a (training|test) batch", self.where, head, count=1)
        return f"{head} {found}{tail}"


def sample_count(model, num_samples):
    """``num_samples`` of ``model.sample`` checked the Keras way: a Python or NumPy integer
    (or an integer tensor) >= 0, else a ValueError naming the model. A tensor being traced
    (an export's signature) passes unchecked.

    >>> sample_count(None, 3)
    3
    >>> sample_count(None, 2.5)
    Traceback (most recent call last):
    ...
    ValueError: NoneType.sample: num_samples must be an integer >= 0, got 2.5 (float)
    """
    if tf.is_tensor(num_samples) and not hasattr(num_samples, "numpy"):
        return num_samples  # symbolic
    value = num_samples.numpy() if tf.is_tensor(num_samples) else num_samples
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if tf.is_tensor(num_samples):  # a 0-d integer tensor
        integral = num_samples.dtype.is_integer and num_samples.shape.rank == 0
    if not integral or int(value) < 0:
        raise ValueError(
            f"{type(model).__name__}.sample: num_samples must be an integer >= 0, got "
            f"{value!r} ({type(value).__name__})"
        )
    return num_samples if tf.is_tensor(num_samples) else int(value)


def checked_sample(sample):
    """``sample`` (a model's method) with ``num_samples`` checked by :func:`sample_count`;
    ``sample(0)`` returns an empty float32 batch without running the sampler."""
    if getattr(sample, "_checks_num_samples", False):
        return sample

    @functools.wraps(sample)
    def wrapper(self, num_samples, *args, **kwargs):
        num_samples = sample_count(self, num_samples)
        if isinstance(num_samples, int) and num_samples == 0 and self.events is None:
            return tf.zeros([0, *self.event_shape], tf.float32)
        return sample(self, num_samples, *args, **kwargs)

    wrapper._checks_num_samples = True
    return wrapper
