"""Log-partition functions of energy-based models: exact enumeration and annealed
importance sampling (AIS), for any model with an unnormalized log-density.

A model p(x) = f(x) / Z with f(x) = exp(-F(x)) (F the energy or free energy) has

    log Z = log sum_x f(x)                    (an integral for continuous x).

**Enumeration.** When x (or a layer that the rest of the model can be summed or
integrated out against) is n binary units, log Z = logsumexp over the 2^n configurations
s of log f(s); :func:`enumerate_log_partition` evaluates 2^``chunk_bits`` configurations at
a time in float64 and combines the chunks with a running logsumexp.

**AIS** (Neal, 2001). Intermediate distributions p_k(x) = f_k(x) / Z_k, k = 0..K, join a
tractable base p_0 (exact samples, known log Z_0) to the model p_K = p. With x_0 ~ p_0 and
x_k ~ T_k(x_{k-1}, .) for a Markov transition T_k that leaves p_k invariant, the weight

    log w = sum_{k=1}^{K} [log f_k(x_{k-1}) - log f_{k-1}(x_{k-1})]

has E[w] = Z_K / Z_0, so with M independent chains

    log Z_hat = log Z_0 + log (1/M) sum_m w_m,

an unbiased estimate of Z (its log is biased low). :func:`annealed_importance_sampling`
indexes the intermediates by an inverse temperature beta_k (``ais_schedule``, 0 = beta_0 <
... < beta_K = 1) and reports the delta-method standard error of log Z_hat and the band
log(Z_hat -+ 3 se(Z_hat)) of Salakhutdinov & Murray (2008).

:class:`LogPartitionCache` remembers the latest result of one model, keyed by the method,
its settings, an explicit seed and a digest of the weights, so that scoring a test set in
batches computes log Z once. :class:`EnergyBasedModel` puts these together for a model
p(x) = exp(-F(x)) / Z: ``log_partition`` (exact or AIS, cached), ``log_prob`` = -F(x) -
log Z and ``log_likelihood``, from a few hooks its subclass (an RBM, a future DBM)
implements; the RBM's closed forms (``rbm_enumeration``, ``rbm_base_log_partition``, the
fused AIS ``rbm_annealing_step``) are here too, as functions of its weights.

References:
    Neal, Annealed importance sampling, Statistics and Computing 2001.
    Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, ICML 2008.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm.base import GenerativeModel
from tfdgm.estimators import log_mean_exp_and_std_error, log_std_error_bounds

tfd = tfp.distributions
#: The most binary units :func:`enumerate_log_partition` enumerates (2^20 configurations).
EXACT_MAX_UNITS = 20
#: Enumerate 2^CHUNK_BITS configurations at a time.
CHUNK_BITS = 14


class LogPartition(NamedTuple):
    """An exact value or an estimate of log Z.

    ``stddev`` is the standard error of the estimate (delta method, s(w) / (sqrt(M) mean(w))
    for AIS with M chains, s the sample standard deviation; 0 when exact); ``lower``/``upper``
    bound log(Z_hat -+ 3 se(Z_hat)) as in Salakhutdinov & Murray (2008); ``method`` is
    ``"exact"`` or ``"ais"``.
    """

    value: tf.Tensor
    stddev: tf.Tensor
    lower: tf.Tensor
    upper: tf.Tensor
    method: str

    @classmethod
    def exact(cls, value) -> LogPartition:
        """An exact log Z: no spread, lower = upper = value (float32)."""
        value = tf.cast(value, tf.float32)
        return cls(value, tf.zeros([]), value, value, "exact")


def binary_configurations(num_bits: int, start: int, stop: int) -> tf.Tensor:
    """Rows ``start..stop-1`` of the 2^num_bits binary configurations, float64 ``[n, bits]``
    (row i holds the bits of i, least significant first).

    >>> binary_configurations(2, 0, 4).numpy().tolist()
    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    """
    index = tf.range(start, stop, dtype=tf.int64)[:, None]
    bits = tf.bitwise.bitwise_and(
        tf.bitwise.right_shift(index, tf.range(num_bits, dtype=tf.int64)), 1
    )
    return tf.cast(bits, tf.float64)


def enumerate_log_partition(
    log_unnormalized: Callable[[tf.Tensor], tf.Tensor],
    num_bits: int,
    max_bits: int = EXACT_MAX_UNITS,
    chunk_bits: int = CHUNK_BITS,
) -> tf.Tensor:
    """log Z = log sum_{s in {0,1}^n} exp(log f(s)) by enumeration, float64 scalar.

    Args:
        log_unnormalized: float64 configurations ``[k, n]`` -> log f(s), ``[k]`` (for an
            RBM enumerated over its hidden layer, log f(h) = log sum_v exp(-E(v, h))).
        num_bits: n.
        max_bits: refuse (ValueError) for n above this.
        chunk_bits: evaluate 2^chunk_bits configurations at a time.

    >>> round(float(enumerate_log_partition(lambda s: tf.reduce_sum(s, -1), 3)), 4)  # 3 log(1+e)
    3.9398
    """
    if num_bits > max_bits:
        raise ValueError(
            f"exact log Z enumerates 2^{num_bits} states of the smaller layer; the limit is "
            f"2^{max_bits} (EXACT_MAX_UNITS). Use log_partition(method='ais')."
        )
    size, step = 2**num_bits, 2**chunk_bits
    parts = [
        tf.reduce_logsumexp(
            log_unnormalized(binary_configurations(num_bits, start, min(size, start + step)))
        )
        for start in range(0, size, step)
    ]
    return tf.reduce_logsumexp(tf.stack(parts))


def ais_schedule(num_betas: int) -> tf.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1, denser near 1: the proportions of
    Salakhutdinov & Murray (500 in [0, .5), 4000 in [.5, .9), 10000 in [.9, 1]); float32
    ``[K + 1]``, K ~= ``num_betas``."""
    k1 = max(1, round(num_betas * 500 / 14500))
    k2 = max(1, round(num_betas * 4000 / 14500))
    k3 = max(1, num_betas - k1 - k2)
    betas = np.concatenate(
        [
            np.linspace(0.0, 0.5, k1, endpoint=False),
            np.linspace(0.5, 0.9, k2, endpoint=False),
            np.linspace(0.9, 1.0, k3 + 1),
        ]
    )
    return tf.constant(betas, tf.float32)


