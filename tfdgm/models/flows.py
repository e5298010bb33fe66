"""Normalizing flows: RealNVP (affine couplings) and MAF / IAF (masked autoregressive).

A flow writes the data as x = f(z), z ~ p_Z = N(0, I_D), with f invertible and
differentiable. The change of variables gives an exact density,

    log p(x) = log p_Z(f^{-1}(x)) + log |det J_{f^{-1}}(x)|,

and the model is trained by maximum likelihood, loss = -(1/B) sum_b log p(x_b) (the forward
KL(p_data || p_X) up to the data's entropy). Given instead an unnormalized target density
p~ = Z p (``target_log_prob=``), it is trained by the reverse KL on its own samples,

    loss = E_{z ~ p_Z}[log p_X(f(z)) - log p~(f(z))] = KL(p_X || p) - log Z,

reparameterized through x = f(z) (Rezende & Mohamed, 2015): no data, mode-seeking where
maximum likelihood is mode-covering.
f is a chain of simple bijectors whose log-determinants are cheap (triangular Jacobians):

- affine coupling (RealNVP): x_{1:d} = z_{1:d}, x_{d+1:D} = z_{d+1:D} * exp(s(z_{1:d})) +
  t(z_{1:d}); log |det| = sum_i s_i;
- masked autoregressive (MAF): x_i = z_i exp(s_i(x_{<i})) + t_i(x_{<i}): density in one
  pass, sampling in D passes; its inverse (IAF) is the other way round.

Images in [0, 1) (dequantized levels (l + u)/K) are modelled through a logit pre-transform
y = logit(a + (1 - 2a) x), whose log-Jacobian TFP adds; ``bits_per_dim`` converts the
continuous density into the discrete data's bits per dimension,
(-log p(x) + D log K) / (D log 2).

References:
    Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, ICLR 2017.
    Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation,
    NeurIPS 2017.
    Kingma et al., Improved Variational Inference with Inverse Autoregressive Flow, NeurIPS 2016.
    Rezende & Mohamed, Variational Inference with Normalizing Flows, ICML 2015.
    Papamakarios et al., Normalizing Flows for Probabilistic Modeling and Inference, JMLR
    2021 (Sec. 2.3, forward and reverse KL).
    Theis, van den Oord & Bethge, A note on the evaluation of generative models, ICLR 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import data as _data
from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.bijectors import FlowLayer
from tfdgm.estimators import bits_per_dim  # noqa: F401  (re-exported: tfdgm.models.flows)

tfd = tfp.distributions
tfb = tfp.bijectors

PREPROCESS = (None, "logit")


_DATASETS = ("moons", "8gaussians", "checkerboard", "spirals", "digits-continuous")
# XLA: 1.2-2x the steps/s of plain fit (benchmarks/bench_flows.py)
_TRAINING = dict(epochs=200, batch_size=128, jit_compile=True)


class NormalizingFlow(GenerativeModel):
    """A flow x = f(z), z ~ N(0, I), trained by maximum likelihood; see the module docstring.

    Subclasses :class:`RealNVP` and :class:`MAF` only choose the kind of layer.

    Args:
        event_shape: shape of one data point (flattened to D inside the flow).
        num_layers: number of couplings / autoregressive layers.
        hidden_units: widths of each conditioner network.
        kind: ``"realnvp"`` or ``"maf"``.
        inverse: with ``"maf"``, the inverse autoregressive direction (IAF).
        normalization: None, ``"actnorm"`` (data-dependent init at the first ``fit``) or
            ``"batch"`` (batch moments in training, moving averages otherwise).
        log_scale_bound: B of the soft clip ``B tanh(s / B)`` of each log-scale; None: unbounded.
        preprocess: None or ``"logit"`` (data in [0, 1): y = logit(a + (1 - 2a) x)).
        logit_alpha: a of the logit pre-transform.
        target_log_prob: optional callable ``x [batch, *event_shape] -> [batch]``, an
            unnormalized log density log p~(x) = log p(x) + log Z. The flow is then trained
            by reverse KL on its own samples (:meth:`reverse_kl`): ``fit`` draws as many
            samples per step as its batch holds and ignores the batch's values, so fit it
            on :meth:`target_batches` (zeros that only set the number of steps and the
            batch size). Not saved with the model (pass it again after loading);
            ``log_prob``/``sample`` are the flow's own either way.
        seed: seed of the sampling stream.

    Reverse KL to a two-mode target (the flow finds one mode or both, depending on the
    seed and length of training; maximum likelihood on samples of it covers both):

    >>> mixture = tfd.MixtureSameFamily(
    ...     tfd.Categorical(probs=[0.5, 0.5]),
    ...     tfd.MultivariateNormalDiag([[-2.0, 0.0], [2.0, 0.0]], [[0.5, 0.5], [0.5, 0.5]]))
    >>> flow = RealNVP((2,), num_layers=2, hidden_units=(8,), seed=0,
    ...                target_log_prob=lambda x: mixture.log_prob(x) + 3.0)  # log Z = 3
    >>> flow.compile_default(learning_rate=3e-3)
    >>> # no data: 5 steps of 64 samples each (use ~1000 steps of 256, see docs/flows.md)
    >>> history = flow.fit(flow.target_batches(num_steps=5, batch_size=64), verbose=0)
    >>> flow.reverse_kl(1000, seed=(0, 1)).shape  # KL(q || p) - log Z, estimated
    TensorShape([])
    """

    density = "exact"
    default_learning_rate = 2e-3

    def __init__(
        self,
        event_shape: Sequence[int],
        num_layers: int = 8,
        hidden_units: Sequence[int] = (64, 64),
        kind: str = "realnvp",
        inverse: bool = False,
        normalization: str | None = None,
        log_scale_bound: float | None = 3.0,
        preprocess: str | None = None,
        logit_alpha: float = 0.05,
        target_log_prob=None,
        seed: int | None = None,
        **kwargs,
    ):
        if preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
        super().__init__(event_shape, support="real", seed=seed, **kwargs)
        self.kind = kind
        self.num_layers = int(num_layers)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.autoregressive_inverse = bool(inverse)  # (``inverse`` is the method x -> z)
        self.normalization = normalization
        self.log_scale_bound = None if not log_scale_bound else float(log_scale_bound)
        self.preprocess = preprocess
        self.logit_alpha = float(logit_alpha)
        self.flow = FlowLayer(
            self.event_size,
            num_layers=self.num_layers,
            hidden_units=self.hidden_units,
            kind=kind,
            inverse=self.autoregressive_inverse,
            normalization=normalization,
            log_scale_bound=self.log_scale_bound,
            name="flow",
        )
        self.build()
        self.target_log_prob = target_log_prob
        if target_log_prob is not None:
            self._check_target(target_log_prob)

    @classmethod
    def for_dataset(cls, dataset, **hparams) -> NormalizingFlow:
        """A flow for a real-valued dataset; images in [0, 1) get the logit pre-transform."""
        if dataset.support != "real":
            raise ValueError(
                f"{cls.__name__} models real-valued data; {dataset.name!r} is {dataset.support}"
                " (use its '-continuous' dequantized version)"
            )
        if dataset.image_shape is not None:
            hparams.setdefault("preprocess", "logit")
        return cls(event_shape=dataset.event_shape, **hparams)

    def _build(self):
        self.bijector().forward(tf.zeros([1, self.event_size]))

    # ------------------------------------------------------------------ the model
    def base_distribution(self) -> tfd.Distribution:
        """p_Z = N(0, I_D)."""
        return tfd.Independent(tfd.Normal(tf.zeros([self.event_size]), 1.0), 1)

    def pre_transform(self) -> tfb.Bijector:
        """y in R^D -> x: the inverse of the pre-transform, then a reshape to ``event_shape``.

        With ``preprocess="logit"``, x = (sigmoid(y) - a) / (1 - 2a); else the identity.
        """
        parts = []
        if self.event_shape != (self.event_size,):
            parts.append(tfb.Reshape(self.event_shape, [self.event_size]))
        if self.preprocess == "logit":
            a = self.logit_alpha
            parts += [tfb.Scale(1.0 / (1.0 - 2.0 * a)), tfb.Shift(-a), tfb.Sigmoid()]
        return tfb.Chain(parts)

    def bijector(self, batch=None) -> tfb.Bijector:
        """f: z in R^D -> x, a fresh ``tfb.Chain`` of the flow and the pre-transform.

        ``batch``: the data batch being fitted (training); batch norms then use its moments.
        """
        pre = self.pre_transform()
        if batch is not None:
            batch = pre.inverse(tf.convert_to_tensor(batch, tf.float32))
        return tfb.Chain([pre, self.flow.bijector(batch)])

    def distribution(self, batch=None) -> tfd.Distribution:
        """p_X = f_# p_Z as a ``tfd.TransformedDistribution`` (``batch``: see ``bijector``)."""
        return tfd.TransformedDistribution(self.base_distribution(), self.bijector(batch))

    def forward(self, z) -> tf.Tensor:
        """x = f(z), ``[batch, *event_shape]``."""
        return self.bijector().forward(tf.convert_to_tensor(z, tf.float32))

    def inverse(self, x) -> tf.Tensor:
        """z = f^{-1}(x), ``[batch, D]``."""
        return self.bijector().inverse(self._prepare(x))

    def objective(self, x, training=False):
        if self.target_log_prob is not None:  # reverse KL: only the batch size is used
            return {"loss": self.reverse_kl(tf.shape(x)[0])}
        log_prob = self.distribution(batch=x if training else None).log_prob(x)
        return {"loss": -tf.reduce_mean(log_prob)}

    # ------------------------------------------------------------------ reverse KL
    def _check_target(self, fn):
        """Refuse a target that is not callable or does not map a batch to ``[batch]``
        finite float values (checked on 4 samples of the untrained flow)."""
        if not callable(fn):
            raise ValueError(f"target_log_prob must be callable, got {type(fn).__name__}")
        x = self.sample(4, seed=(0, 0))
        value = np.asarray(fn(x))
        if value.shape != (4,) or not np.all(np.isfinite(value)):
            raise ValueError(
                f"target_log_prob must map a batch [n, {', '.join(map(str, self.event_shape))}]"
                f" to n finite log densities; on 4 samples it returned shape {value.shape}"
                f" (finite: {bool(np.all(np.isfinite(value)))})"
            )

    def reverse_kl(self, num_samples, seed=None) -> tf.Tensor:
        """Monte-Carlo reverse KL to the unnormalized target, a float32 scalar:

            (1/n) sum_i [log q(x_i) - log p~(x_i)],  x_i = f(z_i), z_i ~ N(0, I),

        an unbiased estimate of KL(q || p) - log Z (p~ = Z p), with log q(x_i) = log
        p_Z(z_i) - log |det df/dz(z_i)| from the forward pass alone and gradients through
        x_i (reparameterization). Batch norms use their moving averages here.
        """
        if self.target_log_prob is None:
            raise ValueError(f"{type(self).__name__} has no target_log_prob to compare with")
        x, log_q = self.distribution().experimental_sample_and_log_prob(
            num_samples, seed=self._seed(seed)
        )
        log_target = tf.cast(self.target_log_prob(tf.cast(x, tf.float32)), tf.float32)
        return tf.reduce_mean(tf.cast(log_q, tf.float32) - log_target)

    def target_batches(self, num_steps: int, batch_size: int) -> tf.data.Dataset:
        """``num_steps`` batches of ``batch_size`` zero events: what ``fit`` takes when the
        flow trains on ``target_log_prob`` (the values are ignored; each batch sets how
        many samples one reverse-KL step draws). ``epochs=E`` repeats it E times."""
        zeros = tf.zeros([int(batch_size), *self.event_shape])
        return tf.data.Dataset.from_tensors(zeros).repeat(int(num_steps))

    # ------------------------------------------------------------------ contract
    def log_prob(self, x, **kwargs) -> tf.Tensor:
        """Exact log p(x) by the change of variables, float32 ``[batch]``."""
        return tf.cast(self.distribution().log_prob(self._prepare(x)), tf.float32)

    def sample(self, num_samples: int, seed=None) -> tf.Tensor:
        """x = f(z), z ~ N(0, I): float32 ``[num_samples, *event_shape]``."""
        return tf.cast(self.distribution().sample(num_samples, seed=self._seed(seed)), tf.float32)

    def bits_per_dim(self, x, num_levels: int) -> tf.Tensor:
        """Bits/dim ``[batch]`` of discrete data with K = ``num_levels`` levels, given its
        dequantization x = (l + u)/K in [0, 1) (see :func:`bits_per_dim`)."""
        return bits_per_dim(self.log_prob(x), self.event_size, num_levels)

    def initialize(self, x) -> int:
        """Data-dependent act-norm initialization from a batch (a no-op otherwise, or after it
        has been done once). Called by ``fit`` with its first (up to 512) training examples;
        returns the number of layers initialized. Skipped when training on
        ``target_log_prob`` (the batches are placeholders, not data)."""
        if self.target_log_prob is not None:
            return 0
        return self.flow.initialize(np.asarray(self._prepare(x)).reshape(-1, self.event_size))

    def export_endpoints(self):
        endpoints = super().export_endpoints()
        spec_x = tf.TensorSpec([None, *self.event_shape], tf.float32, name="x")
        spec_z = tf.TensorSpec([None, self.event_size], tf.float32, name="z")
        endpoints["forward"] = (lambda z: self.bijector().forward(z), [spec_z])
        endpoints["inverse"] = (lambda x: self.bijector().inverse(x), [spec_x])
        return endpoints

    # ------------------------------------------------------------------ reports
    def summary_metrics(self, dataset) -> dict:
        """For toy sets with a known density, KL(p_true || p_model) = E_true[log p_true -
        log p_model] on the test split (the run itself reports the test NLL and the
        discrete data's bits/dim from ``dataset.num_levels``)."""
        if dataset.name not in ("8gaussians", "checkerboard"):
            return {}
        log_p = self.log_prob(dataset.x_test).numpy()
        log_true = _data.toy_log_prob(dataset.name, dataset.x_test)
        return {"kl_true_model": float(np.mean(log_true - log_p))}

    def get_config(self):
        return {
            **super().get_config(),
            "event_shape": self.event_shape,
            "num_layers": self.num_layers,
            "hidden_units": self.hidden_units,
            "normalization": self.normalization,
            "log_scale_bound": self.log_scale_bound,
            "preprocess": self.preprocess,
            "logit_alpha": self.logit_alpha,
        }


