"""Non-RGB image files (16-bit PNG, TIFF, multi-page TIFF, .npy) from disk to detect()."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mrcnn.config import ConfigError, tiny_config
from mrcnn.data.dataset import Dataset, DatasetError, compute_pixel_statistics
from mrcnn.data.datasets.coco import CocoDataset
from mrcnn.data.datasets.nucleus import NucleusDataset
from mrcnn.data.datasets.via import ViaDataset
from mrcnn.data.image_io import load_image_channels, load_rgb_image, read_image_size
from mrcnn.data.pipeline import load_image_gt
from mrcnn.geometry.imaging import mold_image, resize_image

H, W = 40, 56
RNG = np.random.default_rng(14)


def _files_dataset(paths, channels: int = 3) -> Dataset:
    dataset = Dataset()
    dataset.image_channel_count = channels
    dataset.add_class("files", 1, "thing")
    for index, path in enumerate(paths):
        dataset.add_image("files", image_id=index, path=path)
    dataset.prepare()
    return dataset


def _stack(channels: int, dtype=np.uint16) -> np.ndarray:
    high = 65535 if dtype == np.uint16 else 255
    return RNG.integers(0, high, (H, W, channels), endpoint=True).astype(dtype)


def _write_tiff_pages(path, stack: np.ndarray) -> None:
    """One page per channel, written one by one as acquisition scripts do."""
    with tifffile.TiffWriter(path) as writer:
        for band in np.moveaxis(stack, 2, 0):
            writer.write(band, photometric="minisblack")


# --------------------------------------------------------------------------------------------
# Matterport compatibility: ordinary 8-bit files load exactly as before.
@pytest.mark.parametrize("name, mode", [("rgb.png", "RGB"), ("gray.png", "L"),
                                        ("rgba.png", "RGBA"), ("palette.png", "P"),
                                        ("photo.jpg", "RGB"), ("gray.jpg", "L"),
                                        ("rgb.tif", "RGB"), ("rgba.tif", "RGBA")])
def test_8_bit_files_load_exactly_as_the_rgb_loader_does(tmp_path, name, mode):
    """Users would notice: a COCO/balloon model fine-tuned before this change sees other pixels
    (a grey JPEG no longer replicated, an alpha channel kept, a TIFF read another way)."""
    pixels = _stack(4, np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    image.save(tmp_path / name)
    dataset = _files_dataset([tmp_path / name])
    loaded = dataset.load_image(0)
    np.testing.assert_array_equal(loaded, load_rgb_image(tmp_path / name))
    assert loaded.dtype == np.uint8 and loaded.shape == (H, W, 3)


@pytest.mark.parametrize("name, mode", [("rgb.png", "RGB"), ("gray.png", "L"),
                                        ("rgba.png", "RGBA"), ("gray16.png", "I;16")])
def test_png_files_load_as_matterports_skimage_reader_does(tmp_path, name, mode):
    """Users would notice: Matterport's load_image (skimage.io.imread, gray2rgb, alpha cut)
    gave other values for the same file, 16-bit grey included (it kept 16 bits too)."""
    import skimage.color
    import skimage.io

    if mode == "I;16":
        Image.fromarray(_stack(1)[:, :, 0]).save(tmp_path / name)
    else:
        Image.fromarray(_stack(4, np.uint8), "RGBA").convert(mode).save(tmp_path / name)
    matterport = skimage.io.imread(tmp_path / name)
    if matterport.ndim != 3:
        matterport = skimage.color.gray2rgb(matterport)
    if matterport.shape[-1] == 4:
        matterport = matterport[..., :3]
    loaded = _files_dataset([tmp_path / name]).load_image(0)
    assert loaded.dtype == matterport.dtype
    np.testing.assert_array_equal(loaded, matterport)


# --------------------------------------------------------------------------------------------
# 16-bit PNG, TIFF, multi-page TIFF and .npy keep their values.
def test_16_bit_png_keeps_its_16_bits_in_gray_and_colour(tmp_path):
    """Users would notice: 16-bit microscopy or depth PNGs lose their low byte (Pillow cuts
    16-bit colour to 8 bits), or come back with red and blue swapped (OpenCV's BGR)."""
    gray, rgb = _stack(1), _stack(3)
    Image.fromarray(gray[:, :, 0]).save(tmp_path / "gray.png")
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[:, :, ::-1])
    np.testing.assert_array_equal(load_image_channels(tmp_path / "gray.png", 1), gray)
    np.testing.assert_array_equal(load_image_channels(tmp_path / "gray.png", 3),
                                  np.repeat(gray, 3, axis=2))
    loaded = load_image_channels(tmp_path / "rgb.png", 3)
    assert loaded.dtype == np.uint16
    np.testing.assert_array_equal(loaded, rgb)


