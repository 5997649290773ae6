"""The JSON definition: round trip, consistency with `l2run.model.names`, bad input, export."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from l2run.cli import app
from l2run.model import names
from l2run.model.definition import (
    DEFINITION_FILE,
    ConditionalPathPoint,
    MovingPathPoint,
    SimmSpline,
    definition_from_dict,
    definition_to_dict,
    dumps_definition,
    load_definition,
)


def test_json_round_trips_exactly():
    text = DEFINITION_FILE.read_text()
    definition = load_definition()
    assert dumps_definition(definition) == text
    assert definition_from_dict(json.loads(text)) == definition
    assert definition_from_dict(definition_to_dict(definition)) == definition


def test_names_module_matches_the_definition():
    d = load_definition()
    assert tuple(c.name for c in d.coordinates if not c.locked) == names.COORDINATES
    assert tuple(c.name for c in d.coordinates if c.locked) == names.LOCKED_COORDINATES
    assert tuple(m.name for m in d.muscles) == names.MUSCLES
    assert tuple(f.name for f in d.coordinate_limit_forces) == names.LIGAMENTS
    assert tuple(f.name for f in d.contact_forces) == names.FOOT_CONTACTS
    assert tuple(b.name for b in d.bodies) == names.BODIES
    assert set(names.OBS_BODIES) <= set(names.BODIES)


def test_definition_holds_the_2017_model_features():
    d = load_definition()
    assert d.gravity[1] < 0
    assert d.default_pose["pelvis_ty"] > 0.5  # standing, feet near the ground
    knee = d.joint("knee_r")
    assert knee.type == "CustomJoint"
    assert any(isinstance(a.function, SimmSpline) for a in knee.spatial_transform)
    points = [p for m in d.muscles for p in m.path]
    assert any(isinstance(p, ConditionalPathPoint) for p in points)
    assert any(isinstance(p, MovingPathPoint) for p in points)
    spheres = [g for g in d.contact_geometry if g.kind == "ContactSphere"]
    assert len(spheres) == 4
    assert all(m.type == "Thelen2003Muscle" for m in d.muscles)


def _raw() -> dict:
    return json.loads(DEFINITION_FILE.read_text())


def test_missing_key_is_a_clear_error():
    raw = _raw()
    del raw["muscles"][0]["max_isometric_force"]
    with pytest.raises(ValueError, match=r"muscles\[0\].*max_isometric_force"):
        definition_from_dict(raw)


def test_wrong_type_is_a_clear_error():
    raw = _raw()
    raw["bodies"][0]["mass"] = "heavy"
    with pytest.raises(ValueError, match=r"bodies\[0\]\.mass"):
        definition_from_dict(raw)


def test_unknown_reference_is_a_clear_error():
    raw = _raw()
    raw["muscles"][0]["path"][0]["body"] = "wing"
    with pytest.raises(ValueError, match="wing"):
        definition_from_dict(raw)


def test_bad_file_is_a_value_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{ not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_definition(path)


def test_export_writes_a_loadable_model(tmp_path):
    osim = pytest.importorskip("opensim")
    out = tmp_path / "runner.osim"
    result = CliRunner().invoke(app, ["model", "export", str(out)])
    assert result.exit_code == 0, result.output
    osim.Logger.setLevelString("error")
    model = osim.Model(str(out))
    model.initSystem()
    d = load_definition()
    coords = model.getCoordinateSet()
    assert [coords.get(i).getName() for i in range(coords.getSize())] == [
        c.name for c in d.coordinates
    ]
    assert model.getMuscles().getSize() == len(d.muscles)
    assert model.getForceSet().getSize() == len(d.force_order)


def test_export_uses_a_given_definition(tmp_path):
    osim = pytest.importorskip("opensim")
    d = load_definition()
    heavier = replace(d, bodies=tuple(replace(b, mass=b.mass * 2) for b in d.bodies))
    source = tmp_path / "heavy.json"
    source.write_text(dumps_definition(heavier))
    out = tmp_path / "heavy.osim"
    result = CliRunner().invoke(app, ["model", "export", str(out), "--definition", str(source)])
    assert result.exit_code == 0, result.output
    osim.Logger.setLevelString("error")
    model = osim.Model(str(out))
    assert model.getBodySet().get("pelvis").getMass() == pytest.approx(2 * d.body("pelvis").mass)


def test_export_rejects_a_broken_definition(tmp_path):
    pytest.importorskip("opensim")
    source = tmp_path / "broken.json"
    source.write_text("[]")
    result = CliRunner().invoke(
        app, ["model", "export", str(tmp_path / "x.osim"), "--definition", str(source)]
    )
    assert result.exit_code != 0
    assert not (tmp_path / "x.osim").exists()


def test_model_commands_have_help():
    runner = CliRunner()
    for args in (["model", "--help"], ["model", "export", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
