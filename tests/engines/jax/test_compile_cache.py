"""The engine keeps compiled programs on disk where L2RUN_XLA_CACHE says (fresh processes:
JAX takes its cache folder once)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from l2run.engines.jax.compile_cache import CACHE_ENV

# Imports the engine, compiles one small program and prints where its cache is.
_SCRIPT = (
    "import jax, jax.numpy as jnp\n"
    "import l2run.engines.jax\n"
    "jax.jit(lambda x: jnp.sin(x) * 2.0)(jnp.ones(3)).block_until_ready()\n"
    "print(jax.config.jax_compilation_cache_dir)\n"
)
CACHE_VARIABLES = (CACHE_ENV, "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME")


def _cache_dir(tmp_path: Path, **env: str) -> tuple[str, str]:
    """(the cache folder a fresh process's engine uses, its stderr) under `env`."""
    clean = {k: v for k, v in os.environ.items() if k not in CACHE_VARIABLES}
    # every program cached, however fast it compiled
    clean["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    clean["HOME"] = str(tmp_path / "home")
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, env={**clean, **env}
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1], run.stderr


def test_the_default_cache_is_the_users_and_holds_the_compiled_programs(tmp_path) -> None:
    folder, _ = _cache_dir(tmp_path)
    assert folder == str(tmp_path / "home" / ".cache" / "l2run" / "xla")
    assert any(Path(folder).iterdir()), "nothing cached"
    folder, _ = _cache_dir(tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert folder == str(tmp_path / "xdg" / "l2run" / "xla")


def test_the_cache_folder_is_chosen_or_turned_off(tmp_path) -> None:
    chosen = tmp_path / "chosen"
    assert _cache_dir(tmp_path, **{CACHE_ENV: str(chosen)})[0] == str(chosen)
    assert any(chosen.iterdir())
    for off in ("0", "off"):
        assert _cache_dir(tmp_path, **{CACHE_ENV: off})[0] == "None"
    assert not (tmp_path / "home" / ".cache").exists()


def test_a_cache_folder_given_to_jax_is_left_as_it_is(tmp_path) -> None:
    theirs = tmp_path / "theirs"
    folder, _ = _cache_dir(
        tmp_path, JAX_COMPILATION_CACHE_DIR=str(theirs), **{CACHE_ENV: str(tmp_path / "ours")}
    )
    assert folder == str(theirs) and not (tmp_path / "ours").exists()


def test_a_folder_that_cannot_be_made_warns_and_compiles_without_a_cache(tmp_path) -> None:
    (tmp_path / "a_file").write_text("x")
    folder, stderr = _cache_dir(tmp_path, **{CACHE_ENV: str(tmp_path / "a_file" / "xla")})
    assert folder == "None"
    assert "no XLA compilation cache: cannot make" in stderr, stderr


def test_use_compilation_cache_leaves_a_configured_cache_alone(monkeypatch) -> None:
    import jax

    from l2run.engines.jax.compile_cache import use_compilation_cache

    before = jax.config.jax_compilation_cache_dir
    if not before:
        pytest.skip("this process has no cache folder")
    monkeypatch.setenv(CACHE_ENV, "/nonexistent/elsewhere")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert use_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir == before
