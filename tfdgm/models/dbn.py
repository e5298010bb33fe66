"""Deep belief nets: stacks of RBMs trained greedily, layer by layer.

Layers h_0 = v, h_1, ..., h_L. RBM l (a :class:`tfdgm.models.rbm.RBM`) models h_l with
hidden layer h_{l+1}; it is trained (CD-k / PCD-k) on samples h_l ~ q(h_l | h_{l-1})
passed up through the frozen RBMs below. The generative model is the top RBM over
(h_{L-1}, h_L) with directed sigmoid layers below it:

    p(h_0, ..., h_{L-1}) = p_top(h_{L-1}) prod_{l<L-1} p(h_l | h_{l+1}),

where p(h_l | h_{l+1}) is RBM l's p(v | h) and p_top(h) = exp(-F_top(h)) / Z_top. log p(v)
is importance-sampled with the recognition pass q(h_1..h_{L-1} | v) as the proposal.

:class:`DoubledRBMPretraining` is the DBM's variant of the greedy stack: RBMs with doubled
inputs at the bottom and doubled tops, composed into a deep Boltzmann machine.

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
from tfdgm.models.boltzmann import bernoulli_logits
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
    datasets=("digits", "digits-continuous", "mnist", "fashion-mnist", "mnist5k"),
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


# ---------------------------------------------------------------------------------------
# Greedy pre-training of deep Boltzmann machines (used by tfdgm.models.dbm.DBM)
def _binomial(count: int, logits, seed) -> tf.Tensor:
    """The sum of ``count`` independent Bernoulli(sigmoid(logits)) draws, float32."""
    return sum(bernoulli_logits(logits, s) for s in _split(seed, max(2, count))[:count])


class _PretrainingSchedule(keras.callbacks.Callback):
    """Greedy pre-training inside ``fit``: while the model has done fewer than
    ``pretrain_epochs`` x L pre-training epochs (a saved counter, so it survives save/load,
    resumption and several ``fit`` calls) epoch e trains RBM (done // pretrain_epochs);
    after the last one the RBMs are composed and joint training follows. At each switch
    the train step is retraced and the user's ``EarlyStopping`` is reset (each stage's
    loss is on its own scale); with ``verbose`` a line says which stage starts."""

    def __init__(self, dbm, verbose, callbacks=()):
        super().__init__()
        self.dbm, self.verbose = dbm, verbose
        self.early_stopping = [c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)]

    def on_train_begin(self, logs=None):
        self.stage = None

    def on_epoch_begin(self, epoch, logs=None):
        dbm = self.dbm
        layer = dbm.pretraining_layer()
        if layer == self.stage:
            return
        self.stage = layer
        if layer != dbm.active_layer:
            dbm.active_layer = layer
            dbm.make_train_function(force=True)  # retrace the train step for the new stage
            dbm.test_function = None
        for callback in self.early_stopping:
            callback.on_train_begin()
        if self.verbose:
            sizes, num_rbms = dbm.layer_sizes, dbm.num_layers - 1
            if layer < num_rbms:
                u, d = dbm.rbm_copies(layer)
                print(
                    f"DBM: pre-training RBM {layer + 1}/{num_rbms} ({sizes[layer]} x{u} -> "
                    f"{sizes[layer + 1]} x{d}) from epoch {epoch + 1}"
                )
            else:
                print(f"DBM: joint training of all {num_rbms} layers from epoch {epoch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        dbm = self.dbm
        if dbm.active_layer < dbm.num_layers - 1:
            dbm.pretrained_epochs.assign_add(1)
            if dbm.pretraining_layer() == dbm.num_layers - 1:
                dbm.compose_pretrained()


class DoubledRBMPretraining:
    """Greedy layer-wise pre-training of a deep Boltzmann machine (a mixin of
    :class:`tfdgm.models.dbm.DBM`, whose ``kernels``/``biases`` it trains).

    Greedy pre-training (Salakhutdinov & Hinton, 2009, section 3.1) is the first
    ``pretrain_epochs`` x L epochs of ``fit`` when ``pretrain_epochs`` > 0: RBM l over (h_l,
    h_{l+1}), with weights W_l, is trained by CD on h_l sampled up through the RBMs below. In
    the DBM a middle layer hears both neighbours, so the RBMs are trained with what they will
    miss doubled: the bottom RBM sees two copies of v (p(h_1 | v) = sigmoid(c + 2 W_0'v)), the
    top RBM two copies of h_L (p(h_{L-1} | h_L) = sigmoid(a + 2 W_{L-1} h_L)). With u visible
    and d hidden copies tied together only their sum s counts: the free energy is F(s) =
    -a's - d sum_j softplus(c + W's), the data is s = u h_l and the Gibbs steps draw Binomials.
    Composing keeps the bottom and top weights, halves the middle ones (each of their layers
    gets input from both sides) and averages the two biases each hidden layer below the top
    received, then restarts the persistent chains; joint training follows.

    The host provides ``kernels``, ``biases``, ``pretraining_biases`` (RBM l's own bias
    of h_l, l = 1..L-1), the int counter ``pretrained_epochs``, ``pretrain_epochs``,
    ``gibbs_steps``, ``num_layers``, ``layer_sizes``, ``active_layer`` and
    ``reset_chains``.

    References:
        Salakhutdinov & Hinton, Deep Boltzmann machines, AISTATS 2009.
        Salakhutdinov & Hinton, An efficient learning procedure for deep Boltzmann
        machines, Neural Computation 2012.
    """

    def load_own_variables(self, store):
        """Keras' loading hook: the stage follows the loaded pre-training counter."""
        super().load_own_variables(store)
        self.active_layer = self.pretraining_layer()

    def pretraining_layer(self) -> int:
        """The RBM that pre-training trains next, or L once it is done (or not asked for)."""
        num_rbms = self.num_layers - 1
        if not self.pretrain_epochs:
            return num_rbms
        return min(num_rbms, int(self.pretrained_epochs.numpy()) // self.pretrain_epochs)

    def rbm_copies(self, layer: int) -> tuple[int, int]:
        """(u, d): the copies of RBM ``layer``'s visible and hidden layer; u = 2 at the
        bottom and d = 2 at the top of a DBM with >= 2 hidden layers, else 1."""
        num_rbms = self.num_layers - 1
        if num_rbms == 1:
            return 1, 1
        return (2 if layer == 0 else 1), (2 if layer == num_rbms - 1 else 1)

    def _rbm_parameters(self, layer: int) -> list:
        """RBM ``layer``'s (W_l, visible bias, hidden bias) variables: the visible bias is
        b_0 at the bottom, else the RBM's own; the hidden one is b_{l+1}."""
        visible = self.biases[0] if layer == 0 else self.pretraining_biases[layer - 1]
        return [self.kernels[layer], visible, self.biases[layer + 1]]

    def rbm_free_energy(self, layer: int, s) -> tf.Tensor:
        """F(s) = -a's - d sum_j softplus(c + W's) of RBM ``layer`` at s, the sum of its u
        visible copies, ``[batch]``."""
        w, a, c = self._rbm_parameters(layer)
        d = self.rbm_copies(layer)[1]
        return -tf.linalg.matvec(s, a) - d * tf.reduce_sum(tf.math.softplus(c + s @ w), -1)

    def propagate_up(self, x, layer: int, seed=None) -> tf.Tensor:
        """h_layer sampled up through the RBMs below it, h_{l+1} ~ sigmoid(c + u W_l'h_l)."""
        h = tf.cast(x, tf.float32)
        seeds = _split(self._seed(seed), max(2, layer))
        for k in range(layer):
            w, _, c = self._rbm_parameters(k)
            h = bernoulli_logits(c + self.rbm_copies(k)[0] * (h @ w), seeds[k])
        return tf.stop_gradient(h)

    def _rbm_loss(self, layer: int, x, seed):
        """CD-``gibbs_steps`` loss of RBM ``layer``: mean F(u h) - mean F(s_model), with
        h from ``x`` sent up and s_model after Gibbs steps from the data."""
        seed_up, seed_chain = _split(seed)
        w, a, c = self._rbm_parameters(layer)
        u, d = self.rbm_copies(layer)
        s = u * self.propagate_up(x, layer, seed_up)

        def sweep(step, s_model):
            seed_h, seed_v = _split(tf.random.experimental.stateless_fold_in(seed_chain, step))
            t = _binomial(d, c + s_model @ w, seed_h)
            return step + 1, _binomial(u, a + tf.matmul(t, w, transpose_b=True), seed_v)

        s_model = tf.while_loop(lambda step, _: step < self.gibbs_steps, sweep, (0, s))[1]
        s_model = tf.stop_gradient(s_model)
        loss = tf.reduce_mean(self.rbm_free_energy(layer, s)) - tf.reduce_mean(
            self.rbm_free_energy(layer, s_model)
        )
        mean = tf.sigmoid(a + d * tf.matmul(tf.sigmoid(c + s @ w), w, transpose_b=True))
        error = tf.reduce_mean(tf.reduce_sum(tf.square(s / u - mean), -1))
        values = {"loss": loss, "reconstruction_error": tf.stop_gradient(error)}
        return loss, {**values, "layer": tf.constant(float(layer))}

    def compose_pretrained(self) -> None:
        """The DBM from the pre-trained RBMs: W_l kept at the bottom and top, halved in the
        middle; b_l (0 < l < L) the mean of the two RBMs' biases; chains restarted."""
        num_rbms = self.num_layers - 1
        for k in range(1, num_rbms - 1):
            self.kernels[k].assign(self.kernels[k] / 2)
        for k in range(1, num_rbms):
            self.biases[k].assign((self.biases[k] + self.pretraining_biases[k - 1]) / 2)
        self.reset_chains()

    def fit_callbacks(self, epochs: int, initial_epoch: int, verbose, callbacks: list) -> list:
        """The pre-training schedule (when ``pretrain_epochs`` > 0)."""
        return [_PretrainingSchedule(self, verbose, callbacks)] if self.pretrain_epochs else []
