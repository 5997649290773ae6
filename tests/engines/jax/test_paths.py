"""Muscle paths in JAX against OpenSim 4.6 computed live: points, lengths, speeds, moment arms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import paths
from l2run.model.definition import ConditionalPathPoint, load_definition
from l2run.model.names import COORDINATES, MUSCLES

REL_TOL = 1e-8
N_STATES = 80
N_MOMENT_ARM_STATES = 10


def _reference():
    """The live OpenSim reference (skips the calling test where opensim is not installed)."""
    pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")
    from tests.engines.jax import forces_reference

    return forces_reference


def _conditions(d) -> list[tuple[int, float, float]]:
    out = []
    for m in d.muscles:
        for pt in m.path:
            if isinstance(pt, ConditionalPathPoint):
                out.append((COORDINATES.index(pt.coordinate), *pt.range))
    return out


def _random_states(rng: np.random.Generator, d, n: int):
    """q across and beyond the joint ranges (knee hyperextension exercises the moving points'
    clamp), conditional coordinates sitting right at their range ends ± OpenSim's 1e-5 slack."""
    conditions = _conditions(d)
    for i in range(n):
        q = rng.uniform(-2.4, 1.3, len(COORDINATES))
        q[0], q[1], q[2] = rng.uniform(-0.6, 0.6), rng.uniform(-1, 5), rng.uniform(0.6, 1.1)
        if i % 3 == 0:
            k, lo, hi = conditions[rng.integers(len(conditions))]
            q[k] = rng.choice([lo, hi]) + rng.choice([-1.5e-5, -0.5e-5, 0.5e-5, 1.5e-5])
        u = rng.uniform(-6, 6, len(COORDINATES))
        yield q, u


def _columns(d) -> np.ndarray:
    """Each muscle's coordinates, as the engine passes them (`system._mechanics`)."""
    from l2run.engines.jax.compile import compile_params

    model = compile_params(d)
    return paths.muscle_coordinates(model.tree, model.paths)


def _engine_geometry(d):
    """`paths.path_geometry` jitted with each muscle's coordinates, as the engine calls it."""
    columns = _columns(d)
    return jax.jit(lambda *args: paths.path_geometry(*args, columns=columns))


def _geometry(geometry, params, ref, q, u):
    oj, aj = ref.frame_jacobians(q)
    ref.set_state(q, u)
    origin, angle, _, _ = ref.body_kinematics()
    return geometry(params, origin, angle, oj, aj, jnp.asarray(q), jnp.asarray(u))


def test_lengths_speeds_and_points_match_opensim():
    d = load_definition()
    params = paths.compile_paths(d)
    ref = _reference().ForceReference()
    geometry = _engine_geometry(d)
    points = jax.jit(paths.path_points)
    rng = np.random.default_rng(7)
    got_l, want_l, got_v, want_v, got_p, want_p = [], [], [], [], [], []
    beyond = 0
    for q, u in _random_states(rng, d, N_STATES):
        beyond += int(q[4] > 0.17453293 or q[7] > 0.17453293 or q[4] < -2.0943951)
        oj, aj = ref.frame_jacobians(q)
        ref.set_state(q, u)
        origin, angle, _, _ = ref.body_kinematics()
        g = geometry(params, origin, angle, oj, aj, jnp.asarray(q), jnp.asarray(u))
        pts, active = points(params, origin, angle, jnp.asarray(q))
        got_l.append(np.asarray(g.length))
        got_v.append(np.asarray(g.speed))
        s = ref.state
        for i, m in enumerate(ref.muscles):
            want_l.append(m.getLength(s))
            want_v.append(m.getLengtheningSpeed(s))
            current = _reference().osim.GeometryPath.safeDownCast(m.getPath()).getCurrentPath(s)
            ours = np.asarray(pts[i])[np.asarray(active[i])]
            assert len(ours) == current.getSize(), (m.getName(), q)
            for k in range(current.getSize()):
                loc = current.get(k).getLocationInGround(s)
                want_p.append([loc.get(0), loc.get(1), loc.get(2)])
                got_p.append(ours[k])
    errors = {
        "length": _reference().rel_err(np.concatenate(got_l), want_l, 1e-9),
        "speed": _reference().rel_err(np.concatenate(got_v), want_v, 1e-9),
        "points": _reference().rel_err(np.array(got_p), np.array(want_p), 1e-9),
    }
    print("max relative errors:", {k: f"{v:.1e}" for k, v in errors.items()})
    assert beyond > 0  # the moving points' clamp was exercised
    assert max(errors.values()) <= REL_TOL, errors


def test_moment_arms_and_generalized_forces_match_opensim():
    d = load_definition()
    params = paths.compile_paths(d)
    ref = _reference().ForceReference()
    geometry = _engine_geometry(d)
    rng = np.random.default_rng(11)
    got, want = [], []
    for q, u in _random_states(rng, d, N_MOMENT_ARM_STATES):
        g = _geometry(geometry, params, ref, q, u)
        got.append(np.asarray(paths.moment_arms(g)))
        s = ref.state
        want.append([[m.computeMomentArm(s, c) for c in ref.coordinates] for m in ref.muscles])
        # Generalized forces are tension × moment arm, summed over muscles.
        tension = rng.uniform(0, 3000, len(ref.muscles))
        np.testing.assert_allclose(
            paths.path_generalized_forces(g, jnp.asarray(tension)),
            tension @ np.asarray(want[-1]),
            rtol=1e-9,
            atol=1e-9,
        )
    # Floor 1e-6 m: translation "moment arms" are sums of cancelling forces (~1e-16 m).
    err = _reference().rel_err(np.array(got), np.array(want), 1e-6)
    abs_err = np.max(np.abs(np.array(got) - np.array(want)))
    print(f"max relative error, moment arms: {err:.1e} (max abs {abs_err:.1e} m)")
    assert err <= REL_TOL


