"""A runner that looks ahead: the cruiser, guarded by the JAX engine's predictions (kind
"planner").

The cruiser (`l2run.train.cruiser`) is a reflex controller: it cannot tell that the step it is
taking will put a foot on an obstacle and the body on the ground a second later, and rules that
change every approach to an obstacle trip as many courses as they save (docs/training/STAGES.md,
stages 21–23). The JAX engine can tell: started from OpenSim's state, it predicts the runner's
falls in OpenSim 0.85–1.5 s ahead, to within 20 steps (stage 30). So the planner keeps the
cruiser and changes it only where a fall is predicted. Every `check_every` control steps it

1. estimates the full state: coordinates and speeds from the observation (it holds all nine of
   each), muscle activations and fibre lengths by integrating its own excitations in the JAX
   engine from the model's default state (the "shadow"; activation dynamics depend on nothing
   else, and fibre lengths follow the observed joint angles), and the obstacles seen so far
   (the observation shows the next one only);
2. predicts the plan in force for `horizon` steps;
3. if that plan falls within the horizon, predicts every candidate plan, an offset to one of the
   walker's parameters held for a number of steps (`PlannerSettings.changes`, `.holds`; each
   change also at the multiples `.alarm_scales` of its amount), and switches to the one that
   survives longest (then ends furthest ahead), if it survives longer.

With `speed_margin` > 0 it also looks for speed: once the course is clear (the cruise phase),
every `speed_every` steps it predicts the candidates even without an alarm, for `look_horizon`
steps, and switches to the one ending furthest ahead after `horizon` steps among those that
survive all `look_horizon`, if that is more than `speed_margin` ahead of the plan in force.
Why look further for speed: the plan furthest ahead after `horizon` steps is often one that
dives, falling soon after the horizon; on validation courses the stage-30 planner fell on, most
plans it took for speed were predicted to fall 3–32 steps past its 150-step horizon (stage 31).

Between checks, and whenever no fall is predicted (and no faster plan found), it acts exactly as
the cruiser. It reads the observation and its own excitations only, as any policy does; the JAX
engine is its model of the body, built from the same model file as the environment (which
osim-rl's participants had too). Each check costs one predicted rollout, and an alarm or a look
for speed one batch of `len(candidates)` rollouts: an OpenSim episode takes ~1.5–4× the
cruiser's time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from l2run.engines.base import TIMESTEP_LIMIT
from l2run.observation import MAX_OBSTACLE_SLOTS, OBSERVATION_SIZE, pad_obstacles
from l2run.train import cruiser, walker
from l2run.train.controller_params import group_offsets, read_policy_data

KIND = "planner"

# Where the observation holds the state the shadow takes over (l2run.observation's layout):
# pelvis tilt, x, y, then their speeds; the six joint angles, then their speeds.
OBS_PELVIS_Q, OBS_PELVIS_U = slice(0, 3), slice(3, 6)
OBS_JOINT_Q, OBS_JOINT_U = slice(6, 12), slice(12, 18)
OBS_PSOAS_LEFT_RIGHT = slice(36, 38)
# Two sightings of one obstacle whose centres differ by less than this (m) are the same one.
SAME_OBSTACLE_TOL_M = walker.SAME_OBSTACLE_TOL_M

# The candidate plans' changes: (walker group, index in the group, amount); each is tried with
# both signs and each hold. Units as in `walker.PARAM_LAYOUT`: the swing thigh's target (rad),
# the trunk's pitch target (rad), the early-swing knee fold (rad), the push-off (normalised
# torque), the longest step time (s), the stance knee's target (rad).
DEFAULT_CHANGES: tuple[tuple[str, int, float], ...] = (
    ("swing_hip", 0, 0.1),
    ("swing_hip", 0, 0.2),
    ("torso", 0, 0.05),
    ("torso", 0, 0.1),
    ("swing_knee", 0, 0.2),
    ("push", 0, 0.3),
    ("timing", 1, 0.05),
    ("stance_knee", 0, 0.1),
)
DEFAULT_HOLDS: tuple[int, ...] = (30, 100)  # control steps a changed plan stays in force


@dataclass(frozen=True)
class PlannerSettings:
    """How far and how often the planner looks ahead, and what it may change."""

    horizon: int = 150  # control steps predicted (1.5 s)
    check_every: int = 10  # control steps between predictions
    changes: tuple[tuple[str, int, float], ...] = DEFAULT_CHANGES
    holds: tuple[int, ...] = DEFAULT_HOLDS
    integrator: str = "imex_stiff:10"  # the JAX engine's scheme for the predictions
    # Speed (0: off): once the course is clear (the cruise phase), every `speed_every` steps
    # the candidates are predicted even without an alarm, and the planner switches to the one
    # that ends furthest ahead among those surviving the horizon if that is more than
    # `speed_margin` (m) ahead of the plan in force.
    speed_margin: float = 0.0
    speed_every: int = 30
    # Control steps a look for speed predicts the candidates for (0: `horizon`); a plan taken
    # for speed must survive all of them.
    look_horizon: int = 0
    # An alarm tries every change at each of these multiples of its amount (looks for speed
    # use the amounts as given): larger changes can save a stumble the small ones cannot.
    alarm_scales: tuple[float, ...] = (1.0,)
    # Also predict on the step a new obstacle comes into view, not only every `check_every`:
    # one hidden behind the one in view appears only ~25 steps before a foot meets it.
    check_on_sighting: bool = False

    def __post_init__(self) -> None:
        if min(int(self.horizon), int(self.check_every), int(self.speed_every)) < 1:
            raise ValueError(
                "horizon, check_every and speed_every must be >= 1, got "
                f"{self.horizon}, {self.check_every}, {self.speed_every}"
            )
        if int(self.look_horizon) != 0 and int(self.look_horizon) < int(self.horizon):
            raise ValueError(
                f"look_horizon must be 0 or >= horizon ({self.horizon}), got {self.look_horizon}"
            )
        if not np.isfinite(self.speed_margin) or self.speed_margin < 0:
            raise ValueError(f"speed_margin must be finite and >= 0, got {self.speed_margin}")
        sizes = dict(walker.PARAM_LAYOUT)
        for change in self.changes:
            name, index, amount = change
            if name not in sizes or not 0 <= int(index) < sizes[name]:
                raise ValueError(f"unknown walker parameter {name}[{index}] in {change!r}")
            if not np.isfinite(amount) or amount == 0:
                raise ValueError(f"a change's amount must be finite and non-zero: {change!r}")
        if not self.changes or not self.holds or min(int(h) for h in self.holds) < 1:
            raise ValueError("a planner needs at least one change and holds >= 1 step")
        scales = np.asarray(self.alarm_scales, dtype=float)
        if scales.size == 0 or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise ValueError(f"alarm_scales must be finite and > 0, got {self.alarm_scales}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlannerSettings:
        """Settings from a policy file's "settings" object (missing keys: defaults)."""
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown planner settings: {sorted(unknown)}")
        data = dict(data)
        if "changes" in data:
            data["changes"] = tuple((str(n), int(i), float(a)) for n, i, a in data["changes"])
        if "holds" in data:
            data["holds"] = tuple(int(h) for h in data["holds"])
        if "alarm_scales" in data:
            data["alarm_scales"] = tuple(float(x) for x in data["alarm_scales"])
        if "check_on_sighting" in data and not isinstance(data["check_on_sighting"], bool):
            raise ValueError(
                f"check_on_sighting must be true or false, got {data['check_on_sighting']!r}"
            )
        return cls(**data)

    @property
    def looks_for(self) -> int:
        """Control steps a look for speed predicts."""
        return int(self.look_horizon) or int(self.horizon)


