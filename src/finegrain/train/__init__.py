"""Training: model factory, uncertainty methods, the loop with exact resume, checkpoints, DDP.

Import what you need from the submodules; the names below are loaded lazily so that
``import finegrain.train`` stays light.
"""

from __future__ import annotations

_EXPORTS = {
    "Method": "finegrain.train.methods",
    "METHODS": "finegrain.train.methods",
    "get_method": "finegrain.train.methods",
    "build_model": "finegrain.train.models",
    "cam_layers": "finegrain.train.models",
    "InputNormalization": "finegrain.train.models",
    "TrainConfig": "finegrain.train.config",
    "train": "finegrain.train.loop",
    "load_model": "finegrain.train.rundir",
    "RunDirectory": "finegrain.train.rundir",
    "load_checkpoint": "finegrain.train.checkpoint",
    "save_checkpoint": "finegrain.train.checkpoint",
    "predict_split": "finegrain.train.evaluation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finegrain.train' has no attribute {name!r}")
