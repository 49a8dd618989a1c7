"""mAP during training: the callback's scalars and images land in TensorBoard and the History."""

import importlib.util
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.engine.callbacks import MeanAPCallback

ROOT = Path(__file__).resolve().parents[2]


def _shapes(count, seed):
    dataset = ShapesDataset()
    dataset.load_shapes(count, 64, 64, seed=seed)
    dataset.prepare()
    return dataset


def test_map_callback_logs_scalars_and_detection_images(tmp_path):
    """Users watching TensorBoard see val mAP per epoch (every 2nd here) and detection images."""
    model = modellib.MaskRCNN("training", tiny_config(STEPS_PER_EPOCH=1), tmp_path)
    callback = MeanAPCallback(model, _shapes(3, seed=1), every=2, limit=3, images=1)
    history = model.train(_shapes(2, seed=0), None, learning_rate=0.01, epochs=2,
                          layers="heads", custom_callbacks=[callback]).history
    assert 0.0 <= history["val_mAP50"][-1] <= 1.0 and len(history["val_mAP50"]) == 1
    events = EventAccumulator(str(Path(model.log_dir) / "validation_map"),
                              size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"val_mAP50", "val_mAP", "val_bbox_AP", "val_segm_AP", "val_detections/0"} <= tags
    assert [event.step for event in events.Tensors("val_mAP50")] == [1]  # epoch 2 only


def test_map_callback_rejects_nonsense_settings():
    with pytest.raises(ValueError, match="every"):
        MeanAPCallback(object(), _shapes(1, seed=0), every=0)


def test_shapes_cli_map_every_flag(tmp_path):
    """python samples/shapes.py train --map-every 1 writes the validation_map run."""
    spec = importlib.util.spec_from_file_location("shapes_sample", ROOT / "samples" / "shapes.py")
    shapes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shapes)
    status = shapes.main(shapes.SPEC, ["train", "--preset", "tiny", "--logs", str(tmp_path),
                                       "--epochs", "1", "--steps-per-epoch", "1",
                                       "--train-images", "4", "--val-images", "2",
                                       "--map-every", "1", "--map-images", "2"])
    assert status == 0
    assert list(tmp_path.glob("shapes*/validation_map/events.out.tfevents.*"))
