"""Plain Keras 3 networks the models are built from.

These are ordinary layers with explicit ``get_config``: they accept any number of
leading dimensions (``[K, batch, d]`` for K Monte-Carlo draws works, unlike a
``keras.Sequential`` that fixes its input rank at the first call).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

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

    Two stride-2 3x3 convolutions (``filters``, ``2*filters``) with ``activation``
    (``"leaky_relu"``, slope 0.2, for a DCGAN-style critic), flatten, then a linear dense
    layer to ``output_dim``. Leading sample dimensions are folded into the batch.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        output_dim: int,
        filters: int = 32,
        activation: str = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) == 2:
            self.image_shape = self.image_shape + (1,)
        self.output_dim = int(output_dim)
        self.filters = int(filters)
        self.activation = activation
        self.convs = [
            keras.layers.Conv2D(f, 3, strides=2, padding="same", activation=activation)
            for f in (self.filters, 2 * self.filters)
        ]
        self.flatten = keras.layers.Flatten()
        self.out = keras.layers.Dense(self.output_dim)

    def build(self, input_shape):
        shape = (None, *self.image_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
        self.out.build((None, int(np.prod(shape[1:]))))

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
            "activation": self.activation,
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

    def build(self, input_shape):
        self.dense.build((None, input_shape[-1]))
        shape = (None, self.base[0], self.base[1], 2 * self.filters)
        for deconv in self.deconvs:
            deconv.build(shape)
            shape = deconv.compute_output_shape(shape)
        self.out.build((None, *self.image_shape[:2], shape[-1]))

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


# ---------------------------------------------------------------- class conditioning
def append_label(h, labels, num_classes: int):
    """``h [..., d]`` with one_hot(labels) appended on its last axis, ``[..., d + K]``; the
    labels ``[batch]`` broadcast over ``h``'s leading (sample) dimensions."""
    onehot = tf.one_hot(tf.cast(labels, tf.int32), num_classes, dtype=h.dtype)
    onehot = tf.broadcast_to(onehot, tf.concat([tf.shape(h)[:-1], [num_classes]], 0))
    return tf.concat([h, onehot], -1)


def class_labels(model, labels, num_samples=None, seed=None):
    """The int32 labels a conditional ``model`` (``model.num_classes`` K) is given.

    Checked against ``model.label_spec`` when eager (a ValueError naming the model);
    None for an unconditional model. With ``num_samples`` (sampling): one label for all,
    one per sample, or, when ``labels`` is None, labels drawn uniformly from [0, K) with
    the stateless ``seed``; broadcast to ``[num_samples]``.
    """
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None:
        if labels is not None:
            raise ValueError(f"{type(model).__name__} is not conditional: do not pass labels")
        return None
    if labels is None:
        if num_samples is None:
            raise ValueError(f"{type(model).__name__}(num_classes={num_classes}) needs labels=")
        return tf.random.stateless_uniform([num_samples], seed, 0, num_classes, dtype=tf.int32)
    if tf.executing_eagerly() and not tf.is_symbolic_tensor(labels):
        labels = np.asarray(labels)
        labels = np.atleast_1d(labels) if num_samples is not None else labels  # one for all
        labels = model.label_spec.check(labels, f"{type(model).__name__} labels")
    labels = tf.cast(labels, tf.int32)
    return labels if num_samples is None else tf.broadcast_to(labels, [num_samples])


def made_degrees(order: Sequence[int], hidden_units: Sequence[int]) -> list[np.ndarray]:
    """Degrees of a MADE (Germain et al., 2015): input ``order`` (a permutation of 1..D),
    then each hidden unit k of each layer gets degree ``1 + k mod (D - 1)``.

    Hidden unit with degree m sees inputs of degree <= m; output i sees hidden units of
    degree < order_i, so output i depends only on inputs that come before it in ``order``.
    """
    order = np.asarray(order, dtype=np.int64)
    size = len(order)
    degrees = [order]
    for units in hidden_units:
        degrees.append(1 + np.arange(units) % max(1, size - 1))
    return degrees


