"""The packaged parameter file is current, complete, and loads without OpenSim."""

from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np

from l2run.engines.jax import params_io
from l2run.engines.jax.compile import compile_params, definition_sha256
from l2run.engines.jax.params import (
    PARAMS_FILE,
    SOURCE_HASH_KEY,
    ModelParams,
    load_params_with_meta,
)


def test_parameter_file_is_not_stale():
    """Fails when the JSON definition or the compiler changed without `l2run model compile`."""
    loaded, meta = load_params_with_meta()
    assert meta[SOURCE_HASH_KEY] == definition_sha256(), (
        "gait9dof18musc.json changed since the parameter file was compiled: "
        "run `l2run model compile`"
    )
    fresh = params_io.flatten(compile_params())
    stored = params_io.flatten(loaded)
    assert fresh.keys() == stored.keys(), "run `l2run model compile`"
    for key, value in fresh.items():
        np.testing.assert_array_equal(stored[key], value, err_msg=f"{key}: run l2run model compile")


def test_round_trip(tmp_path):
    params = compile_params()
    path = tmp_path / "p.npz"
    params_io.save(path, params, {"x": "y"})
    back, meta = params_io.load(path, ModelParams)
    assert meta == {"x": "y"}
    assert jax.tree.structure(back) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(back), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_loads_without_opensim_or_definition_loader():
    code = (
        "import sys\n"
        "sys.modules['opensim'] = None\n"  # any `import opensim` now raises ImportError
        "import l2run.model.definition as d\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('the engine must not read the JSON definition')\n"
        "d.load_definition = refuse\n"
        "from l2run.engines.jax.params import load_params\n"
        "p = load_params()\n"
        "assert p.tree.mass.shape == (13,)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert PARAMS_FILE.is_file()
