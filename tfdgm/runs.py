"""A run: one model trained on one dataset, written to one folder. What ``tfdgm train`` does.

A :class:`Run` resolves its settings (the registry entry's run settings and model
hyperparameters, overridden by the caller, every value checked), builds and compiles the
model, trains it with Keras ``fit``, measures it once and writes the run folder::

    config.json         the resolved settings (written before training starts)
    backup.npz          while training: the state after the last finished epoch
    <stem>.png          each picture of model.figures(dataset), plus training_curve.png
    model.keras         the Keras model
    export/             the SavedModel (float32 signatures, see tfdgm.export)
    metrics.json        written last: what happened (``complete``, ``interrupted``,
                        ``diverged``), the whole run's per-epoch ``history``, one
                        ``evaluate`` on the test split, the density kind, the test NLL
                        (once, one seed) and summary_metrics

The test log-likelihood has one source (:mod:`tfdgm.measures`): the run computes it from
``model.log_prob`` with the seed ``NLL_SEED`` for every model whose ``density`` is not
``"none"``, as

    test_nll_nats     = -(1/N) sum_n log p(x_n)
    test_bits_per_dim = (test_nll_nats + D log K) / (D log 2)

(log p(x_n | y_n) with the test labels for a conditional model; the joint of every
modality for a model of named modalities.)

with D = prod(event_shape) and K = ``dataset.num_levels`` for dequantized data (the
discrete data's bits/dim: a density on [0, 1)^D of x = (l + u)/K assigns the cell of the
integer levels l probability p(x) K^-D), else K = 1. A model's ``summary_metrics`` adds
other numbers (FD/KID, log Z and its method, pseudo-likelihood, KL to a known density),
never a second test log-likelihood.

Kills: every file is written under a temporary name and renamed (:mod:`tfdgm.atomic`), so
a kill at any instant leaves each file whole (old or new). ``backup.npz``
(:class:`tfdgm.callbacks.BackupAndResume`: weights, every optimizer's state, the random
streams, the history) is rewritten after every epoch and deleted only after
metrics.json, so running the same run again resumes from the last finished epoch, or
just writes the files again if the kill came after the last one. A Ctrl-C measures and
saves the epochs done (``"interrupted": true``) and keeps the backup. A non-finite
training loss stops the run: metrics.json then says ``"diverged"``, no model is written
and :class:`DivergedError` is raised. metrics.json is strict JSON (non-finite values are
``null``) and exists only once a session has ended: a folder with config.json and no
metrics.json is a run that was killed (or is still going).

>>> Run.resolve("vae", "digits", epochs=3).epochs
3
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from dataclasses import dataclass, field

import tfdgm.models  # noqa: F401  (importing it registers every model)
from tfdgm import atomic, data, registry
from tfdgm.distribute import (  # noqa: F401  (part of this module's API)
    STRATEGIES,
    check_strategy,
    make_strategy,
    worker_id,
)
from tfdgm.export import sample_export  # noqa: F401  (tfdgm sample)
from tfdgm.measures import (  # noqa: F401  (part of this module's API)
    NLL_BATCH,
    NLL_SEED,
    class_coherence,
    held_out_log_prob,
    nll_metrics,
)
from tfdgm.settings import (  # noqa: F401  (part of this module's API)
    ALIASES,
    RunError,
    check_hparams,
    check_out,
    check_setting,
    describe,
    entry_settings,
    lookup,
    model_arguments,
)

#: metrics.json keys only the run writes; a model's summary_metrics must not return them.
RUN_METRICS = ("density", "test_nll_nats", "test_bits_per_dim", "test_log_likelihood")


class DivergedError(RuntimeError):
    """Training stopped on a non-finite loss (metrics.json says where)."""


# ---------------------------------------------------------------- registry entries
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
    for alias, (name, preset) in ALIASES.items():
        lines.append(f"  {alias:<12} = {name} with {preset}")
    lines.append("datasets:")
    lines.extend(f"  {name}" for name in data.list_datasets())
    return "\n".join(lines)


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
    strategy: str = "default"
    # filled in by build / train
    model: object = None
    backup: object = None  # the tfdgm.callbacks.BackupAndResume of out/backup.npz
    history: dict = field(default_factory=dict)
    epochs_done: int = 0
    interrupted: bool = False
    diverged: dict | None = None
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
        strategy: str = "default",
    ) -> Run:
        """The run of registered ``model`` on ``dataset`` (default: the entry's first).

        Every argument left None takes the registry entry's value (``training`` run
        settings, ``hparams``, with its ``dataset_defaults`` for this dataset laid over
        them: :func:`~tfdgm.settings.entry_settings`), then the library default (10
        epochs, batch 64, the class's learning rate, no XLA). ``hparams`` are merged over
        the entry's. A :class:`~tfdgm.data.Dataset` may be passed instead of a name (e.g.
        a subset).

        Raises:
            RunError: unknown model or dataset, a dataset the model does not train on, a
                dataset whose files are missing, epochs or batch size below 1, a learning
                rate that is not a positive number, a negative seed, or a hyperparameter
                the model does not take or of the wrong kind (see :func:`check_hparams`).
        """
        try:
            entry, preset = lookup(model)
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
        training, entry_hparams = entry_settings(entry, name)
        settings = dict(
            epochs=check_setting("epochs", _first(epochs, training.get("epochs"), 10), int, 1),
            batch_size=check_setting(
                "batch_size", _first(batch_size, training.get("batch_size"), 64), int, 1
            ),
            learning_rate=check_setting(
                "learning_rate", _first(learning_rate, training.get("learning_rate")), float
            ),
            seed=check_setting("seed", seed, int, 0),
            hparams={**entry_hparams, **preset, **check_hparams(entry, dict(hparams or {}))},
        )
        if not isinstance(dataset, data.Dataset):
            try:
                dataset = data.load(name)
            except (FileNotFoundError, ImportError) as error:  # a missing file or extra
                raise RunError(str(error)) from None
        return cls(
            entry=entry,
            dataset=dataset,
            out=out or os.path.join("runs", f"{model}-{name}"),
            jit_compile=_first(jit_compile, training.get("jit_compile"), False),
            steps_per_execution=training.get("steps_per_execution"),
            precision=precision,
            strategy=check_strategy(strategy),
            **settings,
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
        """:meth:`build_model` inside the run's ``tf.distribute`` strategy's scope (``fit``
        then splits each global batch over its replicas); a worker other than the chief
        of a multi-worker cluster writes its copy of the run to a temporary folder."""
        strategy = make_strategy(self.strategy)
        worker = worker_id(strategy)
        if worker is not None:
            import tempfile

            self.out = tempfile.mkdtemp(prefix=f"tfdgm-worker{worker}-")
        with strategy.scope():
            return self.build_model()

    def build_model(self):
        """Seed everything, build the model under the run's precision policy, check both
        splits against it, and compile it with ``compile_default``.

        Raises:
            RunError: the model cannot be built with these hyperparameters, or the data
                does not fit it (the model's own message, on one line).
        """
        import keras

        keras.mixed_precision.set_global_policy(self.precision)
        keras.utils.set_random_seed(self.seed)
        build = self.entry.build or self.entry.cls.for_dataset
        try:
            model = build(self.dataset, seed=self.seed, **self.hparams)
            model.validate(self.dataset.x_train)
            model.validate(self.dataset.x_test)
            if model.accepts_labels and not self.dataset.has_labels:
                raise ValueError(f"a conditional model needs labels; {self.dataset.name} has none")
        except (TypeError, ValueError) as error:
            given = ", ".join(f"{k}={v!r}" for k, v in self.hparams.items())
            message = " ".join(str(error).split())
            raise RunError(f"cannot build {self.entry.name}({given}): {message}") from error
        # None leaves the class default (default_learning_rate, default_steps_per_execution)
        given = dict(learning_rate=self.learning_rate, steps_per_execution=self.steps_per_execution)
        model.compile_default(
            jit_compile=self.jit_compile, **{k: v for k, v in given.items() if v is not None}
        )
        self.model = model
        return model

    def open_backup(self):
        """The run's :class:`~tfdgm.callbacks.BackupAndResume` (reading out/backup.npz
        if a killed or interrupted session left one).

        Raises:
            RunError: the backup is another run's (other model, dataset, hyperparameters
                or precision) or cannot be read.
        """
        from tfdgm.callbacks import BackupAndResume

        keys = ("model", "dataset", "hparams", "precision")  # what makes it the same model
        info = atomic.finite({k: v for k, v in self.config().items() if k in keys})
        path = os.path.join(self.out, "backup.npz")
        try:
            self.backup = BackupAndResume(path, info=info)
        except ValueError as error:
            raise RunError(f"{error}; remove it to start the run again") from None
        stored = self.backup.stored.get("info", info)
        if stored != info:
            differ = sorted(k for k in info if stored.get(k) != info[k])
            raise RunError(
                f"{path} is the backup of another run ({', '.join(differ)} differ: "
                f"{[stored.get(k) for k in differ]} there); remove it or choose another --out"
            )
        return self.backup

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
        """``fit`` up to ``epochs``, resuming from the backup; stops on a non-finite
        loss (``diverged``); on Ctrl-C keeps what was trained and sets ``interrupted``.
        Returns the history of the whole run."""
        backup = self.backup or self.open_backup()
        verbose = (1 if sys.stdout.isatty() else 2) if verbose is None else verbose
        if backup.epoch >= self.epochs:  # killed after its last epoch: only files are left
            backup.restore(self.model)
        else:
            if backup.epoch:
                print(f"resuming from epoch {backup.epoch} ({backup.path})")
            try:
                self.model.fit(
                    self._pipeline("train"),
                    epochs=self.epochs,
                    initial_epoch=backup.epoch,
                    validation_data=self._pipeline("test"),
                    callbacks=[backup],
                    shuffle=False,
                    verbose=verbose,
                )
            except KeyboardInterrupt:
                self.interrupted = True
                print("\ninterrupted: saving what was trained so far")
        self.diverged = backup.diverged
        self.history, self.epochs_done = dict(backup.history), backup.epoch
        self.wall_time_s = backup.train_time_s
        return self.history

    def metrics(self) -> dict:
        """metrics.json: what happened, one ``evaluate``, one test NLL, then the model's
        summary_metrics, then the whole history."""
        model, dataset = self.model, self.dataset
        metrics = self._status()
        metrics.update(
            train={k: v[-1] for k, v in self.history.items() if not k.startswith("val_")},
            test=model.evaluate(self._pipeline("test"), verbose=0, return_dict=True),
            density=density_kind(model),
        )
        if model.has_density:
            levels = getattr(dataset, "num_levels", None)
            labels = dataset.y_test if getattr(model, "accepts_labels", False) else None
            log_p = held_out_log_prob(model, dataset.x_test, labels=labels)
            metrics.update(nll_metrics(log_p, model.event_size, levels))
            if levels:
                metrics["num_levels"] = levels
        extra = {**class_coherence(model, dataset), **model.summary_metrics(dataset)}
        clashes = sorted(set(extra) & set(RUN_METRICS))
        if clashes:  # the run's figures are the only ones (see the module docstring)
            warnings.warn(
                f"{type(model).__name__}.summary_metrics returns {clashes}, which the run "
                "computes itself; ignoring the model's values",
                stacklevel=2,
            )
        metrics.update({k: v for k, v in extra.items() if k not in RUN_METRICS})
        metrics["history"] = self.history
        return metrics

    def _status(self) -> dict:
        """The head of metrics.json: what happened, how long it took."""
        wall = self.wall_time_s
        done = self.epochs_done
        return {
            "model": self.entry.name,
            "dataset": self.dataset.name,
            "complete": not (self.interrupted or self.diverged) and done >= self.epochs,
            "interrupted": self.interrupted,
            "diverged": self.diverged,
            "epochs": done,
            "resumes": self.backup.resumes if self.backup is not None else 0,
            "wall_time_s": round(wall, 2),
            "examples_per_s": (
                round(done * data.num_examples(self.dataset.x_train) / wall, 1) if done else None
            ),
        }

    def figures(self) -> dict:
        """``{stem: Figure}``: the model's figures and the training curve of the whole
        run's history; each drawn once."""
        from tfdgm import plotting

        figures = dict(self.model.figures(self.dataset))
        if self.history:
            figures["training_curve"] = plotting.training_curve(self.history)
        return figures

    def write_config(self) -> str:
        return _write_json(os.path.join(self.out, "config.json"), self.config())

    def save(self, metrics: dict, figures: dict) -> None:
        """Write every figure as ``<stem>.png``, model.keras, export/ and, last,
        metrics.json; each under a temporary name, then renamed."""
        _save_figures(self.out, figures)
        with atomic.replacing(os.path.join(self.out, "model.keras")) as tmp:
            self.model.save(tmp)
        with atomic.replacing(os.path.join(self.out, "export")) as tmp:
            self.model.export(tmp)
        _write_json(os.path.join(self.out, "metrics.json"), metrics)

    def execute(self, verbose: int | None = None) -> dict:
        """Check the output folder, build, write config.json, train (resuming), measure,
        draw and save; returns the metrics. The backup is deleted once a complete run is
        saved. The global precision policy is restored afterwards.

        Raises:
            RunError: see :meth:`resolve`, :meth:`build`, :meth:`open_backup`, before
                anything is written.
            DivergedError: the loss became non-finite (after metrics.json is written).
        """
        import keras

        policy = keras.mixed_precision.global_policy()
        try:
            check_out(self.out)
            self.build()
            self.open_backup()
            try:
                os.makedirs(self.out, exist_ok=True)
            except OSError as error:
                raise RunError(f"cannot write the run to {self.out!r}: {error.strerror}") from None
            atomic.remove_leftovers(self.out)
            self.write_config()
            if os.path.exists(os.path.join(self.out, "metrics.json")):
                os.remove(os.path.join(self.out, "metrics.json"))  # it will say what happens
            self.train(verbose)
            if self.diverged:
                return self._diverged()
            metrics = self.metrics()
            self.save(metrics, self.figures())
            if metrics["complete"]:
                self.backup.delete()
        finally:
            keras.mixed_precision.set_global_policy(policy)
        return metrics

    def _diverged(self):
        """Write what a diverged run has (its curve, metrics.json), then raise."""
        from tfdgm import plotting

        metrics = {**self._status(), "history": self.history}
        if self.history:
            _save_figures(self.out, {"training_curve": plotting.training_curve(self.history)})
        _write_json(os.path.join(self.out, "metrics.json"), metrics)
        d = self.diverged
        kept = f"; backup.npz holds epoch {self.epochs_done}" if self.epochs_done else ""
        raise DivergedError(
            f"{self.entry.name} diverged: {d['metric']} = {d['value']} at epoch {d['epoch']}, "
            f"batch {d['batch']}; no model written{kept} (a lower --learning-rate may help)"
        )


def _first(*values):
    """The first of ``values`` that is not None (None if all are)."""
    return next((v for v in values if v is not None), None)


def _write_json(path: str, obj) -> str:
    return atomic.write_json(path, obj)


def _save_figures(out: str, figures: dict) -> None:
    import matplotlib.pyplot as plt

    for stem, fig in figures.items():
        with atomic.replacing(os.path.join(out, f"{stem}.png")) as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)