def test_tiff_pages_and_samples_become_channels_in_file_order(tmp_path):
    """Users would notice: a 5-band multispectral TIFF loads as its first page only, or with
    its bands shuffled, or pages of RGB interleaved other than page by page."""
    bands = _stack(5)
    _write_tiff_pages(tmp_path / "bands.tif", bands)
    np.testing.assert_array_equal(load_image_channels(tmp_path / "bands.tif", 5), bands)
    tifffile.imwrite(tmp_path / "stack.tif", np.moveaxis(bands, 2, 0), photometric="minisblack")
    np.testing.assert_array_equal(load_image_channels(tmp_path / "stack.tif", 5), bands)
    Image.fromarray(bands[:, :, 0]).save(tmp_path / "pillow.tif", save_all=True,
                                         append_images=[Image.fromarray(bands[:, :, 1])])
    np.testing.assert_array_equal(load_image_channels(tmp_path / "pillow.tif", 2), bands[:, :, :2])
    rgb_pages = _stack(6, np.uint8)
    tifffile.imwrite(tmp_path / "rgb_pages.tif",
                     np.stack([rgb_pages[:, :, :3], rgb_pages[:, :, 3:]]), photometric="rgb")
    np.testing.assert_array_equal(load_image_channels(tmp_path / "rgb_pages.tif", 6), rgb_pages)
    floats = RNG.random((H, W, 4)).astype(np.float32)
    tifffile.imwrite(tmp_path / "float.tif", floats, photometric="minisblack",
                     planarconfig="contig")
    loaded = load_image_channels(tmp_path / "float.tif", 4)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, floats)
    assert read_image_size(tmp_path / "bands.tif") == (H, W)


def test_npy_stacks_load_channels_last_in_their_dtype(tmp_path):
    """Users would notice: an [H, W] or [H, W, N] array saved with np.save loads scaled,
    converted to uint8 or with the wrong channel count."""
    for dtype, channels in ((np.float32, 4), (np.int16, 1), (np.uint16, 2)):
        stack = RNG.integers(-300, 300, (H, W, channels)).astype(dtype)
        np.save(tmp_path / "a.npy", stack if channels > 1 else stack[:, :, 0])
        loaded = load_image_channels(tmp_path / "a.npy", channels)
        assert loaded.dtype == dtype
        np.testing.assert_array_equal(loaded, stack)
    assert read_image_size(tmp_path / "a.npy") == (H, W)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stack=hnp.arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9),
                                             st.integers(1, 6))))
def test_random_uint16_stacks_round_trip_through_tiff_and_npy(tmp_path, stack):
    """Users would notice: some stack sizes (1-pixel rows, one band) or values (0, 65535)
    come back changed from the file they wrote."""
    channels = stack.shape[2]
    _write_tiff_pages(tmp_path / "s.tif", stack)
    np.save(tmp_path / "s.npy", stack)
    for name in ("s.tif", "s.npy"):
        loaded = load_image_channels(tmp_path / name, channels)
        assert loaded.dtype == np.uint16
        np.testing.assert_array_equal(loaded, stack, err_msg=name)


