"""Human fine labels from OpenI's manual MeSH annotation: modifiers -> atypical / typical.

OpenI's annotators wrote MeSH terms such as ``Pleural Effusion/left/small``: a heading and
modifiers. Two data files (``data/mesh/``) map them onto the paper's Table 1 division:

- ``headings.csv``: MeSH heading -> observation (e.g. ``Pulmonary Atelectasis`` -> Atelectasis);
- ``severity.csv``: modifier -> Table 1 severity term (e.g. ``small`` -> small); the side
  (atypical / typical) comes from :data:`finegrain.division.SEVERITY_CUES`.

Per report and observation, the modifiers of all its annotated terms are pooled. Their Table 1
terms give the subcategory when they all fall on one side; a finding annotated without a
severity modifier, or with modifiers on both sides (``mixed``), has none.

>>> findings = mesh_findings(["Pleural Effusion/left/small", "Cardiomegaly", "Opacity/lung/mild",
...                           "Opacity/lung/base/severe"])
>>> findings["Pleural Effusion"].subcategory, findings["Cardiomegaly"].subcategory
('atypical', None)
>>> findings["Lung Opacity"].mixed
True
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from finegrain.data.index import fine_label_column
from finegrain.division import SEVERITY_CUES
from finegrain.errors import FinegrainError
from finegrain.observations import OBSERVATIONS, check_observation

MESH_DIR = Path(__file__).with_name("mesh")


def mesh_subcategory_column(observation: str) -> str:
    """Column of the MeSH subcategory of ``observation`` in an index table."""
    return fine_label_column(observation, "mesh")


@dataclass(frozen=True)
class MeshMap:
    """The two mapping tables: heading -> observation, modifier -> Table 1 severity term."""

    headings: dict[str, str]
    severity: dict[str, str]

    @property
    def observations(self) -> tuple[str, ...]:
        """The observations some heading maps to, in the order of ``OBSERVATIONS``."""
        mapped = set(self.headings.values())
        return tuple(o for o in OBSERVATIONS if o in mapped)


def _read(path: Path, columns: tuple[str, str]) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, comment="#", keep_default_na=False)
    if tuple(table.columns) != columns:
        raise FinegrainError(f"{path}: expected columns {columns}, found {tuple(table.columns)}")
    return table.apply(lambda col: col.str.strip())


@lru_cache(maxsize=4)
def load_mesh_map(directory: str | Path | None = None) -> MeshMap:
    """Read ``headings.csv`` and ``severity.csv`` from ``directory`` (default: the package's);
    unknown observations or Table 1 terms are a ``ValueError`` naming the file and line."""
    directory = Path(directory) if directory is not None else MESH_DIR
    headings = _read(directory / "headings.csv", ("mesh_heading", "observation"))
    severity = _read(directory / "severity.csv", ("modifier", "table1_term"))
    for i, obs in enumerate(headings["observation"]):
        try:
            check_observation(obs)
        except ValueError as exc:
            raise FinegrainError(f"{directory / 'headings.csv'}: row {i + 1}: {exc}") from None
    for i, term in enumerate(severity["table1_term"]):
        if term not in SEVERITY_CUES:
            raise FinegrainError(
                f"{directory / 'severity.csv'}: row {i + 1}: {term!r} is not a Table 1 "
                f"severity term ({', '.join(SEVERITY_CUES)})"
            )
    return MeshMap(
        headings={
            h.casefold(): check_observation(o)
            for h, o in zip(headings["mesh_heading"], headings["observation"], strict=True)
        },
        severity={
            m.casefold(): t
            for m, t in zip(severity["modifier"], severity["table1_term"], strict=True)
        },
    )


@dataclass(frozen=True)
class MeshFinding:
    """One observation annotated in one report: its modifiers, their Table 1 terms and the
    subcategory (``None`` without a severity modifier or when ``mixed``)."""

    observation: str
    modifiers: frozenset[str]
    terms: frozenset[str]
    subcategory: str | None
    mixed: bool


def mesh_findings(terms: Iterable[str], mesh_map: MeshMap | None = None) -> dict[str, MeshFinding]:
    """The mapped observations among a report's MeSH ``terms`` (``Heading/modifier/...``)."""
    mesh_map = mesh_map or load_mesh_map()
    modifiers: dict[str, set[str]] = {}
    for term in terms:
        heading, *mods = (part.strip() for part in term.split("/"))
        obs = mesh_map.headings.get(heading.casefold())
        if obs is not None:
            modifiers.setdefault(obs, set()).update(m.casefold() for m in mods if m)
    out = {}
    for obs, mods in modifiers.items():
        table1 = frozenset(mesh_map.severity[m] for m in mods if m in mesh_map.severity)
        sides = {SEVERITY_CUES[t] for t in table1}
        out[obs] = MeshFinding(
            observation=obs,
            modifiers=frozenset(mods),
            terms=table1,
            subcategory=next(iter(sides)) if len(sides) == 1 else None,
            mixed=len(sides) > 1,
        )
    return out
