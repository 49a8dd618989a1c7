"""DetectionTargetLayer's keras.ops path (JAX, PyTorch, ``backend_ops.portable_ops()``) against
its TensorFlow path: the same targets for the same candidates, sampled within the same limits.

Boxes are (y1, x1, y2, x2) normalized. The order of the positives (and of the negatives) is
random in both paths, so targets are compared as sorted sets of rows.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.modeling import backend_ops
from mrcnn.modeling.detection_targets import DetectionTargetLayer

ROOT = Path(__file__).resolve().parents[2]
STD_DEV = [0.1, 0.1, 0.2, 0.2]
MASK_SHAPE = [6, 6]
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def random_boxes(rng, count: int) -> np.ndarray:
    """count random normalized boxes [count, 4], 0.1 to 0.4 on a side."""
    corner = rng.uniform(0.0, 0.6, (count, 2))
    return np.concatenate([corner, corner + rng.uniform(0.1, 0.4, (count, 2))], 1)


def make_inputs(rng, class_ids, proposal_count: int, near_gt: int, padding_rows: int = 2,
                mask_size: int = 12) -> tuple:
    """A batch of layer inputs: class_ids int32[B, G] (0 padding, < 0 crowd); per image
    ``near_gt`` jittered copies of each GT box among ``proposal_count`` proposals, the last
    ``padding_rows`` zero; random binary masks [B, mask_size, mask_size, G]."""
    class_ids = np.asarray(class_ids, np.int32)
    batch, count = class_ids.shape
    gt_boxes = np.stack([random_boxes(rng, count) for _ in range(batch)])
    proposals = np.stack([random_boxes(rng, proposal_count) for _ in range(batch)])
    near = min(count * near_gt, proposal_count)
    jittered = np.repeat(gt_boxes, near_gt, axis=1)[:, :near]
    proposals[:, :near] = jittered + rng.normal(0, 0.02, jittered.shape)
    proposals[:, proposal_count - padding_rows:] = 0.0
    gt_boxes[class_ids == 0] = 0.0
    masks = (rng.uniform(size=(batch, mask_size, mask_size, count)) > 0.5)
    return (proposals.astype("float32"), class_ids, gt_boxes.astype("float32"),
            masks.astype("float32"))


def make_layer(*args, **kwargs) -> DetectionTargetLayer:
    """A layer made inside ``portable_ops()``: it has the seed generator of the keras.ops path
    and runs either path."""
    with backend_ops.portable_ops():
        return DetectionTargetLayer(*args, **kwargs)


def run(layer, inputs, portable: bool) -> list[np.ndarray]:
    """The layer's four outputs as NumPy, on the portable path or TensorFlow's."""
    if portable:
        with backend_ops.portable_ops():
            return [np.asarray(o) for o in layer(*inputs)]
    return [np.asarray(o) for o in layer(*inputs)]


def target_rows(outputs, image: int) -> list[tuple]:
    """Image ``image``'s filled slots as (roi, class id, deltas, mask or None) rows, sorted."""
    rois, class_ids, deltas, masks = (o[image] for o in outputs)
    rows = []
    for slot in np.flatnonzero(np.any(rois != 0, axis=1)):
        mask = masks[slot] if class_ids[slot] > 0 else None
        rows.append((rois[slot], class_ids[slot], deltas[slot], mask))
    return sorted(rows, key=lambda row: (row[1], *row[0].tolist()))


def assert_same_rows(actual, expected):
    assert len(actual) == len(expected), (len(actual), len(expected))
    for (roi, class_id, deltas, mask), (roi_e, class_e, deltas_e, mask_e) in zip(
            actual, expected, strict=True):
        np.testing.assert_array_equal(roi, roi_e)
        assert class_id == class_e
        np.testing.assert_allclose(deltas, deltas_e, atol=1e-5)
        if mask_e is None:
            assert mask is None
        else:
            np.testing.assert_array_equal(mask, mask_e)


