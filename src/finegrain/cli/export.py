"""``finegrain export``: a checkpoint as TorchScript or ONNX for deployment."""

from __future__ import annotations

import argparse

from finegrain.cli.options import add_overwrite_argument, check_output

HELP = "export a checkpoint as TorchScript or ONNX (uint8 image in, probability out)"
DESCRIPTION = """\
Export a checkpoint for deployment. The exported model takes uint8 images [B, 1, S, S] (any
batch size B; S the checkpoint's image size, preprocessed like `finegrain predict` does) and
returns the positive probability [B]; any other dtype or shape is refused. TorchScript needs
nothing more; ONNX needs the optional extra: pip install 'finegrain[export]' (onnx,
onnxscript, onnxruntime). The ONNX graph's input is named "image" and its output
"probability". The output's suffix must fit the format: .pt/.pth/.ts or .onnx.

Example:
  finegrain export runs/edema-pu-rm-s0/checkpoints/iter-0050000.pt --format onnx -o edema.onnx
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint file (.pt)")
    parser.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    parser.add_argument("-o", "--out", required=True, help="output file (.pt/.pth/.ts or .onnx)")
    add_overwrite_argument(parser, "the output file")
    parser.add_argument("--opset", type=int, help="ONNX opset version (exporter default)")
    parser.add_argument(
        "--onnx-exporter",
        choices=("dynamo", "legacy"),
        default="dynamo",
        help="torch.export-based (default; needs onnxscript) or the older, faster, deprecated "
        "TorchScript-based ONNX exporter",
    )


def run(args: argparse.Namespace) -> int:
    from finegrain.io import refuse_overwriting_input
    from finegrain.predict import export

    refuse_overwriting_input(args.out, args.checkpoint)  # --overwrite would not make it right
    check_output(args.out, args.overwrite)

    out = export(
        args.checkpoint,
        args.out,
        format=args.format,
        opset=args.opset,
        onnx_exporter=args.onnx_exporter,
    )
    print(f"exported {args.checkpoint} as {args.format} -> {out}")
    return 0
