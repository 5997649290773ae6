"""One runner's step compiles its substep loops into single CPU kernels, with the same numbers;
`XLA_FLAGS` gets the loop-size threshold without overriding the user's flags."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.course import generate_course
from l2run.engines.jax import loop_kernels
from l2run.engines.jax import rollout as rollout_module
from l2run.engines.jax.loop_kernels import (
    SMALL_LOOP_BYTES,
    SMALL_LOOP_OPTION,
    request_small_loop_threshold,
)
from l2run.engines.jax.params import load_params
from l2run.engines.jax.step import reset, step
from l2run.observation import pad_obstacles

STEPS = 30
# Round-off between scatters and masks, LAPACK and the unrolled elimination, grown over STEPS.
SAME_NUMBERS = 1e-9

# Compiles `step` both ways in a fresh process (the flags are read when JAX starts) and counts
# the while loops and the loops compiled as one kernel (XLA tags them as small calls).
_COUNT_LOOP_KERNELS = textwrap.dedent(
    """
    import jax.numpy as jnp
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.integrate import Integrator
    from l2run.engines.jax.step import DEFAULT_INTEGRATOR, reset, step
    from l2run.engines.jax import loop_kernels
    assert loop_kernels.single_kernel_loops_pay()  # the default for one runner
    params = load_params()
    state = reset(params, jnp.zeros((10, 3)), jnp.ones(2))
    action = jnp.full(18, 0.1)
    plain = Integrator("imex", DEFAULT_INTEGRATOR.substeps)  # solves with LAPACK unflagged
    for integrator, single in ((DEFAULT_INTEGRATOR, True), (plain, True), (plain, False)):
        text = step.lower(
            params, state, action, integrator, None, single_kernel_loops=single
        ).compile().as_text()
        print(text.count(" while("), text.count('xla_cpu_small_call="true"'))
    """
)

# The same count for a CPU batch's step: one chunk of runners (runners last), whose loop over
# its substeps accesses ~1e8 bytes as XLA counts them: a kernel only under our threshold.
_COUNT_BATCH_LOOP_KERNELS = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    from l2run.engines.jax import rollout
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import DEFAULT_INTEGRATOR, reset
    jax.config.update("jax_enable_x64", True)
    params = load_params()
    n = rollout.CPU_RUNNER_CHUNK
    one = reset(params, jnp.zeros((10, 3)), jnp.ones(2))
    state = jax.tree.map(lambda a: jnp.broadcast_to(a, (n,) + jnp.shape(a)), one)
    action = jnp.full((n, 18), 0.1)
    assert rollout.batch_layout() == "minor"
    text = rollout.batch_step.lower(
        params, state, action, DEFAULT_INTEGRATOR, None
    ).compile().as_text()
    print(text.count(" while("), text.count('xla_cpu_small_call="true"'))
    """
)

# And for one runner's rollout: its substep loops are kernels, its outer scan is not.
_COUNT_ROLLOUT_LOOP_KERNELS = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    from l2run.engines.jax import rollout
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import reset
    jax.config.update("jax_enable_x64", True)
    params = load_params()
    state = reset(params, jnp.zeros((10, 3)), jnp.ones(2))
    def policy(obs, key):
        return jnp.full((18,), 0.1, obs.dtype)
    text = rollout.rollout.lower(
        params, state, policy, jax.random.PRNGKey(0), 3
    ).compile().as_text()
    print(text.count(" while("), text.count('xla_cpu_small_call="true"'))
    """
)

# And the operations a single runner's step program launches outside its kernels: the
# JaxEngine's step with a substep plan (`engine_jit(one_kernel=True)`), then `step` called at
# the top level, which is traced as it is (what the one-kernel wrapper saves).
_COUNT_STEP_PROGRAM_OPERATIONS = textwrap.dedent(
    """
    import re
    import jax
    import jax.numpy as jnp
    import numpy as np
    from l2run.engines.jax import engine, step as step_module
    jax.config.update("jax_enable_x64", True)
    def operations(compiled):
        text = compiled.as_text()
        entry = text[text.index("ENTRY"):]
        entry = entry[: entry.index("\\n}")]
        skip = r"constant\\(|parameter\\(|bitcast\\(|get-tuple-element\\(|tuple\\("
        return sum(1 for line in entry.splitlines() if " = " in line and not re.search(skip, line))
    e = engine.JaxEngine()
    args = (e._param_buffers, e._packed, e._obstacles, e._psoas, np.full(18, 0.1), e._plans[0],
            e._layout, e.integrator, e._first_integrator)
    print(operations(engine._planned_step_and_snapshot.lower(*args).compile()))
    state, action = e.state, jnp.full(18, 0.1)
    print(operations(step_module.step.lower(e.params, state, action, e.integrator, None).compile()))
    """
)


def _loop_and_kernel_counts(script: str) -> list[tuple[int, int]]:
    """Run a counting script in a fresh process (JAX reads the flags when it starts) with
    the package's own threshold (the caller's XLA_FLAGS removed): each printed line's
    (while loops, loops compiled as one kernel)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return [tuple(int(v) for v in line.split()) for line in out.stdout.strip().splitlines()]


