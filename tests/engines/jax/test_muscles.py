"""Thelen2003Muscle in JAX against OpenSim 4.6 computed live, muscle by muscle."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import muscles
from l2run.model.definition import load_definition
from l2run.model.names import COORDINATES, MUSCLES

N_STATES = 200
REL_TOL = 1e-8
PSOAS = (0.73, 0.86)  # (left, right)


def _reference():
    """The live OpenSim reference (skips the calling test where opensim is not installed)."""
    pytest.importorskip("opensim", reason="opensim is needed for the live parity reference")
    from tests.engines.jax import forces_reference

    return forces_reference


def _random_states(rng: np.random.Generator, params: muscles.MuscleParams):
    """States across every regime: activation below/above its clamps, fibres from below their
    minimum length to 1.9 optimal, all excitations, knees beyond their range."""
    n_m = len(MUSCLES)
    lopt = np.asarray(params.optimal_fiber_length)
    lmin = np.asarray(params.minimum_fiber_length)
    for i in range(N_STATES):
        q = rng.uniform(-2.3, 1.2, len(COORDINATES))
        q[0], q[1], q[2] = rng.uniform(-0.6, 0.6), rng.uniform(-1, 5), rng.uniform(0.6, 1.1)
        u = rng.uniform(-6, 6, len(COORDINATES))
        act = rng.uniform(-0.05, 1.05, n_m)
        fib = rng.uniform(0.2, 1.9, n_m) * lopt
        at_min = rng.random(n_m) < 0.1
        fib = np.where(at_min, lmin * rng.choice([0.5, 1.0], n_m), fib)
        exc = rng.uniform(0, 1, n_m)
        if i % 7 == 0:
            exc = rng.choice([0.0, 1.0], n_m)
            act = rng.choice([0.0, 0.01, 1.0, 1.2], n_m)
        yield q, u, act, fib, exc


def test_muscle_quantities_match_opensim():
    d = load_definition()
    params = muscles.compile_muscles(d)
    ref = _reference().ForceReference(psoas=PSOAS)
    fn = jax.jit(muscles.muscle_state)
    rng = np.random.default_rng(42)
    names = (
        "tendon_force fiber_force active_fiber_force passive_fiber_force fiber_velocity "
        "activation_rate pennation_angle tendon_length"
    ).split()
    got = {k: [] for k in names}
    want = {k: [] for k in names}
    clamped, extrapolated = 0, 0
    for q, u, act, fib, exc in _random_states(rng, params):
        ref.set_state(q, u, act, fib, exc)
        s = ref.state
        length = np.array([m.getLength(s) for m in ref.muscles])
        out = fn(params, act, fib, exc, length, jnp.asarray(PSOAS))
        clamped += int(np.sum(out.fiber_length_clamped))
        on_curve = np.abs(out.norm_fiber_velocity) < 0.25 + 0.75 * np.asarray(out.activation)
        extrapolated += int(np.sum(~on_curve))
        for k in names:
            got[k].append(np.asarray(getattr(out, k)))
        for m in ref.muscles:
            want["tendon_force"].append(m.getTendonForce(s))
            want["fiber_force"].append(m.getFiberForce(s))
            want["active_fiber_force"].append(m.getActiveFiberForce(s))
            want["passive_fiber_force"].append(m.getPassiveFiberForce(s))
            want["fiber_velocity"].append(m.getStateVariableDerivativeValue(s, "fiber_length"))
            want["activation_rate"].append(m.getStateVariableDerivativeValue(s, "activation"))
            want["pennation_angle"].append(m.getPennationAngle(s))
            want["tendon_length"].append(m.getTendonLength(s))
    # Absolute floors: forces 1e-5 of the muscle's max isometric force (a slack tendon makes the
    # fibre force a cancellation a·f_L·f_V + f_PE ≈ 0 of terms ~F_max whose last bits differ),
    # rates 1e-6/s, velocities, lengths and angles 1e-9.
    fiso = np.tile(np.asarray(muscles.max_isometric_forces(params, jnp.asarray(PSOAS))), N_STATES)
    floors = {"activation_rate": 1e-6, "pennation_angle": 1e-9, "tendon_length": 1e-9}
    floors |= {"fiber_velocity": 1e-9}
    floors |= {k: 1e-5 * fiso for k in names if k.endswith("force")}
    errors = {}
    for k in names:
        g = np.concatenate(got[k])
        w = np.array(want[k])
        errors[k] = _reference().rel_err(g, w, floors.get(k, 1e-6))
    print("max relative errors:", {k: f"{v:.1e}" for k, v in errors.items()})
    # The states must exercise the clamp and the force-velocity extrapolation.
    assert clamped > 0 and extrapolated > 0, (clamped, extrapolated)
    assert max(errors.values()) <= REL_TOL, errors


def test_psoas_scales_only_the_iliopsoas():
    params = muscles.compile_muscles(load_definition())
    base = np.asarray(params.max_isometric_force)
    scaled = np.asarray(muscles.max_isometric_forces(params, jnp.array([0.5, 0.8])))
    ratio = scaled / base
    expected = np.ones(len(MUSCLES))
    expected[MUSCLES.index("iliopsoas_l")] = 0.5
    expected[MUSCLES.index("iliopsoas_r")] = 0.8
    np.testing.assert_allclose(ratio, expected, rtol=1e-15)


def test_gradients_are_finite_everywhere():
    params = muscles.compile_muscles(load_definition())
    rng = np.random.default_rng(3)
    lopt = np.asarray(params.optimal_fiber_length)
    lmin = np.asarray(params.minimum_fiber_length)

    def total(act, fib, exc, length):
        out = muscles.muscle_dynamics(params, act, fib, exc, length, jnp.array([0.9, 1.0]))
        return (
            jnp.sum(out.tendon_force) + jnp.sum(out.fiber_length_dot) + jnp.sum(out.activation_dot)
        )

    grad = jax.jit(jax.grad(total, argnums=(0, 1, 2, 3)))
    for _ in range(5):
        act = rng.uniform(-0.1, 1.1, len(MUSCLES))
        fib = np.where(rng.random(len(MUSCLES)) < 0.3, lmin, rng.uniform(0.3, 1.8) * lopt)
        exc = rng.uniform(0, 1, len(MUSCLES))
        length = rng.uniform(0.1, 0.9, len(MUSCLES))
        for g in grad(act, fib, exc, length):
            assert np.all(np.isfinite(np.asarray(g)))
    # vmap over a batch of environments with their own psoas strengths.
    batch = jax.vmap(lambda ps: muscles.max_isometric_forces(params, ps))(
        jnp.array([[1.0, 1.0], [0.5, 0.6]])
    )
    assert batch.shape == (2, len(MUSCLES))


def test_muscle_forces_report_the_muscle_state():
    params = muscles.compile_muscles(load_definition())
    rng = np.random.default_rng(8)
    act = rng.uniform(0, 1, len(MUSCLES))
    fib = rng.uniform(0.5, 1.5, len(MUSCLES)) * np.asarray(params.optimal_fiber_length)
    length = rng.uniform(0.2, 0.6, len(MUSCLES))
    psoas = jnp.array([0.8, 0.9])
    report = muscles.muscle_forces(params, act, fib, length, psoas)
    state = muscles.muscle_state(params, act, fib, np.zeros(len(MUSCLES)), length, psoas)
    for name, value in report.items():
        np.testing.assert_array_equal(value, getattr(state, name))
    dyn = muscles.muscle_dynamics(params, act, fib, np.ones(len(MUSCLES)), length, psoas)
    np.testing.assert_array_equal(dyn.tendon_force, state.tendon_force)
    assert np.all(np.asarray(dyn.activation_dot) >= 0)  # full excitation only activates
