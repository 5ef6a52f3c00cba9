"""The one size cap of every hypothesis strategy (keeps the reference's O(n·K·d) work small), and the
one check of a strategy's size arguments."""

from __future__ import annotations

from hypothesis.errors import InvalidArgument

MAX_TOKENS = 12  # n
MAX_WIDTH = 5  # d
MAX_PROTOTYPES = 5  # K
MAX_SEQ = 4  # T (sequence length)
MAX_BATCH = 3  # B
MAX_HEADS = 3


# No size argument may exceed this: one example of a d×d array is drawn from hypothesis's bounded
# buffer, and a huge size would otherwise fail deep inside NumPy or hypothesis (MemoryError, overrun).
SIZE_LIMIT = 64


class StrategyArgumentError(InvalidArgument, ValueError):
    """A strategy argument of the right type but out of range: hypothesis's ``InvalidArgument`` (what a
    test suite using hypothesis expects) that is also a ``ValueError`` (what a bad value is)."""


def check_size(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) in ``[minimum, maximum]`` (``maximum`` defaults to :data:`SIZE_LIMIT`); a
    wrong type raises ``InvalidArgument``, a value out of range :class:`StrategyArgumentError`, naming
    ``name`` when the strategy is built (a bad size would otherwise yield invalid data silently)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    upper = SIZE_LIMIT if maximum is None else maximum
    if value < minimum or value > upper:
        raise StrategyArgumentError(f"{name}: must be >= {minimum} and <= {upper}, got {value}")
    return value


__all__ = [
    "MAX_BATCH",
    "MAX_HEADS",
    "MAX_PROTOTYPES",
    "MAX_SEQ",
    "MAX_TOKENS",
    "MAX_WIDTH",
    "SIZE_LIMIT",
    "StrategyArgumentError",
    "check_size",
]
