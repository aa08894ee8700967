"""The self-contained HTML report: tables, figures (PNG embedded as base64), configuration,
versions and the bookkeeping of runs. No external assets and no JavaScript."""

from __future__ import annotations

import base64
import html
import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from finegrain.experiment.tables import Table, to_html
from finegrain.io import atomic_write_text


@dataclass
class Figure:
    """A figure of the report: the PNG on disk and a caption."""

    title: str
    png: Path
    caption: str = ""


def _template() -> string.Template:
    text = (
        resources.files("finegrain.experiment")
        .joinpath("templates/report.html")
        .read_text(encoding="utf-8")
    )
    return string.Template(text)


def _figure_html(fig: Figure) -> str:
    data = base64.b64encode(Path(fig.png).read_bytes()).decode("ascii")
    esc = html.escape
    return (
        f'<figure><img alt="{esc(fig.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption><b>{esc(fig.title)}.</b> {esc(fig.caption)}</figcaption></figure>"
    )


def render_report(
    *,
    title: str,
    lead: str,
    tables: Sequence[Table],
    figures: Sequence[Figure],
    config: dict,
    notes: Sequence[str] = (),
) -> str:
    """The report as one HTML string."""
    esc = html.escape
    body = ["<h2>Results</h2>"]
    body += [to_html(t) for t in tables]
    if figures:
        body.append("<h2>Figures</h2>")
        body += [_figure_html(f) for f in figures]
    body.append("<h2>Runs</h2>")
    if notes:
        body.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    else:
        body.append("<p>Every run of the grid finished and had a checkpoint to choose.</p>")
    body.append("<h2>Configuration and versions</h2>")
    body.append(
        f"<pre>{esc(json.dumps(config, indent=2, sort_keys=True, default=str), quote=False)}</pre>"
    )
    return _template().substitute(title=esc(title), lead=esc(lead), body="\n".join(body))


def write_report(path: str | Path, **kwargs) -> Path:
    """Render (see :func:`render_report`) and write atomically."""
    atomic_write_text(path, render_report(**kwargs))
    return Path(path)
