"""Likelihood heads: raw layer outputs -> float32 TFP distributions over one event.

Every head casts its parameters to float32 first, so a model computing in
``mixed_float16`` or ``mixed_bfloat16`` still gets float32 log-probabilities.
Heads are plain functions: a distribution is built at call time from the tensors
a network just produced, never stored on a model (TFP would freeze Keras 3
variables, see ``docs/keras_tfp_notes.md``).

>>> import tensorflow as tf
>>> d = bernoulli(tf.zeros([3, 4]), event_shape=(4,))
>>> print(d.log_prob(tf.ones([3, 4])).numpy().round(4))
[-2.7726 -2.7726 -2.7726]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

#: Names accepted by :func:`get` (and by models' ``likelihood=`` argument).
HEADS = ("bernoulli", "categorical", "normal")


def _event(event_shape: Sequence[int]) -> list[int]:
    return [int(d) for d in event_shape]


def num_params(name: str, event_shape: Sequence[int], num_categories: int | None = None) -> int:
    """Number of network outputs the head ``name`` needs for one event of ``event_shape``.

    Bernoulli: one logit per dimension; Categorical: K logits per dimension; Normal: a
    location and an unconstrained scale per dimension.
    """
    size = int(np.prod(_event(event_shape)))
    if name == "bernoulli":
        return size
    if name == "categorical":
        if not num_categories or num_categories < 2:
            raise ValueError(f"a categorical head needs num_categories >= 2, got {num_categories}")
        return size * int(num_categories)
    if name == "normal":
        return 2 * size
    raise ValueError(f"unknown likelihood head {name!r}; choose one of {', '.join(HEADS)}")


def bernoulli(logits: tf.Tensor, event_shape: Sequence[int]) -> tfd.Distribution:
    """p(x) = prod_i Bernoulli(x_i; sigmoid(l_i)), from logits ``[..., prod(event_shape)]``."""
    event = _event(event_shape)
    logits = tf.cast(logits, tf.float32)
    logits = tf.reshape(logits, tf.concat([tf.shape(logits)[:-1], event], 0))
    return tfd.Independent(
        tfd.Bernoulli(logits=logits, dtype=tf.float32), reinterpreted_batch_ndims=len(event)
    )


def categorical(
    logits: tf.Tensor, event_shape: Sequence[int], num_categories: int
) -> tfd.Distribution:
    """p(x) = prod_i Categorical(x_i; softmax(l_i)), from logits ``[..., prod(event) * K]``.

    Samples are float32 integer levels in ``[0, K)``, the dtype data arrives in.
    """
    event = _event(event_shape)
    logits = tf.cast(logits, tf.float32)
    logits = tf.reshape(logits, tf.concat([tf.shape(logits)[:-1], event, [num_categories]], 0))
    return tfd.Independent(
        tfd.Categorical(logits=logits, dtype=tf.float32), reinterpreted_batch_ndims=len(event)
    )


def normal(
    params: tf.Tensor, event_shape: Sequence[int], min_scale: float = 1e-3
) -> tfd.Distribution:
    """Diagonal Normal N(x; mu, diag(sigma^2)) from ``[..., 2 * prod(event)]`` outputs.

    The first half is mu, the second half an unconstrained s with
    sigma = softplus(s) + ``min_scale`` (bounded away from 0 for stability).
    """
    event = _event(event_shape)
    params = tf.cast(params, tf.float32)
    loc, raw_scale = tf.split(params, 2, axis=-1)
    shape = tf.concat([tf.shape(loc)[:-1], event], 0)
    scale = tf.math.softplus(raw_scale) + min_scale
    return tfd.Independent(
        tfd.Normal(loc=tf.reshape(loc, shape), scale=tf.reshape(scale, shape)),
        reinterpreted_batch_ndims=len(event),
    )


def get(
    name: str, params: tf.Tensor, event_shape: Sequence[int], num_categories: int | None = None
) -> tfd.Distribution:
    """Build the head called ``name`` (one of :data:`HEADS`) from network outputs."""
    if name == "bernoulli":
        return bernoulli(params, event_shape)
    if name == "categorical":
        return categorical(params, event_shape, num_categories)
    if name == "normal":
        return normal(params, event_shape)
    raise ValueError(f"unknown likelihood head {name!r}; choose one of {', '.join(HEADS)}")


def product_of_experts(means, stddevs, weights=None) -> tfd.Normal:
    """The product of Gaussian experts, renormalized: prod_j N(mu_j, s_j^2) is proportional
    to N(mu, s^2) with precision-weighted

        1 / s^2 = sum_j w_j / s_j^2,      mu = s^2 * sum_j w_j mu_j / s_j^2

    (Wu & Goodman, 2018). Experts lie along the first axis of ``means`` and ``stddevs``
    (``[J, ...]``); ``weights`` ``[J, ...]`` (broadcast against them, default 1) scales each
    expert's precision, so 0 leaves an expert out (a missing modality). At least one
    expert must have a positive weight; a prior expert N(0, 1) is simply one of them.

    Args:
        means: ``[J, ...]`` expert means.
        stddevs: ``[J, ...]`` positive expert standard deviations.
        weights: optional ``[J, ...]`` non-negative precision weights.

    Returns:
        A float32 ``tfd.Normal`` of batch shape ``[...]`` (independent dimensions).

    References:
        Wu & Goodman, Multimodal Generative Models for Scalable Weakly-Supervised
        Learning, NeurIPS 2018.

    >>> d = product_of_experts(tf.constant([[0.0], [2.0]]), tf.constant([[1.0], [1.0]]))
    >>> float(d.loc[0]), round(float(d.scale[0]) ** 2, 4)
    (1.0, 0.5)
    """
    means = tf.cast(means, tf.float32)
    precisions = 1.0 / tf.square(tf.cast(stddevs, tf.float32))
    if weights is not None:
        precisions = precisions * tf.cast(weights, tf.float32)
    total = tf.reduce_sum(precisions, 0)
    loc = tf.reduce_sum(precisions * means, 0) / total
    return tfd.Normal(loc=loc, scale=tf.math.rsqrt(total))


#: The data support each head expects (used by input validation).
SUPPORT = {"bernoulli": "binary", "categorical": "categorical", "normal": "real"}
