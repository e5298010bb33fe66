"""Deep belief nets: known answers by enumeration, greedy training, the rbm_kwargs API."""

import keras
import numpy as np
import pytest
from test_rbm import brute_log_p, params, random_rbm, states

from tfdgm import DBN, data


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_dbn_with_one_rbm_is_that_rbm():
    dbn = DBN([5, 3], seed=0)
    reference = random_rbm(5, 3, seed=9)
    for mine, theirs in zip(dbn.rbms[0].trainable_variables, reference.trainable_variables):
        mine.assign(theirs)
    x = states(5).astype("float32")
    np.testing.assert_allclose(dbn.log_prob(x), reference.log_prob(x), atol=1e-6)


def test_dbn_importance_sampled_log_prob_matches_enumeration():
    """p(v) = sum_{h1} p(v | h1) p_top(h1), p_top the top RBM's marginal over h1."""
    dbn = DBN([3, 2, 3], seed=0)
    for layer, rbm in enumerate(dbn.rbms):
        ref = random_rbm(rbm.num_visible, rbm.num_hidden, seed=10 + layer)
        for mine, theirs in zip(rbm.trainable_variables, ref.trainable_variables):
            mine.assign(theirs)
    W, b, _ = params(dbn.rbms[0])
    h1, log_top, _ = brute_log_p(dbn.rbms[1])
    v = states(3)
    logits = b + h1 @ W.T  # (h1 states, 3)
    log_cond = (v[:, None] * logits - np.logaddexp(0, logits)).sum(-1)  # (v, h1)
    exact = np.logaddexp.reduce(log_cond + log_top, axis=1)
    estimate = np.asarray(dbn.log_prob(v.astype("float32"), num_samples=3000, seed=(1, 2)))
    np.testing.assert_allclose(np.exp(estimate), np.exp(exact), atol=0.01)
    assert abs(np.exp(estimate).sum() - 1) < 0.02


def test_dbn_trains_greedily_one_layer_at_a_time(digits):
    dbn = DBN.for_dataset(digits, hidden_sizes=(16, 8), seed=0)
    dbn.compile_default()
    snapshots = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append([params(r)[0] for r in dbn.rbms])
    )
    start = [params(r)[0] for r in dbn.rbms]
    history = dbn.fit(digits.x_train[:256], epochs=4, batch_size=32, verbose=0, callbacks=[record])
    assert history.history["layer"] == [0.0, 0.0, 1.0, 1.0]
    # layer 1 is untouched while layer 0 trains, and layer 0 is frozen afterwards
    np.testing.assert_array_equal(snapshots[1][1], start[1])
    assert not np.array_equal(snapshots[1][0], start[0])
    np.testing.assert_array_equal(snapshots[3][0], snapshots[1][0])
    assert not np.array_equal(snapshots[3][1], snapshots[1][1])
    samples = np.asarray(dbn.sample(5, seed=(1, 2), num_steps=10))
    assert samples.shape == (5, 64) and set(np.unique(samples)) <= {0.0, 1.0}


def test_rbm_kwargs_reach_every_layer_and_survive_the_config():
    dbn = DBN([6, 4, 3], rbm_kwargs=dict(cd_k=3, persistent=True, num_chains=5), seed=0)
    assert [(r.cd_k, r.persistent, r.num_chains) for r in dbn.rbms] == [(3, True, 5)] * 2
    assert [r.visible for r in dbn.rbms] == ["bernoulli", "bernoulli"]
    clone = DBN.from_config(dbn.get_config())
    assert clone.get_config() == dbn.get_config()
    assert clone.rbms[1].fantasy_particles.shape == (5, 4)


def test_old_flat_rbm_arguments_still_work_with_a_warning():
    with pytest.warns(DeprecationWarning, match="rbm_kwargs"):
        dbn = DBN([6, 4], cd_k=2, sample_steps=7, seed=0)
    assert dbn.rbm_kwargs == {"cd_k": 2, "sample_steps": 7}
    assert dbn.rbms[0].cd_k == 2 and dbn.rbms[0].sample_steps == 7
    with pytest.raises(TypeError, match="rbm_kwargs"):
        DBN([6, 4], "bernoulli", 3)  # the old positional cd_k
    with pytest.raises(ValueError, match="num_hidden"):
        DBN([6, 4], rbm_kwargs=dict(num_hidden=3))


def test_gaussian_dbn_takes_visible_std_from_the_data():
    continuous = data.load("digits-continuous")
    dbn = DBN.for_dataset(continuous, hidden_sizes=(8, 4), seed=0)
    assert dbn.visible == "gaussian" and dbn.rbms[0].visible == "gaussian"
    assert dbn.rbms[0].visible_std == dbn.rbm_kwargs["visible_std"] > 0
    assert dbn.rbms[1].visible == "bernoulli"
    fixed = DBN.for_dataset(continuous, hidden_sizes=(8,), rbm_kwargs=dict(visible_std=0.3))
    assert fixed.rbms[0].visible_std == 0.3


def test_one_optimizer_per_layer_and_build_is_a_no_op():
    dbn = DBN([6, 4, 3], rbm_kwargs=dict(persistent=True, num_chains=4), seed=0)
    dbn.compile_default()
    assert list(dbn.optimizer_groups()) == ["rbm_0", "rbm_1"]
    for layer, rbm in enumerate(dbn.rbms):
        optimizer = dbn.optimizer_for(f"rbm_{layer}")
        assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.5
        assert {id(v) for v in dbn.optimizer_groups()[f"rbm_{layer}"]} == {
            id(v) for v in rbm.trainable_variables
        }
    assert dbn.density == "estimate"
    identities = [id(v) for v in dbn.weights]
    dbn.build((None, 6))
    assert [id(v) for v in dbn.weights] == identities


def test_early_stopping_does_not_end_training_at_a_layer_switch(digits):
    """The "layer" metric goes 0 -> 1 at the switch: without a reset, EarlyStopping in
    mode "min" would see no improvement for 3 epochs and stop after the first layer-1 epoch."""
    dbn = DBN.for_dataset(digits, hidden_sizes=(8, 4), seed=0)
    dbn.compile_default()
    stop = keras.callbacks.EarlyStopping(monitor="layer", mode="min", patience=3)
    history = dbn.fit(digits.x_train[:64], epochs=6, batch_size=32, verbose=0, callbacks=[stop])
    assert history.history["layer"] == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    assert stop.stopped_epoch == 0
    # a real plateau inside one layer still stops training
    stop = keras.callbacks.EarlyStopping(monitor="layer", mode="min", patience=1)
    history = dbn.fit(digits.x_train[:64], epochs=6, batch_size=32, verbose=0, callbacks=[stop])
    assert history.history["layer"] == [0.0, 0.0]
