"""Thelen2003Muscle exactly as OpenSim 4.6 computes it, for all muscles at once (arrays (M,)).

Follows `Thelen2003Muscle::calcMuscleLengthInfo`, `calcFiberVelocityInfo`,
`calcMuscleDynamicsInfo`, `MuscleFixedWidthPennationModel` and
`MuscleFirstOrderActivationDynamicModel`, in their operation order:

* fibre length state ``l`` is clamped below at ``l_min = h / sin(φ_max)`` (``h = l_opt sin φ_opt``
  the fixed parallelogram height; ``l_min = 0`` for a muscle without pennation);
* pennation ``φ = asin(h / l)`` (``φ_max`` at the lower bound, 0 without pennation);
* tendon length ``l_T = L − l cos φ`` from the path length L; tendon force–strain: exponential toe
  up to ``ε_toe = 99 e0 e³ / (166 e³ − 67)`` then linear, ``e0 = FmaxTendonStrain``;
* active force–length Gaussian ``exp(−(l̃ − 1)² / KshapeActive)``, passive
  ``(exp(KshapePassive (l̃ − 1) / FmaxMuscleStrain) − 1) / (exp(KshapePassive) − 1)`` for l̃ > 1;
* fibre velocity from the *inverse* force–velocity curve (`calcdlceN`): with the equilibrium
  ``a f_L f_V = f_T / cos φ − f_PE``, Thelen 2003 eqs. 6–7 (Af, Flen) inside
  ``0 < a f_L f_V < fv_linear_extrap_threshold · Flen · a f_L``, linear extrapolation outside;
* fibre at its lower bound and shortening → fibre velocity 0 and fibre force 0 (f_V = 1);
* activation clamped to [minimum_activation, 1] wherever it is used; ``ȧ = (e − a)/τ`` with
  ``τ = τ_act (0.5 + 1.5 a)`` when e > a, else ``τ_deact / (0.5 + 1.5 a)`` (a clamped, e not).

The muscle pulls its path with the tendon force; `paths.py` turns that into generalized forces.
Psoas weakness (osim-rl) scales the max isometric force of `iliopsoas_l` / `iliopsoas_r`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from l2run.model.names import MUSCLES

# SimTK constants used by the pennation model's branches.
SIMTK_EPS = float(np.finfo(float).eps)
SIMTK_SIGNIFICANT_REAL = SIMTK_EPS ** (7.0 / 8.0)
# Thelen 2003 tendon curve constants (Thelen2003Muscle::calcfse).
TENDON_K_TOE = 3.0
TENDON_F_TOE = 33.0 / 100.0
# Muscles whose max isometric force the psoas strengths (left, right) scale.
PSOAS_MUSCLES = ("iliopsoas_l", "iliopsoas_r")


class MuscleParams(NamedTuple):
    """Thelen2003 properties per muscle (M,), in `l2run.model.names.MUSCLES` order. SI units."""

    max_isometric_force: jnp.ndarray  # N, before psoas scaling
    optimal_fiber_length: jnp.ndarray  # m
    tendon_slack_length: jnp.ndarray  # m
    pennation_angle_at_optimal: jnp.ndarray  # rad
    max_contraction_velocity: jnp.ndarray  # optimal fibre lengths / s
    kshape_active: jnp.ndarray
    kshape_passive: jnp.ndarray
    fmax_muscle_strain: jnp.ndarray
    af: jnp.ndarray
    flen: jnp.ndarray
    fv_linear_extrap_threshold: jnp.ndarray
    maximum_pennation_angle: jnp.ndarray  # rad
    activation_time_constant: jnp.ndarray  # s
    deactivation_time_constant: jnp.ndarray  # s
    minimum_activation: jnp.ndarray
    # Derived exactly as OpenSim derives them at finalizeFromProperties:
    parallelogram_height: jnp.ndarray  # m, l_opt sin(φ_opt)
    maximum_sin_pennation: jnp.ndarray
    minimum_fiber_length: jnp.ndarray  # m
    tendon_toe_strain: jnp.ndarray  # ε_toe
    tendon_linear_stiffness: jnp.ndarray  # k_lin (normalised)
    psoas_side: jnp.ndarray  # (M,) int: 0 left psoas, 1 right psoas, -1 other


def _tendon_curve_constants(e0: float) -> tuple[float, float]:
    """(ε_toe, k_lin) with OpenSim's literal expressions (same rounding)."""
    t1 = math.exp(0.3e1)
    e_toe = (0.99e2 * e0 * t1) / (0.166e3 * t1 - 0.67e2)
    t1 = math.exp(0.3e1)
    k_lin = (0.67e2 / 0.100e3) * 1.0 / (e0 - (0.99e2 * e0 * t1) / (0.166e3 * t1 - 0.67e2))
    return e_toe, k_lin


