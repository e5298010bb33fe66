"""f-divergences and Monte-Carlo estimators of the marginal likelihood.

An f-divergence between distributions P and Q with densities p and q is

    D_f(P || Q) = E_Q[ f(p(x) / q(x)) ] = integral q(x) f(p(x)/q(x)) dx,

with a convex generator f: R_+ -> R, f(1) = 0 (so D_f >= 0 by Jensen, = 0 iff P = Q).
Its Fenchel conjugate f*(t) = sup_u (t u - f(u)) gives the variational lower bound
used by f-GANs (Nowozin et al., 2016):

    D_f(P || Q) >= sup_T  E_P[T(x)] - E_Q[f*(T(x))],    T(x) = g_f(V(x)),

where V is an unconstrained network output and g_f an output activation into dom f*.
The bound is tight at T(x) = f'(p(x)/q(x)).

Generators and conjugates (Nowozin et al., 2016, Table 1; D_f = E_Q[f(p/q)]):

    name               f(u)                                     f*(t)                 dom f*
    kl                 u log u                                  exp(t - 1)            R
    reverse_kl         -log u                                   -1 - log(-t)          t < 0
    pearson            (u - 1)^2                                t^2/4 + t             R
    squared_hellinger  (sqrt(u) - 1)^2                          t / (1 - t)           t < 1
    jensen_shannon     u log u - (u + 1) log((u + 1)/2)         -log(2 - exp(t))      t < log 2
    gan                u log u - (u + 1) log(u + 1) + 2 log 2   -log(1 - exp(t))      t < 0
                                                                  - 2 log 2

Output activations g_f: R -> dom f* (Nowozin et al., 2016, Table 2):
kl v; reverse_kl -exp(-v); pearson v; squared_hellinger 1 - exp(-v);
jensen_shannon log 2 - log(1 + exp(-v)); gan -log(1 + exp(-v)).

Conventions. ``jensen_shannon`` uses Nowozin et al.'s generator, whose divergence is
KL(P||M) + KL(Q||M) = 2 JSD(P, Q) with M = (P + Q)/2 (values in [0, log 4]); their table
writes a factor 1/2 in front that the generator does not have. ``gan`` adds the constant
2 log 2 to Nowozin et al.'s generator so that f(1) = 0: its divergence is then also
2 JSD(P, Q) >= 0 (Nowozin et al.'s is 2 JSD - log 4) and the conjugate is shifted by
-2 log 2; f' and the activation are unchanged, and the f-GAN objective differs only by a
constant. The two generators differ by the linear term (u - 1) log 2, which changes the
conjugate (a shift of t by log 2) but not the divergence.

References:
    Ali & Silvey, A general class of coefficients of divergence, JRSS B 1966.
    Csiszar, Information-type measures of difference of probability distributions, 1967.
    Nguyen, Wainwright & Jordan, Estimating divergence functionals and the likelihood
    ratio by convex risk minimization, IEEE Trans. Inf. Theory 2010.
    Nowozin, Cseke & Tomioka, f-GAN: Training Generative Neural Samplers using
    Variational Divergence Minimization, NeurIPS 2016.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm.estimators import chunked_log_mean_exp

tfd = tfp.distributions

_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class FDivergence:
    """One f-divergence: its generator, derivative, Fenchel conjugate and f-GAN activation.

    Attributes:
        name: key in :data:`F_DIVERGENCES`.
        f: generator f(u), convex on u > 0, f(1) = 0.
        f_prime: derivative f'(u); T*(x) = f'(p(x)/q(x)) is the optimal critic.
        conjugate: Fenchel conjugate f*(t) = sup_u t u - f(u), finite on ``domain``.
        activation: g_f: R -> dom f*, the output activation of an f-GAN critic.
        domain: (low, high) open interval of dom f* (``math.inf`` for unbounded).
        formula: the generator as text, for tables and error messages.

    >>> kl = get("kl")
    >>> float(kl.f(tf.constant(1.0)))
    0.0
    """

    name: str
    f: Callable
    f_prime: Callable
    conjugate: Callable
    activation: Callable
    domain: tuple = (-math.inf, math.inf)
    formula: str = ""


def _xlogx(u):
    return tf.math.xlogy(u, u)


F_DIVERGENCES: dict[str, FDivergence] = {
    "kl": FDivergence(
        name="kl",
        f=lambda u: _xlogx(u),
        f_prime=lambda u: tf.math.log(u) + 1.0,
        conjugate=lambda t: tf.exp(t - 1.0),
        activation=lambda v: v,
        formula="u log u",
    ),
    "reverse_kl": FDivergence(
        name="reverse_kl",
        f=lambda u: -tf.math.log(u),
        f_prime=lambda u: -1.0 / u,
        conjugate=lambda t: -1.0 - tf.math.log(-t),
        activation=lambda v: -tf.exp(-v),
        domain=(-math.inf, 0.0),
        formula="-log u",
    ),
    "pearson": FDivergence(
        name="pearson",
        f=lambda u: tf.square(u - 1.0),
        f_prime=lambda u: 2.0 * (u - 1.0),
        conjugate=lambda t: 0.25 * tf.square(t) + t,
        activation=lambda v: v,
        formula="(u - 1)^2",
    ),
    "squared_hellinger": FDivergence(
        name="squared_hellinger",
        f=lambda u: tf.square(tf.sqrt(u) - 1.0),
        f_prime=lambda u: 1.0 - tf.math.rsqrt(u),
        conjugate=lambda t: t / (1.0 - t),
        activation=lambda v: 1.0 - tf.exp(-v),
        domain=(-math.inf, 1.0),
        formula="(sqrt(u) - 1)^2",
    ),
    "jensen_shannon": FDivergence(
        name="jensen_shannon",
        f=lambda u: _xlogx(u) - (u + 1.0) * (tf.math.log1p(u) - _LOG2),
        f_prime=lambda u: tf.math.log(u) - tf.math.log1p(u) + _LOG2,
        conjugate=lambda t: -tf.math.log(2.0 - tf.exp(t)),
        activation=lambda v: _LOG2 - tf.math.softplus(-v),
        domain=(-math.inf, _LOG2),
        formula="u log u - (u + 1) log((u + 1)/2)",
    ),
    "gan": FDivergence(
        name="gan",
        f=lambda u: _xlogx(u) - (u + 1.0) * tf.math.log1p(u) + 2.0 * _LOG2,
        f_prime=lambda u: tf.math.log(u) - tf.math.log1p(u),
        conjugate=lambda t: -tf.math.log(-tf.math.expm1(t)) - 2.0 * _LOG2,
        activation=lambda v: -tf.math.softplus(-v),
        domain=(-math.inf, 0.0),
        formula="u log u - (u + 1) log(u + 1) + 2 log 2",
    ),
}


def get(name: str) -> FDivergence:
    """The f-divergence called ``name``; ``ValueError`` listing the choices if unknown.

    >>> get("pearson").name
    'pearson'
    """
    if name not in F_DIVERGENCES:
        raise ValueError(
            f"unknown f-divergence {name!r}; choose one of: {', '.join(F_DIVERGENCES)}"
        )
    return F_DIVERGENCES[name]


def _seed(seed) -> tf.Tensor:
    if seed is None:
        return tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32)
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int32)
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


def _closed_form_kl(p: tfd.Distribution, q: tfd.Distribution) -> tf.Tensor | None:
    try:
        return tf.cast(tfd.kl_divergence(p, q), tf.float32)
    except NotImplementedError:
        return None


def f_divergence(
    p: tfd.Distribution,
    q: tfd.Distribution,
    name: str,
    num_samples: int = 10_000,
    seed=None,
    closed_form: bool = True,
) -> tf.Tensor:
    """D_f(P || Q) = E_Q[f(p(x)/q(x))] between two TFP distributions.

    KL(P||Q) and reverse KL = KL(Q||P) use ``tfd.kl_divergence`` when TFP registers a
    closed form for the pair (and ``closed_form`` is True); otherwise the Monte-Carlo
    average (1/S) sum_s f(exp(log p(x_s) - log q(x_s))), x_s ~ Q, is returned.

    Args:
        p, q: distributions with the same event shape (and broadcastable batch shapes).
        name: a key of :data:`F_DIVERGENCES`.
        num_samples: S, Monte-Carlo draws from q.
        seed: int or int32[2] stateless seed (None: a random one).
        closed_form: use TFP's analytic KL where there is one.

    Returns:
        float32 tensor of the batch shape of p and q.

    >>> p, q = tfd.Normal(0.0, 1.0), tfd.Normal(1.0, 1.0)
    >>> round(float(f_divergence(p, q, "kl")), 4)
    0.5
    """
    divergence = get(name)
    if closed_form and name in ("kl", "reverse_kl"):
        exact = _closed_form_kl(p, q) if name == "kl" else _closed_form_kl(q, p)
        if exact is not None:
            return exact
    x = q.sample(int(num_samples), seed=_seed(seed))
    log_ratio = tf.cast(p.log_prob(x), tf.float32) - tf.cast(q.log_prob(x), tf.float32)
    return tf.reduce_mean(divergence.f(tf.exp(log_ratio)), axis=0)


def discrete_f_divergence(p_probs, q_probs, name: str) -> tf.Tensor:
    """Exact D_f(P || Q) = sum_x q(x) f(p(x)/q(x)) for probability vectors on a finite set.

    Sums over the last axis; assumes q(x) > 0 wherever p(x) > 0 (terms with q(x) = 0 are
    dropped, which is the value when p(x) = 0 there too).

    >>> float(discrete_f_divergence([0.5, 0.5], [0.5, 0.5], "pearson"))
    0.0
    """
    p = tf.convert_to_tensor(p_probs, tf.float32)
    q = tf.convert_to_tensor(q_probs, tf.float32)
    safe_q = tf.where(q > 0, q, 1.0)
    terms = q * get(name).f(tf.where(q > 0, p / safe_q, 1.0))
    return tf.reduce_sum(tf.where(q > 0, terms, 0.0), axis=-1)


# ---------------------------------------------------------------- marginal likelihood
def monte_carlo_marginal(
    prior: tfd.Distribution,
    likelihood_fn: Callable,
    x,
    num_samples: int = 1000,
    seed=None,
    chunk: int = 1000,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Naive Monte-Carlo log p(x) ~= log (1/S) sum_s p(x | z_s), z_s ~ p(z) independently per x.

    Unbiased for p(x) but the variance is huge when the posterior p(z|x) is narrow compared
    with the prior: almost every z_s explains x badly.

    Args:
        prior: p(z), a TFP distribution with batch shape ``[]``.
        likelihood_fn: z ``[S, batch, *latent]`` -> distribution p(x|z) with batch shape
            ``[S, batch]`` (e.g. ``vae.decode``).
        x: observations ``[batch, *event]``.
        num_samples: S.
        seed: int or int32[2].
        chunk: draws evaluated at once (bounds memory).

    Returns:
        (estimate of log p(x), standard error of that estimate), float32 ``[batch]`` each.

    References:
        Murphy, Probabilistic Machine Learning: Advanced Topics, 2023, Sec. 11.5.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]

    def draw(k, seed):
        z = prior.sample([k, batch], seed=seed)  # (k, batch, *latent)
        return tf.cast(likelihood_fn(z).log_prob(x), tf.float32)  # (k, batch)

    return chunked_log_mean_exp(draw, num_samples, _seed(seed), chunk, std_error=True)


def importance_sampling_marginal(
    prior: tfd.Distribution,
    likelihood_fn: Callable,
    proposal: tfd.Distribution | Callable,
    x,
    num_samples: int = 1000,
    seed=None,
    chunk: int = 1000,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Importance-sampled log p(x) ~= log (1/S) sum_s p(x|z_s) p(z_s) / q(z_s|x), z_s ~ q(z|x).

    Unbiased for p(x) (its log is biased low by about var/2, Jensen); the variance is small
    when q(z|x) is close to the posterior p(z|x) and zero when they are equal. With a VAE:
    ``importance_sampling_marginal(vae.prior(), vae.decode, vae.encode(x), x)``.

    Args:
        prior: p(z), batch shape ``[]``.
        likelihood_fn: z ``[S, batch, *latent]`` -> p(x|z) with batch shape ``[S, batch]``.
        proposal: q(z|x) with batch shape ``[batch]`` (or ``[]``: one proposal for all x),
            or a callable x -> that distribution.
        x: observations ``[batch, *event]``.
        num_samples: S.
        seed: int or int32[2].
        chunk: draws evaluated at once.

    Returns:
        (estimate of log p(x), standard error of that estimate), float32 ``[batch]`` each.

    References:
        Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    q = proposal if isinstance(proposal, tfd.Distribution) else proposal(x)

    shared = q.batch_shape.rank == 0  # one proposal for every x: draw per example anyway

    def draw(k, seed):
        z = q.sample([k, tf.shape(x)[0]] if shared else k, seed=seed)  # (k, batch, *latent)
        log_lik = tf.cast(likelihood_fn(z).log_prob(x), tf.float32)
        return log_lik + tf.cast(prior.log_prob(z) - q.log_prob(z), tf.float32)

    return chunked_log_mean_exp(draw, num_samples, _seed(seed), chunk, std_error=True)
