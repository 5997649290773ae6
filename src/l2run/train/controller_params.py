"""Parameter vectors of the hand-designed controllers (`gait`, `walker`, `cruiser`): named
groups in a flat vector, and the JSON file a tuned vector is shipped in (`{"kind", "params",
"meta"}`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from l2run.train.json_files import read_json_object

Layout = tuple[tuple[str, int], ...]  # (group name, length) in vector order


def group_offsets(layout: Layout) -> dict[str, int]:
    """Index of each group's first value in the flat vector."""
    offsets, i = {}, 0
    for name, n in layout:
        offsets[name] = i
        i += n
    return offsets


def split_params(params: Any, layout: Layout, kind: str, xp: Any = np) -> dict[str, Any]:
    """Split a flat parameter vector into its named groups; a clear error on a wrong length."""
    params = np.asarray(params, dtype=float) if xp is np else params
    size = sum(n for _, n in layout)
    if params.shape != (size,):
        raise ValueError(f"{kind} parameters must have shape ({size},), got {params.shape}")
    offsets = group_offsets(layout)
    return {name: params[offsets[name] : offsets[name] + n] for name, n in layout}


def write_policy_file(path: str | Path, kind: str, params: np.ndarray, meta: dict) -> None:
    """Write a tuned vector and its metadata (command, seed, ...) as JSON."""
    data = {"kind": kind, "params": [float(x) for x in params], "meta": meta}
    Path(path).write_text(json.dumps(data, indent=1))


def read_policy_data(path: str | Path) -> dict:
    """The parsed JSON of a policy file (its `kind` says which controller reads it);
    ValueError for a file that cannot be read or holds no JSON object."""
    return read_json_object(path, what="the policy file", holds="with 'kind' and 'params'")


def read_policy_file(
    path: str | Path, kind: str, data: dict | None = None
) -> tuple[np.ndarray, dict]:
    """(params, meta) from a file written by `write_policy_file` for the same `kind`; `data`:
    the file's JSON when the caller has already parsed it."""
    data = read_policy_data(path) if data is None else data
    if data.get("kind") != kind:
        raise ValueError(f"{path} is not a {kind}-policy file (kind={data.get('kind')!r})")
    if "params" not in data:
        raise ValueError(f"{path} has no 'params'")
    try:
        params = np.asarray(data["params"], dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: 'params' must be a list of numbers") from None
    if params.ndim != 1 or not np.all(np.isfinite(params)):
        raise ValueError(f"{path}: 'params' must be a flat list of finite numbers")
    return params, data.get("meta", {})