def compile_muscles(definition) -> MuscleParams:
    """Muscle arrays (numpy float64) from a `ModelDefinition`, in MUSCLES order."""
    by_name = {m.name: m for m in definition.muscles}
    missing = [n for n in MUSCLES if n not in by_name]
    if missing:
        raise ValueError(f"model definition lacks muscles {missing}")
    ms = [by_name[n] for n in MUSCLES]
    for m in ms:
        if m.type != "Thelen2003Muscle":
            raise ValueError(f"{m.name}: only Thelen2003Muscle is supported, got {m.type}")
        if m.ignore_tendon_compliance or m.ignore_activation_dynamics:
            raise ValueError(f"{m.name}: rigid-tendon / no-activation modes are not supported")

    def col(field: str) -> np.ndarray:
        return np.array([float(getattr(m, field)) for m in ms])

    height, max_sin, min_len, e_toe, k_lin = [], [], [], [], []
    for m in ms:
        h = m.optimal_fiber_length * math.sin(m.pennation_angle_at_optimal)
        s = math.sin(m.maximum_pennation_angle)
        height.append(h)
        max_sin.append(s)
        if m.maximum_pennation_angle > SIMTK_SIGNIFICANT_REAL:
            min_len.append(h / s)
        else:
            min_len.append(m.optimal_fiber_length * 0.01)
        et, kl = _tendon_curve_constants(m.fmax_tendon_strain)
        e_toe.append(et)
        k_lin.append(kl)
    side = np.array(
        [PSOAS_MUSCLES.index(n) if n in PSOAS_MUSCLES else -1 for n in MUSCLES], dtype=np.int32
    )
    return MuscleParams(
        max_isometric_force=col("max_isometric_force"),
        optimal_fiber_length=col("optimal_fiber_length"),
        tendon_slack_length=col("tendon_slack_length"),
        pennation_angle_at_optimal=col("pennation_angle_at_optimal"),
        max_contraction_velocity=col("max_contraction_velocity"),
        kshape_active=col("kshape_active"),
        kshape_passive=col("kshape_passive"),
        fmax_muscle_strain=col("fmax_muscle_strain"),
        af=col("af"),
        flen=col("flen"),
        fv_linear_extrap_threshold=col("fv_linear_extrap_threshold"),
        maximum_pennation_angle=col("maximum_pennation_angle"),
        activation_time_constant=col("activation_time_constant"),
        deactivation_time_constant=col("deactivation_time_constant"),
        minimum_activation=col("minimum_activation"),
        parallelogram_height=np.array(height),
        maximum_sin_pennation=np.array(max_sin),
        minimum_fiber_length=np.array(min_len),
        tendon_toe_strain=np.array(e_toe),
        tendon_linear_stiffness=np.array(k_lin),
        psoas_side=side,
    )


# --- curves ------------------------------------------------------------------------------------


def max_isometric_forces(p: MuscleParams, psoas: jnp.ndarray) -> jnp.ndarray:
    """Max isometric force (M,) N with psoas strengths (left, right) applied."""
    psoas = jnp.asarray(psoas)
    scale = jnp.where(p.psoas_side == 0, psoas[0], jnp.where(p.psoas_side == 1, psoas[1], 1.0))
    return scale * p.max_isometric_force


def tendon_force_length(p: MuscleParams, norm_tendon_length: jnp.ndarray) -> jnp.ndarray:
    """f_T(l_T / l_s) (Thelen2003Muscle::calcfse), normalised by the max isometric force."""
    x = norm_tendon_length - 1
    e_toe, k_lin = p.tendon_toe_strain, p.tendon_linear_stiffness
    linear = k_lin * (x - e_toe) + TENDON_F_TOE
    x_toe = jnp.clip(x, 0.0, e_toe)  # keeps exp() finite in the branch not taken
    toe = (TENDON_F_TOE / (jnp.exp(TENDON_K_TOE) - 1.0)) * (
        jnp.exp(TENDON_K_TOE * x_toe / e_toe) - 1.0
    )
    return jnp.where(x > e_toe, linear, jnp.where(x > 0.0, toe, 0.0))


def active_force_length(p: MuscleParams, norm_fiber_length: jnp.ndarray) -> jnp.ndarray:
    """f_L(l̃) Gaussian (Thelen2003Muscle::calcfal)."""
    x = (norm_fiber_length - 1.0) * (norm_fiber_length - 1.0)
    return jnp.exp(-x / p.kshape_active)


