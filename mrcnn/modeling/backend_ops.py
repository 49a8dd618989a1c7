"""One dispatch function per graph op that TensorFlow has a faster kernel for.

On the TensorFlow backend each calls TensorFlow's kernel, as this library always did; on any
other backend, or inside :func:`portable_ops`, the ``keras.ops`` implementation of
:mod:`mrcnn.modeling.portable_ops` (fixed shapes, builtin ops only). TensorFlow is imported
only on the TensorFlow path. Boxes are ``(y1, x1, y2, x2)`` normalized.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence

import keras
from keras import ops

from mrcnn.modeling import portable_ops as portable

_FORCE_PORTABLE = contextvars.ContextVar("mrcnn_force_portable_ops", default=False)


@contextlib.contextmanager
def portable_ops() -> Iterator[None]:
    """Use the ``keras.ops`` implementations even on TensorFlow while inside (e.g. to trace a
    graph for a converter that takes builtin ops only). Read when a graph is traced."""
    token = _FORCE_PORTABLE.set(True)
    try:
        yield
    finally:
        _FORCE_PORTABLE.reset(token)


def uses_tensorflow_kernels() -> bool:
    """Whether the dispatch functions call TensorFlow's kernels here and now."""
    return keras.backend.backend() == "tensorflow" and not _FORCE_PORTABLE.get()


def batched_gather(values, indices, batch_dims: int):
    """``tf.gather(values, indices, batch_dims=batch_dims)``: entries along axis ``batch_dims``
    of ``values``, for each batch position ``indices[b...]`` (int32, rank ``batch_dims`` + 1)
    or one index each (rank ``batch_dims``: that axis goes).

    TensorFlow: its gather kernel (``keras.ops.take_along_axis`` adds int64 transposes there,
    which oneDNN logs an error line for on CPUs without AVX-512).
    """
    if uses_tensorflow_kernels():
        import tensorflow as tf

        return tf.gather(values, indices, batch_dims=batch_dims)
    one_each = len(indices.shape) == batch_dims
    if one_each:
        indices = ops.expand_dims(indices, -1)
    for _ in range(len(values.shape) - batch_dims - 1):
        indices = ops.expand_dims(indices, -1)
    gathered = ops.take_along_axis(values, indices, axis=batch_dims)
    return ops.squeeze(gathered, axis=batch_dims) if one_each else gathered


def top_k(values, k):
    """``ops.top_k(values, k)`` along the last axis, largest first, with TensorFlow's order
    among equal values (the lower index first): (values [..., k], int indices [..., k]).

    TensorFlow's and JAX's top-k keep that order; ``torch.topk`` leaves ties in no set order
    (a fresh model's RPN scores saturate at 1.0 for hundreds of anchors, and which of them
    become proposals then differs), so on PyTorch a stable descending sort picks them.
    """
    if keras.backend.backend() != "torch":
        return ops.top_k(values, k=k, sorted=True)
    order = ops.argsort(-values, axis=-1)[..., :k]  # Keras's argsort is stable on PyTorch
    return ops.take_along_axis(values, order, axis=-1), order


def masked_rows(mask, *values) -> tuple:
    """The rows ``values[k][b, n]`` where ``mask[b, n]`` (bool[B, N]), flattened over images:
    (valid bool[M], batch_index int32[M], *rows [M, ...]).

    TensorFlow: only the masked rows (M = their count, all valid), so what runs on them next
    runs on real rows only. Other backends: every row in order (M = B * N, a fixed shape),
    ``valid`` the flattened mask, for the caller to weight the others out.
    """
    if uses_tensorflow_kernels():
        import tensorflow as tf

        where = tf.where(mask)
        rows = [tf.gather_nd(value, where) for value in values]
        return (tf.ones(tf.shape(where)[:1], tf.bool), tf.cast(where[:, 0], tf.int32), *rows)
    batch, count = mask.shape[:2]
    return (ops.reshape(mask, (-1,)), ops.repeat(ops.arange(batch, dtype="int32"), count),
            *(ops.reshape(value, (-1, *value.shape[2:])) for value in values))


# A box ending at the far edge (1.0: every clipped proposal, and a GT box in its own mini-mask
# frame) puts its last sample exactly on the last pixel, and float32 rounding lands it a hair
# inside or outside (where TensorFlow's kernel samples 0, for about 7% of such boxes) by the
# last bit of the box's other end and by how the compiler fuses the arithmetic. Pulled in by
# 2**-20 of the image, that sample lands inside on every backend.
_EDGE = 2.0**-20


def _inside_far_edge(boxes):
    """``boxes`` with coordinates within ``_EDGE`` of 1.0 set to 1 - ``_EDGE``."""
    boxes = ops.cast(boxes, "float32")
    return ops.where(ops.abs(boxes - 1.0) <= _EDGE, 1.0 - _EDGE, boxes)


