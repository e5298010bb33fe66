"""Run settings and model hyperparameters, checked before anything is built or written.

:func:`check_setting` refuses epochs, batch sizes, learning rates and sample counts out of
range; :func:`check_hparams` refuses a hyperparameter that is not one of the model's
constructor arguments (:func:`model_arguments`) or that has the wrong kind (each
argument's annotation or default says which: a non-negative integer for a size, a finite
number, true or false, a string, a list); :func:`check_out` refuses an output folder that
cannot be written; :func:`describe` is the text of ``tfdgm train MODEL --help``. Nothing
here imports TensorFlow.

>>> check_setting("epochs", 3, int, 1)
3
>>> check_setting("epochs", 0, int, 1)
Traceback (most recent call last):
...
tfdgm.settings.RunError: epochs must be an integer >= 1, got 0
"""

from __future__ import annotations

import inspect
import math
import numbers
import os

from tfdgm import registry


class RunError(ValueError):
    """A run that cannot start: an unknown model or dataset, a missing data file, a
    setting or hyperparameter out of range, an output folder that cannot be written."""


def entry_settings(entry, dataset: str | None = None) -> tuple[dict, dict]:
    """``(run settings, model hyperparameters)`` of a registry entry's default run on
    ``dataset`` (None: the settings shared by all its datasets).

    Run settings are ``epochs``, ``batch_size``, ``learning_rate`` (only where it differs
    from the class default), ``jit_compile`` and ``steps_per_execution``: the entry's
    ``training`` dict, merged over the older ``defaults`` dict (whose ``hparams`` key holds
    the hyperparameters), then the entry's ``dataset_defaults[dataset]`` laid over both
    (its ``hparams`` key over the hyperparameters, one key at a time).
    """
    defaults = dict(getattr(entry, "defaults", None) or {})
    legacy_hparams = defaults.pop("hparams", {})
    training = {**defaults, **(getattr(entry, "training", None) or {})}
    hparams = {**legacy_hparams, **(getattr(entry, "hparams", None) or {})}
    changes = dict((getattr(entry, "dataset_defaults", None) or {}).get(dataset, {}))
    hparams.update(changes.pop("hparams", {}))
    training.update(changes)
    return training, hparams


#: Constructor arguments a run sets itself (from the dataset, or its own seed).
SET_BY_RUN = (
    "self", "cls", "dataset", "seed", "name", "dtype", "trainable",
    "events", "event_shape", "support", "num_categories",
)  # fmt: skip
_KINDS = {
    "bool": "true or false",
    "int": "a non-negative integer",
    "float": "a finite number",
    "str": "a string",
    "ints": "a list of non-negative integers",
    "floats": "a list of finite numbers",
}


def model_arguments(entry) -> dict[str, inspect.Parameter]:
    """The hyperparameters of a registry entry: the named arguments of its class's
    constructor, of the tfdgm base constructors its ``**kwargs`` reach (``GAN(...,
    num_classes=10)`` is ``ImplicitModel``'s), and of its ``for_dataset`` (whose defaults
    win), less :data:`SET_BY_RUN` and the class's ``fixed_arguments`` (base-constructor
    arguments it sets itself, such as the GAN's ``divergence``)."""
    constructors = []
    for klass in entry.cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if not klass.__module__.startswith("tfdgm"):
            break
        constructors.insert(0, init)  # the subclass's own defaults win
        kinds = [p.kind for p in inspect.signature(init).parameters.values()]
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            break
    found = {}
    for fn in (*constructors, getattr(entry.cls, "for_dataset", None)):
        if fn is None:
            continue
        for name, parameter in inspect.signature(fn).parameters.items():
            if name not in SET_BY_RUN and parameter.kind not in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                found[name] = parameter
    for name in getattr(entry.cls, "fixed_arguments", ()):  # a base argument the class sets
        found.pop(name, None)
    return found


def _kind(parameter: inspect.Parameter) -> str | None:
    """What a hyperparameter takes (a key of _KINDS), from its annotation or default."""
    note = str(parameter.annotation).replace(" | None", "").replace("typing.", "")
    if note in ("int", "float", "bool", "str"):
        return note
    if note.split("[")[0] in ("Sequence", "tuple", "list") and note.endswith("]"):
        inner = note[note.index("[") + 1 :]
        return (
            "ints" if inner.startswith("int") else "floats" if inner.startswith("float") else None
        )
    default = parameter.default
    if isinstance(default, (bool, int, float, str)):
        return type(default).__name__
    if isinstance(default, (tuple, list)) and default:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in default):
            return "ints"
    return None


def _fits(value, kind: str | None) -> bool:
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    count = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0
    if kind is None:
        return True
    if kind in ("ints", "floats"):
        each = count if kind == "ints" else (lambda v: number(v) and math.isfinite(v))
        return isinstance(value, (list, tuple)) and all(each(v) for v in value)
    return {
        "bool": lambda v: isinstance(v, bool),
        "int": count,
        "float": lambda v: number(v) and math.isfinite(v),
        "str": lambda v: isinstance(v, str),
    }[kind](value)