@pytest.fixture(scope="module")
def params():
    return load_params()


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU backend compilation choice")
def test_single_runner_loops_become_single_kernels() -> None:
    counts = _loop_and_kernel_counts(_COUNT_LOOP_KERNELS)[-3:]
    for loops, kernels in counts[:2]:  # the stiff and the plain IMEX scheme, flagged
        assert loops > 0 and kernels == loops  # every loop of one runner's step: one kernel
    loops_b, kernels_b = counts[2]
    assert kernels_b < loops_b  # unflagged, the plain scheme's LAPACK solve keeps loops apart


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU backend compilation choice")
def test_a_cpu_batch_chunk_runs_its_substeps_as_one_kernel() -> None:
    loops, kernels = _loop_and_kernel_counts(_COUNT_BATCH_LOOP_KERNELS)[-1]
    assert loops > 0 and kernels == loops  # the substep loop and the fibre Newton loop in it


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU backend compilation choice")
def test_a_single_runner_rollout_scan_stays_out_of_one_kernel() -> None:
    loops, kernels = _loop_and_kernel_counts(_COUNT_ROLLOUT_LOOP_KERNELS)[-1]
    assert kernels > 0 and kernels == loops - 1  # every loop but the scan over steps


# Operations at a single runner's step program's top level: 8 with the whole step in one
# kernel, ~190 without (measured, float64).
ONE_KERNEL_PROGRAM_OPERATIONS = 40


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="a CPU backend compilation choice")
def test_a_single_runner_step_program_is_one_kernel() -> None:
    engine_step, plain_step = [
        n for (n,) in _loop_and_kernel_counts(_COUNT_STEP_PROGRAM_OPERATIONS)
    ]
    assert engine_step <= ONE_KERNEL_PROGRAM_OPERATIONS, engine_step
    assert plain_step > ONE_KERNEL_PROGRAM_OPERATIONS  # what the one-kernel wrapper saves


@pytest.mark.parametrize("value", [1.5, -0.0, 0.0, np.inf, -np.inf, np.nan, -3e-300])
def test_the_rollouts_sort_passes_a_value_bit_for_bit(value: float) -> None:
    out = np.asarray(rollout_module._outside_one_kernel(jnp.asarray(value)))
    assert out.tobytes() == np.asarray(value).tobytes()


def test_both_spellings_give_the_same_steps(params) -> None:
    course = generate_course(np.random.RandomState(7), 2, 3, seed=7)
    state0 = reset(params, jnp.asarray(pad_obstacles(course.obstacles)), jnp.asarray(course.psoas))
    actions = np.random.default_rng(1).uniform(0.0, 0.6, (STEPS, 18))
    states = {}
    for single in (True, False):
        s = state0
        for a in actions:
            s = step(params, s, jnp.asarray(a), single_kernel_loops=single)[0]
        states[single] = s
    assert float(states[True].q[1]) != float(state0.q[1])  # the runner moved
    for name in ("q", "u", "activation", "fiber_length"):
        a, b = np.asarray(getattr(states[True], name)), np.asarray(getattr(states[False], name))
        np.testing.assert_allclose(a, b, rtol=0, atol=SAME_NUMBERS * (1 + np.max(np.abs(b))))


def test_spelling_is_chosen_while_tracing() -> None:
    assert not loop_kernels.enabled()
    with loop_kernels.single_kernel_loops():
        assert loop_kernels.enabled()
        with loop_kernels.single_kernel_loops(False):
            assert not loop_kernels.enabled()
        assert loop_kernels.enabled()
    assert not loop_kernels.enabled()


@pytest.mark.parametrize(
    "before, after",
    [
        ("", f"--xla_backend_extra_options={SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}"),
        (
            "--xla_cpu_enable_fast_math=false",
            f"--xla_cpu_enable_fast_math=false "
            f"--xla_backend_extra_options={SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}",
        ),
        (  # other extra options are kept, ours joins them
            "--xla_backend_extra_options=xla_cpu_other=1",
            f"--xla_backend_extra_options=xla_cpu_other=1,{SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}",
        ),
        (  # the user's own threshold stands
            f"--xla_backend_extra_options={SMALL_LOOP_OPTION}=0",
            f"--xla_backend_extra_options={SMALL_LOOP_OPTION}=0",
        ),
    ],
)
def test_threshold_joins_the_user_flags(monkeypatch, before: str, after: str) -> None:
    monkeypatch.setattr(loop_kernels, "_in_force", loop_kernels._in_force)  # restored after
    monkeypatch.setattr(loop_kernels, "jax_backend_started", lambda: False)
    monkeypatch.setenv("XLA_FLAGS", before)
    assert request_small_loop_threshold()
    assert os.environ["XLA_FLAGS"] == after


def test_nothing_changes_once_jax_has_started(monkeypatch) -> None:
    monkeypatch.setattr(loop_kernels, "_in_force", loop_kernels._in_force)  # restored after
    monkeypatch.setattr(loop_kernels, "jax_backend_started", lambda: True)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert not request_small_loop_threshold()
    assert os.environ["XLA_FLAGS"] == "--xla_cpu_enable_fast_math=false"
    # without the threshold, one runner's step keeps scatters and LAPACK by default
    assert not loop_kernels.single_kernel_loops_pay()
