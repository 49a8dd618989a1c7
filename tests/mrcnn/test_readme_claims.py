"""README claims about the Mask R-CNN samples and engine that no other test checks.

- ``train --schedule NAME`` without ``--epochs`` runs the schedule's stages: each stage's layers,
  its learning rate, and one epoch counter (one run folder) across the stages.
- ``samples/shapes.py generate --out DIR --count N`` writes N images that ``detect`` can read.
- ``evaluate --limit N`` evaluates exactly N images.
- ``JIT_COMPILE`` (XLA) inference gives the detections of the uncompiled path.
- ``--weights coco|imagenet`` downloads "with a progress bar" (tqdm on stderr, right total).

Everything runs on the tiny preset (64 px, narrow layers) with one step per epoch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tqdm import tqdm

import mrcnn.model as modellib
from mrcnn.cli import _image_paths
from mrcnn.config import tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.engine.download import download_file, get_weights_path
from mrcnn.engine.weights import read_h5_weights

ROOT = Path(__file__).resolve().parents[2]


def sample(name: str):
    """Import samples/<name>.py as a module (the samples are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"claims_sample_{name}",
                                                  ROOT / "samples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------------
# --schedule: staged training without --epochs

# A three-stage schedule as the samples declare them: (layers, until epoch, LR factor).
STAGES = (("heads", 1, 1.0), ("4+", 2, 0.5), ("all", 3, 0.1))
BASE_LR = 0.02
# One conv layer per depth: frozen or trained depending on the stage.
PROBES = {"res2": "res2a_branch2a", "res3": "res3a_branch2a", "res4": "res4a_branch2a",
          "res5": "res5a_branch2a", "fpn": "fpn_c5p5", "head": "mrcnn_class_logits"}
TRAINED_IN = {"heads": {"fpn", "head"}, "4+": {"res4", "res5", "fpn", "head"},
              "all": set(PROBES)}


def _layer_arrays(source) -> dict[str, list[np.ndarray]]:
    """The probe layers' arrays, from a checkpoint path or from a MaskRCNN object."""
    if isinstance(source, str | Path):
        found = read_h5_weights(source)
        return {key: found[name] for key, name in PROBES.items()}
    return {key: [np.array(w) for w in source._layers[name].get_weights()]
            for key, name in PROBES.items()}


def _changed(before, after) -> set[str]:
    return {key for key in PROBES
            if any(not np.array_equal(a, b) for a, b in zip(before[key], after[key], strict=True))}


@pytest.fixture(scope="module")
def staged_run(tmp_path_factory):
    """``shapes.py train --schedule staged`` (no --epochs), every train() call recorded."""
    shapes = sample("shapes")
    spec = dataclasses.replace(shapes.SPEC, schedules={**shapes.SPEC.schedules, "staged": STAGES})
    logs = tmp_path_factory.mktemp("staged")
    calls = []
    real_train = modellib.MaskRCNN.train

    def recording_train(self, *args, **kwargs):
        call = {"start_epoch": self.epoch, "initial": _layer_arrays(self), "kwargs": kwargs}
        history = real_train(self, *args, **kwargs)
        call["history"] = history.history
        call["trainable"] = {layer.name for layer in self.get_trainable_layers()}
        call["log_dir"] = Path(self.log_dir)
        calls.append(call)
        return history

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(modellib.MaskRCNN, "train", recording_train)
        status = shapes.main(spec, [
            "train", "--schedule", "staged", "--preset", "tiny", "--weights", "none",
            "--logs", str(logs), "--train-images", "2", "--val-images", "2",
            "--set", "STEPS_PER_EPOCH=1", "--set", "VALIDATION_STEPS=1",
            "--set", f"LEARNING_RATE={BASE_LR}"])
    assert status == 0
    return calls


def test_schedule_without_epochs_runs_every_stage_and_continues_the_epoch_count(staged_run):
    """Users would see the schedule collapse to one stage, or each stage restart at epoch 1 in
    a new run folder (and overwrite or scatter the checkpoints)."""
    assert [(c["kwargs"]["layers"], c["kwargs"]["epochs"]) for c in staged_run] == \
        [(layers, until) for layers, until, _ in STAGES]
    assert [c["start_epoch"] for c in staged_run] == [0, 1, 2]
    assert [len(c["history"]["loss"]) for c in staged_run] == [1, 1, 1]
    log_dirs = {c["log_dir"] for c in staged_run}
    assert len(log_dirs) == 1
    names = sorted(p.name for p in log_dirs.pop().glob("*.h5"))
    assert names == ["mask_rcnn_shapes_0001.h5", "mask_rcnn_shapes_0002.h5",
                     "mask_rcnn_shapes_0003.h5"]


def test_each_stage_trains_at_its_own_learning_rate(staged_run):
    """The LR users see in the logs / TensorBoard must be LEARNING_RATE x the stage's factor."""
    for call, (_, _, factor) in zip(staged_run, STAGES, strict=True):
        assert call["kwargs"]["learning_rate"] == pytest.approx(BASE_LR * factor)
        assert call["history"]["learning_rate"] == [pytest.approx(BASE_LR * factor, rel=1e-6)]


def test_each_stage_trains_only_its_layers(staged_run):
    """heads: FPN, RPN and heads only; 4+: ResNet stage 4 and up; all: everything. A stage
    that trains the wrong layers would wreck a pretrained backbone or never fine-tune it."""
    log_dir = staged_run[0]["log_dir"]
    states = [staged_run[0]["initial"]] + [
        _layer_arrays(log_dir / f"mask_rcnn_shapes_{epoch:04d}.h5") for epoch in (1, 2, 3)]
    for stage, (layers, _, _) in enumerate(STAGES):
        assert _changed(states[stage], states[stage + 1]) == TRAINED_IN[layers], layers
        names = staged_run[stage]["trainable"]
        assert {key for key, name in PROBES.items() if name in names} == TRAINED_IN[layers]


def test_shapes_default_schedule_is_all_layers_then_a_tenth_of_the_rate(monkeypatch, tmp_path):
    """`shapes.py train` without --epochs (make demo) trains all layers to epoch 9 at
    LEARNING_RATE, then to epoch 12 at a tenth of it; --epochs replaces it by one stage."""
    shapes = sample("shapes")
    calls = []
    monkeypatch.setattr(modellib.MaskRCNN, "train", lambda self, *args, **kwargs:
                        calls.append((kwargs["layers"], kwargs["epochs"],
                                      kwargs["learning_rate"])))
    common = ["train", "--preset", "tiny", "--logs", str(tmp_path), "--train-images", "2",
              "--val-images", "2", "--set", "LEARNING_RATE=0.02"]
    assert shapes.main(shapes.SPEC, common) == 0
    assert calls == [("all", 9, 0.02), ("all", 12, pytest.approx(0.002))]
    calls.clear()
    assert shapes.main(shapes.SPEC, [*common, "--epochs", "3"]) == 0
    assert calls == [("all", 3, 0.02)]


def test_coco_matterport_schedule_is_heads_then_4plus_then_all_at_a_tenth():
    """README: `--schedule matterport` = heads, then ResNet stage 4+, then all layers at LR/10."""
    stages = sample("coco").SPEC.schedules["matterport"]
    assert [layers for layers, _, _ in stages] == ["heads", "4+", "all"]
    assert [factor for _, _, factor in stages] == [1.0, 1.0, 0.1]
    epochs = [until for _, until, _ in stages]
    assert epochs == sorted(epochs) and len(set(epochs)) == 3


# ------------------------------------------------------------------------------------------------
# shapes.py generate

def test_shapes_generate_writes_count_pngs_that_load_as_the_shapes_images(tmp_path):
    """`python samples/shapes.py generate --out DIR --count N`: N RGB 128 px PNGs, the same
    pictures the shapes dataset draws (colors not swapped), ready for `detect --image DIR`."""
    out = tmp_path / "shapes_images"
    done = subprocess.run([sys.executable, str(ROOT / "samples" / "shapes.py"), "generate",
                           "--out", str(out), "--count", "3"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"wrote 3 images to {out}" in done.stdout
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["shapes_000.png", "shapes_001.png", "shapes_002.png"]
    expected = ShapesDataset()
    expected.load_shapes(3, 128, 128, seed=2)  # generate's default --seed
    expected.prepare()
    for path, image_id in zip(files, expected.image_ids, strict=True):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "RGB" and image.size == (128, 128)
            np.testing.assert_array_equal(np.asarray(image), expected.load_image(image_id))
    assert _image_paths(str(out)) == files  # what `detect --image DIR` will read


# ------------------------------------------------------------------------------------------------
# evaluate --limit N

def test_evaluate_limit_evaluates_exactly_n_images(tmp_path, monkeypatch, capsys):
    """`evaluate --limit 2` on 3 validation images: the JSON says 2 images and detect() ran on
    2; without --limit, all 3; the output says how many were scored, of how many. Users would
    otherwise wait for (or report on) the whole set."""
    shapes = sample("shapes")
    detected = []
    real_detect = modellib.MaskRCNN.detect

    def counting_detect(self, images, verbose=0):
        detected.append(len(images))
        return real_detect(self, images, verbose)

    monkeypatch.setattr(modellib.MaskRCNN, "detect", counting_detect)
    common = ["evaluate", "--preset", "tiny", "--weights", "none", "--logs", str(tmp_path),
              "--val-images", "3"]
    metrics = {}
    for limit in (2, None):
        out = tmp_path / f"metrics_{limit}.json"
        detected.clear()
        extra = ["--limit", str(limit)] if limit else []
        assert shapes.main(shapes.SPEC, [*common, *extra, "--out", str(out)]) == 0
        metrics[limit] = json.loads(out.read_text())
        assert sum(detected) == metrics[limit]["images"] == metrics[limit]["images_scored"]
        printed = capsys.readouterr().out
        assert (f"scored {limit or 3} images (split: the sample's val subset"
                f"{', the first 2 of 3 by --limit' if limit else ''})\n") in printed
    assert metrics[2]["images"] == 2
    assert metrics[None]["images"] == 3 == metrics[None]["images_available"]


# ------------------------------------------------------------------------------------------------
# JIT_COMPILE

def test_xla_compiled_inference_gives_the_uncompiled_detections(tmp_path):
    """JIT_COMPILE=True (the float32 default) must not change what detect() finds: same
    classes, boxes within 1e-3 px, scores within 1e-4, on the same weights and images."""
    keras.utils.set_random_seed(0)
    models = {jit: modellib.MaskRCNN("inference", tiny_config(JIT_COMPILE=jit, IMAGES_PER_GPU=1),
                                     tmp_path) for jit in (False, True)}
    for target, source in zip(models[True].keras_model.weights, models[False].keras_model.weights,
                              strict=True):
        target.assign(source.numpy())
    trunk = models[True].keras_model._inference_trunk
    assert getattr(trunk, "_jit_compile", None) is True  # the XLA path really is taken
    assert not hasattr(models[False].keras_model._inference_trunk, "_jit_compile")

    data = ShapesDataset()
    data.load_shapes(2, 64, 64, seed=3)
    data.prepare()
    images = [data.load_image(0), data.load_image(1)[:48]]  # two sizes, molded alike
    side = models[False].config.IMAGE_MAX_DIM
    raw, results = {}, {}
    for jit, model in models.items():
        molded, metas, _ = model.mold_inputs(images)
        detections, masks = model._predict(tf.constant(np.stack(molded), tf.float32),
                                            tf.constant(np.stack(metas), tf.float32),
                                            tf.constant(model.get_anchors(molded[0].shape)))
        raw[jit] = detections.numpy(), masks.numpy()
        results[jit] = model.detect(images)
    (plain, plain_masks), (xla, xla_masks) = raw[False], raw[True]
    assert (plain[..., 5] > 0).sum() >= 5  # enough detections to compare
    np.testing.assert_array_equal(plain[..., 4], xla[..., 4])  # class ids
    np.testing.assert_allclose(plain[..., :4] * side, xla[..., :4] * side, rtol=0, atol=1e-3)
    np.testing.assert_allclose(plain[..., 5], xla[..., 5], rtol=0, atol=1e-4)  # scores
    np.testing.assert_allclose(plain_masks, xla_masks, rtol=0, atol=1e-3)
    for a, b in zip(results[False], results[True], strict=True):
        np.testing.assert_array_equal(a["class_ids"], b["class_ids"])
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-4)
        assert np.abs(a["rois"] - b["rois"]).max(initial=0) <= 1  # integer pixels, rounded
        assert (a["masks"] != b["masks"]).mean() <= 1e-3


# ------------------------------------------------------------------------------------------------
# Download progress bar

PAYLOAD = bytes(range(256)) * 1200  # 307,200 bytes: "300k" in tqdm's 1024-based units


class _Handler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at every path, honoring ``Range: bytes=N-``."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        self.wfile.write(PAYLOAD[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server_url():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _progress(stderr: str, name: str) -> list[tuple[int, str, str]]:
    """(percent, done, total) of every tqdm refresh of the bar named ``name``."""
    pattern = re.escape(name) + r": +(\d+)%\|[^|]*\| ([\d.]+\w?)/([\d.]+\w?) "
    return [(int(p), done, total) for p, done, total in re.findall(pattern, stderr)]


def test_coco_weights_download_shows_a_progress_bar_with_the_file_size(server_url, tmp_path,
                                                                       monkeypatch, capsys):
    """`--weights coco` on a fresh machine: a tqdm bar on stderr named after the file, whose
    total is the file's size and which ends at 100%."""
    monkeypatch.setenv("MRCNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MRCNN_WEIGHTS_URL", server_url)
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    path = get_weights_path("coco")  # as load_pretrained(model, "coco") calls it
    assert path.read_bytes() == PAYLOAD
    bars = _progress(capsys.readouterr().err, "mask_rcnn_coco.h5")
    total = tqdm.format_sizeof(len(PAYLOAD), divisor=1024)
    assert total == "300k"
    assert bars and bars[0][0] == 0 and bars[-1] == (100, total, total), bars
    assert {bar[2] for bar in bars} == {total}


def test_resumed_download_progress_counts_from_the_bytes_already_there(server_url, tmp_path,
                                                                       capsys):
    """A resumed download's bar starts at the part already on disk and totals the whole file
    (not only the remaining bytes)."""
    dest = tmp_path / "w.h5"
    (tmp_path / "w.h5.part").write_bytes(PAYLOAD[:102_400])  # a third: 100k
    download_file(f"{server_url}/w.h5", dest)
    assert dest.read_bytes() == PAYLOAD
    bars = _progress(capsys.readouterr().err, "w.h5")
    assert bars[0] == (33, "100k", "300k"), bars
    assert bars[-1] == (100, "300k", "300k"), bars


def test_progress_false_prints_no_bar(server_url, tmp_path, capsys):
    download_file(f"{server_url}/w.h5", tmp_path / "w.h5", progress=False)
    assert capsys.readouterr().err == ""
