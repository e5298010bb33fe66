"""Command line: ``tfdgm train MODEL``, ``tfdgm sample RUN``, ``tfdgm list``.

``tfdgm train vae`` trains through Keras ``fit`` (with its progress bar) and writes a run
folder: ``metrics.json``, ``config.json``, ``samples.png``, ``training_curve.png`` (plus
``reconstructions.png``, ``density.png`` or model-specific pictures where they apply),
``model.keras`` and the SavedModel ``export/``. An interrupted run (Ctrl-C) still saves
the model and metrics of the epochs done; rerunning the same command resumes from the
last finished epoch (Keras ``BackupAndRestore``). This module only parses arguments;
the run itself (settings, training, measurements, files) is :mod:`tfdgm.runs`. Exit
codes: 0 done, 2 a usage error (unknown model or dataset, not a run folder), 130
interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail(message: str) -> int:
    print(f"tfdgm: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfdgm", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and write a run folder")
    train.add_argument("model", help="a registered model (see `tfdgm list`)")
    train.add_argument("--dataset", help="dataset name (default: the model's own)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--learning-rate", type=float)
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
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model hyperparameter, e.g. --hparam latent_dim=16 (JSON values)",
    )

    sample = sub.add_parser("sample", help="draw samples from a run's SavedModel export")
    sample.add_argument("run", help="a run folder written by `tfdgm train`")
    sample.add_argument("-n", "--num-samples", type=int, default=64)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", help="picture to write (default: RUN/samples_export.png)")

    sub.add_parser("list", help="list models and datasets")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from tfdgm import runs

    try:
        if args.command == "list":
            print(runs.listing())
            return 0
        if args.command == "sample":
            out = runs.sample_export(args.run, args.num_samples, args.seed, args.out)
            print(f"wrote {args.num_samples} samples to {out}")
            return 0
        return _train(args, runs)
    except runs.RunError as error:
        return _fail(str(error))


def _parse_hparams(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs as a dict, each value parsed as JSON (else kept a string)."""
    hparams = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            hparams[key] = json.loads(value)
        except json.JSONDecodeError:
            hparams[key] = value
    return hparams


def _train(args, runs) -> int:
    run = runs.Run.resolve(
        args.model,
        args.dataset,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        jit_compile=args.jit,
        precision=args.precision,
        seed=args.seed,
        hparams=_parse_hparams(args.hparam),
        out=args.out,
    )
    dataset = run.dataset
    print(
        f"training {run.entry.name} on {dataset.name} ({len(dataset.x_train)} train, "
        f"{len(dataset.x_test)} test) for {run.epochs} epochs -> {run.out}"
    )
    metrics = run.execute()
    summary = {k: metrics[k] for k in ("test_nll_nats", "test_bits_per_dim") if k in metrics}
    print(
        json.dumps(
            {
                "run": run.out,
                "wall_time_s": metrics["wall_time_s"],
                **summary,
                "test": metrics["test"],
            },
            default=float,
        )
    )
    return EXIT_INTERRUPTED if run.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
