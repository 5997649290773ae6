"""Questions asked of OpenSim directly, independent of the engine's own code."""

from __future__ import annotations

import math

from l2run.course import Course
from l2run.model.names import LIGAMENTS, OBS_BODIES


class IndependentModel:
    """A second OpenSim model with the same course: recomputes what the engine reports from the
    engine's state variables alone (time, y), in a state that never saw the engine's caches."""

    def __init__(self) -> None:
        from l2run.engines.opensim_engine import OpenSimEngine

        self._twin = OpenSimEngine()
        self.model = self._twin.model

    def state_of(self, engine):
        import opensim

        if self._twin.course != engine.course:
            self._twin.reset(engine.course)
        state = opensim.State(self.model.initializeState())
        state.setTime(engine.state.getTime())
        state.setY(engine.state.getY())
        self.model.realizeVelocity(state)
        return state


def opensim_observation(model, state, course: Course) -> dict[str, float]:
    """Every observation value, by name, asked of OpenSim directly (not via the engine's code)."""
    coords = model.getCoordinateSet()
    value: dict[str, float] = {}
    for c in ("pelvis_tilt", "pelvis_tx", "pelvis_ty") + tuple(
        f"{j}_{s}" for s in "rl" for j in ("hip_flexion", "knee_angle", "ankle_angle")
    ):
        value[c] = coords.get(c).getValue(state)
        value[f"{c}_speed"] = coords.get(c).getSpeedValue(state)
    com = model.calcMassCenterPosition(state)
    com_v = model.calcMassCenterVelocity(state)
    value.update(com_x=com[0], com_y=com[1], com_vx=com_v[0], com_vy=com_v[1])
    for b in OBS_BODIES:
        p = model.getBodySet().get(b).getTransformInGround(state).p()
        value[f"{b}_x"], value[f"{b}_y"] = p[0], p[1]
    value["psoas_l"], value["psoas_r"] = course.psoas
    # The next obstacle, by osim-rl 1.5's loop.
    pelvis_x = value["pelvis_tx"]
    value["obstacle_dx"], value["obstacle_y"], value["obstacle_r"] = 100.0, 0.0, 0.0
    for x, y, r in course.obstacles:
        if x + r >= pelvis_x:
            value["obstacle_dx"], value["obstacle_y"], value["obstacle_r"] = x - pelvis_x, y, r
            break
    return value


def opensim_ligament_penalty(model, state) -> float:
    import opensim

    forces = model.getForceSet()
    total = 0.0
    for name in LIGAMENTS:
        f = opensim.CoordinateLimitForce.safeDownCast(forces.get(name)).calcLimitForce(state)
        total += f * f
    return 1e-7 * math.sqrt(total)
