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
from tfdgm import distribute as _distribute

#: How many training examples ``fit`` hands to ``initialize(x)``.
INITIALIZE_EXAMPLES = 512
#: ``fit`` arguments only Keras' own array adapter handles (arrays then go to Keras).
KERAS_ONLY = {"validation_split", "steps_per_epoch", "class_weight"}


def arrays(x, none_ok: bool = False) -> bool:
    """Whether ``x`` is a NumPy array or a dict of them (None too, if ``none_ok``).

    >>> arrays(np.zeros(3)), arrays([1.0]), arrays(None, none_ok=True)
    (True, False, True)
    """
    if x is None:
        return none_ok
    values = x.values() if isinstance(x, dict) else [x]
    return all(isinstance(v, np.ndarray) for v in values) and bool(values)


def weighted_means(values: dict, weights=None) -> dict:
    """The batch means of per-example ``values`` (``{name: [batch]}``), as float32
    scalars: sum_i w_i v_i / sum_i w_i with ``weights`` w (0 where every weight is 0),
    else the plain means. A weight of 2 counts an example twice, a weight of 0 drops it.

    >>> v = weighted_means({"loss": tf.constant([1.0, 4.0])}, tf.constant([3.0, 0.0]))
    >>> float(v["loss"])
    1.0
    """
    values = {k: tf.cast(v, tf.float32) for k, v in values.items()}
    if weights is None:
        return {k: tf.reduce_mean(v) for k, v in values.items()}
    w = tf.reshape(tf.cast(weights, tf.float32), [-1])
    total = tf.reduce_sum(w)
    return {k: tf.math.divide_no_nan(tf.reduce_sum(w * v), total) for k, v in values.items()}


def weights_refusal(model) -> str | None:
    """Why ``model`` takes no sample weights (None when it does)."""
    if model.takes_sample_weight:
        return None
    from tfdgm.base import GenerativeModel

    name = type(model).__name__
    if model.uses_statistics:
        why = "it trains by summed statistics that it does not weigh (weighted_statistics)"
    elif type(model).training_update is not GenerativeModel.training_update:
        why = "its own training_update (adversarial, sampling or several phases) weighs none"
    else:
        why = "its objective is not written as per-example losses (example_objective)"
    return (
        f"{name} does not take sample weights: {why}. To weight examples, repeat or "
        "resample them (np.repeat, tf.data's rejection_resample)"
    )


def labels_of(y):
    """A batch's labels: None for none, or for the ``(batch, 0)`` placeholder of
    :func:`pipeline`."""
    if y is not None and y.shape.rank == 2 and y.shape[-1] == 0:
        return None
    return y


def check_weights(model, weights, what: str, size: int | None = None):
    """``weights``, one per example, as float32 NumPy ``[n]`` (None stays None): refused
    for a model that takes none, else checked finite, >= 0 and ``size`` long."""
    if weights is None:
        return None
    refusal = weights_refusal(model)
    if refusal is not None:
        raise ValueError(f"{refusal} ({what})")
    name = type(model).__name__
    w = np.asarray(weights, dtype=np.float32) if not isinstance(weights, tf.data.Dataset) else None
    if w is None or w.ndim not in (1, 2) or (w.ndim == 2 and w.shape[1] != 1):
        shape = getattr(w, "shape", type(weights).__name__)
        raise ValueError(f"{name}: {what} must be one weight per example, shape (n,); got {shape}")
    w = w.reshape(-1)
    if size is not None and len(w) != size:
        raise ValueError(f"{name}: {what} holds {len(w)} weights for {size} examples")
    bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
    if len(bad):
        raise ValueError(
            f"{name}: {what}: {w[bad[0]]} at index {bad[0]}; expected finite weights >= 0"
        )
    return w


def _again(first, rest):
    """A generator yielding ``first`` then the rest of the iterator ``rest``, each batch
    as a tuple (``(x,)`` for a bare ``x``), which is what Keras takes from a generator."""
    for batch in itertools.chain([first], rest):
        yield batch if isinstance(batch, tuple) else (batch,)


