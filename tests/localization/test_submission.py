"""face_mask.py submission: from a plain folder or a test CSV; unreadable images are error rows."""

import csv

import pytest
from PIL import Image

from localization.annotations import load_filename_list
from localization.cli import main
from localization.training import save_localizer


@pytest.fixture(scope="module")
def logs(tiny_model, tmp_path_factory):
    """A run folder holding the (untrained) tiny localizer: submission only needs a model."""
    folder = tmp_path_factory.mktemp("run")
    save_localizer(tiny_model, folder / "localizer.keras", ["disk", "square"])
    return folder


@pytest.fixture()
def test_images(tmp_path):
    """b.png, a.jpg, c.png (a truncated PNG) and notes.txt in one folder."""
    folder = tmp_path / "test"
    folder.mkdir()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "b.png")
    Image.new("RGB", (20, 50), (10, 10, 200)).save(folder / "a.jpg")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(folder / "c.png")
    data = (folder / "c.png").read_bytes()
    (folder / "c.png").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not an image")
    return folder


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_plain_folder_gives_every_image_in_name_order(logs, tmp_path):
    """--image DIR alone: one row per image file, named by file name, sorted."""
    folder = tmp_path / "ok"
    folder.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.new("RGB", (40, 30)).save(folder / name)
    out = tmp_path / "submission.csv"
    assert main(["submission", "--image", str(folder), "--logs", str(logs),
                 "--out", str(out)]) == 0
    rows = read_rows(out)
    assert rows[0] == ["filename", "class", "xmin", "ymin", "xmax", "ymax"]
    assert [row[0] for row in rows[1:]] == ["a.jpg", "b.png"]
    assert all(row[1] in ("disk", "square") and len(row) == 6 for row in rows[1:])


def test_truncated_png_is_an_error_row_named_on_stderr_with_exit_2(logs, test_images, tmp_path,
                                                                  capsys):
    """If this fails, a Kaggle upload silently lacks the row of an unreadable image (or the
    command claims success)."""
    out = tmp_path / "submission.csv"
    assert main(["submission", "--image", str(test_images), "--logs", str(logs),
                 "--out", str(out)]) == 2
    rows = read_rows(out)
    assert [row[0] for row in rows[1:]] == ["a.jpg", "b.png", "c.png"]
    assert rows[3] == ["c.png", "", "", "", "", ""]
    assert rows[1][1] in ("disk", "square") and rows[2][1] in ("disk", "square")
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith("error row c.png: not a readable image") for line in err)
    assert "1 of 3 image(s) could not be read (c.png)" in err[-1]


def test_test_csv_fixes_ids_and_order_and_missing_files_are_error_rows(logs, test_images,
                                                                       tmp_path, capsys):
    """A Kaggle-style list (``ImageId`` header, extra column) decides the rows and their order;
    a listed file that does not exist still gets its row."""
    listing = tmp_path / "sample_submission.csv"
    listing.write_text("ImageId,class\nb.png,\nmissing.png,\na.jpg,\n")
    out = tmp_path / "submission.csv"
    assert main(["submission", "--test-csv", str(listing), "--image", str(test_images),
                 "--logs", str(logs), "--out", str(out)]) == 2
    rows = read_rows(out)
    assert [row[0] for row in rows[1:]] == ["b.png", "missing.png", "a.jpg"]
    assert rows[2] == ["missing.png", "", "", "", "", ""] and rows[3][1] != ""
    assert "error row missing.png: not found" in capsys.readouterr().err


@pytest.mark.parametrize("text, expected", [
    ("filename\na.jpg\nc.png\n", ["a.jpg", "c.png"]),
    ("a.jpg\nc.png\n", ["a.jpg", "c.png"]),
    ("\ufeffid,EncodedPixels\r\nx.png,\r\ny.png,1 2\r\n", ["x.png", "y.png"]),
    ("width,Image_ID\n8,q.jpg\n", ["q.jpg"]),
])
def test_test_lists_accept_the_header_names_people_have(tmp_path, text, expected):
    path = tmp_path / "test.csv"
    path.write_text(text, encoding="utf-8")
    assert load_filename_list(path) == expected


def test_a_list_without_an_id_column_names_the_expected_headers(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("picture,score\na.jpg,1\n")
    with pytest.raises(ValueError, match=r"names no file column; expected a header with one of "
                                         r"\['filename'.*'id'"):
        load_filename_list(path)


def test_submission_without_images_or_list_exits_2(logs, capsys):
    assert main(["submission", "--logs", str(logs)]) == 2
    assert "needs --image DIR" in capsys.readouterr().err
