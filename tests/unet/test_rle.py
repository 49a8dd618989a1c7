"""RLE encode/decode: golden vectors, round trips (hypothesis) and submission validation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unet import decode_rle, encode_rle, validate_submission, write_submission
from unet.rle import parse_rle

GOLDEN_MASK = np.array([[0, 1, 1], [0, 1, 0], [1, 1, 0]])


def test_golden_vectors():
    """Kaggle convention: column-major, 1-indexed -> "3 5"; row-major -> "2 2 5 1 7 2"."""
    assert encode_rle(GOLDEN_MASK) == "3 5"
    assert encode_rle(GOLDEN_MASK, order="C") == "2 2 5 1 7 2"
    assert encode_rle(GOLDEN_MASK, index_base=0) == "2 5"
    np.testing.assert_array_equal(decode_rle("3 5", (3, 3)), GOLDEN_MASK)
    np.testing.assert_array_equal(decode_rle("2 2 5 1 7 2", (3, 3), order="C"), GOLDEN_MASK)


def test_empty_and_full_masks():
    assert encode_rle(np.zeros((4, 5))) == ""
    assert encode_rle(np.full((4, 5), 255)) == "1 20"
    assert decode_rle("", (2, 2)).sum() == 0
    assert decode_rle("nan", (2, 2)).sum() == 0


@settings(max_examples=60, deadline=None)
@given(
    mask=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                elements=st.integers(0, 1)),
    order=st.sampled_from(["F", "C"]),
    index_base=st.sampled_from([0, 1]),
)
def test_round_trip(mask, order, index_base):
    rle = encode_rle(mask, order=order, index_base=index_base)
    np.testing.assert_array_equal(decode_rle(rle, mask.shape, order, index_base), mask)


@pytest.mark.parametrize(
    "rle, message",
    [
        ("1 2 3", "pairs"),
        ("1 0", "positive"),
        ("0 2", ">= 1"),
        ("5 2 3 1", "sorted"),
        ("1 3 3 1", "overlap"),
        ("8 3", "beyond"),
        ("1 x", "integers"),
    ],
)
def test_invalid_rle_is_rejected(rle, message):
    with pytest.raises(ValueError, match=message):
        parse_rle(rle, 9)


def test_submission_is_written_and_validated(tmp_path):
    path = tmp_path / "submission.csv"
    rows = [("a", encode_rle(GOLDEN_MASK)), ("b", "")]
    assert write_submission(path, rows) == 2
    assert path.read_text().splitlines() == ["id,rle_mask", "a,3 5", "b,"]
    shapes = {"a": (3, 3), "b": (3, 3)}
    validate_submission(path, ["a", "b"], shapes)
    with pytest.raises(ValueError, match="ids differ"):
        validate_submission(path, ["b", "a"], shapes)
    write_submission(path, [("a", "9 3"), ("b", "")])
    with pytest.raises(ValueError, match=r":2 \(a\).*beyond"):
        validate_submission(path, ["a", "b"], shapes)
