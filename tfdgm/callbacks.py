"""Keras callbacks for generative models.

:class:`SampleQuality` judges a model by its samples while it trains: every few epochs it
draws samples, computes the Frechet distance and the kernel inception distance against the
test split (plus mode coverage on 8 Gaussians, see :func:`tfdgm.metrics.sample_quality`),
adds them to the epoch's logs (so they appear in ``History`` and the progress bar), and
optionally saves a picture of the samples and writes both to TensorBoard event files. It only
calls ``model.sample``, so it works with every model of the library.

:class:`BackupAndResume` keeps a ``fit`` resumable whatever instant it is killed at: after
every epoch one file, written under a temporary name and renamed (:mod:`tfdgm.atomic`),
holds everything needed to go on. It also stops a run whose loss becomes non-finite.
"""

from __future__ import annotations

import io
import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfdgm import atomic, metrics


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)
    )


class SampleQuality(keras.callbacks.Callback):
    """Log sample-quality metrics (and sample pictures) during ``fit``.

    Args:
        dataset: the :class:`tfdgm.data.Dataset` being modelled (its test split is the
            reference; its ``image_shape`` decides between an image grid and a scatter plot).
        every: compute every ``every`` epochs (and after the last one). Like Keras'
            ``validation_freq``, the logged lists are then shorter than ``loss``.
        num_samples: samples per evaluation; default the size of the test split.
        log_dir: if given, TensorBoard event files are written to ``log_dir/sample_quality``:
            scalars ``sample_quality/<metric>`` and an image ``samples`` (no TensorBoard
            install needed to write them).
        image_dir: if given, the picture is also saved as ``image_dir/samples_epoch_NNNN.png``.
        seed: sampling seed: the same noise every epoch, so pictures show the model changing.
        prefix: prefix of the names added to the logs (``"fd"``, ``"kid"``, ...).

    Attributes:
        records: one dict per evaluation, ``{"epoch": e, "fd": ..., "kid": ...}``.

    >>> from tfdgm import data
    >>> callback = SampleQuality(data.load("8gaussians"), every=5)
    """

    def __init__(
        self,
        dataset,
        every: int = 1,
        num_samples: int | None = None,
        log_dir: str | None = None,
        image_dir: str | None = None,
        seed=(0, 0),
        prefix: str = "",
    ):
        super().__init__()
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.dataset = dataset
        self.every = int(every)
        self.num_samples = num_samples
        self.log_dir = log_dir
        self.image_dir = image_dir
        self.seed = seed
        self.prefix = prefix
        self.records: list[dict] = []
        self._writer = None

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs") if self.params else None
        if self.log_dir is not None and self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "sample_quality")
            )

    def on_epoch_end(self, epoch, logs=None):
        last = self._epochs is not None and epoch + 1 == self._epochs
        if (epoch + 1) % self.every and not last:
            return
        values = metrics.sample_quality(
            self.model, self.dataset, num_samples=self.num_samples, seed=self.seed
        )
        self.records.append({"epoch": epoch + 1, **values})
        if logs is not None:
            logs.update({self.prefix + k: float(v) for k, v in values.items()})
        if self._writer is None and self.image_dir is None:
            return
        png = self._picture(epoch + 1)
        if self.image_dir is not None:
            os.makedirs(self.image_dir, exist_ok=True)
            path = os.path.join(self.image_dir, f"samples_epoch_{epoch + 1:04d}.png")
            with open(path, "wb") as f:
                f.write(png)
        if self._writer is not None:
            self._write_summaries(values, png, step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def _picture(self, epoch: int) -> bytes:
        """PNG bytes of 64 samples (image grid) or 1000 samples beside the data (2-D)."""
        import matplotlib.pyplot as plt

        from tfdgm import plotting

        image_shape = self.dataset.image_shape
        title = f"epoch {epoch}"
        if image_shape is not None:
            samples = np.asarray(self.model.sample(64, seed=self.seed))
            fig = plotting.image_grid(samples, image_shape, title=title, vmin=0)
        else:
            samples = np.asarray(self.model.sample(1000, seed=self.seed)).reshape(1000, -1)
            fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
            plotting.scatter_2d(self.dataset.x_test[:1000, :2], title="data", ax=axes[0])
            plotting.scatter_2d(samples[:, :2], title=f"samples, {title}", ax=axes[1])
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        plt.close(fig)
        return buffer.getvalue()

    def _write_summaries(self, values: dict, png: bytes, step: int):
        # The raw summary op with the plugin names TensorBoard's scalar and image dashboards
        # read: tf.summary.scalar/image would need the tensorboard package installed.
        import matplotlib.image

        height, width = matplotlib.image.imread(io.BytesIO(png)).shape[:2]
        with self._writer.as_default():
            for name, value in values.items():
                tf.summary.write(
                    f"sample_quality/{self.prefix}{name}",
                    tf.constant(float(value), tf.float32),
                    step=step,
                    metadata=_metadata("scalars"),
                )
            tf.summary.write(
                "samples",
                tf.constant([str(width), str(height), png]),
                step=step,
                metadata=_metadata("images"),
            )
        self._writer.flush()


#: Version of the backup file layout written by :class:`BackupAndResume`.
BACKUP_FORMAT = 1


def training_state(model) -> list:
    """Every variable a resumed ``fit`` needs, in a fixed order: the model's weights
    (trainable and not: statistics sums, persistent chains), each optimizer group's
    variables (step count, moments; loss scale under ``mixed_float16``) and the state of
    every ``keras.random.SeedGenerator`` held by the model or its layers."""
    variables, seen = [], set()

    def add(values):
        for v in values:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)

    add(model.weights)
    groups = model.optimizer_groups() if getattr(model, "_optimizers", None) else {}
    for group in groups:
        add(model.optimizer_for(group).variables)
    for layer in model._flatten_layers(include_self=True):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                add([value.state])
    return variables