def in_graph(fn: Callable, *args):
    """Run ``fn(*args)`` as a traced graph when called eagerly (long sampling loops run
    ~100x faster than op by op), directly when already inside a graph."""
    if tf.executing_eagerly():
        return tf.function(fn, autograph=False)(*args)
    return fn(*args)


def annealed_importance_sampling(
    initial: tf.Tensor,
    log_base_partition,
    log_unnormalized: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    transition: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor],
    betas: tf.Tensor,
    seed,
    step: Callable | None = None,
) -> LogPartition:
    """AIS estimate of log Z = log Z_0 + log (1/M) sum_m w_m along the temperatures ``betas``.

    log w = sum_{k=1}^{K} [log f_{beta_k}(x_{k-1}) - log f_{beta_{k-1}}(x_{k-1})], with x_0 =
    ``initial`` (M exact samples of p_0, the distribution at beta_0 = 0) and x_k =
    ``transition(x_{k-1}, beta_k, seed_k)``.

    Args:
        initial: x_0 ~ p_0, ``[M, ...]`` (M independent chains).
        log_base_partition: log Z_0 of p_0 (of f_0 exactly as ``log_unnormalized`` gives it).
        log_unnormalized: ``(x, beta) -> log f_beta(x)``, ``[M]``; terms constant in beta
            may be left out (they cancel in every ratio) if ``log_base_partition`` leaves
            them out too. For a Boltzmann machine, log f_beta = -F_beta (free energy of the
            model at inverse temperature beta).
        transition: ``(x, beta, seed) -> x'``, a Markov step leaving p_beta invariant (e.g.
            one block Gibbs sweep at beta).
        betas: ``[K + 1]`` float32, 0 = beta_0 < ... < beta_K = 1 (:func:`ais_schedule`).
        seed: int32[2]; step k uses ``stateless_fold_in(seed, k)``.
        step: optional ``(x, beta_k, beta_{k+1}, seed) -> (log f_{beta_{k+1}}(x) - log
            f_{beta_k}(x), transition(x, beta_{k+1}, seed))`` in one go, for a model that
            shares work between the two (an RBM: one v'W product for both log f's and
            p(h|v)); replaces ``log_unnormalized`` and ``transition``.

    Returns:
        A :class:`LogPartition` (float32; computed from float64 weights) with method "ais".
    """
    log_w = in_graph(ais_log_weights, initial, log_unnormalized, transition, betas, seed, step)
    return ais_estimate(log_w, log_base_partition)