def candidate_plans(
    settings: PlannerSettings, scales: tuple[float, ...] = (1.0,)
) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (K, walker.N_PARAMS), holds (K,) steps): every scale of every change with
    both signs and every hold, in that order."""
    offsets_of = group_offsets(walker.PARAM_LAYOUT)
    rows, holds = [], []
    for scale in scales:
        for name, index, amount in settings.changes:
            for sign in (1.0, -1.0):
                for hold in settings.holds:
                    row = np.zeros(walker.N_PARAMS)
                    row[offsets_of[name] + index] = sign * scale * amount
                    rows.append(row)
                    holds.append(hold)
    return np.array(rows), np.array(holds, dtype=np.int32)


@functools.lru_cache(maxsize=4)
def plan_predictor(horizon: int, integrator: str, mark: int | None = None):
    """The jitted prediction of K plans from one state:
    ``(cruiser params, EnvState, cruiser memory, offsets (K, n), holds (K,)) ->
    (steps survived (K,), pelvis x after `mark` steps (K,) m)`` (`mark`: default and at most
    `horizon`). A plan adds its offset to the cruiser's walker parameters for its first `hold`
    steps; "survived" is `horizon` when the episode neither falls nor fails within the horizon
    (reaching the step limit is no fall)."""
    import jax
    import jax.numpy as jnp

    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import observe, parse_integrator, step
    from l2run.engines.jax.xla_options import engine_jit

    model = load_params()
    scheme = parse_integrator(integrator)
    mark = horizon if mark is None else min(int(mark), horizon)

    def one(params, state, memory, offset, hold):
        def body(carry, k):
            s, m = carry
            obs = observe(model, s)
            m, action = cruiser.control(
                params, m, obs, xp=jnp, offset=jnp.where(k < hold, offset, 0.0)
            )
            s, _, _, _ = step(model, s, action, scheme, None, single_kernel_loops=False)
            return (s, m), (s.done & (s.step_count < TIMESTEP_LIMIT), s.q[walker.OBS_PELVIS_X])

        _, (ended, pelvis_x) = jax.lax.scan(body, (state, memory), jnp.arange(horizon))
        survived = jnp.where(jnp.any(ended), jnp.argmax(ended), horizon)
        return survived, pelvis_x[mark - 1]

    return engine_jit(jax.vmap(one, in_axes=(None, None, None, 0, 0)))


@functools.lru_cache(maxsize=4)
def _shadow_step(integrator: str):
    """The JAX engine's step for the shadow (the first step of an episode by its own scheme)."""
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import first_step_integrator, parse_integrator, step

    model, scheme = load_params(), parse_integrator(integrator)
    # Spelled as the vmapped predictions are (scatters, LAPACK), so the shadow state is the one
    # the planner's figures were measured with, to the last digit.
    return functools.partial(
        step,
        model,
        integrator=scheme,
        first_integrator=first_step_integrator(scheme),
        single_kernel_loops=False,
    )


