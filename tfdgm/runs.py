"""A run: one model trained on one dataset, written to one folder. What ``tfdgm train`` does.

A :class:`Run` resolves its settings (the registry entry's run settings and model
hyperparameters, overridden by the caller), builds and compiles the model, trains it with
Keras ``fit``, measures it once and writes the run folder::

    config.json         the resolved settings (written before training starts)
    metrics.json        last-epoch train metrics, one ``evaluate`` on the test split, the
                        density kind, the test NLL (once, one seed) and summary_metrics
    <stem>.png          each picture of model.figures(dataset), plus training_curve.png
    model.keras         the Keras model
    export/             the SavedModel (float32 signatures, see tfdgm.export)

The test log-likelihood has one source: the run computes it from ``model.log_prob`` with
the seed ``NLL_SEED`` for every model whose ``density`` is not ``"none"``, as

    test_nll_nats     = -(1/N) sum_n log p(x_n)
    test_bits_per_dim = (test_nll_nats + D log K) / (D log 2)

with D = prod(event_shape) and K = ``dataset.num_levels`` for dequantized data (the
discrete data's bits/dim: a density on [0, 1)^D of x = (l + u)/K assigns the cell of the
integer levels l probability p(x) K^-D), else K = 1. A model's ``summary_metrics`` adds
other numbers (FD/KID, log Z and its method, pseudo-likelihood, KL to a known density),
never a second test log-likelihood.

An interrupted ``fit`` (Ctrl-C) still measures and saves the epochs done; running the
same run again resumes from the last finished epoch (Keras ``BackupAndRestore`` in
``out/backup``).

>>> Run.resolve("vae", "digits", epochs=3).epochs
3
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from tfdgm import data, registry

#: Stateless seed of the run's one test log-likelihood (deterministic for fixed weights).
NLL_SEED = (0, 0)
#: Test examples per ``log_prob`` call when scoring the test split.
NLL_BATCH = 500
#: metrics.json keys only the run writes; a model's summary_metrics must not return them.
RUN_METRICS = ("density", "test_nll_nats", "test_bits_per_dim", "test_log_likelihood")


class RunError(ValueError):
    """A run that cannot start: an unknown model or dataset, or a missing data file."""


# ---------------------------------------------------------------- registry entries
def entry_settings(entry) -> tuple[dict, dict]:
    """``(run settings, model hyperparameters)`` of a registry entry.

    Run settings are ``epochs``, ``batch_size``, ``learning_rate`` (only where it differs
    from the class default), ``jit_compile`` and ``steps_per_execution``: the entry's
    ``training`` dict, merged over
    the older ``defaults`` dict (whose ``hparams`` key holds the hyperparameters).
    """
    defaults = dict(getattr(entry, "defaults", None) or {})
    legacy_hparams = defaults.pop("hparams", {})
    training = {**defaults, **(getattr(entry, "training", None) or {})}
    hparams = {**legacy_hparams, **(getattr(entry, "hparams", None) or {})}
    return training, hparams


def density_kind(obj) -> str:
    """``"exact"``, ``"estimate"``, ``"bound"`` or ``"none"`` for a model or its class."""
    kind = getattr(obj, "density", None)
    if isinstance(kind, str):
        return kind
    if isinstance(obj, type):
        return "?"
    return "unknown" if obj.has_density else "none"  # a base without `density` yet


def listing() -> str:
    """The text of ``tfdgm list``: each model's family, density kind and datasets."""
    lines = ["models (name, family, density, description):"]
    for name in registry.names():
        entry = registry.get(name)
        kind = getattr(entry, "density", None) or density_kind(entry.cls)
        lines.append(f"  {name:<12} {entry.family:<16} {kind:<9} {entry.description}")
        lines.append(f"  {'':<12} datasets: {', '.join(entry.datasets)}")
    lines.append("datasets:")
    lines.extend(f"  {name}" for name in data.list_datasets())
    return "\n".join(lines)


# ---------------------------------------------------------------- measurements
def held_out_log_prob(model, x, seed=NLL_SEED, batch_size: int = NLL_BATCH) -> np.ndarray:
    """log p(x_n) for every row of ``x``, float64 ``[N]``: ``model.log_prob`` on batches
    of ``batch_size``, each with the same stateless ``seed`` (so estimates such as IWAE or
    AIS are a deterministic function of the weights)."""
    x = np.asarray(x, np.float32)
    parts = [
        np.asarray(model.log_prob(x[i : i + batch_size], seed=seed), np.float64)
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts)


