"""Learning-rate schedules (constant / step / cosine, warmup) and the AdamW optimizer.

Values are checked against detectron2's definitions by hand, and in a real tiny training run
through the per-step TensorBoard events a user would look at.
"""

import math
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import mrcnn.model as modellib
from mrcnn.config import ConfigError, tiny_config
from mrcnn.data.datasets.shapes import ShapesDataset
from mrcnn.engine.schedules import learning_rate_at

BASE = 0.01


def _rate(total_steps=10, **fields):
    return learning_rate_at(tiny_config(**fields), BASE, total_steps)


def test_constant_is_matterports_rate_at_every_step():
    rate = _rate()
    assert [rate(s) for s in (0, 1, 999)] == [BASE] * 3


def test_warmup_rises_linearly_from_the_factor_to_the_rate():
    """detectron2's linear warmup: factor x rate at step 0, the full rate at WARMUP_STEPS."""
    rate = _rate(WARMUP_STEPS=10, WARMUP_FACTOR=0.001)
    assert rate(0) == pytest.approx(BASE * 0.001)
    assert rate(5) == pytest.approx(BASE * (0.001 * 0.5 + 0.5))
    assert rate(10) == rate(50) == BASE


def test_step_schedule_multiplies_by_gamma_at_each_milestone():
    rate = _rate(LEARNING_RATE_SCHEDULE="step", LEARNING_RATE_STEPS=(3, 6),
                 LEARNING_RATE_GAMMA=0.1)
    assert [rate(s) for s in (0, 2, 3, 5, 6, 100)] == pytest.approx(
        [BASE, BASE, BASE / 10, BASE / 10, BASE / 100, BASE / 100])


def test_cosine_falls_from_the_rate_to_zero_at_the_last_step():
    rate = _rate(total_steps=10, LEARNING_RATE_SCHEDULE="cosine")
    assert [rate(s) for s in (0, 5, 10, 12)] == pytest.approx([BASE, BASE / 2, 0.0, 0.0])


@settings(max_examples=50, deadline=None)
@given(total=st.integers(1, 10_000), a=st.integers(0, 10_000), b=st.integers(0, 10_000))
def test_cosine_never_rises_and_stays_within_the_rate(total, a, b):
    rate = _rate(total_steps=total, LEARNING_RATE_SCHEDULE="cosine")
    low, high = sorted((a, b))
    assert 0.0 <= rate(high) <= rate(low) <= BASE


@pytest.mark.parametrize("fields, named", [
    ({"LEARNING_RATE_SCHEDULE": "linear"}, "LEARNING_RATE_SCHEDULE"),
    ({"LEARNING_RATE_SCHEDULE": "step"}, "LEARNING_RATE_STEPS"),
    ({"LEARNING_RATE_STEPS": (300, 200)}, "LEARNING_RATE_STEPS"),
    ({"WARMUP_STEPS": -1}, "WARMUP_STEPS"),
    ({"OPTIMIZER": "adam"}, "OPTIMIZER"),
])
def test_bad_schedule_or_optimizer_fields_are_named(fields, named):
    with pytest.raises(ConfigError, match=named):
        tiny_config(**fields)


def _shapes(count=2):
    dataset = ShapesDataset()
    dataset.load_shapes(count, 64, 64, seed=0)
    dataset.prepare()
    return dataset


