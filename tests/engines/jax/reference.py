"""Live OpenSim reference for the JAX engine's parity tests (built from the same definition).

Tests import this only after `pytest.importorskip("opensim")`.
"""

from __future__ import annotations

import numpy as np
import opensim as osim

from l2run.model.build_opensim import build_model
from l2run.model.names import BODIES, COORDINATES, MUSCLES

osim.Logger.setLevelString("error")


# --- shared by the reference classes here and in forces_reference.py ---------------------------


def handles(model) -> tuple[list, list]:
    """(coordinates in COORDINATES order, bodies in BODIES order) of an OpenSim model."""
    cs = model.getCoordinateSet()
    return [cs.get(n) for n in COORDINATES], [model.getBodySet().get(n) for n in BODIES]


def set_q_u(coordinates, state, q, u) -> None:
    """Write generalized coordinates q and speeds u into `state` (no constraint projection)."""
    for c, qi, ui in zip(coordinates, q, u, strict=True):
        c.setValue(state, float(qi), False)
        c.setSpeedValue(state, float(ui))


def frame_in_ground(body, state) -> tuple[tuple[float, float], float]:
    """A body frame's origin (x, y) (m) and angle (rad) in the ground frame."""
    x = body.getTransformInGround(state)
    p, r = x.p(), x.R()
    return (p.get(0), p.get(1)), float(np.arctan2(r.get(1, 0), r.get(0, 0)))


class OpenSimReference:
    """An initialised OpenSim model whose state tests set directly (q, u, muscle states)."""

    def __init__(self, forces: bool = True) -> None:
        self.model = build_model()
        if not forces:
            fs = self.model.getForceSet()
            for i in range(fs.getSize()):
                fs.get(i).set_appliesForce(False)
        self.state = self.model.initSystem()
        self.coordinates, self.bodies = handles(self.model)
        self.u_index = self._u_index()

    def _u_index(self) -> list[int]:
        """Mobility index (position in Simbody's u) of each of our coordinates."""
        out = []
        for c in self.coordinates:
            for other in self.coordinates:
                other.setSpeedValue(self.state, 0.0)
            c.setSpeedValue(self.state, 1.0)
            u = self.state.getU()
            out.append(next(i for i in range(u.size()) if u.get(i) == 1.0))
            c.setSpeedValue(self.state, 0.0)
        return out

    def set_state(self, q: np.ndarray, u: np.ndarray) -> None:
        set_q_u(self.coordinates, self.state, q, u)
        self.model.realizeAcceleration(self.state)

    def body_frames(self) -> tuple[np.ndarray, np.ndarray]:
        """(origins (13, 2), angles (13,)) in ground."""
        frames = [frame_in_ground(b, self.state) for b in self.bodies]
        return np.array([o for o, _ in frames]), np.array([a for _, a in frames])

    def body_coms(self) -> np.ndarray:
        out = []
        for b in self.bodies:
            c = b.findStationLocationInGround(self.state, b.getMassCenter())
            out.append((c.get(0), c.get(1)))
        return np.array(out)

    def system_com(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.model.calcMassCenterPosition(self.state)
        v = self.model.calcMassCenterVelocity(self.state)
        return np.array([p.get(0), p.get(1)]), np.array([v.get(0), v.get(1)])

    def mass_matrix(self) -> np.ndarray:
        m = osim.Matrix()
        self.model.getMatterSubsystem().calcM(self.state, m)
        full = np.array([[m.get(i, j) for j in range(m.ncol())] for i in range(m.nrow())])
        return full[np.ix_(self.u_index, self.u_index)]

    def udot(self) -> np.ndarray:
        return np.array([c.getAccelerationValue(self.state) for c in self.coordinates])


def random_q(rng: np.random.Generator) -> np.ndarray:
    """Coordinates across (and a little beyond) the model's joint ranges."""
    q = rng.uniform(-2.2, 1.0, len(COORDINATES))
    q[0] = rng.uniform(-1.0, 1.0)  # pelvis tilt
    q[1] = rng.uniform(-1.0, 10.0)  # pelvis x, m
    q[2] = rng.uniform(0.5, 1.2)  # pelvis y, m
    return q


def random_u(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(-8.0, 8.0, len(COORDINATES))


__all__ = ["MUSCLES", "OpenSimReference", "random_q", "random_u"]


class EngineReference:
    """The OpenSim engine (obstacles, psoas as `RunEnv` builds them), probed at given states."""

    def __init__(self) -> None:
        from l2run.engines.opensim_engine import OpenSimEngine

        self.engine = OpenSimEngine()
        self._configure_handles()

    def _configure_handles(self) -> None:
        m = self.engine.model
        controller = osim.PrescribedController.safeDownCast(
            m.getControllerSet().get("l2run_excitations")
        )
        functions = controller.get_ControlFunctions()
        self.controls = [osim.Constant.safeDownCast(functions.get(i)) for i in range(len(MUSCLES))]
        self.coordinates, _ = handles(m)

    def set_course(self, course) -> None:
        self.engine.reset(course)
        self._configure_handles()

    def derivatives(
        self,
        q: np.ndarray,
        u: np.ndarray,
        activation: np.ndarray,
        fiber_length: np.ndarray,
        excitation: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(q̇, u̇, ȧ, l̇) at the given state and excitations (OpenSim realizes from scratch)."""
        m = self.engine.model
        for c, value in zip(self.controls, excitation, strict=True):
            c.setValue(float(value))
        s = osim.State(self.engine.state)
        set_q_u(self.coordinates, s, q, u)
        for name, a, lm in zip(MUSCLES, activation, fiber_length, strict=True):
            m.setStateVariableValue(s, f"/forceset/{name}/activation", float(a))
            m.setStateVariableValue(s, f"/forceset/{name}/fiber_length", float(lm))
        s.invalidateAllCacheAtOrAbove(osim.Stage(osim.Stage.Instance))
        m.realizeAcceleration(s)
        self.last_state = s
        qdot = np.array([c.getSpeedValue(s) for c in self.coordinates])
        udot = np.array([c.getAccelerationValue(s) for c in self.coordinates])
        adot = np.array(
            [m.getStateVariableDerivativeValue(s, f"/forceset/{n}/activation") for n in MUSCLES]
        )
        ldot = np.array(
            [m.getStateVariableDerivativeValue(s, f"/forceset/{n}/fiber_length") for n in MUSCLES]
        )
        return qdot, udot, adot, ldot
