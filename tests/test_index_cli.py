"""``finegrain index`` and ``finegrain phantom`` end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from finegrain.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, main
from finegrain.data.index import read_index, write_index
from finegrain.observations import OBSERVATIONS


def test_index_mimic_cli_writes_a_readable_index(phantom_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "elsewhere" / "index.csv"
    assert main(["index", "--mimic", str(phantom_root), "-o", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("kept ")
    assert "view not kept (LATERAL)" in printed
    frame = read_index(out)
    assert len(frame) == int(printed.split()[1])
    assert all(Path(p).is_file() for p in frame["path"])  # paths rebased to the index folder
    assert main(["index", "--mimic", str(phantom_root), "-o", str(out), "--views", "all",
                 "--no-progress", "--overwrite"]) == 0  # fmt: skip
    assert len(read_index(out)) > len(frame)


def test_index_cli_skip_missing_lists_files(phantom_root: Path, tmp_path: Path, capsys):
    root = Path(shutil.copytree(phantom_root, tmp_path / "m"))
    victim = next((root / "files").rglob("*.jpg"))
    meta = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str)
    view = meta.loc[meta["dicom_id"] == victim.stem, "ViewPosition"].iloc[0]
    victim.unlink()
    out = tmp_path / "index.csv"
    args = ["index", "--mimic", str(root), "-o", str(out), "--no-progress", "--views", view]
    assert main(args) == 2
    assert victim.name in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--skip-missing"]) == EXIT_PARTIAL  # written, one image skipped
    listing = tmp_path / "index.csv.skipped.txt"
    assert listing.read_text().split() == [str(victim)]
    assert "dropped 1 (image file missing)" in capsys.readouterr().out


def test_index_cli_named_errors(phantom_root: Path, tmp_path: Path, capsys):
    root = Path(shutil.copytree(phantom_root, tmp_path / "m"))
    meta = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", dtype=str)
    meta.drop(columns=["study_id"]).to_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    assert main(["index", "--mimic", str(root), "-o", str(tmp_path / "i.csv")]) == 2
    err = capsys.readouterr().err
    assert "metadata.csv.gz" in err and "'study_id'" in err
    with pytest.raises(SystemExit):  # a source is required
        main(["index", "-o", str(tmp_path / "i.csv")])
    with pytest.raises(SystemExit):
        main(["index", "--csv", "x.csv", "--labels", "negbio", "-o", str(tmp_path / "i.csv")])


def test_phantom_cli(tmp_path: Path, capsys):
    out = tmp_path / "ph"
    assert main(["phantom", str(out), "--studies", "5", "--size", "32", "--no-progress"]) == 0
    assert "5 studies" in capsys.readouterr().out
    assert (out / "mimic-cxr-2.0.0-chexpert.csv.gz").is_file()
    again = ["phantom", str(out), "--studies", "5", "--size", "32", "--no-progress"]
    assert main(again) == EXIT_USAGE  # not empty
    assert "not an empty folder; choose a new or empty folder" in capsys.readouterr().err


def test_index_csv_and_openi_cli(tmp_path: Path, capsys):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    for i in range(4):
        (data / "img" / f"{i}.png").write_bytes(b"x")
    labels = {obs: ["1", "0", "", "-1"] for obs in OBSERVATIONS}
    pd.DataFrame({"path": [f"img/{i}.png" for i in range(4)], **labels}).to_csv(
        data / "source.csv", index=False
    )
    out = tmp_path / "out" / "index.csv"
    assert main(["index", "--csv", str(data / "source.csv"), "-o", str(out), "--no-progress"]) == 0
    frame = read_index(out)
    assert len(frame) == 4 and all(Path(p).is_file() for p in frame["path"])
    pd.DataFrame({"id": ["0", "1"], "report": ["a", "b"]}).to_csv(data / "reports.csv", index=False)
    (data / "images").mkdir()
    (data / "images" / "CXR0_1.png").write_bytes(b"x")
    truth = pd.DataFrame({"id": ["0", "1"], **{o: ["1", ""] for o in OBSERVATIONS}})
    truth.to_csv(tmp_path / "labels.csv", index=False)
    args = ["index", "--openi", str(data), "-o", str(out), "--labels", str(tmp_path / "labels.csv")]
    args.append("--overwrite")  # the --csv index above is replaced
    assert main([*args, "--no-progress"]) == 0
    assert "dropped 1 (report without image)" in capsys.readouterr().out
    assert read_index(out)["Edema"].tolist() == [1]


def test_index_csv_paths_are_regular_files_and_root_confines_them(tmp_path, capsys):
    """Paths stay as given (absolute ones too), each must be a regular file, and --root DIR
    refuses a path outside DIR, naming its row."""
    data = tmp_path / "data"
    (data / "folder.png").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "a.png")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "outside.png")
    labels = ",1" * len(OBSERVATIONS)
    images = data / "images.csv"
    header = "path," + ",".join(OBSERVATIONS)

    def index(*extra) -> tuple[int, str]:
        argv = ["index", "--csv", str(images), "-o", str(data / "i.csv"), "--no-progress"]
        argv.append("--overwrite")  # each case rewrites the same index
        return main([*argv, *extra]), capsys.readouterr().err

    images.write_text(f"{header}\na.png{labels}\nfolder.png{labels}\n")
    code, err = index()
    assert code == EXIT_USAGE and "line 3" in err and "folder.png" in err and "folder" in err
    images.write_text(f"{header}\na.png{labels}\n{tmp_path / 'outside.png'}{labels}\n")
    code, err = index()
    assert code == EXIT_OK, err
    assert pd.read_csv(data / "i.csv")["path"].tolist() == ["a.png", str(tmp_path / "outside.png")]
    code, err = index("--root", str(data))
    assert code == EXIT_USAGE and "line 3" in err and "outside" in err and "--root" in err, err
    images.write_text(f"{header}\na.png{labels}\n../outside.png{labels}\n")
    code, err = index("--root", str(data))
    assert code == EXIT_USAGE and "line 3" in err, err


@pytest.mark.parametrize("folder", ["idx", "/data/idx", ".", "/", "a/../b", "idx/"])
def test_read_index_resolves_paths_as_pathlib_does(folder: str) -> None:
    from finegrain.data.index import resolve_paths

    paths = ["a/b.jpg", "/x/c.jpg", "./d.jpg", "e//f.jpg", "g/./h.jpg", "i/", "../j.jpg", ".k",
             "l/.", "m..jpg", "n/../o.jpg", "p", "//q.jpg"]  # fmt: skip
    expected = [p if Path(p).is_absolute() else str(Path(folder) / p) for p in paths]
    assert resolve_paths(paths, Path(folder)) == expected


def test_index_paths_and_columns_read_only_what_a_report_needs(tmp_path):
    """``index_paths``: the resolved paths of a few image ids from the image_id and path
    columns only (as ``read_index`` resolves them); ``index_columns``: the header alone."""
    from finegrain.data.index import INDEX_COLUMNS, index_columns, index_paths, read_index

    frame = pd.DataFrame({c: [pd.NA] * 3 for c in INDEX_COLUMNS})
    frame["image_id"] = ["a", "b", "c"]
    frame["path"] = ["x/a.jpg", "/abs/b.jpg", "x/c.jpg"]
    frame[["subject_id", "study_id", "split", "view"]] = ["s", "t", "train", "PA"]
    for name in ("index.csv", "index.parquet"):
        path = tmp_path / name
        write_index(frame, path)
        full = read_index(path).set_index("image_id")["path"]
        assert index_paths(path, ["c", "b"]) == {"c": full["c"], "b": full["b"]}
        assert index_paths(path, ["c"])["c"] == str(tmp_path / "x" / "c.jpg")
        assert index_columns(path)[: len(INDEX_COLUMNS)] == list(INDEX_COLUMNS)
        with pytest.raises(KeyError, match="image_id 'zz' not in the index table"):
            index_paths(path, ["a", "zz"])


def test_index_csv_treats_a_dangling_symlink_as_a_missing_file(tmp_path, capsys):
    """A dangling symlink was kept (even with --skip-missing) where the image folder holds
    several images, and failed later in prepare."""
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    for i in range(5):  # several images per folder: the folder is listed, not each file stat'ed
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(data / "img" / f"{i}.png")
    (data / "img" / "link.png").symlink_to(data / "img" / "gone.png")
    labels = ",1" * len(OBSERVATIONS)
    rows = [f"img/{i}.png{labels}" for i in range(5)] + [f"img/link.png{labels}"]
    source = data / "images.csv"
    source.write_text("path," + ",".join(OBSERVATIONS) + "\n" + "\n".join(rows) + "\n")
    out = tmp_path / "index.csv"
    argv = ["index", "--csv", str(source), "-o", str(out), "--no-progress"]
    assert main(argv) == EXIT_USAGE
    assert "image file not found" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--skip-missing"]) == EXIT_PARTIAL
    assert "dropped 1 (image file missing)" in capsys.readouterr().out
    assert len(read_index(out)) == 5
    assert (tmp_path / "index.csv.skipped.txt").read_text().split() == [
        str(data / "img" / "link.png")
    ]
