"""PASCAL VOC XML folders (Kaggle's face-mask layout): parsing, bad files, CSV parity, training."""

import csv
import dataclasses
import logging
from xml.sax.saxutils import escape

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from localization.annotations import AnnotationError, load_annotations
from localization.cli import main
from localization.voc import find_voc_folder, load_voc_annotations

CLASSES = ("mask_weared_incorrect", "with_mask", "without_mask")
SIZES = {"maksssksksss0.png": (80, 40), "maksssksksss1.png": (50, 60)}


def voc_xml(filename, size, objects, optional=True):
    """A VOC file as Kaggle's set writes it; ``objects`` are (class, (xmin, ymin, xmax, ymax))
    in VOC's 1-based pixels, with (``optional``) the other elements real files carry."""
    parts = [f"<annotation><folder>images</folder><filename>{escape(filename)}</filename>",
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>",
             "<segmented>0</segmented>" if optional else ""]
    for name, box in objects:
        coords = "".join(f"<{tag}>{value}</{tag}>"
                         for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True))
        flags = ("<pose>Unspecified</pose><truncated>0</truncated><occluded>0</occluded>"
                 "<difficult>0</difficult>") if optional else ""
        parts.append(f"<object><name>{escape(name)}</name>{flags}"
                     f"<bndbox>{coords}</bndbox></object>")
    return "".join(parts) + "</annotation>"


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    """``images/`` with two PNGs and an empty ``annotations/`` folder."""
    root = tmp_path_factory.mktemp("voc")
    (root / "images").mkdir()
    (root / "annotations").mkdir()
    for name, size in SIZES.items():
        Image.new("RGB", size, (90, 90, 90)).save(root / "images" / name)
    return root


def write_annotations(root, files):
    """Replace ``root/annotations/*.xml`` with ``files`` ({xml name: text})."""
    folder = root / "annotations"
    for old in folder.glob("*.xml"):
        old.unlink()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_kaggle_layout_is_found_and_read(voc_root):
    """Kaggle's face-mask folder (images/ + annotations/): if this fails, face_mask.py cannot
    read the dataset people download."""
    folder = write_annotations(voc_root, {
        "maksssksksss0.xml": voc_xml("maksssksksss0.png", (80, 40),
                                     [("with_mask", (9, 5, 40, 20)),
                                      ("without_mask", (41, 21, 80, 40))]),
        "maksssksksss1.xml": voc_xml("maksssksksss1.png", (50, 60),
                                     [("mask_weared_incorrect", (1, 1, 50, 60))]),
    })
    assert find_voc_folder(voc_root) == folder
    table = load_voc_annotations(folder, multi_box_policy="per_row", on_bad_row="error")
    assert table.class_names == list(CLASSES)
    assert table.coordinates == "pixel" and table.source == folder
    assert [(s.filename, s.line, s.class_index) for s in table.samples] == [
        ("maksssksksss0.png", 1, 1), ("maksssksksss0.png", 2, 2), ("maksssksksss1.png", 1, 0)]
    # 1-based inclusive pixels: (9, 5, 40, 20) covers pixels 8..39 x 4..19 of the 80x40 image.
    np.testing.assert_allclose([s.box for s in table.samples],
                               [[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0, 0, 1, 1]])
    assert table.samples[2].image_size == (50, 60)


BAD_FILES = {
    "a_broken.xml": ("<annotation><filename>maksssksksss0.png</filename><object>",
                     "a_broken.xml: not well-formed XML"),
    "b_nobox.xml": (voc_xml("maksssksksss0.png", (80, 40), [("with_mask", (1, 1, 5, 5))])
                    .replace("<bndbox>", "<box>").replace("</bndbox>", "</box>"),
                    "b_nobox.xml object 1: no <bndbox>"),
    "c_outside.xml": (voc_xml("maksssksksss0.png", (80, 40), [("with_mask", (10, 10, 81, 20))]),
                      "c_outside.xml object 1: box (9.0, 9.0, 81.0, 20.0) lies outside"),
    "d_size.xml": (voc_xml("maksssksksss0.png", ("big", 40), [("with_mask", (1, 1, 5, 5))]),
                   "d_size.xml: <size><width> is 'big'"),
    "e_wrongsize.xml": (voc_xml("maksssksksss0.png", (160, 80), [("with_mask", (1, 1, 5, 5))]),
                        "e_wrongsize.xml object 1: <size> says 160x80 but the image is 80x40"),
    "f_nan.xml": (voc_xml("maksssksksss0.png", (80, 40), [("with_mask", (1, 1, "x", 5))]),
                  "f_nan.xml object 1: <bndbox><xmax> is 'x', expected a number"),
    "g_empty.xml": ("<annotation><filename>maksssksksss0.png</filename></annotation>",
                    "g_empty.xml: no <object>"),
    "h_noimage.xml": (voc_xml("gone.png", (80, 40), [("with_mask", (1, 1, 5, 5))]),
                      "h_noimage.xml object 1: image 'gone.png' not found"),
}


