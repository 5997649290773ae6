"""Hunt–Crossley contact in JAX against OpenSim 4.6's HuntCrossleyForce record values, live."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import contact
from l2run.model.definition import load_definition
from l2run.model.names import BODIES, COORDINATES

REL_TOL = 1e-8
N_STATES = 160
# (x, y, r) m: obstacles of every size, one partly below the platform.
OBSTACLES = np.array([[1.5, 0.05, 0.12], [3.0, -0.1, 0.3], [4.5, 0.2, 0.06]])
FOOT_BODIES = ("calcn_r", "toes_r", "calcn_l", "toes_l")  # bodies of r_heel, r_toe, l_heel, l_toe


def _reference():
    """The live OpenSim reference (skips the calling test where opensim is not installed)."""
    pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")
    from tests.engines.jax import forces_reference

    return forces_reference


def _legs(rng: np.random.Generator, flat_foot: bool) -> np.ndarray:
    q = np.zeros(len(COORDINATES))
    q[0] = rng.uniform(-0.3, 0.3)
    for side in (3, 6):  # hip, knee, ankle of each leg
        q[side] = rng.uniform(-0.6, 1.2)
        q[side + 1] = rng.uniform(-2.0, 0.1)
        q[side + 2] = rng.uniform(-0.7, 0.5)
        if flat_foot:  # foot angle = tilt + hip + knee + ankle ≈ 0: heel and toe both low
            q[side + 2] = -(q[0] + q[side] + q[side + 1]) + rng.uniform(-0.05, 0.05)
    return q


def _place(rng, i, params, ref, q, u):
    """Shift the pelvis so that a foot sphere touches the platform or an obstacle."""
    ref.set_state(q, u)
    origin, angle, _, _ = ref.body_kinematics()
    centers = np.asarray(contact.sphere_centers(params, origin, angle))
    radius = np.asarray(params.sphere_radius)
    mode = i % 4
    if mode in (0, 1):  # platform: the lowest sphere from 5 mm clear to 30 mm deep
        j = int(np.argmin(centers[:, 1]))
        q[1] = rng.uniform(-1.0, 8.0)
        q[2] = radius[j] - rng.uniform(-0.005, 0.03) - centers[j, 1]
    elif mode == 2:  # an obstacle against a random foot sphere, from any direction
        k, j = rng.integers(len(OBSTACLES)), rng.integers(4)
        x, y, r = OBSTACLES[k]
        # 3-D overlap: the feet sit at z ≈ ±0.09 m, obstacles are centred on z = 0
        slack = r + radius[j] - abs(centers[j, 2])
        reach = r + radius[j] - rng.uniform(0.0, min(0.02, 0.9 * slack))
        dxy = np.sqrt(reach**2 - centers[j, 2] ** 2)
        theta = rng.uniform(0, 2 * np.pi)
        q[1] = x + dxy * np.cos(theta) - centers[j, 0]
        q[2] = y + dxy * np.sin(theta) - centers[j, 1]
    else:  # in the air
        q[1], q[2] = rng.uniform(-1.0, 8.0), 2.0
    return q


def _record(force) -> np.ndarray:
    values = force.getRecordValues(ref_state[0])
    return np.array([values.get(i) for i in range(values.getSize())]).reshape(-1, 6)


ref_state = [None]


def _ours(params, out, origin, set_index, bodies):
    """(force, torque) rows like OpenSim's record values: ground first, then `bodies` (numpy)."""
    mask = np.asarray(out.contact_set) == set_index
    f, pt, body = (
        np.asarray(out.force)[mask],
        np.asarray(out.point)[mask],
        np.asarray(out.body)[mask],
    )
    rows = [np.concatenate([-f.sum(0), -np.cross(pt, f).sum(0)])]
    body_z = np.asarray(params.body_z)
    for b in bodies:
        k = BODIES.index(b)
        on = body == k
        arm = pt[on] - np.array([*origin[k], body_z[k]])
        rows.append(np.concatenate([f[on].sum(0), np.cross(arm, f[on]).sum(0)]))
    return np.array(rows)


