"""The person_segmentation sample end to end on a generated dataset, plus its error paths."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet.cli import main
from unet.rle import decode_rle

REPO = Path(__file__).resolve().parents[2]
TINY = ["--set", "IMAGE_SIZE=32", "--set", "DEPTH=2", "--set", "BASE_FILTERS=4",
        "--set", "BATCH_SIZE=4", "--set", "RUN_EAGERLY=True", "--set", "MIN_COMPONENT_SIZE=0"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """(dataset root, logs dir) after a 2-epoch attention U-Net training run."""
    root = tmp_path_factory.mktemp("cli")
    assert main(["make-synthetic", "--out", str(root / "people"), "--count", "10",
                 "--size", "48"]) == 0
    logs = root / "logs"
    status = main(["train", "--dataset", str(root / "people"), "--logs", str(logs),
                   "--epochs", "2", "--set", "ARCH=attention", *TINY])
    assert status == 0
    return root, logs


def test_training_writes_checkpoints_history_and_curves(trained_run):
    _, logs = trained_run
    for name in ("best.keras", "last.keras", "history.csv", "training_curves.png",
                 "config.json"):
        assert (logs / name).is_file(), name
    assert json.loads((logs / "config.json").read_text())["ARCH"] == "attention"


def test_training_writes_tensorboard_losses_per_epoch(trained_run):
    """Users open TensorBoard on LOGS/tensorboard and expect the loss curves of both epochs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, logs = trained_run
    events = EventAccumulator(str(logs / "tensorboard" / "train"))
    events.Reload()
    assert "epoch_loss" in events.Tags()["tensors"]
    assert [event.step for event in events.Tensors("epoch_loss")][:2] == [0, 1]


def test_resume_continues_the_epoch_counter(trained_run):
    root, logs = trained_run
    assert main(["train", "--dataset", str(root / "people"), "--logs", str(logs),
                 "--weights", "last", "--epochs", "1"]) == 0
    with open(logs / "history.csv") as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle)]
    assert epochs == ["0", "1", "2"]


