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


class StiffDiagonal(NamedTuple):
    """Diagonal of the muscle-state Jacobian: ∂ȧ/∂a and ∂l̇/∂l (18,) each, 1/s.

    The stiff modes of this model are the fibre lengths (eigenvalues down to −1e7 1/s at low
    activation: a stiff tendon in series with a weak fibre) and, less so, the activations; each
    muscle's states depend on no other muscle's, so these diagonals carry the stiffness.
    """

    activation: jnp.ndarray
    fiber_length: jnp.ndarray


StiffJacobian = Callable[[Continuous], StiffDiagonal]
ROS2_GAMMA = 1.0 + 1.0 / math.sqrt(2.0)  # Verwer et al. (1999): L-stable, order 2 for any W


def _solve_w(k: Continuous, jd: StiffDiagonal, gh: jnp.ndarray) -> Continuous:
    """(I − γh J)⁻¹ k with J the stiff diagonal (zero on q, u)."""
    return Continuous(
        q=k.q,
        u=k.u,
        activation=k.activation / (1.0 - gh * jd.activation),
        fiber_length=k.fiber_length / (1.0 - gh * jd.fiber_length),
    )


def ros2_step(f: Derivative, y: Continuous, h: jnp.ndarray, jac: StiffJacobian) -> Continuous:
    """Two-stage Rosenbrock W-method ROS2 (2 evaluations + one stiff diagonal).

    Linearly implicit in the muscle states, explicit (Heun) in q and u::

        W = I − γhJ,  W k1 = f(y),  W k2 = f(y + h k1) − 2 k1,  y+ = y + h(3/2 k1 + 1/2 k2).
    """
    jd = jac(y)
    gh = ROS2_GAMMA * h
    k1 = _solve_w(f(y), jd, gh)
    f2 = f(_axpy(h, k1, y))
    k2 = _solve_w(jax.tree.map(lambda a, b: a - 2.0 * b, f2, k1), jd, gh)
    return jax.tree.map(lambda yi, a, b: yi + h * (1.5 * a + 0.5 * b), y, k1, k2)


def linearly_implicit_euler_step(
    f: Derivative, y: Continuous, h: jnp.ndarray, jac: StiffJacobian
) -> Continuous:
    """Semi-implicit Euler in q, u; linearly implicit (Rosenbrock–Euler) in the muscle states
    (1 evaluation + one stiff diagonal)."""
    jd = jac(y)
    k = _solve_w(f(y), jd, h)
    u = y.u + h * k.u
    return Continuous(
        q=y.q + h * u,
        u=u,
        activation=y.activation + h * k.activation,
        fiber_length=y.fiber_length + h * k.fiber_length,
    )


# name -> (step function, evaluations per substep, needs the stiff diagonal)
SCHEMES: dict[str, tuple[Callable[..., Continuous], int, bool]] = {
    "euler": (euler_step, 1, False),
    "semi_implicit_euler": (semi_implicit_euler_step, 1, False),
    "heun": (heun_step, 2, False),
    "rk4": (rk4_step, 4, False),
    "ros2": (ros2_step, 2, True),
    "linearly_implicit_euler": (linearly_implicit_euler_step, 1, True),
}


class Integrator(NamedTuple):
    """A scheme name and its number of equal substeps per control step (hashable: static)."""

    scheme: str = "rk4"
    substeps: int = 20

    @property
    def evaluations(self) -> int:
        """Derivative evaluations per control step."""
        return SCHEMES[self.scheme][1] * self.substeps


def integrate(
    f: Derivative,
    y: Continuous,
    dt: float,
    integrator: Integrator,
    jac: StiffJacobian | None = None,
) -> Continuous:
    """Advance y by dt with `integrator.substeps` steps of its scheme (a `fori_loop`);
    `jac` gives the stiff diagonal for the linearly implicit schemes."""
    if integrator.scheme not in SCHEMES:
        raise ValueError(f"integrator scheme must be one of {tuple(SCHEMES)}, got {integrator!r}")
    if integrator.substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {integrator.substeps}")
    step, _, stiff = SCHEMES[integrator.scheme]
    h = jnp.asarray(dt / integrator.substeps, dtype=y.q.dtype)
    if stiff:
        if jac is None:
            raise ValueError(f"scheme {integrator.scheme!r} needs the stiff diagonal `jac`")
        return jax.lax.fori_loop(0, integrator.substeps, lambda _, yy: step(f, yy, h, jac), y)
    return jax.lax.fori_loop(0, integrator.substeps, lambda _, yy: step(f, yy, h), y)
