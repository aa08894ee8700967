"""Optional dependencies: import one, or say which ``finegrain[extra]`` installs it.

``pip install finegrain`` is the light core (the labeler, the division rule, the metrics,
``evaluate``, the index and the phantom: numpy, pandas, scipy, scikit-learn, Pillow); the extras
add the rest, ``train`` above all (PyTorch, torchvision, matplotlib: training, the benchmark,
predict, CAM, export). :data:`EXTRAS` says which extra installs which module, so a missing one
is named with the command that installs it (:func:`install_advice`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: The extra that installs each optional top-level module (pyproject.toml's
#: ``[project.optional-dependencies]``).
EXTRAS: dict[str, str] = {
    "torch": "train",
    "torchvision": "train",
    "matplotlib": "train",
    "onnx": "export",
    "onnxscript": "export",
    "onnxruntime": "export",
    "pydicom": "dicom",
    "ray": "ray",
    "submitit": "slurm",
    "tensorboard": "tensorboard",
    "mlflow": "mlflow",
}


def require(module: str, extra: str, *, needed_by: str) -> ModuleType:
    """Import ``module``; when it is missing, raise ``ImportError`` naming what needs it and the
    command that installs it.

    >>> require("json", "none", needed_by="this example").__name__
    'json'
    >>> require("no_such_module_xyz", "ray", needed_by="the ray launcher")
    Traceback (most recent call last):
    ...
    ImportError: the ray launcher needs no_such_module_xyz: pip install 'finegrain[ray]' (or pip install no_such_module_xyz)
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{needed_by} needs {module}: pip install 'finegrain[{extra}]' "
            f"(or pip install {module})"
        ) from exc


def install_advice(exc: ImportError, needed_by: str) -> str | None:
    """One line naming the extra that installs the module ``exc`` could not import (``None``
    when no extra installs it: then it is a bug, not a missing extra).

    >>> install_advice(ModuleNotFoundError("No module named 'torch'", name="torch.nn"),
    ...                "finegrain train")
    "finegrain train needs torch, which the light install (pip install finegrain) leaves out: pip install 'finegrain[train]'"
    >>> install_advice(ModuleNotFoundError("x", name="no_such_module"), "it") is None
    True
    """
    top = (getattr(exc, "name", None) or "").partition(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    light = (
        ", which the light install (pip install finegrain) leaves out" if extra == "train" else ""
    )
    return f"{needed_by} needs {top}{light}: pip install 'finegrain[{extra}]'"
