"""samples/face_mask.py end to end on a generated dataset: train, evaluate, predict, submission."""

import csv
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from localization.cli import main
from localization.data import load_image_rgb, resize_image
from localization.training import load_localizer

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "face_mask.py"


@pytest.fixture(scope="module")
def trained(synthetic_dataset, tmp_path_factory):
    """One tiny 2-epoch training run shared by the CLI tests; returns (dataset, logs)."""
    logs = tmp_path_factory.mktemp("logs")
    status = main(["train", "--dataset", str(synthetic_dataset), "--logs", str(logs),
                   "--preset", "tiny", "--epochs", "2", "--set", "CLASS_WEIGHTS=(0.35, 0.65)"])
    assert status == 0
    return synthetic_dataset, logs


def test_train_writes_model_sidecar_history_and_curves(trained):
    _, logs = trained
    for name in ("localizer.keras", "localizer.json", "history.csv", "curves.png"):
        assert (logs / name).is_file(), name
    sidecar = json.loads((logs / "localizer.json").read_text())
    assert sidecar["class_names"] == ["disk", "square"]
    assert sidecar["config"]["CLASS_WEIGHTS"] == [0.35, 0.65]
    assert len(sidecar["mean"]) == 3


def test_train_writes_tensorboard_losses_per_epoch(trained):
    """Users open TensorBoard on LOGS/tensorboard and expect the loss curves of both epochs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, logs = trained
    events = EventAccumulator(str(logs / "tensorboard" / "train"))
    events.Reload()
    assert "epoch_loss" in events.Tags()["tensors"]
    assert [event.step for event in events.Tensors("epoch_loss")] == [0, 1]


def test_evaluate_writes_metrics_json(trained, tmp_path, capsys):
    """evaluate scores the whole folder by default, says how many, and notes that it is the
    training folder (it used to score only its val share, 43 of 169 images, without a word)."""
    dataset, logs = trained
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["images"] == metrics["images_scored"] == 24 and metrics["split"] == "all"
    assert set(metrics["per_class"]) == {"disk", "square"}
    assert 0.0 <= metrics["accuracy_at_iou50"] <= metrics["accuracy"] <= 1.0
    printed = capsys.readouterr().out
    assert "acc@IoU.5" in printed and "scored 24 images (split: all)" in printed
    assert "note: the model was trained on this folder" in printed
    baselines = metrics["baselines"]  # what the model must beat, printed beside it
    assert baselines["training_images"] == 18
    assert baselines["majority_class"]["class"] in {"disk", "square"}
    assert 0.0 < baselines["majority_class"]["accuracy"] < 1.0
    assert 0.0 < baselines["mean_box"]["mean_iou"] < 1.0
    assert "baselines (from the 18 training images" in printed


def test_evaluate_split_val_scores_the_held_out_share(trained, tmp_path, capsys):
    """--split val scores exactly the images train held out, without the training note."""
    from localization.annotations import load_annotations
    from localization.config import tiny_config
    from localization.data import stratified_split

    dataset, logs = trained
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--split", "val", "--out", str(out)]) == 0
    config = tiny_config()
    samples = load_annotations(dataset / "train.csv", dataset).samples
    val = stratified_split(samples, config.VAL_FRACTION, config.SEED)[1]
    metrics = json.loads(out.read_text())
    assert 0 < metrics["images_scored"] == len(val) < 24 and metrics["split"] == "val"
    printed = capsys.readouterr().out
    assert f"scored {len(val)} images (split: val)" in printed and "note:" not in printed


def test_evaluate_other_folder_scores_every_image_without_the_note(trained, tmp_path, capsys):
    """A folder the model was not trained on: all of it, and no training-images note."""
    from localization.synthetic import write_synthetic_dataset

    _, logs = trained
    write_synthetic_dataset(tmp_path / "unseen", count=6, size=(64, 48), seed=9)
    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--dataset", str(tmp_path / "unseen"), "--logs", str(logs),
                 "--preset", "tiny", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["images_scored"] == 6
    printed = capsys.readouterr().out
    assert "scored 6 images (split: all)" in printed and "note:" not in printed


def test_predict_draws_ground_truth_green_and_prediction_red(trained, tmp_path):
    dataset, logs = trained
    image = dataset / "images" / "sample_0000.png"
    assert main(["predict", "--dataset", str(dataset), "--logs", str(logs), "--image", str(image),
                 "--out", str(tmp_path)]) == 0
    drawn = np.asarray(Image.open(tmp_path / "sample_0000.png").convert("RGB")).astype(int)
    assert drawn.shape == np.asarray(Image.open(image)).shape
    green = (drawn[..., 1] > 150) & (drawn[..., 0] < 40) & (drawn[..., 2] < 40)
    red = (drawn[..., 0] > 200) & (drawn[..., 1] < 30) & (drawn[..., 2] < 30)
    assert green.any() and red.any()
    record = json.loads((tmp_path / "predictions.json").read_text())[0]
    assert record["ground_truth"] in ("disk", "square")


def test_submission_boxes_are_in_each_original_image_size(trained, tmp_path):
    """Test images of other sizes get boxes scaled to their own width and height."""
    dataset, logs = trained
    test_dir = tmp_path / "test"
    (test_dir / "images").mkdir(parents=True)
    source = Image.open(dataset / "images" / "sample_0001.png")
    sizes = {"wide.png": (160, 48), "tall.jpg": (40, 120)}
    for name, size in sizes.items():
        source.resize(size).save(test_dir / "images" / name)
    (test_dir / "test.csv").write_text("filename\nwide.png\ntall.jpg\n")
    out = tmp_path / "submission.csv"
    assert main(["submission", "--dataset", str(test_dir), "--logs", str(logs),
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["filename", "class", "xmin", "ymin", "xmax", "ymax"]
    assert [row["filename"] for row in rows] == ["wide.png", "tall.jpg"]

    model, class_names = load_localizer(logs / "localizer.keras")
    for row in rows:
        width, height = sizes[row["filename"]]
        image = resize_image(load_image_rgb(test_dir / "images" / row["filename"]), (32, 32))
        box = model.predict(image[None].astype("float32"), verbose=0)["box"][0]
        expected = np.rint(box * [width, height, width, height])
        actual = [int(row[key]) for key in ("xmin", "ymin", "xmax", "ymax")]
        np.testing.assert_allclose(actual, expected)
        assert row["class"] in class_names


def run_sample(argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["face_mask.py", *argv])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(SAMPLE), run_name="__main__")
    return exit_info.value.code


def test_sample_script_reports_bad_csv_rows_with_exit_status_2(synthetic_dataset, tmp_path,
                                                               monkeypatch, capsys):
    rows = (synthetic_dataset / "train.csv").read_text().splitlines()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "images").symlink_to(synthetic_dataset / "images")
    (bad / "train.csv").write_text("\n".join(rows[:3] + ["sample_0003.png,50,5,10,20,disk"]))
    status = run_sample(["train", "--dataset", str(bad), "--set", "ON_BAD_ROW='error'",
                         "--logs", str(tmp_path / "logs")], monkeypatch)
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert "line 4: empty box" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("argv,reason", [
    (["train", "--dataset", "/nonexistent/dir"], "dataset folder not found"),
    (["train", "--dataset", ".", "--set", "NOT_A_FIELD=1"], "unknown setting"),
    (["evaluate", "--dataset", ".", "--logs", "/nonexistent/logs"], "no localizer.keras"),
])
def test_bad_arguments_exit_2_with_one_line(argv, reason, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert reason in error and len(error.splitlines()) == 1
