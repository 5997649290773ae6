"""The model built from our JSON definition equals the 2017 reference file, both in OpenSim.

Structure: same bodies, joints, coordinates, muscles, forces, contact geometry, path points and
state variables, in the same order. Dynamics: every state-variable derivative (realized to
Acceleration) agrees to 1e-9 relative at random states, including states with the feet pushed
into the ground and states with all six CoordinateLimitForces engaged.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

osim = pytest.importorskip("opensim")

from l2run.model.build_opensim import build_model  # noqa: E402
from l2run.model.definition import (  # noqa: E402
    DEFINITION_FILE,
    REFERENCE_MODEL_PATH,
    dumps_definition,
    load_definition,
    reference_model_path,
)
from l2run.model.names import LIGAMENTS, MUSCLES  # noqa: E402

if not REFERENCE_MODEL_PATH.parent.is_dir():
    pytest.skip(
        f"reference folder {REFERENCE_MODEL_PATH.parent} is absent: cannot compare the built "
        "model with gait9dof18musc.osim",
        allow_module_level=True,
    )

REL_TOL = 1e-9
# Absolute floor (in each state derivative's own units: rad/s², m/s², 1/s, m/s) for values
# that are zero up to round-off, e.g. the locked lumbar_extension's acceleration (~1e-12).
ABS_FLOOR = 1e-12
N_FREE, N_CONTACT, N_LIGAMENT = 20, 20, 20  # >= 50 random states in all
SEED = 20171113

# Ranges of the random states (rad, m, rad/s, m/s).
PELVIS_TILT = (-0.6, 0.6)
PELVIS_TX = (-2.0, 2.0)
ROTATION_SPEED = (-4.0, 4.0)
TRANSLATION_SPEED = (-2.0, 2.0)
CONTACT_SPEED_SCALE = 0.1
PENETRATION = (0.0005, 0.015)  # m of the lowest foot sphere below the ground plane
AIRBORNE_CLEARANCE = (0.02, 0.2)  # m of the lowest foot sphere above the ground plane
LIGAMENT_OVERSHOOT_DEG = (1.0, 25.0)  # beyond the limit: inside and past the 10° transition
TENDON_STRAIN = (-0.01, 0.05)  # tendon slack to well stretched (Thelen: 0.049 at Fmax)


def _names(model) -> list[str]:
    names = model.getStateVariableNames()
    return [names.get(i) for i in range(names.getSize())]


def _set_names(s) -> list[str]:
    return [s.get(i).getName() for i in range(s.getSize())]


@pytest.fixture(scope="module")
def reference():
    path = reference_model_path()
    assert path is not None, f"{REFERENCE_MODEL_PATH} missing although its folder exists"
    osim.Logger.setLevelString("error")
    model = osim.Model(str(path))
    state = model.initSystem()
    return model, state


@pytest.fixture(scope="module")
def built():
    osim.Logger.setLevelString("error")
    model = build_model()
    state = model.initSystem()
    return model, state


def test_same_components_in_same_order(reference, built):
    ref, new = reference[0], built[0]
    for getter in (
        "getBodySet",
        "getJointSet",
        "getCoordinateSet",
        "getForceSet",
        "getMuscles",
        "getContactGeometrySet",
    ):
        assert _set_names(getattr(new, getter)()) == _set_names(getattr(ref, getter)()), getter
    assert _set_names(ref.getMuscles()) == list(MUSCLES)
    forces = [(f.getName(), f.getConcreteClassName()) for f in ref.getForceSet()]
    assert [(f.getName(), f.getConcreteClassName()) for f in new.getForceSet()] == forces
    assert _names(new) == _names(ref)

    # Every component (frames, path points, transform axes, ...) by path and class; meshes
    # are display-only and not part of our definition.
    def components(model):
        return [
            (c.getAbsolutePathString(), c.getConcreteClassName())
            for c in model.getComponentsList()
            if c.getConcreteClassName() != "Mesh"
        ]

    assert components(new) == components(ref)


def test_same_default_state(reference, built):
    (ref, s_ref), (new, s_new) = reference, built
    for name in _names(ref):
        assert new.getStateVariableValue(s_new, name) == ref.getStateVariableValue(s_ref, name)


def _evaluate(model, state, values: dict[str, float], excitations: np.ndarray) -> dict[str, float]:
    """All state-variable derivatives at `values` with muscle excitations `excitations`."""
    for name, value in values.items():
        model.setStateVariableValue(state, name, value)
    model.realizeVelocity(state)
    controls = osim.Vector(model.getNumControls(), 0.0)
    for i, e in enumerate(excitations):
        controls.set(i, float(e))
    model.setControls(state, controls)  # valid until the state changes; same on both models
    model.realizeAcceleration(state)
    return {n: model.getStateVariableDerivativeValue(state, n) for n in _names(model)}


def _foot_sphere_bottoms(model, state) -> float:
    """Lowest point (ground y, m) over the foot contact spheres at the current positions."""
    model.realizePosition(state)
    lowest = math.inf
    for g in model.getContactGeometrySet():
        sphere = osim.ContactSphere.safeDownCast(g)
        if sphere is None:
            continue
        centre = sphere.getFrame().findStationLocationInGround(state, sphere.get_location())
        lowest = min(lowest, centre.get(1) - sphere.getRadius())
    return lowest


def _random_states(model, state) -> list[tuple[str, dict[str, float], np.ndarray]]:
    """(kind, state-variable values, excitations) for free, contact and ligament states."""
    rng = np.random.default_rng(SEED)
    definition = load_definition()
    limits = {f.coordinate: f for f in definition.coordinate_limit_forces}
    coords = [c for c in definition.coordinates if not c.locked]
    out = []
    kinds = ["free"] * N_FREE + ["contact"] * N_CONTACT + ["ligament"] * N_LIGAMENT
    for k, kind in enumerate(kinds):
        in_contact = kind == "contact" or (kind == "ligament" and k % 2 == 0)
        values: dict[str, float] = {}
        for c in coords:
            path = model.getCoordinateSet().get(c.name).getAbsolutePathString()
            if c.name in limits:
                lim = limits[c.name]
                if kind == "ligament":
                    overshoot = rng.uniform(*LIGAMENT_OVERSHOOT_DEG)
                    deg = (
                        lim.upper_limit + overshoot
                        if rng.random() < 0.5
                        else lim.lower_limit - overshoot
                    )
                else:
                    deg = rng.uniform(lim.lower_limit, lim.upper_limit)
                q = math.radians(deg)
            elif c.name == "pelvis_tilt":
                q = rng.uniform(*PELVIS_TILT)
            elif c.name == "pelvis_tx":
                q = rng.uniform(*PELVIS_TX)
            else:  # pelvis_ty, set below from the feet
                q = 0.0
            speed = ROTATION_SPEED if c.motion_type == "rotational" else TRANSLATION_SPEED
            # Feet in the ground move slowly: a sphere leaving the ground faster than
            # 1/(1.5·dissipation) ≈ 0.44 m/s gets no Hunt–Crossley force at all.
            scale = CONTACT_SPEED_SCALE if in_contact else 1.0
            values[f"{path}/value"] = q
            values[f"{path}/speed"] = scale * rng.uniform(*speed)

        # Height: push the lowest foot sphere into the ground (contact states, and every other
        # ligament state) or hold it above the ground.
        for name, value in values.items():
            model.setStateVariableValue(state, name, value)
        ty = "/jointset/ground_pelvis/pelvis_ty/value"
        model.setStateVariableValue(state, ty, 0.0)
        bottom = _foot_sphere_bottoms(model, state)
        offset = -rng.uniform(*PENETRATION) if in_contact else rng.uniform(*AIRBORNE_CLEARANCE)
        values[ty] = offset - bottom

        # Muscles: activation anywhere in [0.01, 1]; fibre length from the muscle-tendon
        # length at this pose and a random tendon strain (constant-width pennation).
        for name, value in values.items():
            model.setStateVariableValue(state, name, value)
        model.realizePosition(state)
        for m in definition.muscles:
            muscle = model.getMuscles().get(m.name)
            lmt = muscle.getLength(state)
            width = m.optimal_fiber_length * math.sin(m.pennation_angle_at_optimal)
            along = lmt - m.tendon_slack_length * (1.0 + rng.uniform(*TENDON_STRAIN))
            fiber = math.hypot(max(along, 0.3 * m.optimal_fiber_length), width)
            base = muscle.getAbsolutePathString()
            values[f"{base}/activation"] = rng.uniform(m.minimum_activation, 1.0)
            values[f"{base}/fiber_length"] = fiber
        out.append((kind, values, rng.uniform(0.0, 1.0, len(MUSCLES))))
    return out


@pytest.fixture(scope="module")
def random_states(reference):
    return _random_states(*reference)


def _compare(ref_derivs: dict[str, float], new_derivs: dict[str, float]) -> float:
    """Largest relative difference; asserts each derivative is within tolerance."""
    worst = 0.0
    for name, a in ref_derivs.items():
        b = new_derivs[name]
        scale = max(abs(a), abs(b))
        assert abs(a - b) <= REL_TOL * scale + ABS_FLOOR, f"{name}: reference {a}, built {b}"
        if scale > ABS_FLOOR:
            worst = max(worst, abs(a - b) / scale)
    return worst


def test_equal_state_derivatives(reference, built, random_states, record_property):
    (ref, s_ref), (new, s_new) = reference, built
    assert _names(ref) == _names(new)
    worst = 0.0
    contact_seen = ligaments_seen = ligaments_in_contact = 0
    for kind, values, excitations in random_states:
        d_ref = _evaluate(ref, s_ref, values, excitations)
        d_new = _evaluate(new, s_new, values, excitations)
        worst = max(worst, _compare(d_ref, d_new))

        # The states must exercise what they claim to (otherwise this test proves little).
        grf = [ref.getForceSet().get(n).getRecordValues(s_ref) for n in ("foot_r", "foot_l")]
        grf_y = [abs(g.get(1)) for g in grf]  # force on the ground geometry, y (N)
        if kind == "contact":
            assert max(grf_y) > 0.0, "contact state without ground reaction force"
            contact_seen += 1
        if kind == "ligament":
            torques = [
                osim.CoordinateLimitForce.safeDownCast(ref.getForceSet().get(n)).calcLimitForce(
                    s_ref
                )
                for n in LIGAMENTS
            ]
            assert all(abs(t) > 0.0 for t in torques), f"ligament state with idle limits {torques}"
            ligaments_seen += 1
            ligaments_in_contact += max(grf_y) > 0.0
    assert contact_seen == N_CONTACT and ligaments_seen == N_LIGAMENT
    assert ligaments_in_contact >= N_LIGAMENT // 4, "too few ligament states touch the ground"
    record_property("max_relative_derivative_error", worst)
    print(f"max relative state-derivative difference over {len(random_states)} states: {worst:.3g}")


def test_excitation_reaches_the_derivatives(reference, random_states):
    """The control path is live: a different excitation changes that muscle's activation rate."""
    ref, s_ref = reference
    _, values, excitations = random_states[0]
    d0 = _evaluate(ref, s_ref, values, excitations)
    changed = excitations.copy()
    changed[0] = 1.0 - changed[0]
    d1 = _evaluate(ref, s_ref, values, changed)
    name = f"/forceset/{MUSCLES[0]}/activation"
    assert d1[name] != d0[name]


