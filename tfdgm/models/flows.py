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

With ``num_classes=K`` the flow is class-conditional, x = f(z; y): every conditioner also
takes the one-hot label y (affine couplings t, s(x_{1:d}, y); MADE conditioners
t_i, s_i(x_{<i}, y)), so log p(x | y) = log p_Z(f^{-1}(x; y)) + log |det J_{f^{-1}(.; y)}(x)|
is exact for every y (Winkler et al., 2019). ``fit(x, y)``, ``log_prob(x, labels=y)``,
``sample(n, labels=y)``.
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
    Winkler, Worrall, Hoogeboom & Welling, Learning Likelihoods with Conditional
    Normalizing Flows, arXiv:1912.00042, 2019.
    Theis, van den Oord & Bethge, A note on the evaluation of generative models, ICLR 2016.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfdgm import data as _data
from tfdgm import nets, registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.bijectors import FlowLayer
from tfdgm.data import EventSpec
from tfdgm.estimators import bits_per_dim  # noqa: F401  (re-exported: tfdgm.models.flows)

tfd = tfp.distributions
tfb = tfp.bijectors

PREPROCESS = (None, "logit")


_DATASETS = (
    "moons",
    "8gaussians",
    "checkerboard",
    "spirals",
    "digits-continuous",
    "mnist5k-continuous",
)
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
        num_classes: K of a class-conditional flow p(x | y), y in [0, K) (conditioners take
            the one-hot y); None for the unconditional flow.
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
        num_classes: int | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        if preprocess not in PREPROCESS:
            raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
        if num_classes is not None and int(num_classes) < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if num_classes is not None and target_log_prob is not None:
            raise ValueError("target_log_prob (reverse KL) is for unconditional flows")
        super().__init__(event_shape, support="real", seed=seed, **kwargs)
        self.kind = kind
        self.num_layers = int(num_layers)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.autoregressive_inverse = bool(inverse)  # (``inverse`` is the method x -> z)
        self.normalization = normalization
        self.log_scale_bound = None if not log_scale_bound else float(log_scale_bound)
        self.preprocess = preprocess
        self.logit_alpha = float(logit_alpha)
        self.num_classes = None if num_classes is None else int(num_classes)
        if self.num_classes is not None:
            self.accepts_labels = True
            self.label_spec = EventSpec((), "categorical", self.num_classes)
        self.flow = FlowLayer(
            self.event_size,
            num_layers=self.num_layers,
            hidden_units=self.hidden_units,
            kind=kind,
            inverse=self.autoregressive_inverse,
            normalization=normalization,
            log_scale_bound=self.log_scale_bound,
            context_dim=self.num_classes,
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
        labels = None if self.num_classes is None else tf.zeros([1], tf.int32)
        self.bijector(labels=labels).forward(tf.zeros([1, self.event_size]))

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

    def bijector(self, batch=None, labels=None) -> tfb.Bijector:
        """f: z in R^D -> x, a fresh ``tfb.Chain`` of the flow and the pre-transform.

        ``batch``: the data batch being fitted (training); batch norms then use its moments.
        ``labels``: int ``[batch]`` classes of a conditional flow (f = f(.; y)).
        """
        pre = self.pre_transform()
        if batch is not None:
            batch = pre.inverse(tf.convert_to_tensor(batch, tf.float32))
        context = None
        if self.num_classes is not None:
            if labels is None:
                raise ValueError(
                    f"{type(self).__name__}(num_classes={self.num_classes}) needs labels="
                )
            context = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes)
        return tfb.Chain([pre, self.flow.bijector(batch, context)])

    def distribution(self, batch=None, labels=None) -> tfd.Distribution:
        """p_X = f_# p_Z as a ``tfd.TransformedDistribution`` (p(x | y) given ``labels``;
        ``batch``: see ``bijector``)."""
        bijector = self.bijector(batch, labels)
        return tfd.TransformedDistribution(self.base_distribution(), bijector)

    def forward(self, z, labels=None) -> tf.Tensor:
        """x = f(z) (f(z; y) given ``labels``), ``[batch, *event_shape]``."""
        labels = nets.class_labels(self, labels)
        return self.bijector(labels=labels).forward(tf.convert_to_tensor(z, tf.float32))

    def inverse(self, x, labels=None) -> tf.Tensor:
        """z = f^{-1}(x) (f^{-1}(x; y) given ``labels``), ``[batch, D]``."""
        labels = nets.class_labels(self, labels)
        return self.bijector(labels=labels).inverse(self._prepare(x))

    def objective(self, x, training=False, labels=None):
        if self.target_log_prob is not None:  # reverse KL: only the batch size is used
            return {"loss": self.reverse_kl(tf.shape(x)[0])}
        return super().objective(x, training=training, labels=labels)

    def example_objective(self, x, training=False, labels=None):
        log_prob = self.distribution(batch=x if training else None, labels=labels).log_prob(x)
        return {"loss": -log_prob}  # -log p(x), [batch]

    @property
    def takes_sample_weight(self) -> bool:
        """Reverse KL ignores the batch's values, so weights have no meaning there."""
        return super().takes_sample_weight and self.target_log_prob is None

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
    def log_prob(self, x, labels=None, **kwargs) -> tf.Tensor:
        """Exact log p(x) by the change of variables (log p(x | y) of a conditional flow,
        ``labels`` y ``[batch]``), float32 ``[batch]``."""
        labels = nets.class_labels(self, labels)
        return tf.cast(self.distribution(labels=labels).log_prob(self._prepare(x)), tf.float32)

    def sample(self, num_samples: int, seed=None, labels=None) -> tf.Tensor:
        """x = f(z), z ~ N(0, I): float32 ``[num_samples, *event_shape]``. A conditional flow
        draws x = f(z; y) for ``labels`` y (one for all, or one per sample), or for labels
        drawn uniformly when none are given."""
        seed = self._seed(seed)
        labels = nets.class_labels(self, labels, num_samples, tf.reverse(seed, [0]))
        samples = self.distribution(labels=labels).sample(num_samples, seed=seed)
        return tf.cast(samples, tf.float32)

    def bits_per_dim(self, x, num_levels: int, labels=None) -> tf.Tensor:
        """Bits/dim ``[batch]`` of discrete data with K = ``num_levels`` levels, given its
        dequantization x = (l + u)/K in [0, 1) (see :func:`bits_per_dim`)."""
        return bits_per_dim(self.log_prob(x, labels=labels), self.event_size, num_levels)

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
        if self.num_classes is None:
            endpoints["forward"] = (lambda z: self.bijector().forward(z), [spec_z])
            endpoints["inverse"] = (lambda x: self.bijector().inverse(x), [spec_x])
            return endpoints
        spec_y = tf.TensorSpec([None], tf.int32, name="labels")
        endpoints["sample"] = (
            lambda n, seed, y: self.sample(n, seed=seed, labels=y),
            [*endpoints["sample"][1], spec_y],
        )
        endpoints["log_prob"] = (lambda x, y: self.log_prob(x, labels=y), [spec_x, spec_y])
        endpoints["forward"] = (lambda z, y: self.bijector(labels=y).forward(z), [spec_z, spec_y])
        endpoints["inverse"] = (lambda x, y: self.bijector(labels=y).inverse(x), [spec_x, spec_y])
        return endpoints

    # ------------------------------------------------------------------ reports
    def figures(self, dataset) -> dict:
        """The base pictures; a conditional flow draws one class per row (images) or its
        samples coloured by class (2-D data)."""
        if self.num_classes is None:
            return super().figures(dataset)
        from tfdgm import plotting

        labels = np.repeat(np.arange(self.num_classes), 8 if dataset.image_shape else 200)
        samples = np.asarray(self.sample(len(labels), seed=(0, 1), labels=labels))
        if dataset.image_shape is not None:
            grid = plotting.image_grid(
                samples, dataset.image_shape, title="samples, one class a row", vmin=0, vmax=1
            )
            return {"samples": grid}
        if tuple(dataset.event_shape) != (2,):
            return {}
        fig = plotting.scatter_2d(samples, title="samples by class", c=labels, cmap="tab10")
        return {"samples": fig}

    def summary_metrics(self, dataset) -> dict:
        """For toy sets with a known density, KL(p_true || p_model) = E_true[log p_true -
        log p_model] on the test split (the run itself reports the test NLL and the
        discrete data's bits/dim from ``dataset.num_levels``)."""
        if dataset.name not in ("8gaussians", "checkerboard") or self.num_classes is not None:
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
            "num_classes": self.num_classes,
        }


@registry.register(
    "realnvp",
    family="flow",
    datasets=_DATASETS,
    training=_TRAINING,
    hparams=dict(num_layers=8, hidden_units=(64, 64)),
    tiny=dict(num_layers=2, hidden_units=(8,)),
    # 2e-3 diverged on the 784-d set (docs/mnist5k.md)
    dataset_defaults={"mnist5k-continuous": dict(epochs=100, learning_rate=5e-4)},
    variants={
        "actnorm": dict(normalization="actnorm"),
        "batchnorm": dict(normalization="batch"),
        "conditional": dict(num_classes=2),  # the two moons
    },
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
        num_classes: int | None = None,
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
            num_classes=num_classes,
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
    # RealNVP's (docs/mnist5k.md: its 2e-3 diverged on the 784-d set)
    dataset_defaults={"mnist5k-continuous": dict(epochs=100, learning_rate=5e-4)},
    variants={"iaf": dict(inverse=True), "conditional": dict(num_classes=2)},
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
        num_classes: int | None = None,
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
            num_classes=num_classes,
            seed=seed,
            **kwargs,
        )

    def get_config(self):
        return {**super().get_config(), "inverse": self.autoregressive_inverse}
