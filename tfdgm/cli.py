"""Command line: ``tfdgm train MODEL``, ``tfdgm sample RUN``, ``tfdgm list``.

``tfdgm train vae`` trains through Keras ``fit`` (with its progress bar) and writes a run
folder: ``metrics.json``, ``config.json``, ``samples.png``, ``training_curve.png`` (plus
``reconstructions.png``, ``density.png`` or model-specific pictures where they apply),
``model.keras`` and the SavedModel ``export/``. An interrupted run (Ctrl-C) still saves
the model and metrics of the epochs done; rerunning the same command resumes from the
last finished epoch (Keras ``BackupAndRestore``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_USAGE = 2


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
    if args.command == "list":
        return _list()
    if args.command == "sample":
        return _sample(args)
    return _train(args)


def _list() -> int:
    from tfdgm import data, registry

    print("models:")
    for name in registry.names():
        entry = registry.get(name)
        print(f"  {name:<12} {entry.family:<16} {entry.description}")
        print(f"  {'':<12} datasets: {', '.join(entry.datasets)}")
    print("datasets:")
    for name in data.list_datasets():
        print(f"  {name}")
    return 0


def _parse_hparams(pairs: list[str]) -> dict:
    hparams = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            hparams[key] = json.loads(value)
        except json.JSONDecodeError:
            hparams[key] = value
    return hparams


def _train(args) -> int:
    from tfdgm import data, registry

    try:
        entry = registry.get(args.model)
    except ValueError as error:
        return _fail(str(error))
    dataset_name = args.dataset or entry.datasets[0]
    if dataset_name not in data.list_datasets():
        return _fail(
            f"unknown dataset {dataset_name!r}; choose one of: {', '.join(data.list_datasets())}"
        )
    if dataset_name not in entry.datasets:
        return _fail(
            f"model {entry.name!r} does not train on {dataset_name!r}; "
            f"choose one of: {', '.join(entry.datasets)}"
        )
    try:
        dataset = data.load(dataset_name)
    except FileNotFoundError as error:
        return _fail(str(error))

    import keras
    import numpy as np

    from tfdgm import plotting

    defaults = entry.defaults
    epochs = args.epochs or defaults.get("epochs", 10)
    batch_size = args.batch_size or defaults.get("batch_size", 64)
    learning_rate = args.learning_rate or defaults.get("learning_rate", 1e-3)
    jit = defaults.get("jit_compile", False) if args.jit is None else args.jit
    hparams = {**defaults.get("hparams", {}), **_parse_hparams(args.hparam)}
    out = args.out or os.path.join("runs", f"{entry.name}-{dataset_name}")
    os.makedirs(out, exist_ok=True)

    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(args.seed)
    model = entry.build(dataset, seed=args.seed, **hparams)
    model.validate(dataset.x_train)
    model.validate(dataset.x_test)
    model.compile_default(learning_rate=learning_rate, jit_compile=jit)
    config = {
        "model": entry.name,
        "dataset": dataset_name,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "precision": args.precision,
        "jit_compile": jit,
        "seed": args.seed,
        "hparams": hparams,
        "image_shape": dataset.image_shape,
        "event_shape": dataset.event_shape,
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2, default=list)

    print(
        f"training {entry.name} on {dataset_name} ({len(dataset.x_train)} train, "
        f"{len(dataset.x_test)} test) for {epochs} epochs -> {out}"
    )
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.BackupAndRestore(os.path.join(out, "backup")),
    ]
    train = dataset.pipeline("train", batch_size=batch_size, seed=args.seed)
    test = dataset.pipeline("test", batch_size=batch_size, shuffle=False)
    interrupted = False
    start = time.perf_counter()
    try:
        history = model.fit(
            train,
            epochs=epochs,
            validation_data=test,
            callbacks=callbacks,
            shuffle=False,
            verbose=1 if sys.stdout.isatty() else 2,
        )
        history = history.history
    except KeyboardInterrupt:
        interrupted = True
        history = getattr(getattr(model, "history", None), "history", None) or {}
        print("\ninterrupted: saving what was trained so far")
    wall = time.perf_counter() - start
    epochs_done = len(history.get("loss", [])) or (0 if interrupted else epochs)

    metrics = {
        "model": entry.name,
        "dataset": dataset_name,
        "interrupted": interrupted,
        "epochs": epochs_done,
        "wall_time_s": round(wall, 2),
        "examples_per_s": round(epochs_done * len(dataset.x_train) / max(wall, 1e-9), 1),
        "train": {k: float(v[-1]) for k, v in history.items() if not k.startswith("val_")},
        "test": model.evaluate(test, verbose=0, return_dict=True),
    }
    if model.has_density:
        log_p = np.concatenate(
            [
                np.asarray(model.log_prob(dataset.x_test[i : i + 100]))
                for i in range(0, len(dataset.x_test), 100)
            ]
        )
        nll = float(-np.mean(log_p))
        metrics["test_nll_nats"] = nll
        metrics["test_bits_per_dim"] = nll / (int(np.prod(dataset.event_shape)) * math.log(2))
    metrics.update(model.summary_metrics(dataset))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2, default=float)

    _pictures(model, dataset, history, out, plotting)
    model.save(os.path.join(out, "model.keras"))
    model.export(os.path.join(out, "export"))
    summary = {k: metrics[k] for k in ("test_nll_nats", "test_bits_per_dim") if k in metrics}
    print(
        json.dumps(
            {"run": out, "wall_time_s": metrics["wall_time_s"], **summary, "test": metrics["test"]},
            default=float,
        )
    )
    return 130 if interrupted else 0


def _pictures(model, dataset, history, out, plotting):
    import matplotlib.pyplot as plt
    import numpy as np

    def save(fig, stem):
        fig.savefig(os.path.join(out, f"{stem}.png"), dpi=100)
        plt.close(fig)

    samples = np.asarray(model.sample(64, seed=(0, 1)))
    if dataset.image_shape is not None:
        vmax = (dataset.num_categories - 1) if dataset.support == "categorical" else None
        save(
            plotting.image_grid(samples, dataset.image_shape, title="samples", vmin=0, vmax=vmax),
            "samples",
        )
        if hasattr(model, "reconstruct"):
            x = dataset.x_test[:32]
            pairs = np.stack([x, np.asarray(model.reconstruct(x))], 1).reshape(64, -1)
            save(
                plotting.image_grid(
                    pairs,
                    dataset.image_shape,
                    ncols=16,
                    title="test images and reconstructions",
                    vmin=0,
                    vmax=vmax,
                ),
                "reconstructions",
            )
    elif dataset.event_shape == (2,):
        more = np.asarray(model.sample(2000, seed=(0, 2)))
        fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
        plotting.scatter_2d(dataset.x_test, title="test data", ax=axes[0])
        plotting.scatter_2d(more, title="model samples", ax=axes[1])
        save(fig, "samples")
        if model.has_density:
            save(plotting.density_2d(lambda g: model.log_prob(g), data=dataset.x_test), "density")
    if history:
        save(plotting.training_curve(history), "training_curve")
    for stem, fig in model.figures(dataset).items():
        save(fig, stem)


def _sample(args) -> int:
    if not os.path.isdir(os.path.join(args.run, "export")):
        return _fail(f"{args.run!r} is not a run folder (no export/ inside)")
    import tensorflow as tf

    from tfdgm import plotting

    with open(os.path.join(args.run, "config.json")) as f:
        config = json.load(f)
    loaded = tf.saved_model.load(os.path.join(args.run, "export"))
    samples = loaded.sample(
        tf.constant(args.num_samples, tf.int32), tf.constant([args.seed, 0], tf.int32)
    ).numpy()
    out = args.out or os.path.join(args.run, "samples_export.png")
    if config.get("image_shape"):
        fig = plotting.image_grid(samples, config["image_shape"], vmin=0)
    else:
        fig = plotting.scatter_2d(samples[:, :2], title="samples")
    fig.savefig(out, dpi=100)
    print(f"wrote {len(samples)} samples to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
