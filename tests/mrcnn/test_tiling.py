"""Tiled detection: the tile grid, merging what tiles saw of one object, crop-backed masks, and
``detect(tile_size=...)`` end to end on a tiny model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mrcnn.modeling.tiling import Instance, InstanceMasks, merge_instances, tile_grid


@settings(max_examples=200, deadline=None)
@given(height=st.integers(1, 600), width=st.integers(1, 600), tile=st.integers(8, 300),
       overlap=st.floats(0.0, 0.9))
def test_tiles_cover_the_image_inside_its_bounds_with_the_asked_overlap(height, width, tile,
                                                                        overlap):
    """Users would notice: objects in a strip no tile saw, never detected, or objects cut by a
    border that no neighbour sees whole because the overlap is smaller than asked."""
    tiles = tile_grid(height, width, tile, overlap)
    covered = np.zeros((height, width), dtype=int)
    for y1, x1, y2, x2 in tiles:
        assert 0 <= y1 < y2 <= height and 0 <= x1 < x2 <= width
        assert (y2 - y1, x2 - x1) == (min(tile, height), min(tile, width))
        covered[y1:y2, x1:x2] += 1
    assert covered.min() >= 1
    for axis in (0, 1):
        starts = sorted({t[axis] for t in tiles})
        for before, after in zip(starts, starts[1:], strict=False):
            assert tile - (after - before) >= int(tile * overlap)  # shared pixels of neighbours


def test_bad_tile_arguments_are_refused_with_their_names():
    """Users would notice: a tile size of 0 looping forever or an overlap of 1 never ending."""
    with pytest.raises(ValueError, match="tile_size"):
        tile_grid(100, 100, 0, 0.25)
    with pytest.raises(ValueError, match="tile_overlap"):
        tile_grid(100, 100, 64, 1.0)


def _instance(mask: np.ndarray, tile: tuple[int, int, int, int], class_id=1, score=0.9,
              source=0) -> Instance:
    """What a tile reports of the full-image ``mask``: its part inside the tile, boxed."""
    y1, x1, y2, x2 = tile
    part = np.zeros_like(mask)
    part[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
    rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    return Instance(box, part[box[0]:box[2], box[1]:box[3]], class_id, score, source)


def _disk(shape, center, radius) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def _dense(instance: Instance, shape) -> np.ndarray:
    full = np.zeros(shape, dtype=bool)
    y1, x1, y2, x2 = instance.box
    full[y1:y2, x1:x2] = instance.mask
    return full


def test_an_object_cut_by_tile_borders_comes_back_as_one_instance_with_its_whole_mask():
    """Users would notice: an object on a seam reported twice or four times, or half a mask."""
    shape = (120, 120)
    disk = _disk(shape, (60, 60), 15)  # on the corner where four 70 px tiles overlap
    tiles = [(0, 0, 70, 70), (0, 50, 70, 120), (50, 0, 120, 70), (50, 50, 120, 120)]
    pieces = [_instance(disk, tile, score=0.6 + 0.1 * i, source=i) for i, tile in enumerate(tiles)]
    merged = merge_instances(pieces)
    assert len(merged) == 1
    np.testing.assert_array_equal(_dense(merged[0], shape), disk)
    assert merged[0].score == pytest.approx(0.9) and merged[0].box == (45, 45, 76, 76)


def test_a_fragment_at_a_border_merges_into_the_whole_object_the_neighbour_saw():
    """Users would notice: a sliver at each tile edge counted as an extra object."""
    shape = (100, 160)
    disk = _disk(shape, (50, 75), 12)
    sliver = _instance(disk, (0, 0, 100, 70), score=0.95, source=0)  # the left edge of the disk
    whole = _instance(disk, (0, 40, 100, 160), score=0.7, source=1)
    merged = merge_instances([whole, sliver])
    assert len(merged) == 1
    np.testing.assert_array_equal(_dense(merged[0], shape), disk)


def test_touching_objects_classes_and_one_tiles_detections_stay_apart():
    """Users would notice: two adjacent cells fused into one, a cat merged with the dog it
    overlaps, or two overlapping objects the network told apart fused by the merge."""
    shape = (80, 120)
    left, right = np.zeros(shape, bool), np.zeros(shape, bool)
    left[20:60, 20:60], right[20:60, 60:100] = True, True  # touching, not overlapping
    whole = (0, 0, 80, 120)
    touching = [_instance(left, whole, source=0), _instance(right, whole, source=1)]
    assert len(merge_instances(touching)) == 2
    disk = _disk(shape, (40, 60), 15)
    classes = [_instance(disk, whole, class_id=1, source=0),
               _instance(disk, whole, class_id=2, source=1)]
    assert len(merge_instances(classes)) == 2
    one_tile = [_instance(disk, whole, source=3), _instance(disk, whole, score=0.5, source=3)]
    assert len(merge_instances(one_tile)) == 2


def test_instance_masks_index_like_the_dense_array_they_stand_for():
    """Users would notice: Matterport code doing ``r['masks'][:, :, i]`` or ``np.any(masks, -1)``
    getting other pixels from a tiled result than from a plain one."""
    boxes = [(2, 3, 6, 9), (0, 0, 4, 4), (5, 5, 10, 12)]
    rng = np.random.default_rng(0)
    crops = [rng.random((y2 - y1, x2 - x1)) > 0.5 for y1, x1, y2, x2 in boxes]
    masks = InstanceMasks(10, 12, boxes, crops)
    dense = np.zeros((10, 12, 3), bool)
    for i, ((y1, x1, y2, x2), crop) in enumerate(zip(boxes, crops, strict=True)):
        dense[y1:y2, x1:x2, i] = crop
    assert masks.shape == dense.shape and masks.dtype == bool
    np.testing.assert_array_equal(np.asarray(masks), dense)
    for i in range(3):
        np.testing.assert_array_equal(masks[:, :, i], dense[:, :, i])
        np.testing.assert_array_equal(masks[..., i], dense[..., i])
    np.testing.assert_array_equal(masks[:, :, 1:], dense[:, :, 1:])
    np.testing.assert_array_equal(masks[3:5, 4], dense[3:5, 4])
    np.testing.assert_array_equal(np.any(masks, axis=-1), dense.any(axis=-1))


@pytest.fixture(scope="module")
def eager_detector(tmp_path_factory):
    """A random-init inference model that sees objects everywhere: no confidence floor and a
    classifier biased against the background class, so every image gets detections."""
    import keras

    from mrcnn import model as modellib
    from mrcnn.config import tiny_config

    keras.utils.set_random_seed(7)
    config = tiny_config(DETECTION_MIN_CONFIDENCE=0.0, IMAGES_PER_GPU=2)
    model = modellib.MaskRCNN("inference", config, tmp_path_factory.mktemp("logs"))
    logits = model.keras_model.get_layer("mrcnn_class_logits")
    kernel, bias = logits.get_weights()
    bias[0] = -10.0
    logits.set_weights([kernel, bias])
    return model


def test_one_tile_as_large_as_the_image_detects_exactly_what_detect_does(eager_detector):
    """Users would notice: turning tiling on for a small image changing its results."""
    image = np.random.default_rng(3).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    plain = eager_detector.detect([image])[0]
    tiled = eager_detector.detect([image], tile_size=100)[0]
    assert len(plain["class_ids"]) > 0
    np.testing.assert_array_equal(tiled["rois"], plain["rois"])
    np.testing.assert_array_equal(tiled["class_ids"], plain["class_ids"])
    np.testing.assert_allclose(tiled["scores"], plain["scores"], rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(tiled["masks"]), plain["masks"])


def test_tiles_report_their_detections_in_the_whole_images_pixels(eager_detector):
    """Users would notice: detections of the right tile drawn in the left one, or shifted by a
    tile (a wrong offset when tiles are mapped back onto the image)."""
    quarter = np.random.default_rng(4).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mosaic = np.tile(quarter, (2, 2, 1))
    alone = eager_detector.detect([quarter])[0]
    tiled = eager_detector.detect([mosaic], tile_size=64, tile_overlap=0.0)[0]
    expected = sorted(
        (tuple(int(v) for v in roi + [dy, dx, dy, dx]), int(c))
        for dy in (0, 64) for dx in (0, 64)
        for roi, c in zip(alone["rois"], alone["class_ids"], strict=True))
    got = sorted((tuple(int(v) for v in roi), int(c))
                 for roi, c in zip(tiled["rois"], tiled["class_ids"], strict=True))
    assert got == expected
    top = int(np.argmax(alone["scores"]))
    y1, x1, y2, x2 = alone["rois"][top]
    right_copy = [i for i, roi in enumerate(tiled["rois"])
                  if tuple(roi) == (y1, x1 + 64, y2, x2 + 64)
                  and tiled["class_ids"][i] == alone["class_ids"][top]]
    assert any(np.array_equal(tiled["masks"][:, :, i][:64, 64:], alone["masks"][:, :, top])
               for i in right_copy)


def test_a_whole_image_pass_adds_the_downscaled_detections(eager_detector):
    """Users would notice: --tile-whole-image having no effect on objects larger than a tile."""
    image = np.random.default_rng(5).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    tiles_only = eager_detector.detect([image], tile_size=64)[0]
    both = eager_detector.detect([image], tile_size=64, tile_whole_image=True)[0]
    whole = eager_detector.detect([image])[0]
    assert len(whole["class_ids"]) > 0
    assert len(tiles_only["class_ids"]) < len(both["class_ids"]) <= (
        len(tiles_only["class_ids"]) + len(whole["class_ids"]))


def test_the_detect_command_tiles_with_its_flags_and_refuses_bad_ones(tmp_path, capsys):
    """Users would notice: ``detect --tile 64`` ignored (a large photo shrunk after all), or
    ``--tile 0`` / ``--tile-overlap 1`` crashing instead of saying what is wrong."""
    from PIL import Image

    from tests.mrcnn.test_samples import sample

    shapes = sample("shapes")
    image = np.random.default_rng(6).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "large.png")
    out = tmp_path / "out"
    common = ["detect", "--preset", "tiny", "--weights", "none", "--logs", str(tmp_path / "logs"),
              "--image", str(tmp_path / "large.png"), "--out", str(out)]
    assert shapes.main(shapes.SPEC, [*common, "--tile", "64", "--tile-overlap", "0.5",
                                     "--tile-whole-image"]) == 0
    assert (out / "large.png").is_file() and (out / "detections.json").is_file()
    assert "in 24 tiles of 64 px" in capsys.readouterr().out  # 150 x 200 px: 4 x 6 tiles
    for flags, named in ((["--tile", "0"], "--tile"), (["--tile", "64", "--tile-overlap", "1"],
                                                       "--tile-overlap")):
        with pytest.raises(SystemExit) as exit_info:
            shapes.main(shapes.SPEC, [*common, *flags])
        assert exit_info.value.code == 2 and named in capsys.readouterr().err
