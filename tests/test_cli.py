"""The command line: list, train (a short real run), sample from the export, bad names."""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

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


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    """`list` and `train MODEL --help` keep their text in a cache: a fresh one per test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_list_names_every_model_and_dataset(capsys, tmp_path):
    for _ in range(2):  # computed, then read from the cache
        assert cli.main(["list"]) == 0
        out = capsys.readouterr().out
        for name in registry.names():
            assert name in out
        assert "digits" in out and "moons" in out
    assert len(list((tmp_path / "cache" / "tfdgm").glob("list-*.txt"))) == 1


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


def _refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def _usage_error(argv, capsys):
    """Exit status and stderr of ``tfdgm argv`` run in this process."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


#: (arguments of `tfdgm train vae`, the start of what its one-line error says)
BAD_TRAIN_ARGUMENTS = [
    (["--epochs", "0"], "--epochs: expected an integer >= 1, got '0'"),
    (["--epochs", "-1"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--learning-rate", "0"], "--learning-rate: expected a number > 0"),
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--learning-rate", "nan"], "--learning-rate"),
    (["--epochs", "2.5"], "--epochs"),
    (["--seed", "-1"], "--seed: expected an integer >= 0"),
    (["--hparam", "latent_dim"], "expected KEY=VALUE, got 'latent_dim'"),
    (["--hparam", "=3"], "expected KEY=VALUE"),
    (["--hparam", "no_such=3"], "vae has no hyperparameter 'no_such'; its constructor"),
    (["--hparam", "latent_dim=abc"], "latent_dim must be a non-negative integer"),
    (["--hparam", "latent_dim=2.5"], "latent_dim must be a non-negative integer"),
    (["--hparam", "latent_dim=-1"], "latent_dim must be a non-negative integer"),
    (["--hparam", "hidden_units=[-3]"], "hidden_units must be a list of non-negative"),
    (["--hparam", "hidden_units=8"], "hidden_units must be a list"),
    (["--hparam", "beta=true"], "beta must be a finite number"),
    (["--hparam", "beta=NaN"], "beta must be finite"),
    (["--hparam", 'architecture="rnn"'], "cannot build vae(latent_dim=8"),
]


def test_bad_numbers_and_hparams_are_one_line_exit_2_and_no_folder(capsys, tmp_path):
    # one test for all cases: each costs ~10 ms, a test's set-up and tear-down 0.5 s
    out = tmp_path / "run"
    for args, message in BAD_TRAIN_ARGUMENTS:
        code, err = _usage_error(["train", "vae", "--out", str(out), *args], capsys)
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
        assert message in err, (args, err)
        if "constructor" in message:
            assert "latent_dim" in err and "hidden_units" in err and "beta" in err
        assert not out.exists(), args


def test_unwritable_out_and_bad_sample_counts_are_usage_errors(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = _usage_error(["train", "vae", "--out", str(blocker / "run")], capsys)
    assert code == 2 and "is a file, not a folder" in err and len(err.splitlines()) == 1, err
    for n in ("0", "-3", "x"):
        code, err = _usage_error(["sample", str(tmp_path), "-n", n], capsys)
        assert code == 2 and "--num-samples" in err and len(err.splitlines()) == 1, err


def test_train_model_help_shows_its_defaults_and_hyperparameters(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "vae", "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    entry = registry.get("vae")
    assert f"epochs={entry.training['epochs']}" in out and "learning_rate=0.001" in out
    for name in ("latent_dim", "hidden_units", "beta", "num_importance_samples"):
        assert name in out


def test_a_diverged_run_exits_3_with_strict_json_and_no_model(capsys, tmp_path):
    out = tmp_path / "run"
    argv = ["train", "vae", "--epochs", "2", "--learning-rate", "1e30", "--out", str(out)]
    code = cli.main([*argv, "--hparam", "latent_dim=2", "--hparam", "hidden_units=[8]"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DIVERGED and "vae diverged: " in err and "at epoch 1" in err, err
    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=_refuse)
    assert metrics["diverged"]["metric"] and metrics["diverged"]["value"] in ("nan", "inf")
    assert not metrics["complete"] and metrics["epochs"] == 0
    assert not (out / "model.keras").exists() and not (out / "export").exists()


def test_help_and_cached_texts_answer_without_tensorflow(capsys, tmp_path):
    """The console script's module (``tfdgm_cli``) answers ``--help``, ``list`` and
    ``train MODEL --help`` (their texts cached by a first call) without importing
    TensorFlow or the tfdgm package, and prints nothing on stderr."""
    assert cli.main(["list"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["train", "vae", "--help"])
    capsys.readouterr()
    script = (
        "import sys, tfdgm_cli\n"
        "for argv in (['--help'], ['list'], ['train', 'vae', '--help']):\n"
        "    try:\n"
        "        tfdgm_cli.main(argv)\n"
        "    except SystemExit as stop:\n"
        "        assert stop.code == 0, argv\n"
        "heavy = ('tensorflow', 'keras', 'tfdgm')\n"
        "print('imported:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "imported: []" in proc.stdout
    assert "latent_dim" in proc.stdout and "vae" in proc.stdout and "usage: tfdgm" in proc.stdout


def test_the_help_cache_is_keyed_on_every_source_of_its_texts():
    """The cached texts of `list` and `train MODEL --help` are made from the registry, the
    run settings and the models' classes: every registered model's classes (base classes
    included) and the functions that write the texts are defined in cli.HELP_SOURCES, so
    an edit that can change a text changes the cache key; networks, checks and training
    are not among them (an edit there keeps the cache)."""
    import inspect

    from tfdgm import runs, settings

    package = os.path.dirname(os.path.abspath(cli.__file__))
    keyed = set(cli._help_source_files(package))
    for name in registry.names():
        for cls in registry.get(name).cls.__mro__:
            if cls.__module__.split(".")[0] == "tfdgm":
                assert inspect.getsourcefile(cls) in keyed, (name, cls)
    for fn in (runs.listing, settings.describe, settings.model_arguments, registry.register):
        assert inspect.getsourcefile(fn) in keyed, fn
    for module in ("nets.py", "checks.py", "training.py", "inputs.py", "plotting.py"):
        assert os.path.join(package, module) not in keyed


def test_dataset_defaults_are_the_default_run_on_their_dataset(capsys, monkeypatch):
    """``dataset_defaults`` change the default run on their dataset only, the command line
    still wins, ``train NAME --help`` shows them, and the registry refuses them for a
    dataset the entry does not list or for an unknown setting."""
    from tfdgm import runs, settings

    # the settings only: no data is read
    monkeypatch.setattr(runs.data, "load", lambda name: SimpleNamespace(name=name))
    vae = runs.Run.resolve("vae", "mnist5k")
    assert vae.hparams["architecture"] == "conv" and vae.epochs == 50
    assert "architecture" not in runs.Run.resolve("vae", "digits").hparams
    assert runs.Run.resolve("rbm", "mnist5k").hparams["num_hidden"] == 500
    assert runs.Run.resolve("realnvp", "mnist5k-continuous").learning_rate == 5e-4
    assert runs.Run.resolve("realnvp", "digits-continuous").learning_rate is None
    for name in registry.names():
        entry = registry.get(name)
        for dataset, changes in entry.dataset_defaults.items():
            settings.check_hparams(entry, changes.get("hparams", {}))  # the model takes them
            run = runs.Run.resolve(name, dataset)
            for key, value in changes.items():
                if key == "hparams":
                    assert value.items() <= run.hparams.items(), (name, dataset)
                elif key in ("epochs", "batch_size", "learning_rate"):
                    assert getattr(run, key) == value, (name, dataset, key)
    wins = runs.Run.resolve("vae", "mnist5k", epochs=2, hparams={"architecture": "mlp"})
    assert wins.epochs == 2 and wins.hparams["architecture"] == "mlp"

    with pytest.raises(SystemExit):
        cli.main(["train", "vae", "--help"])
    shown = "defaults on mnist5k: epochs=50, architecture='conv'"
    assert shown in capsys.readouterr().out

    class Unlisted:
        pass

    for changes, message in (
        ({"mnist5k": dict(epochs=2)}, "not among"),
        ({"digits": dict(epoch=2)}, "unknown run settings"),
    ):
        with pytest.raises(ValueError, match=message):
            registry.register(
                "unlisted", Unlisted, family="x", datasets=("digits",), dataset_defaults=changes
            )
    assert "unlisted" not in registry.MODELS


def test_the_mnist5k_page_commands_resolve(monkeypatch):
    """Every `tfdgm train` command of docs/mnist5k.md parses and resolves (model, dataset
    and hyperparameters accepted); the rows that say "the default" run the plain command."""
    import re
    import shlex

    from tfdgm import runs

    monkeypatch.setattr(runs.data, "load", lambda name: SimpleNamespace(name=name))
    page = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "mnist5k.md")
    text = open(page).read()
    commands = re.findall(r"`(tfdgm train [a-z][^`\n]*)`", text)
    assert len(commands) >= 15
    for command in commands:
        args = cli._parser().parse_args(shlex.split(command)[1:])
        run = runs.Run.resolve(
            args.model, args.dataset, epochs=args.epochs, learning_rate=args.learning_rate,
            hparams=dict(args.hparam),
        )  # fmt: skip
        assert run.dataset.name.startswith("mnist5k"), command
    for row in re.findall(r"^\| \*\*.*the default\*\* \| `([^`]*)`", text, re.M):
        assert re.fullmatch(r"tfdgm train [a-z-]+ --dataset mnist5k[a-z-]*", row), row
