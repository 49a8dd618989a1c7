"""Where Mask R-CNN's time goes on this machine: each inference stage and the training step's parts.

    python benchmarks/maskrcnn_profile.py [--size 1024] [--train-size 512] [--repeats 5] [--threads 2]

Each stage runs alone as its own tf.function on the previous stage's output (R50-FPN, random
init, 81 classes, score threshold 0, 100 detections, as in maskrcnn_vs_torchvision.py); medians
after warm-up. Prints a table and writes ``benchmarks/results/maskrcnn_profile.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from provenance import provenance, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "maskrcnn_profile.json"


def _median_ms(step, repeats: int) -> float:
    """Median wall time of ``step`` in ms, its tensors read back (two warm-up calls)."""
    import tensorflow as tf
    from maskrcnn_vs_torchvision import _timed

    def run():
        for tensor in tf.nest.flatten(step()):
            if hasattr(tensor, "numpy"):
                tensor.numpy()

    return 1000 * statistics.median(_timed(run, repeats, warmup=2))


def profile_inference(size: int, repeats: int) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf
    from maskrcnn_vs_torchvision import _our_config, _shapes_image

    import mrcnn.model as modellib
    from mrcnn.modeling import box_ops
    from mrcnn.modeling.network import META_WINDOW
    from mrcnn.modeling.postprocess import unmold_detections
    from mrcnn.modeling.rpn import run_rpn

    config = _our_config(size, "resnet50", DETECTION_MIN_CONFIDENCE=0.0,
                         DETECTION_MAX_INSTANCES=100)
    model = modellib.MaskRCNN("inference", config, "/tmp/bench_logs")
    net = model.keras_model
    image = _shapes_image(size).load_image(0)
    molded, metas, windows = model.mold_inputs([image])
    images = tf.constant(np.stack(molded))
    image_meta = tf.constant(np.stack(metas).astype(np.float32))
    anchors = tf.constant(model.get_anchors(molded[0].shape))
    image_shape = tf.shape(images)[1:3]

    stages = {"detect() end to end": lambda: model.detect([image])}
    stages["mold_inputs (numpy)"] = lambda: model.mold_inputs([image])
    backbone = tf.function(lambda x: net.backbone(x, training=False))
    features = backbone(images)
    fpn = tf.function(lambda f: net.fpn(f, training=False))
    pyramid = fpn(features)
    rpn = tf.function(lambda p: run_rpn(net.rpn, p))
    stages["backbone"] = lambda: backbone(images)
    stages["FPN"] = lambda: fpn(features)
    stages["RPN head (5 levels)"] = lambda: rpn(pyramid)
    xla_trunk = tf.function(lambda x: net._trunk_outputs(x, False), jit_compile=True)
    stages["backbone+FPN+RPN, XLA (what detect runs)"] = lambda: xla_trunk(images)
    _, (_, rpn_probs, rpn_deltas) = net._trunk_outputs(images, False)
    proposals = tf.function(lambda: net.inference_proposals(rpn_probs, rpn_deltas, anchors))
    rois = proposals()
    stages["proposals (top-k, NMS)"] = proposals
    classify = tf.function(lambda: net._classify(rois, image_shape, pyramid[:4], False))
    pool_rois = tf.function(lambda: net.roi_align_classifier(rois, image_shape, pyramid[:4]))
    pooled = pool_rois()
    flat = tf.reshape(pooled, [-1, *pooled.shape[2:]])
    stages["ROIAlign, classifier (1000 ROIs)"] = pool_rois
    stages["classifier head"] = tf.function(lambda: net.classifier_head(flat, training=False))
    _, probs, deltas = classify()
    windows_norm = box_ops.norm_boxes(image_meta[:, META_WINDOW], image_shape)
    detection = tf.function(lambda: net.detection(rois, probs, deltas, windows_norm))
    detections = detection()
    stages["detection (per-class NMS)"] = detection
    pool_masks = tf.function(lambda: net.roi_align_mask(detections[..., :4], image_shape,
                                                        pyramid[:4]))
    pooled = pool_masks()
    mask_input = tf.reshape(pooled, [-1, *pooled.shape[2:]])
    stages["ROIAlign, masks (100 detections)"] = pool_masks
    stages["mask head"] = tf.function(lambda: net.mask_head(mask_input, training=False))
    detections_np, masks_np = (t.numpy() for t in model._predict(images, image_meta, anchors))
    stages["paste masks at full size (numpy)"] = lambda: unmold_detections(
        detections_np[0], masks_np[0], image.shape, molded[0].shape, windows[0])
    return {name: _median_ms(step, repeats) for name, step in stages.items()}


def profile_training(size: int, repeats: int) -> dict[str, float]:
    import tensorflow as tf
    from maskrcnn_vs_torchvision import TRAIN_CLASSES, _our_config, _shapes_image

    import mrcnn.model as modellib
    from mrcnn.data.pipeline import build_dataset

    config = _our_config(size, "resnet50", TRAIN_CLASSES)
    model = modellib.MaskRCNN("training", config, "/tmp/bench_logs")
    model.set_trainable("all", verbose=0)
    model._compile(0.001)
    net = model.keras_model
    batch = next(iter(build_dataset(_shapes_image(size), config, shuffle=False)))
    variables = net.trainable_variables

    def gradients(loss_of):
        @tf.function
        def run():
            with tf.GradientTape() as tape:
                loss = loss_of()
            return [g for g in tape.gradient(loss, variables) if g is not None]
        return run

    def trunk_sum():
        pyramid, rpn_outputs = net._trunk_outputs(batch["input_image"], True)
        return tf.add_n([tf.reduce_sum(t) for t in (*pyramid, *rpn_outputs)])

    def backbone_sum():
        return tf.add_n([tf.reduce_sum(t) for t in net.backbone(batch["input_image"],
                                                                   training=True)])

    train_step = tf.function(net.train_step)
    stages = {
        "train step (forward, backward, SGD)": lambda: train_step(batch),
        "forward: all losses": tf.function(lambda: net.compute_losses(batch, True)),
        "forward+backward: all losses": gradients(
            lambda: tf.add_n(list(net.compute_losses(batch, True).values()))),
        "forward+backward: backbone+FPN+RPN": gradients(trunk_sum),
        "forward+backward: backbone": gradients(backbone_sum),
    }
    return {name: _median_ms(step, repeats) for name, step in stages.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="inference image size")
    parser.add_argument("--train-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    report = {"benchmark": "maskrcnn_profile", "threads": args.threads, "repeats": args.repeats,
              "machine": provenance()}
    for part, size, profile in (("inference", args.size, profile_inference),
                                ("training", args.train_size, profile_training)):
        print(f"\n{part} at {size}x{size} (median ms)")
        report[part] = {"size": size, "stages_ms": profile(size, args.repeats)}
        for name, value in report[part]["stages_ms"].items():
            print(f"  {name:<44}{value:>9.0f}")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