def passive_force_length(p: MuscleParams, norm_fiber_length: jnp.ndarray) -> jnp.ndarray:
    """f_PE(l̃) exponential above optimal length, 0 below (Thelen2003Muscle::calcfpe)."""
    stretched = norm_fiber_length > 1.0
    lce = jnp.where(stretched, norm_fiber_length, 1.0)
    t5 = jnp.exp(p.kshape_passive * (lce - 0.10e1) / p.fmax_muscle_strain)
    t7 = jnp.exp(p.kshape_passive)
    return jnp.where(stretched, (t5 - 0.10e1) / (t7 - 0.10e1), 0.0)


def fiber_velocity_from_force(
    p: MuscleParams, activation: jnp.ndarray, fal: jnp.ndarray, a_fal_fv: jnp.ndarray
) -> jnp.ndarray:
    """Normalised fibre velocity (l_opt·v_max units) from a·f_L·f_V (Thelen2003Muscle::calcdlceN).

    Thelen 2003 eqs. 6–7 inside the curve's valid region, linear extrapolation (from the end
    points at 0 and fv_linear_extrap_threshold·Flen·a f_L) outside it.
    """
    a, af, flen = activation, p.af, p.flen
    afl = a * fal
    fm = a_fal_fv
    asy_e = afl * flen
    thresh = p.fv_linear_extrap_threshold
    on_curve = (fm > 0.0) & (fm < asy_e * thresh)
    gain = 0.25 + 0.75 * a

    def b_of(f: jnp.ndarray) -> jnp.ndarray:
        concentric = afl + f / af
        eccentric = ((2 + 2 / af) * (afl * flen - f)) / (flen - 1)
        return jnp.where(f <= afl, concentric, eccentric)

    # On the curve (evaluated at a safe force where the extrapolation is used).
    fm_curve = jnp.where(on_curve, fm, afl)
    curve = gain * (fm_curve - afl) / b_of(fm_curve)
    # Linear extrapolation from the nearer end of the valid region.
    concentric_end = fm <= 0.0
    fm0 = jnp.where(concentric_end, 0.0, thresh * asy_e)
    b0 = jnp.where(concentric_end, afl + fm0 / af, ((2 + 2 / af) * (afl * flen - fm0)) / (flen - 1))
    db = jnp.where(concentric_end, 1 / af, ((2 + 2 / af) * (-1)) / (flen - 1))
    dlce0 = gain * (fm0 - afl) / b0
    dlce_dfm = gain * (1) / b0 - (gain * (fm0 - afl) / (b0 * b0)) * db
    extrapolated = dlce0 + dlce_dfm * (fm - fm0)
    return jnp.where(on_curve, curve, extrapolated)


# --- the muscle --------------------------------------------------------------------------------


class MuscleState(NamedTuple):
    """Everything OpenSim's MuscleLength/FiberVelocity/MuscleDynamics infos report (M,)."""

    activation: jnp.ndarray  # clamped activation used in the force
    fiber_length: jnp.ndarray  # m, clamped at the minimum fibre length
    pennation_angle: jnp.ndarray  # rad
    tendon_length: jnp.ndarray  # m
    fiber_velocity: jnp.ndarray  # m/s (d fibre length / dt)
    norm_fiber_velocity: jnp.ndarray  # fibre velocity / (l_opt v_max)
    fiber_force: jnp.ndarray  # N, along the fibre
    fiber_force_along_tendon: jnp.ndarray  # N
    active_fiber_force: jnp.ndarray  # N
    passive_fiber_force: jnp.ndarray  # N
    tendon_force: jnp.ndarray  # N: the tension the muscle applies to its path
    activation_rate: jnp.ndarray  # 1/s (d activation / dt)
    fiber_length_clamped: jnp.ndarray  # bool: fibre at its lower bound and shortening