def test_bad_files_are_reported_by_name_and_element_and_the_rest_loads(voc_root, caplog):
    """If this fails, one broken XML file stops the whole dataset, or is dropped unexplained."""
    good = voc_xml("maksssksksss1.png", (50, 60), [("with_mask", (1, 1, 20, 20))])
    folder = write_annotations(voc_root, {"z_good.xml": good,
                                          **{name: text for name, (text, _) in BAD_FILES.items()}})
    with caplog.at_level(logging.WARNING, logger="localization.annotations"):
        table = load_voc_annotations(folder, class_names=CLASSES)
    assert [s.filename for s in table.samples] == ["maksssksksss1.png"]
    reports = [str(problem) for problem in table.problems]
    assert len(reports) == len(BAD_FILES)
    for report, (_, expected) in zip(reports, BAD_FILES.values(), strict=True):
        assert report.startswith(expected), report
    assert "b_nobox.xml object 1: no <bndbox>" in caplog.text
    with pytest.raises(AnnotationError, match="8 bad object"):
        load_voc_annotations(folder, class_names=CLASSES, on_bad_row="error")


def test_missing_size_and_zero_coordinates_are_taken_from_the_image(voc_root):
    """Files written by 0-based tools (xmin=0) or without <size> load instead of failing."""
    text = voc_xml("maksssksksss0.png", (0, 0), [("with_mask", (0, 0, 80, 40))])
    table = load_voc_annotations(write_annotations(voc_root, {"x.xml": text}), on_bad_row="error")
    assert table.samples[0].box == (0.0, 0.0, 1.0, 1.0)


def test_image_is_found_by_the_xml_stem_when_filename_is_stale(voc_root):
    """LabelImg keeps the original <filename> after a rename; the XML's own stem then names it."""
    text = voc_xml("IMG_2041.JPG", (50, 60), [("with_mask", (1, 1, 10, 10))])
    table = load_voc_annotations(write_annotations(voc_root, {"maksssksksss1.xml": text}),
                                 on_bad_row="error")
    assert table.samples[0].filename == "maksssksksss1.png"


# Boxes inside both images of the fixture (the smaller sides are 50 and 40).
voc_box = st.tuples(st.integers(1, 40), st.integers(1, 30)).flatmap(
    lambda corner: st.tuples(st.just(corner[0]), st.just(corner[1]),
                             st.integers(corner[0], 50), st.integers(corner[1], 40)))
voc_file = st.tuples(st.lists(st.tuples(st.sampled_from(CLASSES), voc_box), min_size=1,
                              max_size=4), st.booleans())


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(voc_file, min_size=1, max_size=len(SIZES)),
       st.sampled_from(["largest", "per_row"]))
def test_random_valid_voc_files_read_back_as_written(voc_root, files, policy):
    """Round trip: every object of a valid file comes back with its class and its box (VOC's
    1-based pixels as pixel corners), files in name order; "largest" keeps the first of the
    largest boxes of each image. Optional elements (pose, difficult, ...) change nothing."""
    images = list(SIZES)[:len(files)]
    folder = write_annotations(voc_root, {
        name.replace(".png", ".xml"): voc_xml(name, SIZES[name], objects, optional=optional)
        for name, (objects, optional) in zip(images, files, strict=True)})
    table = load_voc_annotations(folder, class_names=CLASSES, multi_box_policy=policy,
                                 on_bad_row="error")
    expected = []
    for name, (objects, _) in zip(images, files, strict=True):
        width, height = SIZES[name]
        boxes = [(name, CLASSES.index(label),
                  ((x1 - 1) / width, (y1 - 1) / height, x2 / width, y2 / height))
                 for label, (x1, y1, x2, y2) in objects]
        if policy == "largest":
            areas = [(box[2] - box[0]) * (box[3] - box[1]) for _, _, box in boxes]
            boxes = [boxes[areas.index(max(areas))]]
        expected += boxes
    assert [(s.filename, s.class_index) for s in table.samples] == [e[:2] for e in expected]
    np.testing.assert_allclose([s.box for s in table.samples], [e[2] for e in expected],
                               atol=1e-12)