def test_evaluate_writes_metrics_json(trained_run, capsys):
    """evaluate on a folder scores all of it by default, says so, and notes that the folder is
    the training one (a user would otherwise read a training-set score as a test score)."""
    root, logs = trained_run
    out = root / "metrics.json"
    assert main(["evaluate", "--dataset", str(root / "people"), "--logs", str(logs),
                 "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["images"] == metrics["images_scored"] == 10 and metrics["split"] == "all"
    assert 0 <= metrics["per_image"]["dice"] <= 1 and "dataset" in metrics
    printed = capsys.readouterr().out
    assert "pixel_accuracy" in printed and "scored 10 images (split: all)" in printed
    assert "note: the model was trained on this data" in printed
    # The trivial baselines beside the model: predicting all background is right on exactly
    # the background pixels, predicting all person has Dice 2|T| / (|T| + H*W) per image.
    baselines = metrics["baselines"]
    fg, bg = baselines["all_foreground"]["dataset"], baselines["all_background"]["dataset"]
    assert bg["pixel_accuracy"] == pytest.approx(1.0 - fg["pixel_accuracy"])
    assert bg["dice"] == 0.0 and 0.0 < fg["dice"] < 1.0
    assert "all fg" in printed and "all bg" in printed


@pytest.mark.parametrize(("split", "count"), [("val", 2), ("train", 8)])
def test_evaluate_split_scores_the_share_training_used(trained_run, capsys, split, count):
    """--split val scores the 20 % train held out (the same images), --split train the rest."""
    from unet.config import SegmentationConfig
    from unet.data import load_folder_pairs, split_samples

    root, logs = trained_run
    out = root / f"metrics_{split}.json"
    assert main(["evaluate", "--dataset", str(root / "people"), "--logs", str(logs),
                 "--split", split, "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["images_scored"] == count and metrics["split"] == split
    config = SegmentationConfig.load(logs / "config.json")
    shares = split_samples(load_folder_pairs(root / "people")[0], config.VAL_FRACTION, config.SEED)
    assert sorted(score["image"] for score in metrics["per_image_scores"]) == sorted(
        sample.name for sample in shares[split == "val"])
    printed = capsys.readouterr().out
    assert f"scored {count} images (split: {split})" in printed and "note:" not in printed


def test_evaluate_other_folder_scores_every_image_without_the_note(trained_run, dataset_writer,
                                                                     capsys):
    """A folder the model never saw: all of it is scored and no training-images note."""
    root, logs = trained_run
    dataset_writer(root / "unseen", count=3, size=48, seed=5)
    out = root / "metrics_unseen.json"
    assert main(["evaluate", "--dataset", str(root / "unseen"), "--logs", str(logs),
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["images_scored"] == 3
    printed = capsys.readouterr().out
    assert "scored 3 images (split: all)" in printed and "note:" not in printed


def test_batch_commands_skip_bad_files(trained_run, capsys):
    root, logs = trained_run
    inputs = root / "inputs"
    inputs.mkdir()
    Image.fromarray(np.zeros((21, 35, 3), np.uint8)).save(inputs / "odd.png")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(inputs / "grey.jpg")
    (inputs / "corrupt.png").write_bytes(b"\x89PNG not really")
    (inputs / "notes.txt").write_text("hello")
    assert main(["predict", "--image", str(inputs), "--logs", str(logs),
                 "--out", str(root / "masks")]) == 0
    err = capsys.readouterr().err
    assert "corrupt.png" in err and "notes.txt" in err
    assert Image.open(root / "masks" / "odd_mask.png").size == (35, 21)

    submission = root / "submission.csv"
    assert main(["submission", "--image", str(inputs), "--logs", str(logs),
                 "--out", str(submission)]) == 2  # corrupt.png: an error row, not a gap
    rows = list(csv.reader(submission.open()))
    assert rows[0] == ["id", "rle_mask"]
    assert [r[0] for r in rows[1:]] == ["corrupt", "grey", "odd"] and rows[1] == ["corrupt", ""]
    assert decode_rle(rows[3][1], (21, 35)).shape == (21, 35)

    assert main(["remove-background", "--image", str(inputs / "odd.png"), "--logs", str(logs),
                 "--out", str(root / "cut"), "--background", "white"]) == 0
    cutout = Image.open(root / "cut" / "odd.png")
    assert cutout.mode == "RGBA" and cutout.size == (35, 21)


def test_remove_background_respects_exif_orientation(trained_run):
    root, logs = trained_run
    photo = Image.fromarray(np.zeros((20, 30, 3), np.uint8))
    exif = photo.getexif()
    exif[0x0112] = 8  # displayed rotated by 90 degrees
    photo.save(root / "rotated.jpg", exif=exif)
    assert main(["remove-background", "--image", str(root / "rotated.jpg"), "--logs", str(logs),
                 "--out", str(root / "cut_rotated"), "--feather", "1"]) == 0
    assert Image.open(root / "cut_rotated" / "rotated.png").size == (20, 30)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--dataset", "/nonexistent"], "not a folder"),
        (["train", "--set", "NOPE=1"], "unknown setting 'NOPE'"),
        (["predict", "--image", "/nonexistent.png"], "no such file"),
        (["evaluate", "--logs", "/nonexistent", "--dataset", "/nonexistent"], "not a folder"),
        (["remove-background", "--image", ".", "--background", "1,2"], "colour"),
        (["train", "--weights", "imagenet", "--set", "ARCH=improved"], "needs --set ARCH=encoder"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and err[-1].startswith("error:")


def test_freezing_needs_an_encoder(trained_run, capsys):
    root, _ = trained_run
    assert main(["train", "--dataset", str(root / "people"), "--logs", str(root / "frozen"),
                 "--layers", "heads", *TINY]) == 2
    assert "needs --set ARCH=encoder" in capsys.readouterr().err


def test_missing_weights_file_is_named(tmp_path, capsys):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert main(["predict", "--image", str(tmp_path), "--logs", str(tmp_path)]) == 2
    assert "best.keras not found" in capsys.readouterr().err


def test_script_runs_as_a_subprocess_with_exit_status_2():
    result = subprocess.run(
        [sys.executable, str(REPO / "samples" / "person_segmentation.py"), "predict"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
    assert "Traceback" not in result.stderr


def test_evaluate_reads_kaggle_csv_and_coco_json(trained_run):
    """--format kaggle (RLE CSV) and --format coco (person polygons) feed the same evaluation."""
    from unet.data import load_folder_pairs
    from unet.rle import encode_rle

    root, logs = trained_run
    samples, _ = load_folder_pairs(root / "people")
    masks = [sample.load()[1] for sample in samples]
    lines = ["ImageId,EncodedPixels"] + [
        f"{s.name}.png,{encode_rle(m)}" for s, m in zip(samples, masks, strict=True)]
    (root / "people" / "train.csv").write_text("\n".join(lines) + "\n")
    kaggle_out = root / "kaggle_metrics.json"
    assert main(["evaluate", "--dataset", str(root / "people"), "--format", "kaggle",
                 "--logs", str(logs), "--split", "all", "--out", str(kaggle_out)]) == 0
    folder_out = root / "folder_metrics.json"
    assert main(["evaluate", "--dataset", str(root / "people"), "--logs", str(logs),
                 "--split", "all", "--out", str(folder_out)]) == 0
    kaggle, folders = (json.loads(p.read_text()) for p in (kaggle_out, folder_out))
    assert kaggle["images"] == folders["images"] == 10
    assert kaggle["per_image"] == pytest.approx(folders["per_image"])

    coco = {"images": [{"id": 1, "file_name": f"{samples[0].name}.png", "height": 48,
                        "width": 48}],
            "categories": [{"id": 1, "name": "person"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                             "area": 100.0, "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]}]}
    (root / "coco.json").write_text(json.dumps(coco))
    assert main(["evaluate", "--dataset", str(root / "people"), "--format", "coco",
                 "--annotations", str(root / "coco.json"), "--logs", str(logs),
                 "--split", "all"]) == 0
    assert main(["evaluate", "--dataset", str(root / "people"), "--format", "coco",
                 "--logs", str(logs)]) == 2
