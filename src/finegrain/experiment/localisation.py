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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    "seed",
    "group",
    "cases",
    "energy_inside",
    "mask_area",
    "peak",
    "probability",
]


def score_cams(
    model,
    method,
    images: np.ndarray,
    masks: np.ndarray | None,
    *,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Per image: ``energy_inside`` (NaN without a mask), ``mask_area`` (share of the image),
    ``peak`` and ``probability``, for ``model`` trained by ``method``. ``images`` is uint8
    ``(N, S, S)``; ``masks`` boolean ``(N, H, W)`` (resized to ``S``) or ``None``."""
    compute_cam = cam_api().compute_cam
    rows = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size])
        result = compute_cam(model, batch[:, None], method)
        for j in range(len(batch)):
            cam = result.cam[j]
            if masks is not None:
                mask = resize_mask(masks[start + j], cam.shape[0])
                inside, area = energy_inside(cam, mask), float(mask.mean())
            else:
                inside, area = float("nan"), float("nan")
            rows.append(
                {
                    "energy_inside": inside,
                    "mask_area": area,
                    "peak": float(cam.max()),
                    "probability": float(result.probability[j]),
                }
            )
    return pd.DataFrame(rows, columns=["energy_inside", "mask_area", "peak", "probability"])


def localisation_table(
    checkpoints: dict[tuple[str, int], Path],
    cases: dict[str, pd.DataFrame],
    read_images: Callable[[Sequence[str]], np.ndarray],
    read_masks: Callable[[Sequence[str]], np.ndarray],
    *,
    observation: str,
) -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """Localisation numbers of several models on the same cases.

    ``checkpoints``: ``(method, seed) -> checkpoint``; ``cases``: group name (``typical``,
    ``atypical``, ``negative``) -> frame with ``image_id``; ``read_images(ids)`` gives uint8
    ``(N, S, S)``, ``read_masks(ids)`` boolean ``(N, H, W)`` true-lesion masks. Returns the
    summary (one row per method × seed × group: mean energy inside the mask, mean mask area,
    mean peak, mean probability) and the per-image scores.
    """
    from finegrain.train.checkpoint import method_of
    from finegrain.train.rundir import load_model

    images = {g: read_images(list(c["image_id"])) for g, c in cases.items() if len(c)}
    masks = {g: read_masks(list(cases[g]["image_id"])) for g in images}
    rows, per_image = [], {}
    for (method, seed), ckpt in checkpoints.items():
        model, meta = load_model(ckpt)
        for group, arr in images.items():
            scores = score_cams(model, method_of(meta), arr, masks[group])
            scores.insert(0, "image_id", list(cases[group]["image_id"]))
            per_image[(method, seed, group)] = scores
            rows.append(
                {
                    "observation": observation,
                    "method": method,
                    "seed": seed,
                    "group": group,
                    "cases": len(scores),
                    "energy_inside": float(scores["energy_inside"].mean()),
                    "mask_area": float(scores["mask_area"].mean()),
                    "peak": float(scores["peak"].mean()),
                    "probability": float(scores["probability"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=LOCALISATION_COLUMNS), per_image


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
    """Mean and std over seeds per observation × method × group."""
    numbers = ["energy_inside", "mask_area", "peak", "probability"]
    grouped = table.groupby(["observation", "method", "group"], sort=False)
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


def measure_localisation(
    selections, observations: Sequence[str], *, tau: float, split: str = "test", truth=None
) -> tuple[pd.DataFrame, list, str]:
    """CAMs of U-Ones vs PU-RM at ``tau`` (every seed both finished) on the same ``split`` cases,
    scored against the true lesion masks of ``truth``, the phantom the runs' index table points
    into (:func:`finegrain.experiment.truth.phantom_truth`; ``None``: not a phantom).

    Returns ``(per-seed table, [(observation, comparison figure)], feature-map cells)``; an
    empty table when the runs were not trained on a phantom with truth files, or none pair up.
    """
    import math

    from finegrain.data.cache import ImageCache
    from finegrain.experiment.aggregate import selected_predictions
    from finegrain.train.checkpoint import method_of
    from finegrain.train.rundir import load_model

    empty = pd.DataFrame(columns=LOCALISATION_COLUMNS)
    config = next((s.config for s in selections if s.config.get("index")), None)
    if truth is None or config is None or not config.get("cache"):
        return empty, [], ""
    cache = ImageCache(config["cache"])

    def read_images(ids):
        return cache.read_rows([cache.row_of(i) for i in ids])

    frames, figures, cells = [], [], ""
    for obs in observations:
        pair = {
            m: {s.spec.seed: s for s in selections
                if s.spec.observation == obs and s.spec.method == m and s.iteration is not None
                and (s.spec.tau is None or math.isclose(s.spec.tau, tau))}
            for m in COMPARED
        }  # fmt: skip
        seeds = sorted(set(pair[COMPARED[0]]) & set(pair[COMPARED[1]]))
        if not seeds:
            continue
        pred = selected_predictions(pair[COMPARED[0]][seeds[0]], split)
        if pred is None:
            continue
        cases = pick_cases(pred)
        checkpoints = {
            (m, k): pair[m][k].run.checkpoint_path(pair[m][k].iteration)
            for m in COMPARED
            for k in seeds
        }

        def read_masks(ids, o=obs):
            return truth.lesion_masks(list(ids), o)

        table, _ = localisation_table(checkpoints, cases, read_images, read_masks, observation=obs)
        frames.append(table)
        # the figure: seed 0's models on the first case of each group
        examples = [(g, c.iloc[0]["image_id"]) for g, c in cases.items() if len(c)]
        ids = [i for _, i in examples]
        images = read_images(ids)
        cams, probs = {}, {}
        for m in COMPARED:
            model, meta = load_model(checkpoints[(m, seeds[0])])
            cells = grid_label(cam_grid(model, images.shape[-1]))
            result = cam_api().compute_cam(model, images[:, None], method_of(meta))
            cams[display_name(m)], probs[display_name(m)] = result.cam, result.probability
        fig = comparison_figure(
            images, read_masks(ids), cams, probs,
            [f"{g} ({'positive' if g != 'negative' else 'label 0'})" for g, _ in examples],
            cells=cells,
        )  # fmt: skip
        figures.append((obs, fig))
    if not frames:
        return empty, [], cells
    return pd.concat(frames, ignore_index=True), figures, cells


def localisation_summary_table(table: pd.DataFrame, cells: str):
    """U-Ones vs PU-RM: energy inside the true lesion for typical positives (and the mask's
    area, what a uniform map scores), peak activation per group; mean ± std over seeds."""
    from finegrain.experiment.tables import Table, mean_std

    rows = []
    for (obs, method), part in summarise(table).groupby(["observation", "method"], sort=False):
        g = {r["group"]: r for _, r in part.iterrows()}

        def cell(group, column, digits=3, g=g):
            r = g.get(group)
            if r is None:
                return "–"
            return mean_std(r[f"{column}_mean"], r[f"{column}_std"], digits=digits)

        rows.append(
            [
                f"{obs}: {display_name(method)}",
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
