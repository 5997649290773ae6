"""Fixed-step integrators for one 0.01 s control step (no error control: jit/vmap/grad-able).

The continuous state is `Continuous(q, u, activation, fiber_length)`; a scheme advances it with
`n` equal substeps of a derivative function ``f(y) -> ẏ`` (excitations held constant). The
choice of scheme and substeps is measured against OpenSim in README "The JAX engine"; every
scheme reports its derivative evaluations per control step (`evaluations`), which sets the cost.
"""

from __future__ import annotations

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


SCHEMES: dict[str, tuple[Callable[[Derivative, Continuous, jnp.ndarray], Continuous], int]] = {
    "euler": (euler_step, 1),
    "semi_implicit_euler": (semi_implicit_euler_step, 1),
    "heun": (heun_step, 2),
    "rk4": (rk4_step, 4),
}


class Integrator(NamedTuple):
    """A scheme name and its number of equal substeps per control step (hashable: static)."""

    scheme: str = "rk4"
    substeps: int = 20

    @property
    def evaluations(self) -> int:
        """Derivative evaluations per control step."""
        return SCHEMES[self.scheme][1] * self.substeps


def integrate(f: Derivative, y: Continuous, dt: float, integrator: Integrator) -> Continuous:
    """Advance y by dt with `integrator.substeps` steps of its scheme (a `fori_loop`)."""
    if integrator.scheme not in SCHEMES:
        raise ValueError(f"integrator scheme must be one of {tuple(SCHEMES)}, got {integrator!r}")
    if integrator.substeps < 1:
        raise ValueError(f"substeps must be >= 1, got {integrator.substeps}")
    step, _ = SCHEMES[integrator.scheme]
    h = jnp.asarray(dt / integrator.substeps, dtype=y.q.dtype)
    return jax.lax.fori_loop(0, integrator.substeps, lambda _, yy: step(f, yy, h), y)