def nll_metrics(log_p, event_size: int, num_levels: int | None = None) -> dict:
    """``{"test_nll_nats", "test_bits_per_dim"}`` from per-example log-densities.

    NLL = -mean(log p) nats; bits/dim = (NLL + D log K) / (D log 2), K = ``num_levels``
    for dequantized data (the discrete data's figure), else K = 1.

    >>> nll_metrics([0.0], event_size=3, num_levels=8)["test_bits_per_dim"]
    3.0
    """
    nll = float(-np.mean(log_p))
    offset = event_size * math.log(num_levels) if num_levels else 0.0
    return {
        "test_nll_nats": nll,
        "test_bits_per_dim": (nll + offset) / (event_size * math.log(2.0)),
    }


def fallback_figures(model, dataset, skip=()) -> dict:
    """The generic pictures, for models whose ``figures`` does not draw them yet.

    Transitional: the v2 base's ``figures`` draws ``samples`` (an image grid, or test data
    beside 2000 samples on 2-D data) and ``density`` (2-D data with a density); the VAE's
    adds ``reconstructions``. Once they do, ``skip`` holds every stem and nothing is drawn.
    """
    import matplotlib.pyplot as plt

    from tfdgm import plotting

    figures = {}
    images = dataset.image_shape is not None
    vmax = (dataset.num_categories - 1) if dataset.support == "categorical" else None
    if "samples" not in skip and images:
        samples = np.asarray(model.sample(64, seed=(0, 1)))
        figures["samples"] = plotting.image_grid(
            samples, dataset.image_shape, title="samples", vmin=0, vmax=vmax
        )
    elif "samples" not in skip and dataset.event_shape == (2,):
        fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
        plotting.scatter_2d(dataset.x_test, title="test data", ax=axes[0])
        plotting.scatter_2d(np.asarray(model.sample(2000, seed=(0, 2))), "model samples", axes[1])
        figures["samples"] = fig
    if "density" not in skip and dataset.event_shape == (2,) and model.has_density:
        figures["density"] = plotting.density_2d(model.log_prob, data=dataset.x_test)
    if "reconstructions" not in skip and images and hasattr(model, "reconstruct"):
        x = dataset.x_test[:32]
        pairs = np.stack([x, np.asarray(model.reconstruct(x))], 1).reshape(64, -1)
        figures["reconstructions"] = plotting.image_grid(
            pairs, dataset.image_shape, ncols=16, title="test images and reconstructions",
            vmin=0, vmax=vmax,
        )  # fmt: skip
    return figures


def _learning_rate_used(model, given: float | None) -> float | None:
    if given is not None:
        return given
    default = getattr(model, "default_learning_rate", None)
    if default is None:  # a base without `default_learning_rate`: the signature's default
        parameter = inspect.signature(model.compile_default).parameters.get("learning_rate")
        default = None if parameter is None else parameter.default
    return default if isinstance(default, (int, float)) else None


