"""keras.applications encoders: skip taps at strides 2..32 and first-conv channel adaptation."""

import keras
import numpy as np
import pytest

from unet import build_unet
from unet.encoders import (
    ENCODERS,
    adapt_first_kernel,
    build_encoder,
    get_encoder_spec,
    transfer_encoder_weights,
)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoder_unet_builds_without_weights(name):
    """Each encoder (no download: encoder_weights=None) gives a full-size mask."""
    model = build_unet("encoder", (64, 64, 3), encoder=name, base_filters=4)
    taps = model.get_layer("encoder").output_shape
    assert [shape[1] for shape in taps] == [32, 16, 8, 4, 2]
    assert model(np.zeros((1, 64, 64, 3), "float32")).shape == (1, 64, 64, 1)


def test_kernel_adaptation_for_grey_and_rgba_inputs():
    """A grey image seen by the 1-channel kernel responds like its RGB copy did."""
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 3, 8))
    grey = rng.normal(size=(3, 3, 1))
    rgb = np.repeat(grey, 3, axis=2)
    one = adapt_first_kernel(kernel, 1)
    np.testing.assert_allclose(np.tensordot(grey, one, 3), np.tensordot(rgb, kernel, 3))
    four = adapt_first_kernel(kernel, 4)
    assert four.shape == (3, 3, 4, 8)
    np.testing.assert_array_equal(four[:, :, :3], kernel)  # RGB kept as it is
    # The 4th channel starts with no weight: an RGBA image responds as its RGB part did.
    rgba = np.concatenate([rgb, rng.normal(size=(3, 3, 1))], axis=2)
    np.testing.assert_allclose(np.tensordot(rgba, four, 3), np.tensordot(rgb, kernel, 3))
    two = adapt_first_kernel(kernel, 2)
    np.testing.assert_allclose(np.tensordot(np.concatenate([grey, grey], axis=2), two, 3),
                               np.tensordot(rgb, kernel, 3))
    np.testing.assert_allclose(adapt_first_kernel(kernel, 3, reverse_rgb=True)[:, :, 0],
                               kernel[:, :, 2])
    with pytest.raises(ValueError, match="kernel"):
        adapt_first_kernel(kernel[:, :, :2], 1)


def test_transfer_copies_weights_into_a_four_channel_encoder():
    spec = get_encoder_spec("mobilenetv2")
    source = keras.applications.MobileNetV2(include_top=False, weights=None,
                                            input_shape=(32, 32, 3))
    target = keras.applications.MobileNetV2(include_top=False, weights=None,
                                            input_shape=(32, 32, 4))
    transfer_encoder_weights(source, target, spec)
    source_kernel = source.get_layer(spec.first_conv).get_weights()[0]
    np.testing.assert_allclose(target.get_layer(spec.first_conv).get_weights()[0],
                               adapt_first_kernel(source_kernel, 4), rtol=1e-6)
    name = "block_16_project"
    np.testing.assert_array_equal(target.get_layer(name).get_weights()[0],
                                  source.get_layer(name).get_weights()[0])


def test_build_encoder_rejects_unknown_weights():
    with pytest.raises(ValueError, match="imagenet"):
        build_encoder("mobilenetv2", (32, 32, 3), weights="/tmp/x.h5")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "efficientnetb0"])
def test_large_encoders_train_save_and_reload(name, tmp_path):
    """ResNet50 / EfficientNetB0 U-Nets (no download) train a step and reload from .keras."""
    from unet import DiceScore, get_loss

    model = build_unet("encoder", (32, 32, 4), encoder=name, base_filters=4)
    model.compile("adam", get_loss("bce_dice"), metrics=[DiceScore()], run_eagerly=True)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 4)).astype("float32")
    masks = (images[..., :1] > 128).astype("float32")
    model.fit(images, masks, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded(images[:1]), model(images[:1]), atol=1e-5)
