"""``tfdgm train --strategy multi-worker``: two worker processes on 127.0.0.1 train the
same model to the same losses and weights as one process with the same global batch.

The workers run this file as a script (``python tests/test_distribute.py STRATEGY OUT``),
each with its own ``TF_CONFIG``; the run goes through :class:`tfdgm.runs.Run` exactly as
the command line does (strategy made first, model built and compiled in its scope,
``fit`` on the run's pipeline, which splits every global batch of 64 into two of 32). The
reference is one process under ``MirroredStrategy`` (over the test session's CPU devices).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
GLOBAL_BATCH, EPOCHS = 64, 2


def train(strategy: str, out: str) -> dict:
    """A tiny MADE (no sampling in its training step) on 256 digits, 2 epochs of 4 steps;
    the per-epoch losses and a digest of the final weights."""
    from tfdgm import data, runs

    digits = data.load("digits").subset(256, 64)
    run = runs.Run.resolve(
        "made",
        digits,
        epochs=EPOCHS,
        batch_size=GLOBAL_BATCH,
        learning_rate=1e-2,
        hparams={"hidden_units": [16]},
        out=out,
        strategy=strategy,
    )
    run.build()
    os.makedirs(run.out, exist_ok=True)  # (a worker other than the chief: a temporary one)
    run.train(verbose=0)
    weights = [np.asarray(w, np.float64) for w in run.model.weights]
    return {
        "loss": [float(v) for v in run.history["loss"]],
        "weights": [float(np.sum(w)) for w in weights] + [float(np.sum(w * w)) for w in weights],
        "replicas": int(run.model.distribute_strategy.num_replicas_in_sync),
    }


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_local_workers_train_like_one_process(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        out = str(tmp_path / f"worker{index}")
        procs.append(
            subprocess.Popen(
                [sys.executable, os.path.join(HERE, "test_distribute.py"), "multi-worker", out],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    # meanwhile, one process (MirroredStrategy over two logical CPUs; TensorFlow's default
    # strategy takes another update path: 0.06-0.10% off after 8 Adam steps). Its own
    # process: strategies made earlier in a test session clash on collective keys.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    script = [sys.executable, os.path.join(HERE, "test_distribute.py")]
    procs.append(
        subprocess.Popen(
            [*script, "mirrored", str(tmp_path / "single")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:  # a failed or hung worker never outlives the test
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    *results, single = results
    assert single["replicas"] == 2
    for result in results:
        assert result["replicas"] == 2
        np.testing.assert_allclose(result["loss"], single["loss"], rtol=1e-5)
        np.testing.assert_allclose(result["weights"], single["weights"], rtol=1e-4, atol=1e-5)
    assert os.path.exists(tmp_path / "worker0" / "backup.npz")  # the chief writes the run
    assert not os.path.exists(tmp_path / "worker1")  # the other worker wrote elsewhere


def test_strategy_is_checked_before_anything_is_built():
    from tfdgm import runs

    with pytest.raises(runs.RunError, match="strategy must be one of"):
        runs.Run.resolve("made", strategy="parameter-server")
    env_has_config = "TF_CONFIG" in os.environ
    if not env_has_config:
        with pytest.raises(runs.RunError, match="TF_CONFIG"):
            runs.make_strategy("multi-worker")


if __name__ == "__main__":  # a worker: python tests/test_distribute.py STRATEGY OUT
    if sys.argv[1] == "mirrored":  # the reference: two replicas on two logical CPUs
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    print(json.dumps(train(sys.argv[1], sys.argv[2])))
