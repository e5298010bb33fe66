"""tfdgm.runs: settings resolution, one tiny real run (each file once, one NLL), the NLL."""

import dataclasses
import json
import math
import os
from types import SimpleNamespace

import keras
import matplotlib.figure
import numpy as np
import pytest

from tfdgm import data, registry, runs

FILES = ("config.json", "metrics.json", "samples.png", "training_curve.png", "model.keras")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 1-epoch tiny VAE on 256 digits, recording every file written and every NLL pass."""
    digits = data.load("digits")
    subset = digits.subset(256, 128)
    run = runs.Run.resolve(
        "vae",
        subset,
        epochs=1,
        batch_size=64,
        hparams=registry.get("vae").tiny,
        out=str(tmp_path_factory.mktemp("run")),
    )
    written, nll_passes = [], []
    savefig, write_json = matplotlib.figure.Figure.savefig, runs._write_json
    score = runs.held_out_log_prob
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            matplotlib.figure.Figure,
            "savefig",
            lambda fig, path, **kw: written.append(str(path)) or savefig(fig, path, **kw),
        )
        patch.setattr(runs, "_write_json", lambda p, o: written.append(p) or write_json(p, o))
        patch.setattr(
            runs, "held_out_log_prob", lambda *a, **k: nll_passes.append(1) or score(*a, **k)
        )
        metrics = run.execute(verbose=0)
    return run, metrics, written, nll_passes


def test_run_writes_each_file_once(tiny_run):
    run, _, written, nll_passes = tiny_run
    out = run.out
    names = [p[len(out) + 1 :] for p in written]
    assert len(names) == len(set(names)), names
    for name in FILES + ("reconstructions.png",):
        assert os.path.exists(os.path.join(out, name)), name
    assert os.path.isdir(os.path.join(out, "export"))
    assert len(nll_passes) == 1


def test_metrics_have_one_nll_and_the_density_kind(tiny_run):
    run, metrics, _, _ = tiny_run
    on_disk = json.loads(open(f"{run.out}/metrics.json").read())
    assert on_disk["density"] == metrics["density"] == runs.density_kind(run.model)
    assert metrics["density"] != "none"
    likelihood_keys = [k for k in on_disk if "nll" in k or "log_likelihood" in k]
    assert likelihood_keys == ["test_nll_nats"]
    assert on_disk["test_bits_per_dim"] == pytest.approx(
        on_disk["test_nll_nats"] / (64 * math.log(2))
    )
    assert 0 < on_disk["test_nll_nats"] < 64 * math.log(2)  # below the uniform model
    assert on_disk["epochs"] == 1 and set(on_disk["test"]) >= {"loss"}
    config = json.loads(open(f"{run.out}/config.json").read())
    assert config["hparams"]["latent_dim"] == registry.get("vae").tiny["latent_dim"]
    assert config["learning_rate"] == pytest.approx(1e-3)


def test_nll_is_deterministic_for_the_fixed_seed(tiny_run):
    run, metrics, _, _ = tiny_run
    x = run.dataset.x_test
    first = runs.held_out_log_prob(run.model, x)
    assert -first.mean() == pytest.approx(metrics["test_nll_nats"], rel=1e-6)
    np.testing.assert_array_equal(runs.held_out_log_prob(run.model, x), first)
    other_seed = runs.held_out_log_prob(run.model, x, seed=(1, 0))
    assert not np.allclose(first, other_seed)  # the seed is what makes it reproducible
    reloaded = keras.saving.load_model(f"{run.out}/model.keras")
    np.testing.assert_allclose(runs.held_out_log_prob(reloaded, x), first, rtol=1e-4, atol=1e-4)


class _StubModel:
    """Just what Run.metrics touches: evaluate, a density, summary_metrics."""

    density = "exact"
    has_density = True
    event_size = 64

    def evaluate(self, *args, **kwargs):
        return {"loss": 2.0}

    def log_prob(self, x, seed=None):
        return np.full(len(x), -2.0, np.float32)

    def summary_metrics(self, dataset):
        return {"test_log_likelihood": -3.0, "kl_true_model": 0.5}


def test_metrics_keep_the_runs_nll_and_the_discrete_bits_per_dim():
    digits = data.load("digits")
    dequantized = dataclasses.replace(digits, name="digits-continuous", num_levels=17)
    run = runs.Run.resolve("vae", "digits", epochs=1)
    run.dataset, run.model = dequantized, _StubModel()
    with pytest.warns(UserWarning, match="test_log_likelihood"):
        metrics = run.metrics()
    assert metrics["test_nll_nats"] == pytest.approx(2.0)
    assert "test_log_likelihood" not in metrics and metrics["kl_true_model"] == 0.5
    d = 64
    assert metrics["test_bits_per_dim"] == pytest.approx(
        (2.0 + d * math.log(17)) / (d * math.log(2))
    )
    assert metrics["num_levels"] == 17


def test_nll_metrics_formula():
    assert runs.nll_metrics([0.0, 0.0], 3, 8) == pytest.approx(
        {"test_nll_nats": 0.0, "test_bits_per_dim": 3.0}
    )
    assert runs.nll_metrics([-math.log(2)] * 4, 1)["test_bits_per_dim"] == pytest.approx(1.0)


def test_entry_settings_read_old_and_new_registry_fields():
    old = SimpleNamespace(defaults=dict(epochs=5, learning_rate=0.1, hparams=dict(a=1)))
    assert runs.entry_settings(old) == ({"epochs": 5, "learning_rate": 0.1}, {"a": 1})
    new = SimpleNamespace(training=dict(epochs=7, batch_size=8), hparams=dict(b=2))
    assert runs.entry_settings(new) == ({"epochs": 7, "batch_size": 8}, {"b": 2})


def test_resolve_merges_overrides_over_the_entry():
    entry = registry.get("vae")
    training, hparams = runs.entry_settings(entry)
    run = runs.Run.resolve("vae", epochs=3, hparams={"latent_dim": 5}, jit_compile=True)
    assert run.epochs == 3 and run.jit_compile is True
    assert run.batch_size == training.get("batch_size", 64)
    assert run.hparams == {**hparams, "latent_dim": 5}
    assert run.dataset.name == entry.datasets[0] and run.out.endswith(f"vae-{entry.datasets[0]}")
    with pytest.raises(runs.RunError, match="unknown model"):
        runs.Run.resolve("no-such-model")
    with pytest.raises(runs.RunError, match="does not train on"):
        runs.Run.resolve("vae", "checkerboard")


def test_listing_names_family_density_and_datasets():
    text = runs.listing()
    for name in registry.names():
        entry = registry.get(name)
        line = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert entry.family in line
        assert runs.density_kind(entry.cls) in line or getattr(entry, "density", "") in line


def test_resolve_refuses_settings_out_of_range():
    for kwargs, message in [
        (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
        (dict(batch_size=-5), "batch_size must be an integer >= 1"),
        (dict(learning_rate=0.0), "learning_rate must be a number > 0"),
        (dict(seed=-1), "seed must be an integer >= 0"),
        (dict(hparams={"latent_dim": -1}), "latent_dim must be a non-negative integer"),
        (dict(hparams={"no_such": 1}), "its constructor arguments are: latent_dim"),
    ]:
        with pytest.raises(runs.RunError, match=message):
            runs.Run.resolve("vae", **kwargs)


def test_a_backup_of_another_run_or_unreadable_is_refused(tmp_path):
    run = runs.Run.resolve("vae", epochs=1, out=str(tmp_path), hparams={"latent_dim": 3})
    info = dict(model="vae", dataset="digits", hparams={"latent_dim": 5}, precision="float32")
    state = dict(format=1, epoch=2, history={}, train_time_s=0, resumes=0, info=info, paths=[])
    np.savez(tmp_path / "backup.npz", state=np.array(json.dumps(state)))
    with pytest.raises(runs.RunError, match="backup of another run .hparams differ"):
        run.open_backup()
    (tmp_path / "backup.npz").write_bytes(b"not a backup")
    with pytest.raises(runs.RunError, match="cannot read the backup"):
        run.open_backup()


def test_the_backup_holds_the_training_state_and_a_strict_json_history(tiny_run, tmp_path):
    """The variables read in one call are the model's, in training_state's order; a
    non-finite value in the logs is stored as null, and read back as None."""
    from tfdgm.callbacks import BackupAndResume, training_state

    model = tiny_run[0].model
    backup = BackupAndResume(tmp_path / "b.npz")
    backup.set_model(model)
    backup.on_train_begin()
    for epoch, logs in enumerate(
        [{"loss": 1.5, "val_loss": math.inf}, {"loss": 1.25, "val_loss": 2.0}]
    ):
        backup.on_epoch_begin(epoch)
        backup.on_epoch_end(epoch, logs)
    backup.on_train_end()
    stored = BackupAndResume(tmp_path / "b.npz")
    assert stored.epoch == 2
    assert stored.history == backup.history == {"loss": [1.5, 1.25], "val_loss": [None, 2.0]}
    variables = training_state(model)
    assert len(stored._arrays) == len(variables)
    for variable, array in zip(variables, stored._arrays):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), array)


# ---------------------------------------------------------------- pictures
def _pixels(fig) -> np.ndarray:
    """The figure rendered to grey levels in [0, 1] (1 white), rows top to bottom."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].mean(-1) / 255.0


