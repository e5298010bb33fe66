"""Deep belief nets: stacks of RBMs trained greedily, layer by layer.

Layers h_0 = v, h_1, ..., h_L. RBM l (a :class:`tfdgm.models.rbm.RBM`) models h_l with
hidden layer h_{l+1}; it is trained (CD-k / PCD-k) on samples h_l ~ q(h_l | h_{l-1})
passed up through the frozen RBMs below. The generative model is the top RBM over
(h_{L-1}, h_L) with directed sigmoid layers below it:

    p(h_0, ..., h_{L-1}) = p_top(h_{L-1}) prod_{l<L-1} p(h_l | h_{l+1}),

where p(h_l | h_{l+1}) is RBM l's p(v | h) and p_top(h) = exp(-F_top(h)) / Z_top. log p(v)
is importance-sampled with the recognition pass q(h_1..h_{L-1} | v) as the proposal.

References:
    Hinton, Osindero & Teh, A fast learning algorithm for deep belief nets, 2006.
    Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, 2008.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import tensorflow as tf

from tfdgm import registry
from tfdgm.base import PACKAGE, GenerativeModel
from tfdgm.estimators import chunked_log_mean_exp
from tfdgm.models.rbm import RBM, _pooled_std, _split

#: RBM arguments the DBN used to take directly; now keys of ``rbm_kwargs``.
_LEGACY_RBM_ARGUMENTS = ("cd_k", "persistent", "num_chains", "visible_std", "sample_steps")
#: Set by the DBN for each layer, so not accepted in ``rbm_kwargs``.
_LAYER_ARGUMENTS = ("num_visible", "num_hidden", "visible", "seed", "name")


def _rbm_kwargs(rbm_kwargs, kwargs: dict) -> dict:
    """``rbm_kwargs`` with the legacy flat RBM arguments popped from ``kwargs`` (they win)."""
    if rbm_kwargs is not None and not isinstance(rbm_kwargs, dict):
        raise TypeError(
            f"rbm_kwargs must be a dict of RBM arguments, e.g. rbm_kwargs=dict(cd_k=3), got "
            f"{rbm_kwargs!r} (DBN's third positional argument used to be cd_k)"
        )
    merged = dict(rbm_kwargs or {})
    legacy = {k: kwargs.pop(k) for k in _LEGACY_RBM_ARGUMENTS if k in kwargs}
    if legacy:
        warnings.warn(
            f"DBN({', '.join(f'{k}=...' for k in legacy)}) is deprecated: pass "
            f"rbm_kwargs=dict({', '.join(f'{k}=...' for k in legacy)})",
            DeprecationWarning,
            stacklevel=3,
        )
        merged.update(legacy)
    clash = sorted(set(merged) & set(_LAYER_ARGUMENTS))
    if clash:
        raise ValueError(f"rbm_kwargs may not set {clash}: the DBN sets them for each layer")
    return merged


class _GreedySchedule(keras.callbacks.Callback):
    """Trains layer floor(e L / E) of an L-layer DBN in epoch e of E (greedy, bottom-up).

    At a layer switch the train step is retraced for the new layer and the user's
    ``EarlyStopping`` callbacks are reset (``on_train_begin``): each layer's loss is on its
    own scale, so the best value of the layer below must not stop the next one.
    """

    def __init__(self, dbn, epochs: int, initial_epoch: int, verbose, callbacks=()):
        super().__init__()
        self.dbn, self.epochs, self.initial_epoch, self.verbose = (
            dbn,
            epochs,
            initial_epoch,
            verbose,
        )
        self.early_stopping = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]

    def layer_for(self, epoch: int) -> int:
        num_layers = len(self.dbn.rbms)
        span = max(1, self.epochs - self.initial_epoch)
        return min(num_layers - 1, (epoch - self.initial_epoch) * num_layers // span)

    def on_epoch_begin(self, epoch, logs=None):
        layer = self.layer_for(epoch)
        if layer == self.dbn.active_layer and self.dbn.train_function is not None:
            return
        self.dbn.active_layer = layer
        self.dbn.make_train_function(force=True)  # retrace train_step for the new layer
        self.dbn.test_function = None
        for callback in self.early_stopping:
            callback.on_train_begin()
        if self.verbose:
            sizes = self.dbn.layer_sizes
            print(
                f"DBN: training layer {layer + 1}/{len(self.dbn.rbms)} "
                f"(RBM {sizes[layer]} -> {sizes[layer + 1]}) from epoch {epoch + 1}"
            )


@registry.register(
    "dbn",
    family="energy-based",
    datasets=("digits", "digits-continuous", "mnist", "fashion-mnist"),
    training=dict(epochs=100, batch_size=32),
    hparams=dict(hidden_sizes=(64, 20), rbm_kwargs=dict(cd_k=1), log_prob_samples=1000),
    tiny=dict(hidden_sizes=(8, 4), rbm_kwargs=dict(sample_steps=20), log_prob_samples=20),
    variants={
        "persistent": dict(rbm_kwargs=dict(sample_steps=20, persistent=True, num_chains=16)),
        "gaussian": dict(dataset="digits-continuous"),
    },
    description="deep belief net (greedy layer-wise RBMs, Gibbs in the top, directed pass down)",
)
@keras.saving.register_keras_serializable(package=PACKAGE)
class DBN(GenerativeModel):
    """Deep belief net: a stack of RBMs trained greedily, layer by layer (Hinton et al., 2006).

    Layers h_0 = v, h_1, ..., h_L with sizes ``layer_sizes``. RBM l models h_l with hidden
    layer h_{l+1}; it is trained (CD-k / PCD-k) on samples h_l ~ q(h_l | h_{l-1}) passed up
    through the frozen RBMs below. The generative model is the top RBM over (h_{L-1}, h_L)
    with directed sigmoid layers below it:

        p(h_0, ..., h_{L-1}) = p_top(h_{L-1}) prod_{l<L-1} p(h_l | h_{l+1}),

    where p(h_l | h_{l+1}) is RBM l's p(v | h) and p_top(h) = exp(-F_top(h)) / Z_top.

    Training goes through Keras ``fit``: of E epochs, epoch e trains layer floor(e L / E)
    (the ``layer`` metric says which; a line is printed when the layer changes), each
    layer with its own optimizer (groups ``rbm_0``, ``rbm_1``, ...; ``compile_default()``
    gives each the RBM's SGD with momentum at learning rate 0.05);
    ``pretrain(x, epochs_per_layer)`` is ``fit`` with E = L * epochs_per_layer.
    ``sample`` runs Gibbs in the top RBM then one directed pass down; ``log_prob``
    importance-samples the hidden layers with the recognition pass q as the proposal.

    Args:
        layer_sizes: ``[V, H_1, ..., H_L]``, visible first (L >= 1 RBMs).
        visible: visible units of the bottom RBM, ``"bernoulli"`` or ``"gaussian"`` (the
            layers above are binary).
        rbm_kwargs: arguments of every layer's :class:`RBM`, e.g. ``dict(cd_k=3,
            persistent=True, num_chains=64, visible_std=0.3, sample_steps=1000)``
            (``visible_std`` matters for Gaussian bottom units only). The old flat
            ``DBN(..., cd_k=3)`` form still works, with a DeprecationWarning.
        log_prob_samples: default number of importance samples of ``log_prob``.
        seed: seed of the model's random stream (layer l is seeded ``seed + l + 1``).

    References:
        Hinton, Osindero & Teh, A fast learning algorithm for deep belief nets, 2006.
        Salakhutdinov & Murray, On the quantitative analysis of deep belief networks, 2008.
    """

    density = "estimate"  # importance-sampled; the top log Z exact or AIS
    default_learning_rate = 0.05
    default_steps_per_execution = 8

    metric_names = ("loss", "reconstruction_error", "layer")

    def __init__(
        self,
        layer_sizes: Sequence[int],
        visible: str = "bernoulli",
        rbm_kwargs: dict | None = None,
        log_prob_samples: int = 100,
        seed: int | None = None,
        **kwargs,
    ):
        layer_sizes = [int(n) for n in layer_sizes]
        rbm_kwargs = _rbm_kwargs(rbm_kwargs, kwargs)
        if len(layer_sizes) < 2:
            raise ValueError(
                f"layer_sizes needs a visible and >= 1 hidden layer, got {layer_sizes}"
            )
        super().__init__(
            (layer_sizes[0],),
            support="binary" if visible == "bernoulli" else "real",
            seed=seed,
            **kwargs,
        )
        self.layer_sizes = layer_sizes
        self.visible = visible
        self.rbm_kwargs = rbm_kwargs
        self.log_prob_samples = int(log_prob_samples)
        self.rbms = [
            RBM(
                n_in,
                n_out,
                visible=visible if layer == 0 else "bernoulli",
                seed=None if seed is None else seed + layer + 1,
                name=f"rbm_{layer}",
                **rbm_kwargs,
            )
            for layer, (n_in, n_out) in enumerate(zip(layer_sizes[:-1], layer_sizes[1:]))
        ]
        self.active_layer = 0
        self.build()

    @classmethod
    def for_dataset(cls, dataset, hidden_sizes: Sequence[int] = (64, 32), **hparams) -> DBN:
        """A DBN ``[V, *hidden_sizes]`` for ``dataset`` (Gaussian bottom units for real data);
        the bottom visible biases start at the data's log-odds (or mean)."""
        if dataset.support == "categorical":
            raise ValueError("DBN models binary or real data, not categorical levels")
        x = dataset.x_train.reshape(len(dataset.x_train), -1)
        rbm_kwargs = _rbm_kwargs(hparams.pop("rbm_kwargs", None), hparams)
        hparams.setdefault("visible", "bernoulli" if dataset.support == "binary" else "gaussian")
        if hparams["visible"] == "gaussian":
            rbm_kwargs.setdefault("visible_std", _pooled_std(x))
        model = cls(layer_sizes=[x.shape[1], *hidden_sizes], rbm_kwargs=rbm_kwargs, **hparams)
        model.rbms[0].init_visible_bias(x)
        return model

    def _build(self):
        pass  # every RBM built its variables in its own __init__

    @property
    def top(self) -> RBM:
        return self.rbms[-1]

    # ------------------------------------------------------------------ training
    def propagate_up(self, x, num_layers: int, seed=None) -> tf.Tensor:
        """h_{num_layers} sampled by passing x up through the first ``num_layers`` RBMs."""
        h = tf.cast(x, tf.float32)
        seeds = _split(self._seed(seed), max(2, num_layers))
        for layer in range(num_layers):
            h = self.rbms[layer].hidden_conditional(h).sample(seed=seeds[layer])
        return tf.stop_gradient(h)

    def optimizer_groups(self) -> dict[str, list]:
        """One optimizer per layer: ``{"rbm_0": RBM 0's variables, "rbm_1": ...}``."""
        return {f"rbm_{layer}": rbm.trainable_variables for layer, rbm in enumerate(self.rbms)}

    def default_optimizer(self, group: str, learning_rate: float):
        """The RBM's rule (:meth:`RBM.default_optimizer`): SGD with momentum 0.9, or 0.5 for
        persistent CD, at ``default_learning_rate`` = 0.05 with 8 steps per execution."""
        return self.rbms[int(group.removeprefix("rbm_"))].default_optimizer(group, learning_rate)

    def training_update(self, x, labels=None) -> dict:
        """A CD step of the layer being trained, on h sampled up through the layers below."""
        layer = self.active_layer
        seed_up, seed_cd = _split(self._seed())
        h = self.propagate_up(x, layer, seed_up)
        optimizer = self.optimizer_for(f"rbm_{layer}")
        return self._with_layer(self.rbms[layer].cd_update(h, optimizer, seed_cd), layer)

    def objective(self, x, training=False):
        layer = self.active_layer
        h = self.propagate_up(x, layer)
        return self._with_layer(self.rbms[layer].objective(h), layer)

    @staticmethod
    def _with_layer(values, layer):
        return {
            "loss": values["loss"],
            "reconstruction_error": values["reconstruction_error"],
            "layer": tf.constant(float(layer)),
        }

    def fit_callbacks(self, epochs: int, initial_epoch: int, verbose, callbacks: list) -> list:
        """The greedy schedule: epoch e of ``epochs`` trains layer floor(e L / epochs), so
        give ``fit`` at least L epochs; resets the user's ``EarlyStopping`` at each switch."""
        return [_GreedySchedule(self, epochs, initial_epoch, verbose, callbacks)]

    def pretrain(self, x, epochs_per_layer: int = 10, **kwargs):
        """Greedy layer-wise training, ``epochs_per_layer`` epochs of Keras ``fit`` per RBM."""
        return self.fit(x, epochs=epochs_per_layer * len(self.rbms), **kwargs)

    # ------------------------------------------------------------------ contract
    def sample(self, num_samples: int, seed=None, num_steps: int | None = None) -> tf.Tensor:
        """Gibbs in the top RBM (``num_steps``, default ``sample_steps``), then
        h_l ~ p(h_l | h_{l+1}) down to the visible layer; float32 ``[num_samples, V]``."""
        seeds = _split(self._seed(seed), len(self.rbms) + 1)
        h = self.top.sample(num_samples, seed=seeds[-1], num_steps=num_steps)
        for layer in reversed(range(len(self.rbms) - 1)):
            h = self.rbms[layer].visible_conditional(h).sample(seed=seeds[layer])
        return h

    def log_prob(
        self, x, num_samples: int | None = None, seed=None, chunk: int = 100, log_partition=None
    ):
        """Importance-sampled log p(v) ~= log (1/S) sum_s p(v, h^s) / q(h^s | v), ``[batch]``.

        q(h_1..h_{L-1} | v) = prod_l RBM_l's p(h_{l+1} | h_l) (the recognition pass);
        p(v, h) = p_top(h_{L-1}) prod_l p(h_l | h_{l+1}), with the top RBM's log Z exact
        when it can be, else AIS with seed (0, 0) (or ``log_partition`` if given). An
        unbiased estimate of p(v) (so a stochastic lower bound on log p(v)) for S =
        ``num_samples`` (default ``log_prob_samples``). With a single RBM this is the RBM's
        own log p(v).
        """
        if log_partition is None:
            log_partition = self.top.log_partition(self.top.log_prob_method, seed=(0, 0)).value
        if len(self.rbms) == 1:
            return self.top.log_prob(x, log_partition=log_partition)
        v = self._prepare(x)
        log_z = tf.cast(log_partition, tf.float32)
        batch = tf.shape(v)[0]

        def draw(k, seed):  # log p(v, h) - log q(h | v), (k, batch)
            seeds = _split(seed, len(self.rbms))
            h = tf.reshape(tf.tile(v[None], [k, 1, 1]), [k * batch, -1])  # (k * batch, V)
            log_w = tf.zeros([k * batch])
            for layer, rbm in enumerate(self.rbms[:-1]):
                q = rbm.hidden_conditional(h)
                h_up = q.sample(seed=seeds[layer])
                log_w += rbm.visible_conditional(h_up).log_prob(h) - q.log_prob(h_up)
                h = h_up
            log_w += -self.top.free_energy(h) - log_z
            return tf.reshape(log_w, [k, batch])

        num_samples = int(num_samples or self.log_prob_samples)
        return chunked_log_mean_exp(draw, num_samples, self._seed(seed), chunk)

    def summary_metrics(self, dataset) -> dict:
        """Importance-sampled test log-likelihood (the top RBM's log Z exact or AIS)."""
        x = dataset.x_test.reshape(len(dataset.x_test), -1)
        return {
            "test_log_likelihood": float(tf.reduce_mean(self.log_prob(x, seed=(0, 0)))),
            "log_likelihood_method": f"importance sampling, top log Z {self.top.log_prob_method}",
        }

    def figures(self, dataset) -> dict:
        """The base's pictures (samples) and ``"filters"``, the bottom RBM's filters."""
        figures, filters = super().figures(dataset), self.rbms[0].filters_figure(dataset)
        return figures if filters is None else {**figures, "filters": filters}

    def export_endpoints(self):
        spec = tf.TensorSpec([None, self.layer_sizes[0]], tf.float32, name="x")
        endpoints = super().export_endpoints()
        log_z = float(self.top.log_partition(self.top.log_prob_method, seed=(0, 0)).value)
        endpoints["log_prob"] = (
            lambda x: self.log_prob(
                x, num_samples=min(self.log_prob_samples, 100), seed=(0, 0), log_partition=log_z
            ),
            [spec],
        )
        return endpoints

    def get_config(self):
        return {
            **super().get_config(),
            "layer_sizes": self.layer_sizes,
            "visible": self.visible,
            "rbm_kwargs": dict(self.rbm_kwargs),
            "log_prob_samples": self.log_prob_samples,
        }
