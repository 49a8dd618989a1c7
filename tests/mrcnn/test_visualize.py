"""Headless drawing: every function returns a Figure and writes a real PNG when asked."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from mrcnn import visualize
from mrcnn.evaluation.matterport_ap import compute_ap
from mrcnn.geometry.boxes import extract_bboxes

CLASS_NAMES = ["BG", "square", "circle"]


@pytest.fixture
def scene():
    image = np.full((48, 64, 3), 40, np.uint8)
    masks = np.zeros((48, 64, 2), bool)
    masks[5:20, 5:25, 0] = True
    masks[25:45, 30:60, 1] = True
    return image, extract_bboxes(masks), masks, np.array([1, 2])


def _assert_png(path):
    assert path.stat().st_size > 1000
    with Image.open(path) as png:
        assert png.format == "PNG" and png.size[0] > 50


def test_display_instances_writes_png_and_never_needs_a_display(scene, tmp_path):
    image, boxes, masks, class_ids = scene
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      scores=np.array([0.9, 0.8]), title="t",
                                      save_path=tmp_path / "out.png")
    assert isinstance(fig, Figure)
    _assert_png(tmp_path / "out.png")
    assert not image[image != 40].any(), "the caller's image must not be modified"


def test_display_instances_draws_into_given_axes_and_handles_no_instances(scene):
    image = scene[0]
    fig = Figure()
    ax = fig.add_subplot(1, 2, 2)
    assert visualize.display_instances(image, np.zeros((0, 4)), np.zeros((48, 64, 0), bool),
                                       np.zeros(0), CLASS_NAMES, ax=ax) is fig


def test_display_instances_rejects_mismatched_lengths(scene):
    image, boxes, masks, _ = scene
    with pytest.raises(ValueError, match="2 boxes, 2 masks and 1 class ids"):
        visualize.display_instances(image, boxes, masks, np.array([1]), CLASS_NAMES)


def test_apply_mask_blends_only_masked_pixels():
    image = np.zeros((4, 4, 3), np.float32)
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    visualize.apply_mask(image, mask, (1.0, 0.0, 0.0), alpha=0.5)
    np.testing.assert_allclose(image[0, 0], [127.5, 0, 0])
    assert not image[1:].any()


def test_random_colors_are_distinct_and_reproducible():
    colors = visualize.random_colors(5, seed=1)
    assert len(set(colors)) == 5 and colors == visualize.random_colors(5, seed=1)


def test_draw_box_outlines_in_place():
    image = np.zeros((10, 10, 3), np.uint8)
    visualize.draw_box(image, (2, 2, 8, 8), (255, 0, 0))
    assert image[2, 5, 0] == 255 and image[5, 2, 0] == 255 and image[5, 5, 0] == 0


def test_other_plots_write_pngs(scene, tmp_path):
    image, boxes, masks, class_ids = scene
    scores = np.array([0.9, 0.6])
    ap, precisions, recalls, overlaps = compute_ap(boxes, class_ids, masks, boxes, class_ids,
                                                   scores, masks)
    outputs = {
        "differences": visualize.display_differences(image, boxes, class_ids, masks, boxes,
                                                     class_ids, scores, masks, CLASS_NAMES,
                                                     save_path=tmp_path / "differences.png"),
        "boxes": visualize.draw_boxes(image, boxes=boxes, refined_boxes=boxes + 2, masks=masks,
                                      captions=["a", "b"], visibilities=[2, 1],
                                      save_path=tmp_path / "boxes.png"),
        "top_masks": visualize.display_top_masks(image, masks, class_ids, CLASS_NAMES,
                                                 save_path=tmp_path / "top_masks.png"),
        "pr": visualize.plot_precision_recall(ap, precisions, recalls,
                                              save_path=tmp_path / "pr.png"),
        "overlaps": visualize.plot_overlaps(class_ids, class_ids, scores, overlaps, CLASS_NAMES,
                                            save_path=tmp_path / "overlaps.png"),
        "images": visualize.display_images([image, image], titles=["a", "b"],
                                           save_path=tmp_path / "images.png"),
    }
    for name, fig in outputs.items():
        assert isinstance(fig, Figure), name
        _assert_png(tmp_path / f"{name}.png")


def test_display_instances_paints_each_mask_in_its_color_where_the_instance_is(scene):
    """Users read detections off this picture: each mask must be tinted in its own color at
    its own place, and the background left as it was."""
    image, boxes, masks, class_ids = scene
    fig = visualize.display_instances(image, boxes, masks, class_ids, CLASS_NAMES,
                                      figsize=(4, 3), colors=[(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)],
                                      show_bbox=False)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    ax = fig.axes[0]

    def rendered(y, x):  # the rendered color at image pixel (y, x)
        px, py = ax.transData.transform((x, y))
        return pixels[pixels.shape[0] - 1 - int(round(py)), int(round(px))]

    red, blue, background = rendered(12, 15), rendered(35, 45), rendered(40, 10)
    assert red[0] > red[2] + 60 and red[0] > 100, red
    assert blue[2] > blue[0] + 60 and blue[2] > 100, blue
    assert np.abs(background - 40).max() <= 3, background