@pytest.mark.parametrize("what", ["knee_spline", "tendon_strain", "ligament_stiffness"])
def test_comparison_detects_a_wrong_number(reference, random_states, what):
    """A model built from a slightly wrong definition fails the derivative comparison."""
    d = load_definition()
    if what == "knee_spline":
        knee = d.joint("knee_r")
        axes = list(knee.spatial_transform)
        spline = axes[4].function  # translation2: tibia y offset, a function of knee angle
        axes[4] = replace(axes[4], function=replace(spline, y=tuple(y * 1.001 for y in spline.y)))
        joints = tuple(
            replace(j, spatial_transform=tuple(axes)) if j.name == "knee_r" else j for j in d.joints
        )
        d = replace(d, joints=joints)
    elif what == "tendon_strain":
        muscles = tuple(
            replace(m, fmax_tendon_strain=m.fmax_tendon_strain * 1.001)
            if m.name == "soleus_l"
            else m
            for m in d.muscles
        )
        d = replace(d, muscles=muscles)
    else:
        limits = tuple(
            replace(
                f,
                upper_stiffness=f.upper_stiffness * 1.001,
                lower_stiffness=f.lower_stiffness * 1.001,
            )
            if f.name == "AnkleLimit_r"
            else f
            for f in d.coordinate_limit_forces
        )
        d = replace(d, coordinate_limit_forces=limits)
    wrong = build_model(d)
    s_wrong = wrong.initSystem()
    ref, s_ref = reference
    kind, values, excitations = random_states[N_FREE + N_CONTACT]  # contact + all ligaments
    with pytest.raises(AssertionError):
        _compare(
            _evaluate(ref, s_ref, values, excitations),
            _evaluate(wrong, s_wrong, values, excitations),
        )


def test_extractor_reproduces_the_committed_json():
    """Re-extracting the reference gives the committed definition file byte for byte."""
    script = Path(__file__).resolve().parents[2] / "scripts" / "extract_model.py"
    spec = importlib.util.spec_from_file_location("extract_model", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert dumps_definition(module.extract(reference_model_path())) == DEFINITION_FILE.read_text()
