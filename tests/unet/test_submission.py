"""person_segmentation.py submission: a plain folder or --test-csv; unreadable images are error
rows (id, empty mask), named on stderr, exit status 2."""

import csv

import numpy as np
import pytest
from PIL import Image

from unet.cli import main
from unet.models import build_unet
from unet.rle import decode_rle, load_submission_ids, validate_submission


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """A run folder with an untrained tiny U-Net as best.keras (submission needs only a model)."""
    folder = tmp_path_factory.mktemp("unet_run")
    build_unet("improved", (32, 32, 3), depth=2, base_filters=4).save(folder / "best.keras")
    return folder


@pytest.fixture()
def test_images(tmp_path):
    """person_b.png (21x35), person_a.jpg, person_c.png truncated, notes.txt."""
    folder = tmp_path / "test"
    folder.mkdir()
    Image.fromarray(np.full((21, 35, 3), 120, np.uint8)).save(folder / "person_b.png")
    Image.fromarray(np.full((40, 40, 3), 60, np.uint8)).save(folder / "person_a.jpg")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "person_c.png")
    data = (folder / "person_c.png").read_bytes()
    (folder / "person_c.png").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not an image")
    return folder


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def run(argv, logs):
    return main(["submission", *argv, "--logs", str(logs), "--set", "MIN_COMPONENT_SIZE=0"])


def test_truncated_png_is_an_error_row_named_on_stderr_with_exit_2(logs, test_images, tmp_path,
                                                                  capsys):
    """If this fails, the Kaggle CSV silently lacks the row of an unreadable image, or the
    command reports success."""
    out = tmp_path / "submission.csv"
    assert run(["--image", str(test_images), "--out", str(out)], logs) == 2
    rows = read_rows(out)
    assert rows[0] == ["id", "rle_mask"]
    assert [row[0] for row in rows[1:]] == ["person_a", "person_b", "person_c"]
    assert rows[3] == ["person_c", ""]
    decode_rle(rows[2][1], (21, 35))  # a valid RLE of the 35x21 image
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith("error row person_c (") and "not a readable image" in line
               for line in err)
    assert "notes.txt" in "\n".join(err)  # not an image file: listed, not a row
    assert err[-1].startswith("error: 1 of 3 image(s) could not be read (person_c)")


def test_test_csv_fixes_ids_and_order(logs, test_images, tmp_path, capsys):
    """A Kaggle sample submission (``ImageId`` + an empty mask column) decides the ids, their
    order and their spelling; ids match files by stem or by name; a missing file is a row."""
    listing = tmp_path / "sample_submission.csv"
    listing.write_text("ImageId,EncodedPixels\nperson_b,\nperson_x,\nperson_a.jpg,\n")
    out = tmp_path / "submission.csv"
    assert run(["--test-csv", str(listing), "--image", str(test_images), "--out", str(out)],
               logs) == 2
    rows = read_rows(out)
    assert [row[0] for row in rows[1:]] == ["person_b", "person_x", "person_a.jpg"]
    assert rows[2] == ["person_x", ""]
    assert "error row person_x (no file): no such image file" in capsys.readouterr().err


def test_a_readable_folder_exits_0(logs, tmp_path):
    folder = tmp_path / "ok"
    folder.mkdir()
    Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(folder / "only.png")
    out = tmp_path / "submission.csv"
    assert run(["--image", str(folder), "--out", str(out)], logs) == 0
    assert [row[0] for row in read_rows(out)] == ["id", "only"]


@pytest.mark.parametrize("text, expected", [
    ("id,rle_mask\na,\nb,1 3\n", ["a", "b"]),
    ("\ufeffImageId,EncodedPixels\r\nx,\r\n", ["x"]),
    ("img.png\nimg2.jpg\n", ["img.png", "img2.jpg"]),
    ("rle_mask,image_id\n,q\n", ["q"]),
])
def test_id_lists_accept_the_header_names_people_have(tmp_path, text, expected):
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    assert load_submission_ids(path) == expected


def test_an_id_list_without_an_id_column_names_the_expected_headers(logs, tmp_path, capsys):
    path = tmp_path / "ids.csv"
    path.write_text("picture,mask\na,\n")
    with pytest.raises(ValueError, match=r"names no id column; expected a header with one of "
                                         r"\['id', 'imageid'"):
        load_submission_ids(path)
    assert run(["--test-csv", str(path), "--image", str(tmp_path)], logs) == 2
    assert "names no id column" in capsys.readouterr().err


def test_validation_accepts_error_rows_only_with_an_empty_mask(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,rle_mask\na,1 2\nbad,\n")
    validate_submission(path, ["a", "bad"], {"a": (2, 2)})
    path.write_text("id,rle_mask\na,1 2\nbad,1 1\n")
    with pytest.raises(ValueError, match="error row must have an empty mask"):
        validate_submission(path, ["a", "bad"], {"a": (2, 2)})


def test_submission_needs_images_or_a_list(logs, capsys):
    assert run([], logs) == 2
    assert "needs --image DIR" in capsys.readouterr().err
