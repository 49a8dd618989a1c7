"""CSV parsing: header or not, pixel or normalized, any classes, several rows, bad rows."""

import csv
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from localization.annotations import AnnotationError, load_annotations, load_filename_list

WIDTH, HEIGHT = 80, 40


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    """Three 80x40 images: two JPEGs in images/ and a grayscale PNG at the top level."""
    root = tmp_path_factory.mktemp("csvdata")
    (root / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.new("RGB", (WIDTH, HEIGHT), (90, 90, 90)).save(root / "images" / name)
    Image.new("L", (WIDTH, HEIGHT), 30).save(root / "c.png")
    return root


def write_csv(root, rows, name="train.csv"):
    path = root / name
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_headerless_pixel_csv_with_three_classes(image_dir):
    """Roboflow/RetinaNet export: no header, pixel boxes, three mask classes."""
    path = write_csv(image_dir, [
        ["a.jpg", 8, 4, 40, 20, "with_mask"],
        ["b.jpg", 0, 0, 80, 40, "without_mask"],
        ["c.png", 20, 10, 60, 30, "mask_weared_incorrect"],
    ])
    table = load_annotations(path)
    assert table.coordinates == "pixel"
    assert table.class_names == ["mask_weared_incorrect", "with_mask", "without_mask"]
    assert [s.filename for s in table.samples] == ["a.jpg", "b.jpg", "c.png"]
    np.testing.assert_allclose(table.samples[0].box, [0.1, 0.1, 0.5, 0.5])
    assert table.samples[0].image_size == (WIDTH, HEIGHT)
    assert table.samples[2].class_index == 0


def test_header_with_other_column_order_and_normalized_coordinates(image_dir):
    path = write_csv(image_dir, [
        ["class", "filename", "xmax", "ymax", "xmin", "ymin"],
        ["mask", "a.jpg", 0.5, 0.6, 0.1, 0.2],
    ])
    table = load_annotations(path, class_names=["no-mask", "mask"])
    assert table.coordinates == "normalized"
    np.testing.assert_allclose(table.samples[0].box, [0.1, 0.2, 0.5, 0.6])
    assert table.samples[0].class_index == 1


def test_coordinate_mode_can_be_forced(image_dir):
    """A pixel box that happens to lie in [0, 1] is read as pixels when told so."""
    path = write_csv(image_dir, [["a.jpg", 0, 0, 1, 1, "mask"]])
    table = load_annotations(path, coordinates="pixel")
    np.testing.assert_allclose(table.samples[0].box, [0, 0, 1 / WIDTH, 1 / HEIGHT])


def test_several_rows_per_image_follow_the_policy(image_dir):
    path = write_csv(image_dir, [
        ["a.jpg", 0, 0, 10, 10, "mask"],
        ["a.jpg", 10, 10, 50, 30, "no-mask"],
        ["b.jpg", 0, 0, 20, 20, "mask"],
        ["a.jpg", 60, 0, 70, 10, "mask"],
    ])
    largest = load_annotations(path, multi_box_policy="largest")
    assert [(s.filename, s.line) for s in largest.samples] == [("a.jpg", 2), ("b.jpg", 3)]
    per_row = load_annotations(path, multi_box_policy="per_row")
    assert [s.line for s in per_row.samples] == [1, 2, 3, 4]


BAD_ROWS = [
    (["a.jpg", 30, 5, 10, 20, "mask"], "empty box"),
    (["a.jpg", 5, 5, 90, 20, "mask"], "outside"),
    (["missing.jpg", 1, 1, 5, 5, "mask"], "not found"),
    (["a.jpg", 1, 1, 5, 5, "helmet"], "unknown class"),
    (["a.jpg", "one", 1, 5, 5, "mask"], "non-numeric"),
    (["a.jpg", 1, 1, 5], "columns"),
]


def bad_csv(root):
    rows = [["filename", "xmin", "ymin", "xmax", "ymax", "class"], ["b.jpg", 1, 1, 9, 9, "mask"]]
    return write_csv(root, rows + [row for row, _ in BAD_ROWS], name="bad.csv")


def test_bad_rows_are_skipped_and_reported_with_line_numbers(image_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="localization.annotations"):
        table = load_annotations(bad_csv(image_dir), class_names=["mask", "no-mask"])
    assert [s.line for s in table.samples] == [2]
    assert [p.line for p in table.problems] == [3, 4, 5, 6, 7, 8]
    for problem, (_, reason) in zip(table.problems, BAD_ROWS, strict=True):
        assert reason in problem.reason
    assert "line 5" in caplog.text and "missing.jpg" in caplog.text


def test_bad_rows_can_reject_the_whole_file(image_dir):
    with pytest.raises(AnnotationError, match="line 3: empty box") as error:
        load_annotations(bad_csv(image_dir), class_names=["mask", "no-mask"], on_bad_row="error")
    assert len(error.value.problems) == 6


def test_a_file_without_usable_rows_is_an_error(image_dir):
    path = write_csv(image_dir, [["missing.jpg", 1, 1, 5, 5, "mask"]], name="none.csv")
    with pytest.raises(AnnotationError, match="no usable rows"):
        load_annotations(path)


@pytest.mark.parametrize("kwargs", [{"coordinates": "percent"}, {"multi_box_policy": "first"},
                                    {"on_bad_row": "ignore"}])
def test_unknown_options_are_rejected(image_dir, kwargs):
    path = write_csv(image_dir, [["a.jpg", 1, 1, 5, 5, "mask"]], name="ok.csv")
    with pytest.raises(ValueError, match="must be one of"):
        load_annotations(path, **kwargs)


pixel_box = st.tuples(st.integers(0, WIDTH - 1), st.integers(0, HEIGHT - 1),
                      st.integers(1, WIDTH), st.integers(1, HEIGHT))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a.jpg", "b.jpg"]), pixel_box,
                          st.sampled_from(["mask", "no-mask"])), min_size=1, max_size=8),
       st.booleans())