def test_image_grids_have_gaps_and_the_title_stays_above_the_top_row():
    from tfdgm import plotting

    black = np.ones((64, 64), np.float32)  # all-black images: only gaps are white
    fig = plotting.image_grid(black, (8, 8), vmin=0, vmax=1)
    pixels = _pixels(fig)
    first = fig.axes[0].images[0].get_window_extent(fig.canvas.get_renderer())
    row = pixels[len(pixels) - int((first.y0 + first.y1) / 2)]  # through the first row
    inside = row[int(0.02 * len(row)) : int(0.98 * len(row))]
    gaps = np.flatnonzero(np.diff(inside > 0.5))  # black -> white -> black ...
    assert len(gaps) >= 2 * 7 and (inside > 0.5).sum() >= 7 * 3, "gaps under 3 pixels"
    titled = plotting.image_grid(black, (8, 8), title="samples", vmin=0, vmax=1)
    titled.canvas.draw()
    renderer = titled.canvas.get_renderer()
    title = titled._suptitle.get_window_extent(renderer)
    top_row = max(image.get_window_extent(renderer).y1 for image in titled.axes[0].images)
    assert title.y0 >= top_row and title.y1 <= titled.bbox.y1  # above the images, inside


def test_a_one_epoch_training_curve_shows_a_point():
    from tfdgm import plotting

    fig = plotting.training_curve({"loss": [17.5], "val_loss": [17.9]})
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 and all(line.get_marker() not in (None, "", "None") for line in lines)
    assert list(lines[0].get_xdata()) == [1]  # epochs count from 1


def test_save_writes_the_figure_and_closes_it_under_agg(tmp_path):
    import matplotlib.pyplot as plt

    from tfdgm import plotting

    fig = plotting.training_curve({"loss": [2.0, 1.0]})
    path = plotting.save(fig, str(tmp_path / "curve.png"))
    assert os.path.getsize(path) > 0 and not plt.fignum_exists(fig.number)
