"""Command line: ``tfdgm train MODEL``, ``tfdgm sample RUN``, ``tfdgm list``.

``tfdgm train vae`` trains through Keras ``fit`` (with its progress bar) and writes a run
folder: ``metrics.json``, ``config.json``, ``samples.png``, ``training_curve.png`` (plus
``reconstructions.png``, ``density.png`` or model-specific pictures where they apply),
``model.keras`` and the SavedModel ``export/``. Rerunning the same command after a kill
or a Ctrl-C resumes from the last finished epoch (``backup.npz``); ``tfdgm train MODEL
--help`` lists the model's defaults and hyperparameters. This module only parses
arguments; the run itself (settings, training, measurements, files) is
:mod:`tfdgm.runs`, and TensorFlow is imported only once a command needs it. Exit codes:
0 done, 1 a file could not be written, 2 a usage error (one line on stderr: an unknown
model or dataset, a number out of range, a bad ``--hparam``, an unwritable ``--out``, not
a run folder), 3 the training diverged (a non-finite loss), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: What the texts of ``tfdgm list`` and ``train MODEL --help`` are made from (package
#: paths): the registry, the run settings, the datasets' table, every model family and
#: the modules of the models' base classes. Their contents key the cached texts, so an
#: edit elsewhere (networks, checks, training, pictures) keeps the cache;
#: tests/test_cli.py checks every registered model's classes are defined in these.
HELP_SOURCES = (
    "models", "__init__.py", "adversarial.py", "base.py", "cli.py", "data.py", "dataset.py",
    "diffusion_sampling.py", "partition.py", "registry.py", "runs.py", "settings.py",
)  # fmt: skip
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"tfdgm: error: {message}", file=sys.stderr)
    return code


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(kind, minimum=None):
    """An argparse type: a ``kind`` at least ``minimum`` (above 0 when None), finite."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not math.isfinite(value)
            or (value < minimum if minimum is not None else value <= 0)
        ):
            what = "an integer" if kind is int else "a number"
            bound = f">= {minimum}" if minimum is not None else "> 0"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _hparam(text: str) -> tuple[str, object]:
    """An argparse type: ``KEY=VALUE`` with VALUE parsed as JSON (else kept a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise argparse.ArgumentTypeError(f"{key.strip()} must be finite, got {value!r}")
    return key.strip(), parsed


def _parser(model_help: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="tfdgm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser(
        "train",
        help="train a model and write a run folder",
        description="Train a registered model and write a run folder (resumes a killed run).",
        epilog=model_help or "`tfdgm train MODEL --help` lists MODEL's defaults and hparams.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("model", help="a registered model (see `tfdgm list`)")
    train.add_argument("--dataset", help="dataset name (default: the model's own)")
    train.add_argument("--epochs", type=_number(int, 1), help="default: the model's")
    train.add_argument("--batch-size", type=_number(int, 1), help="default: the model's")
    train.add_argument("--learning-rate", type=_number(float), help="default: the model's")
    train.add_argument(
        "--precision", default="float32", choices=["float32", "mixed_float16", "mixed_bfloat16"]
    )
    train.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA-compile the train step (default: the model's measured choice)",
    )
    train.add_argument("--out", help="run folder (default: runs/MODEL-DATASET)")
    train.add_argument(
        "--strategy",
        default="default",
        choices=["default", "mirrored", "multi-worker"],
        help="tf.distribute: one process, all local GPUs, or a worker of the TF_CONFIG cluster",
    )
    train.add_argument("--seed", type=_number(int, 0), default=0)
    train.add_argument(
        "--hparam",
        action="append",
        default=[],
        type=_hparam,
        metavar="KEY=VALUE",
        help="model hyperparameter, e.g. --hparam latent_dim=16 (JSON values)",
    )

    sample = sub.add_parser("sample", help="draw samples from a run's SavedModel export")
    sample.add_argument("run", help="a run folder written by `tfdgm train`")
    sample.add_argument("-n", "--num-samples", type=_number(int, 1), default=64)
    sample.add_argument("--seed", type=_number(int, 0), default=0)
    sample.add_argument("--out", help="picture to write (default: RUN/samples_export.png)")
    sample.add_argument(
        "--label",
        type=_number(int, 0),
        help="class to sample (conditional models; multimodal models: image from label)",
    )
    sample.add_argument("--sampler", help="a diffusion model's sampler (ddpm, ddim)")
    sample.add_argument("--steps", type=_number(int, 1), help="a diffusion model's sampling steps")

    sub.add_parser("list", help="list models and datasets")
    return parser


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow with file descriptor 2 pointed at /dev/null: its C++ start-up
    lines (the absl pre-initialization warning, CUDA stubs on a machine without a GPU)
    ignore ``TF_CPP_MIN_LOG_LEVEL``. A failing import raises as usual, stderr restored."""
    if "tensorflow" in sys.modules:
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _cached(name: str, compute) -> str:
    """``compute()``'s text, kept in ``~/.cache/tfdgm`` (or ``$XDG_CACHE_HOME/tfdgm``)
    under a key of the contents of :data:`HELP_SOURCES`, so that ``list`` and ``train
    MODEL --help`` need not import TensorFlow and every model again until what they show
    can have changed. Without a writable cache it just computes."""
    import hashlib
    import re

    if not re.fullmatch(r"[\w.-]+", name):
        return compute()
    package = os.path.dirname(os.path.abspath(__file__))
    stamp = hashlib.sha256()
    for path in _help_source_files(package):
        with open(path, "rb") as f:
            stamp.update(f"{os.path.relpath(path, package)}:".encode() + f.read())
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(root, "tfdgm", f"{name}-{stamp.hexdigest()[:16]}.txt")
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        pass
    _import_tensorflow_quietly()
    text = compute()
    try:
        from tfdgm import atomic

        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic.write_bytes(path, text.encode())
        folder, kept = os.path.split(path)
        for stale in os.listdir(folder):  # texts of older sources
            if stale != kept and re.fullmatch(rf"{re.escape(name)}-[0-9a-f]{{16}}\.txt", stale):
                os.remove(os.path.join(folder, stale))
    except OSError:
        pass
    return text