def test_every_row_is_either_a_valid_sample_or_a_reported_problem(image_dir, rows, header):
    """Property: nothing is dropped silently and every kept box is valid and normalized."""
    body = [[name, *box, label] for name, box, label in rows]
    head = [["filename", "xmin", "ymin", "xmax", "ymax", "class"]] if header else []
    path = write_csv(image_dir, head + body, name="prop.csv")
    try:
        table = load_annotations(path, coordinates="pixel", multi_box_policy="per_row")
    except AnnotationError as error:
        assert len(error.problems) == len(rows)
        return
    assert len(table.samples) + len(table.problems) == len(rows)
    for sample in table.samples:
        x1, y1, x2, y2 = sample.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        row = rows[sample.line - 1 - int(header)]
        np.testing.assert_allclose(np.array(sample.box) * ([WIDTH, HEIGHT] * 2), row[1])


def test_filename_list_skips_its_header(image_dir):
    path = write_csv(image_dir, [["filename"], ["a.jpg"], ["c.png"]], name="test.csv")
    assert load_filename_list(path) == ["a.jpg", "c.png"]


def test_roboflow_tensorflow_csv_with_bom_crlf_and_size_columns(image_dir):
    """Face-mask exports (Roboflow "TensorFlow CSV") carry width/height columns, a UTF-8 BOM
    and CRLF line ends; if this fails, such a file is read by position and every box is wrong."""
    path = image_dir / "roboflow.csv"
    path.write_bytes("\ufefffilename,width,height,class,xmin,ymin,xmax,ymax\r\n"
                     "a.jpg,80,40,with_mask,8,4,40,20\r\n"
                     "b.jpg,80,40,without_mask,40,20,80,40\r\n".encode("utf-8"))
    table = load_annotations(path, on_bad_row="error")
    assert table.coordinates == "pixel"
    assert table.class_names == ["with_mask", "without_mask"]
    np.testing.assert_allclose([s.box for s in table.samples],
                               [[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    assert [s.class_index for s in table.samples] == [0, 1]


def test_negative_coordinates_are_reported_outside_the_image(image_dir):
    """If this fails, a box starting left of the image is silently clipped instead of reported."""
    path = write_csv(image_dir, [["a.jpg", -5, 2, 30, 20, "mask"], ["b.jpg", 1, 1, 9, 9, "mask"]],
                     name="negative.csv")
    table = load_annotations(path, coordinates="pixel")
    assert [s.filename for s in table.samples] == ["b.jpg"]
    assert [(p.line, "outside" in p.reason) for p in table.problems] == [(1, True)]


def test_largest_policy_keeps_the_first_of_equally_large_boxes(image_dir):
    """If this fails, which face of a tie is trained on depends on row order in surprising ways."""
    path = write_csv(image_dir, [["a.jpg", 0, 0, 10, 10, "mask"],
                                 ["a.jpg", 50, 20, 60, 30, "no-mask"]], name="tie.csv")
    table = load_annotations(path, multi_box_policy="largest")
    assert [(s.line, s.class_index) for s in table.samples] == [(1, 0)]
