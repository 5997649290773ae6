"""Reading and writing the JSON files training uses (configs, run settings, policy files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l2run.atomic_files import write_bytes_atomically


def read_json_object(path: str | Path, what: str = "", holds: str = "") -> dict[str, Any]:
    """The JSON object in `path`; ValueError naming the file when it cannot be read, is not
    JSON or holds anything but an object. `what` names the file in the unreadable case ("the
    policy file"); `holds` says what the object should contain."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {what + ' ' if what else ''}{path}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path} must hold a JSON object{' ' + holds if holds else ''}, "
            f"not {type(data).__name__}"
        )
    return data


def write_json_object(path: str | Path, data: dict[str, Any]) -> None:
    """`data` as indented JSON at `path`, replacing any file there only once complete (a run
    killed mid-write keeps the previous file, which a resumed run reads)."""
    write_bytes_atomically(path, json.dumps(data, indent=1).encode())