def _logged_rates(log_dir) -> dict[int, float]:
    events = EventAccumulator(str(log_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    return {e.step: float(tf.make_ndarray(e.tensor_proto))
            for e in events.Tensors("learning_rate")}


def test_training_follows_the_schedule_step_by_step_across_train_calls(tmp_path):
    """Warmup, then the step drop, logged per step to TensorBoard; a second train() call (the
    next stage, or a resume) continues the same curve instead of restarting the warmup."""
    config = tiny_config(STEPS_PER_EPOCH=2, LEARNING_RATE_SCHEDULE="step",
                         LEARNING_RATE_STEPS=(3,), WARMUP_STEPS=2, WARMUP_FACTOR=0.5)
    model = modellib.MaskRCNN("training", config, tmp_path)
    data = _shapes()
    model.train(data, None, learning_rate=BASE, epochs=1, layers="heads")
    history = model.train(data, None, learning_rate=BASE, epochs=2, layers="heads").history
    expected = {0: BASE * 0.5, 1: BASE * 0.75, 2: BASE, 3: BASE * 0.1}
    assert _logged_rates(model.log_dir) == pytest.approx(expected)
    assert history["learning_rate"] == [pytest.approx(BASE * 0.1)]


@pytest.fixture(scope="module")
def adamw_run(tmp_path_factory):
    config = tiny_config(STEPS_PER_EPOCH=1, OPTIMIZER="adamw", WEIGHT_DECAY=0.05)
    logs = tmp_path_factory.mktemp("adamw")
    model = modellib.MaskRCNN("training", config, logs)
    history = model.train(_shapes(), None, learning_rate=1e-3, epochs=1, layers="all").history
    return config, model, history


def test_adamw_decays_kernels_apart_from_the_loss_and_spares_batchnorm_and_biases(adamw_run):
    """Decoupled decay: a zero-gradient step shrinks each kernel by lr x decay and leaves
    biases and BatchNorm's gamma/beta alone; the loss carries no L2 term."""
    config, model, history = adamw_run
    assert history["weight_decay_loss"] == [0.0]
    model.compile(learning_rate=1e-3, momentum=0.0)  # a fresh AdamW: zero moments
    optimizer = model.keras_model.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    variables = model.keras_model.trainable_variables
    before = {v.path: np.array(v.numpy()) for v in variables}
    optimizer.apply_gradients([(keras.ops.zeros_like(v), v) for v in variables])
    shrink = 1.0 - 1e-3 * config.WEIGHT_DECAY
    kinds = {"kernel": 0, "spared": 0}
    for v in variables:
        after = np.array(v.numpy())
        if v.name in ("bias", "gamma", "beta"):
            np.testing.assert_array_equal(after, before[v.path], err_msg=v.path)
            kinds["spared"] += 1
        elif v.name == "kernel":
            np.testing.assert_allclose(after, before[v.path] * shrink, rtol=1e-6, err_msg=v.path)
            kinds["kernel"] += 1
    assert kinds["kernel"] > 10 and kinds["spared"] > 10


def test_adamw_run_resumes_with_its_optimizer_state(adamw_run, tmp_path):
    """A resumed AdamW run keeps its moments and step count, as SGD's does."""
    config, model, _ = adamw_run
    copied = tmp_path / model.log_dir.name
    shutil.copytree(model.log_dir, copied)
    resumed = modellib.MaskRCNN("training", config, tmp_path)
    resumed.load_weights(resumed.find_last(), by_name=True)

    class FirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.iterations = getattr(self, "iterations",
                                      int(self.model.optimizer.iterations.numpy()))

    probe = FirstStep()
    resumed.train(_shapes(), None, learning_rate=1e-3, epochs=2, layers="all",
                  custom_callbacks=[probe])
    assert probe.iterations == 1
    assert math.isfinite(float(resumed.keras_model.optimizer.iterations.numpy()))


def test_train_flags_set_the_schedule_and_optimizer_fields():
    """--optimizer / --lr-schedule / --lr-steps / --warmup-steps reach the Config (and so the
    run's config.json); a bad step list is refused by the parser."""
    from mrcnn.cli import build_parser, make_config
    from tests.mrcnn.test_samples import sample

    shapes = sample("shapes")
    parser = build_parser(shapes.SPEC)
    args = parser.parse_args(["train", "--optimizer", "adamw", "--lr-schedule", "step",
                              "--lr-steps", "300,600", "--warmup-steps", "50"])
    config = make_config(shapes.SPEC, args)
    assert (config.OPTIMIZER, config.LEARNING_RATE_SCHEDULE) == ("adamw", "step")
    assert (config.LEARNING_RATE_STEPS, config.WARMUP_STEPS) == ((300, 600), 50)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--lr-steps", "300,soon"])


def test_a_keras_schedule_object_still_drives_the_rate(tmp_path):
    """train(learning_rate=<keras LearningRateSchedule>) as before the Config schedules."""
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [BASE, BASE / 4])
    model = modellib.MaskRCNN("training", tiny_config(STEPS_PER_EPOCH=2), tmp_path)
    history = model.train(_shapes(), None, learning_rate=schedule, epochs=1,
                          layers="heads").history
    assert history["learning_rate"] == [pytest.approx(BASE / 4)]