class BackupAndResume(keras.callbacks.Callback):
    """Resume ``fit`` after a kill at any instant; stop it when the loss diverges.

    After every finished epoch, ``path`` (one ``.npz`` file, written under a temporary name
    and renamed, so it is always either the previous epoch's or this one's) holds
    :func:`training_state` (weights, every optimizer's state, the random streams) with the
    number of epochs done, the history of the whole run so far, the time spent training
    and ``info`` (e.g. the run's settings). A new ``fit`` with this callback restores that
    state in ``on_train_begin`` (after ``initialize``) and goes on at the next epoch, so a
    kill loses at most the epoch in progress. The learning rate is not restored: a rerun
    may change it.

    Unlike ``keras.callbacks.BackupAndRestore``, which rewrites its weights file in place
    (a kill during the write leaves a file that cannot be opened) and deletes it when
    ``fit`` ends, the backup stays until :meth:`delete` is called, once everything that
    depends on the training is saved.

    A batch whose training metrics are not finite stops the fit: ``diverged`` then holds
    ``{"epoch", "batch", "metric", "value"}`` (1-based) and that epoch is not backed up.

    Args:
        path: the backup file (``.npz``).
        info: JSON-serializable settings stored with the backup; a loaded backup's are in
            ``stored["info"]``.

    Attributes:
        epoch: epochs done (0 without a backup).
        history: ``{metric: [value per epoch]}`` of the whole run, resumed parts included.
        train_time_s: seconds spent in ``fit`` over every session, up to the last backup.
        resumes: how many times training resumed from a backup.
    """

    def __init__(self, path: str, info: dict | None = None):
        super().__init__()
        self.path = os.fspath(path)
        self.info = dict(info or {})
        self.diverged = None
        self.stored = {"epoch": 0, "history": {}, "train_time_s": 0.0, "resumes": 0}
        self._arrays = None
        if os.path.exists(self.path):
            self._read()

    # ------------------------------------------------------------------ reading
    def _read(self):
        try:
            with np.load(self.path, allow_pickle=False) as archive:
                stored = json.loads(str(archive["state"]))
                self._arrays = [archive[f"v{i}"] for i in range(len(stored["paths"]))]
        except Exception as error:  # a file we did not write: say which and why
            raise ValueError(f"cannot read the backup {self.path}: {error}") from None
        if stored.get("format") != BACKUP_FORMAT:
            raise ValueError(f"{self.path}: backup format {stored.get('format')!r} is unknown")
        self.stored = stored

    @property
    def epoch(self) -> int:
        return int(self.stored["epoch"])

    @property
    def history(self) -> dict:
        return self.stored["history"]

    @property
    def train_time_s(self) -> float:
        return float(self.stored["train_time_s"])

    @property
    def resumes(self) -> int:
        return int(self.stored["resumes"])

    def restore(self, model=None) -> bool:
        """Assign the backed-up state to ``model`` (default: the fitted one); False if
        there is no backup."""
        model = model or self.model
        if self._arrays is None:
            return False
        variables = training_state(model)
        paths = self.stored["paths"]
        if len(variables) != len(paths) or any(
            tuple(v.shape) != a.shape for v, a in zip(variables, self._arrays)
        ):
            raise ValueError(
                f"the backup {self.path} holds {len(paths)} variables that do not match "
                f"{type(model).__name__}'s {len(variables)}: it is another model's; remove it "
                "or train into another folder"
            )
        for variable, array in zip(variables, self._arrays):
            if not variable.path.endswith("learning_rate"):
                variable.assign(array)
        self.stored = {**self.stored, "resumes": self.resumes + 1}
        self._arrays = None  # restored once
        return True

    # ------------------------------------------------------------------ writing
    def _values(self, variables: list) -> list:
        """The values of ``variables`` as NumPy arrays, read in one ``tf.function`` call
        (0.4-0.5 ms of CPU for the digits VAE's 39 variables, against 3-8 ms for 39
        eager reads); traced again only when the variables change."""
        key = tuple(id(v) for v in variables)
        if getattr(self, "_reader", (None,))[0] != key:
            read = tf.function(lambda: [tf.identity(v.value) for v in variables])
            self._reader = (key, read)
        return [np.asarray(value) for value in self._reader[1]()]

    def _write(self, epochs_done: int):
        variables = training_state(self.model)
        state = {
            **self.stored,
            "format": BACKUP_FORMAT,
            "epoch": epochs_done,
            "train_time_s": self.train_time_s + time.perf_counter() - self._start,
            "info": self.info,
            "paths": [v.path for v in variables],
        }
        arrays = {f"v{i}": value for i, value in enumerate(self._values(variables))}
        rest = atomic.finite({k: v for k, v in state.items() if k != "history"})
        # the history is made finite epoch by epoch (on_epoch_end), not again each time
        arrays["state"] = np.array(json.dumps({**rest, "history": state["history"]}))
        with atomic.replacing(self.path) as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
        self.stored = state
        self._start = time.perf_counter()

    def delete(self) -> None:
        """Remove the backup (once the run's results are saved)."""
        if os.path.exists(self.path):
            os.remove(self.path)

    # ------------------------------------------------------------------ callback
    def on_train_begin(self, logs=None):
        self.diverged = None
        self.restore()
        self.model._initial_epoch = self.epoch  # where Keras' fit starts its epoch loop
        self._start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            try:
                value = float(value)
            except (TypeError, ValueError):  # not a scalar: not a loss to watch
                continue
            if not math.isfinite(value):
                self.diverged = {
                    "epoch": self._epoch + 1,
                    "batch": batch + 1,
                    "metric": name,
                    "value": str(value),  # "nan", "inf": strict JSON has no number for them
                }
                self.model.stop_training = True
                return

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged is not None:
            return
        apply_statistics = getattr(self.model, "_apply_pending_statistics", None)
        if getattr(self.model, "uses_statistics", False) and apply_statistics is not None:
            apply_statistics()  # an epoch without validation: its statistics, before saving
        history = {k: list(v) for k, v in self.history.items()}
        for key, value in (logs or {}).items():  # strict JSON: non-finite values are None
            history.setdefault(key, []).append(atomic.finite(float(value)))
        self.stored = {**self.stored, "history": history}
        self._write(epoch + 1)

    def on_train_end(self, logs=None):
        self.model._initial_epoch = None
