"""`jax.grad` through 20 control steps: finite and equal to central finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import step as S
from l2run.engines.jax.integrate import Integrator
from l2run.engines.jax.params import load_params
from l2run.observation import pad_obstacles

STEPS = 20
EPS = 1e-6  # excitation perturbation for the central differences
REL_TOL = 1e-4
N_DIRECTIONS = 3


# From reset with the default schemes (`imex_stiff`: 60 + 19 × 10 evaluations, its Newton solves
# differentiated by the implicit function theorem) reverse mode takes ~4 min to compile and run
# here; the other case starts after the first step (fibres settled) and takes 20 steps of
# RK4 ×10. Both passed when committed (measured 254 s under load, and 293 s). Since CPU loops
# compile as single kernels whatever their size (session 36), reverse mode through RK4's
# single-kernel loops compiles for over 7.5 min (2 steps, one core; 63 s with
# `single_kernel_loops=False`, the default scheme 57–63 s either way: 2026-12-05, session 39),
# and the RK4 case took 1,030–1,088 s in all: so it takes the library spelling, as README
# "Gradients" advises (55 s in all). The timeout leaves room for a loaded machine.
GRAD_TIMEOUT_S = 1800
FROM_FIRST_STEP = (Integrator("rk4", 10), None, 1, False)
FROM_RESET = (S.DEFAULT_INTEGRATOR, S.FIRST_STEP_INTEGRATOR, 0, None)


@pytest.mark.slow  # reverse-mode compilation: 25–55 s each alone (session 39), minutes under load
@pytest.mark.timeout(GRAD_TIMEOUT_S)
@pytest.mark.parametrize(
    "schemes", [FROM_FIRST_STEP, FROM_RESET], ids=["after-first-step", "from-reset"]
)
def test_grad_of_pelvis_x_matches_finite_differences(schemes):
    integrator, first, warmup, single_kernel_loops = schemes
    params = load_params()
    start = S.reset(params, jnp.asarray(pad_obstacles(np.zeros((0, 3)))), jnp.ones(2))
    for _ in range(warmup):
        start, *_ = S.step(params, start, jnp.full(18, 0.5))

    @jax.jit
    def pelvis_x(excitations: jnp.ndarray) -> jnp.ndarray:
        def body(state, action):
            state, *_ = S.step(
                params, state, action, integrator, first, single_kernel_loops=single_kernel_loops
            )
            return state, None

        final, _ = jax.lax.scan(body, start, excitations)
        return final.q[1]

    rng = np.random.default_rng(0)
    # Interior excitations: the clip to [0, 1] has no kink within ±EPS.
    base = jnp.asarray(rng.uniform(0.2, 0.8, (STEPS, 18)))
    grad = jax.grad(pelvis_x)(base)
    assert np.all(np.isfinite(grad))
    assert np.any(grad != 0)
    for _ in range(N_DIRECTIONS):
        v = jnp.asarray(rng.normal(size=base.shape))
        fd = (pelvis_x(base + EPS * v) - pelvis_x(base - EPS * v)) / (2 * EPS)
        ad = jnp.sum(grad * v)
        np.testing.assert_allclose(float(ad), float(fd), rtol=REL_TOL)
