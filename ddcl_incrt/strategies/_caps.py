"""The one size cap of every hypothesis strategy (keeps the reference's O(n·K·d) work small)."""

from __future__ import annotations

MAX_TOKENS = 12  # n
MAX_WIDTH = 5  # d
MAX_PROTOTYPES = 5  # K
MAX_SEQ = 4  # T (sequence length)
MAX_BATCH = 3  # B
MAX_HEADS = 3


__all__ = [
    "MAX_BATCH",
    "MAX_HEADS",
    "MAX_PROTOTYPES",
    "MAX_SEQ",
    "MAX_TOKENS",
    "MAX_WIDTH",
]
