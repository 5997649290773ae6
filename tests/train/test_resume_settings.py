"""The resume check every trainer shares (`l2run.train.resume_settings`)."""

from __future__ import annotations

import pytest

from l2run.train.resume_settings import ABSENT, changed_settings, check_same_settings


def test_only_settings_outside_the_changeable_ones_count() -> None:
    saved = {"lr": 0.1, "steps": 10, "hidden": [64, 64], "frozen": ("a",)}
    now = {"lr": 0.2, "steps": 20, "hidden": (64, 64), "frozen": ["a"]}
    # tuples and lists are equal, as a JSON file gives back what was written as either
    assert changed_settings(saved, now, ("steps",)) == ["lr: the run's 0.1, now 0.2"]
    assert changed_settings(saved, now, ("steps", "lr")) == []


def test_a_setting_only_one_side_has_is_a_change() -> None:
    assert changed_settings({"a": 1}, {"a": 1, "b": 2}, ()) == [f"b: the run's {ABSENT!r}, now 2"]
    assert changed_settings({"a": 1, "c": None}, {"a": 1}, ()) == [
        f"c: the run's None, now {ABSENT!r}"
    ]


def test_the_error_names_the_run_what_may_change_and_every_change() -> None:
    with pytest.raises(ValueError) as info:
        check_same_settings("runs/x", {"a": 1, "b": 2, "n": 1}, {"a": 3, "b": 4, "n": 9}, ("n",))
    assert str(info.value) == (
        "cannot resume runs/x with other settings (only n may change): "
        "a: the run's 1, now 3; b: the run's 2, now 4"
    )
    check_same_settings("runs/x", {"a": 1, "n": 1}, {"a": 1, "n": 9}, ("n",))  # no error