def made_masks(order: Sequence[int], hidden_units: Sequence[int]) -> list[np.ndarray]:
    """Binary masks ``[in, out]`` of every layer of a MADE with input ``order``."""
    degrees = made_degrees(order, hidden_units)
    masks = [(d_in[:, None] <= d_out[None, :]) for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    masks.append(degrees[-1][:, None] < degrees[0][None, :])  # hidden -> output, strict
    return [m.astype("float32") for m in masks]


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMLP(keras.layers.Layer):
    """MADE network: ``[..., D]`` -> ``[..., D, params_per_dim]`` autoregressive outputs.

    Output ``[..., i, :]`` depends only on inputs ``x_j`` with ``order[j] < order[i]``
    (order defaults to 1..D). Masks are non-trainable weights, so ``set_order`` can change
    the ordering during training (order-agnostic training) and the masks are saved.

    Args:
        event_size: D.
        hidden_units: widths of the masked hidden layers.
        params_per_dim: outputs per dimension (K logits, or shift and log-scale).
        order: permutation of 1..D, the autoregressive order.
        activation: hidden activation.
        output_init: ``"zeros"`` makes every conditional start at the same value.
        context_dim: optional width of an unmasked conditioning input (``call(x, context)``),
            fed to every layer (the output layer too, so that even the first conditional,
            which sees no x, depends on it).

    >>> net = MaskedMLP(3, [8], 2)
    >>> net(np.zeros((4, 3), "float32")).shape
    TensorShape([4, 3, 2])
    """

    def __init__(
        self,
        event_size: int,
        hidden_units: Sequence[int],
        params_per_dim: int = 1,
        order: Sequence[int] | None = None,
        activation: str = "relu",
        output_init: str = "glorot_uniform",
        context_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.hidden_units = [int(u) for u in hidden_units]
        self.params_per_dim = int(params_per_dim)
        self.order = (
            list(range(1, self.event_size + 1)) if order is None else [int(o) for o in order]
        )
        if sorted(self.order) != list(range(1, self.event_size + 1)):
            raise ValueError(f"order must be a permutation of 1..{self.event_size}, got {order}")
        self.activation = activation
        self.output_init = output_init
        self.context_dim = context_dim
        self._act = keras.activations.get(activation)

    def build(self, input_shape):
        widths = [self.event_size, *self.hidden_units, self.event_size * self.params_per_dim]
        masks = made_masks(self.order, self.hidden_units)
        masks[-1] = np.repeat(masks[-1], self.params_per_dim, axis=1)  # (i, p) -> i*P + p
        self.kernels, self.biases, self.masks = [], [], []
        for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(widths) - 2
            init = self.output_init if last else "glorot_uniform"
            self.kernels.append(self.add_weight((n_in, n_out), init, name=f"kernel_{i}"))
            self.biases.append(self.add_weight((n_out,), "zeros", name=f"bias_{i}"))
            self.masks.append(
                self.add_weight((n_in, n_out), "zeros", trainable=False, name=f"mask_{i}")
            )
            self.masks[-1].assign(masks[i])
        self.context_kernels = [  # the output layer's starts like its kernel (zeros: flows)
            self.add_weight(
                (int(self.context_dim), n),
                self.output_init if i == len(widths) - 2 else "glorot_uniform",
                name=f"context_{i}",
            )
            for i, n in enumerate(widths[1:])
            if self.context_dim
        ]

    def set_order(self, order: Sequence[int]):
        """Rewire the masks for a new autoregressive ``order`` (a permutation of 1..D)."""
        self.order = [int(o) for o in order]
        masks = made_masks(self.order, self.hidden_units)
        masks[-1] = np.repeat(masks[-1], self.params_per_dim, axis=1)
        for variable, mask in zip(self.masks, masks):
            variable.assign(mask)

    def call(self, x, context=None):
        h = x
        for i, (kernel, bias, mask) in enumerate(zip(self.kernels, self.biases, self.masks)):
            h = keras.ops.matmul(h, kernel * keras.ops.cast(mask, kernel.dtype)) + bias
            if context is not None:
                h = h + keras.ops.matmul(keras.ops.cast(context, h.dtype), self.context_kernels[i])
            if i < len(self.kernels) - 1:
                h = self._act(h)
        lead = keras.ops.shape(h)[:-1]
        return keras.ops.reshape(h, tuple(lead) + (self.event_size, self.params_per_dim))

    def get_config(self):
        return {
            **super().get_config(),
            "event_size": self.event_size,
            "hidden_units": self.hidden_units,
            "params_per_dim": self.params_per_dim,
            "order": self.order,
            "activation": self.activation,
            "output_init": self.output_init,
            "context_dim": self.context_dim,
        }
