"""OpenSim engine speed: our RunEnv vs an osim-rl-1.5-style loop, on the same excitations.

    python benchmarks/bench_opensim.py            # the headline comparison (one run)
    python benchmarks/bench_opensim.py --study    # + every integrator / accuracy / scheme

Prints, in one run:
- steps/s of our `RunEnv` (chosen integrator and accuracy, everything a step does: observation,
  reward, info["state"]),
- steps/s of an osim-rl-1.5-style loop on the same model and excitations: a new
  `opensim.Manager` every step at accuracy 1e-5 (OpenSim's default Runge-Kutta-Merson), the
  state handed from one Manager to the next, the 41 observations and ligament reward read back,
- their ratio, and our env's body-position error after 0.6 s against a reference run at
  accuracy 1e-7 (max over the 13 bodies' x, y, in m).

Excitations are smooth (a sinusoid per muscle, 1-3 Hz, fixed seed): the runner moves a lot in
0.6 s without falling. Speeds are steps per CPU-second of this process (`time.process_time`),
so that other programs sharing the machine do not distort the ratio; the reference and both
loops run in the same process, one after the other, best of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

STEP = 0.01  # s
STEPS = 60  # 0.6 s
REFERENCE_ACCURACY = 1e-7
OSIM_RL_ACCURACY = 1e-5


def smooth_excitations(steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """(steps, 18) excitations in [0, 1]: 0.5 + 0.5 sin(2π f t + φ), f in [1, 3] Hz."""
    rng = np.random.RandomState(seed)
    freq = rng.uniform(1.0, 3.0, 18)
    phase = rng.uniform(0.0, 2 * np.pi, 18)
    t = STEP * np.arange(steps)[:, None]
    return 0.5 + 0.5 * np.sin(2 * np.pi * freq * t + phase)


def body_positions(engine) -> np.ndarray:
    """(13, 2) body origins x, y (m) from an Engine."""
    return np.array([pose[:2] for pose in engine.body_poses().values()])


def run_env(excitations: np.ndarray, repeats: int = 1, **options) -> tuple[float, np.ndarray]:
    """Best steps/s of `repeats` runs of RunEnv, and the (steps, 13, 2) body positions."""
    from l2run.env.runenv import RunEnv

    env = RunEnv(**options)
    best = 0.0
    for _ in range(repeats):
        env.reset(difficulty=0, seed=0)
        positions = []
        began = time.process_time()
        for action in excitations:
            _, _, _, info = env.step(action)
            if "error" in info:
                raise RuntimeError(info["error"])
            positions.append(body_positions(env.engine))
        best = max(best, len(excitations) / (time.process_time() - began))
    env.close()
    return best, np.array(positions)


class OsimRl15Loop:
    """osim-rl 1.5's stepping, on OpenSim 4.6: a new Manager per step, state handed over."""

    def __init__(self, accuracy: float = OSIM_RL_ACCURACY) -> None:
        import opensim

        from l2run.engines.opensim_engine import load_model
        from l2run.model.names import BODIES, COORDINATES, LIGAMENTS, MUSCLES, OBS_BODIES

        self.osim = opensim
        self.accuracy = accuracy
        self.model = load_model()
        self.model.initSystem()
        brain = opensim.PrescribedController()
        for name in MUSCLES:
            brain.addActuator(self.model.getMuscles().get(name))
            brain.prescribeControlForActuator(name, opensim.Constant(0.0))
        self.model.addController(brain)
        self.model.initSystem()
        functions = brain.get_ControlFunctions()
        self.controls = [opensim.Constant.safeDownCast(functions.get(i)) for i in range(18)]
        self.coords = [self.model.getCoordinateSet().get(c) for c in COORDINATES]
        self.obs_bodies = [self.model.getBodySet().get(b) for b in OBS_BODIES]
        self.bodies = [self.model.getBodySet().get(b) for b in BODIES]
        forces = self.model.getForceSet()
        self.ligaments = [
            opensim.CoordinateLimitForce.safeDownCast(forces.get(n)) for n in LIGAMENTS
        ]

    def reset(self) -> None:
        self.state = self.model.initializeState()
        self.istep = 0
        self.last_x = self.coords[1].getValue(self.state)

    def step(self, action: np.ndarray) -> tuple[list[float], float]:
        for control, value in zip(self.controls, np.clip(action, 0, 1), strict=True):
            control.setValue(float(value))
        manager = self.osim.Manager(self.model)
        manager.setIntegratorAccuracy(self.accuracy)
        self.state.setTime(STEP * self.istep)
        manager.initialize(self.state)
        self.state = manager.integrate(STEP * (self.istep + 1))
        self.manager = manager  # the returned state belongs to the Manager
        self.istep += 1
        s = self.state
        self.model.realizeVelocity(s)
        com = self.model.calcMassCenterPosition(s)
        com_v = self.model.calcMassCenterVelocity(s)
        obs = [c.getValue(s) for c in self.coords[:3]] + [
            c.getSpeedValue(s) for c in self.coords[:3]
        ]
        obs += [c.getValue(s) for c in self.coords[3:]] + [
            c.getSpeedValue(s) for c in self.coords[3:]
        ]
        obs += [com[0], com[1], com_v[0], com_v[1]]
        for body in self.obs_bodies:
            p = body.getTransformInGround(s).p()
            obs += [p[0], p[1]]
        obs += [1.0, 1.0, 100.0, 0.0, 0.0]
        penalty = 1e-7 * np.sqrt(sum(lig.calcLimitForce(s) ** 2 for lig in self.ligaments))
        reward = obs[1] - self.last_x - penalty
        self.last_x = obs[1]
        return obs, reward

    def positions_from_variables(self, twin) -> np.ndarray:
        """Body origins recomputed on an independent model from this loop's state variables
        (what the loop *reads* can be stale; this is where it really is)."""
        osim = self.osim
        state = osim.State(twin.model.initializeState())
        state.setTime(self.state.getTime())
        state.setY(self.state.getY())
        twin.model.realizePosition(state)
        return np.array(
            [
                [
                    twin.model.getBodySet().get(b.getName()).getTransformInGround(state).p()[i]
                    for i in range(2)
                ]
                for b in self.bodies
            ]
        )

    def positions_as_read(self) -> np.ndarray:
        return np.array(
            [[b.getTransformInGround(self.state).p()[i] for i in range(2)] for b in self.bodies]
        )