@dataclass(frozen=True)
class Decision:
    """One look at the candidates: at `step` the plan in force was predicted to survive
    `survives` more steps (the horizon: no fall); the best candidate `candidate` (index into
    `candidate_plans`, with `alarm_scales` for an alarm) `best_survives`; `safe`: how many
    candidates survived the whole horizon (for a look for speed, the whole look horizon,
    which `best_survives` counts too); `gain`: how much further (m) the best was than the
    plan in force after the horizon; `reason`: "fall" (an alarm) or "speed"; `taken`: whether
    the planner switched to it."""

    step: int
    survives: int
    best_survives: int
    candidate: int
    safe: int
    gain: float = 0.0
    reason: str = "fall"
    taken: bool = False


@dataclass
class PlannerPolicy:
    """Stateful policy: the cruiser `base`, checked and changed as the module docstring says."""

    base: cruiser.CruiserPolicy
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    meta: dict = field(default_factory=dict)
    kind: ClassVar[str] = KIND

    def __post_init__(self) -> None:
        self._offsets, self._holds = candidate_plans(self.settings)
        self._alarm_offsets, self._alarm_holds = candidate_plans(
            self.settings, self.settings.alarm_scales
        )
        self.reset()

    @property
    def params(self) -> np.ndarray:
        """The base cruiser's parameters."""
        return self.base.params

    @property
    def decisions(self) -> list[Decision]:
        """This episode's looks at the candidates (alarms and, with the speed option, looks
        for speed), in order."""
        return list(self._decisions)

    def reset(self) -> None:
        self._memory = cruiser.initial_memory()
        self._shadow = None  # the JAX engine's EnvState of the estimate
        self._seen: list[tuple[float, float, float]] = []
        self._sighted = False  # an obstacle not seen before came into view since the last act
        self._offset = np.zeros(walker.N_PARAMS)
        self._hold = 0
        self._steps = 0
        self._decisions: list[Decision] = []

    def estimate(self, obs: Any):
        """The JAX engine's `EnvState` the planner predicts from on observing `obs` (the
        state the next `act` starts from)."""
        return self._with_observed(np.asarray(obs, dtype=float))

    def _with_observed(self, obs: np.ndarray):
        import jax.numpy as jnp

        from l2run.engines.jax.params import load_params
        from l2run.engines.jax.step import reset

        x = obs[walker.OBS_PELVIS_X] + obs[walker.OBS_OBSTACLE_DX]
        new = bool(
            obs[walker.OBS_OBSTACLE_R] > 0.0
            and all(abs(x - seen[0]) > SAME_OBSTACLE_TOL_M for seen in self._seen)
        )
        if new:
            self._sighted = True  # until `act` has looked
            row = (float(x), float(obs[walker.OBS_OBSTACLE_Y]), float(obs[walker.OBS_OBSTACLE_R]))
            self._seen = [*self._seen, row][-MAX_OBSTACLE_SLOTS:]
        obstacles = jnp.asarray(pad_obstacles(np.array(self._seen).reshape(-1, 3)))
        psoas = jnp.asarray(obs[OBS_PSOAS_LEFT_RIGHT])
        shadow = self._shadow
        if shadow is None:
            shadow = reset(load_params(), obstacles, psoas)
        q = np.concatenate([obs[OBS_PELVIS_Q], obs[OBS_JOINT_Q]])
        u = np.concatenate([obs[OBS_PELVIS_U], obs[OBS_JOINT_U]])
        return shadow._replace(
            q=jnp.asarray(q),
            u=jnp.asarray(u),
            obstacles=obstacles,
            psoas=psoas,
            last_pelvis_x=jnp.asarray(q[walker.OBS_PELVIS_X]),
            step_count=jnp.asarray(self._steps, jnp.int32),
            done=jnp.zeros((), bool),
        )

    def _check(self, state, speed: bool) -> None:
        """Predict the plan in force; on a predicted fall, switch to the candidate that
        survives longest; with `speed`, also to one that runs further (module docstring)."""
        import jax.numpy as jnp

        horizon = int(self.settings.horizon)
        predict = plan_predictor(horizon, self.settings.integrator)
        params, memory = jnp.asarray(self.base.params), jnp.asarray(self._memory)
        survives, ends = predict(
            params, state, memory, jnp.asarray(self._offset[None]), jnp.asarray([self._hold])
        )
        survives, end = int(survives[0]), float(ends[0])
        alarm = survives < horizon
        if not (alarm or speed):
            return
        if alarm:
            look, offsets, holds = horizon, self._alarm_offsets, self._alarm_holds
        else:
            look, offsets, holds = self.settings.looks_for, self._offsets, self._holds
        if look > horizon:  # survival over the look horizon, x after the horizon
            predict = plan_predictor(look, self.settings.integrator, horizon)
        survived, end_x = predict(params, state, memory, jnp.asarray(offsets), jnp.asarray(holds))
        survived, end_x = np.asarray(survived), np.asarray(end_x)
        safe = survived >= look
        if alarm:
            best = int(np.lexsort((-end_x, -survived))[0])  # longest survival, then furthest
            taken = bool(survived[best] > survives)
        else:
            best = int(np.argmax(np.where(safe, end_x, -np.inf)))
            taken = bool(safe[best] and end_x[best] > end + self.settings.speed_margin)
        self._decisions.append(
            Decision(
                step=self._steps,
                survives=survives,
                best_survives=int(survived[best]),
                candidate=best,
                safe=int(np.sum(safe)),
                gain=float(end_x[best] - end),
                reason="fall" if alarm else "speed",
                taken=taken,
            )
        )
        if taken:
            self._offset, self._hold = offsets[best].copy(), int(holds[best])

    def act(self, obs: Any) -> np.ndarray:
        """Excitations (18,) for observation (41,)."""
        import jax.numpy as jnp

        obs = np.asarray(obs, dtype=float)
        if obs.shape != (OBSERVATION_SIZE,):
            raise ValueError(f"observation must have shape ({OBSERVATION_SIZE},), got {obs.shape}")
        if not np.all(np.isfinite(obs)):
            raise ValueError("observation holds non-finite values")
        state = self._with_observed(obs)
        cruising = self._memory[cruiser.T_CLEAR] > 0.0
        speed = (
            self.settings.speed_margin > 0.0
            and cruising
            and self._steps % self.settings.speed_every == 0
        )
        due = self._steps % self.settings.check_every == 0 or (
            self.settings.check_on_sighting and self._sighted
        )
        self._sighted = False
        if self._steps > 0 and (speed or due):
            self._check(state, speed)
        offset = self._offset if self._hold > 0 else None
        self._hold = max(self._hold - 1, 0)
        self._memory, action = cruiser.control(self.base.params, self._memory, obs, offset=offset)
        shadow_step = _shadow_step(self.settings.integrator)
        self._shadow = shadow_step(state, jnp.asarray(action))[0]
        self._steps += 1
        return action

    @classmethod
    def load(cls, path: str | Path, data: dict | None = None) -> PlannerPolicy:
        """A planner from its file: {"kind": "planner", "base": cruiser file (relative to the
        planner file's folder), "settings": {...}, "meta": {...}}."""
        path = Path(path)
        data = read_policy_data(path) if data is None else data
        if data.get("kind") != KIND:
            raise ValueError(f"{path} is not a planner file (kind={data.get('kind')!r})")
        if not isinstance(data.get("base"), str):
            raise ValueError(f"{path}: a planner file names its cruiser file in 'base'")
        base = cruiser.CruiserPolicy.load(path.parent / data["base"])
        settings = PlannerSettings.from_dict(data.get("settings", {}))
        return cls(base, settings, data.get("meta", {}))
