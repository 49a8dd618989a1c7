"""Matterport-compatible drawing of images, masks, boxes and metrics; headless.

Every plotting function draws into ``ax`` when given (a matplotlib Axes, or a sequence of Axes
for the multi-panel ones), otherwise into a new Figure that is not registered with pyplot (so
loops over many images leak nothing). Each returns its Figure, and writes a PNG when
``save_path`` is given. Nothing calls ``plt.show()``. Boxes are (y1, x1, y2, x2) in pixels.
"""

from __future__ import annotations

import colorsys
import itertools
import logging
import random
from collections.abc import Sequence
from os import PathLike

import numpy as np
from matplotlib import patches
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from skimage.measure import find_contours

from mrcnn.evaluation.matterport_ap import compute_matches
from mrcnn.geometry.imaging import unmold_mask

logger = logging.getLogger(__name__)

SavePath = str | PathLike | None


def random_colors(N: int, bright: bool = True, seed: int | None = None) -> list[tuple]:  # noqa: N803
    """``N`` visually distinct RGB colours in [0, 1] (evenly spaced hues, shuffled)."""
    brightness = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / max(N, 1), 1, brightness) for i in range(N)]
    random.Random(seed).shuffle(colors)
    return colors


def apply_mask(image: np.ndarray, mask: np.ndarray, color: Sequence[float],
               alpha: float = 0.5) -> np.ndarray:
    """Blend ``color`` (RGB in [0, 1]) into ``image`` [H, W, 3] where ``mask`` [H, W] is set.

    Modifies ``image`` in place (as Matterport does) and returns it.
    """
    selected = np.asarray(mask) == 1
    for c in range(3):
        channel = image[:, :, c]
        channel[selected] = channel[selected] * (1 - alpha) + alpha * color[c] * 255
    return image


