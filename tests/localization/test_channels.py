"""Localizers for 1, 2, 4 or more input channels: RGB backbone weights through the shared conv1
adaptation, N-channel files, training, export and the error for a wrong channel count.

Offline: no ImageNet download. Each application's RGB weights are written to a local
``.weights.h5`` (random init) and passed as ``backbone_weights``, the path ``"imagenet"`` takes
once Keras has its file.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from localization import TINY_PRESET, ImageChannelError, build_localizer, compile_localizer
from localization.annotations import load_annotations
from localization.augment import BoxAugmenter
from localization.backbones import APPLICATION_CONSTRUCTORS, APPLICATION_FIRST_CONV
from localization.cli import main
from localization.data import build_dataset, compute_channel_stats, samples_to_arrays
from localization.export import export_localizer
from localization.images import load_image_channels
from localization.inference import predict_images
from localization.synthetic import write_synthetic_dataset
from vision_common.first_conv import adapt_first_kernel

SIZE = 32
HEADS = {key: value for key, value in TINY_PRESET.items() if key != "input_shape"}
RGB_MEAN, RGB_STD = (120.0, 110.0, 100.0), (50.0, 55.0, 60.0)


@pytest.fixture(scope="module")
def rgb_weights(tmp_path_factory):
    """``backbone name -> path`` of a 3-channel application's weights file (random init)."""
    folder = tmp_path_factory.mktemp("weights")

    def write(name):
        path = folder / f"{name}.weights.h5"
        if not path.exists():
            keras.utils.set_random_seed(1)
            application = APPLICATION_CONSTRUCTORS[name](include_top=False, weights=None,
                                                         input_shape=(SIZE, SIZE, 3))
            if name == "mobilenetv2":  # its random-init features decay to 1e-12 with variance 1
                for layer in application.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.1))
            application.save_weights(path)
        return str(path)

    return write


def _localizer(backbone, weights, channels, mean, std):
    return build_localizer(backbone, 2, (SIZE, SIZE, channels), backbone_weights=weights,
                           mean=mean, std=std, **HEADS)


def _share_heads(source, target, backbone):
    """Copies every weight outside the backbone and the input standardization (both depend on
    the channel count), so two localizers differ only where the channel count matters."""
    for layer in source.layers:
        if layer.weights and layer.name not in ("input_standardization", f"backbone_{backbone}"):
            target.get_layer(layer.name).set_weights(layer.get_weights())


def _predict(model, images):
    outputs = model.predict_on_batch(images.astype("float32"))
    return np.concatenate([outputs["box"], outputs["class"]], axis=1)


@pytest.mark.parametrize("backbone", ["mobilenetv2", pytest.param("resnet50",
                                                                   marks=pytest.mark.slow)])
def test_four_channel_localizer_from_rgb_weights_answers_as_the_rgb_one(backbone, rgb_weights):
    """RGB+NIR users start from the RGB weights: with the 4th channel at its mean the localizer
    gives the RGB model's boxes and logits (1e-5). If it failed, pretrained 4-channel localizers
    would start from a broken backbone (or the weights would not load at all)."""
    weights = rgb_weights(backbone)
    rgb = _localizer(backbone, weights, 3, RGB_MEAN, RGB_STD)
    four = _localizer(backbone, weights, 4, (*RGB_MEAN, 80.0), (*RGB_STD, 30.0))
    _share_heads(rgb, four, backbone)
    conv = APPLICATION_FIRST_CONV[backbone]
    kernel = rgb.get_layer(f"backbone_{backbone}").get_layer(conv).get_weights()[0]
    adapted = four.get_layer(f"backbone_{backbone}").get_layer(conv).get_weights()[0]
    np.testing.assert_array_equal(adapted, adapt_first_kernel(kernel, 4))

    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3))
    with_nir = np.concatenate([images, np.full((2, SIZE, SIZE, 1), 80.0)], axis=-1)
    expected = _predict(rgb, images)
    assert not np.allclose(expected[0], expected[1]), "the check needs image-dependent outputs"
    np.testing.assert_allclose(_predict(four, with_nir), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2])
