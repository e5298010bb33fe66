"""RealNVP, MAF, MADE, GAN and the Helmholtz machine: tfdgm ``fit`` against a hand loop.

Each family's hand loop trains *the same model object's networks* (its conditioners,
masked MLP, generator and discriminator, or generative and recognition layers) with the
objective written out as formulas, a fresh optimizer from the model's own
``default_optimizer`` at its ``default_learning_rate`` (what ``compile_default`` uses),
one ``tf.function`` per step over the same ``tf.data`` stream; ``fit`` runs the registry's
default network for the family, compiled with ``compile_default()``. Before it is timed,
every hand loop's objective is checked against the model's own on a batch (so the two
compute the same thing).

FLOP counts are 6 x the multiply-adds of the networks' forward passes per example and
update (forward, input and weight gradients), 2 x for a pass without gradients; see
``FLOP_PER_EXAMPLE``.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from benchmarks import _timing
from benchmarks.suite_shapes import make_moons
from tfdgm import registry, settings
from tfdgm.data import without_autotune

#: (registry name, dataset its default network is built for)
FAMILIES = {
    "realnvp": "moons",
    "maf": "moons",
    "made": "digits",
    "gan": "8gaussians",
    "helmholtz": "digits",
    "ddpm": "digits",  # sampling time only
}


def _macs(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def flop_per_example(name: str, model) -> float:
    """Training flops per example of one update (see the module docstring)."""
    if name in ("realnvp", "maf"):
        d = model.flow.num_masked if name == "realnvp" else model.event_size
        out = 2 * (model.event_size - d) if name == "realnvp" else 2 * model.event_size
        return 6 * model.num_layers * _macs([d, *model.hidden_units, out])
    if name == "made":
        return 6 * _macs([model.event_size, *model.hidden_units, 2 * model.event_size])
    if name == "gan":
        g = _macs([model.latent_dim, *model.hidden_units, model.event_size])
        d = _macs([model.event_size, *model.hidden_units, 1])
        # critic step: G forward, V forward and backward on real and fake; generator step:
        # G and V forward, V's input gradient, G backward
        return 2 * (g + 2 * 3 * d) + 2 * (3 * g + 2 * d + d)
    if name == "helmholtz":
        m = _macs(model.layer_sizes)
        # wake: q forward (samples), p forward + weight gradient; sleep: the mirror image
        return 2 * (m + 2 * m) * 2
    raise KeyError(name)


def default_model(name: str, seed: int = 0):
    """The registry's default model of ``name`` for its benchmark dataset."""
    from tfdgm import data

    entry = registry.get(name)
    _, hparams = settings.entry_settings(entry)
    dataset = data.load(FAMILIES[name])
    build = entry.build or entry.cls.for_dataset
    return build(dataset, seed=seed, **hparams), dataset


def make_data(name: str, n: int) -> np.ndarray:
    """``n`` training examples: two moons (NumPy, as the normflows peer uses), else the
    benchmark dataset's training split repeated to ``n`` rows."""
    if name in ("realnvp", "maf"):
        return make_moons(n)
    _, dataset = default_model(name)
    x = dataset.x_train.astype(np.float32)
    return np.resize(x, (n, *x.shape[1:]))


def stream(x: np.ndarray, batch: int) -> tf.data.Dataset:
    return without_autotune(tf.data.Dataset.from_tensor_slices(x).repeat().batch(batch).prefetch(2))


# ---------------------------------------------------------------- objectives by formula
def _flow_log_prob(model):
    """log p(x) of a RealNVP/MAF by its algebra: z = f^-1(x) layer by layer (coupling:
    z2 = (x2 - t(x1)) exp(-s(x1)); MAF: z = (x - t(x)) exp(-s(x))), reversals between
    layers, log p = log N(z; 0, I) - sum of every s."""
    nets, d, last = model.flow.transforms, model.flow.num_masked, model.num_layers - 1
    half_log_2pi = 0.5 * model.event_size * math.log(2 * math.pi)

    def log_prob(h):
        log_det = 0.0
        for k, net in enumerate(nets):
            if model.kind == "realnvp":
                t, s = net(h[:, :d])
                h = tf.concat([h[:, :d], (h[:, d:] - t) * tf.exp(-s)], -1)
            else:
                t, s = net(h)
                h = (h - t) * tf.exp(-s)
            log_det -= tf.reduce_sum(s, -1)
            h = tf.reverse(h, [-1]) if k < last else h
        return -0.5 * tf.reduce_sum(tf.square(h), -1) - half_log_2pi + log_det

    return log_prob


def _bernoulli_log_prob(x, logits):
    logits = tf.broadcast_to(logits, tf.shape(x))  # the prior's logits: one row for all
    return -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(x, logits), -1)


def _sample_bernoulli(logits, seed):
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed)
    return tf.cast(uniform < tf.sigmoid(logits), tf.float32)


