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


def _tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: relative path -> (size, mtime in ns)."""
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
    }


@pytest.fixture(scope="session")
def phantom_root(tmp_path_factory) -> Path:
    """A small MIMIC-CXR-JPG-shaped phantom tree (48 studies, 64 px), built once per session.

    Shared by every test: READ ONLY. A test that needs to change it works on a copy
    (``shutil.copytree``, as ``test_sources.mimic_copy`` does). At the end of the session the
    tree is compared with what was built, so a test that writes into it fails, instead of
    making other tests pass or fail by the order they run in.
    """
    from finegrain.data.phantom import make_phantom

    root = tmp_path_factory.mktemp("phantom") / "mimic-cxr-jpg"
    make_phantom(root, studies=48, size=64, seed=0)
    built = _tree_state(root)
    yield root
    now = _tree_state(root)
    if now != built:
        added = sorted(set(now) - set(built))
        removed = sorted(set(built) - set(now))
        changed = sorted(k for k in set(now) & set(built) if now[k] != built[k])
        pytest.fail(
            f"a test changed the shared session phantom {root} (added {added[:5]}, removed "
            f"{removed[:5]}, changed {changed[:5]}); work on a copy of it instead"
        )


@pytest.fixture
def one_thread():
    """Run torch on one thread: tiny models are fastest so and do not fight other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