def test_contact_wrenches_sum_forces_and_torques_per_body():
    params = contact.compile_contact(load_definition())
    origin = np.zeros((len(BODIES), 2))
    origin[BODIES.index("calcn_r")] = (1.0, 2.0)
    out = contact.ContactForces(
        force=jnp.array([[0.0, 10.0, 0.0], [1.0, 0.0, 0.0]]),
        point=jnp.array([[1.5, 2.0, 0.5], [1.0, 3.0, 0.0]]),
        body=jnp.array([BODIES.index("calcn_r")] * 2),
        contact_set=jnp.array([0, 0]),
        normal_force=jnp.array([10.0, 1.0]),
    )
    force, torque = contact.contact_wrenches(params, out, jnp.asarray(origin))
    k = BODIES.index("calcn_r")
    np.testing.assert_allclose(force[k], [1.0, 10.0, 0.0])
    z = float(params.body_z[k])
    expected = np.cross([0.5, 0.0, 0.5 - z], [0.0, 10.0, 0.0]) + np.cross(
        [0.0, 1.0, -z], [1.0, 0.0, 0.0]
    )
    np.testing.assert_allclose(torque[k], expected, atol=1e-15)
    assert float(jnp.sum(jnp.abs(force))) == pytest.approx(11.0)


def test_contact_forces_match_opensim_record_values():
    params = contact.compile_contact(load_definition())
    ref = _reference().ForceReference(obstacles=OBSTACLES)
    ref_state[0] = ref.state
    fn = jax.jit(contact.contact_forces)
    rng = np.random.default_rng(9)
    got, want = [], []
    touching_sets = np.zeros(2 + len(OBSTACLES), dtype=int)
    skipped = 0
    for i in range(N_STATES):
        q = _legs(rng, flat_foot=(i % 8 < 4))
        u = rng.uniform(-3, 3, len(COORDINATES))
        if i % 5 == 0:
            u[2] = rng.uniform(0.5, 2.5)  # lifting off fast: Hunt–Crossley would pull (f <= 0)
        q = _place(rng, i, params, ref, q, u)
        ref.set_state(q, u)
        origin, angle, vel, omega = ref.body_kinematics()
        out = fn(params, origin, angle, vel, omega, jnp.asarray(OBSTACLES))
        forces = ref.foot_forces + ref.obstacle_forces
        for s, force in enumerate(forces):
            bodies = FOOT_BODIES[2 * s : 2 * s + 2] if s < 2 else FOOT_BODIES
            mine = _ours(params, out, origin, s, bodies)
            theirs = _record(force)
            got.append(mine.ravel())
            want.append(theirs.ravel())
            touching_sets[s] += int(np.any(theirs != 0))
            if s < 2:  # the engines' "ground reaction per foot": Σ forces on the foot's bodies
                reaction = np.asarray(contact.foot_ground_reactions(out)[s])
                np.testing.assert_allclose(reaction, theirs[1:, :3].sum(0), rtol=1e-9, atol=1e-6)
        # a foot set where one contact pulls (f <= 0) so Simbody skips the other, pushing one
        f = np.asarray(out.normal_force[:4]).reshape(2, 2)
        pushed = np.any(np.asarray(out.force[:4]) != 0, axis=1).reshape(2, 2)
        skipped += int(np.sum(np.any(f < 0, axis=1) & np.any((f > 0) & ~pushed, axis=1)))
    got, want = np.concatenate(got), np.concatenate(want)
    err = _reference().rel_err(got, want, 1e-6)
    abs_err = np.max(np.abs(got - want))
    print(f"max relative error, contact wrenches: {err:.1e} (max abs {abs_err:.1e})")
    print("sets touching:", touching_sets, "contacts skipped or pulling:", skipped)
    assert np.all(touching_sets > 0), touching_sets
    assert skipped > 0
    assert err <= REL_TOL


