"""Live OpenSim reference for the force-element parity tests (muscles, paths, contact, limits).

Builds the model from the same definition, optionally with ground-fixed obstacle spheres each in
its own HuntCrossleyForce (as `l2run.engines.opensim_engine` adds them), and sets whole states
(q, u, activations, fibre lengths, excitations) directly. Import after
`pytest.importorskip("opensim")`.
"""

from __future__ import annotations

import numpy as np
import opensim as osim

from l2run.model.build_opensim import build_model
from l2run.model.names import LIGAMENTS, MUSCLES

from .reference import frame_in_ground, handles, set_q_u

osim.Logger.setLevelString("error")

# Obstacle contact as the OpenSim engine builds it (osim-rl 1.5).
OBSTACLE_STIFFNESS_TIMES_RADIUS = 1.0e6
OBSTACLE_DISSIPATION = 1.0e-5
FOOT_SPHERES = ("r_heel", "r_toe", "l_heel", "l_toe")


class ForceReference:
    """An initialised OpenSim model plus handles to its force elements."""

    def __init__(self, psoas=(1.0, 1.0), obstacles=()) -> None:
        self.model = build_model()
        fs = self.model.getForceSet()
        for name, strength in zip(("iliopsoas_l", "iliopsoas_r"), psoas, strict=True):
            m = osim.Thelen2003Muscle.safeDownCast(fs.get(name))
            m.setMaxIsometricForce(strength * m.getMaxIsometricForce())
        self.obstacle_forces = []
        for i, (x, y, r) in enumerate(obstacles):
            sphere = osim.ContactSphere(
                float(r), osim.Vec3(float(x), float(y), 0.0), self.model.getGround(), f"obs{i}"
            )
            self.model.addContactGeometry(sphere)
            force = osim.HuntCrossleyForce()
            force.setName(f"obs{i}_contact")
            force.addGeometry(sphere.getName())
            for name in FOOT_SPHERES:
                force.addGeometry(name)
            force.setStiffness(OBSTACLE_STIFFNESS_TIMES_RADIUS / float(r))
            force.setDissipation(OBSTACLE_DISSIPATION)
            force.setStaticFriction(0.0)
            force.setDynamicFriction(0.0)
            force.setViscousFriction(0.0)
            self.model.addForce(force)
            self.obstacle_forces.append(force)
        self.state = self.model.initSystem()
        fs = self.model.getForceSet()
        self.muscles = [osim.Thelen2003Muscle.safeDownCast(fs.get(n)) for n in MUSCLES]
        self.ligaments = [osim.CoordinateLimitForce.safeDownCast(fs.get(n)) for n in LIGAMENTS]
        self.foot_forces = [
            osim.HuntCrossleyForce.safeDownCast(fs.get(n)) for n in ("foot_r", "foot_l")
        ]
        self.obstacle_forces = [
            osim.HuntCrossleyForce.safeDownCast(fs.get(f"obs{i}_contact"))
            for i in range(len(obstacles))
        ]
        self.coordinates, self.bodies = handles(self.model)

    def set_state(self, q, u, activation=None, fiber_length=None, excitation=None) -> None:
        """Set q, u (and muscle states, excitations) and realize to Acceleration."""
        s = self.state
        set_q_u(self.coordinates, s, q, u)
        if activation is not None:
            for m, a, lf in zip(self.muscles, activation, fiber_length, strict=True):
                m.setActivation(s, float(a))
                m.setFiberLength(s, float(lf))
        self.model.realizeVelocity(s)
        if excitation is not None:
            controls = self.model.updControls(s)
            for i, e in enumerate(excitation):
                controls.set(i, float(e))
            self.model.setControls(s, controls)
        self.model.realizeAcceleration(s)

    def body_kinematics(self):
        """Ground origin (nb, 2), angle (nb,), origin velocity (nb, 2), angular velocity (nb,)."""
        s = self.state
        origin, angle, vel, omega = [], [], [], []
        for b in self.bodies:
            o, a = frame_in_ground(b, s)
            origin.append(o)
            angle.append(a)
            v = b.getVelocityInGround(s)
            omega.append(v.get(0).get(2))
            vel.append((v.get(1).get(0), v.get(1).get(1)))
        return np.array(origin), np.array(angle), np.array(vel), np.array(omega)

    def frame_jacobians(self, q):
        """(origin_jac (nb, 2, nq), angle_jac (nb, nq)) by unit speeds, one coordinate at a
        time (exact: body velocities are linear in the speeds)."""
        n = len(self.coordinates)
        oj = np.zeros((len(self.bodies), 2, n))
        aj = np.zeros((len(self.bodies), n))
        for k in range(n):
            u = np.zeros(n)
            u[k] = 1.0
            self.set_state(q, u)
            _, _, vel, omega = self.body_kinematics()
            oj[:, :, k] = vel
            aj[:, k] = omega
        return oj, aj


def rel_err(got, ref, floor: float) -> float:
    """max |got − ref| / max(|ref|, floor) over all entries."""
    got, ref = np.asarray(got, float), np.asarray(ref, float)
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), floor)))
