"""The reference engine: the 2017 runner simulated by OpenSim 4.6.

Stepping scheme (chosen by measurement, see README "The OpenSim engine" and
`benchmarks/bench_opensim.py`): one `opensim.Manager` per episode, re-initialized every 0.01 s
step. Re-initializing makes the new excitations take effect exactly at the step boundary (a
Manager left running would already have integrated past it with the old ones).

Stale caches: on OpenSim 4.6 a *copy* of a state (`opensim.State(s)`) can keep serving frame
transforms computed for other coordinates, even after `invalidateAllCacheAtOrAbove` — we measured
up to 1.5 cm errors on the torso and head. So states are never copied from one step to the next:
every state the engine uses (the Manager's start state, the state observations are read from) is
a copy of the pristine default state of this system with the state variables (time, y) written
into it, which marks every dependent cache entry out of date.

Obstacles are `ContactSphere`s fixed to the ground, each in its own `HuntCrossleyForce` with the
four foot spheres (stiffness 1e6/r N/m, dissipation 1e-5 s/m, no friction). Radius, place and
stiffness are topology-level properties in OpenSim, so a reset that changes the course rebuilds
the system (`initSystem`, ~6 ms); obstacle slots beyond the course's count are parked 100 m below
the ground where nothing can touch them. The spheres simulated are the course's
`simulated_obstacles`: the reported ones, or osim-rl 1.5's (`course.with_obstacle_physics`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from l2run.course import Course
from l2run.engines.base import STEP_SIZE_S, IntegratorError
from l2run.model.names import BODIES, COORDINATES, FOOT_CONTACTS, LIGAMENTS, MUSCLES, OBS_BODIES
from l2run.observation import assemble

# Integrator methods by the names we expose (OpenSim's Manager::IntegratorMethod).
INTEGRATORS = {
    "semi_explicit_euler2": "IntegratorMethod_SemiExplicitEuler2",
    "rk_merson": "IntegratorMethod_RungeKuttaMerson",
    "rk3": "IntegratorMethod_RungeKutta3",
    "rk2": "IntegratorMethod_RungeKutta2",
    "rk_feldberg": "IntegratorMethod_RungeKuttaFeldberg",
    "explicit_euler": "IntegratorMethod_ExplicitEuler",
    "verlet": "IntegratorMethod_Verlet",
    "cpodes": "IntegratorMethod_CPodes",
}
# The measured choice (README, "The OpenSim engine").
DEFAULT_INTEGRATOR = "semi_explicit_euler2"
DEFAULT_ACCURACY = 1e-3
# "episode": one Manager per episode, re-initialized each step; "step": a new Manager per step
# (osim-rl 1.5's pattern). Both start each step from a fresh, invalidated copy of the state.
MANAGER_SCHEMES = ("episode", "step")

# Obstacle contact (osim-rl 1.5): stiffness 1e6/r N/m, dissipation 1e-5 s/m, frictionless.
OBSTACLE_STIFFNESS_TIMES_RADIUS = 1.0e6
OBSTACLE_DISSIPATION = 1.0e-5
# Where unused obstacle slots wait: far below the ground plane, out of every foot's reach.
PARKED_OBSTACLE = (0.0, -100.0, 0.05)
# Tolerance on "the integrator reached the end of the step", s.
_TIME_TOLERANCE_S = 1e-9
PSOAS_MUSCLES = ("iliopsoas_l", "iliopsoas_r")  # order of Course.psoas


def load_model() -> Any:
    """The 2017 runner as an (uninitialized) `opensim.Model`, built from our definition."""
    _silence_opensim()
    from l2run.model.build_opensim import build_model

    return build_model()


def _silence_opensim() -> None:
    import opensim

    opensim.Logger.setLevelString("error")
    opensim.Logger.removeFileSink()  # no opensim.log in the user's working directory


class OpenSimEngine:
    """OpenSim 4.6 simulation of the runner, stepped 0.01 s at a time (see module docstring)."""

    name = "opensim"

    def __init__(
        self,
        integrator: str = DEFAULT_INTEGRATOR,
        accuracy: float = DEFAULT_ACCURACY,
        manager: str = "episode",
        model: Any = None,
    ) -> None:
        import opensim

        if integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {tuple(INTEGRATORS)}, got {integrator!r}")
        if not (isinstance(accuracy, float | int) and 0 < accuracy < 1):
            raise ValueError(f"accuracy must be a number in (0, 1), got {accuracy!r}")
        if manager not in MANAGER_SCHEMES:
            raise ValueError(f"manager must be one of {MANAGER_SCHEMES}, got {manager!r}")
        _silence_opensim()
        self._osim = opensim
        self.integrator = integrator
        self.accuracy = float(accuracy)
        self.manager_scheme = manager
        self._method = getattr(opensim.Manager, INTEGRATORS[integrator])

        self.model = load_model() if model is None else model
        self._add_controller()
        self.model.initSystem()
        self._cache_handles()
        self._base_max_force = {m: self._muscles[m].getMaxIsometricForce() for m in PSOAS_MUSCLES}
        self._foot_spheres = self._find_foot_spheres()
        self._slots: list[tuple[Any, Any]] = []  # (ContactSphere, HuntCrossleyForce)
        self._built: tuple[tuple[tuple[float, float, float], ...], tuple[float, float]] | None = (
            (),
            (1.0, 1.0),
        )
        self.course = Course()
        self._obstacles = np.zeros((0, 3))
        self._manager: Any = None
        self._steps = 0
        self.state: Any = None
        self.reset(self.course)

    # --- construction -------------------------------------------------------------------

    def _add_controller(self) -> None:
        """One PrescribedController holding a Constant excitation per muscle (osim-rl's brain)."""
        osim = self._osim
        brain = osim.PrescribedController()
        brain.setName("l2run_excitations")
        self.model.initSystem()  # a freshly built model lists all its muscles only after this
        muscles = self.model.getMuscles()
        names = [muscles.get(i).getName() for i in range(muscles.getSize())]
        if tuple(names) != MUSCLES:
            raise ValueError(f"model muscles {names} differ from the expected order {MUSCLES}")
        for name in MUSCLES:
            brain.addActuator(muscles.get(name))
            brain.prescribeControlForActuator(name, osim.Constant(0.0))
        self.model.addController(brain)
        self._brain = brain

    def _cache_handles(self) -> None:
        """Look up components once (after every initSystem: handles stay valid, cheap anyway)."""
        osim = self._osim
        m = self.model
        functions = self._brain.get_ControlFunctions()
        self._controls = [osim.Constant.safeDownCast(functions.get(i)) for i in range(18)]
        coords = m.getCoordinateSet()
        self._coords = [coords.get(c) for c in COORDINATES]
        bodies = m.getBodySet()
        self._bodies = {b: bodies.get(b) for b in BODIES}
        self._obs_bodies = [self._bodies[b] for b in OBS_BODIES]
        muscles = m.getMuscles()
        self._muscles = {name: muscles.get(name) for name in MUSCLES}
        self._muscle_list = [self._muscles[name] for name in MUSCLES]
        forces = m.getForceSet()
        self._ligaments = [osim.CoordinateLimitForce.safeDownCast(forces.get(n)) for n in LIGAMENTS]
        self._feet = {n: forces.get(n) for n in FOOT_CONTACTS}
        self._foot_force_columns = {n: self._foot_columns(f) for n, f in self._feet.items()}

    @staticmethod
    def _foot_columns(force: Any) -> list[tuple[int, int]]:
        """Record-value columns (fx, fy) of the forces the contact applies to non-ground bodies."""
        labels = force.getRecordLabels()
        names = [labels.get(i) for i in range(labels.getSize())]
        columns = []
        for i, label in enumerate(names):
            parts = label.split(".")
            if (
                len(parts) >= 4
                and parts[-2] == "force"
                and parts[-1] == "X"
                and parts[1] != "ground"
            ):
                columns.append((i, i + 1))
        return columns

    def _find_foot_spheres(self) -> list[str]:
        """Names of the contact spheres on the feet (those the foot contact forces use)."""
        geometries = self.model.getContactGeometrySet()
        return [
            geometries.get(i).getName()
            for i in range(geometries.getSize())
            if geometries.get(i).getConcreteClassName() == "ContactSphere"
            and geometries.get(i).getFrame().getName() != "ground"
        ]

    def _add_obstacle_slot(self) -> None:
        osim = self._osim
        index = len(self._slots)
        x, y, r = PARKED_OBSTACLE
        sphere = osim.ContactSphere(
            r, osim.Vec3(x, y, 0.0), self.model.getGround(), f"obstacle_{index}"
        )
        self.model.addContactGeometry(sphere)
        force = osim.HuntCrossleyForce()
        force.setName(f"obstacle_{index}_contact")
        force.addGeometry(sphere.getName())
        for name in self._foot_spheres:
            force.addGeometry(name)
        force.setStiffness(OBSTACLE_STIFFNESS_TIMES_RADIUS / r)
        force.setDissipation(OBSTACLE_DISSIPATION)
        force.setStaticFriction(0.0)
        force.setDynamicFriction(0.0)
        force.setViscousFriction(0.0)
        self.model.addForce(force)
        self._slots.append((sphere, force))

    def _configure(self, course: Course) -> None:
        """Put the course into the model's properties and rebuild the system if they changed."""
        osim = self._osim
        # the spheres simulated: the reported ones, or osim-rl 1.5's (`Course.contact_obstacles`)
        rows = tuple(tuple(float(v) for v in row) for row in course.simulated_obstacles)
        wanted = (rows, course.psoas)
        if wanted == self._built:
            return
        while len(self._slots) < len(rows):
            self._add_obstacle_slot()
        for i, (sphere, force) in enumerate(self._slots):
            x, y, r = rows[i] if i < len(rows) else PARKED_OBSTACLE
            sphere.set_location(osim.Vec3(x, y, 0.0))
            sphere.setRadius(r)
            force.setStiffness(OBSTACLE_STIFFNESS_TIMES_RADIUS / r)
        for name, strength in zip(PSOAS_MUSCLES, course.psoas, strict=True):
            self._muscles[name].setMaxIsometricForce(strength * self._base_max_force[name])
        self.model.initSystem()
        self._cache_handles()
        self._built = wanted

    def _new_manager(self) -> Any:
        manager = self._osim.Manager(self.model)
        manager.setIntegratorMethod(self._method)
        manager.setIntegratorAccuracy(self.accuracy)
        return manager

    # --- Engine protocol ----------------------------------------------------------------

    def reset(self, course: Course) -> None:
        """Model default state (default pose, zero speeds, default activations and fiber
        lengths, no equilibration, as osim-rl 1.5) with the course's obstacles and psoas."""
        self._configure(course)
        self.course = course
        self._obstacles = np.asarray(course.obstacles, dtype=np.float64).reshape(-1, 3)
        # Pristine default state of this system: the template every later state is made from.
        self._template = self._osim.State(self.model.initializeState())
        self.state = self._state_from(self._template)
        self._steps = 0
        self._manager = self._new_manager()
        for control in self._controls:
            control.setValue(0.0)
        self._realize_velocity()

    def step(self, excitations: np.ndarray) -> None:
        """Hold the (18,) excitations (clipped to [0, 1]) for 0.01 s."""
        excitations = np.asarray(excitations, dtype=np.float64).reshape(len(self._controls))
        if not np.isfinite(excitations).all():
            # NaN would pass the clip and reach the integrator; a bad input, not its failure.
            raise ValueError(f"excitations must be finite, got {excitations.tolist()}")
        excitations = np.clip(excitations, 0.0, 1.0)
        for control, value in zip(self._controls, excitations, strict=True):
            control.setValue(float(value))
        t_end = STEP_SIZE_S * (self._steps + 1)
        start = self._state_from(self.state)
        manager = self._new_manager() if self.manager_scheme == "step" else self._manager
        try:
            manager.initialize(start)
            end = manager.integrate(t_end)
            reached = end.getTime()
            y = end.getY().to_numpy()
            new_state = self._state_from(end)
        except Exception as exc:  # OpenSim reports failures as RuntimeError (SimTK exceptions)
            raise IntegratorError(f"OpenSim could not integrate to t={t_end:.2f} s: {exc}") from exc
        if reached < t_end - _TIME_TOLERANCE_S:
            raise IntegratorError(
                f"integration stopped at t={reached:.4f} s before t={t_end:.2f} s"
            )
        if not np.all(np.isfinite(y)):
            raise IntegratorError(f"state became non-finite at t={t_end:.2f} s")
        self._manager = manager
        self.state = new_state
        self._steps += 1
        self._realize_velocity()

    @property
    def time(self) -> float:
        return float(self.state.getTime())

    @property
    def steps(self) -> int:
        return self._steps

    def _state_from(self, source: Any) -> Any:
        """A new state with `source`'s time and state variables, built on the pristine default
        state so that no cached result of another state can leak in (module docstring)."""
        osim = self._osim
        state = osim.State(self._template)
        state.invalidateAllCacheAtOrAbove(osim.Stage(osim.Stage.Instance))
        state.setTime(source.getTime())
        state.setY(source.getY())
        return state

    def _realize_velocity(self) -> None:
        self.model.realizeVelocity(self.state)

    def q_u(self) -> tuple[np.ndarray, np.ndarray]:
        """(9,) coordinates and (9,) speeds in COORDINATES order (rad, m, rad/s, m/s)."""
        s = self.state
        q = np.array([c.getValue(s) for c in self._coords])
        u = np.array([c.getSpeedValue(s) for c in self._coords])
        return q, u

    def observation(self) -> np.ndarray:
        s = self.state
        q, u = self.q_u()
        com = self.model.calcMassCenterPosition(s)
        com_v = self.model.calcMassCenterVelocity(s)
        body_xy = np.array(
            [
                [b.getTransformInGround(s).p()[0], b.getTransformInGround(s).p()[1]]
                for b in self._obs_bodies
            ]
        )
        return np.asarray(
            assemble(
                q,
                u,
                np.array([com[0], com[1]]),
                np.array([com_v[0], com_v[1]]),
                body_xy,
                np.array(self.course.psoas),
                self._obstacles,
            ),
            dtype=np.float64,
        )

    def ligament_forces(self) -> np.ndarray:
        return np.array([lig.calcLimitForce(self.state) for lig in self._ligaments])

    def body_poses(self) -> dict[str, tuple[float, float, float]]:
        s = self.state
        poses = {}
        for name, body in self._bodies.items():
            transform = body.getTransformInGround(s)
            p = transform.p()
            angle = transform.R().convertRotationToBodyFixedXYZ()[2]
            poses[name] = (float(p[0]), float(p[1]), float(angle))
        return poses

    def muscle_paths(self) -> list[np.ndarray]:
        s = self.state
        paths = []
        for muscle in self._muscle_list:
            points = muscle.getGeometryPath().getCurrentPath(s)
            xy = np.empty((points.getSize(), 2))
            for i in range(points.getSize()):
                location = points.get(i).getLocationInGround(s)
                xy[i] = (location[0], location[1])
            paths.append(xy)
        return paths

    def activations(self) -> np.ndarray:
        return np.array([m.getActivation(self.state) for m in self._muscle_list])

    def fiber_lengths(self) -> np.ndarray:
        return np.array([m.getFiberLength(self.state) for m in self._muscle_list])

    def contact_forces(self) -> dict[str, np.ndarray]:
        self.model.realizeDynamics(self.state)
        out = {}
        for name, force in self._feet.items():
            values = force.getRecordValues(self.state)
            fx = sum(values.get(i) for i, _ in self._foot_force_columns[name])
            fy = sum(values.get(j) for _, j in self._foot_force_columns[name])
            out[name] = np.array([fx, fy])
        return out
