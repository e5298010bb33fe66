"""The Bayesian Gaussian mixture by mean-field variational inference: CAVI and SVI.

Model (Bishop, 2006, Sec. 10.2): pi ~ Dirichlet(alpha_0), and for every component k

    Lambda_k ~ Wishart(W_0, nu_0),   mu_k | Lambda_k ~ N(m_0, (beta_0 Lambda_k)^-1),
    z_n | pi ~ Categorical(pi),      x_n | z_n = k ~ N(mu_k, Lambda_k^-1)

(``covariance="diag"``: D independent precisions lambda_kd ~ Gamma(nu_0 / 2, W0inv_d / 2),
mu_kd | lambda_kd ~ N(m0_d, 1 / (beta_0 lambda_kd))). The mean-field posterior
q(pi) prod_k q(mu_k, Lambda_k) prod_n q(z_n), each factor set to q*_j ∝ exp E_-j[log p]:

    q(z_n = k) = r_nk ∝ exp rho_nk,
        rho_nk = E[log pi_k] + E[log N(x_n | mu_k, Lambda_k)]
               = psi(alpha_k) - psi(sum_j alpha_j) + 1/2 E[log |Lambda_k|] - D/2 log 2 pi
                 - D / (2 beta_k) - nu_k / 2 (x_n - m_k)^T W_k (x_n - m_k),
        E[log |Lambda_k|] = sum_{i<D} psi((nu_k - i) / 2) + D log 2 + log |W_k|;
    q(pi) = Dirichlet(alpha_0 + N_k), q(mu_k, Lambda_k) = N(m_k, (beta_k Lambda_k)^-1) W(W_k, nu_k):
        beta_k = beta_0 + N_k,   m_k = (beta_0 m_0 + N_k xbar_k) / beta_k,   nu_k = nu_0 + N_k,
        W_k^-1 = W_0^-1 + N_k S_k + beta_0 N_k / beta_k (xbar_k - m_0)(xbar_k - m_0)^T,

with N_k = sum_n r_nk, xbar_k and S_k the responsibility-weighted mean and covariance (plus
``reg_covar`` I, as scikit-learn), from the same shifted sums as :mod:`tfdgm.models.mixtures`.
The evidence lower bound, with q(z) at its optimum for the current global factors, is

    ELBO = sum_n logsumexp_k rho_nk - KL(q(pi) || p(pi)) - sum_k KL(q(mu_k, Lambda_k) || p(..)),
    KL(q(mu_k, Lambda_k) || p) = KL(W(W_k, nu_k) || W(W_0, nu_0))
        + 1/2 [D beta_0 / beta_k - D + D log(beta_k / beta_0)
               + beta_0 nu_k (m_k - m_0)^T W_k (m_k - m_0)].

``inference="cavi"``: one epoch is one sweep; each batch adds its sums (and its share of
sum_n logsumexp rho_nk) and the epoch's end sets the global factors: the metric ``elbo`` of
an epoch is the exact ELBO / N before that update, and never decreases. ``"svi"``
(Hoffman et al., 2013): after every batch B the global factors' natural parameters
eta = (alpha, beta, beta m, W^-1 + beta m m^T, nu) move to (1 - rho_t) eta + rho_t eta_hat,
eta_hat the CAVI update as if the data were N / |B| copies of the batch, a natural-gradient
step of size rho_t = (t + delay)^-forgetting_rate (Robbins-Monro: sum rho = inf, sum rho^2 <
inf for forgetting_rate in (0.5, 1]).

``log_prob`` is the posterior predictive density, a mixture of Student-t's (Bishop 10.81):
p(x | X) = sum_k alpha_k / sum_j alpha_j St(x | m_k, (1 + beta_k) W_k^-1 / (beta_k (nu_k + 1 - D)),
nu_k + 1 - D). The diagonal model's Gamma factors give E[log lambda_kd] = psi(nu_k / 2) -
log(W0inv_kd / 2) and Student-t's of nu_k degrees of freedom per dimension; scikit-learn's
"diag" applies the Wishart's E[log |Lambda|] to a diagonal W instead, so only "full"
follows it term for term.

References:
    Attias, A variational Bayesian framework for graphical models, NeurIPS 2000.
    Bishop, Pattern Recognition and Machine Learning, 2006, Sec. 10.2.
    Blei, Kucukelbir & McAuliffe, Variational inference: a review for statisticians, 2017.
    Hoffman, Blei, Wang & Paisley, Stochastic variational inference, JMLR 2013.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry, training
from tfdgm.base import PACKAGE
from tfdgm.models.mixtures import (
    _EPS_COUNT,
    FiniteMixture,
    log_det_tril,
    mahalanobis_tril,
    shifted_moments,
)

tfd = tfp.distributions

INFERENCES = ("cavi", "svi")
_LOG_2PI = math.log(2 * math.pi)


def _log_multigamma(a, d: int):
    """log Gamma_D(a) = D (D - 1) / 4 log pi + sum_{i<D} log Gamma(a - i / 2)."""
    i = tf.range(d, dtype=a.dtype)
    return d * (d - 1) / 4 * math.log(math.pi) + tf.reduce_sum(
        tf.math.lgamma(a[..., None] - i / 2), -1
    )


def _digamma_sum(nu, d: int):
    """sum_{i<D} psi((nu - i) / 2), the Wishart's E[log |Lambda|] less D log 2 + log |W|."""
    return tf.reduce_sum(tf.math.digamma((nu[..., None] - tf.range(d, dtype=tf.float32)) / 2), -1)


