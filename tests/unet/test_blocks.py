"""The attention gate really gates: its output follows the decoder's gating signal."""

import keras
import numpy as np
import pytest

from unet.blocks import attention_gate

SKIP_SHAPE, GATING_SHAPE = (8, 8, 4), (4, 4, 6)


def build_gate() -> keras.Model:
    """Model ``[skip (B, 8, 8, 4), gating (B, 4, 4, 6)] -> gated skip (B, 8, 8, 4)``."""
    skip = keras.Input(SKIP_SHAPE, name="skip")
    gating = keras.Input(GATING_SHAPE, name="gating")
    return keras.Model([skip, gating], attention_gate(skip, gating, 3, "att"))


@pytest.fixture(scope="module")
def gate():
    keras.utils.set_random_seed(0)
    return build_gate()


@pytest.fixture()
def inputs():
    rng = np.random.default_rng(1)
    return (rng.normal(size=(2, *SKIP_SHAPE)).astype("float32"),
            rng.normal(size=(2, *GATING_SHAPE)).astype("float32"))


def run(model, skip, gating):
    return keras.ops.convert_to_numpy(model([skip, gating], training=False))


def test_gated_skip_changes_with_the_gating_signal(gate, inputs):
    """Without this the "attention" U-Net is a plain U-Net: the decoder cannot select features."""
    skip, gating = inputs
    first = run(gate, skip, gating)
    second = run(gate, skip, -3.0 * gating)
    change = np.abs(first - second).mean()
    assert change > 1e-3 * np.abs(first).mean(), "the gate ignores the gating signal"


def test_attention_map_is_a_per_pixel_weight_at_skip_resolution(gate, inputs):
    """The map documented as ``{name}_alpha`` (for plotting attention) is a weight per pixel."""
    alpha_model = keras.Model(gate.inputs, gate.get_layer("att_alpha").output)
    alpha = run(alpha_model, *inputs)
    assert alpha.shape == (2, *SKIP_SHAPE[:2], 1)
    assert 0 < alpha.min() and alpha.max() < 1
    assert alpha.std() > 0  # varies over the image


def _set_psi(model, bias):
    """Forces the attention map to sigmoid(bias) everywhere (psi kernel zeroed)."""
    psi = model.get_layer("att_psi")
    kernel, _ = psi.get_weights()
    psi.set_weights([np.zeros_like(kernel), np.full((1,), bias, "float32")])


def test_closed_gate_blocks_the_skip_and_open_gate_passes_it(inputs):
    """alpha ~ 0 removes the skip features; alpha ~ 1 passes them through the 1x1 projection."""
    model = build_gate()
    skip, gating = inputs
    projection = model.get_layer("att_out").get_weights()[0][0, 0]  # (C, C), no bias
    epsilon = model.get_layer("att_out_bn").epsilon  # fresh BatchNorm: x / sqrt(1 + epsilon)
    _set_psi(model, -30.0)
    closed = run(model, skip, gating)
    np.testing.assert_allclose(closed, 0.0, atol=1e-6)
    _set_psi(model, 30.0)
    opened = run(model, skip, gating)
    np.testing.assert_allclose(opened, skip @ projection / np.sqrt(1 + epsilon), atol=1e-5)