def assert_same_targets(portable, reference):
    for image in range(reference[0].shape[0]):
        assert_same_rows(target_rows(portable, image), target_rows(reference, image))


def assert_slot_layout(outputs, max_positives: int):
    """Positives first, then negatives, zeros after; masks zero past the positives."""
    rois, class_ids, deltas, masks = outputs
    for image in range(rois.shape[0]):
        filled = np.any(rois[image] != 0, axis=1)
        positive = class_ids[image] > 0
        count, positives = filled.sum(), positive.sum()
        assert filled[:count].all() and not filled[count:].any()
        assert positive[:positives].all() and not positive[positives:].any()
        assert positives <= max_positives
        assert not deltas[image][~positive].any()
        assert not masks[image][positives:].any()


def numpy_iou(boxes, others) -> np.ndarray:
    """IoU [N, M] in NumPy (float64), an independent reference."""
    if len(others) == 0:
        return np.zeros((len(boxes), 0))
    top_left = np.maximum(boxes[:, None, :2], others[None, :, :2])
    bottom_right = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    other_area = np.prod(others[:, 2:] - others[:, :2], axis=-1)
    return intersection / (area[:, None] + other_area[None, :] - intersection)


def candidate_split(inputs, image: int) -> tuple:
    """Image ``image``'s candidates [N, 4] (proposals, then GT boxes) and their IoU with the GT
    boxes [N, G'] and with the crowd boxes [N, C], by NumPy."""
    proposals, class_ids, gt_boxes, _ = (x[image] for x in inputs)
    candidates = np.concatenate([proposals[np.any(proposals != 0, 1)],
                                 gt_boxes[class_ids[:] > 0]])
    return (candidates, numpy_iou(candidates, gt_boxes[class_ids > 0]),
            numpy_iou(candidates, gt_boxes[class_ids < 0]))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gt_count=st.integers(1, 3),
       proposal_count=st.integers(3, 10), mini_mask=st.booleans(),
       positive_ratio=st.sampled_from([0.5, 1.0]))
def test_every_candidate_fits_same_targets_as_tensorflow(seed, gt_count, proposal_count,
                                                          mini_mask, positive_ratio):
    """When every candidate has a slot, JAX/PyTorch training would otherwise learn from other
    ROIs, classes, box targets or masks than TensorFlow training on the same batch."""
    rng = np.random.default_rng(seed)
    class_ids = rng.integers(-1, 4, (2, gt_count))
    inputs = make_inputs(rng, class_ids, proposal_count, near_gt=2)
    rois_per_image = int(2 * (proposal_count + gt_count) / positive_ratio)
    layer = make_layer(rois_per_image, positive_ratio, STD_DEV, MASK_SHAPE, mini_mask,
                                 seed=seed)
    portable = run(layer, inputs, portable=True)
    assert_same_targets(portable, run(layer, inputs, portable=False))
    assert_slot_layout(portable, layer.max_positives)


