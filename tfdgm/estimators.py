"""Monte-Carlo estimators of log-expectations: log-mean-exp and its standard error.

Importance sampling, annealed importance sampling and the IWAE bound all estimate a log
expectation from S log-weights log w_s (one per sample, per example):

    log p_hat = log (1/S) sum_s w_s = logsumexp_s(log w_s) - log S,

an unbiased estimate of p = E[w] whose log is biased low by about Var[w] / (2 S p^2)
(Jensen). Its standard error follows by the delta method from the sample variance
s^2 = sum_s (w_s - mean(w))^2 / (S - 1):

    se(log p_hat) ~= se(p_hat) / p_hat = sqrt(s^2 / S) / mean(w).

Weights span hundreds of nats, so every sum is taken relative to the largest log-weight
m = max_s log w_s (w_s e^{-m} is in (0, 1]). :func:`chunked_log_mean_exp` draws the S
samples ``chunk`` at a time and keeps running statistics (count n, shift m, mean and sum of
squared deviations M2 of w e^{-m}) merged chunk by chunk with Chan et al.'s pairwise
update, so memory is bounded by one chunk and the result does not depend on the chunking
(up to rounding).

References:
    Chan, Golub & LeVeque, Updating formulae and a pairwise algorithm for computing sample
    variances, 1979 (the merge of two chunks' statistics).
    Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

__all__ = [
    "chunked_log_mean_exp",
    "log_mean_exp",
    "log_mean_exp_and_std_error",
    "log_std_error_bounds",
]


def log_mean_exp(log_w: tf.Tensor, axis: int = 0) -> tf.Tensor:
    """log (1/S) sum_s exp(log_w_s) over ``axis`` (S = its length); differentiable.

    >>> round(float(log_mean_exp(tf.math.log([1.0, 3.0]))), 4)  # log 2
    0.6931
    """
    log_w = tf.convert_to_tensor(log_w)
    num = tf.cast(tf.shape(log_w)[axis], log_w.dtype)
    return tf.reduce_logsumexp(log_w, axis=axis) - tf.math.log(num)


class _Moments(NamedTuple):
    """Running statistics of w = exp(log w) over samples seen so far, relative to e^shift."""

    shift: tf.Tensor  # m: the largest log-weight (0 where all are -inf)
    count: tf.Tensor  # n
    mean: tf.Tensor  # mean of w e^{-m}
    m2: tf.Tensor  # sum of (w e^{-m} - mean)^2


def _moments(log_w: tf.Tensor) -> _Moments:
    """Statistics of one chunk of log-weights ``[k, ...]`` (samples on axis 0)."""
    log_w = tf.convert_to_tensor(log_w)
    shift = tf.stop_gradient(tf.reduce_max(log_w, axis=0))
    shift = tf.where(tf.math.is_finite(shift), shift, tf.zeros_like(shift))
    w = tf.exp(log_w - shift)
    mean = tf.reduce_mean(w, axis=0)
    m2 = tf.reduce_sum(tf.square(w - mean), axis=0)
    return _Moments(shift, tf.cast(tf.shape(log_w)[0], log_w.dtype), mean, m2)


def _merge(a: _Moments, b: _Moments) -> _Moments:
    """The statistics of two chunks together (Chan et al., 1979), rescaled to the larger
    shift: mean = mean_a + d n_b / n, M2 = M2_a + M2_b + d^2 n_a n_b / n, d = mean_b - mean_a."""
    shift = tf.maximum(a.shift, b.shift)
    scale_a, scale_b = tf.exp(a.shift - shift), tf.exp(b.shift - shift)
    mean_a, mean_b = a.mean * scale_a, b.mean * scale_b
    count = a.count + b.count
    delta = mean_b - mean_a
    mean = mean_a + delta * (b.count / count)
    m2 = (
        a.m2 * tf.square(scale_a)
        + b.m2 * tf.square(scale_b)
        + tf.square(delta) * (a.count * b.count / count)
    )
    return _Moments(shift, count, mean, m2)


def _estimate(moments: _Moments) -> tuple[tf.Tensor, tf.Tensor]:
    """(log mean(w), se of it): log(mean) + m and sqrt(M2 / (n - 1) / n) / mean."""
    variance = moments.m2 / tf.maximum(moments.count - 1.0, 1.0)
    std_error = tf.sqrt(variance / moments.count) / moments.mean
    return tf.math.log(moments.mean) + moments.shift, std_error


def log_mean_exp_and_std_error(log_w: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """log((1/S) sum_s w_s) and its delta-method standard error sqrt(s^2 / S) / mean(w), from
    log-weights ``[S, ...]`` (samples on axis 0; s^2 the sample variance of w, S - 1 in the
    denominator; the error is 0 for S = 1).

    >>> estimate, se = log_mean_exp_and_std_error(tf.math.log([1.0, 3.0]))
    >>> round(float(estimate), 4), round(float(se), 4)  # log 2; sqrt(2 / 2) / 2
    (0.6931, 0.5)
    """
    return _estimate(_moments(log_w))


def chunked_log_mean_exp(
    draw_log_weights: Callable,
    num_samples: int,
    seed=None,
    chunk: int = 100,
    std_error: bool = False,
):
    """log (1/S) sum_s w_s over S = ``num_samples`` draws made ``chunk`` at a time.

    Args:
        draw_log_weights: ``(k, seed) -> log-weights [k, ...]`` of k fresh samples (e.g.
            log p(x, z_s) - log q(z_s | x) for a batch of x, ``[k, batch]``). Chunk i is
            called with ``seed`` folded with i (``stateless_fold_in(seed, i)``), or None
            when ``seed`` is None.
        num_samples: S.
        seed: an int32[2] stateless seed (or anything ``tf.convert_to_tensor`` takes), or
            None.
        chunk: samples drawn at once (bounds memory; the last chunk holds the remainder).
        std_error: also return the delta-method standard error of the estimate.

    Returns:
        log p_hat, ``[...]``; with ``std_error``, the pair (log p_hat, se(log p_hat)).

    >>> draw = lambda k, seed: tf.math.log(tf.range(1.0, k + 1.0))[:, None]
    >>> round(float(chunked_log_mean_exp(draw, 3, chunk=2)[0]), 4)  # log mean(1, 2, 1)
    0.2877
    """
    num_samples, chunk = int(num_samples), int(chunk)
    if num_samples < 1 or chunk < 1:
        raise ValueError(f"num_samples and chunk must be >= 1, got {num_samples} and {chunk}")
    if seed is not None:
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    total = None
    for i, start in enumerate(range(0, num_samples, chunk)):
        k = min(chunk, num_samples - start)
        chunk_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, i)
        part = _moments(draw_log_weights(k, chunk_seed))
        total = part if total is None else _merge(total, part)
    estimate, error = _estimate(total)
    return (estimate, error) if std_error else estimate


def log_std_error_bounds(
    estimate: tf.Tensor, std_error: tf.Tensor, width: float = 3.0
) -> tuple[tf.Tensor, tf.Tensor]:
    """log(p_hat -+ width se(p_hat)) = log p_hat + log(1 -+ width se(log p_hat)), the lower
    end floored at log 1e-30 (Salakhutdinov & Murray, 2008, report width 3)."""
    lower = estimate + tf.math.log(tf.maximum(1.0 - width * std_error, 1e-30))
    upper = estimate + tf.math.log1p(width * std_error)
    return lower, upper


def bits_per_dim(log_prob, event_size: int, num_levels: int | None = None) -> tf.Tensor:
    """Bits per dimension, -log p(x) / (D log 2); with ``num_levels`` K, that of discrete
    data from the density of its dequantization.

    For x = (l + u) / K with u ~ U[0, 1)^D, log P(l) >= log p(x) - D log K, so

        bits/dim = (-log p(x) + D log K) / (D log 2).

    >>> float(bits_per_dim(tf.constant(0.0), event_size=1, num_levels=2))  # uniform on [0, 1)
    1.0
    """
    log_prob = tf.cast(log_prob, tf.float32)
    d = float(event_size)
    offset = d * math.log(num_levels) if num_levels else 0.0
    return (-log_prob + offset) / (d * math.log(2.0))
