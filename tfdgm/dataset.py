"""The `Dataset` a model trains on, the `EventSpec` its examples are checked against, and
the `tf.data` pipelines tfdgm builds from in-memory arrays.

A `Dataset` is a train/test pair of float32 arrays (or dicts of them, one per modality)
with a declared `support`: "binary" (values in {0, 1}), "categorical" (integer levels
0..K-1 stored as float32) or "real". The named datasets and their loaders live in
`tfdgm.data`, which re-exports everything here (`tfdgm.data.Dataset` is this class).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

SUPPORTS = ("binary", "categorical", "real")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test pair of float32 arrays with the support the models must respect.

    Args:
        name: registry name, e.g. "digits-categorical".
        x_train: (num_train, *event_shape) float32 array.
        x_test: (num_test, *event_shape) float32 array.
        support: "binary", "categorical" or "real".
        num_categories: K for categorical, 2 for binary, None for real.
        image_shape: shape to draw one example as a picture, e.g. (8, 8); None for 2-D sets.
        description: one line on where the data comes from and how it was transformed.
        y_train, y_test: int32 class labels ``(num_train,)`` / ``(num_test,)``, or None
            (digits: the digit; 8gaussians: the mixture component).
        num_classes: number of label classes, or None without labels.
        num_levels: K of the quantized source of a dequantized ("-continuous") set, whose
            values are (x + u) / K: a density on [0, 1)^D gives the discrete data's
            log-likelihood after adding D log K. None otherwise.
        events: for a set of named modalities, ``{name: EventSpec}``; ``x_train`` and
            ``x_test`` are then dicts of arrays and ``support`` is ``"mixed"``.
    """

    name: str
    x_train: np.ndarray
    x_test: np.ndarray
    support: str
    num_categories: int | None
    image_shape: tuple | None
    description: str
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None
    num_classes: int | None = None
    num_levels: int | None = None
    events: dict | None = None

    def __post_init__(self):
        if self.support not in SUPPORTS and not (self.support == "mixed" and self.events):
            raise ValueError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        for field in ("x_train", "x_test"):
            x = getattr(self, field)
            x = {k: np.asarray(v, np.float32) for k, v in x.items()} if self.events else x
            object.__setattr__(self, field, x if self.events else np.asarray(x, np.float32))
        if (self.y_train is None) != (self.y_test is None):
            raise ValueError("give both y_train and y_test, or neither")
        if self.y_train is not None:
            for field, x in (("y_train", self.x_train), ("y_test", self.x_test)):
                y = np.asarray(getattr(self, field))
                if y.shape != (num_examples(x),) or not np.array_equal(y, np.round(y)):
                    raise ValueError(
                        f"{field} must be {num_examples(x)} integer labels, got {y.shape}"
                    )
                object.__setattr__(self, field, y.astype(np.int32))
            num_classes = self.num_classes or int(max(self.y_train.max(), self.y_test.max()) + 1)
            object.__setattr__(self, "num_classes", int(num_classes))
            if (
                min(self.y_train.min(), self.y_test.min()) < 0
                or max(self.y_train.max(), self.y_test.max()) >= num_classes
            ):
                raise ValueError(f"labels must lie in [0, {num_classes})")

    @property
    def has_labels(self) -> bool:
        return self.y_train is not None

    def subset(self, num_train: int, num_test: int | None = None) -> Dataset:
        """The first ``num_train`` train and ``num_test`` test examples (labels kept)."""
        num_test = num_train if num_test is None else num_test
        labels = {}
        if self.has_labels:
            labels = dict(y_train=self.y_train[:num_train], y_test=self.y_test[:num_test])
        return dataclasses.replace(
            self,
            x_train=tf.nest.map_structure(lambda a: a[:num_train], self.x_train),
            x_test=tf.nest.map_structure(lambda a: a[:num_test], self.x_test),
            num_classes=self.num_classes,
            **labels,
        )

    @property
    def event_shape(self) -> tuple:
        """Shape of one example: `x_train.shape[1:]` (a dict of them for modalities)."""
        if self.events:
            return {k: tuple(v.shape[1:]) for k, v in self.x_train.items()}
        return tuple(self.x_train.shape[1:])

    def pipeline(
        self,
        split: str = "train",
        batch_size: int = 128,
        shuffle: bool = True,
        seed: int = 0,
        labels: bool = False,
    ) -> tf.data.Dataset:
        """Batches of one split as a `tf.data.Dataset` of float32 tensors.

        Args:
            split: "train" or "test".
            batch_size: examples per batch (the last batch may be smaller).
            shuffle: shuffle over the whole split (reshuffled every epoch) with `seed`.
            seed: shuffle seed.
            labels: yield ``(x, y)`` pairs with int32 labels (for conditional models).

        Returns:
            A prefetched dataset of (batch, *event_shape) float32 tensors (or pairs).
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if labels and not self.has_labels:
            raise ValueError(f"dataset {self.name!r} has no labels")
        x = self.x_train if split == "train" else self.x_test
        size = num_examples(x)
        if labels:
            x = (x, self.y_train if split == "train" else self.y_test)
        ds = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            ds = ds.shuffle(size, seed=seed, reshuffle_each_iteration=True)
        return without_autotune(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` with ``tf.data``'s autotuning model switched off (``Options().autotune
    .enabled = False``): what every pipeline tfdgm builds uses, and what we recommend for
    in-memory pipelines of your own.

    Why: Keras makes a new iterator for every epoch of a finite dataset and for every
    validation pass, and destroying an iterator whose autotuning thread runs can block
    for the rest of that thread's current period, 10 ms doubled after every round (20,
    40, 80 ... ms, up to 60 s). The iterator's destructor cancels the thread and joins
    it; ``CancellationManager::StartCancel`` runs the callback that wakes the thread
    before it sets the cancelled flag, so the thread can find "not cancelled" and wait
    out its period again (``Model::OptimizeLoop``). ``TF_CPP_VMODULE=model=2`` shows a
    ``Waiting for N ms`` line just after the ``del``, which then takes N ms. With nothing
    to tune (slices of arrays, ``shuffle``, ``batch``, ``prefetch``, whose buffer the
    legacy prefetch autotuner still sizes) switching autotuning off costs nothing; keep
    it on for pipelines with ``map(num_parallel_calls=AUTOTUNE)`` or file interleaves.

    >>> without_autotune(tf.data.Dataset.range(3)).options().autotune.enabled
    False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def num_examples(x) -> int:
    """Number of examples of an array, or of a dict of modality arrays."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def array_pipeline(x, y=None, batch_size: int | None = None, shuffle=True) -> tf.data.Dataset:
    """What Keras ``fit`` makes of in-memory arrays, as a :func:`without_autotune`
    pipeline: ``x`` (an array or a dict of arrays) and optional labels ``y`` in batches
    of ``batch_size`` (default 32, the last one smaller), reshuffled every epoch (under
    TensorFlow's global seed, as Keras does) unless ``shuffle`` is False.

    >>> [int(b.shape[0]) for b in array_pipeline(np.zeros((5, 2)), batch_size=2)]
    [2, 2, 1]
    """
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        ds = ds.shuffle(count, reshuffle_each_iteration=True)
    return without_autotune(ds.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE))


