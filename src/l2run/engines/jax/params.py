"""`ModelParams`: every number the JAX engine needs, as one pytree of plain arrays.

Compiled from the model definition by `compile.py` (which needs the definition, not OpenSim)
and shipped as package data `l2run/model/gait9dof18musc_params.npz`; `load_params()` reads that
file with numpy only, so the engine runs where neither OpenSim nor the JSON loader is available.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import jax.numpy as jnp

from l2run.engines.jax import params_io
from l2run.engines.jax.bodies import BodyTreeParams
from l2run.engines.jax.contact import ContactParams
from l2run.engines.jax.ligaments import LigamentParams
from l2run.engines.jax.muscles import MuscleParams
from l2run.engines.jax.paths import PathParams
from l2run.engines.jax.splines import SplineParams

PARAMS_FILE = Path(__file__).resolve().parents[2] / "model" / "gait9dof18musc_params.npz"
# Metadata key holding the SHA-256 of the JSON definition the file was compiled from.
SOURCE_HASH_KEY = "source_sha256"


class DefaultState(NamedTuple):
    """The model's default state (no equilibration), as OpenSim's `initSystem` gives it."""

    q: jnp.ndarray  # (9,) default coordinate values, rad / m
    u: jnp.ndarray  # (9,) default speeds
    activation: jnp.ndarray  # (18,) default activations
    fiber_length: jnp.ndarray  # (18,) default fiber lengths, m


class ModelParams(NamedTuple):
    """Body tree, joint splines, muscles, paths, ligaments, contact and the default state."""

    tree: BodyTreeParams
    joint_splines: SplineParams  # functions of a coordinate used by joints (knee translations)
    muscles: MuscleParams
    paths: PathParams
    ligaments: LigamentParams
    contact: ContactParams
    default: DefaultState


def save_params(params: ModelParams, source_sha256: str, path: Path = PARAMS_FILE) -> None:
    """Write the compiled parameters with the hash of the definition they came from."""
    params_io.save(path, params, {SOURCE_HASH_KEY: source_sha256})


def load_params_with_meta(path: Path = PARAMS_FILE) -> tuple[ModelParams, dict[str, str]]:
    """(params as numpy arrays, metadata) from a compiled parameter file."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `l2run model compile`")
    return params_io.load(path, ModelParams)


@lru_cache(maxsize=4)
def load_params(path: Path = PARAMS_FILE) -> ModelParams:
    """The compiled model parameters as JAX arrays (float64)."""
    import jax

    params, _ = load_params_with_meta(path)
    return jax.tree.map(jnp.asarray, params)