# ---------------------------------------------------------------- the run
@dataclass
class Run:
    """One model on one dataset, written to ``out``. Make one with :meth:`resolve`.

    ``learning_rate`` None means the model class's default; ``hparams`` are the model's
    constructor arguments on top of ``entry.build``'s defaults for the dataset.
    """

    entry: registry.ModelEntry
    dataset: data.Dataset
    out: str
    epochs: int
    batch_size: int
    learning_rate: float | None
    jit_compile: bool
    steps_per_execution: int | None = None
    precision: str = "float32"
    seed: int = 0
    hparams: dict = field(default_factory=dict)
    # filled in by build / train
    model: object = None
    history: dict = field(default_factory=dict)
    interrupted: bool = False
    wall_time_s: float = 0.0

    @classmethod
    def resolve(
        cls,
        model: str,
        dataset: str | data.Dataset | None = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        jit_compile: bool | None = None,
        precision: str = "float32",
        seed: int = 0,
        hparams: dict | None = None,
        out: str | None = None,
    ) -> Run:
        """The run of registered ``model`` on ``dataset`` (default: the entry's first).

        Every argument left None takes the registry entry's value (``training`` run
        settings, ``hparams``), then the library default (10 epochs, batch 64, the class's
        learning rate, no XLA). ``hparams`` are merged over the entry's. A
        :class:`~tfdgm.data.Dataset` may be passed instead of a name (e.g. a subset).

        Raises:
            RunError: unknown model or dataset, a dataset the model does not train on, or
                a dataset whose files are missing.
        """
        try:
            entry = registry.get(model)
        except ValueError as error:
            raise RunError(str(error)) from None
        name = getattr(dataset, "name", dataset) or entry.datasets[0]
        if name not in data.list_datasets():
            raise RunError(
                f"unknown dataset {name!r}; choose one of: {', '.join(data.list_datasets())}"
            )
        if name not in entry.datasets:
            raise RunError(
                f"model {entry.name!r} does not train on {name!r}; "
                f"choose one of: {', '.join(entry.datasets)}"
            )
        if not isinstance(dataset, data.Dataset):
            try:
                dataset = data.load(name)
            except FileNotFoundError as error:
                raise RunError(str(error)) from None
        training, entry_hparams = entry_settings(entry)
        return cls(
            entry=entry,
            dataset=dataset,
            out=out or os.path.join("runs", f"{entry.name}-{name}"),
            epochs=_first(epochs, training.get("epochs"), 10),
            batch_size=_first(batch_size, training.get("batch_size"), 64),
            learning_rate=_first(learning_rate, training.get("learning_rate")),
            jit_compile=_first(jit_compile, training.get("jit_compile"), False),
            steps_per_execution=training.get("steps_per_execution"),
            precision=precision,
            seed=seed,
            hparams={**entry_hparams, **(hparams or {})},
        )

    # ------------------------------------------------------------ steps
    def config(self) -> dict:
        """The resolved settings, as written to config.json."""
        learning_rate, steps = self.learning_rate, self.steps_per_execution
        if self.model is not None:
            learning_rate = _learning_rate_used(self.model, learning_rate)
            steps = getattr(self.model, "steps_per_execution", steps)
        return {
            "model": self.entry.name,
            "dataset": self.dataset.name,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": learning_rate,
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "steps_per_execution": steps,
            "seed": self.seed,
            "hparams": self.hparams,
            "image_shape": self.dataset.image_shape,
            "event_shape": self.dataset.event_shape,
        }

    def build(self):
        """Seed everything, build the model under the run's precision policy, check both
        splits against it, and compile it with ``compile_default``."""
        import keras

        keras.mixed_precision.set_global_policy(self.precision)
        keras.utils.set_random_seed(self.seed)
        build = self.entry.build or self.entry.cls.for_dataset
        model = build(self.dataset, seed=self.seed, **self.hparams)
        model.validate(self.dataset.x_train)
        model.validate(self.dataset.x_test)
        # None leaves the class default (default_learning_rate, default_steps_per_execution)
        given = dict(learning_rate=self.learning_rate, steps_per_execution=self.steps_per_execution)
        model.compile_default(
            jit_compile=self.jit_compile, **{k: v for k, v in given.items() if v is not None}
        )
        self.model = model
        return model

    def _pipeline(self, split: str):
        labels = bool(getattr(self.model, "accepts_labels", False)) and self.dataset.has_labels
        return self.dataset.pipeline(
            split,
            batch_size=self.batch_size,
            shuffle=split == "train",
            seed=self.seed,
            labels=labels,
        )

    def train(self, verbose: int | None = None) -> dict:
        """``fit`` for ``epochs`` (resuming from ``out/backup``), stopping on NaN; on
        Ctrl-C keep what was trained and set ``interrupted``. Returns the history."""
        import keras

        callbacks = [
            keras.callbacks.TerminateOnNaN(),
            keras.callbacks.BackupAndRestore(os.path.join(self.out, "backup")),
        ]
        verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
        start = time.perf_counter()
        try:
            history = self.model.fit(
                self._pipeline("train"),
                epochs=self.epochs,
                validation_data=self._pipeline("test"),
                callbacks=callbacks,
                shuffle=False,
                verbose=verbose,
            ).history
        except KeyboardInterrupt:
            self.interrupted = True
            history = getattr(getattr(self.model, "history", None), "history", None) or {}
            print("\ninterrupted: saving what was trained so far")
        self.wall_time_s = time.perf_counter() - start
        self.history = dict(history)
        return self.history

    def metrics(self) -> dict:
        """metrics.json: one ``evaluate``, one test NLL, then the model's summary_metrics."""
        model, dataset = self.model, self.dataset
        epochs_done = len(self.history.get("loss", [])) or (0 if self.interrupted else self.epochs)
        wall = max(self.wall_time_s, 1e-9)
        metrics = {
            "model": self.entry.name,
            "dataset": dataset.name,
            "interrupted": self.interrupted,
            "epochs": epochs_done,
            "wall_time_s": round(self.wall_time_s, 2),
            "examples_per_s": round(epochs_done * len(dataset.x_train) / wall, 1),
            "train": {k: float(v[-1]) for k, v in self.history.items() if not k.startswith("val_")},
            "test": model.evaluate(self._pipeline("test"), verbose=0, return_dict=True),
            "density": density_kind(model),
        }
        if model.has_density:
            levels = getattr(dataset, "num_levels", None)
            log_p = held_out_log_prob(model, dataset.x_test)
            metrics.update(nll_metrics(log_p, model.event_size, levels))
            if levels:
                metrics["num_levels"] = levels
        extra = model.summary_metrics(dataset)
        clashes = sorted(set(extra) & set(RUN_METRICS))
        if clashes:  # the run's figures are the only ones (see the module docstring)
            warnings.warn(
                f"{type(model).__name__}.summary_metrics returns {clashes}, which the run "
                "computes itself; ignoring the model's values",
                stacklevel=2,
            )
        metrics.update({k: v for k, v in extra.items() if k not in RUN_METRICS})
        return metrics

    def figures(self) -> dict:
        """``{stem: Figure}``: the model's figures, the generic ones it does not draw yet,
        and the training curve of this run's history; each drawn once."""
        from tfdgm import plotting

        figures = dict(self.model.figures(self.dataset))
        figures.update(fallback_figures(self.model, self.dataset, skip=set(figures)))
        if self.history:
            figures["training_curve"] = plotting.training_curve(self.history)
        return figures

    def write_config(self) -> str:
        return _write_json(os.path.join(self.out, "config.json"), self.config())

    def save(self, metrics: dict, figures: dict) -> None:
        """Write metrics.json, every figure as ``<stem>.png``, model.keras and export/."""
        import matplotlib.pyplot as plt

        _write_json(os.path.join(self.out, "metrics.json"), metrics)
        for stem, fig in figures.items():
            fig.savefig(os.path.join(self.out, f"{stem}.png"), dpi=100)
            plt.close(fig)
        self.model.save(os.path.join(self.out, "model.keras"))
        self.model.export(os.path.join(self.out, "export"))

    def execute(self, verbose: int | None = None) -> dict:
        """Build, write config.json, train, measure, draw and save; returns the metrics.
        The global precision policy is restored afterwards."""
        import keras

        policy = keras.mixed_precision.global_policy()
        os.makedirs(self.out, exist_ok=True)
        try:
            self.build()
            self.write_config()
            self.train(verbose)
            metrics = self.metrics()
            self.save(metrics, self.figures())
        finally:
            keras.mixed_precision.set_global_policy(policy)
        return metrics


