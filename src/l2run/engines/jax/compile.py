"""Model definition → `ModelParams` (numpy arrays), and the package data file that holds them.

Only this module reads the model definition; the engine itself loads the compiled `.npz`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from l2run.engines.jax.body_tree import body_specs_from_definition, compile_body_tree
from l2run.engines.jax.contact import compile_contact
from l2run.engines.jax.ligaments import compile_ligaments
from l2run.engines.jax.muscles import compile_muscles
from l2run.engines.jax.params import PARAMS_FILE, DefaultState, ModelParams, save_params
from l2run.engines.jax.paths import compile_paths
from l2run.engines.jax.splines import compile_splines
from l2run.model.names import COORDINATES, MUSCLES


def definition_sha256(path: Path | None = None) -> str:
    """SHA-256 of the JSON definition file's bytes (what the parameter file records)."""
    from l2run.model.definition import DEFINITION_FILE

    return hashlib.sha256(Path(path or DEFINITION_FILE).read_bytes()).hexdigest()


def compile_default_state(definition) -> DefaultState:
    """Default q, u (coordinate defaults) and muscle states (muscle defaults)."""
    pose, speeds = definition.default_pose, definition.default_speeds
    muscles = {m.name: m for m in definition.muscles}
    return DefaultState(
        q=np.array([pose[c] for c in COORDINATES], dtype=float),
        u=np.array([speeds[c] for c in COORDINATES], dtype=float),
        activation=np.array([muscles[m].default_activation for m in MUSCLES], dtype=float),
        fiber_length=np.array([muscles[m].default_fiber_length for m in MUSCLES], dtype=float),
    )


def compile_params(definition=None) -> ModelParams:
    """All engine parameters from a `ModelDefinition` (default: the packaged one)."""
    from l2run.model.definition import load_definition

    d = definition if definition is not None else load_definition()
    tree, spline_dofs = compile_body_tree(body_specs_from_definition(d), d.gravity)
    return ModelParams(
        tree=tree,
        joint_splines=compile_splines([s.spline for s in spline_dofs]),
        muscles=compile_muscles(d),
        paths=compile_paths(d),
        ligaments=compile_ligaments(d),
        contact=compile_contact(d),
        default=compile_default_state(d),
    )


def compile_to_file(path: Path = PARAMS_FILE) -> Path:
    """Compile the packaged definition and write the parameter file; returns its path."""
    save_params(compile_params(), definition_sha256(), path)
    return path