def test_same_boxes_as_csv_and_as_voc_give_identical_samples(voc_root, tmp_path):
    """If this fails, training on the Kaggle XML and on a CSV export of it trains on different
    boxes or faces (the multi-box rule must be the CSV's)."""
    objects = {"maksssksksss0.png": [("with_mask", (9, 5, 40, 20)),
                                     ("without_mask", (3, 3, 60, 30)),
                                     ("with_mask", (1, 1, 58, 29))],
               "maksssksksss1.png": [("mask_weared_incorrect", (5, 5, 20, 20))]}
    folder = write_annotations(voc_root, {
        name.replace(".png", ".xml"): voc_xml(name, SIZES[name], boxes)
        for name, boxes in objects.items()})
    csv_path = voc_root / "same.csv"
    with open(csv_path, "w", newline="") as handle:
        csv.writer(handle).writerows([name, x1 - 1, y1 - 1, x2, y2, label]
                                     for name, boxes in objects.items()
                                     for label, (x1, y1, x2, y2) in boxes)
    try:
        for policy in ("largest", "per_row"):
            from_voc = load_voc_annotations(folder, multi_box_policy=policy)
            from_csv = load_annotations(csv_path, multi_box_policy=policy, coordinates="pixel")
            assert from_voc.class_names == from_csv.class_names
            strip = [dataclasses.replace(s, line=0) for s in from_voc.samples]
            assert strip == [dataclasses.replace(s, line=0) for s in from_csv.samples]
    finally:
        csv_path.unlink()
    assert len(from_voc.samples) == 4


def synthetic_voc(csv_dataset, root):
    """The generated CSV dataset rewritten as a Kaggle-style VOC folder (images symlinked)."""
    (root / "annotations").mkdir(parents=True)
    (root / "images").symlink_to(csv_dataset / "images")
    with open(csv_dataset / "train.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            box = (int(row["xmin"]) + 1, int(row["ymin"]) + 1, int(row["xmax"]), int(row["ymax"]))
            size = Image.open(csv_dataset / "images" / row["filename"]).size
            (root / "annotations" / row["filename"].replace(".png", ".xml")).write_text(
                voc_xml(row["filename"], size, [(row["class"], box)]))
    return root


def test_face_mask_trains_evaluates_and_predicts_on_a_voc_folder(synthetic_dataset, tmp_path,
                                                                 capsys):
    """`face_mask.py train --preset tiny --epochs 1` on Kaggle's layout, then evaluate/predict
    find the same annotations (format detected from annotations/*.xml)."""
    dataset = synthetic_voc(synthetic_dataset, tmp_path / "kaggle")
    logs = tmp_path / "logs"
    assert main(["train", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--epochs", "1", "--set", "TENSORBOARD=False"]) == 0
    assert "classes: ['disk', 'square']; 18 train / 6 val" in capsys.readouterr().out
    assert main(["evaluate", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--split", "all", "--out", str(tmp_path / "m.json")]) == 0
    assert '"images": 24' in (tmp_path / "m.json").read_text()
    assert main(["predict", "--dataset", str(dataset), "--logs", str(logs), "--out",
                 str(tmp_path / "pred"), "--image",
                 str(dataset / "images" / "sample_0000.png")]) == 0
    assert '"ground_truth": "' in (tmp_path / "pred" / "predictions.json").read_text()


def test_a_folder_with_both_formats_asks_which(tmp_path, capsys):
    """A training CSV beside annotations/*.xml is ambiguous; a test.csv (the submission list)
    is not."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "a.xml").write_text("<annotation/>")
    (tmp_path / "test.csv").write_text("filename\na.png\n")
    assert main(["train", "--dataset", str(tmp_path), "--logs", str(tmp_path / "l")]) == 2
    assert "a.xml: no <object>" in capsys.readouterr().err
    (tmp_path / "train.csv").write_text("a.png,1,1,2,2,mask\n")
    assert main(["train", "--dataset", str(tmp_path), "--logs", str(tmp_path / "l")]) == 2
    assert "--format voc" in capsys.readouterr().err


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 10_000), st.text(max_size=8), st.integers(0, 4))
def test_damaged_files_give_valid_samples_or_reported_problems(voc_root, cut, junk, field):
    """Fuzz: a file cut short or with one value replaced by junk never crashes the reader;
    every kept box is valid and every dropped object is reported."""
    text = voc_xml("maksssksksss0.png", (80, 40), [("with_mask", (9, 5, 40, 20))])
    tag = ("width", "xmin", "ymin", "xmax", "name")[field]
    value = text.split(f"<{tag}>")[1].split("<")[0]
    damaged = text.replace(f"<{tag}>{value}<", f"<{tag}>{escape(junk)}<")[:cut]
    folder = write_annotations(voc_root, {"fuzz.xml": damaged})
    try:
        table = load_voc_annotations(folder)
    except AnnotationError as error:
        assert len(error.problems) == 1 and error.problems[0].file == "fuzz.xml"
        return
    assert len(table.samples) == 1 and not table.problems
    x1, y1, x2, y2 = table.samples[0].box
    assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
