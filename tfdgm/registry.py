"""The registry of models: what the CLI can train and what the contract tests run over.

A model family registers each model once, next to its class::

    registry.register(
        "vae", VAE, family="latent-variable", datasets=("digits", "mnist", ...),
        build=lambda ds, **hp: VAE.for_dataset(ds, **hp),
        defaults=dict(epochs=100, batch_size=128, learning_rate=1e-3),
        tiny=dict(latent_dim=2, hidden_units=(16,)),
    )

``build(dataset, **hparams)`` makes a model for a :class:`tfdgm.data.Dataset`; ``tiny``
are hyperparameters small enough for the tests and the labs' fast mode; ``defaults`` are
the training settings of ``tfdgm train``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: type
    family: str
    datasets: tuple[str, ...]  # first is the default of `tfdgm train NAME`
    build: Callable
    defaults: dict = field(default_factory=dict)  # epochs, batch_size, learning_rate, hparams
    tiny: dict = field(default_factory=dict)
    description: str = ""


MODELS: dict[str, ModelEntry] = {}


def register(name: str, cls: type, **kwargs) -> ModelEntry:
    """Register ``cls`` under ``name`` (see the module docstring for the fields)."""
    entry = ModelEntry(name=name, cls=cls, **kwargs)
    MODELS[name] = entry
    return entry


def get(name: str) -> ModelEntry:
    """The entry called ``name``; ``ValueError`` listing the choices if there is none."""
    _load_all()
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def names() -> list[str]:
    _load_all()
    return sorted(MODELS)


def _load_all():
    import tfdgm.models  # noqa: F401  (importing the package registers every family)
