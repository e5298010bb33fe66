"""Finite mixtures fitted by expectation-maximization: Gaussian and Bernoulli mixtures.

A mixture of K components with weights pi (sum_k pi_k = 1) has the exact density

    p(x) = sum_k pi_k p(x | theta_k),    log p(x) = logsumexp_k [log pi_k + log p(x | theta_k)],

built as a ``tfd.MixtureSameFamily``. EM (Dempster, Laird & Rubin, 1977) alternates

    E-step:  r_nk = pi_k p(x_n | theta_k) / sum_j pi_j p(x_n | theta_j)   (responsibilities)
    M-step:  theta <- argmax_theta sum_n sum_k r_nk log pi_k p(x_n | theta_k),

and no step decreases the log-likelihood sum_n log p(x_n). The M-step is closed form in
the sufficient statistics, sums over the data that one epoch accumulates batch by batch
(``batch_statistics``; across replicas too) before ``apply_statistics`` applies them:

    N_k = sum_n r_nk,   S_k = sum_n r_nk (x_n - m_k),   Q_k = sum_n r_nk (x_n - m_k)(x_n - m_k)^T

with m_k the component's mean *during* the epoch (shifted statistics: no cancellation
between two large sums in float32). Then, with d_k = S_k / N_k,

    pi_k = N_k / N,    mu_k = m_k + d_k,
    Gaussian, full:        Sigma_k = Q_k / N_k - d_k d_k^T + reg I
              diag:        sigma_kj^2 = [Q_k]_jj / N_k - d_kj^2 + reg
              spherical:   sigma_k^2 = mean_j of the diag variances
    Bernoulli:             mu_kj = (sum_n r_nk x_nj + alpha) / (N_k + 2 alpha)

(scikit-learn's updates, its ``reg_covar`` included, and ``N_k`` gets 10 machine epsilons
so an empty component divides by no zero). The Bernoulli update is the MAP estimate under a
Beta(alpha + 1, alpha + 1) prior on every mu_kj; with alpha = 0 it is maximum likelihood
and EM increases the log-likelihood, with alpha > 0 the log posterior.

One epoch of ``fit`` is one EM iteration on all the data passed: the metric ``loss`` is the
mean negative log-likelihood under the parameters *before* the epoch's M-step, so it never
increases from one epoch to the next. Before the first step ``fit`` hands up to 512
examples to ``initialize``: k-means++ seeding (Arthur & Vassilvitskii, 2007), every
example assigned to its nearest seed, and one M-step on those hard responsibilities
(``init="kmeans"`` runs Lloyd's iterations on the seeds first). ``set_parameters`` (in
scikit-learn's array layouts) replaces that initialization.

References:
    Dempster, Laird & Rubin, Maximum likelihood from incomplete data via the EM
    algorithm, JRSS B 1977.
    Bishop, Pattern Recognition and Machine Learning, 2006, Ch. 9.
    Arthur & Vassilvitskii, k-means++: the advantages of careful seeding, SODA 2007.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.inputs import weighted_means

tfd = tfp.distributions

INITS = ("kmeans++", "kmeans", "random")
COVARIANCES = ("full", "diag", "spherical")
#: scikit-learn's guard on N_k (10 float64 epsilons; float32 cannot hold fewer)
_EPS_COUNT = 10 * float(np.finfo(np.float32).eps)
_LOG_2PI = float(np.log(2 * np.pi))


def kmeans_plusplus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of k seeds drawn by k-means++: the first uniformly, each next one with
    probability proportional to D(x)^2, the squared distance to the nearest seed so far.

    >>> kmeans_plusplus(np.array([[0.0], [0.1], [10.0]]), 2, np.random.default_rng(0)).size
    2
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    seeds = [int(rng.integers(len(x)))]
    d2 = ((x - x[seeds[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        p = d2 / total if total > 0 else np.full(len(x), 1.0 / len(x))
        seeds.append(int(rng.choice(len(x), p=p)))
        d2 = np.minimum(d2, ((x - x[seeds[-1]]) ** 2).sum(1))
    return np.array(seeds)


def hard_responsibilities(
    x: np.ndarray, k: int, rng: np.random.Generator, init: str = "kmeans++", iterations: int = 20
) -> np.ndarray:
    """One-hot responsibilities ``[n, k]`` of an initialization: each example to its nearest
    k-means++ seed (``"kmeans++"``), to its k-means cluster after Lloyd's iterations from
    those seeds (``"kmeans"``), or random soft responsibilities (``"random"``, as
    scikit-learn). Every seed keeps itself, so no component starts empty."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if init == "random":
        r = rng.uniform(size=(len(x), k))
        return r / r.sum(1, keepdims=True)
    seeds = kmeans_plusplus(x, k, rng)
    centers = x[seeds]
    for _ in range(iterations if init == "kmeans" else 0):
        assign = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (assign == j).any():
                centers[j] = x[assign == j].mean(0)
    assign = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    if init == "kmeans++":
        assign[seeds] = np.arange(k)
    return np.eye(k)[assign]


