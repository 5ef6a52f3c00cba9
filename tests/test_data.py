"""The shipped and generated data sets (``training.data``): validation and documented value ranges."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import SequenceDataset, digits_sequences, planted_offsets


def test_planted_offsets_needs_two_orthogonal_directions_per_offset() -> None:
    # Kills mutant data-planted-width-check: two offsets need 2·2 = 4 orthogonal directions.
    with pytest.raises(ValueError, match=r"d_in: need d_in >= 2·len\(offsets\) = 4"):
        planted_offsets(n_train=4, n_test=4, seq_len=5, d_in=3, offsets=(1, 3), rng=np.random.default_rng(0))
    data = planted_offsets(n_train=4, n_test=4, seq_len=5, d_in=4, offsets=(1, 3), rng=np.random.default_rng(0))
    assert data.d_in == 4
    assert data.meta["planted_heads"] == 2


@pytest.mark.parametrize("offsets", [(0,), (5,), (1, 1)])
def test_planted_offsets_rejects_bad_offsets(offsets: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="offsets"):
        planted_offsets(n_train=4, n_test=4, seq_len=5, d_in=6, offsets=offsets, rng=np.random.default_rng(0))


def test_digits_pixels_are_sixteenths_in_the_unit_interval() -> None:
    # Kills mutant data-digits-scale: sklearn's digits are integers 0..16, so pixel/16 lies in [0, 1],
    # reaches both ends, and 16·x is an integer.
    data = digits_sequences()
    x = np.concatenate([data.x_train, data.x_test])
    assert x.shape == (1797, 8, 8)
    assert float(x.min()) == 0.0
    assert float(x.max()) == 1.0
    np.testing.assert_array_equal(16.0 * x, np.round(16.0 * x))


# ---- issue 10 (hostile inputs): data constructors --------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rng": None}, TypeError, "rng"),
        ({"offsets": (1.5, 3)}, ValueError, "offsets"),
        ({"offsets": (True, 3)}, ValueError, "offsets"),
        ({"n_train": 2.5}, TypeError, "n_train"),
        ({"seq_len": 1}, ValueError, "seq_len"),
    ],
)
def test_planted_offsets_refuses_bad_arguments_naming_them(kwargs: dict[str, object], error: type, match: str) -> None:
    args: dict[str, object] = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises((error, TypeError), match=match):
        planted_offsets(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n_classes", "error"), [(1, ValueError), (2.5, TypeError), (True, TypeError)])
def test_a_dataset_needs_an_integer_number_of_classes_of_at_least_two(n_classes: object, error: type) -> None:
    x = np.zeros((2, 3, 2))
    labels = np.zeros(2, dtype=np.int64)
    with pytest.raises((error, TypeError), match="n_classes"):
        SequenceDataset("t", x, labels, x, labels, n_classes)  # type: ignore[arg-type]
