"""Fixed-step integrators for one 0.01 s control step (no error control: jit/vmap/grad-able).

The continuous state is `Continuous(q, u, activation, fiber_length)`; a scheme advances it with
`n` equal substeps of a derivative function ``f(y) -> ẏ`` (excitations held constant). The
choice of scheme and substeps is measured against OpenSim in README "The JAX engine"; every
scheme reports its derivative evaluations per control step (`evaluations`), which sets the cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Continuous(NamedTuple):
    """The integrated state: coordinates, speeds, muscle activations and fiber lengths."""

    q: jnp.ndarray
    u: jnp.ndarray
    activation: jnp.ndarray
    fiber_length: jnp.ndarray


Derivative = Callable[[Continuous], Continuous]


def _axpy(a: jnp.ndarray, x: Continuous, y: Continuous) -> Continuous:
    """y + a·x, field by field."""
    return jax.tree.map(lambda xi, yi: yi + a * xi, x, y)


def euler_step(f: Derivative, y: Continuous, h: jnp.ndarray) -> Continuous:
    """Explicit Euler (1 evaluation)."""
    return _axpy(h, f(y), y)


def semi_implicit_euler_step(f: Derivative, y: Continuous, h: jnp.ndarray) -> Continuous:
    """Symplectic Euler (1 evaluation): u from the old state, q with the new u; muscle states
    explicit."""
    d = f(y)
    u = y.u + h * d.u
    return Continuous(
        q=y.q + h * u,
        u=u,
        activation=y.activation + h * d.activation,
        fiber_length=y.fiber_length + h * d.fiber_length,
    )


def heun_step(f: Derivative, y: Continuous, h: jnp.ndarray) -> Continuous:
    """Heun's second-order method (2 evaluations)."""
    k1 = f(y)
    k2 = f(_axpy(h, k1, y))
    return jax.tree.map(lambda yi, a, b: yi + 0.5 * h * (a + b), y, k1, k2)


def rk4_step(f: Derivative, y: Continuous, h: jnp.ndarray) -> Continuous:
    """Classical fourth-order Runge–Kutta (4 evaluations)."""
    k1 = f(y)
    k2 = f(_axpy(0.5 * h, k1, y))
    k3 = f(_axpy(0.5 * h, k2, y))
    k4 = f(_axpy(h, k3, y))
    return jax.tree.map(
        lambda yi, a, b, c, d: yi + (h / 6.0) * (a + 2.0 * b + 2.0 * c + d), y, k1, k2, k3, k4
    )


class StiffJacobian(NamedTuple):
    """The stiff part of ∂ẏ/∂y that the linearly implicit schemes invert: ∂ȧ/∂a and ∂l̇/∂l
    (18,) each, 1/s. The fibre lengths are this model's stiffest states (eigenvalues down to
    −6e7 1/s at the default state: a stiff tendon in series with a weak fibre) and each muscle's
    states depend on no other muscle's, so the diagonals carry that stiffness. (Treating u
    implicitly too, with M⁻¹ ∂Q/∂u of contact and ligaments, made the first step *less* accurate
    in our measurements, so q and u stay explicit.)
    """

    activation: jnp.ndarray
    fiber_length: jnp.ndarray


DerivativeAndJacobian = Callable[[Continuous], tuple[Continuous, StiffJacobian]]
ROS2_GAMMA = 1.0 + 1.0 / math.sqrt(2.0)  # Verwer et al. (1999): L-stable, order 2 for any W


def _w_solver(jac: StiffJacobian, gh: jnp.ndarray) -> Callable[[Continuous], Continuous]:
    """k ↦ (I − γh J)⁻¹ k with J the stiff Jacobian (zero on q and u)."""

    def solve(k: Continuous) -> Continuous:
        return Continuous(
            q=k.q,
            u=k.u,
            activation=k.activation / (1.0 - gh * jac.activation),
            fiber_length=k.fiber_length / (1.0 - gh * jac.fiber_length),
        )

    return solve


def ros2_step(
    f: Derivative, y: Continuous, h: jnp.ndarray, f_jac: DerivativeAndJacobian
) -> Continuous:
    """Two-stage Rosenbrock W-method ROS2 (2 evaluations, the first with the stiff Jacobian).

    Linearly implicit in the muscle states, explicit (Heun) in q and u::

        W = I − γhJ,  W k1 = f(y),  W k2 = f(y + h k1) − 2 k1,  y+ = y + h(3/2 k1 + 1/2 k2).
    """
    f1, jac = f_jac(y)
    solve = _w_solver(jac, ROS2_GAMMA * h)
    k1 = solve(f1)
    f2 = f(_axpy(h, k1, y))
    k2 = solve(jax.tree.map(lambda a, b: a - 2.0 * b, f2, k1))
    return jax.tree.map(lambda yi, a, b: yi + h * (1.5 * a + 0.5 * b), y, k1, k2)


