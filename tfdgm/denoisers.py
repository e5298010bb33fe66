"""Denoisers f(x_t, t) of diffusion models: plain Keras 3 layers with a sinusoidal time embedding.

:class:`DenoisingMLP` (a residual MLP) for vectors and :class:`DenoisingUNet` for images
(8x8 digits, 28x28 MNIST), both ``call(x, t)`` with x ``[batch, D]`` (or images) and float
timesteps t ``[batch]``; with ``num_classes=K`` also ``call(x, t, labels)``, a learned class
embedding added to the time embedding, label K (or ``labels=None``) the null class of
classifier-free guidance. They are registered under the same Keras names as when they lived
in :mod:`tfdgm.nets` (package ``"tfdgm"``), so ``.keras`` files saved before still load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np

from tfdgm.nets import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class SinusoidalEmbedding(keras.layers.Layer):
    """Sinusoidal embedding of a (diffusion) time t (Vaswani et al., 2017; Ho et al., 2020):

        e(t) = [sin(t w_0), ..., sin(t w_{d/2-1}), cos(t w_0), ..., cos(t w_{d/2-1})],
        w_k = max_period^(-k / (d/2)).

    Computed in float32 whatever the policy (t runs up to T = 1000, which float16 cannot
    resolve), so the layer's dtype is float32 unless given.

    >>> SinusoidalEmbedding(8)(np.array([0.0, 500.0], "float32")).shape
    TensorShape([2, 8])
    """

    def __init__(self, dim: int, max_period: float = 10000.0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if int(dim) % 2:
            raise ValueError(f"the embedding dimension must be even, got {dim}")
        self.dim = int(dim)
        self.max_period = float(max_period)

    def call(self, t):
        half = self.dim // 2
        freqs = keras.ops.exp(
            -np.log(self.max_period) * keras.ops.arange(half, dtype="float32") / half
        )
        angles = keras.ops.cast(t, "float32")[..., None] * freqs  # (..., d/2)
        return keras.ops.concatenate([keras.ops.sin(angles), keras.ops.cos(angles)], -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_period": self.max_period}


class TimeEmbedding(keras.layers.Layer):
    """t -> Dense(act(Dense(e(t)))), the time code every block of a denoiser adds."""

    def __init__(self, dim: int, activation: str = "silu", **kwargs):
        super().__init__(**kwargs)
        self.sinusoidal = SinusoidalEmbedding(dim)
        self.hidden = keras.layers.Dense(dim, activation=activation)
        self.out = keras.layers.Dense(dim)

    def call(self, t):
        return self.out(self.hidden(self.sinusoidal(t)))


class ClassEmbedding(keras.layers.Layer):
    """Labels y in [0, K] -> a learned code of ``dim`` added to the time code; y = K (and
    ``labels=None``) is the null class of classifier-free guidance (Ho & Salimans, 2022)."""

    def __init__(self, num_classes: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.table = keras.layers.Embedding(self.num_classes + 1, dim)

    def call(self, labels):
        return self.table(keras.ops.cast(labels, "int32"))

    def code(self, labels, batch):
        """The codes of ``labels`` ``[batch]``, or of the null class when None."""
        if labels is None:
            labels = keras.ops.full((batch,), self.num_classes, "int32")
        return self(labels)


def _class_embedding(num_classes, dim):
    if num_classes is not None and int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return None if num_classes is None else ClassEmbedding(num_classes, dim)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DenoisingMLP(keras.layers.Layer):
    """Residual MLP f(x_t, t) for vector data, the time entering every block:

        h_0 = W_in x_t,   e = MLP(SinusoidalEmbedding(t)) [+ C[y]],
        h_k = h_{k-1} + W_k2 act(W_k1 act(h_{k-1}) + U_k e),   f = W_out act(h_K).

    ``call(x, t, labels=None)``: x ``[batch, D]``, t ``[batch]`` (float timesteps), labels
    ``[batch]`` in [0, K] (class-conditional only) -> ``[batch, output_dim]``.

    Args:
        output_dim: D (the prediction has the data's shape).
        units: width of the residual stream.
        num_blocks: K.
        embedding_dim: width of the time embedding.
        activation: hidden activation.
        num_classes: K of a class-conditional denoiser (:class:`ClassEmbedding`), or None.

    >>> net = DenoisingMLP(2, units=8, num_blocks=1, embedding_dim=4)
    >>> net(np.zeros((3, 2), "float32"), np.ones(3, "float32")).shape
    TensorShape([3, 2])
    """

    def __init__(
        self,
        output_dim: int,
        units: int = 128,
        num_blocks: int = 3,
        embedding_dim: int = 64,
        activation: str = "silu",
        num_classes: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.units = int(units)
        self.num_blocks = int(num_blocks)
        self.embedding_dim = int(embedding_dim)
        self.activation = activation
        self._act = keras.activations.get(activation)
        self.embed = TimeEmbedding(self.embedding_dim, activation)
        self.classes = _class_embedding(num_classes, self.embedding_dim)
        self.inp = keras.layers.Dense(self.units)
        self.blocks = [
            (
                keras.layers.Dense(self.units),
                keras.layers.Dense(self.units),
                keras.layers.Dense(self.units),
            )
            for _ in range(self.num_blocks)
        ]
        self.out = keras.layers.Dense(self.output_dim)

    def build(self, x_shape, t_shape=None, labels_shape=None):
        self.call(keras.ops.zeros((1, x_shape[-1])), keras.ops.zeros((1,)))

    def call(self, x, t, labels=None):
        e = self.embed(t)
        if self.classes is not None:
            e = e + self.classes.code(labels, keras.ops.shape(x)[0])
        h = self.inp(x)
        for first, time, second in self.blocks:
            h = h + second(self._act(first(self._act(h)) + time(e)))
        return self.out(self._act(h))

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "units": self.units,
            "num_blocks": self.num_blocks,
            "embedding_dim": self.embedding_dim,
            "activation": self.activation,
            "num_classes": self.num_classes,
        }


class ResidualBlock(keras.layers.Layer):
    """GroupNorm-SiLU-Conv3x3, plus the projected time code, then GroupNorm-SiLU-Conv3x3;
    a 1x1 convolution on the skip path where the width changes (Ho et al., 2020, App. B)."""

    def __init__(self, filters: int, groups: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.norm1 = None  # its groups depend on the input width (built in build)
        self.conv1 = keras.layers.Conv2D(filters, 3, padding="same")
        self.time = keras.layers.Dense(filters)
        self.norm2 = keras.layers.GroupNormalization(math.gcd(groups, filters))
        self.conv2 = keras.layers.Conv2D(filters, 3, padding="same")
        self.skip = None
        self.groups = groups

    def build(self, input_shape):
        self.norm1 = keras.layers.GroupNormalization(math.gcd(self.groups, input_shape[-1]))
        if input_shape[-1] != self.filters:
            self.skip = keras.layers.Conv2D(self.filters, 1)

    def call(self, h, e):
        out = self.conv1(keras.ops.silu(self.norm1(h)))
        out = out + self.time(e)[:, None, None, :]
        out = self.conv2(keras.ops.silu(self.norm2(out)))
        return out + (h if self.skip is None else self.skip(h))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DenoisingUNet(keras.layers.Layer):
    """A small U-Net f(x_t, t) for images (8x8 digits, 28x28 MNIST), plain Keras layers.

    Conv3x3 to ``filters`` channels; per resolution level ``filters * mult`` one residual
    block (time code added) then a stride-2 convolution; a middle residual block; on the
    way up nearest-neighbour upsampling, concatenation with the skip of the same level and
    a residual block; GroupNorm-SiLU-Conv3x3 to the image's channels. Inputs and outputs
    are flat ``[batch, H*W*C]`` (or images ``[batch, H, W, C]``, returned as given).

    Args:
        image_shape: ``(H, W)`` or ``(H, W, C)``.
        filters: width of the first level.
        channel_mult: width multipliers of the levels (one downsampling each).
        embedding_dim: width of the time embedding.
        groups: groups of the group normalizations (reduced to divide each width).
        num_classes: K of a class-conditional denoiser (``call(x, t, labels)``), or None.

    >>> net = DenoisingUNet((8, 8), filters=4, embedding_dim=8)
    >>> net(np.zeros((2, 64), "float32"), np.ones(2, "float32")).shape
    TensorShape([2, 64])
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        filters: int = 32,
        channel_mult: Sequence[int] = (1, 2),
        embedding_dim: int = 64,
        groups: int = 8,
        num_classes: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) == 2:
            self.image_shape = self.image_shape + (1,)
        self.filters = int(filters)
        self.channel_mult = tuple(int(m) for m in channel_mult)
        self.embedding_dim = int(embedding_dim)
        self.groups = int(groups)
        widths = [self.filters * m for m in self.channel_mult]
        self.embed = TimeEmbedding(self.embedding_dim)
        self.classes = _class_embedding(num_classes, self.embedding_dim)
        self.inp = keras.layers.Conv2D(self.filters, 3, padding="same")
        self.down = [
            (ResidualBlock(w, self.groups), keras.layers.Conv2D(w, 3, 2, "same")) for w in widths
        ]
        self.middle = ResidualBlock(widths[-1], self.groups)
        self.up = [ResidualBlock(w, self.groups) for w in widths[::-1]]
        self.norm = keras.layers.GroupNormalization(math.gcd(self.groups, self.filters))
        self.out = keras.layers.Conv2D(self.image_shape[-1], 3, padding="same")

    def build(self, x_shape, t_shape=None, labels_shape=None):
        self.call(keras.ops.zeros((1, *self.image_shape)), keras.ops.zeros((1,)))

    def call(self, x, t, labels=None):
        flat = len(x.shape) == 2
        h = keras.ops.reshape(x, (-1, *self.image_shape))
        e = self.embed(t)
        if self.classes is not None:
            e = e + self.classes.code(labels, keras.ops.shape(h)[0])
        e = keras.ops.silu(e)
        h = self.inp(h)
        skips = []
        for block, downsample in self.down:
            h = block(h, e)
            skips.append(h)
            h = downsample(h)
        h = self.middle(h, e)
        for block, skip in zip(self.up, skips[::-1]):
            h = keras.ops.repeat(keras.ops.repeat(h, 2, axis=1), 2, axis=2)
            h = h[:, : skip.shape[1], : skip.shape[2], :]  # odd sizes: 7 -> 14 -> 28
            h = block(keras.ops.concatenate([h, skip], -1), e)
        h = self.out(keras.ops.silu(self.norm(h)))
        return keras.ops.reshape(h, (-1, int(np.prod(self.image_shape)))) if flat else h

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "filters": self.filters,
            "channel_mult": self.channel_mult,
            "embedding_dim": self.embedding_dim,
            "groups": self.groups,
            "num_classes": self.num_classes,
        }
