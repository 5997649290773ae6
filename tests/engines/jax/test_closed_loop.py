"""The JAX engine along a real gait: the pretrained runner's cruiser walking in OpenSim, live.

Open-loop parity (test_trajectory.py) holds the model still-ish under fixed excitations. A
walking controller visits other states: heel strikes, push-off, the swing foot skimming the
ground. Here OpenSim runs the pretrained runner closed loop on flat ground, and at the states it
visits the JAX derivatives must equal OpenSim's. They do, to ~1e-10, which is why the JAX
default scheme is `imex_stiff` and not RK4 x 20: the two engines compute the same equations, and
what made the runner fall under RK4 x 20 was the fixed-step explicit integration alone.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("opensim")

import jax.numpy as jnp  # noqa: E402

from l2run.course import Course  # noqa: E402
from l2run.engines.base import FALL_HEIGHT_M  # noqa: E402
from l2run.engines.jax import system  # noqa: E402
from l2run.engines.jax.integrate import Continuous  # noqa: E402
from l2run.engines.jax.params import load_params  # noqa: E402
from l2run.observation import pad_obstacles  # noqa: E402
from l2run.train.evaluate import load_policy, pretrained_cruiser_path  # noqa: E402

from .reference import EngineReference  # noqa: E402

STEPS = 150  # 1.5 s: the start, then two strides with heel strikes and push-offs
EVERY = 5  # compare at every 5th visited state
# Relative to the largest magnitude in the vector (accelerations reach ~3,000 rad/s² at the
# ankles at heel strike; measured agreement ~1e-13 relative).
REL_TOL = 1e-8
COURSE = Course()  # flat ground
MIN_PROGRESS_M = 0.3


@pytest.fixture(scope="module")
def gait():
    """(q, u, activation, fibre length, excitation) at each control step of the OpenSim walk."""
    reference = EngineReference()
    reference.set_course(COURSE)
    engine = reference.engine
    policy = load_policy(str(pretrained_cruiser_path())).policy
    policy.reset()
    visited = []
    for _ in range(STEPS):
        excitation = policy.act(engine.observation())
        q, u = engine.q_u()
        visited.append((q, u, engine.activations(), engine.fiber_lengths(), excitation))
        engine.step(excitation)
    q, _ = engine.q_u()
    # Measured: 0.49 m forward (it starts from standing), pelvis at 0.94 m.
    walked = q[1] - visited[0][0][1] > MIN_PROGRESS_M and q[2] > FALL_HEIGHT_M
    assert walked, f"the runner did not walk ({q[:3]}): the states would not be a gait"
    return reference, visited


def test_derivatives_match_opensim_along_the_gait(gait):
    reference, visited = gait
    params = load_params()
    obstacles = jnp.asarray(pad_obstacles(COURSE.obstacles))
    psoas = jnp.asarray(COURSE.psoas)
    worst = 0.0
    for q, u, activation, fiber_length, excitation in visited[::EVERY]:
        _qdot, udot, adot, ldot = reference.derivatives(q, u, activation, fiber_length, excitation)
        y = Continuous(*(jnp.asarray(v) for v in (q, u, activation, fiber_length)))
        ours = system.derivatives(params, y, jnp.asarray(excitation), obstacles, psoas)
        for name, mine, theirs in (
            ("udot", ours.u, udot),
            ("activation dot", ours.activation, adot),
            ("fibre length dot", ours.fiber_length, ldot),
        ):
            scale = max(np.abs(theirs).max(), 1.0)
            error = np.abs(np.asarray(mine) - theirs).max() / scale
            worst = max(worst, error)
            assert error <= REL_TOL, (name, error, q)
    assert worst > 0.0  # two engines, not one compared with itself
