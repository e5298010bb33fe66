"""The command line: list, train (a short real run), sample from the export, bad names."""

import json
import subprocess
import sys

import pytest

from tfdgm import cli, registry


def _run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tfdgm.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_list_names_every_model_and_dataset(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in registry.names():
        assert name in out
    assert "digits" in out and "moons" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "no-such-model"], "unknown model"),
        (["train", "vae", "--dataset", "no-such-data"], "unknown dataset"),
        (["sample", "/no/such/run"], "not a run folder"),
    ],
)
def test_bad_names_exit_2_with_the_choices(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    if "unknown" in message:
        assert "choose one of" in err


def test_train_then_sample(tmp_path):
    run = tmp_path / "run"
    proc = _run(
        "train",
        "vae",
        "--epochs",
        "2",
        "--out",
        str(run),
        "--hparam",
        "latent_dim=2",
        "--hparam",
        "hidden_units=[32]",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in (
        "metrics.json",
        "config.json",
        "samples.png",
        "reconstructions.png",
        "training_curve.png",
        "model.keras",
        "export",
    ):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["examples_per_s"] > 0
    assert 0 < metrics["test_nll_nats"] < 64 * 0.7  # below a uniform model's 44.4 nats
    assert metrics["test_bits_per_dim"] == pytest.approx(
        metrics["test_nll_nats"] / (64 * 0.6931471805599453)
    )
    proc = _run("sample", str(run), "-n", "16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "samples_export.png").exists()
