"""One module per model family; importing this package registers every model.

Every module in this package is imported, so a new family registers itself by existing.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
