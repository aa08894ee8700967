"""Shared fixtures. Tests run on CPU in seconds on tiny inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finegrain.cpu_kernels import TORCH_ENVIRONMENT

# Tests compute with the demo's CPU kernels (finegrain.cpu_kernels), set before torch computes
# anything: in-process runs of the demo preset then train here as it asks. (numpy's kernels are
# left alone: a pinned phantom is drawn in a fresh process.)
os.environ.update(TORCH_ENVIRONMENT)
#: A plugin package that registers entries when imported: tests/test_plugins.py loads it,
#: pytest's doctest collection must not.
collect_ignore = ["plugin_package"]

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

    32 training studies and 8 each in validate and test (``eval_studies``), and Cardiomegaly's
    positive share raised 5x (to 61 %): the calibrated shares alone leave this tiny phantom's
    evaluation splits without what tests/test_predict.py and tests/test_train_cli.py need
    (atypical and typical Cardiomegaly positives in test; labelled Pleural Effusion in validate).
    """
    from finegrain.data.phantom import make_phantom

    root = tmp_path_factory.mktemp("phantom") / "mimic-cxr-jpg"
    make_phantom(root, studies=32, eval_studies=8, size=64, seed=0, prevalence={"Cardiomegaly": 5})
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


def _openi_data_dir() -> Path | None:
    """Folder with OpenI's published ``NLMCXR_reports.tgz`` and ``nlmcxr_dicom_metadata.csv.gz``:
    ``$FINEGRAIN_OPENI_DATA``, else the data folder of an installed torchxrayvision (found
    without importing it; the files ship in its wheel)."""
    import importlib.util

    given = os.environ.get("FINEGRAIN_OPENI_DATA")
    if given:
        return Path(given)
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


@pytest.fixture(scope="session")
def openi_data() -> Path:
    """The real OpenI report archive and view table; skips with a clear reason when absent."""
    folder = _openi_data_dir()
    names = ("NLMCXR_reports.tgz", "nlmcxr_dicom_metadata.csv.gz")
    if folder is None or not all((folder / n).is_file() for n in names):
        pytest.skip(
            "OpenI's published reports not found: pip install torchxrayvision (the files ship "
            "in its wheel) or set FINEGRAIN_OPENI_DATA to a folder with " + " and ".join(names)
        )
    return folder


@pytest.fixture(scope="session")
def openi_reports(openi_data):
    """All real OpenI reports, parsed once: ``(reports, failures)``."""
    from finegrain.data.openi_reports import read_reports

    return read_reports(openi_data / "NLMCXR_reports.tgz")


#: Real OpenI reports for the small published-layout fixture: MeSH severity on both sides
#: (73 small / 145 large effusion, 101 mild / 2521 moderate cardiomegaly, 91 moderate
#: pneumothorax, 175 mild atelectasis) and plain ones; 1 has a lateral image.
OPENI_FIXTURE_IDS: tuple[str, ...] = (
    "1", "2", "73", "91", "101", "123", "139", "145", "153", "175", "2521", "10", "100", "1000",
)  # fmt: skip


def write_openi_root(openi_data: Path, root: Path, ids) -> Path:
    """An OpenI folder as published under ``root``: a ``NLMCXR_reports.tgz`` with the real XML of
    reports ``ids``, synthetic 32 px PNGs for their images and ``views.csv.gz`` (the real view
    positions of those images, in torchxrayvision's format)."""
    import io
    import tarfile

    import numpy as np
    import pandas as pd
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    wanted = {f"ecgen-radiology/{i}.xml" for i in ids}
    images = []
    with (
        tarfile.open(openi_data / "NLMCXR_reports.tgz") as source,
        tarfile.open(root / "NLMCXR_reports.tgz", "w:gz") as target,
    ):
        for member in source:
            if member.name in wanted:
                data = source.extractfile(member).read()
                info = tarfile.TarInfo(member.name)
                info.size = len(data)
                target.addfile(info, io.BytesIO(data))
                images += [x.split('"')[0] for x in data.decode().split('<parentImage id="')[1:]]
    (root / "NLMCXR_png").mkdir()
    rng = np.random.default_rng(0)
    for image in images:
        pixels = rng.integers(0, 256, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "NLMCXR_png" / f"{image}.png")
    views = pd.read_csv(
        openi_data / "nlmcxr_dicom_metadata.csv.gz", usecols=["imageid", "View Position"]
    )
    views[views["imageid"].isin(images)].to_csv(root / "views.csv.gz", index=False)
    return root


@pytest.fixture(scope="session")
def openi_root(openi_data, tmp_path_factory) -> Path:
    """A small OpenI folder as published with the reports :data:`OPENI_FIXTURE_IDS`."""
    return write_openi_root(
        openi_data, tmp_path_factory.mktemp("openi") / "root", OPENI_FIXTURE_IDS
    )


@pytest.fixture(scope="session")
def make_openi_root(openi_data, tmp_path_factory):
    """``make(ids) -> Path``: an OpenI folder as published with the real reports ``ids``."""

    def make(ids) -> Path:
        return write_openi_root(openi_data, tmp_path_factory.mktemp("openi") / "root", ids)

    return make
