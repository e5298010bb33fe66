"""What :class:`tfdgm.GenerativeModel` does with its inputs before any step runs.

``fit``, ``evaluate`` and the density methods take ordinary Keras inputs (arrays, dicts
of arrays for named modalities, ``(x, y)`` tuples, lists of rows, generators,
``keras.utils.PyDataset``, ``tf.data`` pipelines) and check them up front against the
model's event shape and support: :func:`validate` for arrays, :func:`check_inputs` for
the first batches of a pipeline. Later batches are checked inside the compiled step
(:mod:`tfdgm.checks`). In-memory arrays become a ``tf.data`` pipeline without autotuning
(:func:`fit_inputs`).
"""

from __future__ import annotations

import collections.abc
import itertools

import keras
import numpy as np
import tensorflow as tf

from tfdgm import data as _data

#: How many training examples ``fit`` hands to ``initialize(x)``.
INITIALIZE_EXAMPLES = 512
#: ``fit`` arguments only Keras' own array adapter handles (arrays then go to Keras).
KERAS_ONLY = {"validation_split", "steps_per_epoch", "class_weight", "sample_weight"}


def arrays(x, none_ok: bool = False) -> bool:
    """Whether ``x`` is a NumPy array or a dict of them (None too, if ``none_ok``).

    >>> arrays(np.zeros(3)), arrays([1.0]), arrays(None, none_ok=True)
    (True, False, True)
    """
    if x is None:
        return none_ok
    values = x.values() if isinstance(x, dict) else [x]
    return all(isinstance(v, np.ndarray) for v in values) and bool(values)


def _no_weights(model, weights, what: str) -> None:
    if weights is not None:
        raise ValueError(
            f"{type(model).__name__} does not take sample weights ({what}): its objective is "
            "an unweighted mean over examples. To weight examples, repeat or resample them "
            "(np.repeat, tf.data's rejection_resample)"
        )


def _again(first, rest):
    """A generator yielding ``first`` then the rest of the iterator ``rest``, each batch
    as a tuple (``(x,)`` for a bare ``x``), which is what Keras takes from a generator."""
    for batch in itertools.chain([first], rest):
        yield batch if isinstance(batch, tuple) else (batch,)


def keras_inputs(model, x, y=None, options=None, what="inputs", fitting=False):
    """``(x, y, probe)``: ``fit``/``evaluate``'s inputs as Keras takes them, and ``probe``,
    what :func:`check_inputs` validates up front. Ordinary Keras inputs work:

    - a tuple ``(x,)`` or ``(x, y)`` is unpacked;
    - a list of rows (numbers or 1-D arrays) becomes one array; ``[x]`` is ``x``;
    - a generator or iterator is handed on whole, its first batch (``probe``) checked;
    - a ``keras.utils.PyDataset``'s first batch is checked (later batches of all of
      these are checked in the compiled step, :mod:`tfdgm.checks`).

    Sample weights (``sample_weight=``, a third tuple element) and ``class_weight`` are
    refused with a ValueError naming the model: no tfdgm objective is weighted yet.
    ``options`` are ``fit``'s (``fitting``) or ``evaluate``'s other keyword arguments.
    """
    name = type(model).__name__
    options = options or {}
    _no_weights(model, options.get("sample_weight"), f"sample_weight= of {what}")
    if options.get("class_weight") is not None:
        raise ValueError(f"{name} does not take class_weight: its examples have no classes")
    if isinstance(x, tuple):
        x, y_in, weights = keras.utils.unpack_x_y_sample_weight(x)
        _no_weights(model, weights, f"a third element of the {what} tuple")
        y = y_in if y is None else y
    if isinstance(x, list):
        if len(x) == 1 and model.events is None and np.ndim(x[0]) == len(model.event_shape) + 1:
            x = x[0]  # Keras' one-input list [x]
        else:
            try:
                x = np.asarray(x)
            except ValueError:
                raise ValueError(
                    f"{name}: {what} is a list whose rows are not all of one shape; expected "
                    f"rows of shape {tuple(model.event_shape or ())}"
                ) from None
    probe = x
    if isinstance(x, keras.utils.PyDataset):
        probe = x[0] if len(x) else None
    elif isinstance(x, collections.abc.Iterator) and not isinstance(x, tf.data.Iterator):
        try:
            probe = next(x)
        except StopIteration:
            raise ValueError(f"{name}: {what} is an empty generator") from None
        x = _again(probe, x)  # Keras takes generators (not other iterators)
        if fitting:
            options.setdefault("shuffle", False)  # as for a pipeline: Keras would warn
    return x, y, probe


