"""`tfdgm train` on a dataset the model's registry entry does not list yet.

    python scripts/train_unlisted.py MODEL --dataset DATASET [any other `tfdgm train` option]

Runs exactly what `tfdgm train MODEL --dataset DATASET ...` would, after adding DATASET to
MODEL's registry entry in this process only (nothing is written to the registry): the run,
its metrics.json and its figures are those of the ordinary command, with the entry's
general defaults (a ``dataset_defaults`` entry exists only for a dataset the entry lists).
docs/mnist5k.md's first runs of RealNVP, MAF, the DBN, the Helmholtz machine, the GANs and
the MMD network went through it, before their entries listed `mnist5k` (or
`mnist5k-continuous`); they all do now.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tfdgm import cli, registry, settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("model")
    parser.add_argument("--dataset", required=True)
    known, _ = parser.parse_known_args(argv)
    entry, _ = settings.lookup(known.model)
    if known.dataset not in entry.datasets:
        datasets = (*entry.datasets, known.dataset)
        registry.MODELS[entry.name] = dataclasses.replace(entry, datasets=datasets)
    return cli.main(["train", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
