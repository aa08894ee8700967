"""A plugin package outside finegrain, as a user's would be: at import it registers a method,
a model, a preset and a selection. tests/test_plugins.py loads it through an entry point
(a ``*.dist-info/entry_points.txt`` on the path) and through ``--plugin``; no file of finegrain
names it. (Kept out of pytest's collection by tests/conftest.py: importing it registers.)"""

from __future__ import annotations

from torch import nn

from finegrain.experiment.grid import SELECTIONS, Selection
from finegrain.experiment.presets import DEMO, PRESETS
from finegrain.train.methods import CoarseMethod, register_method
from finegrain.train.models import register_model

METHOD, MODEL, PRESET, SELECTION = "toy-ones", "toy-cnn", "toy", "toy-table"
#: channels of the toy model's last feature map
FEATURES = 8


def toy_cnn() -> nn.Module:
    """Two strided convolutions: the smallest CAM-friendly backbone."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, FEATURES, 3, stride=2, padding=1),
    )


register_method(
    CoarseMethod(
        METHOD,
        "one",
        uncertain_soft_target=0.95,
        description="uncertain -> soft positive 0.95 (a plugin's method)",
        display_name="Toy-Ones",
    )
)
register_model(MODEL, toy_cnn, lambda net: (nn.Sequential(net, nn.ReLU()), FEATURES))
PRESETS.register(
    PRESET,
    DEMO.replace(
        name=PRESET,
        description="a plugin's preset: the demo shrunk to seconds",
        observations=("Edema",),
        seeds=1,
        iterations=4,
        checkpoint_every=2,
        batch_size=8,
        image_size=32,
        jobs=1,
    ),
)
SELECTIONS.register(
    SELECTION, Selection(SELECTION, "A plugin's table: Toy-Ones beside U-Ones", ("u-ones", METHOD))
)