def keras_inputs(model, x, y=None, options=None, what="inputs", fitting=False):
    """``(x, y, probe, weights)``: ``fit``/``evaluate``'s inputs as Keras takes them,
    ``probe``, what :func:`check_inputs` validates up front, and the checked sample weights
    of arrays (:func:`check_weights`; None if not given). Ordinary Keras inputs work:

    - a tuple ``(x,)`` or ``(x, y)`` is unpacked;
    - a list of rows (numbers or 1-D arrays) becomes one array; ``[x]`` is ``x``;
    - a generator or iterator is handed on whole, its first batch (``probe``) checked;
    - a ``keras.utils.PyDataset``'s first batch is checked (later batches of all of
      these are checked in the compiled step, :mod:`tfdgm.checks`).

    Sample weights (``sample_weight=``, a third tuple element, a third element of a
    pipeline's batches) are taken by a model that ``takes_sample_weight`` and refused
    with a ValueError naming the model by any other; ``class_weight`` is refused.
    ``options`` are ``fit``'s (``fitting``) or ``evaluate``'s other keyword arguments;
    ``sample_weight`` is popped from them.
    """
    name = type(model).__name__
    options = {} if options is None else options
    weights = options.pop("sample_weight", None)
    if options.get("class_weight") is not None:
        raise ValueError(f"{name} does not take class_weight: its examples have no classes")
    if isinstance(x, tuple):
        x, y_in, tuple_weights = keras.utils.unpack_x_y_sample_weight(x)
        if tuple_weights is not None and weights is not None:
            raise ValueError(f"{name}: sample weights given twice (sample_weight= and in x)")
        weights = tuple_weights if weights is None else weights
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
    if weights is not None and not arrays(x):
        raise ValueError(
            f"{name}: sample_weight= goes with arrays; a pipeline, generator or PyDataset "
            "gives each batch's weights as its third element, (x, y, w) or (x, None, w)"
        )
    size = _data.num_examples(x) if arrays(x) else None
    return x, y, probe, check_weights(model, weights, f"sample_weight of {what}", size)


def _first_batch_size(x, batch_size=None, batched=False) -> int | None:
    """Examples in the first batch Keras makes of arrays ``x`` (``batch_size``, default
    32), or in ``x`` itself if ``batched`` (a generator's first batch); None for a
    pipeline (:func:`check_inputs` checks the batches it pulls) or anything else."""
    if isinstance(x, tuple):
        x = x[0]
    if x is None or isinstance(x, tf.data.Dataset):
        return None
    try:
        size = _data.num_examples(x)
    except TypeError:
        return None
    return size if batched else min(size, int(batch_size or 32))


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
            first.append(model.validate(tf.nest.map_structure(np.asarray, batch_x)))
            weights = None if weights is None else np.asarray(weights)
            size = len(tf.nest.flatten(first[-1])[0])
            check_weights(model, weights, f"the weights of the {what} pipeline's batches", size)
            labels.append(batch_y)
        if labels and all(v is not None for v in labels):
            y = np.concatenate([np.asarray(v) for v in labels])
        if first:  # a pipeline is not peeked again: that would move its shuffling on
            _distribute.check_replica_batch(model, _data.num_examples(first[0]), what)
        examples = None
        if first and not isinstance(first[0], dict):
            examples = np.concatenate(first)[:INITIALIZE_EXAMPLES]
    else:
        if isinstance(x, tuple):
            x, y_in, weights = keras.utils.unpack_x_y_sample_weight(x)
            y = y_in if y is None else y
            size = _data.num_examples(x)
            check_weights(model, weights, f"the weights of the {what} tuple", size)
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


def pipeline(x, y=None, weights=None, batch_size: int | None = None, shuffle=True):
    """In-memory arrays (labels ``y``, sample ``weights``) as a ``tf.data`` pipeline of
    ``(x, y, w)`` batches without autotuning (:func:`tfdgm.data.array_pipeline`)."""
    if weights is None:
        return _data.array_pipeline(x, y, batch_size, shuffle)
    # no labels: a (batch, 0) placeholder, as a tf.distribute strategy cannot split None
    y = np.zeros((len(weights), 0), np.float32) if y is None else y
    ds = tf.data.Dataset.from_tensor_slices((x, y, weights))
    if shuffle:
        ds = ds.shuffle(len(weights), reshuffle_each_iteration=True)
    return _data.without_autotune(ds.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE))


