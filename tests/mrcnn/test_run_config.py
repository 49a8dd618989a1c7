"""The run folder keeps its config: evaluate / detect / export / resume rebuild the trained network.

One tiny shapes run (``--preset tiny``, one step) is trained through the CLI; the later commands
are given no preset, as a user who forgot the training flags would run them.
"""

import json
import shutil

import pytest

from mrcnn.cli import UsageError, build_parser, make_config
from mrcnn.config import Config, ConfigError
from mrcnn.engine.run_config import read_run_config
from tests.mrcnn.test_samples import sample

TRAIN_SET = ["--set", "RPN_NMS_THRESHOLD=0.6", "--set", "VALIDATION_STEPS=1"]


@pytest.fixture(scope="module")
def shapes():
    return sample("shapes")


@pytest.fixture(scope="module")
def tiny_run(shapes, tmp_path_factory):
    """logs/ after ``shapes.py train --preset tiny --set RPN_NMS_THRESHOLD=0.6`` (one step)."""
    logs = tmp_path_factory.mktemp("run_config") / "logs"
    status = shapes.main(shapes.SPEC, [
        "train", "--preset", "tiny", "--weights", "none", "--logs", str(logs), "--epochs", "1",
        "--steps-per-epoch", "1", "--train-images", "2", "--val-images", "2",
        "--map-every", "1", "--map-images", "2", *TRAIN_SET])
    assert status == 0
    (run,) = logs.glob("shapes*")
    return logs, run


def config_for(shapes, argv) -> Config:
    return make_config(shapes.SPEC, build_parser(shapes.SPEC).parse_args(argv))


def test_run_folder_holds_the_exact_training_config(tiny_run):
    """Without it nobody can tell, months later, which network and settings a checkpoint has."""
    _, run = tiny_run
    saved = json.loads((run / "config.json").read_text())
    assert saved["BACKBONE_WIDTH"] == 8 and saved["IMAGE_MAX_DIM"] == 64
    assert saved["RPN_NMS_THRESHOLD"] == 0.6 and saved["STEPS_PER_EPOCH"] == 1
    assert saved["IMAGES_PER_GPU"] == 2 and saved["NUM_CLASSES"] == 4
    assert Config.from_dict(read_run_config(run / "config.json")).BACKBONE_WIDTH == 8


@pytest.mark.parametrize("weights", ["last", "checkpoint path"])
def test_later_commands_rebuild_the_run_config_without_repeating_flags(shapes, tiny_run, weights):
    """The issue's failure: evaluate --weights last after a --preset tiny training raised a
    conv1 shape mismatch. Command defaults (one image per batch, every detection scored) and
    explicit --set still apply on top of the saved config."""
    logs, run = tiny_run
    chosen = "last" if weights == "last" else str(run / "mask_rcnn_shapes_0001.h5")
    config = config_for(shapes, ["evaluate", "--weights", chosen, "--logs", str(logs),
                                 "--set", "DETECTION_MAX_INSTANCES=5"])
    assert (config.BACKBONE_WIDTH, config.IMAGE_MAX_DIM, config.RPN_NMS_THRESHOLD) == (8, 64, 0.6)
    assert (config.IMAGES_PER_GPU, config.DETECTION_MIN_CONFIDENCE) == (1, 0.0)
    assert config.DETECTION_MAX_INSTANCES == 5


def test_evaluate_and_resume_run_with_no_training_flags(shapes, tiny_run, tmp_path):
    """End to end: evaluate loads the last and the best checkpoint, and train --weights last
    continues the same run at epoch 2 with the tiny network."""
    logs, run = tiny_run
    out = tmp_path / "metrics.json"
    assert shapes.main(shapes.SPEC, ["evaluate", "--weights", "last", "--logs", str(logs),
                                     "--val-images", "2", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["images_scored"] == 2
    assert (run / "mask_rcnn_shapes_best.h5").is_file()  # --map-every keeps the best
    assert shapes.main(shapes.SPEC, ["evaluate", "--weights", "best", "--logs", str(logs),
                                     "--val-images", "2", "--out", str(out)]) == 0
    resumed = tmp_path / "logs"
    shutil.copytree(logs, resumed)
    assert shapes.main(shapes.SPEC, ["train", "--weights", "last", "--logs", str(resumed),
                                     "--epochs", "2", "--train-images", "2",
                                     "--val-images", "2"]) == 0
    assert (resumed / run.name / "mask_rcnn_shapes_0002.h5").is_file()


def test_a_flag_that_changes_the_network_names_the_fields(shapes, tiny_run, capsys):
    """A changed architecture cannot load the checkpoint: say which fields, not a layer shape."""
    logs, _ = tiny_run
    status = shapes.main(shapes.SPEC, ["detect", "--weights", "last", "--logs", str(logs),
                                       "--image", str(logs), "--set", "BACKBONE_WIDTH=16",
                                       "--set", "NUM_CLASSES=5"])
    message = capsys.readouterr().err
    assert status == 2
    assert "BACKBONE_WIDTH: 8 -> 16" in message and "NUM_CLASSES: 4 -> 5" in message
    assert "config.json" in message


def test_a_broken_run_config_is_named(shapes, tiny_run, tmp_path):
    """A truncated config.json (a full disk) must name the file, not crash in json."""
    logs, run = tiny_run
    broken = tmp_path / "logs"
    shutil.copytree(logs, broken)
    (broken / run.name / "config.json").write_text('{"BACKBONE": "resnet')
    with pytest.raises(ConfigError, match=r"config\.json: not a readable run config"):
        config_for(shapes, ["evaluate", "--weights", "last", "--logs", str(broken)])


def test_a_run_without_config_gets_a_mismatch_hint_the_cli_can_act_on(shapes, tiny_run, tmp_path,
                                                                      capsys):
    """Runs from before config.json: the hint must name the CLI fix, not a Python argument."""
    logs, run = tiny_run
    older = tmp_path / "logs"
    shutil.copytree(logs, older)
    (older / run.name / "config.json").unlink()
    config = config_for(shapes, ["evaluate", "--weights", "last", "--logs", str(older)])
    # Nothing to rebuild from: the sample's own config, which the tiny checkpoint does not fit.
    assert config.BACKBONE_WIDTH == shapes.ShapesConfig.BACKBONE_WIDTH != 8
    from mrcnn import model as modellib
    from mrcnn.cli import load_weights

    model = modellib.MaskRCNN(mode="inference", config=config, model_dir=str(older))
    with pytest.raises(UsageError, match=r"layer 'conv1'.*trained with other --preset/--set flags"):
        load_weights(model, "last", config)
