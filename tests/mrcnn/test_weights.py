"""Loading Matterport-layout .h5 files by layer name, and our own checkpoints."""

import h5py
import numpy as np
import pytest

from mrcnn.engine.weights import WeightsFileError, load_weights_by_name, read_h5_weights

HEADS = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]
RPN_LAYERS = {"rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"}


def write_matterport_h5(path, layers, seed=0, inner_names=False):
    """Write weights the way Keras 2 saved Matterport's model: one group per top-level layer,
    the RPN sub-layers nested in an 'rpn_model' group, head layers as TimeDistributed groups
    (with ``inner_names`` their weights carry the wrapped layer's automatic name)."""
    rng = np.random.default_rng(seed)
    values = {}
    with h5py.File(path, "w") as f:
        top = [n for n in layers if n not in RPN_LAYERS] + ["rpn_model"]
        f.attrs["layer_names"] = np.array([n.encode() for n in top])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        for name in top:
            group = f.create_group(name)
            members = sorted(RPN_LAYERS) if name == "rpn_model" else [name]
            weight_names = []
            for member in members:
                layer = layers[member]
                values[member] = []
                prefix = f"conv2d_{len(values)}" if inner_names and name.startswith("mrcnn") else member
                for weight in layer.weights:
                    array = rng.normal(size=tuple(weight.shape)).astype(np.float32)
                    weight_name = f"{prefix}/{weight.name}:0"
                    group.create_dataset(weight_name, data=array)
                    weight_names.append(weight_name.encode())
                    values[member].append(array)
            group.attrs["weight_names"] = np.array(weight_names)
    return values


@pytest.mark.parametrize("inner_names", [False, True])
def test_matterport_layout_loads_every_layer(tiny_inference_model, tmp_path, inner_names):
    """A Matterport file must load with zero unmatched layers, nested rpn_model included."""
    model = tiny_inference_model
    path = tmp_path / "mask_rcnn_fake.h5"
    values = write_matterport_h5(path, model._layers, inner_names=inner_names)
    report = model.load_weights(str(path), by_name=True)
    assert not report.missing and not report.unused and not report.skipped
    assert sorted(report.loaded) == sorted(model._layers)
    for name in ("conv1", "rpn_class_raw", "mrcnn_mask_bn2", "mrcnn_class_logits"):
        for got, want in zip(model._layers[name].get_weights(), values[name], strict=True):
            np.testing.assert_array_equal(got, want)


def test_exclude_leaves_heads_untouched(tiny_inference_model, tmp_path):
    """Fine-tuning from COCO excludes the heads: their weights must not be overwritten."""
    model = tiny_inference_model
    before = [w.copy() for w in model._layers["mrcnn_class_logits"].get_weights()]
    path = tmp_path / "w.h5"
    write_matterport_h5(path, model._layers, seed=1)
    report = model.load_weights(str(path), by_name=True, exclude=HEADS)
    assert set(report.skipped) == {"mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"}
    for got, want in zip(model._layers["mrcnn_class_logits"].get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_shape_mismatch_names_layer_and_both_shapes(tiny_inference_model, tmp_path):
    """An 81-class file into a 4-class model must say which layer and which shapes differ."""
    model = tiny_inference_model
    path = tmp_path / "w.h5"
    write_matterport_h5(path, model._layers)
    with h5py.File(path, "a") as f:
        group = f["mrcnn_class_logits"]
        name = [n.decode() for n in group.attrs["weight_names"]][0]
        del group[name]
        group.create_dataset(name, data=np.zeros((64, 81), np.float32))
    with pytest.raises(WeightsFileError, match=r"mrcnn_class_logits.*\(64, 4\).*\(64, 81\)"):
        model.load_weights(str(path))
    report = model.load_weights(str(path), skip_mismatch=True)
    assert "mrcnn_class_logits" in report.skipped


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all", b"\x89HDF\r\n\x1a\n" + b"0" * 50])
def test_non_hdf5_or_truncated_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "broken.h5"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match="broken.h5"):
        read_h5_weights(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsFileError, match="not found"):
        read_h5_weights(tmp_path / "nope.h5")


def test_own_checkpoint_round_trip(tiny_inference_model, tmp_path):
    """save_weights then load_weights restores every array exactly."""
    model = tiny_inference_model
    path = tmp_path / "own.h5"
    model.save_weights(path)
    saved = {n: [w.copy() for w in layer.get_weights()] for n, layer in model._layers.items()}
    write_matterport_h5(tmp_path / "other.h5", model._layers, seed=5)
    model.load_weights(str(tmp_path / "other.h5"))
    report = load_weights_by_name(model._layers, path)
    assert not report.missing and not report.unused
    for name, arrays in saved.items():
        for got, want in zip(model._layers[name].get_weights(), arrays, strict=True):
            np.testing.assert_array_equal(got, want)
