"""Argument types shared by the ``ddcl-incrt`` subcommands' parsers."""

from __future__ import annotations

import argparse


def _int_at_least(text: str, minimum: int, wanted: str) -> int:
    """``text`` as an integer >= ``minimum``, or an argparse error saying ``wanted`` and what was given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1, or an argparse error naming the text given."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0, or an argparse error naming the text given."""
    return _int_at_least(text, 0, "an integer >= 0")


__all__ = ["non_negative_int", "positive_int"]
