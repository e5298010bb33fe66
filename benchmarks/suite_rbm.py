"""RBM: tfdgm ``fit`` against a hand-written TensorFlow PCD-1 loop of the same network.

784-256 Bernoulli RBM, persistent CD-1 with 64 chains, plain SGD at 0.1 (scikit-learn's
rule), batch 64, binary data. A step of the hand loop runs five GEMMs of 2 V H flops per
example (v'W for the data, v'W and h W' for the chains' Gibbs sweep, v'W for the chains'
hidden probabilities, one [v; v']'[h; h'] weight gradient of two): 10 V H = 2.01 MFLOP per
example. tfdgm's step does the same plus its training metrics (on 16 examples).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from benchmarks import _timing
from benchmarks.suite_shapes import RBM_FLOP_PER_EXAMPLE, RBM_SHAPE, make_rbm_data
from tfdgm.data import without_autotune
from tfdgm.models.rbm import RBM

V, H, LR = RBM_SHAPE
BATCH, FLOP_PER_EXAMPLE, make_data = 64, RBM_FLOP_PER_EXAMPLE, make_rbm_data


def stream(x, batch=BATCH):
    return without_autotune(tf.data.Dataset.from_tensor_slices(x).repeat().batch(batch).prefetch(2))


def hand_loop(x: np.ndarray, k: int = 1):
    """PCD-1 by formula, one ``tf.function`` call per step (``k`` steps per call for
    ``k`` > 1)."""
    W = tf.Variable(tf.random.stateless_normal([V, H], (0, 0), stddev=0.01))
    b, c = tf.Variable(tf.zeros([V])), tf.Variable(tf.zeros([H]))
    chains = tf.Variable(tf.zeros([BATCH, V]))

    def update(v, seed):
        s1, s2 = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        h_data = tf.sigmoid(tf.matmul(v, W) + c)
        h = tf.cast(
            tf.random.stateless_uniform([BATCH, H], s1) < tf.sigmoid(tf.matmul(chains, W) + c),
            tf.float32,
        )
        p_v = tf.sigmoid(tf.matmul(h, W, transpose_b=True) + b)
        v_model = tf.cast(tf.random.stateless_uniform([BATCH, V], s2) < p_v, tf.float32)
        h_model = tf.sigmoid(tf.matmul(v_model, W) + c)
        chains.assign(v_model)
        both_v, both_h = tf.concat([v, -v_model], 0), tf.concat([h_data, h_model], 0)
        W.assign_add(LR / BATCH * tf.matmul(both_v, both_h, transpose_a=True))
        b.assign_add(LR * (tf.reduce_mean(v, 0) - tf.reduce_mean(v_model, 0)))
        c.assign_add(LR * (tf.reduce_mean(h_data, 0) - tf.reduce_mean(h_model, 0)))
        return W[0, 0]

    iterator = iter(stream(x))
    counter = iter(range(10**9))
    if k > 1:
        return _timing.calls_session(_timing.steps_per_call(update, k), iterator, k)
    step = tf.function(update)
    return _timing.loop_session(
        lambda: step(next(iterator), tf.constant([next(counter), 1])), lambda out: float(out)
    )


def library(x: np.ndarray, steps_per_execution=None):
    rbm = RBM(V, H, persistent=True, num_chains=BATCH, seed=0)
    steps = steps_per_execution or rbm.default_steps_per_execution
    rbm.compile(optimizer=keras.optimizers.SGD(LR), steps_per_execution=steps)
    return _timing.fit_session(rbm, stream(x), int(rbm.steps_per_execution))


def sessions(x, full: bool) -> dict:
    out = {
        "hand loop": hand_loop(x),
        "hand loop, 10 steps per call": hand_loop(x, k=10),
        "tfdgm fit (default)": library(x),
    }
    if full:
        out["tfdgm fit, steps_per_execution=1"] = library(x, 1)
    return out