@registry.register(
    "realnvp",
    family="flow",
    datasets=_DATASETS,
    training=_TRAINING,
    hparams=dict(num_layers=8, hidden_units=(64, 64)),
    tiny=dict(num_layers=2, hidden_units=(8,)),
    variants={"actnorm": dict(normalization="actnorm"), "batchnorm": dict(normalization="batch")},
    description="RealNVP normalizing flow (affine couplings, exact likelihood)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class RealNVP(NormalizingFlow):
    """RealNVP (Dinh et al., 2017): affine couplings on alternating halves.

    Step (data to latent): [normalization], coupling z_{d+1:D} = (x_{d+1:D} - t(x_{1:d}))
    exp(-s(x_{1:d})), reversal of the coordinates. Args as :class:`NormalizingFlow`.

    >>> flow = RealNVP((2,), num_layers=2, hidden_units=(8,), seed=0)
    >>> flow.log_prob(np.zeros((1, 2), "float32")).numpy().round(4)  # N(0, I) at init
    array([-1.8379], dtype=float32)
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_layers: int = 8,
        hidden_units: Sequence[int] = (64, 64),
        normalization: str | None = None,
        log_scale_bound: float | None = 3.0,
        preprocess: str | None = None,
        logit_alpha: float = 0.05,
        target_log_prob=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            event_shape,
            num_layers=num_layers,
            hidden_units=hidden_units,
            kind="realnvp",
            normalization=normalization,
            log_scale_bound=log_scale_bound,
            preprocess=preprocess,
            logit_alpha=logit_alpha,
            target_log_prob=target_log_prob,
            seed=seed,
            **kwargs,
        )


@registry.register(
    "maf",
    family="flow",
    datasets=_DATASETS,
    training=_TRAINING,
    hparams=dict(num_layers=8, hidden_units=(64, 64)),
    tiny=dict(num_layers=2, hidden_units=(8,)),
    variants={"iaf": dict(inverse=True)},
    description="masked autoregressive flow (MAF; IAF with inverse=True)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class MAF(NormalizingFlow):
    """Masked autoregressive flow (Papamakarios et al., 2017), or IAF with ``inverse=True``.

    MAF: x_i = z_i exp(s_i(x_{<i})) + t_i(x_{<i}) with a MADE conditioner: log p(x) in one
    pass, sampling in D. IAF (Kingma et al., 2016): x_i = z_i exp(s_i(z_{<i})) + t_i(z_{<i}):
    sampling in one pass, log p(x) in D. Coordinates are reversed between layers.
    Args as :class:`NormalizingFlow`, plus ``inverse``.
    """

    def __init__(
        self,
        event_shape: Sequence[int],
        num_layers: int = 8,
        hidden_units: Sequence[int] = (64, 64),
        inverse: bool = False,
        normalization: str | None = None,
        log_scale_bound: float | None = 3.0,
        preprocess: str | None = None,
        logit_alpha: float = 0.05,
        target_log_prob=None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            event_shape,
            num_layers=num_layers,
            hidden_units=hidden_units,
            kind="maf",
            inverse=inverse,
            normalization=normalization,
            log_scale_bound=log_scale_bound,
            preprocess=preprocess,
            logit_alpha=logit_alpha,
            target_log_prob=target_log_prob,
            seed=seed,
            **kwargs,
        )

    def get_config(self):
        return {**super().get_config(), "inverse": self.autoregressive_inverse}
