"""Config: Matterport fields, validate() errors naming the field, serialization, display."""

import json

import numpy as np
import pytest

from mrcnn.config import Config, ConfigError, parse_override, tiny_config


class ShapesLikeConfig(Config):
    NAME = "shapes"
    NUM_CLASSES = 1 + 3
    IMAGES_PER_GPU = 4
    IMAGE_MIN_DIM = 128
    IMAGE_MAX_DIM = 128


def test_matterport_defaults_and_derived_fields():
    config = ShapesLikeConfig()
    assert config.BATCH_SIZE == 4
    np.testing.assert_array_equal(config.IMAGE_SHAPE, [128, 128, 3])
    assert config.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 4
    assert Config.RPN_ANCHOR_RATIOS == [0.5, 1, 2] and Config.DETECTION_MIN_CONFIDENCE == 0.7
    assert config.validate() is config


@pytest.mark.parametrize("field, value", [
    ("NUM_CLASSES", 1),
    ("IMAGE_MAX_DIM", 200),  # not a multiple of 64
    ("IMAGE_RESIZE_MODE", "stretch"),
    ("RPN_NMS_THRESHOLD", 1.5),
    ("MASK_SHAPE", [14, 14]),
    ("BACKBONE", "vgg16"),
    ("MEAN_PIXEL", np.array([1.0, 2.0])),
])
def test_validate_names_the_bad_field(field, value):
    config = ShapesLikeConfig()
    setattr(config, field, value)
    Config.__init__(config)
    with pytest.raises(ConfigError, match=f"Config.{field} ="):
        config.validate()


def test_to_dict_from_dict_round_trip_is_json_serializable():
    config = tiny_config(IMAGES_PER_GPU=3)
    values = config.to_dict()
    restored = Config.from_dict(json.loads(json.dumps(values)))
    assert restored.to_dict() == values
    assert isinstance(restored.MEAN_PIXEL, np.ndarray) and restored.BATCH_SIZE == 3


def test_unknown_fields_rejected_with_the_valid_ones():
    with pytest.raises(ConfigError, match="IMAGE_MAX_DIMS.*valid fields"):
        Config.from_dict({"IMAGE_MAX_DIMS": 64})
    with pytest.raises(ConfigError, match="unknown Config field 'LR'"):
        parse_override("LR=0.1", tiny_config())


def test_override_parses_literals_and_revalidates():
    config = tiny_config()
    key, value = parse_override("IMAGE_MAX_DIM=128", config)
    config.override(**{key: value, "IMAGE_MIN_DIM": 128})
    np.testing.assert_array_equal(config.IMAGE_SHAPE, [128, 128, 3])
    with pytest.raises(ConfigError, match="IMAGE_MAX_DIM"):
        config.override(IMAGE_MAX_DIM=130)


def test_display_prints_every_field(capsys):
    tiny_config().display()
    out = capsys.readouterr().out
    assert "IMAGE_META_SIZE" in out and "RPN_ANCHOR_SCALES" in out and "tiny" in out