# ---------------------------------------------------------------- validation


@dataclass(frozen=True)
class EventSpec:
    """What one event (or one modality of a dict event) is: its shape and support.

    Args:
        shape: shape of one event, e.g. ``(64,)``; ``()`` for a scalar such as a label.
        support: "binary", "categorical" (integer levels in [0, K)) or "real".
        num_categories: K for "categorical" (2 for "binary", None for "real").

    >>> EventSpec((), "categorical", 10).check([3, 7]).tolist()
    [3.0, 7.0]
    """

    shape: tuple
    support: str = "real"
    num_categories: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.support not in SUPPORTS:
            raise ValueError(f"support must be one of {SUPPORTS}, got {self.support!r}")
        if self.support == "binary":
            object.__setattr__(self, "num_categories", 2)
        elif self.support == "categorical" and (self.num_categories or 0) < 2:
            raise ValueError(
                f"categorical support needs num_categories >= 2, got {self.num_categories}"
            )
        elif self.support == "real":
            object.__setattr__(self, "num_categories", None)

    @classmethod
    def of(cls, spec) -> EventSpec:
        """An EventSpec from an EventSpec, a dict of its fields, or a (shape, support[, K])
        tuple."""
        if isinstance(spec, cls):
            return spec
        if isinstance(spec, dict):
            return cls(**spec)
        return cls(*spec)

    def check(self, x, name: str = "model") -> np.ndarray:
        """``x`` as a float32 batch of this event, checked (see :func:`check_array`)."""
        return check_array(x, self.shape, self.support, self.num_categories, name=name)


def check_array(
    x, event_shape: tuple, support: str, num_categories: int | None = None, name: str = "model"
) -> np.ndarray:
    """x as a float32 array of shape (batch, *event_shape), checked against the support.

    Args:
        x: array-like batch of examples.
        event_shape: expected shape of one example.
        support: "binary" (values in {0, 1}), "categorical" (integers in [0, K)) or "real".
        num_categories: K, required for "categorical".
        name: model name used in error messages.

    Returns:
        The float32 array.

    Raises:
        ValueError: on NaN or inf, a wrong shape, or values outside the support.

    >>> check_array([[0, 1]], (2,), "binary").dtype
    dtype('float32')
    """
    x = np.asarray(x, dtype=np.float32)
    event_shape = tuple(event_shape)
    if x.shape[1:] != event_shape or x.ndim != len(event_shape) + 1:
        raise ValueError(
            f"{name}: expected a batch of shape ({', '.join(['batch', *map(str, event_shape)])}), "
            f"got shape {x.shape}"
        )
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{name}: expected finite values, got {int(np.isnan(x).sum())} NaN and "
            f"{int(np.isinf(x).sum())} inf"
        )
    if support == "binary":
        bad = (x != 0) & (x != 1)
        expected = "binary values in {0, 1}"
    elif support == "categorical":
        if num_categories is None:
            raise ValueError(f"{name}: categorical support needs num_categories")
        bad = (x != np.floor(x)) | (x < 0) | (x >= num_categories)
        expected = f"integer categories in [0, {num_categories})"
    elif support != "real":
        raise ValueError(f"{name}: support must be one of {SUPPORTS}, got {support!r}")
    if support != "real" and bad.any():
        raise ValueError(
            f"{name}: expected {expected}, got {int(bad.sum())} values outside, "
            f"e.g. {np.unique(x[bad])[:5].tolist()}"
        )
    return x