def check_inputs(model, x, y=None, what="inputs"):
    """Validate ``x`` (array, dict, tuple or ``tf.data`` pipeline) and refuse labels for
    a model that cannot use them. Returns up to ``INITIALIZE_EXAMPLES`` examples."""
    name = type(model).__name__
    if x is None:
        return None
    if isinstance(x, tf.data.Dataset):
        first = []
        labels = []
        for batch in x.take(4):
            batch_x, batch_y, weights = keras.utils.unpack_x_y_sample_weight(batch)
            _no_weights(model, weights, f"a third element of the {what} pipeline's batches")
            first.append(model.validate(tf.nest.map_structure(np.asarray, batch_x)))
            labels.append(batch_y)
        if labels and all(v is not None for v in labels):
            y = np.concatenate([np.asarray(v) for v in labels])
        examples = None
        if first and not isinstance(first[0], dict):
            examples = np.concatenate(first)[:INITIALIZE_EXAMPLES]
    else:
        if isinstance(x, tuple):
            x, y_in, weights = keras.utils.unpack_x_y_sample_weight(x)
            _no_weights(model, weights, f"a third element of the {what} tuple")
            y = y_in if y is None else y
        elif (
            isinstance(x, list)
            and len(x)
            and isinstance(x[0], np.ndarray)
            and (x[0].ndim == len(model.event_shape) + 1 if model.events is None else True)
        ):
            x = x[0]  # Keras-style [x] list
        checked = model.validate(x)
        examples = None if isinstance(checked, dict) else checked[:INITIALIZE_EXAMPLES]
    if y is not None and not model.accepts_labels:
        raise ValueError(
            f"{name} does not use labels, but {what} came with labels (y); fit it on x "
            "alone, or use a conditional model (num_classes=...)"
        )
    if model.accepts_labels:
        if y is None:
            raise ValueError(f"{name} is conditional: {what} need labels, fit(x, y)")
        if model.label_spec is not None:
            model.label_spec.check(np.asarray(y), f"{name} labels")
    return examples




def validate(model, x):
    """``x`` checked against ``model``'s event shape and support, as float32 NumPy (a
    dict of arrays for a model of named modalities); see ``GenerativeModel.validate``."""
    name = type(model).__name__
    if model.events is not None:
        if not isinstance(x, dict) or set(x) != set(model.events):
            got = sorted(x) if isinstance(x, dict) else type(x).__name__
            raise ValueError(f"{name}: expected a dict with keys {sorted(model.events)}, got {got}")
        out = {k: spec.check(x[k], f"{name}[{k!r}]") for k, spec in model.events.items()}
        sizes = {len(v) for v in out.values()}
        if len(sizes) > 1:
            raise ValueError(f"{name}: modalities have different batch sizes {sorted(sizes)}")
        return out
    if isinstance(x, dict):
        raise ValueError(f"{name} takes an array, not a dict of inputs")
    return _data.check_array(x, model.event_shape, model.support, model.num_categories, name=name)


def prepare(model, x):
    """``x`` as a float32 tensor, validated first when called eagerly on concrete data
    (inside a traced function, in a train step or an export, it is not)."""
    if tf.executing_eagerly() and not isinstance(x, tf.Variable):
        concrete = x if isinstance(x, dict) else np.asarray(x)
        x = model.validate(concrete)
    return tf.nest.map_structure(lambda t: tf.cast(tf.convert_to_tensor(t), tf.float32), x)


def fit_inputs(model, x, y, batch_size, validation_data, options: dict):
    """``fit``'s inputs checked and made ready for Keras: ``(x, y, batch_size,
    validation_data, examples)``, ``examples`` being up to ``INITIALIZE_EXAMPLES``
    training examples for ``initialize`` (None when unknown). ``options`` (``fit``'s
    other keyword arguments) loses what the pipeline made here takes over."""
    x, y, probe = keras_inputs(model, x, y, options, fitting=True)  # lists, (x,)...
    examples = check_inputs(model, probe, y)
    check_inputs(model, validation_data, what="validation_data")
    if isinstance(x, tf.data.Dataset):
        options.setdefault("shuffle", False)  # a pipeline shuffles itself
    elif arrays(x) and arrays(y, True) and not KERAS_ONLY.intersection(options):
        # in-memory arrays as a pipeline without tf.data autotuning (what Keras builds
        # stalls at every epoch's end: tfdgm.data.without_autotune)
        x = _data.array_pipeline(x, y, batch_size, options.pop("shuffle", True))
        y, size, batch_size = None, options.pop("validation_batch_size", batch_size), None
        val = (validation_data,) if arrays(validation_data) else validation_data
        if isinstance(val, tuple) and 0 < len(val) <= 2 and all(map(arrays, val)):
            validation_data = _data.array_pipeline(*val, batch_size=size, shuffle=False)
    return x, y, batch_size, validation_data, examples
