"""Files that a kill never leaves half-written: write under a temporary name, then rename.

``os.replace`` is atomic on POSIX: a reader (or the next run) sees either the old file or
the new one, never a mixture, whatever instant the writer is killed at. Every writer here
writes ``<stem>.tmp-<pid><suffix>`` next to the target (same filesystem), flushes it to
disk, and renames it over the target. A kill leaves at most a stray ``*.tmp-*`` entry,
which :func:`remove_leftovers` deletes. A folder (the SavedModel export) is swapped in
two renames, the old one moved aside first; a kill between them leaves no folder under
the name, which the run that follows writes again (see :mod:`tfdgm.runs`).

>>> import tempfile
>>> path = write_json(os.path.join(tempfile.mkdtemp(), "m.json"), {"loss": float("nan")})
>>> open(path).read()
'{\\n  "loss": null\\n}'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil

import numpy as np

TMP = ".tmp-"
OLD = ".old-"


def temporary_name(path: str) -> str:
    """``dir/stem.tmp-<pid>.ext`` for ``dir/stem.ext`` (the suffix kept: Keras and
    matplotlib choose the format from it)."""
    head, tail = os.path.split(os.fspath(path))
    stem, dot, suffix = tail.partition(".")
    return os.path.join(head, f"{stem}{TMP}{os.getpid()}{dot}{suffix}")


def _fsync(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def replacing(path: str):
    """Context manager yielding a temporary path to write ``path``'s new content to; on
    a clean exit it is flushed and renamed over ``path``, on an error it is removed.

    >>> import tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> with replacing(target) as tmp:
    ...     _ = open(tmp, "w").write("new")
    >>> open(target).read()
    'new'
    """
    tmp = temporary_name(path)
    try:
        yield tmp
        if os.path.isdir(tmp):
            replace_dir(tmp, path)
        else:
            _fsync(tmp)
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def replace_dir(src: str, dst: str) -> None:
    """Move folder ``src`` to ``dst``, replacing a folder there (moved aside first)."""
    old = None
    if os.path.lexists(dst):
        old = f"{dst}{OLD}{os.getpid()}"
        _remove(old)
        os.rename(dst, old)
    os.rename(src, dst)
    if old is not None:
        _remove(old)


def write_bytes(path: str, content: bytes) -> str:
    with replacing(path) as tmp, open(tmp, "wb") as f:
        f.write(content)
    return path


def write_json(path: str, obj) -> str:
    """Write ``obj`` as strict JSON (NaN and infinities become ``null``), atomically."""
    text = json.dumps(finite(obj), indent=2, allow_nan=False)
    return write_bytes(path, text.encode())


def finite(obj):
    """``obj`` with NumPy values and tuples as plain Python, non-finite floats as None."""
    if isinstance(obj, dict):
        return {str(k): finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)) or hasattr(obj, "__float__"):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def remove_leftovers(folder: str) -> list[str]:
    """Delete the temporary and set-aside entries a killed writer left in ``folder``;
    returns their names. A set-aside folder whose target is missing is moved back."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if OLD in name:
            target = path[: path.rindex(OLD)]
            if not os.path.lexists(target):
                os.rename(path, target)
                continue
        elif TMP not in name:
            continue
        _remove(path)
        removed.append(name)
    return removed


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
