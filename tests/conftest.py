"""Shared fixtures: two logical CPUs (a real tf.distribute strategy), policy reset, and the
registry of models that the contract tests run over."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
try:
    tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
except RuntimeError:  # already initialized (doctests imported TF first): strategy tests skip
    pass

from tfdgm import data, registry  # noqa: E402

MODEL_NAMES = registry.names()
#: Every registered (model, variant) pair; variant None is the entry's base configuration.
CASES = registry.cases()
CASE_IDS = [name if variant is None else f"{name}[{variant}]" for name, variant in CASES]
NUM_EXAMPLES = 64


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Make ``--dist loadgroup`` see ``@pytest.mark.xdist_group``: pytest-xdist (3.8) names
    a grouped test ``nodeid@group`` by setting ``item._nodeid``, which pytest 9 no longer
    reads (its node ids live in ``item._id``), so every group was split over both workers
    and a module fixture behind a group ran on each. A wrapper: it acts after every
    implementation, xdist's included; a no-op where pytest still reads ``_nodeid`` or
    without loadgroup."""
    result = yield
    for item in items:
        grouped = vars(item).get("_nodeid")
        if grouped and hasattr(item, "_id") and item.nodeid != grouped:  # pytest >= 9
            item._id = type(item._id).parse(grouped)
    return result


_TESTS_RUN = [0]


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts under the float32 policy with the global seeds set (weights
    initialized alike on every run) and ends with a fresh Keras session. Python's full
    garbage collection (0.4 s each time, 5 minutes over the suite) runs every 25 tests."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")
    _TESTS_RUN[0] += 1
    keras.backend.clear_session(free_memory=_TESTS_RUN[0] % 25 == 0)


_DATASETS = {}


def tiny_dataset(entry_or_name) -> data.Dataset:
    """A dataset (the entry's default, or the one named) cut to NUM_EXAMPLES train and
    test examples, labels kept."""
    name = entry_or_name if isinstance(entry_or_name, str) else entry_or_name.datasets[0]
    if name not in _DATASETS:
        _DATASETS[name] = data.load(name).subset(NUM_EXAMPLES)
    return _DATASETS[name]


def make_tiny(name: str, seed: int = 0, variant: str | None = None):
    """(model, dataset) for the registered model ``name`` (and ``variant``) with its tiny
    hyperparameters, compiled the way ``tfdgm train`` compiles it (learning rate 1e-3)."""
    entry = registry.get(name)
    dataset_name, hparams = entry.variant(variant)
    dataset = tiny_dataset(dataset_name)
    model = entry.build(dataset, seed=seed, **hparams)
    model.compile_default(learning_rate=1e-3)
    return model, dataset


def training_data(model, dataset, split: str = "train", n: int | None = None) -> tuple:
    """``(x,)``, or ``(x, y)`` for a conditional model: what ``fit``/``evaluate`` take."""
    x = head(dataset.x_train if split == "train" else dataset.x_test, n)
    if not model.accepts_labels:
        return (x,)
    return x, (dataset.y_train if split == "train" else dataset.y_test)[:n]


def head(x, n: int | None):
    """The first ``n`` examples of an array or of a dict of modality arrays."""
    return tf.nest.map_structure(lambda a: a[:n], x)


def label_kwargs(model, dataset, n: int) -> dict:
    """``{"labels": the first n test labels}`` for a conditional model, else ``{}``."""
    return {"labels": dataset.y_test[:n]} if model.accepts_labels else {}


def endpoint_inputs(signature, dataset, rng=None):
    """Concrete inputs for an exported endpoint's float32/int32 input signature."""
    rng = rng or np.random.default_rng(0)
    values = []
    for spec in signature:
        if spec.name == "x":
            values.append(dataset.x_test[:5])
        elif isinstance(dataset.x_test, dict) and spec.name in dataset.x_test:  # a modality
            values.append(dataset.x_test[spec.name][:5])
        elif spec.name == "mask":  # every modality observed but the last in row 0
            mask = np.ones([5, *spec.shape[1:]], np.float32)
            mask[0, -1] = 0.0
            values.append(mask)
        elif spec.name == "labels":
            values.append(dataset.y_test[:5].astype(np.int32))
        elif spec.dtype == tf.int32 and spec.shape.rank == 0:
            values.append(np.int32(5))
        elif spec.dtype == tf.int32:
            values.append(np.array([1, 2], np.int32))
        else:
            shape = [5 if d is None else d for d in spec.shape]
            values.append(rng.standard_normal(shape).astype(spec.dtype.as_numpy_dtype))
    return values
