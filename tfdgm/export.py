"""SavedModel export: named float32 signatures that plain TensorFlow can load and serve.

The exported graph holds only TensorFlow ops (TFP distributions are traced away), so
``tf.saved_model.load(path)`` works in a process that never imported tfdgm or TFP::

    loaded = tf.saved_model.load(path)
    loaded.log_prob(x)                       # float32 [batch]
    loaded.sample(tf.constant(16), tf.constant([1, 2]))   # num_samples, int32[2] seed

Input signatures are explicit float32 even under a mixed policy (the layers cast inside),
so callers never meet a float16 input spec. :func:`sample_export` (``tfdgm sample``) draws
from a run folder's export.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from keras.export import ExportArchive

from tfdgm import atomic
from tfdgm.settings import RunError, check_setting


def export(model, path: str) -> str:
    """Export ``model``'s endpoints (``model.export_endpoints()``) as a SavedModel at ``path``.

    Besides the model's endpoints, ``metadata()`` returns a JSON string with the model
    class, its density kind (what ``log_prob`` returns), event shape and support.
    Returns ``path``.
    """
    archive = ExportArchive()
    archive.track(model)
    for name, (fn, signature) in model.export_endpoints().items():
        # Keras makes it a tf.function (autograph off); one of our own around it made the
        # export trace twice as many functions (0.2-0.4 s of the digits VAE's ~1 s)
        archive.add_endpoint(name, fn, input_signature=signature)
    metadata = json.dumps(
        {
            "class": type(model).__name__,
            "density": model.density,
            "event_shape": (
                {k: list(v) for k, v in model.event_shape.items()}
                if isinstance(model.event_shape, dict)
                else list(model.event_shape)
            ),
            "support": model.support,
            "num_categories": model.num_categories,
            "num_classes": getattr(model, "num_classes", None),  # labels a sample may take
        }
    )
    archive.add_endpoint("metadata", tf.function(lambda: tf.constant(metadata)), input_signature=[])
    archive.write_out(os.fspath(path), verbose=False)
    return os.fspath(path)


def sample_export(
    run: str,
    num_samples: int = 64,
    seed: int = 0,
    out: str | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    label: int | None = None,
) -> str:
    """Draw from a run folder's SavedModel (no tfdgm needed to load it) and draw them to
    ``out`` (default ``run/samples_export.png``, ``run/samples_label<L>.png`` with a
    label); returns the picture's path. ``sampler`` and ``steps`` (diffusion models) call
    the export's ``sample_<sampler>(n, seed, steps)`` (default: the run's sampler and
    number of steps). With ``label``, a conditional model samples that class (its
    ``sample`` endpoint takes labels) and a multimodal model generates its image modality
    from its ``label`` modality (its ``generate`` endpoint, the other modalities masked).

    Raises:
        RunError: ``run`` has no ``export/`` folder, ``num_samples`` is below 1, the
            export has no such sampler, or a label the model does not take.
    """
    num_samples = check_setting("num_samples", num_samples, int, 1)
    seed = check_setting("seed", seed, int, 0)
    if not os.path.isdir(os.path.join(run, "export")):
        raise RunError(f"{run!r} is not a run folder (no export/ inside)")
    from tfdgm import plotting

    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    loaded = tf.saved_model.load(os.path.join(run, "export"))
    args = [tf.constant(num_samples, tf.int32), tf.constant([seed, 0], tf.int32)]
    draw = loaded.sample
    if sampler is not None or steps is not None:
        sampler = sampler or config.get("hparams", {}).get("sampler", "ddpm")
        draw = getattr(loaded, f"sample_{sampler}", None)
        if draw is None:
            raise RunError(f"{run!r}: its export has no sampler {sampler!r}")
        steps = check_setting("steps", steps, int, 1) or 0  # 0: the model's default
        args.append(tf.constant(steps, tf.int32))
    if label is not None:
        label = check_setting("label", label, int, 0)
        info = json.loads(loaded.metadata().numpy())
        classes, shape = info.get("num_classes"), info["event_shape"]
        if not classes or label >= classes:
            takes = f"labels in [0, {classes})" if classes else "no labels"
            raise RunError(f"the model of {run!r} takes {takes}; got --label {label}")
        if isinstance(shape, dict):  # a multimodal model: its image from the label
            given = {k: tf.zeros([num_samples, *v]) for k, v in shape.items()}
            given["label"] = tf.fill([num_samples], float(label))
            mask = tf.constant([[float(k == "label") for k in shape]] * num_samples)
            draw, args = loaded.generate, [*given.values(), mask, args[1]]
        else:
            args.append(tf.fill([num_samples], label))
    samples = draw(*args)
    if isinstance(samples, dict):  # a multimodal model: draw its image
        samples = samples["image" if "image" in samples else next(iter(samples))]
    samples = samples.numpy()
    name = "samples_export.png" if label is None else f"samples_label{label}.png"
    out = out or os.path.join(run, name)
    if config.get("image_shape"):
        fig = plotting.image_grid(samples, config["image_shape"], vmin=0)
    else:
        fig = plotting.scatter_2d(samples[:, :2], title="samples")
    with atomic.replacing(out) as tmp:
        fig.savefig(tmp, dpi=100)
    return out
