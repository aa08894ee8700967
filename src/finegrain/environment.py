"""What a result was computed with: the library versions and the git commit, recorded in every
run's ``config.json`` and every benchmark's ``benchmark.json`` (one owner for both)."""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import platform
import subprocess
from pathlib import Path

#: The distributions whose versions a record names (read from their metadata: nothing is
#: imported, so the light install records what it has).
PACKAGES: tuple[str, ...] = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scikit-learn",
    "matplotlib",
)


def git_commit() -> str | None:
    """The commit of the source tree finegrain runs from (``None`` outside a git checkout)."""
    import finegrain

    with contextlib.suppress(Exception):
        here = Path(finegrain.__file__).resolve().parent
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        return result.stdout.strip() or None
    return None


def versions() -> dict[str, str | None]:
    """Python, the platform, finegrain (:data:`finegrain.__version__`), each of
    :data:`PACKAGES` (``"not installed"`` when absent) and the git commit.

    >>> sorted(versions())[:3]
    ['finegrain', 'git_commit', 'matplotlib']
    """
    import finegrain

    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "finegrain": finegrain.__version__,
    }
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["git_commit"] = git_commit()
    return out