@pytest.mark.parametrize("portable", [True, False], ids=["portable", "tensorflow"])
@pytest.mark.parametrize("mini_mask", [True, False], ids=["mini_mask", "full_mask"])
def test_more_candidates_than_slots_samples_valid_targets(portable, mini_mask):
    """With more candidates than slots, a wrong sampler would train on too few or too many
    positives, on mislabeled ROIs (background called object, crowds called background), or on
    box and mask targets of another ROI."""
    rng = np.random.default_rng(3)
    inputs = make_inputs(rng, [[1, 2, -1, 0], [3, 1, 2, 0]], proposal_count=40, near_gt=4)
    layer = make_layer(8, 0.25, STD_DEV, MASK_SHAPE, mini_mask, seed=7)
    outputs = run(layer, inputs, portable)
    assert_slot_layout(outputs, layer.max_positives)
    rois, class_ids, _, _ = outputs
    for image in range(2):
        candidates, gt_iou, crowd_iou = candidate_split(inputs, image)
        positive = gt_iou.max(axis=1) >= 0.5
        negative = ~positive & (crowd_iou.max(axis=1, initial=0.0) < 0.001)
        filled = rois[image][np.any(rois[image] != 0, axis=1)]
        chosen = [int(np.flatnonzero(np.all(candidates == roi, axis=1))[0]) for roi in filled]
        assert len(set(chosen)) == len(chosen), "a candidate took two slots"
        positives = min(positive.sum(), layer.max_positives)
        assert positive.sum() > layer.max_positives and negative.sum() > 8  # more than slots
        assert (class_ids[image] > 0).sum() == positives
        assert len(chosen) == positives + min(negative.sum(), 8 - positives)
        assert positive[chosen[:positives]].all() and negative[chosen[positives:]].all()

        # The targets of the chosen ROIs, by TensorFlow from those ROIs alone (all fit).
        alone = (filled[None], *(x[image:image + 1] for x in inputs[1:]))
        reference = DetectionTargetLayer(64, 1.0, STD_DEV, MASK_SHAPE, mini_mask)
        expected = {tuple(row[0]): row for row in target_rows(run(reference, alone, False), 0)}
        for row in target_rows(outputs, image):
            assert_same_rows([row], [expected[tuple(row[0])]])


@pytest.mark.parametrize("case", ["no_instances", "only_crowds", "padding_proposals",
                                  "nothing_at_all"])
def test_edge_cases_match_tensorflow(case):
    """Images without instances, with crowds only or with no proposals must still train (on
    background, or on the GT boxes alone) as they do on TensorFlow, not crash or emit garbage."""
    rng = np.random.default_rng(11)
    class_ids = {"no_instances": [[0, 0, 0]], "only_crowds": [[-1, -2, 0]],
                 "padding_proposals": [[2, 1, 0]], "nothing_at_all": [[0, 0, 0]]}[case]
    inputs = list(make_inputs(rng, class_ids, proposal_count=12, near_gt=2))
    if case in ("padding_proposals", "nothing_at_all"):
        inputs[0] = np.zeros_like(inputs[0])
    layer = make_layer(16, 0.5, STD_DEV, MASK_SHAPE, True, seed=2)
    portable = run(layer, inputs, portable=True)
    assert_same_targets(portable, run(layer, inputs, portable=False))
    assert_slot_layout(portable, layer.max_positives)
    filled = np.any(portable[0][0] != 0, axis=1).sum()
    proposals = 10  # 12, the last 2 padding
    expected = {"no_instances": filled == proposals, "only_crowds": filled < proposals,
                "padding_proposals": filled == 2, "nothing_at_all": filled == 0}
    assert expected[case], filled
    assert np.isfinite(portable[2]).all() and np.isfinite(portable[3]).all()


@pytest.mark.parametrize("mini_mask", [True, False], ids=["mini_mask", "full_mask"])
def test_positive_mask_is_the_gt_mask_cropped_to_the_roi(mini_mask):
    """A mask head trained on shifted or unbinarized masks would draw masks off the object."""
    gt_box = [0.25, 0.25, 0.75, 0.75]
    if mini_mask:  # the mask covers the GT box only: left half set
        masks = np.zeros((1, 6, 6, 1), np.float32)
        masks[0, :, :3, 0] = 1.0
    else:  # the mask covers the image (12 px): the GT box's left half set
        masks = np.zeros((1, 12, 12, 1), np.float32)
        masks[0, 3:9, 3:6, 0] = 1.0
    inputs = (np.array([[gt_box, [0, 0, 0, 0]]], np.float32), np.array([[2]], np.int32),
              np.array([[gt_box]], np.float32), masks)
    layer = make_layer(4, 0.5, STD_DEV, MASK_SHAPE, mini_mask, seed=0)
    rois, class_ids, deltas, target_masks = run(layer, inputs, portable=True)
    assert class_ids[0].tolist() == [2, 2, 0, 0]
    np.testing.assert_allclose(deltas[0], 0.0, atol=1e-6)
    expected = np.zeros(MASK_SHAPE, np.float32)
    expected[:, :3] = 1.0
    for slot in range(2):
        np.testing.assert_array_equal(target_masks[0, slot], expected)


