"""Open a benchmark's report.html in headless Chromium: save a screenshot, fail on console errors.

    python benchmarks/report_browser.py finegrain-benchmark/report.html --screenshot shot.png

Exit status 0 when the page rendered (screenshot written) and Chromium logged no console error
or failed resource load; 1 otherwise (the offending log lines are printed). Needs Debian's
``chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")

#: Chromium stderr lines that mean the page itself has a problem.
ERROR_PATTERNS = (
    re.compile(r"CONSOLE\(\d+\)"),  # console.* messages from the page (--enable-logging)
    re.compile(r":CONSOLE:"),
    re.compile(r"Uncaught "),
    re.compile(r"net::ERR_"),
    re.compile(r"Failed to load resource"),
    re.compile(r"Refused to (load|execute|apply)"),
)


@dataclass
class BrowserCheck:
    screenshot: Path
    returncode: int
    errors: list[str] = field(default_factory=list)
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.errors and self.screenshot.is_file()


def check_report(
    report: str | Path,
    screenshot: str | Path,
    *,
    chromium: str | Path = CHROMIUM,
    window: tuple[int, int] = (1280, 2000),
    timeout: float = 120.0,
) -> BrowserCheck:
    """Render ``report`` headlessly into ``screenshot``; collect console errors from the log."""
    report = Path(report).resolve()
    if not report.is_file():
        raise FileNotFoundError(f"{report}: no such report")
    screenshot = Path(screenshot).resolve()
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="finegrain-chromium-") as profile:
        cmd = [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--screenshot={screenshot}",
            f"--window-size={window[0]},{window[1]}",
            "--enable-logging=stderr",
            "--v=0",
            report.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    errors = [line for line in log.splitlines() if any(p.search(line) for p in ERROR_PATTERNS)]
    return BrowserCheck(screenshot, proc.returncode, errors, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", help="report.html to open")
    parser.add_argument("--screenshot", default="report-screenshot.png")
    parser.add_argument("--chromium", default=str(CHROMIUM))
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"{args.chromium} not found: apt-get install -y chromium", file=sys.stderr)
        return 2
    check = check_report(args.report, args.screenshot, chromium=args.chromium)
    for line in check.errors:
        print(f"console error: {line}", file=sys.stderr)
    if check.returncode != 0:
        print(check.log[-4000:], file=sys.stderr)
    print(
        f"chromium exit {check.returncode}; {len(check.errors)} console errors; "
        f"screenshot {'written to ' + str(check.screenshot) if check.screenshot.is_file() else 'MISSING'}"
    )
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