def mahalanobis_tril(x, loc, scale_tril) -> tf.Tensor:
    """||L_k^-1 (x_n - mu_k)||^2 for every example n and component k, float32 ``[batch, K]``.

    One triangular solve per component, ``[K, D, D]`` against ``[K, D, batch]``: evaluating
    ``tfd.MultivariateNormalTriL(loc, scale_tril).log_prob(x[:, None])`` instead broadcasts
    the factors to ``[batch, K, D, D]`` (12 times slower on 1,497 digits, K = 10, D = 64).
    """
    diff = tf.transpose(x[None] - loc[:, None], [0, 2, 1])  # (K, D, batch)
    solved = tf.linalg.triangular_solve(scale_tril, diff)
    return tf.transpose(tf.reduce_sum(tf.square(solved), 1))


def log_det_tril(scale_tril) -> tf.Tensor:
    """log |L_k| = sum_i log L_k,ii, ``[K]``."""
    return tf.reduce_sum(tf.math.log(tf.linalg.diag_part(scale_tril)), -1)


def shifted_moments(x, r, shift, full: bool) -> dict[str, tf.Tensor]:
    """S_k = sum_n r_nk (x_n - m_k) ``[K, D]`` and Q_k = sum_n r_nk (x_n - m_k)(x_n - m_k)^T
    ``[K, D, D]`` (its diagonal ``[K, D]`` unless ``full``), about ``shift`` = m ``[K, D]``."""
    diff = x[None] - shift[:, None]  # (K, batch, D)
    weighted = tf.transpose(r)[..., None] * diff
    if full:
        second = tf.matmul(weighted, diff, transpose_a=True)
    else:
        second = tf.reduce_sum(weighted * diff, 1)
    return {"first": tf.reduce_sum(weighted, 1), "second": second}


