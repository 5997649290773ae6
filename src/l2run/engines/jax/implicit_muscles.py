"""Backward-Euler updates of the muscle states over one substep h (s), muscle by muscle.

The fibre lengths are the model's stiffest states (a stiff tendon in series with a weak fibre:
eigenvalues down to −6e7 1/s), but each muscle's fibre ODE depends only on its own states and
its path length. Implicit Euler is therefore a scalar equation per muscle,

    r(l′) = l′ − l − h · v(a′, l′, L′) = 0,

solved by Newton iterations on the muscle model alone (no kinematics, no path geometry),
which is what makes a 1 ms substep stable where explicit schemes need ≲ 0.1 ms. The
activation ODE is linear in the (clamped) activation for a fixed time constant, so its backward
Euler step is closed-form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from l2run.engines.jax import muscles
from l2run.engines.jax.muscles import MuscleParams

# Newton on the fibre lengths runs until no fibre is estimated to be further than this fraction
# of its optimal length from the solution (or, in float32, 16 units of round-off: a float32
# iteration cannot settle closer) ... ~1 nm: backward Euler's own error in the fibre lengths is
# ~10 µm per control step (benchmarks/scheme_error.py), and 1e-10 cost float64 5 % more time.
FIBER_NEWTON_TOLERANCE = 1e-8
FIBER_NEWTON_ROUNDOFF_UNITS = 16.0
# ... or this many iterations. A control step's substeps take a few (5.5 on average along the
# pretrained runner's gait with the plain stop; the contraction estimate below saves the last,
# confirming one); the default state's fibres
# (0.1 m, up to twice their optimal length) sit on the passive curve's exponential, where
# Newton gains about one e-fold per iteration: ~14 with a 1 ms substep (the graded first step
# needs fewer).
FIBER_NEWTON_MAX_ITERATIONS = 20
# A Newton update moves a fibre by at most this many optimal fibre lengths (guards the first
# iterations against the tendon curve's exponential toe).
MAX_NEWTON_STEP_OPTIMAL_LENGTHS = 0.25
# An update more than this fraction of the one before means Newton is not converging there
# (it contracts quadratically near a root); bisection then takes over inside the bracket.
STALLED_CONTRACTION = 0.5


def activation_step(
    p: MuscleParams, activation: jnp.ndarray, excitation: jnp.ndarray, h: jnp.ndarray
) -> jnp.ndarray:
    """Activation after h: backward Euler of ȧ = (e − clamp(a))/τ with τ frozen at the start.

    Below the minimum activation the rate is the constant (e − a_min)/τ (OpenSim lets the state
    drift below a_min while the force uses a_min), so that branch is the exact step.
    """
    a_c = jnp.clip(activation, p.minimum_activation, 1.0)
    ratio = h / muscles.activation_time_constant(p, a_c, excitation)
    implicit = (activation + ratio * excitation) / (1.0 + ratio)
    below = activation + ratio * (excitation - p.minimum_activation)
    return jnp.where(implicit >= p.minimum_activation, implicit, below)


def fiber_length_step(
    p: MuscleParams,
    activation: jnp.ndarray,
    fiber_length: jnp.ndarray,
    excitation: jnp.ndarray,
    path_length: jnp.ndarray,
    psoas: jnp.ndarray,
    h: jnp.ndarray,
) -> jnp.ndarray:
    """Fibre lengths (M,) m after h: backward Euler at the end-of-step activation and path
    length (`activation`, `path_length` are the values at t + h).

    Newton starts from `fiber_length` (see `integrate.Advance` for why not from an
    extrapolation). It stops once the updates' contraction says what is left is below the
    tolerance (Hairer & Wanner's estimate for Newton in implicit integrators: with θ = this
    update / the previous one, θ/(1 − θ) × this update; quadratic convergence makes θ small,
    so this saves the last, confirming iteration).
    The Newton loop runs a data-dependent number of iterations, which reverse mode cannot
    differentiate; `lax.custom_root` differentiates the solution by the implicit function
    theorem instead (dl′ = −(∂r/∂l′)⁻¹ ∂r/∂θ, a division per muscle), so `jax.grad` works
    through the default scheme and costs nothing extra in the forward pass.
    """

    def velocity(x: jnp.ndarray) -> jnp.ndarray:
        s = muscles.muscle_state(p, activation, x, excitation, path_length, psoas)
        return s.fiber_velocity

    def residual(x: jnp.ndarray) -> jnp.ndarray:
        return x - fiber_length - h * velocity(x)

    max_step = MAX_NEWTON_STEP_OPTIMAL_LENGTHS * p.optimal_fiber_length
    roundoff = FIBER_NEWTON_ROUNDOFF_UNITS * float(jnp.finfo(fiber_length.dtype).eps)
    tolerance = max(FIBER_NEWTON_TOLERANCE, roundoff)

    def solve(r, x0: jnp.ndarray) -> jnp.ndarray:
        def newton(carry: tuple) -> tuple:
            k, x, previous, _, below, above, stalled = carry
            value, slope = jax.jvp(r, (x,), (jnp.ones_like(x),))  # ∂r/∂l′ per muscle
            # Each evaluation narrows the bracket [below, above] around the root (r < 0 below
            # it, > 0 above it: r rises with the fibre length).
            below = jnp.where(value < 0.0, x, below)
            above = jnp.where(value > 0.0, x, above)
            # ∂v/∂l ≤ 0 almost everywhere (a longer fibre means a shorter, less loaded
            # tendon), so the slope 1 − h ∂v/∂l is ≥ 1; where it is not, a unit slope keeps
            # the iteration a damped fixed point.
            newton_x = x - jnp.clip(value / jnp.maximum(slope, 1.0), -max_step, max_step)
            # Where the velocity is flat on both sides of a steep stretch (a slack tendon on
            # one side, a fibre held at its minimum length on the other: a drop of ~16 m/s
            # within 4 % of the length), Newton's slope-1 steps jump across the stretch and
            # back forever. So a muscle whose last update did not at least halve the one
            # before, with its root bracketed, bisects the bracket when Newton would leave it
            # (safeguarded Newton); where Newton contracts, nothing changes.
            bracketed = jnp.isfinite(below) & jnp.isfinite(above)
            outside = (newton_x <= below) | (newton_x >= above)
            bisect = stalled & bracketed & outside
            new_x = jnp.where(bisect, 0.5 * (below + above), newton_x)
            update = x - new_x
            moved = jnp.abs(update) / p.optimal_fiber_length
            # What is left after this update: θ/(1 − θ)·moved = moved²/(previous − moved)
            # while the updates shrink (θ < 1); otherwise (and before a second update, when
            # `previous` is 0) the update itself, the plain criterion.
            contracting = moved < previous
            gap = jnp.where(contracting, previous - moved, 1.0)
            left = jnp.where(contracting, moved * moved / gap, moved)
            stalled = (previous > 0.0) & (moved > STALLED_CONTRACTION * previous)
            return k + 1, new_x, moved, jnp.max(left), below, above, stalled

        def unconverged(carry: tuple) -> jnp.ndarray:
            k, _, _, left, _, _, _ = carry
            return (k < FIBER_NEWTON_MAX_ITERATIONS) & (left > tolerance)

        # A while loop: under `vmap` it runs until every runner has converged.
        unbounded = jnp.full_like(x0, jnp.inf)
        not_stalled = jnp.zeros(x0.shape, bool)
        start = (
            0, x0, jnp.zeros_like(x0), jnp.asarray(jnp.inf, x0.dtype),
            -unbounded, unbounded, not_stalled,
        )  # fmt: skip
        return jax.lax.while_loop(unconverged, newton, start)[1]

    def tangent_solve(linear, rhs: jnp.ndarray) -> jnp.ndarray:
        # Each residual depends on its own fibre only: the Jacobian is diagonal.
        return rhs / jnp.maximum(linear(jnp.ones_like(rhs)), 1.0)

    return jax.lax.custom_root(residual, fiber_length, solve, tangent_solve)


def tendon_force_and_stiffness(
    p: MuscleParams,
    activation: jnp.ndarray,
    fiber_length: jnp.ndarray,
    excitation: jnp.ndarray,
    path_length: jnp.ndarray,
    psoas: jnp.ndarray,
    h: jnp.ndarray,
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Tendon forces (M,) N at the end of a backward-Euler substep and their derivative with
    respect to the end-of-step path length, dF/dL′ (M,) N/m, with the fibre length following
    its backward-Euler equation (implicit function theorem): the stiffness the multibody
    feels through the muscle over one substep (tendon in series with a fibre damped by its
    force–velocity curve), which the linearly implicit multibody step inverts. Clamped at 0.
    """

    def force_and_velocity(x: jnp.ndarray, length: jnp.ndarray):
        s = muscles.muscle_state(p, activation, x, excitation, length, psoas)
        return s.tendon_force, s.fiber_velocity

    ones, zeros = jnp.ones_like(fiber_length), jnp.zeros_like(fiber_length)
    primals = (fiber_length, path_length)
    (force, _), (df_dl, dv_dl) = jax.jvp(force_and_velocity, primals, (ones, zeros))
    _, (df_dlength, dv_dlength) = jax.jvp(force_and_velocity, primals, (zeros, ones))
    # r(l′, L′) = l′ − l − h v(l′, L′) = 0  ⇒  dl′/dL′ = h ∂v/∂L′ / (1 − h ∂v/∂l′)
    dfiber = h * dv_dlength / jnp.maximum(1.0 - h * dv_dl, 1.0)
    return force, jnp.maximum(df_dlength + df_dl * dfiber, 0.0)
