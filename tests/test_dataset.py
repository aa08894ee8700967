"""CXRDataset and Augmentation: items, drop counts by reason, batch path, uint8 all the way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from finegrain.data.augment import Augmentation
from finegrain.data.cache import ImageCache, prepare
from finegrain.data.dataset import CXRDataset
from finegrain.data.index import normalise_index
from finegrain.observations import OBSERVATIONS, cue_column, subcategory_column

SIZE = 12
OBS = "Edema"
#           image_id: (split, Edema label, subcategory)
ROWS = {
    "a": ("train", 1, "atypical"),
    "b": ("train", 1, "typical"),
    "c": ("train", 0, None),
    "d": ("train", -1, "typical"),
    "e": ("train", None, None),  # blank label
    "f": ("train", 0, None),  # truncated file: failed in cache
    "g": ("train", 1, "typical"),  # not in the cache at all
    "h": ("validate", 0, None),
    "i": ("train", -1, None),
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[pd.DataFrame, ImageCache]:
    root: Path = tmp_path_factory.mktemp("ds")
    rng = np.random.default_rng(0)
    paths = {}
    for n, image_id in enumerate(ROWS):
        paths[image_id] = root / f"{image_id}.png"
        Image.fromarray((rng.random((20, 16)) * 255).astype(np.uint8) // 2 + n).save(
            paths[image_id]
        )
    data = paths["f"].read_bytes()
    paths["f"].write_bytes(data[: len(data) // 2])
    frame = pd.DataFrame(
        {
            "image_id": list(ROWS),
            "path": [str(p) for p in paths.values()],
            "subject_id": "1",
            "study_id": [str(i) for i in range(len(ROWS))],
            "split": [v[0] for v in ROWS.values()],
            "view": "AP",
        }
    )
    for obs in OBSERVATIONS:
        frame[obs] = pd.NA
    frame[OBS] = [v[1] if v[1] is not None else pd.NA for v in ROWS.values()]
    frame[subcategory_column(OBS)] = [v[2] if v[2] else pd.NA for v in ROWS.values()]
    # a: a cue (slight); b and d: typical for want of a cue
    frame[cue_column(OBS)] = [{"a": "yes", "b": "No", "d": "no"}.get(i, pd.NA) for i in ROWS]
    index = normalise_index(frame)
    prepare(index[index["image_id"] != "g"], root / "cache", size=SIZE, workers=0, progress=False)
    return index, ImageCache(root / "cache")


def test_drop_counts_and_attributes(setup):
    index, cache = setup
    ds = CXRDataset(index, cache, "edema", "train")
    assert ds.summary == {
        "kept": 5,
        "blank label": 1,
        "not in cache": 1,
        "failed in cache": 1,
        "uncertain dropped": 0,
    }
    assert ds.image_ids == ["a", "b", "c", "d", "i"]
    assert ds.labels.dtype == np.int64 and ds.labels.tolist() == [1, 1, 0, -1, -1]
    assert ds.subcategories.tolist() == ["atypical", "typical", "", "typical", ""]
    assert ds.index_rows.tolist() == [0, 1, 2, 3, 8]
    assert ds.fine.tolist() == [0, 1, -1, 1, -1]
    assert ds.has_cue and ds.cue.tolist() == [1, 0, -1, 0, -1]
    strict = CXRDataset(index, cache, OBS, "train", keep_uncertain=False)
    assert strict.summary["uncertain dropped"] == 2 and strict.summary["kept"] == 3
    assert strict.image_ids == ["a", "b", "c"]
    assert "2 uncertain dropped" in strict.format_summary()
    validate = CXRDataset(index, cache, OBS, "validate")
    assert validate.image_ids == ["h"]
    # fine labels and cues reach a loss from the training split only
    assert validate.fine.tolist() == [-1] and validate.cue.tolist() == [-1]
    assert len(CXRDataset(index, cache, OBS, "test")) == 0


def test_items_are_uint8_from_the_cache(setup):
    index, cache = setup
    ds = CXRDataset(index, cache, OBS, "train")
    item = ds[4]
    image, label, row = item["image"], item["label"], item["row"]
    assert item["fine"].dtype == torch.int64
    assert image.dtype == torch.uint8 and image.shape == (1, SIZE, SIZE)
    assert label.dtype == torch.int64 and label.item() == -1
    assert row.dtype == torch.int64 and row.item() == 8
    np.testing.assert_array_equal(image[0].numpy(), cache[cache.row_of("i")])
    assert int(image.max()) > 1  # 0..255 values, not scaled to [0, 1]
    batch = ds.__getitems__([4, 0, 2])
    for got, want in zip(batch, [ds[4], ds[0], ds[2]], strict=True):
        assert got.keys() == want.keys() == {"image", "label", "fine", "cue", "row"}
        for key in got:
            assert torch.equal(got[key], want[key]) and got[key].dtype == want[key].dtype


def test_dataloader_batches_and_worker_pickling(setup):
    index, cache = setup
    ds = CXRDataset(index, cache, OBS, "train", augment=Augmentation())
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1, shuffle=False)
    batch = next(iter(loader))
    images, labels, rows = batch["image"], batch["label"], batch["row"]
    assert images.shape == (4, 1, SIZE, SIZE) and images.dtype == torch.uint8
    assert labels.tolist() == [1, 1, 0, -1] and rows.tolist() == [0, 1, 2, 3]


def test_input_normalization_accepts_dataset_batches_only():
    from finegrain.train import models

    norm = models.InputNormalization()
    batch = torch.full((2, 1, SIZE, SIZE), 255, dtype=torch.uint8)
    out = norm(batch)
    assert out.shape == (2, 3, SIZE, SIZE) and out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], (1 - norm.mean.flatten()) / norm.std.flatten())
    with pytest.raises(TypeError):
        norm(batch.float() / 255)  # an already scaled image never passes silently


def test_augmentation_is_small_uint8_and_seeded():
    image = torch.zeros((1, 64, 64), dtype=torch.uint8)
    image[:, 16:48, 16:48] = 200
    aug = Augmentation(degrees=10, translate=0.05, scale=(0.9, 1.1))
    torch.manual_seed(3)
    first = aug(image)
    torch.manual_seed(3)
    assert torch.equal(first, aug(image))
    assert first.dtype == torch.uint8 and first.shape == image.shape
    outs = [aug(image) for _ in range(5)]
    assert any(not torch.equal(o, image) for o in outs)
    for out in outs:  # small: the square stays mostly where it was
        assert (out[:, 24:40, 24:40] == 200).float().mean() > 0.9
    identity = Augmentation(degrees=0, translate=0, scale=(1, 1))
    assert torch.equal(identity(image), image)
    shrink = Augmentation(degrees=0, translate=0, scale=(0.5, 0.5), fill=7)
    small = shrink(image)  # the 32 px square becomes 16 px, the border is filled with 7
    assert (small == 200).sum() == 16 * 16 and small[0, 0, 0] == 7
    batch = torch.stack([image] * 6)
    torch.manual_seed(0)
    out = aug(batch)  # one call, one draw per image
    assert out.shape == batch.shape and out.dtype == torch.uint8
    assert len({o.numpy().tobytes() for o in out}) == 6
    with pytest.raises(TypeError, match="uint8"):
        aug(image.float())
    with pytest.raises(ValueError, match="translate"):
        Augmentation(translate=1.5)
    assert Augmentation.from_value(True) == Augmentation()
    assert Augmentation.from_value(False) is None
    assert Augmentation.from_value(aug.to_dict()) == aug


def test_bad_arguments(setup):
    index, cache = setup
    with pytest.raises(ValueError, match="unknown observation"):
        CXRDataset(index, cache, "Broken Heart", "train")
    with pytest.raises(ValueError, match="split"):
        CXRDataset(index, cache, OBS, "val")
    broken = index.copy()
    broken[OBS] = broken[OBS].astype(object)
    broken.loc[2, OBS] = 2
    with pytest.raises(ValueError, match="label 2 in column 'Edema' at row 2"):
        CXRDataset(broken, cache, OBS, "train")
    with pytest.raises(ValueError, match="missing column 'Edema'"):
        CXRDataset(index.drop(columns=[OBS]), cache, OBS, "train")


def test_phantom_index_prepare_dataset_round_trip(phantom_root, tmp_path):
    from finegrain.data.index import read_index, write_index
    from finegrain.data.mimic import index_mimic

    frame, _ = index_mimic(phantom_root, progress=False)
    frame["path"] = [str(phantom_root / p) for p in frame["path"]]
    write_index(frame, tmp_path / "index.csv")
    summary = prepare(tmp_path / "index.csv", tmp_path / "cache", size=32, progress=False)
    assert summary.failed == 0 and summary.ok == len(frame) > 0
    index, cache = read_index(tmp_path / "index.csv"), ImageCache(tmp_path / "cache")
    # the labeler's cue: where the subcategory comes from, exactly where the label is positive
    # or uncertain (a severity word; a change word only; none)
    graded = index["Pleural Effusion"].isin([1, -1]).fillna(False)
    cues = index[cue_column("Pleural Effusion")]
    assert cues[graded].isin(["severity", "change", "no"]).all() and cues[~graded].isna().all()
    assert {"severity", "no"} <= set(cues[graded])
    total = 0
    for split in ("train", "validate", "test"):
        ds = CXRDataset(index, cache, "Pleural Effusion", split)
        in_split = int((index["split"] == split).sum())
        assert ds.summary["kept"] + ds.summary["blank label"] == in_split
        assert set(np.unique(ds.labels)) <= {1, 0, -1}
        total += in_split
        if len(ds):
            image, row = ds[0]["image"], ds[0]["row"]
            assert image.shape == (1, 32, 32) and image.dtype == torch.uint8
            assert index["image_id"].iloc[int(row)] == ds.image_ids[0]
    assert total == len(index)
