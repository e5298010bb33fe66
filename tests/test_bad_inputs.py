"""Bad inputs are refused, loudly, naming the model: every registered model x {NaN, inf,
out of support, wrong shape, wrong dtype} x {first batch, later batch}.

First batch: ``fit`` on a NumPy array whose fourth row is bad (checked up front, or when
the step is traced). Later batch: one training step on a bad batch (eager, so no model
is traced; the same asserts run in the compiled step, see the fit tests below), which
must raise before any weight or optimizer state changes. (That good batches pass the
same checks, compiled, is what every fit of the contract suite shows.)
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MODEL_NAMES, make_tiny

from tfdgm import checks

KINDS = ("nan", "inf", "support", "shape", "dtype")


def _bad(x: np.ndarray, kind: str, support: str, num_categories, row: int = 3):
    """``x`` spoiled in one way (None when ``kind`` cannot apply to this support)."""
    x = np.array(x, np.float32)
    flat = x.reshape(len(x), -1)
    if kind in ("nan", "inf"):
        flat[row, 1] = np.nan if kind == "nan" else -np.inf
    elif kind == "support":
        if support == "real":
            return None  # every finite value is in the support
        flat[row, 1] = 0.5 if support == "binary" else float(num_categories)
    elif kind == "shape":
        return np.concatenate([x, x[..., :1]], axis=-1)
    elif kind == "dtype":
        return x.astype(np.complex64) + 1j
    return flat.reshape(x.shape)


def _state(model):
    groups = model.optimizer_groups() if model._optimizers else {}
    variables = [*model.weights, *[v for g in groups for v in model.optimizer_for(g).variables]]
    return [np.array(v.numpy()) for v in variables]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_bad_input_is_refused_naming_the_model(name):
    model, dataset = make_tiny(name)
    model.run_eagerly = True
    cls = type(model).__name__
    tried = 0
    x = tf.nest.map_structure(lambda a: a[:16], dataset.x_train)
    for kind in KINDS:
        if model.events is None:
            bad = _bad(x, kind, model.support, model.num_categories)
        else:  # a model of named modalities: spoil the one of highest rank
            key = max(model.events, key=lambda k: len(model.events[k].shape))
            spec = model.events[key]
            spoilt = _bad(x[key], kind, spec.support, spec.num_categories)
            bad = None if spoilt is None else {**x, key: spoilt}
        if bad is None:
            continue
        with pytest.raises(ValueError, match=cls) as first:
            model.fit(bad, batch_size=8, epochs=1, verbose=0)
        before = _state(model)
        with pytest.raises(ValueError, match=cls) as later, checks.BatchPosition(model):
            model.train_step(tf.nest.map_structure(lambda a: tf.constant(a[:8]), bad))
        for a, b in zip(before, _state(model)):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}, {kind}: the state changed")
        if kind in ("nan", "inf", "support"):  # the message shows the value and where
            value = {"nan": "nan", "inf": "-inf", "support": ""}[kind]
            assert value in str(later.value) and "at index [3, 1]" in str(later.value), later
        assert "Traceback" not in str(first.value)
        tried += 2
    assert tried >= 8


@pytest.mark.parametrize("name, jit", [("vae", False), ("factorized", True)])
def test_a_bad_later_batch_stops_fit_before_the_update(name, jit):
    """Compiled (and XLA-compiled, where the asserts run in the input pipeline) fit on a
    pipeline whose 6th batch is bad: a ValueError naming the model, the batch, the value,
    and the weights are those after batch 5."""
    model, dataset = make_tiny(name)
    model.compile_default(jit_compile=jit, steps_per_execution=1)  # batch by batch
    x = _bad(dataset.x_train[:64], "support", model.support, model.num_categories, row=43)
    snapshots = {}
    snapshot = lambda batch, logs: snapshots.update({batch: _state(model)})
    record = tf.keras.callbacks.LambdaCallback(on_train_batch_end=snapshot)
    with pytest.raises(ValueError) as error:
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), callbacks=[record], verbose=0)
    message = str(error.value)
    assert message.startswith(f"{type(model).__name__}: training batch 6 of epoch 1 holds 0.5")
    assert "at index [3, 1]" in message and "expected binary values in {0, 1}" in message
    assert max(snapshots) == 4  # 0-based: batches 1..5 trained
    for a, b in zip(snapshots[4], _state(model)):
        np.testing.assert_array_equal(a, b)


def test_a_batch_of_the_wrong_shape_is_caught_when_the_shape_is_only_known_at_run_time():
    model, _ = make_tiny("vae")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def step(x):
        with tf.control_dependencies(checks.batch_checks(model, x)):
            return tf.identity(x)

    step(tf.zeros([4, 64]))
    with pytest.raises(ValueError, match=r"VAE: a training batch of shape \(4, 65\); expected"):
        with checks.BatchPosition(model):
            step(tf.zeros([4, 65]))


# ---------------------------------------------------------------- ordinary Keras inputs
BAD_COUNTS = (-1, 2.5, "3", True, None)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bad_sample_counts_and_sample_weights_are_refused_naming_the_model(name):
    """sample(-1 | 2.5 | "3" | True | None) and every way of passing sample weights to a
    model that takes none (negative ones to a model that takes them), class weights or
    rows of different lengths raise a ValueError naming the model before any step;
    sample(0) is an empty batch of the event shape, sample(np.int64(1)) one sample."""
    model, dataset = make_tiny(name)
    cls = type(model).__name__
    for count in BAD_COUNTS:
        with pytest.raises(ValueError, match=rf"^{cls}\.sample: num_samples must be an integer"):
            model.sample(count)
    shapes = model.event_shape
    shapes = [shapes[k] for k in sorted(shapes)] if isinstance(shapes, dict) else [shapes]
    for part, shape in zip(tf.nest.flatten(model.sample(0)), shapes, strict=True):
        assert tuple(part.shape) == (0, *shape), (name, part.shape)
    for part in tf.nest.flatten(model.sample(np.int64(1), seed=(0, 1))):
        assert part.shape[0] == 1, (name, part.shape)
    data = (tf.nest.map_structure(lambda a: a[:16], dataset.x_train),)
    data += (dataset.y_train[:16],) if model.accepts_labels else ()
    weights = np.full(16, -1.0 if model.takes_sample_weight else 1.0, np.float32)
    before = _state(model)
    refusals = [
        lambda: model.fit(*data, sample_weight=weights, verbose=0),
        lambda: model.fit((*data, *([None] if len(data) == 1 else []), weights), verbose=0),
        lambda: model.fit(*data, class_weight={0: 1.0}, verbose=0),
        lambda: model.evaluate(*data, sample_weight=weights, verbose=0),
    ]
    if model.events is None:  # rows of different lengths
        rows = [list(r.ravel()) for r in data[0][:4]]
        rows[2] = rows[2][:-1]
        refusals.append(lambda: model.fit(rows, *data[1:], verbose=0))
    for refused in refusals:
        with pytest.raises(ValueError, match=cls):
            refused()
    for a, b in zip(before, _state(model)):
        np.testing.assert_array_equal(a, b, err_msg=f"{name}: the state changed")


class _Batches(keras.utils.PyDataset):
    def __init__(self, x, batch_size):
        super().__init__()
        self.x, self.batch_size = x, batch_size

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        return self.x[index * self.batch_size : (index + 1) * self.batch_size]


def test_lists_tuples_generators_and_py_datasets_train_like_the_array():
    """fit/evaluate on a list of rows, ``[x]``, ``(x,)``, a generator of batches and a
    ``keras.utils.PyDataset`` give exactly the fit on the array (a counting model: its
    parameters after one epoch are the data's counts)."""
    model, dataset = make_tiny("factorized")
    x = dataset.x_train[:32]
    model.fit(x, batch_size=8, shuffle=False, verbose=0)
    expected = [w.numpy() for w in model.weights]
    loss = model.evaluate(x, batch_size=8, verbose=0)
    forms = {
        "list of rows": lambda: [list(map(float, row)) for row in x],
        "[x]": lambda: [x],
        "(x,)": lambda: (x,),
        "generator": lambda: (x[i : i + 8] for i in range(0, len(x), 8)),
        "PyDataset": lambda: _Batches(x, 8),
    }
    for form, make in forms.items():
        for w in model.weights:
            w.assign(tf.zeros_like(w))
        model.fit(make(), batch_size=None if form in ("generator", "PyDataset") else 8, verbose=0)
        for a, b in zip(expected, model.weights):
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-6, err_msg=form)
        assert model.evaluate(make(), verbose=0) == pytest.approx(loss, rel=1e-6), form
