"""SavedModel export: named float32 signatures that plain TensorFlow can load and serve.

The exported graph holds only TensorFlow ops (TFP distributions are traced away), so
``tf.saved_model.load(path)`` works in a process that never imported tfdgm or TFP::

    loaded = tf.saved_model.load(path)
    loaded.log_prob(x)                       # float32 [batch]
    loaded.sample(tf.constant(16), tf.constant([1, 2]))   # num_samples, int32[2] seed

Input signatures are explicit float32 even under a mixed policy (the layers cast inside),
so callers never meet a float16 input spec.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf
from keras.export import ExportArchive


def export(model, path: str) -> str:
    """Export ``model``'s endpoints (``model.export_endpoints()``) as a SavedModel at ``path``.

    Besides the model's endpoints, ``metadata()`` returns a JSON string with the model
    class, its density kind (what ``log_prob`` returns), event shape and support.
    Returns ``path``.
    """
    archive = ExportArchive()
    archive.track(model)
    for name, (fn, signature) in model.export_endpoints().items():
        archive.add_endpoint(name, tf.function(fn, autograph=False), input_signature=signature)
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