def ais_log_weights(initial, log_unnormalized, transition, betas, seed, step=None) -> tf.Tensor:
    """The AIS log weights log w ``[M]`` (see :func:`annealed_importance_sampling`), as a
    ``tf.while_loop`` over the temperatures."""
    if step is None:

        def step(x, beta, beta_next, seed):
            ratio = log_unnormalized(x, beta_next) - log_unnormalized(x, beta)
            return ratio, transition(x, beta_next, seed)

    def body(k, x, log_w):
        ratio, x = step(
            x, betas[k], betas[k + 1], tf.random.experimental.stateless_fold_in(seed, k)
        )
        return k + 1, x, log_w + ratio

    zeros = tf.zeros(tf.shape(initial)[:1], initial.dtype)
    num_steps = tf.shape(betas)[0] - 1
    return tf.while_loop(lambda k, x, log_w: k < num_steps, body, (0, initial, zeros))[2]


def ais_estimate(log_w, log_base_partition) -> LogPartition:
    """log Z_hat = log Z_0 + log mean(w) from AIS log weights, with its standard error and
    the log(Z_hat -+ 3 se) band (float64 inside, float32 out)."""
    log_w = tf.cast(log_w, tf.float64)
    log_ratio, std_error = log_mean_exp_and_std_error(log_w)  # log Z_K/Z_0, se of it
    value = tf.cast(log_base_partition, tf.float64) + log_ratio
    lower, upper = log_std_error_bounds(value, std_error)
    f32 = lambda t: tf.cast(t, tf.float32)
    return LogPartition(f32(value), f32(std_error), f32(lower), f32(upper), "ais")


# ---------------------------------------------------------------- RBM closed forms
def rbm_enumeration(W, b, c, visible: str = "bernoulli", visible_std: float = 1.0):
    """``(log_unnormalized, offset)`` of an RBM (W ``[V, H]``, b, c; float64) for
    :func:`enumerate_log_partition`: log f(s) of the layer it enumerates, the other layer
    summed (or, for Gaussian v, integrated) out in closed form, and the constant added to
    log Z. Bernoulli v enumerates the smaller layer, Gaussian v the hidden one:

        h (H <= V):  log f(h) = c'h + sum_i softplus(b_i + W_i h)
        v (V < H):   log f(v) = -F(v) = b'v + sum_j softplus(c_j + v'W_j)
        Gaussian h:  log f(h) = c'h + b'Wh/s + |Wh|^2/2,  offset V/2 log(2 pi s^2)
    """
    num_visible, num_hidden = W.shape
    s = visible_std
    if visible == "gaussian":

        def log_unnormalized(h):
            wh = tf.matmul(h, W, transpose_b=True)
            quadratic = tf.linalg.matvec(wh, b) / s + 0.5 * tf.reduce_sum(tf.square(wh), -1)
            return tf.linalg.matvec(h, c) + quadratic

        return log_unnormalized, 0.5 * num_visible * math.log(2 * math.pi * s**2)
    if num_hidden <= num_visible:
        return (
            lambda h: (
                tf.linalg.matvec(h, c)
                + tf.reduce_sum(tf.math.softplus(b + tf.matmul(h, W, transpose_b=True)), -1)
            ),
            0.0,
        )
    return (
        lambda v: (
            tf.linalg.matvec(v, b) + tf.reduce_sum(tf.math.softplus(tf.matmul(v, W) + c), -1)
        ),
        0.0,
    )


def rbm_base_log_partition(
    b, num_hidden: int, visible: str = "bernoulli", visible_std: float = 1.0
) -> tf.Tensor:
    """log Z_0 of the RBM with W = 0, c = 0 (AIS's base): sum_i softplus(b_i) + H log 2
    (Bernoulli) or V/2 log(2 pi s^2) + H log 2 (Gaussian)."""
    hidden = num_hidden * math.log(2.0)
    if visible == "bernoulli":
        return tf.reduce_sum(tf.math.softplus(b)) + hidden
    return 0.5 * b.shape[0] * math.log(2 * math.pi * visible_std**2) + hidden


def rbm_annealed_log_f(pre, beta) -> tf.Tensor:
    """log f_beta(v) of AIS's RBM (beta W, b, beta c) without its b-term, which does not
    depend on beta and cancels in every ratio: sum_j softplus(beta pre_j), pre = c +
    (v/s)'W."""
    return tf.reduce_sum(tf.math.softplus(beta * pre), -1)


def rbm_annealing_step(pre_of: Callable, visible_conditional: Callable) -> Callable:
    """AIS's fused ``step`` (see :func:`annealed_importance_sampling`) for an RBM: two
    products per temperature, pre = ``pre_of(v)`` = c + (v/s)'W (for log f at both
    temperatures and the logits beta pre of p(h|v)) and the h W' of
    ``visible_conditional(h, beta)``."""

    def step(v, beta, beta_next, seed):
        seed_h, seed_v = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        pre = pre_of(v)
        h = tfd.Bernoulli(logits=beta_next * pre, dtype=tf.float32).sample(seed=seed_h)
        v_next = visible_conditional(h, beta_next).sample(seed=seed_v)
        return rbm_annealed_log_f(pre, beta_next) - rbm_annealed_log_f(pre, beta), v_next

    return step


