"""The one check every trainer's resume makes: a resumed run keeps its settings, all but a few."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

ABSENT = "<absent>"


def _as_json(value: Any) -> Any:
    """`value` as a JSON file holds it (tuples as lists, keys as strings), so a setting read
    back from a run's file equals the one given now."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return value


def changed_settings(
    saved: Mapping[str, Any], now: Mapping[str, Any], may_change: Collection[str]
) -> list[str]:
    """'name: the run's X, now Y' for each setting outside `may_change` whose value `now`
    differs from the run's `saved` one (a setting only one of them has counts as changed)."""
    changed = []
    for name in sorted(set(saved) | set(now)):
        if name in may_change:
            continue
        theirs, ours = saved.get(name, ABSENT), now.get(name, ABSENT)
        if _as_json(theirs) != _as_json(ours):
            changed.append(f"{name}: the run's {theirs!r}, now {ours!r}")
    return changed


def check_same_settings(
    run: str | Path, saved: Mapping[str, Any], now: Mapping[str, Any], may_change: Collection[str]
) -> None:
    """ValueError naming every changed setting unless `now` equals the run's `saved` settings
    outside `may_change`."""
    changed = changed_settings(saved, now, may_change)
    if changed:
        raise ValueError(
            f"cannot resume {run} with other settings (only {', '.join(may_change)} may "
            f"change): {'; '.join(changed)}"
        )
