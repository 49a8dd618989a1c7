"""Which samples make each batch of the TensorFlow-free loaders (vision_common.sample_batches),
and the choice between them and tf.data. The U-Net's and the localizer's own loaders build on
this; tests/unet/test_batches.py and tests/localization/test_batches.py check their content.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vision_common.input_pipelines import resolve_pipeline
from vision_common.sample_batches import SampleBatches


class IndexBatches(SampleBatches):
    """Batches of the sample indices themselves, and of their seeds."""

    def build_batch(self, indices, seeds):
        features = np.stack([indices, seeds], axis=1).astype(np.float32)
        return features, np.zeros((len(indices), 1), np.float32)


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 40), batch_size=st.integers(1, 12), seed=st.integers(0, 2**31 - 1),
       shuffle=st.booleans())
def test_every_pass_holds_every_sample_once_and_ends_short(count, batch_size, seed, shuffle):
    """A pass that dropped or doubled samples would train on a skewed share of the data, and
    an epoch of ``batches_per_pass`` steps would not be one pass."""
    batches = IndexBatches(count, batch_size, shuffle=shuffle, repeat=True, seed=seed, workers=1)
    per_pass = batches.batches_per_pass
    assert per_pass == -(-count // batch_size)
    for pass_number in range(2):
        indices = [batches[pass_number * per_pass + step][0][:, 0] for step in range(per_pass)]
        assert sorted(np.concatenate(indices).astype(int)) == list(range(count))
        assert [len(batch) for batch in indices[:-1]] == [batch_size] * (per_pass - 1)
        if not shuffle:
            assert list(np.concatenate(indices).astype(int)) == list(range(count))


def test_shuffled_passes_differ_and_a_seed_repeats_them():
    """Without a new order each pass, every epoch would see the same batches; without the seed
    deciding it, a run could not be repeated."""
    first = IndexBatches(50, 10, shuffle=True, repeat=True, seed=3, workers=1)
    again = IndexBatches(50, 10, shuffle=True, repeat=True, seed=3, workers=1)
    other = IndexBatches(50, 10, shuffle=True, repeat=True, seed=4, workers=1)
    stream = [first[i][0] for i in range(10)]
    np.testing.assert_array_equal(np.concatenate(stream), np.concatenate(
        [again[i][0] for i in range(10)]))
    assert not np.array_equal(np.concatenate(stream[:5])[:, 0], np.concatenate(stream[5:])[:, 0])
    assert not np.array_equal(stream[0], other[0][0])


def test_a_batch_is_the_same_in_any_order_it_is_built():
    """Worker threads build batches out of order: if a sample's augmentation seed depended on
    that order, one seed would give other training data each run."""
    forward = IndexBatches(20, 4, shuffle=True, repeat=True, seed=9, workers=1)
    backward = IndexBatches(20, 4, shuffle=True, repeat=True, seed=9, workers=1)
    built = [forward[i][0] for i in range(8)]
    for i in reversed(range(8)):
        np.testing.assert_array_equal(backward[i][0], built[i])
    seeds = np.concatenate(built)[:, 1]
    assert len(set(seeds.tolist())) == len(seeds)  # each (pass, sample) its own seed


class RecordInputs(keras.layers.Layer):
    """Passes its input through; keeps the first column (sample indices) of training batches."""

    def __init__(self):
        super().__init__()
        self.seen: list[list[int]] = []

    def call(self, inputs, training=None):
        if training:
            self.seen.append(keras.ops.convert_to_numpy(inputs)[:, 0].astype(int).tolist())
        return inputs


def test_fit_trains_on_the_stream_in_order_with_worker_threads():
    """``fit`` over epochs of one pass, batches built ahead by 2 threads: the model must see the
    seeded stream in order, each sample once per pass, not batches of one pass twice."""
    batches = IndexBatches(12, 4, shuffle=True, repeat=True, seed=1, workers=2)
    stream = [IndexBatches(12, 4, shuffle=True, repeat=True, seed=1, workers=1)[i][0][:, 0]
              for i in range(10)]
    recorder = RecordInputs()
    model = keras.Sequential([keras.Input((2,)), recorder, keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", run_eagerly=True)
    model.fit(batches, epochs=3, steps_per_epoch=batches.batches_per_pass, verbose=0,
              shuffle=False)
    assert len(recorder.seen) == 9
    # Keras may take one batch ahead of the first epoch (the JAX trainer does).
    start = next(k for k in (0, 1) if np.array_equal(stream[k], recorder.seen[0]))
    for seen, expected in zip(recorder.seen, stream[start:], strict=False):
        assert seen == expected.astype(int).tolist()


def test_a_finite_loader_refuses_to_shuffle_or_augment():
    """Keras carries batches from one epoch into the next, so a finite loader would train every
    epoch on one order and one set of augmentations, or mix two passes in an epoch."""
    with pytest.raises(ValueError, match="repeat=True"):
        IndexBatches(12, 4, shuffle=True)
    with pytest.raises(ValueError, match="repeat=True"):
        IndexBatches(12, 4, augmented=True)


def test_out_of_range_batches_and_empty_inputs_are_refused():
    """Keras stops a finite dataset at IndexError; an empty sample list must fail when the
    input is made, not as a ZeroDivisionError mid-training."""
    with pytest.raises(IndexError):
        IndexBatches(5, 2, workers=1)[3]
    with pytest.raises(IndexError):
        IndexBatches(5, 2, repeat=True, workers=1)[-1]
    with pytest.raises(ValueError, match="no samples"):
        IndexBatches(0, 2)
    with pytest.raises(ValueError, match="batch_size"):
        IndexBatches(3, 0)


def test_pipeline_choice_is_checked_and_defaults_to_tf_data_where_tensorflow_is():
    """A misspelt pipeline must be named, not silently replaced."""
    assert resolve_pipeline(None) == "tf.data"  # this suite runs with TensorFlow installed
    assert resolve_pipeline("pydataset") == "pydataset"
    with pytest.raises(ValueError, match="'tfdata'"):
        resolve_pipeline("tfdata")
