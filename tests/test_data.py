"""The shipped and generated data sets (``reference.data``): validation and documented value ranges."""

from __future__ import annotations

import numpy as np
import pytest

from reference.data import digits_sequences, planted_offsets


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
