"""Shared fixtures. Tests run on CPU in seconds on tiny inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The read-only development data beside the repository (see ../shared/data/README.md).
SHARED_DATA = Path(
    os.environ.get(
        "FINEGRAIN_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data; skips the test with a clear reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared development data not found at {SHARED_DATA} (set FINEGRAIN_SHARED_DATA)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory) -> Path:
    """A small MIMIC-CXR-JPG-shaped phantom tree (48 studies, 64 px), built once per session.

    32 training studies and 8 each in validate and test (``eval_studies``), and Cardiomegaly's
    positive share raised 5x (to 61 %): the calibrated shares alone leave this tiny phantom's
    evaluation splits without what tests/test_predict.py and tests/test_train_cli.py need
    (atypical and typical Cardiomegaly positives in test; labelled Pleural Effusion in validate).
    """
    from finegrain.data.phantom import make_phantom

    root = tmp_path_factory.mktemp("phantom") / "mimic-cxr-jpg"
    make_phantom(root, studies=32, eval_studies=8, size=64, seed=0, prevalence={"Cardiomegaly": 5})
    return root


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny models are fastest so and do not fight other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