def _wishart_log_norm(nu, log_det_scale_inverse, d: int):
    """log B(W, nu) = nu/2 log |W^-1| - nu D / 2 log 2 - log Gamma_D(nu / 2), the log of the
    Wishart density's normalizer."""
    nu = tf.convert_to_tensor(nu, tf.float32)
    return nu / 2 * log_det_scale_inverse - nu * d / 2 * math.log(2.0) - _log_multigamma(nu / 2, d)


class _EpochELBO(keras.callbacks.Callback):
    """Puts the exact ELBO / N of the epoch's sweep into the epoch's logs as ``elbo``."""

    def on_epoch_end(self, epoch, logs=None):
        training.apply_pending_statistics(self.model)  # no-op if validation applied them
        if logs is not None and self.model.last_elbo is not None:
            logs["elbo"] = self.model.last_elbo


@registry.register(
    "bayesian-gmm",
    family="mixture",
    datasets=("digits-continuous", "8gaussians", "moons", "mnist-continuous"),
    training=dict(epochs=100, batch_size=512),
    hparams=dict(num_components=10, covariance="full", reg_covar=1e-3),
    tiny=dict(num_components=2, reg_covar=1e-3),
    variants={"diag": dict(covariance="diag"), "svi": dict(inference="svi")},
    description="Bayesian Gaussian mixture by mean-field VI (CAVI sweeps or SVI steps)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class BayesianGaussianMixture(FiniteMixture):
    """Gaussian mixture with a Dirichlet prior on the weights and a Normal-Wishart prior on
    the components, fitted by mean-field variational inference (module docstring).

    Args:
        event_shape: shape of one event (D = its size).
        num_components: K, an upper bound (unneeded components keep alpha_k near alpha_0).
        covariance: ``"full"`` (Normal-Wishart) or ``"diag"`` (Normal-Gamma per dimension).
        inference: ``"cavi"`` (one coordinate-ascent sweep per epoch) or ``"svi"``
            (a natural-gradient step per batch).
        weight_concentration_prior: alpha_0 (default 1 / K).
        mean_precision_prior: beta_0.
        mean_prior: m_0 ``[D]`` (default: the mean of the initialization examples).
        degrees_of_freedom_prior: nu_0 > D - 1 (default D).
        covariance_prior: W_0^-1, ``[D, D]`` (full) or ``[D]`` (diag) (default: the
            covariance, or variances, of the initialization examples).
        reg_covar: added to every S_k's diagonal (scikit-learn's ``reg_covar``).
        init: ``"kmeans++"``, ``"kmeans"`` or ``"random"`` (see :mod:`tfdgm.models.mixtures`).
        num_examples: N, the size of the training set (needed by ``"svi"``).
        forgetting_rate, delay: SVI's step size rho_t = (t + delay)^-forgetting_rate.
        seed: seed of the initialization and of ``sample``.
    """

    metric_names = ("loss", "elbo")

    def __init__(
        self,
        event_shape: Sequence[int],
        num_components: int = 10,
        covariance: str = "full",
        inference: str = "cavi",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float = 1.0,
        mean_prior: Sequence[float] | None = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior=None,
        reg_covar: float = 1e-6,
        init: str = "kmeans++",
        num_examples: int | None = None,
        forgetting_rate: float = 0.7,
        delay: float = 1.0,
        seed: int | None = None,
        **kwargs,
    ):
        if covariance not in ("full", "diag"):
            raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
        if inference not in INFERENCES:
            raise ValueError(f"inference must be one of {INFERENCES}, got {inference!r}")
        if inference == "svi" and not num_examples:
            raise ValueError("inference='svi' needs num_examples, the size N of the training set")
        if not 0.5 < float(forgetting_rate) <= 1.0 or float(delay) < 0:
            raise ValueError("SVI needs forgetting_rate in (0.5, 1] and delay >= 0")
        super().__init__(event_shape, num_components, init, "real", seed, **kwargs)
        d, k = self.event_size, self.num_components
        self.covariance, self.inference = covariance, inference
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = float(mean_precision_prior)
        self.mean_prior = None if mean_prior is None else [float(v) for v in np.ravel(mean_prior)]
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = (
            None if covariance_prior is None else np.asarray(covariance_prior, float).tolist()
        )
        self.reg_covar = float(reg_covar)
        self.num_examples = None if num_examples is None else int(num_examples)
        self.forgetting_rate, self.delay = float(forgetting_rate), float(delay)
        self.alpha0 = (
            1.0 / k if weight_concentration_prior is None else float(weight_concentration_prior)
        )
        self.nu0 = float(d) if degrees_of_freedom_prior is None else float(degrees_of_freedom_prior)
        if self.nu0 <= d - 1 or self.mean_precision_prior <= 0 or self.alpha0 <= 0:
            raise ValueError(f"priors need alpha_0 > 0, beta_0 > 0 and nu_0 > D - 1 = {d - 1}")
        self.last_elbo = None
        self.build()

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        """The model for ``dataset`` (N = its training set size, for SVI)."""
        hparams.setdefault("num_examples", len(dataset.x_train))
        return cls(event_shape=dataset.event_shape, **hparams)

    @property
    def uses_statistics(self) -> bool:
        """CAVI sums statistics over an epoch; SVI updates after every batch."""
        return self.inference == "cavi"

    def _matrix(self, value=None) -> np.ndarray:
        """W_0^-1 as ``[D, D]`` (full) or ``[D]`` (diag), from None (the identity), a scalar
        or a vector (a diagonal) or a matrix."""
        value = np.asarray(1.0 if value is None else value, np.float64)
        diagonal = np.diag(value) if value.ndim == 2 else np.broadcast_to(value, (self.event_size,))
        if self.covariance == "diag":
            return diagonal.copy()
        return value if value.ndim == 2 else np.diag(diagonal)

    def _build(self):
        k, d = self.num_components, self.event_size
        self.initialized = self._weight("initialized", (), 0.0)
        self.svi_step = self._weight("svi_step", (), 0.0)
        prior_scale = self._matrix(self.covariance_prior)
        self.prior_mean = self._weight("prior_mean", (d,), self.mean_prior or 0.0)
        self.prior_scale_inverse = self._weight(
            "prior_scale_inverse", prior_scale.shape, prior_scale
        )
        self.concentration = self._weight("concentration", (k,), self.alpha0 + 1.0)
        self.mean_precision = self._weight("mean_precision", (k,), self.mean_precision_prior + 1.0)
        self.means = self._weight("means", (k, d), 0.0)
        self.degrees_of_freedom = self._weight("degrees_of_freedom", (k,), self.nu0 + 1.0)
        scale = np.broadcast_to(prior_scale * (self.nu0 + 1.0), (k, *prior_scale.shape))
        self.scale_inverse = self._weight("scale_inverse", scale.shape, scale)  # W_k^-1

    # ----------------------------------------------------------------- factors
    def _cholesky(self) -> tf.Tensor:
        """Cholesky factor of W_k^-1, ``[K, D, D]`` (full only)."""
        return tf.linalg.cholesky(tf.convert_to_tensor(self.scale_inverse))

    def _factors(self) -> tuple[tf.Tensor, ...]:
        """alpha, beta, m, nu and W^-1 read as tensors."""
        names = ("concentration", "mean_precision", "means", "degrees_of_freedom", "scale_inverse")
        return tuple(tf.convert_to_tensor(getattr(self, name)) for name in names)

    def expected_log_weights(self) -> tf.Tensor:
        """E[log pi_k] = psi(alpha_k) - psi(sum_j alpha_j), ``[K]``."""
        alpha = tf.convert_to_tensor(self.concentration)
        return tf.math.digamma(alpha) - tf.math.digamma(tf.reduce_sum(alpha))

    def log_joint(self, x) -> tf.Tensor:
        """rho_nk = E[log pi_k] + E[log N(x_n | mu_k, Lambda_k)], ``[batch, K]``: the Gaussian
        at the mean precision nu_k W_k, plus 1/2 (E[log|Lambda_k|] - log|nu_k W_k|) - D / (2
        beta_k)."""
        x, d = self._flat(x), self.event_size
        _, beta, means, nu, scale_inverse = self._factors()
        if self.covariance == "full":
            # log N(x; m_k, (nu_k W_k)^-1), the factor of W_k^-1 / nu_k being L_k / sqrt(nu_k)
            chol = self._cholesky()
            quadratic = nu * mahalanobis_tril(x, means, chol)
            log_det = log_det_tril(chol) - 0.5 * d * tf.math.log(nu)
            gaussian = -0.5 * (d * _LOG_2PI + quadratic) - log_det
            correction = _digamma_sum(nu, d) - d * tf.math.log(nu / 2)
        else:
            scale = tf.sqrt(scale_inverse / nu[:, None])
            gaussian = tfd.Independent(tfd.Normal(means, scale), 1).log_prob(x[:, None, :])
            correction = d * (tf.math.digamma(nu / 2) - tf.math.log(nu / 2))
        expected = gaussian + 0.5 * correction - d / (2 * beta)
        return self.expected_log_weights() + expected

    def kl_global(self) -> tf.Tensor:
        """KL(q(pi) q(mu, Lambda) || p(pi) p(mu, Lambda)) in nats (module docstring)."""
        d, k, beta0, nu0 = self.event_size, self.num_components, self.mean_precision_prior, self.nu0
        alpha, beta, means, nu, scale_inverse = self._factors()
        kl = tfd.Dirichlet(alpha).kl_divergence(tfd.Dirichlet(tf.fill([k], self.alpha0)))
        delta = means - self.prior_mean  # (K, D)
        if self.covariance == "full":
            chol, prior_inverse = self._cholesky(), tf.convert_to_tensor(self.prior_scale_inverse)
            log_det_inv = 2 * log_det_tril(chol)  # log |W_k^-1|
            log_det_inv0 = 2 * log_det_tril(tf.linalg.cholesky(prior_inverse))
            e_log_det = _digamma_sum(nu, d) + d * math.log(2.0) - log_det_inv  # E[log|Lambda_k|]
            solved = tf.linalg.cholesky_solve(chol, tf.broadcast_to(prior_inverse, [k, d, d]))
            wishart = (
                _wishart_log_norm(nu, log_det_inv, d)
                - _wishart_log_norm(nu0, log_det_inv0, d)
                + (nu - nu0) / 2 * e_log_det
                + nu / 2 * (tf.linalg.trace(solved) - d)  # tr(W_0^-1 W_k)
            )
            whitened = tf.linalg.triangular_solve(chol, delta[..., None])[..., 0]
            quadratic = nu * tf.reduce_sum(tf.square(whitened), -1)  # nu (m - m0)^T W (m - m0)
            gaussian = 0.5 * (
                d * beta0 / beta - d + d * tf.math.log(beta / beta0) + beta0 * quadratic
            )
            return kl + tf.reduce_sum(wishart + gaussian)
        rate, rate0 = scale_inverse / 2, self.prior_scale_inverse / 2
        gamma = tfd.Gamma(nu[:, None] / 2 + 0 * rate, rate).kl_divergence(tfd.Gamma(nu0 / 2, rate0))
        quadratic = nu[:, None] / scale_inverse * tf.square(delta)
        gaussian = 0.5 * (
            beta0 / beta[:, None] - 1 + tf.math.log(beta / beta0)[:, None] + beta0 * quadratic
        )
        return kl + tf.reduce_sum(gamma + gaussian)

    def posterior(self) -> tfd.JointDistributionNamed:
        """q(pi) q(Lambda) q(mu | Lambda) as a ``tfd.JointDistributionNamed`` over ``weights``
        ``[K]``, ``precisions`` ``[K, D, D]`` (diag: ``[K, D]``) and ``means`` ``[K, D]``."""
        return self._normal_wishart(
            self.concentration,
            self.mean_precision,
            self.means,
            self.degrees_of_freedom,
            self.scale_inverse,
        )

    def prior(self) -> tfd.JointDistributionNamed:
        """p(pi) p(Lambda) p(mu | Lambda), laid out as :meth:`posterior`."""
        k = self.num_components
        scale = tf.broadcast_to(self.prior_scale_inverse, self.scale_inverse.shape)
        return self._normal_wishart(
            tf.fill([k], self.alpha0),
            tf.fill([k], self.mean_precision_prior),
            tf.broadcast_to(self.prior_mean, self.means.shape),
            tf.fill([k], self.nu0),
            scale,
        )

    def _normal_wishart(self, alpha, beta, means, nu, scale_inverse):
        alpha, beta, means, nu = (tf.convert_to_tensor(v) for v in (alpha, beta, means, nu))
        scale_inverse = tf.convert_to_tensor(scale_inverse)
        if self.covariance == "full":
            eye = tf.eye(self.event_size, batch_shape=[self.num_components])
            scale_tril = tf.linalg.cholesky(
                tf.linalg.cholesky_solve(tf.linalg.cholesky(scale_inverse), eye)
            )
            precisions = tfd.Independent(tfd.WishartTriL(df=nu, scale_tril=scale_tril), 1)

            def mean_given(precisions):
                covariance = tf.linalg.inv(beta[:, None, None] * precisions)
                return tfd.Independent(
                    tfd.MultivariateNormalTriL(means, tf.linalg.cholesky(covariance)), 1
                )

        else:
            precisions = tfd.Independent(
                tfd.Gamma(nu[:, None] / 2 + 0 * scale_inverse, scale_inverse / 2), 2
            )

            def mean_given(precisions):
                return tfd.Independent(
                    tfd.Normal(means, tf.math.rsqrt(beta[:, None] * precisions)), 2
                )

        return tfd.JointDistributionNamed(
            {"weights": tfd.Dirichlet(alpha), "precisions": precisions, "means": mean_given}
        )

    def mixing(self):
        """The predictive weights E[pi_k] = alpha_k / sum_j alpha_j."""
        return tfd.Categorical(logits=tf.math.log(tf.convert_to_tensor(self.concentration)))

    def components(self):
        """The posterior predictive of each component, a Student-t (module docstring)."""
        _, beta, means, nu, scale_inverse = self._factors()
        if self.covariance == "full":
            df = nu + 1.0 - self.event_size
            factor = tf.sqrt((1 + beta) / (beta * df))[:, None, None]
            scale = tf.linalg.LinearOperatorLowerTriangular(self._cholesky() * factor)
            return tfd.MultivariateStudentTLinearOperator(df, loc=means, scale=scale)
        scale = tf.sqrt(scale_inverse * ((1 + beta) / (beta * nu))[:, None])
        return tfd.Independent(tfd.StudentT(nu[:, None] + 0 * scale, means, scale), 1)

    def component_log_prob(self, x):
        """log St(x_n | k), ``[batch, K]``; full: log Gamma((df + D) / 2) - log Gamma(df / 2)
        - D/2 log(df pi) - log|L| - (df + D)/2 log(1 + ||L^-1 (x - m_k)||^2 / df)."""
        if self.covariance != "full":
            return super().component_log_prob(x)
        _, beta, means, nu, _ = self._factors()
        d = self.event_size
        df = nu + 1.0 - d
        log_factor = 0.5 * tf.math.log((1 + beta) / (beta * df))  # scale = L_k exp(log_factor)
        chol = self._cholesky()
        quadratic = mahalanobis_tril(x, means, chol)
        quadratic *= tf.exp(-2 * log_factor)
        return (
            tf.math.lgamma((df + d) / 2)
            - tf.math.lgamma(df / 2)
            - 0.5 * d * tf.math.log(df * math.pi)
            - log_det_tril(chol)
            - d * log_factor
            - 0.5 * (df + d) * tf.math.log1p(quadratic / df)
        )

    # ----------------------------------------------------------------- updates
    def _moment_statistics(self, x, r):
        return shifted_moments(x, r, tf.convert_to_tensor(self.means), self.covariance == "full")

    def _global_update(self, stats, scale=1.0) -> dict[str, tf.Tensor]:
        """The CAVI update of q(pi), q(mu, Lambda) from summed statistics (times ``scale``)."""
        counts = stats["counts"] * scale + _EPS_COUNT  # N_k
        shift = stats["first"] * scale / counts[:, None]  # xbar_k - m_k(current)
        xbar = self.means + shift
        beta0, m0 = self.mean_precision_prior, self.prior_mean
        beta = beta0 + counts
        delta = xbar - m0
        if self.covariance == "full":
            outer = lambda a: a[:, :, None] * a[:, None, :]  # noqa: E731
            scatter = stats["second"] * scale - counts[:, None, None] * outer(shift)
            scatter += (counts * self.reg_covar)[:, None, None] * tf.eye(self.event_size)
            spread = (beta0 * counts / beta)[:, None, None] * outer(delta)
            scale_inverse = self.prior_scale_inverse + scatter + spread
            scale_inverse = 0.5 * (scale_inverse + tf.linalg.matrix_transpose(scale_inverse))
        else:
            scatter = stats["second"] * scale - counts[:, None] * tf.square(shift)
            scatter += (counts * self.reg_covar)[:, None]
            scale_inverse = (
                self.prior_scale_inverse
                + scatter
                + (beta0 * counts / beta)[:, None] * tf.square(delta)
            )
        return {
            "concentration": self.alpha0 + counts,
            "mean_precision": beta,
            "means": (beta0 * m0 + counts[:, None] * xbar) / beta[:, None],
            "degrees_of_freedom": self.nu0 + counts,
            "scale_inverse": scale_inverse,
        }

    def _assign(self, values):
        for name, value in values.items():
            getattr(self, name).assign(value)

    def batch_statistics(self, x, labels=None):
        """E-step on a batch: the sums N_k, S_k, Q_k and sum_n logsumexp_k rho_nk under the
        current global factors, and the batch's metrics."""
        x = self._flat(x)
        rho = self.log_joint(x)
        lse = tf.reduce_logsumexp(rho, -1)
        stats = self._statistics(x, tf.exp(rho - lse[:, None]))
        stats["log_normalizer"] = tf.reduce_sum(lse)
        return stats, self._batch_metrics(x, lse)

    def objective(self, x, training=False):
        """``loss``: mean -log p(x | X) (the predictive); ``elbo``: the batch's share of the
        ELBO / N, mean logsumexp_k rho_nk - KL / N."""
        x = self._flat(x)
        return self._batch_metrics(x, tf.reduce_logsumexp(self.log_joint(x), -1))

    def _batch_metrics(self, x, lse):
        # N: the training set size when known, else what the current posterior has seen
        total = (
            self.num_examples
            or tf.reduce_sum(self.concentration) - self.num_components * self.alpha0
        )
        return {
            "loss": -tf.reduce_mean(self._log_density(x)),
            "elbo": tf.reduce_mean(lse) - self.kl_global() / tf.cast(total, tf.float32),
        }

    def apply_statistics(self, stats):
        """End of a CAVI sweep: record the exact ELBO / N of the sweep, then set q(pi) and
        q(mu, Lambda) from its sums."""
        if "log_normalizer" in stats:
            total = float(tf.reduce_sum(stats["counts"]))
            self.last_elbo = (float(stats["log_normalizer"]) - float(self.kl_global())) / total
        self._assign(self._global_update(stats))
        self.initialized.assign(1.0)

    def training_update(self, x, labels=None):
        """SVI: one natural-gradient step of the global factors on the batch ``x``."""
        x = self._flat(x)
        stats, metrics = self.batch_statistics(x)
        stats["batch_size"] = tf.cast(tf.shape(x)[0], tf.float32)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            stats = context.all_reduce("sum", stats)
        rate = tf.pow(self.svi_step + self.delay, -self.forgetting_rate)
        target = self._global_update(stats, scale=self.num_examples / stats["batch_size"])
        beta, target_beta = tf.convert_to_tensor(self.mean_precision), target["mean_precision"]
        new_beta = (1 - rate) * beta + rate * target_beta
        gap = self.means - target["means"]
        # the natural parameter W^-1 + beta m m^T mixes linearly; W^-1 gets the spread term
        weight = (1 - rate) * rate * beta * target_beta / new_beta
        spread = gap[:, :, None] * gap[:, None, :] if self.covariance == "full" else tf.square(gap)
        spread *= weight[:, None, None] if self.covariance == "full" else weight[:, None]
        blended = {
            name: (1 - rate) * tf.convert_to_tensor(getattr(self, name)) + rate * value
            for name, value in target.items()
        }
        blended["means"] = (
            (1 - rate) * beta[:, None] * self.means + rate * target_beta[:, None] * target["means"]
        ) / new_beta[:, None]
        blended["scale_inverse"] += spread
        self._assign(blended)
        self.svi_step.assign(self.svi_step + 1.0)
        return metrics

    def fit_callbacks(self, epochs, initial_epoch, verbose, callbacks):
        return [_EpochELBO()] if self.inference == "cavi" else []

    def initialize(self, x, responsibilities=None) -> None:
        """Data-dependent priors (m_0, W_0^-1 where not given) from ``x``, then one update
        on the initialization's responsibilities (see :class:`FiniteMixture`)."""
        if responsibilities is None and float(self.initialized.numpy()) > 0:
            return
        x = self.validate(x).reshape(len(x), -1).astype(np.float64)
        if self.mean_prior is None:
            self.prior_mean.assign(x.mean(0))
        if self.covariance_prior is None:
            cov = np.atleast_2d(np.cov(x.T)) if self.covariance == "full" else x.var(0, ddof=1)
            self.prior_scale_inverse.assign(cov)
        super().initialize(x, responsibilities)

    def elbo(self, x, batch_size: int = 1024) -> float:
        """The ELBO in nats on all of ``x``, q(z) at its optimum for the global factors."""
        x = self._flat(self._prepare(x))
        lse = sum(
            float(tf.reduce_sum(tf.reduce_logsumexp(self.log_joint(x[i : i + batch_size]), -1)))
            for i in range(0, int(x.shape[0]), batch_size)
        )
        return lse - float(self.kl_global())

    def get_parameters(self) -> dict[str, np.ndarray]:
        """The variational parameters with scikit-learn's names: ``weight_concentration``
        alpha, ``mean_precision`` beta, ``means`` m, ``degrees_of_freedom`` nu and
        ``covariances`` W_k^-1 / nu_k."""
        nu = np.asarray(self.degrees_of_freedom)
        scale = np.asarray(self.scale_inverse)
        return {
            "weight_concentration": np.asarray(self.concentration),
            "mean_precision": np.asarray(self.mean_precision),
            "means": np.asarray(self.means),
            "degrees_of_freedom": nu,
            "covariances": scale / nu.reshape(-1, *[1] * (scale.ndim - 1)),
        }

    def summary_metrics(self, dataset) -> dict:
        """The ELBO per training example and the components holding over 1% of the weight."""
        weights = np.asarray(tf.nn.softmax(self.mixing().logits_parameter()))
        return {
            "elbo_per_example": self.elbo(dataset.x_train) / len(dataset.x_train),
            "effective_components": int((weights > 0.01).sum()),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "covariance": self.covariance,
            "inference": self.inference,
            "weight_concentration_prior": self.weight_concentration_prior,
            "mean_precision_prior": self.mean_precision_prior,
            "mean_prior": self.mean_prior,
            "degrees_of_freedom_prior": self.degrees_of_freedom_prior,
            "covariance_prior": self.covariance_prior,
            "reg_covar": self.reg_covar,
            "num_examples": self.num_examples,
            "forgetting_rate": self.forgetting_rate,
            "delay": self.delay,
        }
