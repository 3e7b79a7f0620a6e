"""The data format across the sandbox boundary: JSON plus arrays, never pickle.

A message is a dict of plain values: ``np.ndarray`` (numeric or bool dtype), NumPy scalars,
``None``/bool/int/float/str, and lists, tuples and str-keyed dicts of them. ``write`` stores it
in a directory as ``<stem>.json`` (the tree, each array replaced by ``{"$nd": "a<i>"}``) and
``<stem>.npz`` (the arrays, uncompressed). NumPy scalars come back as 0-d arrays, tuples as
lists. ``read`` is the trusted side's reader: it refuses links, special files and anything over
a byte budget before loading it, loads arrays with ``allow_pickle=False``, and checks the tree's
structure; every refusal is a ``WireError``.
"""
from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np

ARRAY_KEY = "$nd"
ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex: no object, str, void or datetime
MAX_DEPTH = 64
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}


class WireError(ValueError):
    """A message that is not plain data, too big, or malformed."""


def _encode(value, arrays: dict, depth: int):
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is np.ndarray or (isinstance(value, np.generic) and kind is np.dtype(kind).type):
        array = np.asarray(value)
        if array.dtype.kind not in ARRAY_KINDS:
            raise WireError(f"arrays of dtype {array.dtype} cannot cross the boundary")
        name = f"a{len(arrays)}"
        arrays[name] = array
        return {ARRAY_KEY: name}
    if kind in (list, tuple):
        return [_encode(item, arrays, depth + 1) for item in value]
    if kind is dict:
        if ARRAY_KEY in value:
            raise WireError(f"the key {ARRAY_KEY!r} is reserved")
        if not all(type(key) is str for key in value):
            raise WireError("dict keys must be str")
        return {key: _encode(item, arrays, depth + 1) for key, item in value.items()}
    raise WireError(f"a value of type {kind.__module__}.{kind.__qualname__} is not plain data")


def write(directory: Path, message: dict, stem: str = "out") -> None:
    """Store ``message`` in ``directory`` as ``<stem>.json`` and ``<stem>.npz``; WireError if not plain."""
    if type(message) is not dict:
        raise WireError("a message is a dict")
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(message, arrays, 0)
    directory = Path(directory)
    if arrays:
        with open(directory / f"{stem}.npz", "wb") as file:
            np.savez(file, **arrays)
    # The JSON goes last: its presence means the message is complete.
    text = json.dumps(tree, allow_nan=True, separators=(",", ":"))
    with open(directory / f"{stem}.json", "w", encoding="utf-8") as file:
        file.write(text)


def open_regular(path: Path, max_bytes: int):
    """Open ``path`` for reading only if it is a regular, single-linked file of at most max_bytes.

    Returns None when it does not exist. O_NOFOLLOW and O_NONBLOCK keep a symlink or a FIFO
    planted by the student from redirecting or blocking the trusted reader.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise WireError(f"{Path(path).name} cannot be opened safely: {error.strerror}") from None
    info = os.fstat(fd)
    problem = ("is not a regular file" if not stat.S_ISREG(info.st_mode)
               else "is a hard link" if info.st_nlink != 1
               else f"is larger than {max_bytes} bytes" if info.st_size > max_bytes else None)
    if problem:
        os.close(fd)
        raise WireError(f"{Path(path).name} {problem}")
    return os.fdopen(fd, "rb")


def _read_arrays(file, budget: int) -> dict[str, np.ndarray]:
    arrays = {}
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
            if sum(entry.file_size for entry in entries) > budget or len(entries) > 100_000:
                raise WireError("the arrays are larger than the result budget")
            for entry in entries:
                if not entry.filename.endswith(".npy"):
                    raise WireError(f"unexpected entry {entry.filename!r}")
                with archive.open(entry) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in _HEADER_READERS:
                        raise WireError(f"unsupported .npy version {version}")
                    shape, _, dtype = _HEADER_READERS[version](member)
                    if dtype.hasobject or dtype.kind not in ARRAY_KINDS:
                        raise WireError(f"an array of dtype {dtype} is not allowed")
                    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    budget -= size
                    if budget < 0:
                        raise WireError("the arrays are larger than the result budget")
                with archive.open(entry) as member:
                    arrays[entry.filename[:-4]] = np.lib.format.read_array(member, allow_pickle=False)
    except WireError:
        raise
    except Exception as error:  # zipfile, header or data errors: all mean a malformed file
        raise WireError(f"the arrays cannot be read: {type(error).__name__}: {error}") from None
    return arrays


def _decode(node, arrays: dict, depth: int):
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    kind = type(node)
    if node is None or kind in (bool, int, float, str):
        return node
    if kind is list:
        return [_decode(item, arrays, depth + 1) for item in node]
    if kind is dict:
        if ARRAY_KEY in node:
            name = node[ARRAY_KEY]
            if len(node) != 1 or type(name) is not str or name not in arrays:
                raise WireError("a broken array reference")
            return arrays[name]
        return {key: _decode(item, arrays, depth + 1) for key, item in node.items()}
    raise WireError(f"unexpected JSON value of type {kind.__name__}")


def read(directory: Path, stem: str = "out", *, max_bytes: int) -> dict | None:
    """Load the message ``write`` stored; None when ``<stem>.json`` is absent.

    max_bytes bounds the JSON file and, separately, the arrays' total size in memory; both are
    checked before anything is loaded. Raises WireError on anything that is not a valid message.
    """
    directory = Path(directory)
    json_file = open_regular(directory / f"{stem}.json", max_bytes)
    if json_file is None:
        return None
    with json_file:
        raw = json_file.read(max_bytes + 1)
    try:
        tree = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise WireError(f"{stem}.json is not valid JSON: {type(error).__name__}") from None
    if type(tree) is not dict:
        raise WireError("a message is a dict")
    arrays: dict[str, np.ndarray] = {}
    npz_file = open_regular(directory / f"{stem}.npz", max_bytes)
    if npz_file is not None:
        with npz_file:
            arrays = _read_arrays(npz_file, max_bytes)
    return _decode(tree, arrays, 0)
