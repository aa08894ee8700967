"""The benchmark grid: which runs (observation × method × τ × seed) a selection needs.

A run is identified by a :class:`RunSpec`; its directory under ``<out>/runs`` is
``<observation>/<method>[-tau<τ>]/seed<k>`` (τ only for the risk-modulated methods, whose loss
uses it). Runs shared by several selections (e.g. PU-RM at τ = 0.3 in Table 2 and Figure 4) are
listed once.

>>> specs = grid_for(["table2"], observations=["Edema"], seeds=1, tau=0.3)
>>> [s.label for s in specs]
['Edema/u-ignore/seed0', 'Edema/u-zeros/seed0', 'Edema/u-ones/seed0', 'Edema/pu-rm-tau0.3/seed0']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from finegrain.observations import check_observation
from finegrain.train.methods import METHODS

#: Methods whose loss uses τ (partially Huberised cross-entropy on some labels).
RM_METHODS: frozenset[str] = frozenset(name for name, m in METHODS.items() if m.uses_tau)

#: Display names as in the paper, for every training method.
METHOD_NAMES: dict[str, str] = {name: m.display_name for name, m in METHODS.items()}

#: The paper's results, each a list of methods (Figure 4 also sweeps τ over ``FIGURE4_TAUS``).
SELECTIONS: dict[str, tuple[str, ...]] = {
    "table2": ("u-ignore", "u-zeros", "u-ones", "pu-rm"),
    "table3": ("u-ignore", "p-rm", "pu-rm"),
    "figure4": ("u-ones", "u-ignore", "pu-rm"),
}
FIGURE4_TAUS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Selections that sweep the data as well, each run by its own module (not part of ``all``):
#: ``study`` = :func:`finegrain.experiment.study.run_study`.
STUDY_SELECTIONS: tuple[str, ...] = ("study",)

#: The method every other one is compared against (paired DeLong test on the test split).
REFERENCE_METHOD = "u-ones"


def format_tau(tau: float) -> str:
    """``0.3`` -> ``"0.3"``; stable text for directory names and tables."""
    return f"{float(tau):g}"


@dataclass(frozen=True, order=True)
class RunSpec:
    """One training run of the grid."""

    observation: str
    method: str
    tau: float | None
    seed: int

    @property
    def variant(self) -> str:
        """``pu-rm-tau0.3`` for risk-modulated methods, else the method name."""
        if self.tau is None:
            return self.method
        return f"{self.method}-tau{format_tau(self.tau)}"

    @property
    def label(self) -> str:
        return f"{self.observation}/{self.variant}/seed{self.seed}"

    def directory(self, runs_root: str | Path) -> Path:
        return Path(runs_root) / self.observation / self.variant / f"seed{self.seed}"


def method_tau(method: str, tau: float) -> float | None:
    """The τ a run of ``method`` uses: ``tau`` for risk-modulated methods, else ``None``."""
    return float(tau) if method in RM_METHODS else None


def check_method(method: str) -> str:
    if method not in METHOD_NAMES:
        raise ValueError(f"unknown method {method!r}; expected one of: {', '.join(METHOD_NAMES)}")
    return method


def grid_for(
    selections: Iterable[str],
    *,
    observations: Sequence[str],
    seeds: int,
    tau: float = 0.3,
    taus: Sequence[float] | None = None,
    methods: Sequence[str] | None = None,
) -> list[RunSpec]:
    """All runs needed by ``selections`` (``table2``, ``table3``, ``figure4``; ``all`` = every
    one), for each observation and seeds ``0..seeds-1``, in a stable order without duplicates.

    ``methods`` (if given) replaces the methods of the tables; ``taus`` replaces Figure 4's sweep.
    """
    selections = list(selections)
    if "all" in selections:
        selections = list(SELECTIONS)
    for name in selections:
        if name not in SELECTIONS:
            raise ValueError(
                f"unknown selection {name!r}; expected one of: {', '.join(SELECTIONS)}, all"
            )
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    observations = [check_observation(o) for o in observations]
    wanted: list[tuple[str, float | None]] = []
    for name in selections:
        names = list(methods) if methods is not None and name != "figure4" else SELECTIONS[name]
        for m in names:
            wanted.append((check_method(m), method_tau(m, tau)))
        if name == "figure4":
            for t in taus if taus is not None else FIGURE4_TAUS:
                wanted.append(("pu-rm", float(t)))
    seen: set[RunSpec] = set()
    specs: list[RunSpec] = []
    for obs in observations:
        for m, t in wanted:
            for seed in range(seeds):
                spec = RunSpec(obs, m, t, seed)
                if spec not in seen:
                    seen.add(spec)
                    specs.append(spec)
    # seeds innermost per variant keeps runs of one variant together; reorder so that all
    # variants get seed 0 first (a partial benchmark then already has one seed of everything).
    specs.sort(key=lambda s: (s.seed, observations.index(s.observation)))
    return specs
