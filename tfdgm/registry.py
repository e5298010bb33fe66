"""The registry of models: what ``tfdgm train`` can run and what the contract tests cover.

A model family registers each model next to its class, with a decorator::

    @registry.register(
        "vae",
        family="latent-variable",
        datasets=("digits", "digits-categorical", "mnist"),  # the first is the default
        training=dict(epochs=150, batch_size=64),            # run settings
        hparams=dict(latent_dim=8),                          # the default run's model
        tiny=dict(latent_dim=2, hidden_units=(16,)),         # small enough for tests
        variants={"iwae": dict(num_samples=5)},              # tiny overrides
        dataset_defaults={"mnist5k": dict(epochs=60, hparams=dict(architecture="conv"))},
        description="variational auto-encoder",
    )
    @keras.saving.register_keras_serializable(package=PACKAGE)
    class VAE(GenerativeModel): ...

Run settings (``training``) and model hyperparameters (``hparams``) are kept apart: a
run setting is one of :data:`TRAINING_KEYS`; a learning rate is given there only where the
run uses another than the class's ``default_learning_rate``. ``build(dataset, **hparams)``
makes the model (default: ``cls.for_dataset``). Each variant is a dict of hyperparameters
laid over ``tiny`` (a ``"dataset"`` key picks another of the entry's datasets); the
contract suite runs every (model, variant) pair.

``dataset_defaults`` holds what the default run changes on one of the entry's datasets:
``{dataset: dict(run settings..., hparams=dict(...))}``, laid over ``training`` and
``hparams`` by :func:`tfdgm.settings.entry_settings` (so ``tfdgm train NAME --dataset
DATASET`` uses it and ``tfdgm train NAME --help`` shows it); command-line settings and
``--hparam`` still win. Each dataset must be one of the entry's ``datasets``.

This module imports no model: importing :mod:`tfdgm` imports every model family, which
registers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: The run settings an entry's ``training`` may hold.
TRAINING_KEYS = ("epochs", "batch_size", "learning_rate", "jit_compile", "steps_per_execution")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type
    family: str
    datasets: tuple[str, ...]  # the first is the default of `tfdgm train NAME`
    build: Callable
    training: dict = field(default_factory=dict)  # run settings, TRAINING_KEYS
    hparams: dict = field(default_factory=dict)  # model hyperparameters of the default run
    tiny: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)  # {variant: tiny overrides}
    description: str = ""
    # {dataset: run settings and/or hparams=dict(...)}: the default run on that dataset
    dataset_defaults: dict = field(default_factory=dict)

    @property
    def density(self) -> str:
        """The class's declared density kind ("exact"/"estimate"/"bound"/"none"); for a
        class where it depends on the hyperparameters, the kinds it can take."""
        density = getattr(self.cls, "density", "none")
        return density if isinstance(density, str) else "exact|estimate"

    @property
    def defaults(self) -> dict:
        """Run settings and hyperparameters in one dict (the pre-v2 layout, read-only)."""
        return {**self.training, "hparams": dict(self.hparams)}

    def variant(self, name: str | None) -> tuple[str, dict]:
        """(dataset name, tiny hyperparameters) of variant ``name`` (None: the base)."""
        if name is None:
            return self.datasets[0], dict(self.tiny)
        if name not in self.variants:
            raise ValueError(
                f"model {self.name!r} has no variant {name!r}; "
                f"choose one of: {', '.join(self.variants) or 'none'}"
            )
        overrides = dict(self.variants[name])
        dataset = overrides.pop("dataset", self.datasets[0])
        return dataset, {**self.tiny, **overrides}


MODELS: dict[str, ModelEntry] = {}


def register(name: str, cls: type | None = None, **kwargs):
    """Register a model under ``name``: as a class decorator (see the module docstring),
    or called with the class (``register(name, cls, ...)``). Returns the class (decorator)
    or the entry.

    Raises:
        ValueError: a name registered twice, an unknown run setting, or a variant dataset
            or a ``dataset_defaults`` dataset the entry does not list.
    """
    if "defaults" in kwargs:  # the pre-v2 layout: run settings with hparams inside
        defaults = dict(kwargs.pop("defaults"))
        kwargs.setdefault("hparams", defaults.pop("hparams", {}))
        kwargs.setdefault("training", defaults)

    def decorate(model_cls):
        entry_kwargs = dict(kwargs)
        entry_kwargs.setdefault("build", lambda dataset, **hp: model_cls.for_dataset(dataset, **hp))
        entry = ModelEntry(name=name, cls=model_cls, **entry_kwargs)
        unknown = set(entry.training) - set(TRAINING_KEYS)
        if unknown:
            raise ValueError(f"{name}: unknown run settings {sorted(unknown)}; use {TRAINING_KEYS}")
        for dataset, changes in entry.dataset_defaults.items():
            if dataset not in entry.datasets:
                raise ValueError(
                    f"{name}: dataset_defaults for {dataset!r}, not among {entry.datasets}"
                )
            unknown = set(changes) - {*TRAINING_KEYS, "hparams"}
            if unknown:
                raise ValueError(f"{name}[{dataset}]: unknown run settings {sorted(unknown)}")
        for variant, overrides in entry.variants.items():
            if overrides.get("dataset", entry.datasets[0]) not in entry.datasets:
                raise ValueError(f"{name}[{variant}]: dataset not among {entry.datasets}")
        if name in MODELS and MODELS[name].cls is not model_cls:
            raise ValueError(f"model name {name!r} is already registered")
        MODELS[name] = entry
        return entry

    if cls is not None:
        return decorate(cls)

    def decorator(model_cls):
        decorate(model_cls)
        return model_cls

    return decorator


def get(name: str) -> ModelEntry:
    """The entry called ``name``; ``ValueError`` listing the choices if there is none."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def names() -> list[str]:
    """Sorted names of the registered models."""
    return sorted(MODELS)


def cases() -> list[tuple[str, str | None]]:
    """Every (model, variant) pair, variant None for the base configuration."""
    return [(name, variant) for name in names() for variant in (None, *MODELS[name].variants)]
