"""tf.distribute: MirroredStrategy training on two logical CPU devices, and clear device errors."""

import json
import subprocess
import sys
import textwrap

import pytest

import mrcnn.model as modellib
from mrcnn.config import ConfigError, tiny_config

SCRIPT = textwrap.dedent("""
    import json, math, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import mrcnn.model as modellib
    from mrcnn.config import tiny_config
    from mrcnn.datasets.shapes import ShapesDataset
    config = tiny_config(DISTRIBUTION_STRATEGY="mirrored", GPU_COUNT=2, IMAGES_PER_GPU=1,
                         STEPS_PER_EPOCH=2, TRAIN_BN=True)
    data = ShapesDataset(); data.load_shapes(4, 64, 64, seed=0); data.prepare()
    model = modellib.MaskRCNN("training", config, sys.argv[1])
    history = model.train(data, None, learning_rate=0.01, epochs=1, layers="all").history
    image = data.load_image(0)
    detections = model.detect([image, image[:40]])
    print(json.dumps({"replicas": model.strategy.num_replicas_in_sync,
                      "losses": {k: v[-1] for k, v in history.items()},
                      "checkpoint": model.find_last(),
                      "masks": [list(d["masks"].shape[:2]) for d in detections]}))
""")


def test_mirrored_strategy_trains_on_two_replicas(tmp_path):
    """Users with several GPUs: one config field spreads each batch over the devices."""
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert all(value == value and abs(value) < 1e6 for value in result["losses"].values())
    assert result["checkpoint"].endswith("mask_rcnn_tiny_0001.h5")
    assert result["masks"] == [[64, 64], [40, 64]]


def test_more_replicas_than_devices_is_a_config_error(tmp_path):
    """Asking for more GPUs than the machine has fails before any work, saying how many exist."""
    config = tiny_config(DISTRIBUTION_STRATEGY="mirrored", GPU_COUNT=64)
    with pytest.raises(ConfigError, match="GPU_COUNT=64"):
        modellib.MaskRCNN("training", config, tmp_path)


def test_unknown_strategy_is_rejected_by_validate():
    with pytest.raises(ConfigError, match="DISTRIBUTION_STRATEGY"):
        tiny_config(DISTRIBUTION_STRATEGY="horovod")