class FiniteMixture(GenerativeModel):
    """Base of the mixtures fitted from summed statistics: E-step, initialization, sampling.

    A subclass creates its component variables (``means`` among them) in
    ``_build_components``, and implements ``components()`` (a distribution of batch shape
    [K] over flat events of size D; ``component_log_prob`` may compute its log-densities
    faster), ``_moment_statistics(x, r)`` and ``_m_step(stats, counts)``; a variational
    mixture overrides ``log_joint`` (the E-step's log weights), ``mixing`` and
    ``apply_statistics`` too.
    """

    density = "exact"

    def __init__(self, event_shape, num_components, init, support, seed, **kwargs):
        if int(num_components) < 1:
            raise ValueError(f"num_components must be >= 1, got {num_components}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        super().__init__(tuple(event_shape), support=support, seed=seed, **kwargs)
        self.num_components = int(num_components)
        self.init = init

    @classmethod
    def for_dataset(cls, dataset, **hparams):
        """The model for ``dataset``'s event shape."""
        return cls(event_shape=dataset.event_shape, **hparams)

    def _weight(self, name, shape, value):
        return self.add_weight(
            shape=shape,
            initializer=keras.initializers.Constant(value),
            dtype="float32",
            trainable=False,
            aggregation="only_first_replica",
            name=name,
        )

    def _build(self):
        k = self.num_components
        self.mixture_logits = self._weight("mixture_logits", (k,), -np.log(k))
        # 1 once initialize or set_parameters has run (saved with the model: a loaded model
        # resumes training instead of starting over)
        self.initialized = self._weight("initialized", (), 0.0)
        self._build_components()

    def _build_components(self):
        raise NotImplementedError

    # ----------------------------------------------------------------- distributions
    def _flat(self, x) -> tf.Tensor:
        return tf.reshape(tf.cast(x, tf.float32), [-1, self.event_size])  # (batch, D)

    def mixing(self) -> tfd.Categorical:
        """The mixing distribution Categorical(pi) over the K components."""
        return tfd.Categorical(logits=tf.convert_to_tensor(self.mixture_logits))

    def components(self) -> tfd.Distribution:
        """The K components p(x | theta_k): batch shape [K], event shape [D]."""
        raise NotImplementedError

    def distribution(self) -> tfd.MixtureSameFamily:
        """p(x) = sum_k pi_k p(x | theta_k) over flat events of size D."""
        return tfd.MixtureSameFamily(self.mixing(), self.components())

    def component_log_prob(self, x) -> tf.Tensor:
        """log p(x_n | theta_k) of flat events, float32 ``[batch, K]``."""
        return self.components().log_prob(x[:, None, :])

    def log_joint(self, x) -> tf.Tensor:
        """log pi_k + log p(x | theta_k), float32 ``[batch, K]``."""
        x = self._flat(x)
        return tf.nn.log_softmax(self.mixture_logits) + self.component_log_prob(x)

    def responsibilities(self, x) -> tf.Tensor:
        """r_k(x) = p(k | x) = softmax_k(log pi_k + log p(x | theta_k)), float32 ``[batch, K]``."""
        return tf.nn.softmax(self.log_joint(self._prepare(x)), axis=-1)

    def predict(self, x, **kwargs) -> np.ndarray:
        """The most responsible component of each example, int ``[batch]``."""
        return np.asarray(tf.argmax(self.responsibilities(x), axis=-1))

    def log_prob(self, x, **kwargs):
        """log p(x) = logsumexp_k [log pi_k + log p(x | theta_k)], float32 ``[batch]``
        (``distribution().log_prob``, from the components' log-densities)."""
        return self._log_density(self._flat(self._prepare(x)))

    def _log_density(self, x) -> tf.Tensor:
        log_weights = tf.nn.log_softmax(self.mixing().logits_parameter())
        return tf.reduce_logsumexp(log_weights + self.component_log_prob(x), axis=-1)

    def sample(self, num_samples: int, seed=None):
        """k ~ Categorical(pi), x ~ p(x | theta_k): float32 ``[n, *event_shape]``."""
        x = self.distribution().sample(num_samples, seed=self._seed(seed))
        return tf.reshape(tf.cast(x, tf.float32), [-1, *self.event_shape])

    # ----------------------------------------------------------------- EM
    def example_objective(self, x, training=False):
        return {"loss": -self._log_density(self._flat(x))}  # -log p(x), [batch]

    def _moment_statistics(self, x, r) -> dict[str, tf.Tensor]:
        raise NotImplementedError

    def _m_step(self, stats, counts) -> None:
        raise NotImplementedError

    def _statistics(self, x, r) -> dict[str, tf.Tensor]:
        return {"counts": tf.reduce_sum(r, 0), **self._moment_statistics(x, r)}

    def batch_statistics(self, x, labels=None, weights=None):
        """E-step on a batch: the sums N_k, S_k (and Q_k) under the current parameters,
        and the metric ``loss`` = mean -log p(x) on the way; given ``weights`` (float32
        ``[batch]``), weighted sums and mean (an example of weight 2 counts twice)."""
        x = self._flat(x)
        log_joint = self.log_joint(x)
        log_px = tf.reduce_logsumexp(log_joint, axis=-1)
        r = tf.exp(log_joint - log_px[:, None])
        if weights is not None:
            r *= weights[:, None]
        return self._statistics(x, r), weighted_means({"loss": -log_px}, weights)

    def apply_statistics(self, stats):
        """M-step: pi_k = N_k / N, then the components' updates (module docstring)."""
        counts = stats["counts"] + _EPS_COUNT
        self.mixture_logits.assign(tf.math.log(counts / tf.reduce_sum(counts)))
        self._m_step(stats, counts)
        self.initialized.assign(1.0)

    def initialize(self, x, responsibilities=None) -> None:
        """One M-step on responsibilities of ``x``: the given ``[n, K]`` ones, else the
        initialization's (see ``init``) unless the model is already initialized (by
        ``set_parameters``, an earlier ``fit`` or a loaded file)."""
        if responsibilities is None and float(self.initialized.numpy()) > 0:
            return
        x = self.validate(x).reshape(len(x), -1)
        if responsibilities is None:
            rng = np.random.default_rng(self.seed)
            r = hard_responsibilities(x, self.num_components, rng, self.init)
        else:
            r = np.asarray(responsibilities, np.float32)
            if r.shape != (len(x), self.num_components):
                raise ValueError(
                    f"responsibilities must have shape {(len(x), self.num_components)}, "
                    f"got {r.shape}"
                )
        with self.distribute_strategy.scope():
            stats = self._statistics(tf.constant(x), tf.constant(r, tf.float32))
            self.apply_statistics(stats)

    def _set(self, variable, value, name, shape):
        value = np.asarray(value, np.float32)
        if value.shape != tuple(shape):
            raise ValueError(
                f"{type(self).__name__}.set_parameters: {name} must have shape {tuple(shape)}, "
                f"got {value.shape}"
            )
        variable.assign(value)

    def _set_weights_and_means(self, weights, means):
        k, d = self.num_components, self.event_size
        if weights is not None:
            weights = np.asarray(weights, np.float64)
            if (weights < 0).any() or abs(weights.sum() - 1) > 1e-5:
                raise ValueError(f"weights must be non-negative and sum to 1, got {weights}")
            self._set(self.mixture_logits, np.log(weights), "weights", (k,))
        if means is not None:
            self._set(self.means, means, "means", (k, d))
        self.initialized.assign(1.0)

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "num_components": self.num_components,
            "init": self.init,
        }

    def figures(self, dataset) -> dict:
        """The base's pictures and, for images, ``"means"``: the component means by weight."""
        figures = super().figures(dataset)
        if dataset.image_shape is not None:
            from tfdgm import plotting

            order = np.argsort(-np.asarray(self.mixing().logits_parameter()))[:64]
            figures["means"] = plotting.image_grid(
                np.asarray(self.means)[order], dataset.image_shape, title="component means"
            )
        return figures

    def export_endpoints(self):
        """sample, log_prob and responsibilities."""
        endpoints = super().export_endpoints()
        spec = [self.input_signature()]
        endpoints["responsibilities"] = (lambda x: self.responsibilities(x), spec)
        return endpoints