def _help_source_files(package: str) -> list[str]:
    """The ``.py`` files of :data:`HELP_SOURCES` under ``package``, sorted."""
    found = []
    for source in HELP_SOURCES:
        path = os.path.join(package, source)
        for folder, _, files in os.walk(path):
            found += [os.path.join(folder, f) for f in files if f.endswith(".py")]
        if os.path.isfile(path):
            found.append(path)
    return sorted(found)


def _model_help(argv: list[str]) -> str | None:
    """The model section of ``train MODEL --help`` (None for any other command line)."""
    if len(argv) < 2 or argv[0] != "train" or not {"-h", "--help"} & set(argv):
        return None
    model = next((a for a in argv[1:] if not a.startswith("-")), None)
    if model is None:
        return None

    def describe() -> str:
        from tfdgm import runs

        try:
            return runs.describe(model)
        except ValueError as error:
            return str(error)

    return _cached(f"help-{model}", describe)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(_model_help(argv)).parse_args(argv)
    if args.command == "list":
        print(_cached("list", lambda: __import__("tfdgm.runs").runs.listing()))
        return 0
    _import_tensorflow_quietly()
    from tfdgm import runs

    try:
        if args.command == "sample":
            out = runs.sample_export(
                args.run, args.num_samples, args.seed, args.out, args.sampler, args.steps,
                args.label,
            )
            print(f"wrote {args.num_samples} samples to {out}")
            return 0
        return _train(args, runs)
    except runs.RunError as error:
        return _fail(str(error))
    except runs.DivergedError as error:
        return _fail(str(error), EXIT_DIVERGED)
    except KeyboardInterrupt:
        print("\ninterrupted; the same command resumes from the last finished epoch")
        return EXIT_INTERRUPTED
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename or ''}", EXIT_FAILED)


def _train(args, runs) -> int:
    from tfdgm import atomic
    from tfdgm.data import num_examples

    run = runs.Run.resolve(
        args.model,
        args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        jit_compile=args.jit,
        precision=args.precision,
        seed=args.seed,
        hparams=dict(args.hparam),
        out=args.out,
        strategy=args.strategy,
    )
    dataset = run.dataset
    print(
        f"training {run.entry.name} on {dataset.name} ({num_examples(dataset.x_train)} train, "
        f"{num_examples(dataset.x_test)} test) for {run.epochs} epochs -> {run.out}"
    )
    metrics = run.execute()
    summary = {k: metrics[k] for k in ("test_nll_nats", "test_bits_per_dim") if k in metrics}
    head = {"run": run.out, "complete": metrics["complete"], "wall_time_s": metrics["wall_time_s"]}
    print(json.dumps(atomic.finite({**head, **summary, "test": metrics["test"]})))
    return EXIT_INTERRUPTED if run.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