def test_padding_rows_are_inert_and_gradients_finite():
    params = contact.compile_contact(load_definition())
    nb = len(BODIES)
    rng = np.random.default_rng(2)
    origin = jnp.asarray(rng.uniform(-0.5, 0.5, (nb, 2)))
    angle = jnp.asarray(rng.uniform(-0.3, 0.3, nb))
    vel = jnp.asarray(rng.uniform(-1, 1, (nb, 2)))
    omega = jnp.asarray(rng.uniform(-1, 1, nb))
    # a padding row (NO_OBSTACLE, r = 0) placed on the foot, and a real obstacle
    on_foot = contact.sphere_centers(params, origin, angle)[0]
    obstacles = jnp.array([[on_foot[0], on_foot[1], 0.0], [0.0, 0.0, 0.2]])

    def total(origin, vel, obstacles):
        o = contact.contact_forces(params, origin, angle, vel, omega, obstacles)
        return jnp.sum(o.force**2), o.force

    (_, force), grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2), has_aux=True))(
        origin, vel, obstacles
    )
    assert np.all(np.asarray(force[4:8]) == 0)  # the padding row's four contacts
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))


def _pressed_feet(params, rng: np.random.Generator):
    """Random foot-body poses and speeds with each foot's lowest sphere 0–30 mm into the
    platform and obstacles pressed into two spheres: (origin, angle, vel, omega, obstacles)."""
    nb = len(BODIES)
    angle = rng.uniform(-0.4, 0.4, nb)
    origin = np.stack([rng.uniform(0.0, 2.0, nb), np.full(nb, 0.3)], -1)
    local = np.asarray(params.sphere_local)
    radius = np.asarray(params.sphere_radius)
    for k in np.unique(np.asarray(params.sphere_body)):
        mine = np.flatnonzero(np.asarray(params.sphere_body) == k)
        c, s = np.cos(angle[k]), np.sin(angle[k])
        low = min(s * local[j, 0] + c * local[j, 1] - radius[j] for j in mine)
        origin[k, 1] = -low - rng.uniform(0.0, 0.03)
    centers = np.asarray(contact.sphere_centers(params, jnp.asarray(origin), jnp.asarray(angle)))
    obstacles = []
    for j in rng.choice(4, 2, replace=False):
        r = rng.uniform(0.05, 0.3)
        reach = r + radius[j] - rng.uniform(0.001, 0.01)
        dxy = np.sqrt(reach**2 - centers[j, 2] ** 2)
        theta = rng.uniform(0.2, np.pi - 0.2)  # from below-ish the sphere, any side
        x, y = centers[j, 0] - dxy * np.cos(theta), centers[j, 1] - dxy * np.sin(theta)
        obstacles.append([x, y, r])
    obstacles.append([50.0, 0.0, 0.2])  # far away
    obstacles.append([0.0, 0.0, 0.0])  # padding
    vel = rng.uniform(-2.0, 2.0, (nb, 2))
    omega = rng.uniform(-3.0, 3.0, nb)
    return (
        jnp.asarray(origin),
        jnp.asarray(angle),
        jnp.asarray(vel),
        jnp.asarray(omega),
        jnp.asarray(np.array(obstacles)),
    )