def muscle_state(
    p: MuscleParams,
    activation: jnp.ndarray,
    fiber_length: jnp.ndarray,
    excitation: jnp.ndarray,
    path_length: jnp.ndarray,
    psoas: jnp.ndarray,
) -> MuscleState:
    """All muscle quantities from the states (activation, fibre length (m)), the excitations,
    the path lengths (m) and the psoas strengths (left, right).

    The path's lengthening speed is not needed: Thelen2003's fibre velocity comes from the
    inverted force–velocity curve (an equilibrium model), not from the path speed.
    """
    fiso = max_isometric_forces(p, psoas)
    lopt, tsl = p.optimal_fiber_length, p.tendon_slack_length
    a = jnp.clip(activation, p.minimum_activation, 1.0)

    # MuscleLengthInfo
    lce = jnp.maximum(p.minimum_fiber_length, fiber_length)
    norm_lce = lce / lopt
    pennated = p.pennation_angle_at_optimal > SIMTK_EPS
    above_min = lce > p.minimum_fiber_length
    sin_phi_raw = p.parallelogram_height / jnp.where(above_min, lce, 1.0)
    asin_ok = above_min & (sin_phi_raw < p.maximum_sin_pennation)
    sin_phi = jnp.where(asin_ok, sin_phi_raw, 0.0)
    phi = jnp.where(asin_ok, jnp.arcsin(sin_phi), p.maximum_pennation_angle)
    phi = jnp.where(pennated, phi, 0.0)
    # cos φ = √(1 − sin²φ) on the parallelogram branch: the same number to round-off, and the
    # fibre Newton loop (which needs cos φ, not φ) then runs no arcsin or cos, its costliest ops.
    cos_phi = jnp.where(
        asin_ok, jnp.sqrt(1.0 - sin_phi * sin_phi), jnp.cos(p.maximum_pennation_angle)
    )
    cos_phi = jnp.where(pennated, cos_phi, 1.0)
    tendon_length = path_length - lce * cos_phi
    fpe = passive_force_length(p, norm_lce)
    fal = active_force_length(p, norm_lce)

    # FiberVelocityInfo
    fse = tendon_force_length(p, tendon_length / tsl)
    a_fal_fv = (fse / cos_phi) - fpe
    fv = a_fal_fv / (a * fal)
    dlce_n = fiber_velocity_from_force(p, a, fal, a_fal_fv)
    clamped = (fiber_length <= p.minimum_fiber_length) & (dlce_n <= 0)
    dlce = jnp.where(clamped, 0.0, dlce_n * p.max_contraction_velocity * lopt)
    dlce_n = jnp.where(clamped, 0.0, dlce_n)
    fv = jnp.where(clamped, 1.0, fv)

    # MuscleDynamicsInfo
    active = jnp.where(clamped, 0.0, (a * fal * fv) * fiso)
    fiber_force = jnp.where(clamped, 0.0, (a * fal * fv + fpe) * fiso)

    return MuscleState(
        activation=a,
        fiber_length=lce,
        pennation_angle=phi,
        tendon_length=tendon_length,
        fiber_velocity=dlce,
        norm_fiber_velocity=dlce_n,
        fiber_force=fiber_force,
        fiber_force_along_tendon=fiber_force * cos_phi,
        active_fiber_force=active,
        passive_fiber_force=fpe * fiso,
        tendon_force=fse * fiso,
        activation_rate=activation_rate(p, activation, excitation),
        fiber_length_clamped=clamped,
    )


def activation_rate(
    p: MuscleParams, activation: jnp.ndarray, excitation: jnp.ndarray
) -> jnp.ndarray:
    """d(activation)/dt (M,) 1/s (MuscleFirstOrderActivationDynamicModel::calcDerivative)."""
    a = jnp.clip(activation, p.minimum_activation, 1.0)
    return (excitation - a) / activation_time_constant(p, a, excitation)


def activation_time_constant(
    p: MuscleParams, clamped_activation: jnp.ndarray, excitation: jnp.ndarray
) -> jnp.ndarray:
    """τ (M,) s of the activation dynamics at a clamped activation: τ_act (0.5 + 1.5 a) when
    activating (e > a), else τ_deact / (0.5 + 1.5 a)."""
    a = clamped_activation
    return jnp.where(
        excitation > a,
        p.activation_time_constant * (0.5 + 1.5 * a),
        p.deactivation_time_constant / (0.5 + 1.5 * a),
    )


class MuscleDerivatives(NamedTuple):
    """What the dynamics need from the muscles (M,)."""

    tendon_force: jnp.ndarray  # N, tension along the path
    activation_dot: jnp.ndarray  # 1/s
    fiber_length_dot: jnp.ndarray  # m/s


def muscle_dynamics(
    p: MuscleParams,
    activation: jnp.ndarray,
    fiber_length: jnp.ndarray,
    excitation: jnp.ndarray,
    path_length: jnp.ndarray,
    psoas: jnp.ndarray,
) -> MuscleDerivatives:
    """Tendon forces and the muscle state derivatives (see `muscle_state` for the arguments)."""
    s = muscle_state(p, activation, fiber_length, excitation, path_length, psoas)
    return MuscleDerivatives(
        tendon_force=s.tendon_force,
        activation_dot=s.activation_rate,
        fiber_length_dot=s.fiber_velocity,
    )


def muscle_forces(
    p: MuscleParams,
    activation: jnp.ndarray,
    fiber_length: jnp.ndarray,
    path_length: jnp.ndarray,
    psoas: jnp.ndarray,
) -> dict[str, jnp.ndarray]:
    """Forces for reporting (M,) N: tendon, fibre, fibre along tendon, active, passive."""
    s = muscle_state(p, activation, fiber_length, jnp.zeros_like(activation), path_length, psoas)
    return {
        "tendon_force": s.tendon_force,
        "fiber_force": s.fiber_force,
        "fiber_force_along_tendon": s.fiber_force_along_tendon,
        "active_fiber_force": s.active_fiber_force,
        "passive_fiber_force": s.passive_fiber_force,
    }