def compute_display_rgb(image: np.ndarray, channels: Sequence[int] | None = None) -> np.ndarray:
    """The three channels of ``image`` [H, W, C] (or [H, W]) that are drawn, as float32
    [H, W, 3] in 0..255.

    channels: which channel shows as red, green and blue (default: the first three; one
    channel is grey, two show as (0, 1, 1)). Values in 0..255 (uint8 photos) are drawn as they
    are, as Matterport does; wider ones (16-bit, float) are stretched linearly from the
    picked channels' minimum to their maximum.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if channels is None:
        channels = {1: (0, 0, 0), 2: (0, 1, 1)}.get(image.shape[2], (0, 1, 2))
    if len(channels) != 3 or not all(0 <= c < image.shape[2] for c in channels):
        raise ValueError(f"channels must be 3 indices into the image's {image.shape[2]} "
                         f"channels, got {channels!r}")
    picked = image[:, :, list(channels)].astype(np.float32)
    low, high = (float(picked.min()), float(picked.max())) if picked.size else (0.0, 0.0)
    if low < 0 or high > 255:
        picked = (picked - low) * (255.0 / (high - low) if high > low else 0.0)
    return picked


def display_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None,
                   cols: int = 4, cmap=None, norm=None, interpolation=None,
                   ax: Sequence[Axes] | None = None, save_path: SavePath = None) -> Figure:
    """Show images in a grid of ``cols`` columns, with optional titles."""
    titles = list(titles) if titles is not None else [""] * len(images)
    rows = max(1, -(-len(images) // cols))
    fig, axes = _panels(ax, rows, cols, len(images), figsize=(14, 14 * rows / cols))
    for panel, image, title in zip(axes, images, titles, strict=False):
        panel.set_title(title, fontsize=9)
        panel.axis("off")
        panel.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm,
                     interpolation=interpolation)
    return _finish(fig, save_path)


def display_instances(image: np.ndarray, boxes: np.ndarray, masks: np.ndarray,
                      class_ids: np.ndarray, class_names: Sequence[str],
                      scores: np.ndarray | None = None, title: str = "",
                      figsize: tuple[float, float] = (16, 16), ax: Axes | None = None,
                      show_mask: bool = True, show_bbox: bool = True,
                      colors: Sequence[tuple] | None = None,
                      captions: Sequence[str] | None = None,
                      save_path: SavePath = None,
                      channels: Sequence[int] | None = None) -> Figure:
    """Draw instances on an image [H, W, C]: boxes [N, 4], masks bool[H, W, N], class ids [N].

    scores [N] are added to the labels; captions [N] replace them; colors [N] are RGB in [0, 1].
    channels: the image channels drawn as red, green, blue (see :func:`compute_display_rgb`).
    """
    boxes = np.asarray(boxes).reshape(-1, 4)
    # A tiled detect()'s InstanceMasks stays as it is: masks[:, :, i] builds one mask at a time.
    masks = masks if hasattr(masks, "shape") else np.asarray(masks)
    class_ids = np.asarray(class_ids).reshape(-1)
    count = boxes.shape[0]
    if count == 0:
        logger.info("display_instances: no instances to display")
    elif not (count == masks.shape[-1] == class_ids.shape[0]):
        raise ValueError(f"got {count} boxes, {masks.shape[-1]} masks and {class_ids.shape[0]} "
                         "class ids; they must have the same length")
    fig, ax = _single(ax, figsize)
    colors = list(colors) if colors is not None else random_colors(count)
    height, width = image.shape[:2]
    ax.set_ylim(height + 10, -10)
    ax.set_xlim(-10, width + 10)
    ax.axis("off")
    ax.set_title(title)

    masked_image = compute_display_rgb(image, channels)
    for i in range(count):
        color = colors[i]
        if not np.any(boxes[i]):
            continue  # a zero box: the instance was cropped out
        y1, x1, y2, x2 = boxes[i]
        if show_bbox:
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=0.7,
                                           linestyle="dashed", edgecolor=color, facecolor="none"))
        if captions is not None:
            caption = captions[i]
        else:
            label = _class_name(class_names, class_ids[i])
            caption = f"{label} {scores[i]:.3f}" if scores is not None else label
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")
        mask = masks[:, :, i]
        if show_mask:
            apply_mask(masked_image, mask, color)
        _draw_outline(ax, mask, color)
    ax.imshow(np.clip(masked_image, 0, 255).astype(np.uint8))
    return _finish(fig, save_path)


def display_differences(image: np.ndarray, gt_box: np.ndarray, gt_class_id: np.ndarray,
                        gt_mask: np.ndarray, pred_box: np.ndarray, pred_class_id: np.ndarray,
                        pred_score: np.ndarray, pred_mask: np.ndarray,
                        class_names: Sequence[str], title: str = "", ax: Axes | None = None,
                        show_mask: bool = True, show_box: bool = True,
                        iou_threshold: float = 0.5, score_threshold: float = 0.5,
                        save_path: SavePath = None) -> Figure:
    """Ground truth (green) and predictions (red) on one image; captions are score / IoU."""
    order = np.argsort(np.asarray(pred_score), kind="stable")[::-1]
    pred_box, pred_class_id = np.asarray(pred_box)[order], np.asarray(pred_class_id)[order]
    pred_score, pred_mask = np.asarray(pred_score)[order], np.asarray(pred_mask)[..., order]
    gt_match, pred_match, overlaps = compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    colors = [(0, 1, 0, 0.8)] * len(gt_match) + [(1, 0, 0, 1)] * len(pred_match)
    ious = [overlaps[i, int(match)] if match > -1 else overlaps[i].max(initial=0)
            for i, match in enumerate(pred_match)]
    captions = [""] * len(gt_match) + [f"{pred_score[i]:.2f} / {iou:.2f}"
                                       for i, iou in enumerate(ious)]
    return display_instances(
        image,
        np.concatenate([np.asarray(gt_box)[: len(gt_match)], pred_box[: len(pred_match)]]),
        np.concatenate([np.asarray(gt_mask)[..., : len(gt_match)],
                        pred_mask[..., : len(pred_match)]], axis=-1),
        np.concatenate([np.asarray(gt_class_id)[: len(gt_match)],
                        pred_class_id[: len(pred_match)]]),
        class_names,
        np.concatenate([np.zeros(len(gt_match)), pred_score[: len(pred_match)]]),
        title=title or "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU",
        ax=ax, show_bbox=show_box, show_mask=show_mask, colors=colors, captions=captions,
        save_path=save_path,
    )


def draw_box(image: np.ndarray, box: Sequence[int], color) -> np.ndarray:
    """Draw a 2-pixel box outline into ``image`` [H, W, C] in place (numpy, no figure)."""
    y1, x1, y2, x2 = (int(v) for v in box[:4])
    image[y1 : y1 + 2, x1:x2] = color
    image[y2 : y2 + 2, x1:x2] = color
    image[y1:y2, x1 : x1 + 2] = color
    image[y1:y2, x2 : x2 + 2] = color
    return image


def draw_boxes(image: np.ndarray, boxes: np.ndarray | None = None,
               refined_boxes: np.ndarray | None = None, masks: np.ndarray | None = None,
               captions: Sequence[str] | None = None,
               visibilities: Sequence[int] | None = None, title: str = "",
               ax: Axes | None = None, save_path: SavePath = None) -> Figure:
    """Draw boxes and their refinements (e.g. anchors -> proposals) with optional masks.

    visibilities: per box 0 (skip), 1 (faint dotted) or 2 (solid, the default).
    """
    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes needs boxes, refined_boxes or both")
    count = len(boxes) if boxes is not None else len(refined_boxes)
    fig, ax = _single(ax, (12, 12))
    colors = random_colors(count)
    margin = image.shape[0] // 10
    ax.set_ylim(image.shape[0] + margin, -margin)
    ax.set_xlim(-margin, image.shape[1] + margin)
    ax.axis("off")
    ax.set_title(title)
    masked_image = compute_display_rgb(image)
    for i in range(count):
        visibility = visibilities[i] if visibilities is not None else 1
        if visibility == 0:
            color, style, alpha = "gray", "dotted", 0.5
        elif visibility == 1:
            color, style, alpha = colors[i], "dotted", 1.0
        else:
            color, style, alpha = colors[i], "solid", 1.0
        if boxes is not None and np.any(boxes[i]):
            y1, x1, y2, x2 = boxes[i]
            ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, alpha=alpha,
                                           linestyle=style, edgecolor=color, facecolor="none"))
        if refined_boxes is not None and visibility > 0:
            ry1, rx1, ry2, rx2 = np.asarray(refined_boxes[i]).astype(np.int32)
            ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                           edgecolor=color, facecolor="none"))
            if boxes is not None and np.any(boxes[i]):  # connect the top-left corners
                ax.add_line(Line2D([boxes[i][1], rx1], [boxes[i][0], ry1], color=color))
        if captions is not None:
            y1, x1 = (refined_boxes if refined_boxes is not None else boxes)[i][:2]
            ax.text(x1, y1, captions[i], size=11, verticalalignment="top", color="w",
                    backgroundcolor="none", bbox={"facecolor": color, "alpha": 0.5, "pad": 2,
                                                  "edgecolor": "none"})
        if masks is not None:
            apply_mask(masked_image, masks[:, :, i], to_rgb(color))
            _draw_outline(ax, masks[:, :, i], color)
    ax.imshow(np.clip(masked_image, 0, 255).astype(np.uint8))
    return _finish(fig, save_path)


def draw_rois(image: np.ndarray, rois: np.ndarray, refined_rois: np.ndarray, mask: np.ndarray,
              class_ids: np.ndarray, class_names: Sequence[str], limit: int = 10,
              ax: Axes | None = None, save_path: SavePath = None) -> Figure:
    """Training ROIs (dashed; grey for background) and, for positives, their refined boxes,
    class names and masks. At most ``limit`` ROIs, picked at random.

    rois, refined_rois: [N, 4] pixels; mask: [N, h, w] per-ROI masks (e.g. the detection
    targets' masks of each ROI's class); class_ids: [N], 0 for negatives. The positive/negative
    counts are logged (Matterport printed them).
    """
    rois, class_ids = np.asarray(rois), np.asarray(class_ids).reshape(-1)
    ids = np.arange(len(rois))
    if len(ids) > limit:
        ids = np.random.default_rng().choice(ids, limit, replace=False)
    fig, ax = _single(ax, (12, 12))
    ax.set_title(f"Showing {len(ids)} random ROIs out of {len(rois)}" if len(rois) > limit
                 else f"{len(ids)} ROIs")
    ax.set_ylim(image.shape[0] + 20, -20)
    ax.set_xlim(-50, image.shape[1] + 20)
    ax.axis("off")
    masked_image = compute_display_rgb(image)
    for index, color in zip(ids, random_colors(len(ids)), strict=True):
        class_id = int(class_ids[index])
        y1, x1, y2, x2 = rois[index][:4]
        ax.add_patch(patches.Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2,
                                       edgecolor=color if class_id else "gray",
                                       facecolor="none", linestyle="dashed"))
        if not class_id:
            continue
        ry1, rx1, ry2, rx2 = refined_rois[index][:4]
        ax.add_patch(patches.Rectangle((rx1, ry1), rx2 - rx1, ry2 - ry1, linewidth=2,
                                       edgecolor=color, facecolor="none"))
        ax.add_line(Line2D([x1, rx1], [y1, ry1], color=color))
        ax.text(rx1, ry1 + 8, _class_name(class_names, class_id), color="w", size=11,
                backgroundcolor="none")
        full = unmold_mask(mask[index], np.asarray(rois[index][:4]).astype(np.int32),
                           image.shape)
        apply_mask(masked_image, full, color)
    ax.imshow(np.clip(masked_image, 0, 255).astype(np.uint8))
    positives = int(np.sum(class_ids > 0))
    logger.info("Positive ROIs: %d, negative ROIs: %d, positive ratio: %.2f", positives,
                int(np.sum(class_ids == 0)), positives / max(len(class_ids), 1))
    return _finish(fig, save_path)


def display_table(table: Sequence[Sequence]) -> str:
    """An HTML table of ``table`` (an iterable of rows), shown when running under IPython.

    Returns the HTML either way (a script can write it to a file).
    """
    rows = "".join("<tr>" + "".join(f"<td>{str(col):40}</td>" for col in row) + "</tr>"
                   for row in table)
    html = f"<table>{rows}</table>"
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return html
    if get_ipython() is not None:
        display(HTML(html))
    return html


def display_weight_stats(model) -> str:
    """A table of every weight of a MaskRCNN: name, shape, min, max, std, with alerts for
    constant ("dead?") and huge ("Overflow?") weights. Returns its HTML (see display_table).
    """
    table = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"]]
    for part in model.keras_model.parts:
        for layer in part.layers:
            for i, (variable, value) in enumerate(zip(layer.weights, layer.get_weights(),
                                                      strict=True)):
                alert = ""
                # A constant conv bias is normal (they start at zero).
                if value.min() == value.max() and not ("Conv" in type(layer).__name__ and i == 1):
                    alert += "<span style='color:red'>*** dead?</span>"
                if np.abs(value.min()) > 1000 or np.abs(value.max()) > 1000:
                    alert += "<span style='color:red'>*** Overflow?</span>"
                table.append([f"{layer.name}/{variable.name}{alert}", str(value.shape),
                              f"{value.min():+9.4f}", f"{value.max():+10.4f}",
                              f"{value.std():+9.4f}"])
    return display_table(table)


def display_top_masks(image: np.ndarray, mask: np.ndarray, class_ids: np.ndarray,
                      class_names: Sequence[str], limit: int = 4,
                      ax: Sequence[Axes] | None = None, save_path: SavePath = None) -> Figure:
    """The image, then the union mask of each of the ``limit`` classes with the most pixels."""
    class_ids = np.asarray(class_ids).reshape(-1)
    unique_ids = np.unique(class_ids)
    area = [np.sum(mask[:, :, class_ids == cid]) for cid in unique_ids]
    top_ids = [cid for a, cid in sorted(zip(area, unique_ids, strict=True), reverse=True)
               if a > 0][:limit]
    panels = [image]
    titles = ["H x W={}x{}".format(*image.shape[:2])]
    for i in range(limit):
        class_id = top_ids[i] if i < len(top_ids) else -1
        selected = mask[:, :, np.where(class_ids == class_id)[0]]
        panels.append(np.sum(selected * np.arange(1, selected.shape[-1] + 1), axis=-1))
        titles.append(_class_name(class_names, class_id) if class_id != -1 else "-")
    return display_images(panels, titles=titles, cols=limit + 1, cmap="Blues_r", ax=ax,
                          save_path=save_path)


def plot_precision_recall(AP: float, precisions: np.ndarray, recalls: np.ndarray,
                          ax: Axes | None = None, save_path: SavePath = None) -> Figure:
    """The precision-recall curve of :func:`mrcnn.evaluation.matterport_ap.compute_ap`, AP in the title."""
    fig, ax = _single(ax, (6, 6))
    ax.set_title(f"Precision-Recall Curve. AP@50 = {AP:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.plot(recalls, precisions)
    return _finish(fig, save_path)


def plot_overlaps(gt_class_ids: np.ndarray, pred_class_ids: np.ndarray,
                  pred_scores: np.ndarray, overlaps: np.ndarray, class_names: Sequence[str],
                  threshold: float = 0.5, ax: Axes | None = None,
                  save_path: SavePath = None) -> Figure:
    """Grid of IoUs between predictions (rows) and ground truth (columns): matches in bold."""
    gt_class_ids = np.asarray(gt_class_ids)[np.asarray(gt_class_ids) != 0]
    pred_class_ids = np.asarray(pred_class_ids)[np.asarray(pred_class_ids) != 0]
    fig, ax = _single(ax, (12, 10))
    ax.imshow(overlaps, interpolation="nearest", cmap="Blues")
    ax.set_yticks(np.arange(len(pred_class_ids)))
    ax.set_yticklabels([f"{_class_name(class_names, int(cid))} ({pred_scores[i]:.2f})"
                        for i, cid in enumerate(pred_class_ids)])
    ax.set_xticks(np.arange(len(gt_class_ids)))
    ax.set_xticklabels([_class_name(class_names, int(cid)) for cid in gt_class_ids], rotation=90)
    limit = overlaps.max() / 2.0 if overlaps.size else 0
    for i, j in itertools.product(range(overlaps.shape[0]), range(overlaps.shape[1])):
        same_class = pred_class_ids[i] == gt_class_ids[j]
        if overlaps[i, j] > threshold:
            text = "match" if same_class else "wrong"
        else:
            text = ""
        color = ("white" if overlaps[i, j] > limit else "black" if overlaps[i, j] > 0 else "grey")
        ax.text(j, i, f"{overlaps[i, j]:.3f}\n{text}", horizontalalignment="center",
                verticalalignment="center", fontsize=9, color=color)
    ax.set_ylabel("Predictions")
    ax.set_xlabel("Ground Truth")
    ax.set_title(f"Overlaps (threshold {threshold})")
    fig.tight_layout()
    return _finish(fig, save_path)


def _class_name(class_names: Sequence[str], class_id) -> str:
    class_id = int(class_id)
    if 0 <= class_id < len(class_names):
        return class_names[class_id]
    return f"class {class_id}"


def _draw_outline(ax: Axes, mask: np.ndarray, color) -> None:
    """Outline a mask's regions (padded so shapes touching the border close)."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=np.uint8)
    padded[1:-1, 1:-1] = mask
    for contour in find_contours(padded, 0.5):
        ax.add_patch(patches.Polygon(np.fliplr(contour) - 1, facecolor="none", edgecolor=color))


def _single(ax: Axes | None, figsize) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot(1, 1, 1)


def _panels(ax: Sequence[Axes] | None, rows: int, cols: int, count: int, figsize):
    if ax is not None:
        axes = list(np.ravel(ax))
        if len(axes) < count:
            raise ValueError(f"got {len(axes)} axes for {count} panels")
        return axes[0].figure, axes
    fig = Figure(figsize=figsize)
    return fig, [fig.add_subplot(rows, cols, i + 1) for i in range(count)]


def _finish(fig: Figure, save_path: SavePath) -> Figure:
    if save_path is not None:
        fig.savefig(save_path, format="png", bbox_inches="tight")
    return fig
