"""Keras callbacks for generative models.

:class:`SampleQuality` judges a model by its samples while it trains: every few epochs it
draws samples, computes the Frechet distance and the kernel inception distance against the
test split (plus mode coverage on 8 Gaussians, see :func:`tfdgm.metrics.sample_quality`),
adds them to the epoch's logs (so they appear in ``History`` and the progress bar), and
optionally saves a picture of the samples and writes both to TensorBoard event files. It only
calls ``model.sample``, so it works with every model of the library.
"""

from __future__ import annotations

import io
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfdgm import metrics


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