@registry.register(
    "gmm",
    family="mixture",
    datasets=("digits-continuous", "8gaussians", "moons", "mnist-continuous"),
    training=dict(epochs=100, batch_size=512),
    hparams=dict(num_components=10, covariance="full", reg_covar=1e-3),
    tiny=dict(num_components=2, reg_covar=1e-3),
    variants={
        "diag": dict(covariance="diag"),
        "spherical": dict(covariance="spherical"),
    },
    description="Gaussian mixture by EM (full, diagonal or spherical covariances)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianMixture(FiniteMixture):
    """Mixture of Gaussians p(x) = sum_k pi_k N(x; mu_k, Sigma_k), trained by EM (which
    takes sample weights: weighted sufficient statistics).

    Args:
        event_shape: shape of one event (D = its size; the components see flat events).
        num_components: K.
        covariance: ``"full"`` (Sigma_k any covariance, ``tfd.MultivariateNormalTriL``),
            ``"diag"`` (diagonal, ``Independent(Normal)``) or ``"spherical"``
            (sigma_k^2 I).
        reg_covar: added to the diagonal of every covariance in each M-step (keeps them
            positive definite; scikit-learn's ``reg_covar``).
        init: ``"kmeans++"``, ``"kmeans"`` or ``"random"`` (module docstring).
        seed: seed of the initialization and of ``sample``.

    >>> model = GaussianMixture((2,), num_components=3, covariance="diag")
    >>> model.set_parameters(means=np.zeros((3, 2)), covariances=np.ones((3, 2)))
    >>> round(float(model.log_prob(np.zeros((1, 2)))[0]), 4)  # -log(2 pi)
    -1.8379
    """

    weighted_statistics = True

    def __init__(
        self,
        event_shape: Sequence[int],
        num_components: int = 10,
        covariance: str = "full",
        reg_covar: float = 1e-6,
        init: str = "kmeans++",
        seed: int | None = None,
        **kwargs,
    ):
        if covariance not in COVARIANCES:
            raise ValueError(f"covariance must be one of {COVARIANCES}, got {covariance!r}")
        if float(reg_covar) < 0:
            raise ValueError(f"reg_covar must be >= 0, got {reg_covar}")
        super().__init__(event_shape, num_components, init, "real", seed, **kwargs)
        self.covariance = covariance
        self.reg_covar = float(reg_covar)
        self.build()

    def _covariance_shape(self) -> tuple:
        k, d = self.num_components, self.event_size
        return {"full": (k, d, d), "diag": (k, d), "spherical": (k,)}[self.covariance]

    def _build_components(self):
        k, d = self.num_components, self.event_size
        self.means = self._weight("means", (k, d), 0.0)
        ones = np.ones(self._covariance_shape(), np.float32)
        self.covariances = self._weight(
            "covariances",
            ones.shape,
            np.broadcast_to(np.eye(d), ones.shape) if ones.ndim == 3 else ones,
        )

    @property
    def num_parameters(self) -> int:
        """Free parameters: (K - 1) + K D + K D (D + 1) / 2 (full), K D (diag) or K (spherical)."""
        k, d = self.num_components, self.event_size
        cov = {"full": k * d * (d + 1) // 2, "diag": k * d, "spherical": k}[self.covariance]
        return k - 1 + k * d + cov

    def components(self):
        """N(mu_k, Sigma_k), batch [K], event [D]: ``MultivariateNormalTriL`` with the Cholesky
        factor of Sigma_k (full), else ``Independent(Normal)``."""
        means = tf.convert_to_tensor(self.means)
        cov = tf.convert_to_tensor(self.covariances)
        if self.covariance == "full":
            return tfd.MultivariateNormalTriL(loc=means, scale_tril=tf.linalg.cholesky(cov))
        scale = tf.sqrt(cov) if self.covariance == "diag" else tf.sqrt(cov)[:, None]
        scale = tf.broadcast_to(scale, tf.shape(means))
        return tfd.Independent(tfd.Normal(means, scale), reinterpreted_batch_ndims=1)

    def component_log_prob(self, x):
        """log N(x_n; mu_k, Sigma_k), ``[batch, K]``; full: -D/2 log 2 pi - log|L_k| -
        ||L_k^-1 (x_n - mu_k)||^2 / 2 by :func:`mahalanobis_tril`."""
        if self.covariance != "full":
            return super().component_log_prob(x)
        chol = tf.linalg.cholesky(tf.convert_to_tensor(self.covariances))
        quadratic = mahalanobis_tril(x, tf.convert_to_tensor(self.means), chol)
        return -0.5 * (self.event_size * _LOG_2PI + quadratic) - log_det_tril(chol)

    def _moment_statistics(self, x, r):
        return shifted_moments(x, r, tf.convert_to_tensor(self.means), self.covariance == "full")

    def _m_step(self, stats, counts):
        shift = stats["first"] / counts[:, None]  # d_k
        self.means.assign(self.means + shift)
        if self.covariance == "full":
            cov = stats["second"] / counts[:, None, None] - shift[:, :, None] * shift[:, None, :]
            cov = 0.5 * (cov + tf.linalg.matrix_transpose(cov))
            cov += self.reg_covar * tf.eye(self.event_size)
        else:
            cov = stats["second"] / counts[:, None] - tf.square(shift) + self.reg_covar
            if self.covariance == "spherical":
                cov = tf.reduce_mean(cov, -1)
        self.covariances.assign(cov)

    def set_parameters(self, weights=None, means=None, covariances=None) -> None:
        """Set pi ``[K]``, mu ``[K, D]`` and the covariances in scikit-learn's layout for
        ``covariance``: ``[K, D, D]`` (full), ``[K, D]`` (diag), ``[K]`` (spherical); the
        model then counts as initialized (``fit`` starts EM from these)."""
        if covariances is not None:
            self._set(self.covariances, covariances, "covariances", self._covariance_shape())
        self._set_weights_and_means(weights, means)

    def get_parameters(self) -> dict[str, np.ndarray]:
        """``{"weights", "means", "covariances"}`` as NumPy arrays, scikit-learn's layouts."""
        return {
            "weights": np.asarray(tf.nn.softmax(self.mixture_logits)),
            "means": np.asarray(self.means),
            "covariances": np.asarray(self.covariances),
        }

    def get_config(self):
        return {**super().get_config(), "covariance": self.covariance, "reg_covar": self.reg_covar}


@registry.register(
    "bernoulli-mixture",
    family="mixture",
    datasets=("digits", "mnist", "fashion-mnist"),
    training=dict(epochs=100, batch_size=512),
    hparams=dict(num_components=100, smoothing=0.1),
    tiny=dict(num_components=3),
    description="mixture of products of Bernoullis by EM",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class BernoulliMixture(FiniteMixture):
    """Mixture of factorized Bernoullis p(x) = sum_k pi_k prod_j mu_kj^x_j (1 - mu_kj)^(1 - x_j),
    trained by EM (which takes sample weights: weighted sufficient statistics).

    Args:
        event_shape: shape of one binary event (D = its size).
        num_components: K.
        smoothing: alpha >= 0, pseudo-count of each outcome in the M-step (module
            docstring): mu_kj stays inside (0, 1), so an unseen pixel value in the test set
            costs a finite number of nats. 0 is maximum likelihood.
        init: ``"kmeans++"``, ``"kmeans"`` or ``"random"``.
        seed: seed of the initialization and of ``sample``.

    >>> model = BernoulliMixture((3,), num_components=2)
    >>> round(float(model.log_prob(np.zeros((1, 3)))[0]), 4)  # three fair coins
    -2.0794
    """

    weighted_statistics = True

    def __init__(
        self,
        event_shape: Sequence[int],
        num_components: int = 10,
        smoothing: float = 1.0,
        init: str = "kmeans++",
        seed: int | None = None,
        **kwargs,
    ):
        if float(smoothing) < 0:
            raise ValueError(f"smoothing must be >= 0, got {smoothing}")
        super().__init__(event_shape, num_components, init, "binary", seed, **kwargs)
        self.smoothing = float(smoothing)
        self.build()

    def _build_components(self):
        self.means = self._weight("means", (self.num_components, self.event_size), 0.5)

    @property
    def num_parameters(self) -> int:
        """Free parameters: (K - 1) + K D."""
        return self.num_components - 1 + self.num_components * self.event_size

    def components(self):
        """prod_j Bernoulli(mu_kj): ``Independent(Bernoulli)``, batch [K], event [D]."""
        probs = tf.convert_to_tensor(self.means)
        return tfd.Independent(tfd.Bernoulli(probs=probs, dtype=tf.float32), 1)

    def _moment_statistics(self, x, r):
        return {"first": tf.matmul(r, x, transpose_a=True)}  # sum_n r_nk x_n, (K, D)

    def _m_step(self, stats, counts):
        alpha = self.smoothing
        self.means.assign((stats["first"] + alpha) / (counts[:, None] + 2 * alpha))

    def set_parameters(self, weights=None, means=None) -> None:
        """Set pi ``[K]`` and the probabilities mu ``[K, D]``; the model then counts as
        initialized."""
        if means is not None and not ((np.asarray(means) >= 0) & (np.asarray(means) <= 1)).all():
            raise ValueError("means of a Bernoulli mixture are probabilities in [0, 1]")
        self._set_weights_and_means(weights, means)

    def get_parameters(self) -> dict[str, np.ndarray]:
        """``{"weights", "means"}`` as NumPy arrays."""
        return {
            "weights": np.asarray(tf.nn.softmax(self.mixture_logits)),
            "means": np.asarray(self.means),
        }

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}
