"""Export a checkpoint for deployment as TorchScript or ONNX.

The exported graph takes uint8 ``[B, 1, S, S]`` (any batch size ``B``; ``S`` the checkpoint's
image size, preprocessed as by ``finegrain predict``) and returns the positive probability
``[B]``, computed from the logits as the checkpoint's training method defines it
(:meth:`finegrain.train.methods.Method.positive_probability`). ONNX needs the optional extra ``export``
(``pip install 'finegrain[export]'``: onnx, onnxscript; onnxruntime to run it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from finegrain.errors import FinegrainError
from finegrain.io import atomic_open, atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from finegrain.train.methods import Method

FORMATS = ("torchscript", "onnx")
INPUT_NAME = "image"
OUTPUT_NAME = "probability"


def probability_model(model: torch.nn.Module, method: Method) -> torch.nn.Module:
    """Wrap a model so that it returns ``method``'s positive probability ``[B]`` (eval mode)."""
    from torch import nn

    class PositiveProbability(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, image):
            return method.positive_probability(self.inner(image).float())

    return PositiveProbability(model).eval()


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    *,
    format: str = "torchscript",  # noqa: A002 - mirrors the CLI flag
    opset: int | None = None,
    onnx_exporter: str = "dynamo",
) -> Path:
    """Export ``checkpoint`` to ``out`` in ``format`` (``torchscript`` or ``onnx``); atomic.

    ``onnx_exporter``: ``"dynamo"`` (torch.export-based, torch's default; needs onnxscript) or
    ``"legacy"`` (the older TorchScript-based exporter: about 10x faster, deprecated by torch).
    """
    from finegrain.predict.predictor import Predictor

    if format not in FORMATS:
        raise FinegrainError(f"unknown export format {format!r}; choose from {FORMATS}")
    predictor = Predictor.from_checkpoint(checkpoint)
    return export_model(
        predictor.model,
        predictor.image_size,
        out,
        method=predictor.method,
        format=format,
        opset=opset,
        onnx_exporter=onnx_exporter,
    )


def export_model(
    model: torch.nn.Module,
    image_size: int,
    out: str | os.PathLike,
    *,
    method: Method,
    format: str = "torchscript",  # noqa: A002
    opset: int | None = None,
    onnx_exporter: str = "dynamo",
) -> Path:
    """Export a model (uint8 ``[B, 1, S, S]`` -> logits), trained by ``method``, with the
    method's positive probability as its output."""
    import warnings

    import torch

    if format not in FORMATS:
        raise FinegrainError(f"unknown export format {format!r}; choose from {FORMATS}")
    out = Path(out)
    wrapped = probability_model(model, method)
    example = torch.randint(0, 256, (2, 1, image_size, image_size), dtype=torch.uint8)
    if format == "torchscript":
        with warnings.catch_warnings():  # torch marks jit as deprecated; it still works
            warnings.simplefilter("ignore", FutureWarning)
            with torch.no_grad():
                traced = torch.jit.freeze(torch.jit.trace(wrapped, (example,), check_trace=False))
            with atomic_open(out, "wb") as handle:
                torch.jit.save(traced, handle)
        return out
    if format == "onnx":
        return _export_onnx(wrapped, example, out, opset=opset, exporter=onnx_exporter)
    raise FinegrainError(f"unknown export format {format!r}; choose from {FORMATS}")


ONNX_EXPORTERS = ("dynamo", "legacy")


def _export_onnx(
    wrapped: torch.nn.Module, example: torch.Tensor, out: Path, *, opset: int | None, exporter: str
) -> Path:
    import io
    import warnings

    import torch

    if exporter not in ONNX_EXPORTERS:
        raise FinegrainError(f"unknown ONNX exporter {exporter!r}; choose from {ONNX_EXPORTERS}")
    needed = ("onnx", "onnxscript") if exporter == "dynamo" else ("onnx",)
    for module in needed:
        try:
            __import__(module)
        except ImportError as exc:
            raise FinegrainError(
                f"ONNX export needs the optional extra 'export' (pip install 'finegrain[export]'): "
                f"{exc}"
            ) from exc
    kwargs = {"opset_version": opset} if opset else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        if exporter == "dynamo":
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                verbose=False,
                **kwargs,
            )
            data = program.model_proto.SerializeToString()
        else:
            buffer = io.BytesIO()
            torch.onnx.export(
                wrapped,
                (example,),
                buffer,
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                **kwargs,
            )
            data = buffer.getvalue()
    atomic_write_bytes(out, data)
    return out
