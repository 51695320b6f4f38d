"""Strict JSON for every file tfrecap writes: a missing or non-finite figure is ``null``.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which no strict parser (``jq``,
JavaScript, Go) reads, and its ``default=`` hook never sees floats. So payloads are converted
first (:func:`to_jsonable`), then dumped with ``allow_nan=False``, which would raise rather
than write an invalid file. Writes go through a temporary file and a rename, so a reader never
sees half a file.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path


def to_jsonable(value):
    """``value`` as plain JSON types: NaN and ±inf become ``None``, NumPy scalars and arrays
    become numbers and lists, tuples lists, paths strings; mapping keys become strings."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays, tf EagerTensors via numpy()
        return to_jsonable(value.tolist())
    if hasattr(value, "numpy"):
        return to_jsonable(value.numpy())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    raise TypeError(f"cannot write {type(value).__name__} as JSON: {value!r}")


def dumps(payload, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``payload`` (see :func:`to_jsonable`)."""
    return json.dumps(to_jsonable(payload), indent=indent, sort_keys=sort_keys, allow_nan=False)


def write_json(path: str | os.PathLike, payload, *, sort_keys: bool = False) -> Path:
    """Write ``payload`` as strict JSON to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    text = dumps(payload, sort_keys=sort_keys) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def loads_strict(text: str):
    """Parse ``text`` refusing ``NaN``/``Infinity``, as a strict parser would (for tests)."""

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)