def test_seed_repeats_the_sampling_and_is_in_the_config():
    """A seeded layer must sample the same ROIs when rebuilt from its config, or a seeded run
    could not be repeated."""
    inputs = make_inputs(np.random.default_rng(5), [[1, 2, 0]], proposal_count=40, near_gt=4)
    layer = make_layer(8, 0.25, STD_DEV, MASK_SHAPE, True, seed=123)
    with backend_ops.portable_ops():
        clone = DetectionTargetLayer.from_config(layer.get_config())
    assert clone.get_config()["seed"] == 123
    for a, b in zip(run(layer, inputs, True), run(clone, inputs, True), strict=True):
        np.testing.assert_array_equal(a, b)


def test_tensorflow_layer_has_no_variables_and_traces_again():
    """On TensorFlow the layer must stay as it was: a new variable would change what models
    hold, and break a tf.function that makes the layer when it traces again (Matterport's
    detection_targets_graph does). Called in keras.ops anyway, it must say how to get there."""
    layer = DetectionTargetLayer(8, 0.25, STD_DEV, MASK_SHAPE, True)
    assert layer.variables == []

    @tf.function
    def targets(*inputs):
        return DetectionTargetLayer(8, 0.25, STD_DEV, MASK_SHAPE, True)(*inputs)

    rng = np.random.default_rng(8)
    for proposal_count in (10, 12):  # two shapes: two traces
        targets(*make_inputs(rng, [[1, 0]], proposal_count, near_gt=2))
    with pytest.raises(ValueError, match="portable_ops"):
        run(layer, make_inputs(rng, [[1, 0]], 10, near_gt=2), portable=True)


JAX_SCRIPT = """
import sys
sys.modules["tensorflow"] = None
import jax, keras, numpy as np
from mrcnn.modeling.detection_targets import DetectionTargetLayer
inputs = np.load(sys.argv[1])
inputs = [inputs[k] for k in ("proposals", "class_ids", "gt_boxes", "masks")]
layer = DetectionTargetLayer(*{args!r}, seed={seed!r})
state = [v.value for v in layer.non_trainable_variables]
step = jax.jit(lambda state, *x: layer.stateless_call([], state, *x))
outputs, new_state = step(state, *inputs)
again, _ = step(state, *inputs)
assert all(np.array_equal(a, b) for a, b in zip(outputs, again)), "not repeatable"
assert not np.array_equal(new_state[0], state[0]), "the seed state did not advance"
np.savez(sys.argv[2], *[np.asarray(o) for o in outputs])
"""


def test_portable_layer_runs_on_jax_in_jit_without_tensorflow(tmp_path):
    """Training on the JAX/PyTorch GPU machine (no TensorFlow) needs the layer to import without
    TensorFlow, compile in jax.jit and give the targets TensorFlow gives."""
    rng = np.random.default_rng(21)
    inputs = make_inputs(rng, [[1, -1, 2], [3, 0, 0]], proposal_count=8, near_gt=2)
    args = (40, 0.5, STD_DEV, MASK_SHAPE, True)
    np.savez(tmp_path / "inputs.npz", **dict(zip(("proposals", "class_ids", "gt_boxes", "masks"),
                                                 inputs, strict=True)))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": FAST_XLA,
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT.format(args=args, seed=4), str(tmp_path / "inputs.npz"),
         str(tmp_path / "outputs.npz")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300)
    assert process.returncode == 0, process.stderr[-4000:]
    on_jax = np.load(tmp_path / "outputs.npz")
    on_jax = [on_jax[f"arr_{i}"] for i in range(4)]
    layer = make_layer(*args, seed=4)
    assert_same_targets(on_jax, run(layer, inputs, portable=True))
    assert_same_targets(on_jax, run(layer, inputs, portable=False))
    assert on_jax[1].dtype == np.int32 and np.any(on_jax[1] > 0)