def crop_and_resize(images, boxes, box_indices, crop_size: tuple[int, int]):
    """``tf.image.crop_and_resize`` (bilinear, 0 outside the image): images [B, H, W, C],
    boxes [N, 4], box_indices int32[N] -> float32[N, crop_h, crop_w, C]. A box ending at the
    image's far edge samples its last pixel (see ``_EDGE``)."""
    boxes = _inside_far_edge(boxes)
    if uses_tensorflow_kernels():
        import tensorflow as tf

        return tf.image.crop_and_resize(images, boxes, box_indices, crop_size, method="bilinear")
    levels = ops.zeros(ops.shape(boxes)[:1], "int32")
    return portable.pyramid_crop_and_resize([images], boxes, box_indices, levels, crop_size)


def pyramid_crop_and_resize(feature_maps: Sequence, boxes, box_indices, levels,
                            crop_size: tuple[int, int]):
    """:func:`crop_and_resize` of box ``i`` from ``feature_maps[levels[i]]``: float32[N, ...].

    TensorFlow: boxes grouped by level (one kernel call per level) and put back in order.
    """
    boxes = _inside_far_edge(boxes)
    if not uses_tensorflow_kernels():
        return portable.pyramid_crop_and_resize(feature_maps, boxes, box_indices, levels,
                                                crop_size)
    import tensorflow as tf

    pooled, order = [], []
    for i, feature_map in enumerate(feature_maps):
        index = tf.where(tf.equal(levels, i))[:, 0]
        pooled.append(tf.image.crop_and_resize(feature_map, tf.gather(boxes, index),
                                               tf.gather(box_indices, index), crop_size,
                                               method="bilinear"))
        order.append(index)
    pooled = tf.concat(pooled, axis=0)
    order = tf.cast(tf.concat(order, axis=0), tf.int32)
    return tf.scatter_nd(tf.expand_dims(order, 1), pooled,
                         tf.concat([tf.shape(boxes)[:1], tf.shape(pooled)[1:]], 0))


def non_max_suppression_padded(boxes, scores, max_output_size: int, iou_threshold: float):
    """Per-image NMS: boxes [B, N, 4], scores [B, N] -> int32[B, max_output_size], the kept
    rows best first, -1 padded. A box goes when its IoU with a kept one is > iou_threshold."""
    if not uses_tensorflow_kernels():
        return portable.greedy_non_max_suppression(boxes, scores, max_output_size,
                                                   iou_threshold)
    import tensorflow as tf

    def one_image(args):
        keep = tf.image.non_max_suppression(args[0], args[1], max_output_size, iou_threshold)
        return tf.pad(keep, [(0, max_output_size - tf.shape(keep)[0])], constant_values=-1)

    kept = tf.map_fn(one_image, (boxes, scores),
                     fn_output_signature=tf.TensorSpec([None], tf.int32))
    kept.set_shape([None, max_output_size])
    return kept


def per_class_non_max_suppression(boxes, scores, class_ids, candidates, num_classes: int,
                                  max_output_size: int, iou_threshold: float) -> tuple:
    """NMS of each class on its own, then the best ``max_output_size`` over all classes.

    boxes [B, N, 4]; scores [B, N]; class_ids int32[B, N] in 1..num_classes - 1; candidates
    bool[B, N]. Returns (boxes [B, K, 4], class_ids int32[B, K], scores [B, K], valid
    bool[B, K]) float32, by score; slots past the valid ones hold zeros.
    TensorFlow: ``tf.image.combined_non_max_suppression``, each box scored in its own class's
    column only (shifting each class to its own region of the plane for one plain NMS would
    cost float32 precision: at class 80 the IoU moves by up to 4e-3).
    """
    boxes, scores = ops.cast(boxes, "float32"), ops.cast(scores, "float32")
    if not uses_tensorflow_kernels():
        kept = portable.greedy_non_max_suppression(
            boxes, ops.where(candidates, scores, float("-inf")), max_output_size,
            iou_threshold, classes=class_ids)
        valid = kept >= 0
        rows = ops.maximum(kept, 0)
        return (ops.where(valid[..., None],
                          ops.take_along_axis(boxes, rows[..., None], axis=1), 0.0),
                ops.where(valid, ops.take_along_axis(class_ids, rows, axis=1), 0),
                ops.where(valid, ops.take_along_axis(scores, rows, axis=1), 0.0), valid)
    import tensorflow as tf

    columns = tf.equal((class_ids - 1)[..., None], tf.range(num_classes - 1))  # one-hot
    columns &= candidates[..., None]
    per_class = tf.where(columns, scores[..., None], tf.constant(-2.0, tf.float32))
    boxes, scores, classes, count = tf.image.combined_non_max_suppression(
        boxes[:, :, None, :], per_class, max_output_size, max_output_size,
        iou_threshold=iou_threshold, score_threshold=-1.0, pad_per_class=False,
        clip_boxes=False)
    valid = tf.range(max_output_size)[None, :] < count[:, None]
    return boxes, tf.where(valid, tf.cast(classes, tf.int32) + 1, 0), scores, valid