def weights_digest(variables: Sequence) -> str:
    """SHA-1 of the variables' current values: a key that changes when any weight does."""
    digest = hashlib.sha1()
    for variable in variables:
        digest.update(np.asarray(variable).tobytes())
    return digest.hexdigest()


class LogPartitionCache:
    """The latest log Z of one model, keyed by its settings and a digest of the weights.

    Only eager calls are cached (a traced graph must recompute); keep it out of Keras'
    attribute tracking (``object.__setattr__(model, "_log_z_cache", LogPartitionCache())``).
    """

    def __init__(self):
        self._key = None
        self._value = None
        self.traced = {}  # a model's tf.functions, traced once and reused (e.g. AIS)

    def get_or_compute(
        self, settings: tuple, variables: Sequence, compute: Callable[[], LogPartition]
    ) -> LogPartition:
        """``compute()``, or the stored result when ``settings`` and the weights are those
        of the last call; ``settings`` must pin down the result (method, its parameters and
        an explicit seed)."""
        if not tf.executing_eagerly():
            return compute()
        key = (settings, weights_digest(variables))
        if key != self._key:
            self._value, self._key = compute(), key
        return self._value

    def clear(self) -> None:
        self._key = self._value = None


class EnergyBasedModel(GenerativeModel):
    """A model p(x) = exp(-F(x)) / Z with log Z exact by enumeration or estimated by AIS.

    A subclass sets ``ais_chains`` and ``ais_betas`` (AIS defaults) and implements

    - ``free_energy(x)``: F(x), float32 ``[batch]``;
    - ``_enumerated_units()``: n, the binary units whose 2^n states ``"exact"`` enumerates;
    - ``_enumeration()``: ``(log_unnormalized, offset)`` with log Z = offset + log sum_s
      exp(log_unnormalized(s)) over those states (float64, see
      :func:`enumerate_log_partition`);
    - ``_annealing(num_chains, seed)``: ``(initial, log_base_partition, log_unnormalized,
      transition)``, the arguments of :func:`annealed_importance_sampling`, optionally
      followed by its fused ``step``; it runs inside one ``tf.function`` per model, traced
      once per (chains, temperatures) and reused by every later AIS call;

    and gets ``log_partition``, ``log_prob``, ``log_likelihood``, ``log_prob_method`` and
    ``density`` (``"exact"`` when log Z is enumerated, else ``"estimate"``).
    """

    ais_chains: int = 200
    ais_betas: int = 10000

    @property
    def density(self) -> str:
        """``"exact"`` when log Z is computed by enumeration, else ``"estimate"`` (AIS)."""
        return "exact" if self.log_prob_method == "exact" else "estimate"

    @property
    def log_prob_method(self) -> str:
        """``"exact"`` when at most ``EXACT_MAX_UNITS`` units are to be enumerated, else
        ``"ais"``: which estimate of log Z ``log_prob`` uses by default."""
        return "exact" if self._enumerated_units() <= EXACT_MAX_UNITS else "ais"

    def log_partition(
        self,
        method: str = "exact",
        num_chains: int | None = None,
        num_betas: int | None = None,
        seed=None,
    ) -> LogPartition:
        """log Z = log sum_x exp(-F(x)) (an integral over continuous units).

        Args:
            method: ``"exact"``: enumerate the 2^n states of ``_enumerated_units()`` in
                float64; raises ValueError for n > ``EXACT_MAX_UNITS`` (20). ``"ais"``:
                annealed importance sampling.
            num_chains, num_betas: AIS chains M and intermediate temperatures K (defaults
                ``ais_chains``, ``ais_betas``).
            seed: AIS seed (int32[2]); the model's stream when None.

        Returns:
            A :class:`LogPartition` (value, stddev, lower, upper, method).

        Called eagerly, the result is a deterministic function of the weights, the method,
        its settings and an explicit seed, and is cached: scoring a test set in batches
        computes log Z once.
        """
        if method not in ("exact", "ais"):
            raise ValueError(f"method must be 'exact' or 'ais', got {method!r}")
        num_chains, num_betas = int(num_chains or self.ais_chains), int(num_betas or self.ais_betas)
        if method == "exact":
            settings = ("exact",)

            def compute():
                log_unnormalized, offset = self._enumeration()
                log_z = enumerate_log_partition(log_unnormalized, self._enumerated_units())
                return LogPartition.exact(log_z + offset)

        else:
            if seed is None or not tf.executing_eagerly():
                return self._ais(num_chains, num_betas, seed)  # a fresh estimate
            settings = ("ais", num_chains, num_betas, tuple(np.asarray(self._seed(seed)).tolist()))
            compute = lambda: self._ais(num_chains, num_betas, seed)
        return self._partition_cache().get_or_compute(settings, self.trainable_variables, compute)

    def _partition_cache(self) -> LogPartitionCache:
        if "_log_z_cache" not in self.__dict__:
            object.__setattr__(self, "_log_z_cache", LogPartitionCache())  # untracked by Keras
        return self._log_z_cache

    def _ais(self, num_chains: int, num_betas: int, seed) -> LogPartition:
        """AIS through one ``tf.function`` per model (traced once per number of chains and
        of temperatures; the weights are read inside it, so later calls see new ones)."""
        seed, betas = self._seed(seed), ais_schedule(num_betas)
        if not tf.executing_eagerly():
            return ais_estimate(*self._ais_log_weights(num_chains, betas, seed))
        traced = self._partition_cache().traced
        if "ais" not in traced:
            traced["ais"] = tf.function(self._ais_log_weights, autograph=False)
        return ais_estimate(*traced["ais"](num_chains, betas, seed))

    def _ais_log_weights(self, num_chains: int, betas, seed):
        """(log w ``[num_chains]``, log Z_0) of one AIS run (see ``_annealing``)."""
        seed_init, seed_chain = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        initial, log_base, log_unnormalized, transition, *step = self._annealing(
            num_chains, seed_init
        )
        log_w = ais_log_weights(initial, log_unnormalized, transition, betas, seed_chain, *step)
        return log_w, tf.cast(log_base, tf.float64)

    def log_prob(self, x, method: str | None = None, log_partition=None, seed=None):
        """log p(x) = -F(x) - log Z, float32 ``[batch]``.

        Args:
            x: a batch of events.
            method: ``"exact"`` or ``"ais"``; default ``self.log_prob_method``.
            log_partition: a precomputed log Z (a float or a :class:`LogPartition`) to reuse.
            seed: AIS seed; default (0, 0), so that log_prob is a deterministic function of
                the weights (batches scored separately share one log Z estimate).
        """
        x = self._prepare(x)
        if log_partition is None:
            seed = (0, 0) if seed is None else seed
            log_partition = self.log_partition(method or self.log_prob_method, seed=seed)
        if isinstance(log_partition, LogPartition):
            log_partition = log_partition.value
        return -self.scored_free_energy(x) - tf.cast(log_partition, tf.float32)

    def scored_free_energy(self, x) -> tf.Tensor:
        """The F that ``log_prob`` scores: ``free_energy(x)``; a model with an intractable F
        returns an upper bound on it (a DBM's variational free energy), which makes
        ``log_prob`` a lower bound."""
        return self.free_energy(x)

    def log_likelihood(self, x, method: str | None = None, seed=None) -> dict:
        """Mean log p(x) over a batch with the log Z it used and which method gave it
        (AIS seed (0, 0) by default, as in :meth:`log_prob`)."""
        seed = (0, 0) if seed is None else seed
        log_z = self.log_partition(method or self.log_prob_method, seed=seed)
        log_p = self.log_prob(x, log_partition=log_z)
        return {
            "log_likelihood": float(tf.reduce_mean(log_p)),
            "method": log_z.method,
            "log_partition": float(log_z.value),
            "log_partition_stddev": float(log_z.stddev),
        }

    def summary_metrics(self, dataset) -> dict:
        """Test log-likelihood with the log Z it used (exact, or AIS with seed (0, 0))."""
        x = dataset.x_test.reshape(len(dataset.x_test), *self.event_shape)
        report = self.log_likelihood(x, seed=(0, 0))
        return {
            "test_log_likelihood": report["log_likelihood"],
            "log_likelihood_method": report["method"],
            "log_partition": report["log_partition"],
            "log_partition_stddev": report["log_partition_stddev"],
        }

    def export_endpoints(self):
        """sample (explicit seed), log_prob and free_energy.

        The log_prob endpoint is -F(x) - log Z with log Z computed once, when the endpoints
        are made (exact, or AIS with seed (0, 0)), and stored in the graph as a constant.
        """
        endpoints = super().export_endpoints()
        spec = [self.input_signature()]
        log_z = float(self.log_partition(self.log_prob_method, seed=(0, 0)).value)
        endpoints["log_prob"] = (lambda x: self.log_prob(x, log_partition=log_z), spec)
        endpoints["free_energy"] = (lambda x: self.free_energy(x), spec)
        return endpoints
