"""Normalizing-flow parts: Keras 3 conditioners and normalizers, and factories of TFP bijectors.

A flow is a bijection f: R^D -> R^D pushing a base density p_Z forward; by the change of
variables,

    log p_X(x) = log p_Z(f^{-1}(x)) + log |det d f^{-1}(x) / dx|.

The Keras layers here hold the variables; each has a ``bijector()`` method that builds a
fresh ``tfp.bijectors`` object from them **at call time** (TFP objects built once would
freeze Keras 3 variables, see ``docs/keras_tfp_notes.md``). TFP supplies the transforms
and their log-determinants (``tfb.RealNVP``, ``tfb.MaskedAutoregressiveFlow``, ``tfb.Shift``,
``tfb.Scale``, ``tfb.Permute``); the only hand-written Jacobian is batch normalization's,
because ``tfb.BatchNormalization`` needs a Keras 2 layer.

Conventions: ``forward`` maps latent to data (z -> x, sampling), ``inverse`` maps data to
latent (x -> z, density evaluation), as in ``tfd.TransformedDistribution(base, bijector)``.
Every affine transform's log-scale is bounded, ``s = B tanh(s_raw / B)``, and every
conditioner's output layer starts at zero, so an untrained flow is the identity: an
unbounded log-scale made a RealNVP on two moons diverge to NaN in half of the seeded runs.

References:
    Dinh, Sohl-Dickstein & Bengio, Density estimation using Real NVP, ICLR 2017.
    Papamakarios, Pavlakou & Murray, Masked Autoregressive Flow for Density Estimation,
    NeurIPS 2017.
    Kingma et al., Improved Variational Inference with Inverse Autoregressive Flow,
    NeurIPS 2016.
    Kingma & Dhariwal, Glow: Generative Flow with Invertible 1x1 Convolutions, NeurIPS 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util

from tfdgm import nets

tfb = tfp.bijectors
PACKAGE = "tfdgm"

KINDS = ("realnvp", "maf")
NORMALIZATIONS = (None, "actnorm", "batch")


def bounded(raw: tf.Tensor, bound: float) -> tf.Tensor:
    """Soft clip ``B tanh(raw / B)`` of a raw log-scale to (-B, B); the identity near 0.

    >>> float(bounded(tf.constant(100.0), 3.0))
    3.0
    """
    raw = tf.cast(raw, tf.float32)
    return bound * tf.tanh(raw / bound) if bound else raw


# ------------------------------------------------------------------------- conditioners
@keras.saving.register_keras_serializable(package=PACKAGE)
class CouplingConditioner(keras.layers.Layer):
    """Conditioner of an affine coupling: ``x_{1:d} -> (t, s)`` for the other ``D - d`` inputs.

    An MLP with a zero-initialized output layer (the coupling starts at the identity) and
    log-scale ``s = B tanh(s_raw / B)``. Outputs are float32 under mixed precision.

    Args:
        output_dim: D - d, the number of transformed coordinates.
        hidden_units: widths of the MLP.
        log_scale_bound: B; 0 or None leaves the log-scale unbounded.
        activation: hidden activation.

    ``call(x, context)``: a conditional flow's context (the one-hot class) is appended to
    ``x_{1:d}``, so (t, s) = MLP([x_{1:d}, y]) (the layer is then built on ``d + K`` inputs).
    """

    def __init__(
        self,
        output_dim: int,
        hidden_units: Sequence[int] = (64, 64),
        log_scale_bound: float | None = 3.0,
        activation: str = "relu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.hidden_units = [int(u) for u in hidden_units]
        self.log_scale_bound = log_scale_bound
        self.activation = activation
        self.net = nets.MLP(
            self.hidden_units, 2 * self.output_dim, activation, output_init="zeros", name="mlp"
        )

    def build(self, input_shape):
        self.net.build(input_shape)

    def call(self, x, context=None):
        if context is not None:
            x = tf.concat([x, tf.cast(context, x.dtype)], -1)
        shift, raw = tf.split(tf.cast(self.net(x), tf.float32), 2, axis=-1)
        return shift, bounded(raw, self.log_scale_bound)

    def get_config(self):
        return {
            **super().get_config(),
            "output_dim": self.output_dim,
            "hidden_units": self.hidden_units,
            "log_scale_bound": self.log_scale_bound,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class AutoregressiveConditioner(keras.layers.Layer):
    """MADE conditioner ``x -> (t_i(x_{<i}), s_i(x_{<i}))_{i=1..D}`` of an autoregressive flow.

    A :class:`tfdgm.nets.MaskedMLP` with two outputs per dimension, zero output init and
    the bounded log-scale of :class:`CouplingConditioner`; with ``context_dim`` K every
    masked layer also takes the (unmasked) context y, giving (t_i, s_i)(x_{<i}, y).
    """

    def __init__(
        self,
        event_size: int,
        hidden_units: Sequence[int] = (64, 64),
        log_scale_bound: float | None = 3.0,
        activation: str = "relu",
        context_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.event_size = int(event_size)
        self.hidden_units = [int(u) for u in hidden_units]
        self.log_scale_bound = log_scale_bound
        self.activation = activation
        self.net = nets.MaskedMLP(
            self.event_size,
            self.hidden_units,
            params_per_dim=2,
            activation=activation,
            output_init="zeros",
            context_dim=context_dim,
            name="made",
        )
        self.context_dim = context_dim

    def build(self, input_shape):
        self.net.build(input_shape)

    def call(self, x, context=None):
        params = tf.cast(self.net(x, context), tf.float32)  # (..., D, 2)
        return params[..., 0], bounded(params[..., 1], self.log_scale_bound)

    def get_config(self):
        return {
            **super().get_config(),
            "event_size": self.event_size,
            "hidden_units": self.hidden_units,
            "log_scale_bound": self.log_scale_bound,
            "activation": self.activation,
            "context_dim": self.context_dim,
        }


def _conditioner_fn(layer, context=None):
    """TFP calls ``shift_and_log_scale_fn(x, input_depth)`` positionally: adapt a layer (the
    context of a conditional flow, ``[batch, K]``, is closed over)."""
    if context is None:
        return lambda x, input_depth=None, **kwargs: layer(x)
    return lambda x, input_depth=None, **kwargs: layer(x, context)


class _OnePass:
    """Mixin for a TFP bijector whose transform and log-determinant come from one
    conditioner call.

    ``tfd.TransformedDistribution.log_prob`` asks a bijector for ``inverse(y)`` and then
    for ``inverse_log_det_jacobian(y)``; ``tfb.RealNVP`` and ``tfb.MaskedAutoregressiveFlow``
    evaluate their conditioner network in each (twice the MatMuls of log p(x) by hand,
    ``benchmarks/flow_graph_cost.py``). TFP's own remedy (FFJORD, HighwayFlow): a
    ``BijectorCacheWithGreedyAttrs``, whose ``_augmented_inverse(y)`` returns ``(x, {"ildj":
    ...})``; the cache keeps the log-det with the (y, x) pair, where
    ``inverse_log_det_jacobian`` finds it. The mixin's log-det methods pass through the
    cache first, so whichever is asked first the conditioner runs once per input tensor.
    Subclasses define ``_augmented_forward`` / ``_augmented_inverse``.
    """

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse"
    )

    def _inverse_log_det_jacobian(self, y, **kwargs):
        self.inverse(y, **kwargs)  # computes (x, ildj) unless the pair is cached already
        attrs = self._cache.inverse_attributes(y, **kwargs)
        if "ildj" in attrs:
            return attrs["ildj"]
        return super()._inverse_log_det_jacobian(y, **kwargs)  # the pair came from forward


class FusedRealNVP(_OnePass, tfb.RealNVP):
    """``tfb.RealNVP`` (``num_masked`` >= 0) whose inverse and forward also return their
    log-determinant from the same conditioner call: the same numbers, one pass."""

    def _halves(self, x, **kwargs):
        self._cache_input_depth(x)
        d = self._masked_size
        inner = self._bijector_fn(x[..., :d], self._bijector_input_units(), **kwargs)
        return x[..., :d], x[..., d:], inner

    def _augmented_forward(self, x, **kwargs):
        x0, x1, inner = self._halves(x, **kwargs)
        y = tf.concat([x0, inner.forward(x1)], axis=-1)
        return y, {"ildj": -inner.forward_log_det_jacobian(x1, event_ndims=1)}

    def _augmented_inverse(self, y, **kwargs):
        y0, y1, inner = self._halves(y, **kwargs)
        x = tf.concat([y0, inner.inverse(y1)], axis=-1)
        return x, {"ildj": inner.inverse_log_det_jacobian(y1, event_ndims=1)}

    def _forward_log_det_jacobian(self, x, **kwargs):
        self.forward(x, **kwargs)
        attrs = self._cache.forward_attributes(x, **kwargs)
        if "ildj" in attrs:
            return -attrs["ildj"]
        return super()._forward_log_det_jacobian(x, **kwargs)


class FusedMAF(_OnePass, tfb.MaskedAutoregressiveFlow):
    """``tfb.MaskedAutoregressiveFlow`` whose one-pass inverse also returns its
    log-determinant (the D-pass forward is TFP's own)."""

    def _augmented_forward(self, x, **kwargs):
        return self._forward(x, **kwargs), None

    def _augmented_inverse(self, y, **kwargs):
        inner = self._bijector_fn(y, **kwargs)
        ildj = inner.inverse_log_det_jacobian(y, event_ndims=self._event_ndims)
        return inner.inverse(y), {"ildj": ildj}


def affine_coupling(
    conditioner: CouplingConditioner, num_masked: int, context=None
) -> tfb.Bijector:
    """Affine coupling (Dinh et al., 2017) ``y_{1:d} = x_{1:d}``,
    ``y_{d+1:D} = x_{d+1:D} * exp(s(x_{1:d})) + t(x_{1:d})``; log-det ``sum s(x_{1:d})``
    (s, t also functions of ``context`` y when given); one conditioner call gives both."""
    fn = _conditioner_fn(conditioner, context)
    return FusedRealNVP(num_masked=num_masked, shift_and_log_scale_fn=fn)


def masked_autoregressive(conditioner: AutoregressiveConditioner, context=None) -> tfb.Bijector:
    """MAF layer (Papamakarios et al., 2017): forward ``x_i = z_i exp(s_i(x_{<i})) + t_i(x_{<i})``
    (D sequential passes), inverse ``z_i = (x_i - t_i(x_{<i})) exp(-s_i(x_{<i}))`` (one pass,
    which also gives the log-det); log-det ``sum_i s_i`` (s_i, t_i also functions of
    ``context`` y when given)."""
    fn = _conditioner_fn(conditioner, context)
    return FusedMAF(shift_and_log_scale_fn=fn)


# ------------------------------------------------------------------------- normalizers
@keras.saving.register_keras_serializable(package=PACKAGE)
class ActNorm(keras.layers.Layer):
    """Activation normalization (Kingma & Dhariwal, 2018): ``x = z * exp(s) + b`` per dimension.

    Log-det ``sum_i s_i``. Starts at the identity; :meth:`initialize` sets ``b`` and ``s`` from
    a batch so that the inverse maps it to zero mean and unit variance (data-dependent
    initialization), once: a saved flow is not re-initialized.
    """

    def __init__(self, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.loc = self.add_weight((self.dim,), "zeros", name="loc", autocast=False)
        self.log_scale = self.add_weight((self.dim,), "zeros", name="log_scale", autocast=False)
        self.initialized = self.add_weight(
            (), "zeros", trainable=False, name="initialized", autocast=False
        )

    def bijector(self) -> tfb.Bijector:
        loc = tf.convert_to_tensor(self.loc, tf.float32)
        log_scale = tf.convert_to_tensor(self.log_scale, tf.float32)
        return tfb.Chain([tfb.Shift(loc), tfb.Scale(log_scale=log_scale)], name="act_norm")

    def initialize(self, h, eps: float = 1e-6):
        """Data-dependent init from the activations ``h`` [batch, D] arriving from the data side."""
        h = np.asarray(h, np.float64).reshape(-1, self.dim)
        self.loc.assign(h.mean(0).astype("float32"))
        self.log_scale.assign(np.log(h.std(0) + eps).astype("float32"))
        self.initialized.assign(1.0)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package=PACKAGE)
class BatchNorm(keras.layers.Layer):
    """Batch normalization as a bijector (Dinh et al., 2017, Sec. 3.7).

    Inverse (data -> latent) ``z = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta``, an
    affine map built from ``tfb.Shift``/``tfb.Scale`` with log |det| =
    ``sum_i log_gamma_i - 1/2 log(v_i + eps)``. ``(m, v)`` are the moments of the batch
    arriving at this layer in training (:meth:`batch_bijector`, which also updates the
    moving averages ``m <- momentum m + (1 - momentum) mean``), the moving averages
    otherwise (:meth:`bijector`), so a trained flow's density integrates to 1.
    """

    def __init__(self, dim: int, momentum: float = 0.9, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.dim = int(dim)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        w = dict(autocast=False)
        self.log_gamma = self.add_weight((self.dim,), "zeros", name="log_gamma", **w)
        self.beta = self.add_weight((self.dim,), "zeros", name="beta", **w)
        # aggregation="mean": replicas of a tf.distribute strategy average their updates
        self.moving_mean = self.add_weight(
            (self.dim,), "zeros", trainable=False, aggregation="mean", name="moving_mean", **w
        )
        self.moving_variance = self.add_weight(
            (self.dim,), "ones", trainable=False, aggregation="mean", name="moving_variance", **w
        )

    def bijector(self, moments=None) -> tfb.Bijector:
        """x = (z - beta) exp(-log_gamma) sqrt(v + eps) + m with the moving (or given) moments."""
        if moments is None:
            moments = (self.moving_mean, self.moving_variance)
        mean, var = (tf.convert_to_tensor(t, tf.float32) for t in moments)
        log_gamma = tf.convert_to_tensor(self.log_gamma, tf.float32)
        beta = tf.convert_to_tensor(self.beta, tf.float32)
        return tfb.Chain(
            [
                tfb.Shift(mean),
                tfb.Scale(tf.sqrt(var + self.epsilon)),
                tfb.Scale(log_scale=-log_gamma),
                tfb.Shift(-beta),
            ],
            name="batch_norm",
        )

    def batch_bijector(self, h) -> tfb.Bijector:
        """The bijector with the moments of ``h`` [..., D] (training); updates the averages."""
        h = tf.cast(h, tf.float32)
        mean, var = tf.nn.moments(h, axes=list(range(len(h.shape) - 1)))
        m = self.momentum
        self.moving_mean.assign(m * self.moving_mean + (1 - m) * tf.stop_gradient(mean))
        self.moving_variance.assign(m * self.moving_variance + (1 - m) * tf.stop_gradient(var))
        return self.bijector((mean, var))

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


# ------------------------------------------------------------------------- the flow
@keras.saving.register_keras_serializable(package=PACKAGE)
class FlowLayer(keras.layers.Layer):
    """A stack of invertible layers on R^D; ``bijector()`` returns it as one ``tfb.Chain``.

    Step k (data side to latent side): optional normalization (act-norm or batch norm),
    a transform (affine coupling on the second half given the first, or a MAF/IAF layer),
    then a fixed permutation that reverses the coordinates, so that every coordinate is
    transformed and conditions the others. log |det| is the sum over steps.

    Also usable as the posterior flow of :class:`tfdgm.VAE` (``posterior_flow=``): there it
    is unconditional, q(z|x) = f_# N(mu(x), sigma(x)^2), with f shared across x.

    Args:
        dim: D, the dimension of the space.
        num_layers: number of transforms (couplings or autoregressive layers).
        hidden_units: widths of each conditioner.
        kind: ``"realnvp"`` (affine couplings) or ``"maf"`` (masked autoregressive).
        inverse: with ``kind="maf"``, invert every layer (IAF: one-pass sampling, D-pass
            density evaluation).
        normalization: None, ``"actnorm"`` or ``"batch"``.
        log_scale_bound: B of the soft clip ``B tanh(s / B)``; 0 or None: unbounded.
        activation: conditioner activation.
        context_dim: K of a conditional flow f(z; y): every conditioner also takes the
            context y ``[batch, K]`` (e.g. a one-hot class) given to ``bijector(context=y)``;
            normalizations and permutations do not depend on it.

    >>> flow = FlowLayer(2, num_layers=2, hidden_units=(8,))
    >>> flow.bijector().forward(tf.ones([3, 2])).numpy().tolist()  # identity at init
    [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(
        self,
        dim: int,
        num_layers: int = 4,
        hidden_units: Sequence[int] = (64, 64),
        kind: str = "realnvp",
        inverse: bool = False,
        normalization: str | None = None,
        log_scale_bound: float | None = 3.0,
        activation: str = "relu",
        context_dim: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}"
            )
        if kind == "realnvp" and int(dim) < 2:
            raise ValueError(f"a coupling flow needs dim >= 2, got {dim}")
        if inverse and kind != "maf":
            raise ValueError("inverse=True (IAF) needs kind='maf'")
        self.dim = int(dim)
        self.num_layers = int(num_layers)
        self.hidden_units = [int(u) for u in hidden_units]
        self.kind = kind
        self.inverse = bool(inverse)
        self.normalization = normalization
        self.log_scale_bound = None if not log_scale_bound else float(log_scale_bound)
        self.activation = activation
        self.context_dim = None if not context_dim else int(context_dim)
        extra = self.context_dim or 0
        self.num_masked = self.dim // 2
        self.transforms, self.norms = [], []
        for k in range(self.num_layers):
            if kind == "realnvp":
                net = CouplingConditioner(
                    self.dim - self.num_masked,
                    self.hidden_units,
                    self.log_scale_bound,
                    activation,
                    name=f"coupling_{k}",
                )
                net.build((None, self.num_masked + extra))
            else:
                net = AutoregressiveConditioner(
                    self.dim,
                    self.hidden_units,
                    self.log_scale_bound,
                    activation,
                    context_dim=self.context_dim,
                    name=f"made_{k}",
                )
                net.build((None, self.dim))
            self.transforms.append(net)
            if normalization == "actnorm":
                self.norms.append(ActNorm(self.dim, name=f"act_norm_{k}"))
            elif normalization == "batch":
                self.norms.append(BatchNorm(self.dim, name=f"batch_norm_{k}"))
        self.built = True

    def _step(self, k: int, h=None, context=None) -> list[tfb.Bijector]:
        """Step k in data-to-latent order: [normalization], transform, [reversal].

        ``h``: the batch arriving at step k, whose moments a batch norm then uses;
        ``context``: a conditional flow's y.
        """
        step = []
        if self.normalization == "batch":
            norm = self.norms[k]
            step.append(norm.bijector() if h is None else norm.batch_bijector(h))
        elif self.normalization == "actnorm":
            step.append(self.norms[k].bijector())
        net = self.transforms[k]
        if self.kind == "realnvp":
            step.append(affine_coupling(net, self.num_masked, context))
        else:
            transform = masked_autoregressive(net, context)
            step.append(tfb.Invert(transform) if self.inverse else transform)
        if k < self.num_layers - 1:
            step.append(tfb.Permute(np.arange(self.dim)[::-1].astype("int32")))
        return step

    def bijector(self, batch=None, context=None) -> tfb.Bijector:
        """f: latent -> data as a fresh ``tfb.Chain`` built from the current variables.

        ``batch``: in training, the data batch [batch, D] being fitted; batch-norm layers
        then use the moments of the activations this batch produces at their input (and
        update their moving averages). Without it they use the moving averages.
        ``context``: y ``[batch, K]`` of a conditional flow (required when ``context_dim``).
        """
        if self.context_dim and context is None:
            raise ValueError(
                f"a conditional FlowLayer (context_dim={self.context_dim}) needs context"
            )
        # tfb.Chain([b_1, ..., b_n]).inverse applies b_1^{-1} first: data-to-latent order.
        if batch is None or self.normalization != "batch":
            steps = [b for k in range(self.num_layers) for b in self._step(k, context=context)]
            return tfb.Chain(steps, name=f"{self.kind}_flow")
        h, steps = tf.cast(batch, tf.float32), []
        for k in range(self.num_layers):
            step = self._step(k, h, context)
            for b in step:
                h = b.inverse(h)
            steps.extend(step)
        return tfb.Chain(steps, name=f"{self.kind}_flow")

    def call(self, z):
        """f(z), the latent-to-data map."""
        return self.bijector().forward(z)

    def initialize(self, x) -> int:
        """Data-dependent init of every act-norm (in data-to-latent order) from a batch ``x``.

        Returns the number of layers initialized (0 unless ``normalization="actnorm"`` and
        not yet initialized). A conditional flow's transforms are the identity before any
        training whatever the context, so a zero context stands in for it.
        """
        if self.normalization != "actnorm" or float(self.norms[0].initialized.numpy()):
            return 0
        h = tf.convert_to_tensor(np.asarray(x, np.float32).reshape(-1, self.dim))
        context = None if not self.context_dim else tf.zeros([h.shape[0], self.context_dim])
        for k in range(self.num_layers):
            self.norms[k].initialize(h)
            for step in self._step(k, context=context):
                h = step.inverse(h)
        return self.num_layers

    def get_config(self):
        return {
            **super().get_config(),
            "dim": self.dim,
            "num_layers": self.num_layers,
            "hidden_units": self.hidden_units,
            "kind": self.kind,
            "inverse": self.inverse,
            "normalization": self.normalization,
            "log_scale_bound": self.log_scale_bound,
            "activation": self.activation,
            "context_dim": self.context_dim,
        }
