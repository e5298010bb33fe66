"""Runs survive kills: SIGKILL (and Ctrl-C) at random instants, then the same run again.

The harness is ``benchmarks/soak_kills.py`` (its soak runs the same at larger scale):
training sessions forked from a server that imported TensorFlow once report their phase
over a pipe; each kill aims at a random batch, a random epoch's backup write or the final
save. Every rerun must resume from the last finished epoch, and every run must finish
with a strict-JSON metrics.json holding the whole history and a model.keras that loads
and scores the test split as metrics.json says.
"""

import json
import os
import sys

import numpy as np
import pytest

from tfdgm import atomic

BENCHMARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks")


@pytest.fixture(scope="module")
def soak():
    sys.path.insert(0, BENCHMARKS)
    try:
        import soak_kills
    finally:
        sys.path.remove(BENCHMARKS)
    yield soak_kills
    import multiprocessing.forkserver

    multiprocessing.forkserver._forkserver._stop()  # the server holds TensorFlow in memory


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork and SIGKILL")
def test_runs_survive_kills_at_random_instants(soak, tmp_path):
    # MADE: Adam's state, callbacks that switch orders by epoch; eager steps (no tracing)
    make = lambda i: soak.spec_for(str(tmp_path / f"run{i}"), "made", epochs=2, num_train=64)
    totals = soak.trials(make, kills=7, min_kills=21, max_trials=6, seed=13)
    print(totals)
    assert totals["kills"] >= 21 and totals["runs_finished_whole"] == totals["trials"], totals
    assert totals["batch"] >= 3 and totals["save"] >= 3 and totals["interrupt"] >= 2, totals


def test_atomic_files_leave_old_or_new_and_strict_json(tmp_path):
    path = tmp_path / "metrics.json"
    atomic.write_json(path, {"a": float("inf"), "b": np.float32(2.5), "c": (1, np.int64(2))})
    assert json.loads(path.read_text()) == {"a": None, "b": 2.5, "c": [1, 2]}
    with pytest.raises(RuntimeError), atomic.replacing(path) as tmp:
        open(tmp, "w").write("half")
        raise RuntimeError("killed while writing")
    assert json.loads(path.read_text())["b"] == 2.5  # the old content, no temporary left
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]
    export = tmp_path / "export"
    for content in ("old", "new"):
        with atomic.replacing(export) as tmp:
            os.makedirs(tmp)
            open(os.path.join(tmp, "f"), "w").write(content)
    assert (export / "f").read_text() == "new"
    # a kill between the two renames of a folder swap: the old folder is put back
    os.rename(export, f"{export}{atomic.OLD}123")
    open(tmp_path / f"model{atomic.TMP}9.keras", "w").close()
    assert atomic.remove_leftovers(tmp_path) == [f"model{atomic.TMP}9.keras"]
    assert sorted(os.listdir(tmp_path)) == ["export", "metrics.json"]


def test_backup_restores_the_exact_training_state(tmp_path):
    """Two epochs in one fit == one epoch, a new model restored from the backup, one more
    epoch: the same weights, so weights, Adam's moments and step and the random stream
    (the VAE samples z) all came back."""
    import keras
    from conftest import make_tiny

    from tfdgm.callbacks import BackupAndResume

    def fit(epochs, path):
        keras.utils.set_random_seed(0)  # the same initial weights each time
        model, dataset = make_tiny("vae")
        model.run_eagerly = True
        backup = BackupAndResume(path)
        model.fit(dataset.x_train, epochs=epochs, batch_size=32, shuffle=False, verbose=0,
                  callbacks=[backup])  # fmt: skip
        return model, backup

    straight, _ = fit(2, tmp_path / "a.npz")
    fit(1, tmp_path / "b.npz")
    resumed, backup = fit(2, tmp_path / "b.npz")
    assert backup.resumes == 1 and backup.epoch == 2 and len(backup.history["loss"]) == 2
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