def _first(*values):
    """The first of ``values`` that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def _write_json(path: str, obj) -> str:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
    return path


def _json_default(value):
    if isinstance(value, (tuple, np.ndarray)):
        return np.asarray(value).tolist()
    if isinstance(value, np.generic):
        return value.item()
    return float(value)


# ---------------------------------------------------------------- tfdgm sample
def sample_export(run: str, num_samples: int = 64, seed: int = 0, out: str | None = None) -> str:
    """Draw from a run folder's SavedModel (no tfdgm needed to load it) and draw them to
    ``out`` (default ``run/samples_export.png``); returns the picture's path.

    Raises:
        RunError: ``run`` has no ``export/`` folder.
    """
    if not os.path.isdir(os.path.join(run, "export")):
        raise RunError(f"{run!r} is not a run folder (no export/ inside)")
    import tensorflow as tf

    from tfdgm import plotting

    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    loaded = tf.saved_model.load(os.path.join(run, "export"))
    samples = loaded.sample(tf.constant(num_samples, tf.int32), tf.constant([seed, 0], tf.int32))
    samples = samples.numpy()
    out = out or os.path.join(run, "samples_export.png")
    if config.get("image_shape"):
        fig = plotting.image_grid(samples, config["image_shape"], vmin=0)
    else:
        fig = plotting.scatter_2d(samples[:, :2], title="samples")
    fig.savefig(out, dpi=100)
    return out