def hand_update(name: str, model):
    """``(update(x, seed) -> loss, check(x) -> (hand loss, model loss))``: one update of the
    model's networks with the objective by formula and optimizers from the model's
    ``default_optimizer``."""
    rate = model.default_learning_rate
    groups = model.optimizer_groups()
    optimizers = {g: model.default_optimizer(g, rate) for g in groups}
    for g, variables in groups.items():
        optimizers[g].build(variables)

    def minimize(group, tape, loss):
        variables = groups[group]
        optimizers[group].apply_gradients(zip(tape.gradient(loss, variables), variables))

    if name in ("realnvp", "maf"):
        log_prob = _flow_log_prob(model)
        loss_of = lambda x, seed: -tf.reduce_mean(log_prob(x))

    elif name == "made":
        net = model.network

        def loss_of(x, seed):
            logits = net(x)  # (batch, D, 2): binary levels are the inputs themselves
            labels = tf.cast(x, tf.int32)
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            return tf.reduce_mean(tf.reduce_sum(nll, -1))

    elif name == "helmholtz":
        gen, rec, prior = model.generative, model.recognition, model.prior_logits
        seeds = lambda seed, n: tf.unstack(tf.random.experimental.stateless_split(seed, n))

        def loss_of(x, seed):
            s = seeds(seed, 2 * len(rec) + 1)
            awake = [x]  # wake: h ~ q(h | x), generative layers fit log p(x, h)
            for i, layer in enumerate(rec):
                awake.append(_sample_bernoulli(layer(awake[-1]), s[i]))
            log_p = _bernoulli_log_prob(awake[-1], prior)
            for i, layer in enumerate(gen):
                log_p += _bernoulli_log_prob(awake[i], layer(awake[i + 1]))
            top = tf.broadcast_to(prior, [tf.shape(x)[0], prior.shape[0]])
            dream = [_sample_bernoulli(top, s[-1])]  # sleep: (x, h) ~ p, q fits log q(h | x)
            for i in reversed(range(len(gen))):
                dream.insert(0, _sample_bernoulli(gen[i](dream[0]), s[len(rec) + i]))
            log_q = 0.0
            for i, layer in enumerate(rec):
                log_q += _bernoulli_log_prob(dream[i + 1], layer(dream[i]))
            return -tf.reduce_mean(log_p) - tf.reduce_mean(log_q)

    elif name == "gan":
        G, D, latent = model.generator, model.discriminator, model.latent_dim

        def losses(x, seed):
            s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            batch = tf.shape(x)[0]
            fake = tf.stop_gradient(G(tf.random.stateless_normal([batch, latent], s1)))
            with tf.GradientTape() as tape:  # V: log D(x) + log(1 - D(G(z)))
                d_loss = tf.reduce_mean(tf.math.softplus(-D(x)[:, 0])) + tf.reduce_mean(
                    tf.math.softplus(D(fake)[:, 0])
                )
            d_tape = tape
            with tf.GradientTape() as tape:  # G: non-saturating -log D(G(z))
                z = tf.random.stateless_normal([batch, latent], s2)
                g_loss = tf.reduce_mean(tf.math.softplus(-D(G(z))[:, 0]))
            return d_tape, d_loss, tape, g_loss

        def update(x, seed):
            s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
            d_tape, d_loss, _, _ = losses(x, s1)
            minimize("discriminator", d_tape, d_loss)
            _, _, g_tape, g_loss = losses(x, s2)
            minimize("generator", g_tape, g_loss)
            return d_loss

        def check(x):
            z = tf.random.stateless_normal([len(x), latent], (0, 0))
            hand = float(tf.reduce_mean(tf.math.softplus(-D(G(z))[:, 0])))
            own = float(model.generator_objective(model.generate(z)))
            return hand, own

        return update, check
    else:
        raise KeyError(name)

    def update(x, seed):
        with tf.GradientTape() as tape:
            loss = loss_of(x, seed)
        minimize("model", tape, loss)
        return loss

    def check(x):
        if name == "helmholtz":  # compare log p(x, h) of the same h
            layers, _ = model.recognize(x, (0, 1))
            hand = -float(tf.reduce_mean(_bernoulli_log_prob(layers[-1], model.prior_logits)))
            for i, layer in enumerate(model.generative):
                hand -= float(tf.reduce_mean(_bernoulli_log_prob(layers[i], layer(layers[i + 1]))))
            return hand, -float(tf.reduce_mean(model.log_joint(layers)))
        return float(loss_of(tf.constant(x), None)), float(model.objective(x)["loss"])

    return update, check


# ---------------------------------------------------------------- sessions
def hand_loop(name: str, x: np.ndarray, batch: int, k: int = 1):
    """The hand loop session of family ``name``, ``k`` steps per ``tf.function`` call
    (its objective checked against the model's first)."""
    model, _ = default_model(name)
    update, check = hand_update(name, model)
    hand, own = check(x[:256])
    if not math.isclose(hand, own, rel_tol=1e-4, abs_tol=1e-4):
        raise AssertionError(f"{name}: hand objective {hand} != the model's {own}")
    return _timing.calls_session(_timing.steps_per_call(update, k), iter(stream(x, batch)), k)


def library(name: str, x: np.ndarray, batch: int, jit: bool = False, steps_per_execution=None):
    """The registry's default model of ``name``, ``compile_default``, ``fit``."""
    model, _ = default_model(name)
    kwargs = {} if steps_per_execution is None else {"steps_per_execution": steps_per_execution}
    model.compile_default(jit_compile=jit, **kwargs)
    return _timing.fit_session(model, stream(x, batch), int(model.steps_per_execution))


def sessions(name: str, x: np.ndarray, batch: int, full: bool = False) -> dict:
    out = {
        "hand loop": hand_loop(name, x, batch),
        "hand loop, 10 steps per call": hand_loop(name, x, batch, k=10),
        "tfdgm fit (default)": library(name, x, batch),
    }
    if full:
        out["tfdgm fit, steps_per_execution=1"] = library(name, x, batch, steps_per_execution=1)
        out["tfdgm fit (default) + XLA"] = library(name, x, batch, jit=True)
    return out
