"""Argument types shared by the ``ddcl-incrt`` subcommands' parsers, and the ``bench`` subcommand's
options (:func:`add_bench_arguments`), which ``ddcl-incrt bench`` and ``python -m ddcl_incrt.bench``
share: here, so that the CLI builds its parser without importing torch and the bench never imports
the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

BENCH_HELP = "time the PyTorch training step against nn.TransformerEncoderLayer and the reference (needs torch)"


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


def path_argument(text: str) -> Path:
    """The ``type=`` of a path option: ``text`` as a :class:`~pathlib.Path`, refusing (an argparse
    error naming the option) the empty path, which ``Path`` would silently turn into ``.`` (the current
    folder), and a path holding a NUL character, which no system call accepts."""
    if text == "":
        raise argparse.ArgumentTypeError("expected a non-empty path, got '' (give . for the current folder)")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"a path cannot hold a NUL character, got {text!r}")
    return Path(text)


SEED_LIMIT = 2**32  # NumPy's legacy seeding and scikit-learn's random_state take seeds below 2**32


def seed_argument(text: str) -> int:
    """A seed option (``--seed``): an integer in ``[0, 2**32 - 1]``, or an argparse error naming the text."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32 - 1], got {text!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32 - 1], got {value}")
    return value


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The ``bench`` options (docs/performance.md): ``--quick``, ``--no-compile``, ``--large``,
    ``--repeats``, ``--threads`` (its own, default 2: part of the measurement protocol), ``--out``,
    ``--device``, ``--profile``."""
    p.add_argument("--quick", action="store_true", help="smoke test: one size per section, 3 repeats, no compile")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="eager steps only (no torch.compile)")
    p.add_argument("--large", action="store_true", help="add the large size (B=64, T=128, d=256); always on CUDA")
    p.add_argument(
        "--repeats", type=positive_int, default=None, help="timed iterations per measurement (default 20; 3 quick)"
    )
    p.add_argument("--threads", type=positive_int, default=2, help="torch.set_num_threads and NumPy's BLAS (default 2)")
    p.add_argument("--out", type=path_argument, default=Path("bench.json"), help="JSON report (default bench.json)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available")
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing: the step of ours and of the baseline under torch.profiler (top operators by "
        "self CPU time, operators dispatched, graph breaks, recompiles), digits and mid-size (digits with --quick), "
        "compiled unless --no-compile",
    )


__all__ = [
    "BENCH_HELP",
    "SEED_LIMIT",
    "add_bench_arguments",
    "non_negative_int",
    "path_argument",
    "positive_int",
    "seed_argument",
]
