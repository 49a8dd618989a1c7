"""Every U-Net variant builds, trains a few steps on generated people, saves and reloads."""

import keras
import numpy as np
import pytest

from unet import (
    DiceScore,
    IoUScore,
    build_inference_model,
    build_unet,
    classic_valid_output_size,
    get_loss,
    set_input_normalization,
    size_divisor,
)
from unet.synthetic import make_synthetic_people

SIZE = 32
VARIANTS = {
    "classic": dict(arch="classic", depth=2, base_filters=4),
    "improved": dict(arch="improved", depth=2, base_filters=4),
    "residual": dict(arch="residual", depth=2, base_filters=4),
    "attention": dict(arch="attention", depth=2, base_filters=4),
    "unet++": dict(arch="unet++", depth=2, base_filters=4, deep_supervision=True),
    "mobilenetv2": dict(arch="encoder", encoder="mobilenetv2", base_filters=4),
    "logits": dict(arch="improved", depth=2, base_filters=4, logits=True),
}


@pytest.fixture(scope="module")
def people():
    images, masks = make_synthetic_people(8, SIZE, seed=1)
    return images.astype("float32"), masks[..., None].astype("float32")


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def trained(request, people, tmp_path_factory):
    """(variant, model, reloaded model) after 2 training steps and a .keras round trip."""
    options = VARIANTS[request.param]
    model = build_unet(input_shape=(SIZE, SIZE, 3), **options)
    logits = options.get("logits", False)
    heads = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=[get_loss("bce_dice", from_logits=logits)] * heads,
        metrics=[[DiceScore(from_logits=logits), IoUScore(from_logits=logits)]] * heads,
        run_eagerly=True,  # tracing a graph costs ~10 s per model; eager steps take ~0.1 s
    )
    images, masks = people
    history = model.fit(images, (masks,) * heads if heads > 1 else masks, batch_size=4,
                        epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("models") / f"{model.name}.keras"
    model.save(path)
    return request.param, model, keras.models.load_model(path), history


def test_training_gives_finite_loss(trained):
    """A NaN or infinite loss would mean the variant cannot be trained at all."""
    _, _, _, history = trained
    assert np.isfinite(history.history["loss"]).all()


def test_reloaded_model_predicts_identically(trained, people):
    """A .keras file saved after training reloads (no custom_objects) with the same outputs."""
    _, model, reloaded, _ = trained
    images = people[0][:2]
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    actual = keras.ops.convert_to_numpy(reloaded(images, training=False))
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    assert reloaded.loss is not None, "the compile state (loss) was lost on reload"


def test_output_covers_input_with_probabilities(trained, people):
    """Each head returns one (B, H, W, 1) map; sigmoid heads stay within [0, 1]."""
    variant, model, _, _ = trained
    outputs = model(people[0][:2], training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    for output in outputs:
        output = keras.ops.convert_to_numpy(output)
        assert output.shape == (2, SIZE, SIZE, 1)
        if variant != "logits":
            assert output.min() >= 0 and output.max() <= 1
        assert output.dtype == np.float32


def test_prediction_depends_on_the_image(trained, people):
    """Two different photos get different masks (a frozen or constant head would not)."""
    _, model, _, _ = trained
    outputs = model(people[0][:2], training=False)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    for output in outputs:
        first, second = keras.ops.convert_to_numpy(output)
        assert np.abs(first - second).mean() > 1e-4
        assert first.std() > 1e-4  # and the mask varies within one image


@pytest.mark.parametrize("side", [22, 30])
def test_size_not_divisible_is_rejected_with_a_hint(side):
    """Building for a size the pooling cannot halve cleanly names the size and a valid one."""
    with pytest.raises(ValueError, match="divisible by 4"):
        build_unet("improved", (side, SIZE, 3), depth=2, base_filters=4)


def test_dynamic_size_model_rejects_odd_image_at_call():
    model = build_unet("improved", (None, None, 3), depth=2, base_filters=4)
    assert size_divisor(model) == 4
    assert model(np.zeros((1, 24, 40, 3), "float32")).shape == (1, 24, 40, 1)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(np.zeros((1, 26, 40, 3), "float32"))


def test_classic_valid_padding_matches_paper_sizes():
    """The unpadded U-Net maps 572 px to 388 px (Ronneberger et al. 2015, fig. 1)."""
    assert classic_valid_output_size(572, depth=4) == 388
    with pytest.raises(ValueError, match="try 572"):
        classic_valid_output_size(571, depth=4)
    model = build_unet("classic", (44, 44, 1), depth=2, base_filters=2, padding="valid")
    assert model.output_shape == (None, classic_valid_output_size(44, depth=2),
                                  classic_valid_output_size(44, depth=2), 1)


def test_unetpp_inference_modes_share_weights(people):
    """"accurate" averages the heads; "fast" keeps only the layers the chosen head needs."""
    model = build_unet("unet++", (SIZE, SIZE, 3), depth=2, base_filters=4, deep_supervision=True)
    images = people[0][:2]
    heads = [keras.ops.convert_to_numpy(h) for h in model(images)]
    accurate = build_inference_model(model, "accurate")
    np.testing.assert_allclose(accurate(images), np.mean(heads, axis=0), atol=1e-6)
    fast = build_inference_model(model, "fast", head=1)
    np.testing.assert_allclose(fast(images), heads[0], atol=1e-6)
    assert fast.count_params() < model.count_params() / 2
    assert build_inference_model(build_unet("improved", (SIZE, SIZE, 3), depth=2,
                                            base_filters=4)).name == "unet_improved"


def test_input_normalization_is_saved(tmp_path):
    model = build_unet("improved", (SIZE, SIZE, 3), depth=2, base_filters=4)
    set_input_normalization(model, [10.0, 20.0, 30.0], [2.0, 3.0, 4.0])
    model.save(tmp_path / "m.keras")
    layer = keras.models.load_model(tmp_path / "m.keras").get_layer("input_normalization")
    np.testing.assert_allclose(layer.mean.numpy(), [10, 20, 30])
    np.testing.assert_allclose(layer.std.numpy(), [2, 3, 4])


@pytest.mark.parametrize("channels", [1, 4])
def test_grayscale_and_rgba_inputs_build(channels):
    model = build_unet("attention", (SIZE, SIZE, channels), depth=2, base_filters=4)
    assert model(np.zeros((1, SIZE, SIZE, channels), "float32")).shape == (1, SIZE, SIZE, 1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(arch="vgg"), "unknown arch"),
        (dict(arch="improved", input_shape=(32, 32, 2)), "1, 3 or 4 channels"),
        (dict(arch="improved", deep_supervision=True), "only for arch='unet\\+\\+'"),
        (dict(arch="improved", padding="valid"), "only for arch='classic'"),
        (dict(arch="encoder", encoder="resnet34"), "unknown encoder"),
        (dict(arch="encoder", encoder_weights="coco"), "None or 'imagenet'"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    kwargs.setdefault("input_shape", (SIZE, SIZE, 3))
    with pytest.raises(ValueError, match=message):
        build_unet(**kwargs)


@pytest.mark.slow
def test_improved_unet_learns_generated_people():
    """After a short training the held-out Dice is far above an empty or random mask."""
    from unet import SegmentationEvaluator

    keras.utils.set_random_seed(0)
    images, masks = make_synthetic_people(160, 64, seed=7)
    model = build_unet("improved", (64, 64, 3), depth=3, base_filters=8)
    model.compile(keras.optimizers.Adam(3e-3), get_loss("bce_dice"), metrics=[DiceScore()])
    model.fit(images[32:].astype("float32"), masks[32:, ..., None].astype("float32"),
              batch_size=16, epochs=12, verbose=0)
    evaluator = SegmentationEvaluator()
    for probability, target in zip(model.predict(images[:32].astype("float32"), verbose=0),
                                   masks[:32], strict=True):
        evaluator.add(probability[..., 0] > 0.5, target)
    assert evaluator.summarize()["per_image"]["dice"] > 0.6
