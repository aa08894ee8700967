"""The HTML report renders in a real headless browser (Debian's chromium) without console
errors; skipped with a reason when chromium is not installed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from finegrain.experiment.report import write_report
from finegrain.experiment.tables import Table

ROOT = Path(__file__).resolve().parents[1]


def _load_checker():
    spec = importlib.util.spec_from_file_location(
        "report_browser", ROOT / "benchmarks" / "report_browser.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while it is executed
    spec.loader.exec_module(module)
    return module


checker = _load_checker()
needs_chromium = pytest.mark.skipif(
    not checker.CHROMIUM.exists(),
    reason=f"{checker.CHROMIUM} not installed (apt-get install -y chromium)",
)


def _report(tmp_path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from finegrain.experiment.plots import save_figure
    from finegrain.experiment.report import Figure

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    paths = save_figure(fig, tmp_path / "fig")
    table = Table("table2", "Table 2", ["Method", "Edema"], [["PU-RM", "0.7000 ± 0.0100"]], "c")
    return write_report(
        tmp_path / "report.html",
        title="t",
        lead="l",
        tables=[table],
        figures=[Figure("f", paths["png"], "c")],
        config={"a": 1},
    )


@needs_chromium
def test_report_renders_without_console_errors(tmp_path):
    check = checker.check_report(_report(tmp_path), tmp_path / "shot.png", window=(800, 600))
    assert check.ok, check.errors or check.log[-2000:]
    assert check.screenshot.read_bytes()[:4] == b"\x89PNG"


@needs_chromium
def test_checker_catches_a_broken_page(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<html><body><img src="missing.png"><script>console.error("boom")</script></body></html>'
    )
    check = checker.check_report(page, tmp_path / "shot.png", window=(400, 300))
    assert not check.ok and check.errors
