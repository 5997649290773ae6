"""Save and load NamedTuple-of-arrays pytrees as flat `.npz` files (no pickle).

Keys are the field paths joined by "/" (e.g. ``tree/mass``); loading rebuilds the nested
NamedTuples from the class's type hints (fields typed `Static` come back as `Static`), so the
file holds only numbers.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import numpy as np

from l2run.engines.jax.static import Static

SEPARATOR = "/"
META_PREFIX = "__meta__"


def _is_namedtuple_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """{"a/b": array} for every array leaf of a nest of NamedTuples."""
    out: dict[str, np.ndarray] = {}
    for name in tree._fields:
        value = getattr(tree, name)
        key = f"{prefix}{name}"
        if hasattr(value, "_fields"):
            out.update(flatten(value, key + SEPARATOR))
        else:
            out[key] = np.asarray(value)
    return out


def unflatten(cls: type, arrays: dict[str, np.ndarray], prefix: str = "") -> Any:
    """Rebuild `cls` (a NamedTuple, possibly nested) from `flatten`'s dict."""
    hints = typing.get_type_hints(cls)
    values = {}
    for name in cls._fields:
        key = f"{prefix}{name}"
        tp = hints.get(name)
        if _is_namedtuple_type(tp):
            values[name] = unflatten(tp, arrays, key + SEPARATOR)
        else:
            if key not in arrays:
                raise ValueError(
                    f"parameter file lacks {key!r}: recompile it (l2run model compile)"
                )
            values[name] = Static(arrays[key]) if tp is Static else arrays[key]
    return cls(**values)


def save(path: Path, tree: Any, meta: dict[str, str]) -> None:
    """Write `tree` and string metadata to `path` (.npz, compressed)."""
    arrays = flatten(tree)
    for k, v in meta.items():
        arrays[META_PREFIX + k] = np.asarray(v)
    np.savez_compressed(path, **arrays)


def load(path: Path, cls: type) -> tuple[Any, dict[str, str]]:
    """(tree, metadata) from a file written by `save`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = {k[len(META_PREFIX) :]: str(v) for k, v in arrays.items() if k.startswith(META_PREFIX)}
    return unflatten(cls, arrays), meta