def _check_steps(model, steps_per_epoch):
    """Refuse a ``steps_per_epoch`` that is not a multiple of the model's
    ``steps_per_execution``: Keras 3 runs whole executions, so 7 steps at 4 per call
    would train 8 an epoch."""
    per_call = int(model.steps_per_execution or 1)
    if steps_per_epoch is not None and per_call > 1 and int(steps_per_epoch) % per_call:
        raise ValueError(
            f"{type(model).__name__}: steps_per_epoch={steps_per_epoch} is not a multiple of "
            f"steps_per_execution={per_call}; Keras would train "
            f"{-(-int(steps_per_epoch) // per_call) * per_call} steps an epoch. Use a "
            "multiple, or compile with steps_per_execution=1"
        )


def fit_inputs(model, x, y, batch_size, validation_data, options: dict):
    """``fit``'s inputs checked and made ready for Keras: ``(x, y, batch_size,
    validation_data, examples)``, ``examples`` being up to ``INITIALIZE_EXAMPLES``
    training examples for ``initialize`` (None when unknown). ``options`` (``fit``'s
    other keyword arguments) loses what the pipeline made here takes over."""
    _check_steps(model, options.get("steps_per_epoch"))
    x, y, probe, weights = keras_inputs(model, x, y, options, fitting=True)  # lists, (x,)...
    examples = check_inputs(model, probe, y)
    check_inputs(model, validation_data, what="validation_data")
    _distribute.check_replica_batch(model, _first_batch_size(probe, batch_size, probe is not x))
    val_batch = options.get("validation_batch_size", batch_size)
    val_size = _first_batch_size(validation_data, val_batch)
    _distribute.check_replica_batch(model, val_size, "validation_data")
    if isinstance(x, tf.data.Dataset):
        options.setdefault("shuffle", False)  # a pipeline shuffles itself
    elif arrays(x) and arrays(y, True) and not KERAS_ONLY.intersection(options):
        # in-memory arrays as a pipeline without tf.data autotuning (what Keras builds
        # stalls at every epoch's end: tfdgm.data.without_autotune)
        x = pipeline(x, y, weights, batch_size, options.pop("shuffle", True))
        options["shuffle"] = False  # the pipeline shuffles (Keras would warn it ignores it)
        y, size, batch_size = None, options.pop("validation_batch_size", batch_size), None
        val = (validation_data,) if arrays(validation_data) else validation_data
        if isinstance(val, tuple) and 0 < len(val) <= 3 and arrays(val[0]):
            val_x, val_y, val_w = keras.utils.unpack_x_y_sample_weight(val)
            if arrays(val_y, True):
                size_x = _data.num_examples(val_x)
                val_w = check_weights(model, val_w, "validation sample weights", size_x)
                validation_data = pipeline(val_x, val_y, val_w, batch_size=size, shuffle=False)
    elif weights is not None:  # Keras' array adapter drops weights that come without y
        raise ValueError(
            f"{type(model).__name__}: sample weights do not go with "
            f"{sorted(KERAS_ONLY.intersection(options))}: split the arrays yourself"
        )
    return x, y, batch_size, validation_data, examples


def evaluate_inputs(model, x, y, options: dict):
    """``evaluate``'s inputs checked and made ready for Keras, ``(x, y)``; arrays with
    sample weights become a pipeline (Keras' adapter drops weights that come without y)."""
    x, y, probe, weights = keras_inputs(model, x, y, options)
    check_inputs(model, probe, y)
    size = _first_batch_size(probe, options.get("batch_size"), probe is not x)
    _distribute.check_replica_batch(model, size, "the data")
    if weights is not None:
        x, y = pipeline(x, y, weights, options.pop("batch_size", None), shuffle=False), None
    return x, y
