"""A model and a method registered at import by a module outside finegrain, as a user's own
would be. tests/test_registered_entries.py trains them in worker processes, which find them only
by importing this module (imported as ``registered_entries``: tests/ is on ``sys.path``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from finegrain.train.methods import CoarseMethod, register_method
from finegrain.train.models import register_model

MODEL = "test-registered-cnn"
METHOD = "test-three-way"
#: channels of the model's last feature map: the classifier is ``Linear(FEATURES, 3)``
FEATURES = 12


def _cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, FEATURES, 3, stride=4, padding=1), nn.ReLU())


@dataclass(frozen=True)
class ThreeWay(CoarseMethod):
    """U-Ones with a third (unused) output: a head no built-in method has."""

    outputs: ClassVar[int] = 3


register_model(MODEL, _cnn, lambda net: (net, FEATURES))
register_method(
    ThreeWay(METHOD, "one", description="U-Ones with a 3-way head", display_name="Three-way")
)