def test_grey_localizer_on_a_grey_image_answers_as_rgb_on_its_rgb_copy(channels, rgb_weights):
    """A grey (1) or grey+extra (2, extra at its mean) localizer from RGB weights sees a grey
    image as the RGB model sees its RGB copy. If it failed, microscopy or X-ray users would
    fine-tune from a first conv that no longer matches the pretrained features."""
    weights = rgb_weights("mobilenetv2")
    rgb = _localizer("mobilenetv2", weights, 3, (100.0,) * 3, (50.0,) * 3)
    grey_model = _localizer("mobilenetv2", weights, channels, (100.0, 90.0)[:channels],
                            (50.0, 20.0)[:channels])
    _share_heads(rgb, grey_model, "mobilenetv2")
    grey = np.random.default_rng(1).uniform(0, 255, (2, SIZE, SIZE, 1))
    inputs = grey if channels == 1 else np.concatenate([grey, np.full_like(grey, 90.0)], -1)
    np.testing.assert_allclose(_predict(grey_model, inputs),
                               _predict(rgb, np.repeat(grey, 3, axis=-1)), rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # about 90 s on 2 CPU cores (tracing MobileNetV2's train step)
def test_adapted_four_channel_localizer_trains_and_learns_to_use_the_extra_channel(
        rgb_weights):
    """Fitting a few steps on generated 4-channel data (augmented) runs, with finite losses, and
    gives the extra channel weight. If it failed, N-channel training would crash in the data
    pipeline or augmentation, or the extra channel would stay unused."""
    weights = rgb_weights("mobilenetv2")
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (8, SIZE, SIZE, 4), dtype=np.uint8)
    corners = np.sort(rng.uniform(0, 1, (8, 2, 2)), axis=1)
    boxes = corners.transpose(0, 2, 1).reshape(8, 4)[:, [0, 2, 1, 3]].astype("float32")
    classes = np.array([0, 1] * 4)
    model = _localizer("mobilenetv2", weights, 4, *compute_channel_stats(images))
    compile_localizer(model, jit_compile=False, backbone_lr=1e-2)
    data = build_dataset(images, boxes, classes, 4, augment=BoxAugmenter(seed=0, channels=4),
                         shuffle=True, seed=0)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    conv = model.get_layer("backbone_mobilenetv2").get_layer("Conv1")
    assert np.abs(conv.get_weights()[0][:, :, 3]).max() > 0