def check_hparams(entry, hparams: dict) -> dict:
    """``hparams`` if every key is one of ``entry``'s hyperparameters (see
    :func:`model_arguments`) and every value has the kind its annotation or default says
    (sizes non-negative integers, numbers finite); else :class:`RunError` naming them."""
    arguments = model_arguments(entry)
    for key, value in hparams.items():
        if key not in arguments:
            raise RunError(
                f"{entry.name} has no hyperparameter {key!r}; its constructor arguments are: "
                f"{', '.join(arguments)}"
            )
        if value is not None and not _fits(value, _kind(arguments[key])):
            default = arguments[key].default
            shown = "" if default is inspect.Parameter.empty else f" (default {default!r})"
            raise RunError(
                f"{entry.name}: hyperparameter {key} must be {_KINDS[_kind(arguments[key])]}"
                f"{shown}, got {value!r}"
            )
    return hparams


def check_setting(name: str, value, kind: type, minimum=None):
    """``value`` if it is a ``kind`` above ``minimum`` (None passes); else RunError."""
    if value is None:
        return None
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if (
        not number
        or (kind is int and value != int(value))
        or not math.isfinite(value)
        or (minimum is not None and value < minimum)
        or (minimum is None and value <= 0)
    ):
        what = "an integer" if kind is int else "a number"
        bound = f">= {minimum}" if minimum is not None else "> 0"
        raise RunError(f"{name} must be {what} {bound}, got {value!r}")
    return kind(value)


def check_out(out: str) -> None:
    """Refuse an output folder that is a file or whose nearest existing parent is not a
    writable folder (nothing is created here)."""
    path = os.path.abspath(out)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunError(f"cannot write the run to {out!r}: it is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise RunError(f"cannot write the run to {out!r}: {parent!r} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunError(f"cannot write the run to {out!r}: {parent!r} is not writable")


#: Command-line names of a registered model with preset hyperparameters,
#: ``{alias: (registered name, hyperparameters)}``: ``tfdgm train cvae`` is the VAE
#: with ``num_classes=10`` (the conditional VAE; trained on (x, y) pairs).
ALIASES = {"cvae": ("vae", {"num_classes": 10, "architecture": "mlp"})}  # conv: unconditional


def lookup(name: str) -> tuple:
    """(registry entry, preset hyperparameters) of a model name or an alias of one;
    ``ValueError`` listing the choices for an unknown name."""
    if name in ALIASES:
        target, preset = ALIASES[name]
        return registry.get(target), dict(preset)
    if name not in registry.MODELS:
        choices = sorted([*registry.MODELS, *ALIASES])
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(choices)}")
    return registry.get(name), {}


def describe(name: str) -> str:
    """The text ``tfdgm train NAME --help`` ends with: the entry's datasets, run settings,
    every hyperparameter with its default (and the default run's value), and what the
    default run changes on particular datasets (``dataset_defaults``)."""
    entry, preset = lookup(name)
    training, hparams = entry_settings(entry)
    hparams = {**hparams, **preset}
    rate = training.get("learning_rate", getattr(entry.cls, "default_learning_rate", None))
    steps = training.get(
        "steps_per_execution", getattr(entry.cls, "default_steps_per_execution", 1)
    )
    settings = {"epochs": 10, "batch_size": 64, "jit_compile": False, **training}
    settings.update(learning_rate=rate, steps_per_execution=steps)
    lines = [
        f"{entry.name}: {entry.description} ({entry.family}, density {entry.density})"
        + (f"; {name} = {entry.name} with {preset}" if preset else ""),
        f"datasets: {entry.datasets[0]} (default), {', '.join(entry.datasets[1:])}".rstrip(", "),
        "defaults: " + ", ".join(f"{k}={v}" for k, v in settings.items()),
    ]
    for dataset, changes in (getattr(entry, "dataset_defaults", None) or {}).items():
        changes = dict(changes)
        shown = [f"{k}={v}" for k, v in changes.items() if k != "hparams"]
        shown += [f"{k}={v!r}" for k, v in changes.get("hparams", {}).items()]
        lines.append(f"defaults on {dataset}: " + ", ".join(shown))
    lines.append("hyperparameters (--hparam KEY=VALUE, JSON values; * the default run's value):")
    for key, parameter in model_arguments(entry).items():
        default = "" if parameter.default is inspect.Parameter.empty else repr(parameter.default)
        run_value = f"  * {hparams[key]!r}" if key in hparams else ""
        lines.append(f"  {key:<24} {_kind(parameter) or '':<6} {default}{run_value}")
    return "\n".join(lines)