def test_jvp_of_length_is_the_speed_inside_the_ranges_and_gradients_are_finite():
    """Inside the coordinate ranges OpenSim's speed is the exact time derivative of the length,
    so forward-mode AD through the point positions must reproduce it."""
    d = load_definition()
    params = paths.compile_paths(d)
    ref = _reference().ForceReference()
    q = np.array([-0.05, 0.3, 0.9, 0.4, -0.8, 0.1, -0.3, -1.2, -0.2])
    u = np.linspace(-1, 1, 9)
    oj, aj = ref.frame_jacobians(q)
    ref.set_state(q, u)
    origin, angle, vel, omega = ref.body_kinematics()
    g = paths.path_geometry(params, origin, angle, oj, aj, jnp.asarray(q), jnp.asarray(u))
    length, speed = jax.jit(
        lambda x, dx: jax.jvp(lambda o, a, qq: paths.path_lengths(params, o, a, qq), x, dx)
    )(
        (jnp.asarray(origin), jnp.asarray(angle), jnp.asarray(q)),
        (jnp.asarray(vel), jnp.asarray(omega), jnp.asarray(u)),
    )
    np.testing.assert_allclose(length, g.length, rtol=1e-14)
    np.testing.assert_allclose(speed, g.speed, rtol=1e-10, atol=1e-12)

    def total_speed(qq, uu):
        return jnp.sum(paths.path_geometry(params, origin, angle, oj, aj, qq, uu).speed)

    for grad in jax.jit(jax.grad(total_speed, argnums=(0, 1)))(jnp.asarray(q), jnp.asarray(u)):
        assert np.all(np.isfinite(np.asarray(grad)))


def test_each_muscle_depends_on_the_joints_it_crosses():
    """The coordinates a path's length can depend on: the joints between its bodies (and a
    moving point's coordinate), never the pelvis's (moving every body rigidly) or the other
    leg's."""
    from l2run.engines.jax.compile import compile_params

    model = compile_params(load_definition())
    names = {
        m: [COORDINATES[c] for c in row if c < len(COORDINATES)]
        for m, row in zip(MUSCLES, paths.muscle_coordinates(model.tree, model.paths), strict=True)
    }
    for side in ("r", "l"):
        hip, knee, ankle = (f"{j}_{side}" for j in ("hip_flexion", "knee_angle", "ankle_angle"))
        assert names[f"glut_max_{side}"] == [hip]
        assert names[f"iliopsoas_{side}"] == [hip]
        assert names[f"hamstrings_{side}"] == [hip, knee]
        assert names[f"rect_fem_{side}"] == [hip, knee]
        assert names[f"vasti_{side}"] == [knee]  # femur to the moving point on the tibia
        assert names[f"bifemsh_{side}"] == [knee]
        assert names[f"gastroc_{side}"] == [knee, ankle]
        assert names[f"soleus_{side}"] == [ankle]
        assert names[f"tib_ant_{side}"] == [ankle]


def test_jacobians_on_the_muscles_coordinates_equal_the_full_ones():
    """With `columns` the Jacobians are the full computation's on those coordinates (the same
    products) and exactly zero elsewhere, where the full one leaves cancelling round-off."""
    from l2run.engines.jax import kinematics
    from l2run.engines.jax.compile import compile_params

    d = load_definition()
    model = compile_params(d)
    columns = paths.muscle_coordinates(model.tree, model.paths)
    rng = np.random.default_rng(5)
    for q, u in _random_states(rng, d, 6):
        q, u = jnp.asarray(q), jnp.asarray(u)
        fj = kinematics.model_frame_jacobians(model, q, u)
        poses = (fj.frames.origin, fj.frames.angle, fj.origin_jac, fj.angle_jac, q, u)
        full = paths.path_geometry(model.paths, *poses)
        compact = paths.path_geometry(model.paths, *poses, columns=columns)
        on = np.zeros(full.length_jac.shape, dtype=bool)
        for m, row in enumerate(columns):
            on[m, row[row < len(COORDINATES)]] = True
        for name in ("length_jac", "force_jac"):
            f, c = np.asarray(getattr(full, name)), np.asarray(getattr(compact, name))
            np.testing.assert_allclose(c[on], f[on], rtol=1e-12, atol=1e-15)
            assert np.all(c[~on] == 0.0)
            assert np.max(np.abs(f[~on])) < 1e-12
        np.testing.assert_array_equal(compact.length, full.length)
        np.testing.assert_allclose(compact.speed, full.speed, rtol=1e-12, atol=1e-12)


def test_segment_plan_pairs_neighbours_and_skips_one_conditional_point():
    F, C, PAD = paths.FIXED, paths.CONDITIONAL, paths.PADDING
    plan = paths.segment_plan(np.array([[F, C, F, F], [F, F, PAD, PAD]]))
    pairs = [
        [(int(j), int(k)) for j, k, r in zip(*rows, strict=True) if r]
        for rows in zip(plan.start, plan.end, plan.real, strict=True)
    ]
    assert pairs == [[(0, 1), (0, 2), (1, 2), (2, 3)], [(0, 1)]]
    assert plan.skipped[0].tolist() == [4, 1, 4, 4]  # only (0, 2) passes over a point
    assert plan.ends_at[0, 2].tolist() == [1, 2]  # point 2 ends (0, 2) and (1, 2)
    with pytest.raises(ValueError, match="consecutive conditional"):
        paths.segment_plan(np.array([[F, C, C, F]]))
