"""Export a checkpoint for deployment as TorchScript or ONNX.

The exported graph takes uint8 ``[B, 1, S, S]`` (any batch size ``B``; ``S`` the checkpoint's
image size, preprocessed as by ``finegrain predict``; any other dtype or shape is refused, by
the ONNX runtime or by the TorchScript module's own check) and returns the positive probability
``[B]``, computed from the logits as the checkpoint's training method defines it
(:meth:`finegrain.train.methods.Method.positive_probability`). A method with a fine score of its
own (``Method.own_fine_score``: ordinal, three-class) also returns it, ``(probability [B],
fine_score [B])`` (ONNX outputs ``probability`` and ``fine_score``): the tiers' typical cut is
decided by it (:mod:`finegrain.scores`). ONNX needs the optional extra ``export``
(``pip install 'finegrain[export]'``: onnx, onnxscript; onnxruntime to run it).

The probability is the **calibrated** one: the recalibration ``finegrain calibrate`` stored in
the checkpoint (temperature scaling by default) is part of the graph, the same float32
operations ``predict`` applies (:func:`finegrain.predict.predictor.calibrated_scores`), so the
exported model and ``predict`` agree. The file also says what it computes, in its metadata
(:data:`METADATA_KEY`: JSON with the observation, method, iteration, the calibration in the
graph and the tier thresholds, which stay outside it): ONNX ``metadata_props``, a TorchScript
extra file of that name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finegrain.errors import FinegrainError
from finegrain.io import atomic_open, atomic_write_bytes, refuse_overwriting_input

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from finegrain.predict.predictor import Predictor
    from finegrain.recalibration import Recalibration
    from finegrain.train.methods import Method

FORMATS = ("torchscript", "onnx")
#: Output file suffixes per format.
SUFFIXES = {"torchscript": (".pt", ".pth", ".ts"), "onnx": (".onnx",)}
INPUT_NAME = "image"
OUTPUT_NAME = "probability"
#: The second output of a method with a fine score of its own.
FINE_OUTPUT_NAME = "fine_score"
#: The metadata entry (ONNX ``metadata_props`` key, TorchScript extra file) saying what the
#: exported graph computes (:func:`export_metadata`).
METADATA_KEY = "finegrain.json"


def output_names(method: Method) -> list[str]:
    """The exported model's outputs: the positive probability, and the fine score of a method
    with one of its own."""
    return [OUTPUT_NAME, FINE_OUTPUT_NAME] if method.own_fine_score else [OUTPUT_NAME]


def probability_model(
    model: torch.nn.Module, method: Method, recalibration: Recalibration | None = None
) -> torch.nn.Module:
    """Wrap a model so that it returns ``method``'s positive probability ``[B]``, recalibrated
    by ``recalibration`` when given, and its fine score ``[B]`` beside it when the method has
    one of its own (eval mode)."""
    from torch import nn

    from finegrain.predict.predictor import calibrated_scores

    class PositiveProbability(nn.Module):
        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, image):
            scores = calibrated_scores(method, self.inner(image).float(), recalibration)
            if method.own_fine_score:
                return scores["score"], scores["fine_score"]
            return scores["score"]

    return PositiveProbability(model).eval()


def export_metadata(predictor: Predictor) -> dict[str, Any]:
    """What the exported graph computes: ``observation``, ``method``, ``iteration``, its
    ``outputs``, the ``calibration`` in the graph (the stored dict, ``None`` for none) and the
    tier ``thresholds`` (not in the graph; apply them with :func:`finegrain.predict.tier`)."""
    meta = predictor.meta
    return {
        "observation": meta.get("observation"),
        "method": predictor.method.name,
        "iteration": meta.get("iteration"),
        "outputs": output_names(predictor.method),
        "calibration": None
        if predictor.recalibration is None
        else predictor.recalibration.to_dict(),
        "thresholds": None if predictor.thresholds is None else predictor.thresholds.to_dict(),
    }


def checked_input(inner: torch.nn.Module, image_size: int) -> torch.nn.Module:
    """Script a wrapper that refuses, as the ONNX graph does, any input but uint8
    ``[B, 1, S, S]`` (``S`` = ``image_size``), then runs ``inner`` (a traced model): the
    checks stay in the saved TorchScript file, where tracing would have dropped them."""
    import torch
    from torch import Tensor, nn

    class CheckedInput(nn.Module):
        def __init__(self, inner: nn.Module, size: int) -> None:
            super().__init__()
            self.inner = inner
            self.size = size

        def forward(self, image: Tensor):  # the traced model's output(s), inferred
            expected = f"image: expected uint8 [B, 1, {self.size}, {self.size}] (0..255)"
            if image.dtype != torch.uint8:
                kind = "floating-point" if image.is_floating_point() else "non-uint8"
                raise FinegrainError(
                    f"{expected}, got a {kind} tensor; convert it to uint8 as finegrain predict reads images"
                )
            shape = image.shape
            if image.dim() != 4 or shape[1] != 1 or shape[2] != self.size or shape[3] != self.size:
                raise FinegrainError(f"{expected}, got shape {shape}")
            return self.inner(image)

    return torch.jit.script(CheckedInput(inner, image_size).eval())


def check_suffix(out: str | os.PathLike, format: str) -> None:  # noqa: A002
    """Refuse an output name whose suffix belongs to another format (``-o m.pt`` for ONNX)."""
    suffix = Path(out).suffix.lower()
    if suffix not in SUFFIXES[format]:
        raise FinegrainError(
            f"-o {out}: --format {format} writes {'/'.join(SUFFIXES[format])} files; "
            f"name the output so (or choose the format that matches {suffix or 'no suffix'})"
        )


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
    check_suffix(out, format)
    if opset is not None and format != "onnx":
        raise FinegrainError(f"--opset {opset}: an opset is ONNX's; --format {format} has none")
    refuse_overwriting_input(out, checkpoint)
    predictor = Predictor.from_checkpoint(checkpoint)
    return export_model(
        predictor.model,
        predictor.image_size,
        out,
        method=predictor.method,
        recalibration=predictor.recalibration,
        metadata=export_metadata(predictor),
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
    recalibration: Recalibration | None = None,
    metadata: dict[str, Any] | None = None,
    format: str = "torchscript",  # noqa: A002
    opset: int | None = None,
    onnx_exporter: str = "dynamo",
) -> Path:
    """Export a model (uint8 ``[B, 1, S, S]`` -> logits), trained by ``method``, with the
    method's positive probability, recalibrated by ``recalibration``, as its output (and its
    own fine score beside it: :func:`output_names`); ``metadata`` is written into the file
    under :data:`METADATA_KEY` as JSON."""
    import json
    import warnings

    import torch

    if format not in FORMATS:
        raise FinegrainError(f"unknown export format {format!r}; choose from {FORMATS}")
    out = Path(out)
    wrapped = probability_model(model, method, recalibration)
    extra = {METADATA_KEY: json.dumps(metadata or {}, sort_keys=True)}
    example = torch.randint(0, 256, (2, 1, image_size, image_size), dtype=torch.uint8)
    if format == "torchscript":
        with warnings.catch_warnings():  # torch marks jit as deprecated; it still works
            warnings.simplefilter("ignore", FutureWarning)
            with torch.no_grad():
                traced = torch.jit.trace(wrapped, (example,), check_trace=False)
                traced = torch.jit.freeze(checked_input(traced, image_size))
            with atomic_open(out, "wb") as handle:
                torch.jit.save(traced, handle, _extra_files=extra)
        return out
    if format == "onnx":
        return _export_onnx(
            wrapped,
            example,
            out,
            opset=opset,
            exporter=onnx_exporter,
            outputs=output_names(method),
            metadata=extra,
        )
    raise FinegrainError(f"unknown export format {format!r}; choose from {FORMATS}")


ONNX_EXPORTERS = ("dynamo", "legacy")
#: The lowest opset torch's dynamo exporter implements: below it, it exports at this opset and
#: then tries to convert, which fails for these models and keeps this one
#: (``torch.onnx._internal.exporter._constants.TORCHLIB_OPSET``).
DYNAMO_MIN_OPSET = 18


def check_opset(opset: int | None, exporter: str) -> None:
    """Refuse an opset that is not ONNX's or that ``exporter`` cannot write, before exporting."""
    import onnx

    if opset is None:
        return
    newest = onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise FinegrainError(
            f"--opset {opset}: ONNX has opsets 1 to {newest} (onnx {onnx.__version__})"
        )
    if exporter == "dynamo" and opset < DYNAMO_MIN_OPSET:
        raise FinegrainError(
            f"--opset {opset}: the dynamo ONNX exporter writes opset {DYNAMO_MIN_OPSET} or later; "
            "for an older opset use --onnx-exporter legacy"
        )