# --------------------------------------------------------------------------------------------
# Bad input names the file and what was expected.
def _bad_files(root):
    (root / "garbage.tif").write_bytes(b"II*\x00" + bytes(range(60)))
    _write_tiff_pages(root / "cut.tif", _stack(3))
    (root / "cut.tif").write_bytes((root / "cut.tif").read_bytes()[:300])
    np.save(root / "rank1.npy", np.zeros(7, np.uint8))
    np.save(root / "rank4.npy", np.zeros((2, 3, 4, 5), np.uint8))
    np.save(root / "bool.npy", np.zeros((4, 4), bool))
    np.save(root / "complex.npy", np.zeros((4, 4), np.complex64))
    np.save(root / "object.npy", np.array([[None]], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("name, expected", [
    ("garbage.tif", "not a readable TIFF"),
    ("cut.tif", "not a readable TIFF"),
    ("rank1.npy", r"shape \[7\]; expected \[H, W\] or \[H, W, N\]"),
    ("rank4.npy", r"shape \[2, 3, 4, 5\]; expected \[H, W\] or \[H, W, N\]"),
    ("bool.npy", "bool values; expected an integer or float array"),
    ("complex.npy", "complex64 values; expected an integer or float array"),
    ("object.npy", "not a readable .npy array"),
])
def test_bad_files_raise_dataset_error_naming_file_and_expectation(tmp_path, name, expected):
    """Users would notice: a bad file in a folder of thousands crashes deep inside numpy or
    tifffile (or loads as garbage) without saying which file it was."""
    _bad_files(tmp_path)
    with pytest.raises(DatasetError, match=f"{name}.*{expected}"):
        load_image_channels(tmp_path / name, 3)


def test_channel_count_mismatch_names_file_and_both_counts(tmp_path):
    """Users would notice: a 4-band TIFF fed to a 3-channel setup fails as a shape error inside
    TensorFlow, or silently loses a band."""
    _write_tiff_pages(tmp_path / "four.tif", _stack(4))
    with pytest.raises(DatasetError, match=r"four.tif has 4 channel\(s\), expected 3"):
        load_image_channels(tmp_path / "four.tif", 3)


def test_pipeline_checks_the_loaded_channels_against_the_config(tmp_path):
    """Users would notice: training a 4-channel config on a dataset still set to RGB fails
    with a TensorFlow shape error instead of saying which setting to change."""
    _write_tiff_pages(tmp_path / "four.tif", _stack(4, np.uint8))
    config = tiny_config(IMAGE_CHANNEL_COUNT=3)
    dataset = _files_dataset([tmp_path / "four.tif"], channels=4)
    with pytest.raises(DatasetError, match=r"four.tif\) has 4 channel\(s\) but the config's "
                                           r"IMAGE_CHANNEL_COUNT is 3; set dataset\."
                                           r"image_channel_count = 3 \(it is 4\)"):
        load_image_gt(dataset, config, 0)


# --------------------------------------------------------------------------------------------
# VIA, COCO and folder datasets on disk.
def test_via_dataset_loads_multi_page_tiffs(tmp_path):
    """Users would notice: a VIA project over multispectral TIFFs skips every image (VIA
    stores no size and Pillow cannot read the header) or loads 3 of the 5 bands."""
    bands = _stack(5)
    _write_tiff_pages(tmp_path / "scene.tif", bands)
    region = {"shape_attributes": {"name": "rect", "x": 5, "y": 6, "width": 20, "height": 10},
              "region_attributes": {}}
    (tmp_path / "via.json").write_text(json.dumps(
        {"scene.tif1": {"filename": "scene.tif", "size": 1, "regions": [region]}}))
    dataset = ViaDataset()
    dataset.image_channel_count = 5
    dataset.load_via(tmp_path)
    dataset.prepare()
    np.testing.assert_array_equal(dataset.load_image(0), bands)
    masks, _ = dataset.load_mask(0)
    assert masks.shape == (H, W, 1) and masks[6:16, 5:25, 0].all()


def test_coco_dataset_loads_npy_and_16_bit_png_images(tmp_path):
    """Users would notice: a COCO file listing .npy stacks or 16-bit PNGs without stored
    sizes drops those images, or hands the model 8-bit values."""
    depth = _stack(1)
    np.save(tmp_path / "rgbd.npy", np.concatenate([_stack(3), depth], axis=2))
    Image.fromarray(depth[:, :, 0]).save(tmp_path / "depth.png")
    annotation = {"id": 1, "image_id": 1, "category_id": 3, "iscrowd": 0,
                  "segmentation": [[4, 4, 30, 4, 30, 20, 4, 20]]}
    (tmp_path / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "rgbd.npy"}, {"id": 2, "file_name": "depth.png"}],
        "categories": [{"id": 3, "name": "box"}],
        "annotations": [annotation, dict(annotation, id=2, image_id=2)],
    }))
    rgbd = CocoDataset()
    rgbd.image_channel_count = 4
    rgbd.load_coco_annotations(tmp_path / "ann.json", tmp_path)
    rgbd.prepare()
    assert rgbd.image_info[0]["height"] == H and rgbd.image_info[1]["width"] == W
    assert rgbd.load_image(0).shape == (H, W, 4) and rgbd.load_image(0).dtype == np.uint16
    rgbd.image_channel_count = 1
    np.testing.assert_array_equal(rgbd.load_image(1), depth)
    assert rgbd.load_mask(1)[0].shape == (H, W, 1)