@pytest.fixture(scope="module")
def four_channel_run(tmp_path_factory):
    """``(dataset, logs)``: the sample CLI trained (tiny preset, 1 epoch) on 4-channel .npy
    images with CHANNELS=4."""
    dataset = tmp_path_factory.mktemp("nir")
    write_synthetic_dataset(dataset, count=12, size=(40, 36), seed=5, channels=4)
    logs = tmp_path_factory.mktemp("nir_logs")
    assert main(["train", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--epochs", "1", "--set", "CHANNELS=4", "--set", "TENSORBOARD=False"]) == 0
    return dataset, logs


def test_cli_trains_evaluates_and_predicts_on_four_channel_files(four_channel_run, tmp_path):
    """``--set CHANNELS=4`` trains on .npy stacks; evaluate and predict read the channel count
    from the model. If it failed, the CLI would only ever read RGB."""
    dataset, logs = four_channel_run
    assert main(["evaluate", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--out", str(tmp_path / "metrics.json")]) == 0
    assert main(["predict", "--image", str(dataset / "images"), "--logs", str(logs),
                 "--out", str(tmp_path / "drawn")]) == 0
    assert len(list((tmp_path / "drawn").glob("*.png"))) == 12


def test_an_image_with_another_channel_count_is_refused_naming_both(four_channel_run, tmp_path,
                                                                   capsys):
    """An RGB photo given to a 4-channel localizer fails with a typed error naming 3 and 4 (and
    the CLI exits 2 with that line). If it failed, users would get a Keras shape traceback, or
    a silently converted image."""
    dataset, logs = four_channel_run
    photo = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(photo)
    from localization.training import load_localizer

    model, _ = load_localizer(logs / "localizer.keras")
    with pytest.raises(ImageChannelError, match=r"has 3 channel\(s\) but the model expects 4"):
        predict_images(model, [photo])
    assert main(["predict", "--image", str(photo), "--logs", str(logs),
                 "--out", str(tmp_path / "drawn")]) == 2
    assert "has 3 channel(s) but the model expects 4" in capsys.readouterr().err
    assert main(["train", "--dataset", str(dataset), "--logs", str(logs), "--preset", "tiny",
                 "--epochs", "1", "--weights", "last"]) == 2  # CHANNELS=3 left out
    assert "has 4 channel(s) but the model expects 3" in capsys.readouterr().err


def test_files_are_read_with_their_own_bands(tmp_path):
    """Grey, grey+alpha, RGBA PNGs and .npy stacks come back with their bands, sizes come from
    .npy headers, and a 16-bit file is refused. If it failed, non-RGB data would be converted
    to RGB behind the user's back or not load."""
    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(np.stack([grey, grey // 2], -1), "LA").save(tmp_path / "la.png")
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    stack = rng.integers(0, 256, (6, 5, 5), dtype=np.uint8)
    np.save(tmp_path / "five.npy", stack)
    np.testing.assert_array_equal(load_image_channels(tmp_path / "grey.png", 1), grey[..., None])
    assert load_image_channels(tmp_path / "la.png", 2)[..., 1].tolist() == (grey // 2).tolist()
    np.testing.assert_array_equal(load_image_channels(tmp_path / "rgba.png", 4), rgba)
    np.testing.assert_array_equal(load_image_channels(tmp_path / "five.npy", 5), stack)
    assert load_image_channels(tmp_path / "grey.png", 3).shape == (6, 5, 3)  # RGB as before
    np.save(tmp_path / "deep.npy", stack.astype(np.uint16))
    with pytest.raises(ImageChannelError, match="uint16"):
        load_image_channels(tmp_path / "deep.npy", 5)

    (tmp_path / "train.csv").write_text("filename,xmin,ymin,xmax,ymax,class\n"
                                        "five.npy,1,1,4,5,a\nfive.npy,0,0,3,3,b\n")
    table = load_annotations(tmp_path / "train.csv", tmp_path, multi_box_policy="per_row")
    assert table.samples[0].image_size == (5, 6)
    images, _, _ = samples_to_arrays(table.samples, (8, 8), channels=5)
    assert images.shape == (2, 8, 8, 5)
    assert len(compute_channel_stats(images)[0]) == 5


def test_export_serves_four_channels_and_refuses_what_saved_model_cannot_decode(tmp_path):
    """A 4-channel SavedModel serves uint8 [H, W, 4] like predict_images and rejects RGB at the
    signature; 5 channels (no JPEG/PNG holds them) are refused up front with the formats that
    work. If it failed, exports would assume RGB and break on the first non-RGB request."""
    keras.utils.set_random_seed(0)
    model = build_localizer(num_classes=2, **{**TINY_PRESET, "input_shape": (SIZE, SIZE, 4)})
    image = np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    expected = predict_images(model, [tmp_path / "image.npy"])[0]
    serve = tf.saved_model.load(str(export_localizer(model, tmp_path / "sm"))).signatures[
        "serving_default"]
    outputs = serve(image=tf.constant(image))
    np.testing.assert_allclose(outputs["box_normalized"].numpy(), expected.box, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"uint8\[H, W, 4\]"):
        serve(image=tf.constant(image[..., :3]))
    five = build_localizer(num_classes=2, **{**TINY_PRESET, "input_shape": (SIZE, SIZE, 5)})
    with pytest.raises(ValueError, match="1, 3 or 4 channels; this model reads 5"):
        export_localizer(five, tmp_path / "five")
