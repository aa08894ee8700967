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
    result = cam_api().compute_cam(model, np.zeros((1, 1, image_size, image_size), np.uint8))
    return tuple(int(v) for v in result.feature_cam.shape[1:])


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
        raise ValueError(f"CAM shape {cam.shape} differs from mask shape {mask.shape}")
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
    images: np.ndarray,
    masks: np.ndarray | None,
    *,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Per image: ``energy_inside`` (NaN without a mask), ``mask_area`` (share of the image),
    ``peak`` and ``probability``. ``images`` is uint8 ``(N, S, S)``; ``masks`` boolean
    ``(N, H, W)`` (resized to ``S``) or ``None``."""
    compute_cam = cam_api().compute_cam
    rows = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size])
        result = compute_cam(model, batch[:, None])
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
    from finegrain.train.rundir import load_model

    images = {g: read_images(list(c["image_id"])) for g, c in cases.items() if len(c)}
    masks = {g: read_masks(list(cases[g]["image_id"])) for g in images}
    rows, per_image = [], {}
    for (method, seed), ckpt in checkpoints.items():
        model, _ = load_model(ckpt)
        for group, arr in images.items():
            scores = score_cams(model, arr, masks[group])
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