def test_nucleus_folder_dataset_loads_16_bit_grey_images(tmp_path):
    """Users would notice: the one-folder-per-image layout with 16-bit grey microscopy PNGs
    gives 8-bit RGB, so a 1-channel model cannot train on it."""
    gray = _stack(1)
    folder = tmp_path / "stage1_train" / "cell"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    Image.fromarray(gray[:, :, 0]).save(folder / "images" / "cell.png")
    mask = np.zeros((H, W), np.uint8)
    mask[10:20, 10:30] = 255
    Image.fromarray(mask).save(folder / "masks" / "m0.png")
    dataset = NucleusDataset()
    dataset.image_channel_count = 1
    dataset.load_nucleus(tmp_path, "train")
    dataset.prepare()
    np.testing.assert_array_equal(dataset.load_image(0), gray)
    assert dataset.load_mask(0)[0].shape == (H, W, 1)


# --------------------------------------------------------------------------------------------
# Resizing, molding, statistics.
def test_resize_image_treats_every_channel_as_scikit_image_does(tmp_path):
    """Users would notice: a 5-band uint16 image resized differently per band than a single
    band (bands shifting against each other), or wrapped around at 65535."""
    from skimage.transform import resize as skimage_resize

    image = _stack(5)
    resized, window, scale, _, _ = resize_image(image, min_dim=64, max_dim=96, mode="square")
    assert resized.dtype == np.uint16 and resized.shape == (96, 96, 5)
    y1, x1, y2, x2 = window
    want = skimage_resize(image, (y2 - y1, x2 - x1), order=1, mode="constant", cval=0,
                          clip=True, preserve_range=True, anti_aliasing=False).astype(np.uint16)
    np.testing.assert_array_equal(resized[y1:y2, x1:x2], want)
    for band in range(5):
        alone = resize_image(image[:, :, band:band + 1], min_dim=64, max_dim=96)[0]
        np.testing.assert_array_equal(alone[:, :, 0], resized[:, :, band])


def test_mold_image_divides_by_pixel_std_and_is_unchanged_without_it():
    """Users would notice: PIXEL_STD ignored (16-bit values reach the network in the tens of
    thousands), or Matterport's molding changed for everyone who does not set it."""
    image = _stack(4)
    mean, std = [30000.0, 20000.0, 100.0, 7.5], [9000.0, 1.0, 50.0, 0.25]
    plain = tiny_config(IMAGE_CHANNEL_COUNT=4, MEAN_PIXEL=mean)
    scaled = tiny_config(IMAGE_CHANNEL_COUNT=4, MEAN_PIXEL=mean, PIXEL_STD=std)
    matterport = (image.astype(np.float32) - np.asarray(mean)).astype(np.float32)
    np.testing.assert_array_equal(mold_image(image, plain), matterport)
    want = ((image.astype(np.float64) - mean) / np.asarray(std)).astype(np.float32)
    np.testing.assert_array_equal(mold_image(image, scaled), want)


def test_pixel_std_is_validated_and_survives_the_run_config():
    """Users would notice: a PIXEL_STD with a zero or the wrong length trains on inf/NaN, or a
    run folder's config.json loses it so evaluate molds differently than train did."""
    with pytest.raises(ConfigError, match="PIXEL_STD"):
        tiny_config(PIXEL_STD=[1.0, 2.0])
    with pytest.raises(ConfigError, match="PIXEL_STD"):
        tiny_config(PIXEL_STD=[1.0, 0.0, 1.0])
    config = tiny_config(PIXEL_STD=[58.4, 57.1, 57.4])
    again = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert list(again.PIXEL_STD) == [58.4, 57.1, 57.4]