def test_contact_tangents_equal_forward_mode_derivatives():
    """The analytic contact derivatives equal forward-mode differentiation of `contact_forces`
    along each rigid motion of every body (a contact depends on its own body only), with the
    feet pressed into the platform and obstacles while moving: slipping below and above the
    transition speed, pulling pairs, far and padding obstacle rows."""
    params = contact.compile_contact(load_definition())
    tangents = jax.jit(contact.contact_tangents)
    forces = jax.jit(contact.contact_forces)
    rng = np.random.default_rng(11)
    eye = np.eye(contact.N_BODY_TANGENTS)

    @jax.jit
    def forward_mode(origin, angle, vel, omega, obstacles, t):
        """d(force, point)[:, :2] along rigid motion t (6,) of every body at once."""

        def fp(o, a, v, w):
            cf = contact.contact_forces(params, o, a, v, w, obstacles)
            return cf.force[:, :2], cf.point[:, :2]

        tangent = (
            jnp.broadcast_to(t[0:2], origin.shape),
            jnp.full(angle.shape, t[2]),
            jnp.broadcast_to(t[3:5], origin.shape),
            jnp.full(angle.shape, t[5]),
        )
        return jax.jvp(fp, (origin, angle, vel, omega), tangent)[1]

    slow_slips = fast_slips = pulled = 0
    for _ in range(30):
        origin, angle, vel, omega, obstacles = _pressed_feet(params, rng)
        got = tangents(params, origin, angle, vel, omega, obstacles)
        want = forces(params, origin, angle, vel, omega, obstacles)
        np.testing.assert_array_equal(got.force, want.force[:, :2])
        np.testing.assert_array_equal(got.point, want.point[:, :2])
        np.testing.assert_array_equal(got.body, want.body)
        touching = np.asarray(want.normal_force) != 0
        assert touching[:4].sum() >= 2 and touching[4:].sum() >= 2  # platform and obstacles

        for k in range(contact.N_BODY_TANGENTS):
            d_force, d_point = forward_mode(origin, angle, vel, omega, obstacles, eye[k])
            scale = max(float(jnp.abs(d_force).max()), 1.0)
            np.testing.assert_allclose(got.d_force[k], d_force, rtol=0, atol=1e-10 * scale)
            np.testing.assert_allclose(
                np.asarray(got.d_point[k])[touching], np.asarray(d_point)[touching], atol=1e-12
            )
        # what the states covered: platform slip speeds either side of the transition speed
        body = np.asarray(params.sphere_body)
        centers = contact.sphere_centers(params, origin, angle)
        pairs = contact._platform_pairs(params, centers, origin[body], vel[body], omega[body])
        slip = np.asarray(contact._pair_force(pairs).v_slip)[np.asarray(pairs.touching)]
        transition = float(params.transition_velocity[0])
        slow_slips += int(np.sum(slip < transition))
        fast_slips += int(np.sum(slip > transition))
        pulled += int(np.sum(np.asarray(want.normal_force) < 0))
    print("slips below/above the transition speed, pulling:", slow_slips, fast_slips, pulled)
    assert slow_slips > 0 and fast_slips > 0 and pulled > 0


def test_obstacle_pairs_skip_only_zero_friction_terms(monkeypatch):
    """The obstacles' contact sets have no friction, and the forces and derivatives computed
    without the friction terms equal those with them (which then add exact zeros)."""
    params = contact.compile_contact(load_definition())
    rng = np.random.default_rng(5)
    states = [_pressed_feet(params, rng) for _ in range(5)]

    def outputs():
        return [
            (contact.contact_forces(params, *s), contact.contact_tangents(params, *s))
            for s in states
        ]

    skipped = outputs()
    monkeypatch.setattr(contact, "OBSTACLE_FRICTION", True)
    full = outputs()
    touching = 0
    for (f_skip, t_skip), (f_full, t_full) in zip(skipped, full, strict=True):
        np.testing.assert_array_equal(f_skip.force, f_full.force)
        np.testing.assert_array_equal(t_skip.d_force, t_full.d_force)
        np.testing.assert_array_equal(t_skip.d_point, t_full.d_point)
        touching += int(np.sum(np.asarray(f_full.normal_force)[4:] > 0))
    assert touching > 0  # obstacle pairs pushed, so the comparison covered their forces
    origin, angle, vel, omega, obstacles = states[0]
    body = np.asarray(params.sphere_body)
    centers = contact.sphere_centers(params, origin, angle)
    pairs = contact._obstacle_pairs(
        params, centers, origin[body], vel[body], omega[body], obstacles
    )
    _, _, us, ud, uv = pairs.material
    assert not np.any(np.asarray(us)) and not np.any(np.asarray(ud)) and not np.any(uv)
