"""Noise schedules of diffusion models: beta_t, alpha_t and abar_t on t = 1..T.

A schedule is a plain object (no variables), rebuilt from its three constructor arguments;
models keep ``schedule.get_config()`` in their own config. log abar_t is the table models
compute from: 1 - abar_t and beta_t = 1 - abar_t/abar_{t-1} are taken as -expm1 of log
differences, with no cancellation near t = 0.

References:
    Ho, Jain & Abbeel, Denoising Diffusion Probabilistic Models, NeurIPS 2020.
    Nichol & Dhariwal, Improved Denoising Diffusion Probabilistic Models, ICML 2021.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

SCHEDULES = ("linear", "cosine")


class NoiseSchedule:
    """beta_t, alpha_t = 1 - beta_t and abar_t = prod_{s<=t} alpha_s for t = 1..T (float64).

    ``"linear"``: beta_t from (1000/T) 1e-4 to (1000/T) 0.02 (Ho et al. at T = 1000, rescaled
    for other T as Nichol & Dhariwal do); ``"cosine"``: abar_t = f(t)/f(0), f(t) =
    cos^2(pi/2 (t/T + s)/(1 + s)), s = 0.008 (Nichol & Dhariwal, 2021). Every beta_t is
    clipped to ``max_beta``. Arrays are indexed t - 1.

    >>> NoiseSchedule(1000).betas[[0, -1]]
    array([0.0001, 0.02  ])
    """

    def __init__(self, num_timesteps: int = 1000, kind: str = "linear", max_beta: float = 0.999):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
        self.num_timesteps, self.kind, self.max_beta = int(num_timesteps), kind, float(max_beta)
        t = np.arange(self.num_timesteps + 1, dtype=np.float64)
        if kind == "linear":
            scale = 1000.0 / self.num_timesteps
            betas = np.linspace(scale * 1e-4, scale * 0.02, self.num_timesteps)
        else:
            f = np.cos((t / self.num_timesteps + 0.008) / 1.008 * np.pi / 2) ** 2
            betas = 1.0 - f[1:] / f[:-1]
        self.betas = np.minimum(betas, self.max_beta)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = np.cumprod(self.alphas)
        #: log abar_t for t = 0..T (abar_0 = 1): the table the model computes from.
        self.log_alpha_bar = np.concatenate([[0.0], np.cumsum(np.log1p(-self.betas))])

    def log_alpha_bar_at(self, t) -> tf.Tensor:
        """log abar_t as a float32 tensor: looked up for integer t, linearly interpolated
        between the integer steps for float t in [0, T] (continuous time)."""
        table = tf.constant(self.log_alpha_bar, tf.float32)
        t = tf.convert_to_tensor(t)
        if t.dtype.is_integer:
            return tf.gather(table, t)
        return tfp.math.interp_regular_1d_grid(
            tf.cast(t, tf.float32), 0.0, float(self.num_timesteps), table
        )

    def beta_at(self, t) -> tf.Tensor:
        """beta(t) = -d log abar(t)/dt of the interpolated log abar, float32 (continuous t
        in [0, T]; constant log(abar_{k}/abar_{k+1}) on [k, k+1))."""
        table = tf.constant(-np.diff(self.log_alpha_bar), tf.float32)
        k = tf.cast(tf.floor(tf.cast(t, tf.float32)), tf.int32)
        return tf.gather(table, tf.clip_by_value(k, 0, self.num_timesteps - 1))

    def get_config(self) -> dict:
        return {"num_timesteps": self.num_timesteps, "kind": self.kind, "max_beta": self.max_beta}

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        return cls(**config)

    def __repr__(self):
        return f"NoiseSchedule(num_timesteps={self.num_timesteps}, kind={self.kind!r})"