def test_pixel_statistics_are_the_per_channel_mean_and_std(tmp_path):
    """Users would notice: MEAN_PIXEL/PIXEL_STD computed by the helper differ from the data's
    real statistics, so 16-bit inputs reach the network off-centre."""
    stacks = [_stack(3), _stack(3)[:20]]
    for index, stack in enumerate(stacks):
        np.save(tmp_path / f"{index}.npy", stack)
    dataset = _files_dataset([tmp_path / "0.npy", tmp_path / "1.npy"])
    mean, std = compute_pixel_statistics(dataset)
    pixels = np.concatenate([s.reshape(-1, 3) for s in stacks]).astype(np.float64)
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-9)


# --------------------------------------------------------------------------------------------
# The model, the export graph and the drawing.
def test_a_5_band_tiff_trains_a_sample_and_detects_end_to_end(tmp_path):
    """Users would notice: a multispectral model cannot be fed from its files: the training
    sample or detect() fails on uint16 data, or the result does not match the image size."""
    from mrcnn import model as modellib

    bands = _stack(5)
    _write_tiff_pages(tmp_path / "scene.tif", bands)
    dataset = _files_dataset([tmp_path / "scene.tif"], channels=5)
    mean, std = compute_pixel_statistics(dataset)
    config = tiny_config(IMAGE_CHANNEL_COUNT=5, MEAN_PIXEL=mean.tolist(),
                         PIXEL_STD=std.tolist(), IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0)
    image, meta, *_ = load_image_gt(dataset, config, 0)
    assert image.dtype == np.uint16 and image.shape == (64, 64, 5)
    model = modellib.MaskRCNN("inference", config, tmp_path)
    result = model.detect([dataset.load_image(0)])[0]
    assert result["masks"].shape[:2] == (H, W)
    assert len(result["rois"]) == len(result["class_ids"]) == result["masks"].shape[2]
    with pytest.raises(TypeError, match="dtype bool"):
        model.detect([np.zeros((H, W, 5), bool)])


def test_export_molds_with_pixel_std_and_refuses_a_16_bit_mean():
    """Users would notice: an exported model scales its input differently than detect() does,
    or silently accepts uint8 images for a model trained on 16-bit data."""
    import tensorflow as tf

    from mrcnn.export import ExportError, check_exportable
    from mrcnn.export.molding import mold_one_image

    config = tiny_config(PIXEL_STD=[58.4, 57.1, 57.4], IMAGES_PER_GPU=1)
    image = _stack(3, np.uint8)
    molded = mold_one_image(tf.constant(image), config)["molded"].numpy()[0]
    resized = resize_image(image, min_dim=config.IMAGE_MIN_DIM, max_dim=config.IMAGE_MAX_DIM,
                           min_scale=config.IMAGE_MIN_SCALE, mode=config.IMAGE_RESIZE_MODE)[0]
    want = mold_image(resized, config)
    np.testing.assert_array_equal(molded, want)
    check_exportable(config)
    with pytest.raises(ExportError, match="MEAN_PIXEL"):
        check_exportable(tiny_config(MEAN_PIXEL=[30000.0, 20000.0, 10000.0]))


def test_display_instances_draws_a_4_band_16_bit_image_to_png(tmp_path):
    """Users would notice: drawing an RGB-NIR image shows the NIR band as transparency, a
    16-bit image as white, or a chosen band mapping is ignored."""
    from mrcnn.visualize import compute_display_rgb, display_instances

    image = _stack(4)
    mask = np.zeros((H, W, 1), bool)
    mask[5:15, 5:25] = True
    display_instances(image, np.array([[5, 5, 15, 25]]), mask, np.array([1]), ["BG", "thing"],
                      save_path=tmp_path / "four.png")
    drawn = np.asarray(Image.open(tmp_path / "four.png"))
    assert drawn.ndim == 3 and drawn.shape[2] in (3, 4) and drawn.std() > 0
    rgb = _stack(3, np.uint8)
    np.testing.assert_array_equal(compute_display_rgb(rgb), rgb.astype(np.float32))
    false_colour = compute_display_rgb(image, channels=(3, 0, 1))
    assert false_colour.min() == 0 and false_colour.max() == 255
    picked = image[:, :, [3, 0, 1]].astype(np.float64)
    np.testing.assert_allclose(false_colour,
                               (picked - picked.min()) * 255 / (picked.max() - picked.min()),
                               rtol=1e-5)
