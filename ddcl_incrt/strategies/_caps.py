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


def check_size(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) in ``[minimum, maximum]``; anything else raises ``InvalidArgument`` naming
    ``name`` when the strategy is built (a bad size would otherwise yield invalid data silently)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise InvalidArgument(f"{name}: must be >= {minimum}{upper}, got {value}")
    return value


__all__ = [
    "MAX_BATCH",
    "MAX_HEADS",
    "MAX_PROTOTYPES",
    "MAX_SEQ",
    "MAX_TOKENS",
    "MAX_WIDTH",
    "check_size",
]