def linearly_implicit_euler_step(
    f: Derivative, y: Continuous, h: jnp.ndarray, f_jac: DerivativeAndJacobian
) -> Continuous:
    """Linearly implicit (Rosenbrock–)Euler in the muscle states, symplectic Euler in q, u
    (1 evaluation with the stiff Jacobian)."""
    f1, jac = f_jac(y)
    k = _w_solver(jac, h)(f1)
    u = y.u + h * k.u
    return Continuous(
        q=y.q + h * u,
        u=u,
        activation=y.activation + h * k.activation,
        fiber_length=y.fiber_length + h * k.fiber_length,
    )


# A model-specific substep ``advance(y, h) -> y′`` (the IMEX scheme, `system.imex_substep`): it
# needs the model's structure (which states are stiff and local), not just ẏ. Its fibre-length
# solve starts from y's own lengths. (Starting it from lengths extrapolated from the previous
# substep saved Newton iterations but not time, 1.01-1.05x, and changed the gait: where a fibre
# below its minimum length has a slack tendon, its velocity falls steeply, plain Newton oscillated
# there and the start decided what came out; the extrapolated start drifted such fibres further
# down, and the pretrained runner fell on 65 of 120 validation courses under `imex_stiff` x10
# instead of 37: benchmarks/RESULTS.md, 2026-12-02, "A regression found and undone". The solve
# is now safeguarded there: `implicit_muscles.fiber_length_step`.)
Advance = Callable[[Continuous, jnp.ndarray], Continuous]

EXPLICIT, STIFF, MODEL = "explicit", "stiff", "model"
# name -> (step function, evaluations per substep, what it needs: EXPLICIT f only, STIFF f and
# the stiff diagonal `f_jac`, MODEL the model's own substep `advance`)
SCHEMES: dict[str, tuple[Callable[..., Continuous] | None, int, str]] = {
    "euler": (euler_step, 1, EXPLICIT),
    "semi_implicit_euler": (semi_implicit_euler_step, 1, EXPLICIT),
    "heun": (heun_step, 2, EXPLICIT),
    "rk4": (rk4_step, 4, EXPLICIT),
    "ros2": (ros2_step, 2, STIFF),
    "linearly_implicit_euler": (linearly_implicit_euler_step, 1, STIFF),
    "imex": (None, 1, MODEL),
    "imex_stiff": (None, 1, MODEL),
}


class Integrator(NamedTuple):
    """A scheme, its substeps per control step and their grading (hashable: static).

    `grading` 1 gives equal substeps; r > 1 makes them grow geometrically (each r times the
    previous), which resolves a fast transient at the start of the step — the muscles' fibre
    lengths relaxing from the model's non-equilibrium default state — with few substeps.
    """

    scheme: str = "rk4"
    substeps: int = 20
    grading: float = 1.0

    @property
    def evaluations(self) -> int:
        """Derivative evaluations per control step."""
        return SCHEMES[self.scheme][1] * self.substeps


class SubstepPlan(NamedTuple):
    """An integrator's substeps as numbers: how many, the first one's size h₀ (s) and the
    ratio r of each to the one before (h_k = h₀ rᵏ). Python numbers, or arrays passed at run
    time, so that one compiled program serves schemes that differ only in these."""

    count: int | jnp.ndarray
    first: float | jnp.ndarray  # s
    ratio: float | jnp.ndarray


def substep_plan(integrator: Integrator, dt: float) -> SubstepPlan:
    """The substeps of `integrator` over a step of dt (s): equal ones, or growing by its
    grading and summing to dt."""
    n, r = integrator.substeps, float(integrator.grading)
    if r == 1.0:
        return SubstepPlan(n, dt / n, r)
    return SubstepPlan(n, dt * (r - 1.0) / (r**n - 1.0), r)


def integrate(
    f: Derivative,
    y: Continuous,
    dt: float,
    integrator: Integrator,
    f_jac: DerivativeAndJacobian | None = None,
    advance: Advance | None = None,
    plan: SubstepPlan | None = None,
) -> Continuous:
    """Advance y by dt with `integrator.substeps` steps of its scheme (a `fori_loop`);
    `f_jac` gives f and the stiff Jacobian for the linearly implicit schemes, `advance` the
    model's own substep for "imex". `plan` (arrays; they must sum to dt) replaces the
    integrator's substeps: a loop of run-time length, which reverse mode cannot differentiate."""
    if integrator.scheme not in SCHEMES:
        raise ValueError(f"integrator scheme must be one of {tuple(SCHEMES)}, got {integrator!r}")
    if integrator.substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {integrator.substeps}")
    step, _, needs = SCHEMES[integrator.scheme]
    if needs == STIFF and f_jac is None:
        raise ValueError(f"scheme {integrator.scheme!r} needs the stiff Jacobian `f_jac`")
    if needs == MODEL and advance is None:
        raise ValueError(f"scheme {integrator.scheme!r} needs the model's substep `advance`")
    n, first, r = substep_plan(integrator, dt) if plan is None else plan
    dtype = y.q.dtype

    def h_at(k) -> jnp.ndarray:
        return jnp.asarray(first, dtype) * jnp.asarray(r, dtype) ** k

    def body(k, yy):
        if needs == MODEL:
            return advance(yy, h_at(k))
        return step(f, yy, h_at(k), f_jac) if needs == STIFF else step(f, yy, h_at(k))

    return jax.lax.fori_loop(0, n, body, y)
