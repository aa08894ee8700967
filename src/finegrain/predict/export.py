"""Export a checkpoint for deployment as TorchScript or ONNX.

The exported graph takes uint8 ``[B, 1, S, S]`` (any batch size ``B``; ``S`` the checkpoint's
image size, preprocessed as by ``finegrain predict``) and returns the positive probability
``[B]`` (softmax of the two logits, class 1). ONNX needs the optional extra ``export``
(``pip install 'finegrain[export]'``: onnx, onnxscript; onnxruntime to run it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from finegrain.io import atomic_open, atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    import torch

FORMATS = ("torchscript", "onnx")
INPUT_NAME = "image"
OUTPUT_NAME = "probability"


def probability_model(model: torch.nn.Module) -> torch.nn.Module:
    """Wrap a 2-logit model so that it returns ``softmax(logits)[:, 1]`` (eval mode)."""
    from torch import nn

    class PositiveProbability(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, image):
            return self.inner(image).float().softmax(dim=1)[:, 1]

    return PositiveProbability(model).eval()


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "torchscript",  # noqa: A002 - mirrors the CLI flag
    opset: int | None = None,
) -> Path:
    """Export ``checkpoint`` to ``out`` in ``format`` (``torchscript`` or ``onnx``); atomic."""
    from finegrain.predict.predict import Predictor

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose from {FORMATS}")
    predictor = Predictor.from_checkpoint(checkpoint)
    return export_model(predictor.model, predictor.image_size, out, format=format, opset=opset)


def export_model(
    model: torch.nn.Module,
    image_size: int,
    out: str | os.PathLike,
    *,
    format: str = "torchscript",  # noqa: A002
    opset: int | None = None,
) -> Path:
    """Export a model (uint8 ``[B, 1, S, S]`` -> 2 logits) with a probability output."""
    import torch

    out = Path(out)
    wrapped = probability_model(model)
    example = torch.randint(0, 256, (2, 1, image_size, image_size), dtype=torch.uint8)
    if format == "torchscript":
        with torch.no_grad():
            traced = torch.jit.trace(wrapped, (example,), check_trace=False)
        traced = torch.jit.freeze(traced)
        with atomic_open(out, "wb") as handle:
            torch.jit.save(traced, handle)
        return out
    if format == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError as exc:
            raise ValueError(
                f"ONNX export needs the optional extra 'export' (pip install 'finegrain[export]'): "
                f"{exc}"
            ) from exc
        batch = torch.export.Dim("batch", min=1, max=4096)
        kwargs = {"opset_version": opset} if opset else {}
        program = torch.onnx.export(
            wrapped,
            (example,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            verbose=False,
            **kwargs,
        )
        atomic_write_bytes(out, program.model_proto.SerializeToString())
        return out
    raise ValueError(f"unknown export format {format!r}; choose from {FORMATS}")
