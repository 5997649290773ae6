"""The 2017 runner model (gait9dof18musc): our JSON definition, its names, its OpenSim builder."""

from l2run.model.definition import (
    REFERENCE_MODEL_PATH,
    ModelDefinition,
    load_definition,
    reference_model_path,
)

__all__ = ["REFERENCE_MODEL_PATH", "ModelDefinition", "load_definition", "reference_model_path"]
