"""Model factory by name: a backbone with a linear head behind :class:`InputNormalization`.

Every model takes uint8 images ``[B, 1, S, S]`` and returns logits ``[B, outputs]``; the
width of the head is the training method's (:attr:`finegrain.train.methods.Method.outputs`,
2 for the paper's methods), and so is how the logits become scores. Models are
:class:`FinegrainNet` instances exposing ``normalize``, ``features`` (the last convolutional
feature map, after its activation), ``pool`` and ``classifier`` (a ``Linear``), which is what
class activation maps need (see :func:`cam_layers`).

ImageNet weights are never downloaded while building a model: they are read from the torch hub
cache (``torch.hub.get_dir()/checkpoints/<file>``) or from ``weights=FILE``. Fetching them is one
explicit step, :func:`fetch_weights` (``finegrain weights densenet121``), which downloads
torchvision's file with torch's own mechanism and verifies it (:func:`verify_weights`).
"""

from __future__ import annotations

import hashlib
import re
import sys
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from finegrain.errors import FinegrainError
from finegrain.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputNormalization(nn.Module):
    """uint8 ``[B, 1, S, S]`` -> float ``[B, 3, S, S]``: /255, 3 channels, ImageNet mean/std.

    Raises ``TypeError`` for any other dtype, so that an image already scaled to [0, 1] (or
    normalised twice) can never pass silently.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.memory_format = torch.contiguous_format  # the loop sets channels_last

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(
                f"InputNormalization expects uint8 images [B, 1, S, S] in 0..255, got {x.dtype}"
            )
        if not torch.jit.is_tracing() and (x.ndim != 4 or x.shape[1] != 1):  # export checks
            raise FinegrainError(f"expected images of shape [B, 1, S, S], got {tuple(x.shape)}")
        dtype = self.mean.dtype
        x = x.to(dtype).div_(255.0).expand(-1, 3, -1, -1)
        return ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)


class FinegrainNet(nn.Module):
    """``normalize -> features -> pool -> classifier``: a CAM-friendly classifier."""

    def __init__(self, features: nn.Module, classifier: nn.Linear, name: str) -> None:
        super().__init__()
        self.name = name
        self.normalize = InputNormalization()
        self.features = features
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(self.normalize(x))))


def cam_layers(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """``(features, classifier)`` of a finegrain model (unwraps DDP / torch.compile)."""
    model = getattr(model, "module", model)
    model = getattr(model, "_orig_mod", model)
    return model.features, model.classifier


@dataclass(frozen=True)
class _Spec:
    build: Callable[[], nn.Module]  # torchvision backbone with its ImageNet-shaped head
    split: Callable[[nn.Module], tuple[nn.Module, int]]  # -> (features, n_features)
    weights_file: str | None  # file name in torch.hub.get_dir()/checkpoints
    head_prefix: str  # state-dict prefix of the ImageNet head (not loaded)
    weights_url: str | None = None  # where fetch_weights downloads weights_file from
    description: str = ""  # one line for `finegrain list`


def _densenet_split(net: nn.Module) -> tuple[nn.Module, int]:
    return nn.Sequential(net.features, nn.ReLU()), net.classifier.in_features


def _resnet_split(net: nn.Module) -> tuple[nn.Module, int]:
    names = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
    return nn.Sequential(*(getattr(net, n) for n in names)), net.fc.in_features


def _tiny_densenet() -> nn.Module:
    return torchvision.models.DenseNet(
        growth_rate=12, block_config=(2, 2, 2, 2), num_init_features=16, bn_size=2
    )


def _small_densenet() -> nn.Module:
    """DenseNet121's design (four dense blocks of bottleneck layers, transitions halving the
    channels, a 7x7 stem) at half its depth (3-6-12-8 layers) and half its growth (16): 0.59 M
    parameters with a two-way head (densenet-tiny 0.03 M, DenseNet121 7.0 M), about 4x
    densenet-tiny's cost per training step and a sixth of DenseNet121's at 64 px
    (``benchmarks/model_cost.py``). The capacity stand-in for DenseNet121 on a CPU
    (docs/study.md, section 5)."""
    return torchvision.models.DenseNet(
        growth_rate=16, block_config=(3, 6, 12, 8), num_init_features=32, bn_size=4
    )


#: Every backbone by name (filled at import; see :func:`register_model`).
MODELS: Registry[_Spec] = Registry("model")
MODELS.register(
    "densenet121",
    _Spec(
        torchvision.models.densenet121,
        _densenet_split,
        "densenet121-a639ec97.pth",
        "classifier.",
        torchvision.models.DenseNet121_Weights.IMAGENET1K_V1.url,
        "the paper's DenseNet121 (7.0 M parameters; ImageNet weights)",
    ),
)
MODELS.register(
    "resnet18",
    _Spec(
        torchvision.models.resnet18,
        _resnet_split,
        "resnet18-f37072fd.pth",
        "fc.",
        torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url,
        "ResNet18 (ImageNet weights)",
    ),
)
MODELS.register(
    "densenet-tiny",
    _Spec(
        _tiny_densenet,
        _densenet_split,
        None,
        "classifier.",
        description="DenseNet, growth 12, blocks 2-2-2-2 (32 k parameters; CPU demos, no weights)",
    ),
)
MODELS.register(
    "densenet-small",
    _Spec(
        _small_densenet,
        _densenet_split,
        None,
        "classifier.",
        description="DenseNet121's design at half depth and growth (0.59 M; CPU stand-in)",
    ),
)


def register_model(
    name: str,
    build: Callable[[], nn.Module],
    split: Callable[[nn.Module], tuple[nn.Module, int]],
    *,
    weights_file: str | None = None,
    head_prefix: str = "fc.",
    weights_url: str | None = None,
    description: str = "",
) -> None:
    """Add a backbone to the factory (timm-style registry). Call it at import, in the module
    that defines the backbone: worker processes import that module to find it.

    ``build()`` returns the backbone with its ImageNet-shaped head; ``split(net)`` returns
    ``(features, n_features)``: the module up to the last activated feature map and its channel
    count; ``weights_file`` names its ImageNet weights in the torch hub cache (None: none);
    ``head_prefix`` is the state-dict prefix of the head that is not loaded; ``weights_url``
    where :func:`fetch_weights` downloads ``weights_file`` from; ``description`` one line
    for ``finegrain list`` (default: the first line of ``build``'s docstring).
    """
    caller = sys._getframe(1).f_globals.get("__name__", "")
    doc = (build.__doc__ or "").strip().splitlines()
    spec = _Spec(
        build, split, weights_file, head_prefix, weights_url, description or (doc[0] if doc else "")
    )
    MODELS.register(name, spec, module=caller)


def default_weights_path(name: str) -> Path | None:
    """Where the ImageNet weights of ``name`` are expected (the torch hub cache), or None."""
    spec = _spec(name)
    if spec.weights_file is None:
        return None
    return Path(torch.hub.get_dir()) / "checkpoints" / spec.weights_file


def build_model(
    name: str,
    *,
    pretrained: bool = True,
    weights: str | Path | None = None,
    image_size: int | None = None,
    outputs: int = 2,
) -> FinegrainNet:
    """Build model ``name`` (``densenet121``, ``resnet18``, ``densenet-tiny``, ``densenet-small``)
    with ``outputs`` logits (the training method's :attr:`~finegrain.train.methods.Method.outputs`).

    ``pretrained``: load ImageNet weights into the backbone, from ``weights`` when given, else
    from the torch hub cache; a missing file raises ``FileNotFoundError`` saying where to put it.
    ``densenet-tiny`` and ``densenet-small`` have no ImageNet weights and are always randomly
    initialised (for CPU runs).
    ``image_size`` is accepted for the record (all backbones pool adaptively).
    """
    spec = _spec(name)
    path = None
    if weights is not None or (pretrained and spec.weights_file is not None):
        path = Path(weights) if weights is not None else default_weights_path(name)
        _check_weights_file(path, spec, name, explicit=weights is not None)
    net = spec.build()
    if path is not None:
        _load_backbone(net, path, spec, name)
    features, n_features = spec.split(net)
    if outputs < 1:
        raise FinegrainError(f"a model needs at least one output, got {outputs}")
    return FinegrainNet(features, nn.Linear(n_features, int(outputs)), name)


def _spec(name: str) -> _Spec:
    return MODELS.get(name)


_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def _check_weights_file(path: Path, spec: _Spec, name: str, explicit: bool) -> None:
    if not path.is_file():
        if explicit:
            raise FileNotFoundError(f"weights file not found: {path}")
        raise FileNotFoundError(
            f"ImageNet weights for {name} not found at {path}. Fetch them once with "
            f"`finegrain weights {name}`; offline, place the torchvision file "
            f"{spec.weights_file} there (download {spec.weights_url or 'it'} on a machine "
            "with network access), or pass --weights FILE, or train from scratch with "
            "--no-pretrained."
        )


def _load_backbone(net: nn.Module, path: Path, spec: _Spec, name: str) -> None:
    from finegrain.io import unreadable_torch_file

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a text file, a truncated or foreign file
        raise FinegrainError(unreadable_torch_file(path, exc, "weights file")) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a checkpoint dict wrapping a state dict
    if not isinstance(state, dict):
        raise FinegrainError(f"weights file {path} does not hold a state dict")
    fixed = {}
    for key, value in state.items():
        match = _DENSENET_KEY.match(key)  # old torchvision DenseNet names (norm.1 -> norm1)
        fixed[match.group(1) + match.group(2) if match else key] = value
    backbone = {k: v for k, v in fixed.items() if not k.startswith(spec.head_prefix)}
    missing, unexpected = net.load_state_dict(backbone, strict=False)
    missing = [k for k in missing if not k.startswith(spec.head_prefix)]
    if missing or unexpected:
        raise FinegrainError(
            f"weights file {path} does not match {name}: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})"
        )


def fetch_weights(name: str, *, progress: bool = True) -> Path:
    """Put the ImageNet weights of model ``name`` into the torch hub cache and verify them.

    Downloads ``weights_url`` with ``torch.hub.load_state_dict_from_url(check_hash=True)``
    (torchvision's own mechanism: the file name carries the first hex digits of its SHA-256)
    when the file is absent, then :func:`verify_weights`. Returns the file's path. Without
    network, raises ``ConnectionError`` saying which URL to download and where to put it.
    """
    spec = _spec(name)
    path = default_weights_path(name)
    if path is None or spec.weights_url is None:
        raise FinegrainError(f"model {name!r} has no ImageNet weights to fetch")
    if not path.is_file():
        try:
            torch.hub.load_state_dict_from_url(
                spec.weights_url,
                model_dir=str(path.parent),
                map_location="cpu",
                progress=progress,
                check_hash=True,
                file_name=path.name,
                weights_only=True,
            )
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ConnectionError(
                f"could not download {spec.weights_url} ({getattr(exc, 'reason', exc)}). "
                f"Offline: download that URL on a machine with network access and place the "
                f"file at {path}, then run `finegrain weights {name}` again to verify it (or "
                "pass --weights FILE to train/benchmark)."
            ) from exc
        except RuntimeError as exc:  # torch.hub: "invalid hash value"
            raise FinegrainError(f"download of {spec.weights_url} is corrupt: {exc}") from exc
    verify_weights(name, path)
    return path


def verify_weights(name: str, path: str | Path) -> str:
    """Check a weights file for model ``name``; return its SHA-256.

    The hash must start with the hex digits in the file name (torchvision's convention,
    ``densenet121-a639ec97.pth``), and the state dict must fit the backbone. Raises
    ``ValueError`` naming the file otherwise.
    """
    spec = _spec(name)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    sha256 = digest.hexdigest()
    match = torch.hub.HASH_REGEX.search(path.name)
    if match and match.group(1) and not sha256.startswith(match.group(1)):
        raise FinegrainError(
            f"weights file {path} is corrupt or not the published file: its SHA-256 starts "
            f"{sha256[: len(match.group(1))]}, its name says {match.group(1)}. Delete it and run "
            f"`finegrain weights {name}` again."
        )
    _load_backbone(spec.build(), path, spec, name)
    return sha256
