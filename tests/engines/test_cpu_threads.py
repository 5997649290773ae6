"""The JAX engine's CPU thread pool: sized before JAX starts, by the API and the command line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from l2run import cli
from l2run.engines import cpu_threads

needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counts threads through Linux's /proc"
)

# XLA's CPU client names its pool's threads "tf_XLAEigen" (one per pool thread).
_COUNT_POOL_THREADS = textwrap.dedent(
    """
    import os, sys
    from l2run.engines.cpu_threads import set_cpu_threads
    set_cpu_threads(int(sys.argv[1]))
    import jax, jax.numpy as jnp
    x = jnp.ones((64, 64))
    jax.jit(lambda a: a @ a)(x).block_until_ready()
    tasks = os.listdir("/proc/self/task")
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks]
    print(sum(name.endswith("XLAEigen") for name in names))
    """
)


def _run(code: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@needs_proc
@pytest.mark.parametrize("threads", [1, 3])
def test_set_cpu_threads_sizes_the_pool(threads: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (cpu_threads.THREADS_ENV, "NPROC")}
    out = _run(_COUNT_POOL_THREADS, str(threads), env=env)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) == threads


def test_set_cpu_threads_after_jax_started_raises() -> None:
    code = textwrap.dedent(
        """
        import os
        import jax.numpy as jnp
        from l2run.engines.cpu_threads import THREADS_ENV, jax_backend_started, set_cpu_threads
        os.environ.pop(THREADS_ENV, None)
        assert not jax_backend_started()
        jnp.ones(2).block_until_ready()
        assert jax_backend_started()
        set_cpu_threads(0)  # what it already is: no change, no error
        try:
            set_cpu_threads(2)
        except RuntimeError as exc:
            print("refused:", exc)
        assert THREADS_ENV not in os.environ
        """
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert "refused:" in out.stdout and "PJRT_NPROC=2" in out.stdout


def test_negative_thread_count_is_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        cpu_threads.set_cpu_threads(-1)


@pytest.fixture
def jax_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's callback as a fresh `l2run` process sees it (this test process may
    have started JAX already); the environment is restored afterwards."""
    monkeypatch.setattr(cpu_threads, "jax_backend_started", lambda: False)
    monkeypatch.delenv(cpu_threads.THREADS_ENV, raising=False)


@pytest.mark.parametrize(
    ("argv", "preset", "expected"),
    [
        ([], None, str(cpu_threads.DEFAULT_CPU_THREADS)),
        ([], "4", "4"),  # the user's environment wins over the default
        (["--cpu-threads", "3"], "4", "3"),  # the option wins over both
        (["--cpu-threads", "0"], "4", None),  # 0: XLA's own default (one per core)
    ],
)
def test_cli_sets_the_pool_before_any_command(
    jax_not_started, monkeypatch: pytest.MonkeyPatch, argv, preset, expected
) -> None:
    if preset is not None:
        monkeypatch.setenv(cpu_threads.THREADS_ENV, preset)
    result = CliRunner().invoke(cli.app, [*argv, "model", "--help"])
    assert result.exit_code == 0, result.output
    assert os.environ.get(cpu_threads.THREADS_ENV) == expected


def test_cli_refuses_an_explicit_count_it_cannot_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_threads, "jax_backend_started", lambda: True)
    monkeypatch.delenv(cpu_threads.THREADS_ENV, raising=False)
    result = CliRunner().invoke(cli.app, ["--cpu-threads", "2", "model", "--help"])
    assert result.exit_code != 0
    assert "already exists" in result.output
    assert cpu_threads.THREADS_ENV not in os.environ
