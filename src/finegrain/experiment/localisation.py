"""Figure 5, measured: how well class activation maps localise the phantom's true lesions.

The phantom knows where every lesion is (a boolean mask per image × observation). For a trained
model we score its CAMs (:func:`finegrain.predict.cam.compute_cam`, in logit-difference units)
against those masks:

* **energy inside** — for typical positives, the share of the CAM's positive part that falls
  inside the lesion mask: ``sum(relu(cam) * mask) / sum(relu(cam))`` (1 = all evidence on the
  lesion; the mask's area share is what a uniform map scores);
* **peak** — the CAM's maximum (logit-difference units) on atypical positives and on negatives:
  a model that communicates fine granularity activates less on slight findings than on
  significant ones, and least on negatives.

A CAM is only a localisation when the last feature map has enough cells: a 64 px input to a
small DenseNet ends in a 4 × 4 map (each cell covers a quarter of the lung), so those maps are
labelled as such (:func:`grid_label`).

Every CAM of a report is computed once (:class:`CamStore`, keyed by the run's folder, its full
identity, and checkpoint): the localisation table and the side-by-side figure (Figure 5, also on
data without lesion masks) read the same maps. Runs are compared within one
:class:`Comparison` (an observation and the values of the grid's other axes), so runs that
differ in any setting never mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from finegrain.errors import FinegrainError
from finegrain.experiment.grid import display_name
from finegrain.train.methods import BASELINE_METHOD, PAPER_METHOD

#: Feature maps with at most this many cells are labelled "not a localisation".
COARSE_CELLS = 36


def cam_api():
    """The CAM module (``finegrain.predict.cam``; ``finegrain.cam`` in older trees)."""
    try:
        from finegrain.predict import cam
    except ImportError:  # pragma: no cover - before the CAM code moved into predict/
        from finegrain import cam
    return cam


def article(word: str) -> str:
    """``"an"`` before a vowel sound (atypical), else ``"a"`` (typical)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def cam_grid(model, image_size: int) -> tuple[int, int]:
    """Cells (height, width) of ``model``'s last feature map for ``image_size`` px inputs."""
    from finegrain.train.models import cam_layers

    features, _ = cam_layers(model)
    with torch.inference_mode():
        x = torch.zeros((1, 1, image_size, image_size), dtype=torch.uint8)
        fmap = features(model.normalize(x))
    return tuple(int(v) for v in fmap.shape[2:])


def grid_label(cells: tuple[int, int]) -> str:
    """``"16 × 16 cells"``, or ``"4 × 4 cells: not a localisation"`` for coarse maps."""
    h, w = cells
    text = f"{h} × {w} cells"
    return text + ": not a localisation" if h * w <= COARSE_CELLS else text


def energy_inside(cam: np.ndarray, mask: np.ndarray) -> float:
    """Share of the CAM's positive part inside ``mask`` (NaN when the CAM has no positive part).

    >>> cam = np.array([[3.0, 1.0], [-2.0, 0.0]])
    >>> energy_inside(cam, np.array([[True, False], [False, False]]))
    0.75
    """
    cam = np.asarray(cam, dtype=float)
    mask = np.asarray(mask, dtype=bool)
    if cam.shape != mask.shape:
        raise FinegrainError(f"CAM shape {cam.shape} differs from mask shape {mask.shape}")
    positive = np.clip(cam, 0.0, None)
    total = float(positive.sum())
    return float(positive[mask].sum() / total) if total > 0 else float("nan")


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a square boolean mask to ``size`` × ``size``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape == (size, size):
        return mask
    rows = (np.arange(size) * mask.shape[0] / size).astype(int)
    cols = (np.arange(size) * mask.shape[1] / size).astype(int)
    return mask[np.ix_(rows, cols)]


LOCALISATION_COLUMNS: list[str] = [
    "observation",
    "method",
    "variant",
    "settings",
    "seed",
    "group",
    "cases",
    "energy_inside",
    "mask_area",
    "peak",
    "probability",
]