def _default_opset(data: bytes) -> int | None:
    """The ONNX model's opset of the default domain."""
    import onnx

    model = onnx.load_from_string(data)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _export_onnx(
    wrapped: torch.nn.Module,
    example: torch.Tensor,
    out: Path,
    *,
    opset: int | None,
    exporter: str,
    outputs: list[str],
    metadata: dict[str, str],
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
    check_opset(opset, exporter)
    kwargs = {"opset_version": opset} if opset else {}
    with warnings.catch_warnings(), _cannot_write(opset, exporter):
        warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
        if exporter == "dynamo":
            program = torch.onnx.export(
                wrapped,
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=outputs,
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
                output_names=outputs,
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{name: {0: "batch"} for name in outputs}},
                **kwargs,
            )
            data = buffer.getvalue()
    written = _default_opset(data)
    if opset is not None and written != opset:
        raise FinegrainError(
            f"--opset {opset}: the {exporter} ONNX exporter wrote opset {written} instead; "
            "nothing written"
        )
    atomic_write_bytes(out, _with_metadata(data, metadata))
    return out


def _with_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    """The ONNX model ``data`` with ``metadata`` in its ``metadata_props``."""
    import onnx

    model = onnx.load_from_string(data)
    onnx.helper.set_model_props(
        model, {**{p.key: p.value for p in model.metadata_props}, **metadata}
    )
    return model.SerializeToString()


@contextlib.contextmanager
def _cannot_write(opset: int | None, exporter: str) -> Iterator[None]:
    """An exporter's refusal of the opset asked for, as one line naming it (without ``opset``,
    a failure is a bug and keeps its traceback)."""
    import torch

    try:
        yield
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as exc:
        if opset is None:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FinegrainError(
            f"--opset {opset}: the {exporter} ONNX exporter cannot write it ({reason})"
        ) from exc