def run_osim_rl(excitations: np.ndarray, repeats: int = 1) -> tuple[float, np.ndarray, np.ndarray]:
    """Best steps/s, body positions as read by the loop, and as its state variables say."""
    from l2run.engines.opensim_engine import OpenSimEngine

    loop = OsimRl15Loop()
    best = 0.0
    for _ in range(repeats):
        loop.reset()
        read, states = [], []
        began = time.process_time()
        for action in excitations:
            loop.step(action)
            read.append(loop.positions_as_read())
            states.append(np.array(loop.state.getY().to_numpy()))
        best = max(best, len(excitations) / (time.process_time() - began))
    # Where the loop's state variables really put the bodies (outside the timed loop).
    twin = OpenSimEngine()
    true = []
    for k, y in enumerate(states):
        state = loop.osim.State(twin.model.initializeState())
        state.setTime(STEP * (k + 1))
        state.setY(loop.osim.Vector.createFromMat(y))
        twin.model.realizePosition(state)
        true.append(np.array([pose[:2] for pose in _poses(twin.model, state)]))
    return best, np.array(read), np.array(true)


def _poses(model, state):
    from l2run.model.names import BODIES

    for name in BODIES:
        p = model.getBodySet().get(name).getTransformInGround(state).p()
        yield (p[0], p[1])


def error_m(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(error at the last step, max over the run) of body x, y, in m."""
    per_step = np.abs(a - b).reshape(len(a), -1).max(axis=1)
    return float(per_step[-1]), float(per_step.max())


STUDY = [
    # (manager scheme, integrator, accuracy)
    ("step", "rk_merson", 1e-5),
    ("episode", "rk_merson", 1e-5),
    ("episode", "rk_merson", 1e-4),
    ("episode", "rk_merson", 1e-3),
    ("episode", "rk3", 1e-3),
    ("episode", "rk3", 1e-2),
    ("episode", "rk2", 1e-2),
    ("episode", "rk_feldberg", 1e-3),
    ("episode", "cpodes", 1e-4),
    ("episode", "semi_explicit_euler2", 1e-4),
    ("episode", "semi_explicit_euler2", 3e-4),
    ("episode", "semi_explicit_euler2", 1e-3),
    ("step", "semi_explicit_euler2", 1e-3),
    ("episode", "semi_explicit_euler2", 3e-3),
    ("episode", "semi_explicit_euler2", 1e-2),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", action="store_true", help="also time every scheme")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    args = parser.parse_args()

    from l2run.engines.opensim_engine import DEFAULT_ACCURACY, DEFAULT_INTEGRATOR

    excitations = smooth_excitations()
    print(f"{len(excitations)} steps of {STEP} s, smooth excitations, difficulty 0")
    ref_sps, reference = run_env(excitations, integrator="rk_merson", accuracy=REFERENCE_ACCURACY)
    print(f"reference (rk_merson, accuracy {REFERENCE_ACCURACY:g}): {ref_sps:.1f} steps/s")

    old_sps, old_read, old_true = run_osim_rl(excitations, args.repeats)
    old_err, old_max = error_m(old_true, reference)
    read_err = error_m(old_read, old_true)[1]
    print(
        f"osim-rl 1.5 style (new Manager per step, rk_merson {OSIM_RL_ACCURACY:g}): "
        f"{old_sps:.1f} steps/s; error after 0.6 s {old_err * 1e3:.3f} mm "
        f"(max {old_max * 1e3:.3f} mm); positions it read were off by up to {read_err * 1e3:.2f} mm"
    )
    new_sps, ours = run_env(excitations, args.repeats)
    new_err, new_max = error_m(ours, reference)
    print(
        f"l2run RunEnv ({DEFAULT_INTEGRATOR}, accuracy {DEFAULT_ACCURACY:g}, one Manager per "
        f"episode): {new_sps:.1f} steps/s; error after 0.6 s {new_err * 1e3:.3f} mm "
        f"(max {new_max * 1e3:.3f} mm)"
    )
    print(f"speed-up: {new_sps / old_sps:.2f}x  (target >= 1.5x at <= 1 mm)")

    if args.study:
        print(
            "\n| Manager | integrator | accuracy | steps/s | vs osim-rl "
            "| error @0.6 s (mm) | max error (mm) |"
        )
        print("|---|---|---|---|---|---|---|")
        for scheme, integrator, accuracy in STUDY:
            try:
                sps, pos = run_env(
                    excitations,
                    args.repeats,
                    integrator=integrator,
                    accuracy=accuracy,
                    manager=scheme,
                )
            except RuntimeError as exc:
                print(f"| {scheme} | {integrator} | {accuracy:g} | failed: {exc} | | | |")
                continue
            err, worst = error_m(pos, reference)
            print(
                f"| {scheme} | {integrator} | {accuracy:g} | {sps:.1f} | {sps / old_sps:.2f}x "
                f"| {err * 1e3:.3f} | {worst * 1e3:.3f} |"
            )


if __name__ == "__main__":
    main()
