"""Plain Keras 3 networks the models are built from.

These are ordinary layers with explicit ``get_config``: they accept any number of
leading dimensions (``[K, batch, d]`` for K Monte-Carlo draws works, unlike a
``keras.Sequential`` that fixes its input rank at the first call).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

PACKAGE = "tfdgm"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MLP(keras.layers.Layer):
    """Multi-layer perceptron ``x -> act(W_1 x + b_1) -> ... -> W_L h + b_L``.

    Args:
        hidden_units: widths of the hidden layers.
        output_dim: width of the linear output layer.
        activation: activation of the hidden layers.
        output_init: ``"zeros"`` starts the output at 0 (identity couplings in flows).

    >>> import numpy as np
    >>> MLP([8], 3)(np.zeros((5, 2, 4), "float32")).shape
    TensorShape([5, 2, 3])
    """

    def __init__(
        self,
        hidden_units: Sequence[int],
        output_dim: int,
        activation: str = "relu",
        output_init: str = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_units = [int(u) for u in hidden_units]
        self.output_dim = int(output_dim)
        self.activation = activation
        self.output_init = output_init
        self.hidden = [
            keras.layers.Dense(u, activation=activation, name=f"dense_{i}")
            for i, u in enumerate(self.hidden_units)
        ]
        self.out = keras.layers.Dense(
            self.output_dim, kernel_initializer=output_init, name="output"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.out.build(shape)

    def call(self, x):
        for layer in self.hidden:
            x = layer(x)
        return self.out(x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.output_dim,)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_units": self.hidden_units,
            "output_dim": self.output_dim,
            "activation": self.activation,
            "output_init": self.output_init,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvEncoder(keras.layers.Layer):
    """Convolutional encoder for images ``[..., H, W, C]`` (or flat ``[..., H*W*C]``).

    Two stride-2 3x3 convolutions (``filters``, ``2*filters``), flatten, then a dense
    layer to ``output_dim``. Leading sample dimensions are folded into the batch.
    """

    def __init__(self, image_shape: Sequence[int], output_dim: int, filters: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) == 2:
            self.image_shape = self.image_shape + (1,)
        self.output_dim = int(output_dim)
        self.filters = int(filters)
        self.convs = [
            keras.layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")
            for f in (self.filters, 2 * self.filters)
        ]
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(self.output_dim)

    def call(self, x):
        lead = keras.ops.shape(x)[: len(x.shape) - self._event_rank(x)]
        h = keras.ops.reshape(x, (-1,) + self.image_shape)
        for conv in self.convs:
            h = conv(h)
        h = self.out(self.flatten(h))
        return keras.ops.reshape(h, tuple(lead) + (self.output_dim,))

    def _event_rank(self, x):
        # Flat inputs carry one event dimension, image inputs three.
        return 1 if x.shape[-1] == int(np.prod(self.image_shape)) and len(x.shape) <= 2 else 3

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "output_dim": self.output_dim,
            "filters": self.filters,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvDecoder(keras.layers.Layer):
    """Convolutional decoder: dense to a ``H/4 x W/4`` map, two stride-2 transposed
    convolutions back to ``H x W``, and a 1x1 convolution to ``channels_out`` per pixel.

    Output is flattened to ``[..., H*W*channels_out]`` so likelihood heads can reshape it.
    """

    def __init__(self, image_shape: Sequence[int], channels_out: int, filters: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) == 2:
            self.image_shape = self.image_shape + (1,)
        self.channels_out = int(channels_out)
        self.filters = int(filters)
        h, w = self.image_shape[:2]
        self.base = (-(-h // 4), -(-w // 4))
        self.dense = keras.layers.Dense(self.base[0] * self.base[1] * 2 * self.filters, "relu")
        self.deconvs = [
            keras.layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")
            for f in (2 * self.filters, self.filters)
        ]
        self.out = keras.layers.Conv2D(self.channels_out, 1)

    def call(self, z):
        lead = keras.ops.shape(z)[:-1]
        h = self.dense(keras.ops.reshape(z, (-1, z.shape[-1])))
        h = keras.ops.reshape(h, (-1, self.base[0], self.base[1], 2 * self.filters))
        for deconv in self.deconvs:
            h = deconv(h)
        height, width = self.image_shape[:2]
        h = self.out(h[:, :height, :width, :])
        size = height * width * self.channels_out
        return keras.ops.reshape(h, tuple(lead) + (size,))

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "channels_out": self.channels_out,
            "filters": self.filters,
        }


def serialize(layer: keras.layers.Layer | None):
    """Serialize a nested network for a model's ``get_config`` (None stays None)."""
    return None if layer is None else keras.saving.serialize_keras_object(layer)


def deserialize(config):
    """Inverse of :func:`serialize` for a model's ``from_config``."""
    if config is None or isinstance(config, keras.layers.Layer):
        return config
    return keras.saving.deserialize_keras_object(config)