class CamStore:
    """Each run's CAMs (logit-difference units) and probabilities, computed once per image: keyed
    by the run's folder (its full identity) and chosen checkpoint, then by image id. Images are
    read from the run's own image cache (its recorded ``cache``)."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        self._models: dict[tuple, tuple] = {}
        self._caches: dict[str, object] = {}
        self._maps: dict[tuple, dict[str, tuple[np.ndarray, float]]] = {}

    @staticmethod
    def key(run) -> tuple:
        return (str(run.directory), run.iteration)

    def model(self, run) -> tuple:
        """``(model, method, meta)`` of the run's chosen checkpoint, loaded once."""
        from finegrain.train.checkpoint import method_of
        from finegrain.train.rundir import load_model

        key = self.key(run)
        if key not in self._models:
            model, meta = load_model(run.run.checkpoint_path(run.iteration))
            self._models[key] = (model, method_of(meta), meta)
        return self._models[key]

    def images(self, run, ids: Sequence[str]) -> np.ndarray:
        """uint8 ``(N, S, S)`` images of ``ids`` from the run's image cache."""
        from finegrain.data.cache import ImageCache

        path = str(run.config.get("cache") or "")
        if not path:
            raise FinegrainError(f"{run.directory}: its config records no image cache")
        if path not in self._caches:
            self._caches[path] = ImageCache(path)
        cache = self._caches[path]
        return cache.read_rows([cache.row_of(i) for i in ids])

    def cams(self, run, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(cams (N, S, S), probabilities (N,))`` of ``ids`` (each computed once, in batches of
        the ids not computed yet, in the order given)."""
        done = self._maps.setdefault(self.key(run), {})
        todo = [i for i in dict.fromkeys(ids) if i not in done]
        if todo:
            model, method, _ = self.model(run)
            compute_cam = cam_api().compute_cam
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                result = compute_cam(model, self.images(run, chunk)[:, None], method)
                for j, image_id in enumerate(chunk):
                    done[image_id] = (result.cam[j], float(result.probability[j]))
        return (
            np.stack([done[i][0] for i in ids]),
            np.array([done[i][1] for i in ids], dtype=float),
        )

    def cells(self, run, image_size: int) -> str:
        """The feature-map label of the run's model at ``image_size`` px."""
        return grid_label(cam_grid(self.model(run)[0], image_size))


def score_cams(
    cams: np.ndarray, probabilities: np.ndarray, masks: np.ndarray | None
) -> pd.DataFrame:
    """Per image: ``energy_inside`` (NaN without a mask), ``mask_area`` (share of the image),
    ``peak`` and ``probability``; ``cams`` ``(N, h, w)``, ``masks`` boolean ``(N, H, W)``
    (resized to the CAM's size) or ``None``."""
    rows = []
    for j, cam in enumerate(cams):
        if masks is not None:
            mask = resize_mask(masks[j], cam.shape[0])
            inside, area = energy_inside(cam, mask), float(mask.mean())
        else:
            inside, area = float("nan"), float("nan")
        rows.append({"energy_inside": inside, "mask_area": area, "peak": float(cam.max()),
                     "probability": float(probabilities[j])})  # fmt: skip
    return pd.DataFrame(rows, columns=["energy_inside", "mask_area", "peak", "probability"])


#: Cases per group (typical positives, atypical positives, negatives) scored per model.
CASES_PER_GROUP = 200


def pick_cases(predictions: pd.DataFrame, n: int = CASES_PER_GROUP) -> dict[str, pd.DataFrame]:
    """The first ``n`` (by image id, so every model sees the same ones) typical positives,
    atypical positives and negatives of a predictions table."""
    from finegrain.experiment.aggregate import fg_cases

    cases = fg_cases(predictions)
    label = pd.to_numeric(predictions["label"], errors="coerce")
    groups = {
        "typical": cases[cases["subcategory"] == "typical"],
        "atypical": cases[cases["subcategory"] == "atypical"],
        "negative": predictions[label == 0],
    }
    return {g: f.sort_values("image_id").head(n).reset_index(drop=True) for g, f in groups.items()}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per observation × variant × group."""
    numbers = ["energy_inside", "mask_area", "peak", "probability"]
    if "settings" not in table.columns:  # a table written before runs were keyed by variant
        table = table.assign(variant=table["method"], settings="")
    table = table.assign(settings=table["settings"].fillna(""))
    grouped = table.groupby(["observation", "settings", "method", "group"], sort=False)
    out = grouped[numbers].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["seeds"] = grouped["seed"].nunique()
    out["cases"] = grouped["cases"].max()
    return out.reset_index()


def comparison_figure(
    images: np.ndarray,
    masks: np.ndarray | None,
    cams: dict[str, np.ndarray],
    probabilities: dict[str, np.ndarray],
    titles: Sequence[str],
    *,
    cells: str,
):
    """Side-by-side CAMs: one row per case (``images`` ``(N, S, S)``), columns = the image with
    the true lesion outline, then each model's CAM (``cams[name]`` ``(N, S, S)``, logit units,
    one colour scale per row so the models compare) with its p, energy inside and peak."""
    from finegrain.experiment.plots import _pyplot

    plt = _pyplot()
    names = list(cams)
    fig, axes = plt.subplots(
        len(images), 1 + len(names), figsize=(2.2 * (1 + len(names)), 2.3 * len(images)),
        squeeze=False,
    )  # fmt: skip
    for i, image in enumerate(images):
        ax = axes[i][0]
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        if masks is not None and masks[i].any():
            ax.contour(resize_mask(masks[i], image.shape[0]), levels=[0.5], colors="lime",
                       linewidths=0.8)  # fmt: skip
        ax.set_title(titles[i], fontsize=7)
        hi = max(float(np.clip(cams[n][i], 0, None).max()) for n in names) or 1.0
        for j, name in enumerate(names, start=1):
            cam = cams[name][i]
            ax = axes[i][j]
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.imshow(np.clip(cam, 0, None), cmap="inferno", alpha=0.55, vmin=0, vmax=hi)
            text = f"{name}\np {probabilities[name][i]:.2f}, peak {cam.max():.2f}"
            if masks is not None and masks[i].any():
                mask = resize_mask(masks[i], cam.shape[0])
                text += f"\nenergy in lesion {energy_inside(cam, mask):.2f}"
            ax.set_title(text, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"CAMs, {cells}", fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- U-Ones vs PU-RM on a benchmark


#: The two models Figure 5 compares: the reference policy and risk modulation.
#: The paper's Figure 5: the baseline's CAMs beside the paper's method's.
COMPARED = (BASELINE_METHOD, PAPER_METHOD)


def phantom_of_index(index_path: str | Path) -> Path | None:
    """The phantom folder (the one with ``phantom.json``) that the index table's first image
    lies in, or ``None`` (real data, an empty index)."""
    from finegrain.data.phantom import SETTINGS_FILE

    index_path = Path(index_path)
    try:
        first = pd.read_csv(index_path, usecols=["path"], nrows=1, dtype=str)["path"]
    except (OSError, ValueError):
        return None
    if first.empty:
        return None
    image = Path(first.iloc[0])
    image = image if image.is_absolute() else index_path.parent / image
    return next((p for p in image.parents if (p / SETTINGS_FILE).is_file()), None)


@dataclass
class Comparison:
    """Figure 5's runs of one observation at one combination of the grid's other axes
    (``settings``): each compared variant's runs by seed (``runs[variant]``, in the order
    compared); ``names`` their display names."""

    observation: str
    settings: tuple
    runs: dict[str, dict[int, object]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        """The seeds every compared variant finished."""
        found = [set(by_seed) for by_seed in self.runs.values()]
        return sorted(set.intersection(*found)) if found else []

    @property
    def label(self) -> str:
        """``Edema`` or ``Edema (iterations 600)``."""
        from finegrain.experiment.grid import RunSpec

        extra = RunSpec(self.observation, "", None, 0, self.settings).display
        return self.observation + (f" {extra.strip()}" if self.settings else "")

    @property
    def slug(self) -> str:
        from finegrain.experiment.grid import format_setting

        parts = [self.observation.lower().replace(" ", "-")]
        parts += [format_setting(k, v) for k, v in self.settings]
        return "-".join(parts)


def comparisons(
    selections, cells: Sequence[tuple[str, float | None]], notes: list[str]
) -> list[Comparison]:
    """The runs of ``cells`` (U-Ones and PU-RM at the plan's τ) with a chosen checkpoint, one
    :class:`Comparison` per observation × axes combination where both variants have a seed in
    common; every one left out is named in ``notes``."""
    found: dict[tuple, Comparison] = {}
    for sel in selections:
        if (sel.spec.method, sel.spec.tau) not in cells or sel.iteration is None:
            continue
        key = (sel.spec.observation, sel.spec.settings)
        comparison = found.setdefault(key, Comparison(*key))
        comparison.runs.setdefault(sel.spec.variant, {})[sel.spec.seed] = sel
        comparison.names[sel.spec.variant] = display_name(sel.spec.method)
    out = []
    for comparison in found.values():
        comparison.runs = dict(sorted(comparison.runs.items(), key=lambda kv: _rank(kv, cells)))
        if len(comparison.runs) < len(cells) or not comparison.seeds:
            have = ", ".join(comparison.runs) or "none"
            notes.append(
                f"{comparison.label}: Figure 5 (CAMs of "
                + " vs ".join(display_name(m) for m, _ in cells)
                + f") not drawn: no seed with a chosen checkpoint of both (found: {have})"
            )
            continue
        out.append(comparison)
    return out


def _rank(item, cells) -> int:
    runs = next(iter(item[1].values()))
    return list(cells).index((runs.spec.method, runs.spec.tau))


def measure_localisation(
    comparison: Comparison, store: CamStore, *, split: str = "test", truth=None
) -> tuple[pd.DataFrame, object, str]:
    """Figure 5 for one :class:`Comparison`: each compared run's CAMs on the same ``split``
    cases (the first :data:`CASES_PER_GROUP` typical positives, atypical positives and
    negatives), scored against the true lesion masks of ``truth`` (the phantom the runs' index
    points into; ``None`` on real data: no table, the figure without outlines).

    Returns ``(per-seed table, side-by-side figure, feature-map cells)``.
    """
    from finegrain.experiment.aggregate import selected_predictions
    from finegrain.experiment.grid import settings_text

    seeds = comparison.seeds
    first = next(iter(comparison.runs.values()))[seeds[0]]
    pred = selected_predictions(first, split)
    if pred is None:
        raise FinegrainError(f"{first.directory}: no {split} predictions")
    cases = {g: c for g, c in pick_cases(pred).items() if len(c)}

    def read_masks(ids):
        return truth.lesion_masks(list(ids), comparison.observation)

    masks = {g: read_masks(c["image_id"]) for g, c in cases.items()} if truth is not None else {}
    rows = []
    for variant, by_seed in comparison.runs.items() if truth is not None else ():
        for seed in seeds:
            run = by_seed[seed]
            for group, frame in cases.items():
                scores = score_cams(*store.cams(run, list(frame["image_id"])), masks.get(group))
                rows.append(
                    {
                        "observation": comparison.observation,
                        "method": run.spec.method,
                        "variant": variant,
                        "settings": settings_text(comparison.settings),
                        "seed": seed,
                        "group": group,
                        "cases": len(scores),
                        "energy_inside": float(scores["energy_inside"].mean()),
                        "mask_area": float(scores["mask_area"].mean()),
                        "peak": float(scores["peak"].mean()),
                        "probability": float(scores["probability"].mean()),
                    }
                )
    table = pd.DataFrame(rows, columns=LOCALISATION_COLUMNS) if truth is not None else None
    # the figure: the first seed's models on the first case of each group
    examples = [(g, c.iloc[0]["image_id"]) for g, c in cases.items()]
    ids = [i for _, i in examples]
    images = store.images(first, ids)
    cams, probs = {}, {}
    for variant, by_seed in comparison.runs.items():
        name = comparison.names[variant]
        cams[name], probs[name] = store.cams(by_seed[seeds[0]], ids)
    cells = store.cells(first, images.shape[-1])
    fig = comparison_figure(
        images, read_masks(ids) if truth is not None else None, cams, probs,
        [f"{g} ({'positive' if g != 'negative' else 'label 0'})" for g, _ in examples],
        cells=cells,
    )  # fmt: skip
    return table, fig, cells


def localisation_summary_table(table: pd.DataFrame, cells: str):
    """U-Ones vs PU-RM: energy inside the true lesion for typical positives (and the mask's
    area, what a uniform map scores), peak activation per group; mean ± std over seeds."""
    from finegrain.experiment.tables import Table, mean_std

    rows = []
    for (obs, settings, method), part in summarise(table).groupby(
        ["observation", "settings", "method"], sort=False
    ):
        g = {r["group"]: r for _, r in part.iterrows()}

        def cell(group, column, digits=3, g=g):
            r = g.get(group)
            if r is None:
                return "–"
            return mean_std(r[f"{column}_mean"], r[f"{column}_std"], digits=digits)

        name = display_name(method) + (f" ({settings})" if settings else "")
        rows.append(
            [
                f"{obs}: {name}",
                cell("typical", "energy_inside"),
                cell("typical", "mask_area"),
                cell("typical", "peak", 2),
                cell("atypical", "peak", 2),
                cell("negative", "peak", 2),
                str(int(part["seeds"].max())),
            ]
        )
    return Table(
        "localisation",
        f"Figure 5, measured: CAMs against the true lesion masks ({cells})",
        [
            "Model",
            "energy inside lesion (typical +)",
            "lesion area (uniform map)",
            "peak, typical +",
            "peak, atypical +",
            "peak, negatives",
            "seeds",
        ],  # fmt: skip
        rows,
        caption="Test cases (the same for every model, up to 200 per group); energy inside = "
        "share of the CAM's positive part inside the true lesion mask; peak = the CAM's maximum "
        "in logit-difference units; mean ± std over seeds at the checkpoints chosen on "
        "validation.",
    )
