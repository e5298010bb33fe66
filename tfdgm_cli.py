"""The ``tfdgm`` command's entry point, kept outside the package so that it starts fast.

``import tfdgm.cli`` runs ``tfdgm/__init__.py`` first, which imports TensorFlow and every
model (10 s or more). The parser in ``tfdgm/cli.py`` needs only the standard library, so
this module loads that file by its path without running the package ``__init__``:
``tfdgm --help``, ``tfdgm list`` and ``tfdgm train MODEL --help`` (the last two from a
cache under ``~/.cache/tfdgm``) then answer without TensorFlow, and a command that needs
it imports it (and the package) itself. ``python -m tfdgm.cli`` is the same command.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _load_cli():
    """The ``tfdgm/cli.py`` module, loaded without importing the ``tfdgm`` package."""
    if "tfdgm" in sys.modules:  # already paid for
        import tfdgm.cli

        return tfdgm.cli
    package = importlib.util.find_spec("tfdgm")  # finds, does not import
    folders = list(package.submodule_search_locations or []) if package else []
    if not folders:
        import tfdgm.cli

        return tfdgm.cli
    spec = importlib.util.spec_from_file_location(
        "tfdgm_cli_main", os.path.join(folders[0], "cli.py")
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    """Run ``tfdgm`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    return _load_cli().main(argv)


if __name__ == "__main__":
    sys.exit(main())
