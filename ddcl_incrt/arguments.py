"""Argument types shared by the ``ddcl-incrt`` subcommands' parsers, and the ``bench`` subcommand's
options (:func:`add_bench_arguments`), which ``ddcl-incrt bench`` and ``python -m ddcl_incrt.bench``
share: here, so that the CLI builds its parser without importing torch and the bench never imports
the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

from ddcl_incrt.threads import MAX_THREADS

BENCH_HELP = "time the PyTorch training step against nn.TransformerEncoderLayer and the reference (needs torch)"


def _shown(text: str) -> str:
    """``text`` as an error message quotes it: its repr, shortened when long (a one-line error stays short)."""
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"


def _int_in(text: str, minimum: int, wanted: str, maximum: int | None = None, most: str = "") -> int:
    """``text`` as an integer >= ``minimum``, or an argparse error saying ``wanted`` and what was given
    (shortened when long: the error stays one readable line); with ``maximum``, also at most that, or an
    error saying ``expected at most <maximum> <most>``."""
    try:
        value = int(text)
    except ValueError:  # int() also refuses more than 4300 digits: a number too large, not "not a number"
        digits = text.strip().lstrip("+-").isdigit()
        if digits and maximum is not None and not text.strip().startswith("-"):
            raise argparse.ArgumentTypeError(f"expected at most {maximum} {most}, got {_shown(text)}") from None
        why = " (too many digits)" if digits else ""
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {_shown(text)}{why}") from None
    got = str(value) if len(text) <= 40 else _shown(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {got}")
    if maximum is not None and value > maximum:
        raise argparse.ArgumentTypeError(f"expected at most {maximum} {most}, got {got}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1, or an argparse error naming the text given."""
    return _int_in(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """An integer >= 0, or an argparse error naming the text given."""
    return _int_in(text, 0, "an integer >= 0")


def thread_count(text: str) -> int:
    """A ``--threads`` option: an integer in ``[1, MAX_THREADS]`` (:data:`ddcl_incrt.threads.MAX_THREADS`,
    where the cap is justified), or an argparse error naming the text given."""
    return _int_in(
        text,
        1,
        "a positive integer",
        MAX_THREADS,
        "threads (the cap of every command; more than the cores only oversubscribes them)",
    )


# The most seeds `ddcl-incrt cluster --seeds N` runs (seeds 0..N-1; docs/studies/cluster.md). Each seed
# is a whole pass over the grid, 9 data sets x 6 settings: about 27 s of one core's time at the
# protocol (267 s for its 10 seeds), so 1000 seeds, 100 times the protocol's, are about 7.5 hours, and
# cluster.md's per-seed tables get a column per seed. A larger count is a typo or a misunderstanding
# (--seeds is a count, not a seed), and 2**32 seeds cannot run at all (scikit-learn's random_state must
# be below 2**32; a 20-digit count was an OverflowError traceback, 2**32 + 1 a MemoryError).
CLUSTER_MAX_SEEDS = 1000


def cluster_seed_count(text: str) -> int:
    """``cluster --seeds``: a count of seeds in ``[1, CLUSTER_MAX_SEEDS]``, or an argparse error naming the
    text given."""
    return _int_in(text, 1, "a positive integer", CLUSTER_MAX_SEEDS, "seeds (a count: seeds 0..N-1 are run)")


# The most optimiser steps an audit trains (and the longest --checkpoint-every): a run keeps every step's
# losses in memory and in its JSON record (six floats a step, about 1 GB of record at 10**7 steps), and a
# digits step takes milliseconds, so 10**7 steps is already about a day. Beyond it a number is a typo; a
# 20-digit one used to reach TrainConfig and be refused there, naming TrainConfig.steps, not --steps.
MAX_STEPS = 10**7


def step_count(text: str) -> int:
    """``--steps``: an integer in ``[1, MAX_STEPS]``, or an argparse error naming the text given."""
    return _int_in(text, 1, "a positive integer", MAX_STEPS, "steps")


def step_interval(text: str) -> int:
    """``--checkpoint-every``: an integer in ``[0, MAX_STEPS]`` (0: no schedule), or an argparse error."""
    return _int_in(text, 0, "an integer >= 0", MAX_STEPS, "steps")


# The most timed iterations per bench measurement: 20 is the protocol, and one iteration of the slowest
# row (the reference's mid-size step) takes about 0.1 s, so 10**4 repeats are already hours per row; a
# larger count ran "forever".
MAX_REPEATS = 10**4


def repeat_count(text: str) -> int:
    """``bench --repeats``: an integer in ``[1, MAX_REPEATS]``, or an argparse error naming the text given."""
    return _int_in(text, 1, "a positive integer", MAX_REPEATS, "repeats")


def worker_count(text: str) -> int:
    """A study's ``--workers`` (processes): an integer in ``[1, MAX_THREADS]`` (the same cap as threads:
    more processes than cores only oversubscribe them), or an argparse error naming the text given."""
    return _int_in(text, 1, "a positive integer", MAX_THREADS, "worker processes")


def path_argument(text: str) -> Path:
    """The ``type=`` of a path option: ``text`` as a :class:`~pathlib.Path`, refusing (an argparse
    error naming the option) the empty path, which ``Path`` would silently turn into ``.`` (the current
    folder), and a path holding a NUL character, which no system call accepts."""
    if text == "":
        raise argparse.ArgumentTypeError("expected a non-empty path, got ''")
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
        "--repeats",
        type=repeat_count,
        default=None,
        help=f"timed iterations per measurement, 1 to {MAX_REPEATS} (default 20; 3 quick)",
    )
    p.add_argument(
        "--threads",
        type=thread_count,
        default=2,
        help=f"torch.set_num_threads and NumPy's BLAS, 1 to {MAX_THREADS} (default 2)",
    )
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
    "CLUSTER_MAX_SEEDS",
    "MAX_REPEATS",
    "MAX_STEPS",
    "SEED_LIMIT",
    "add_bench_arguments",
    "cluster_seed_count",
    "non_negative_int",
    "path_argument",
    "positive_int",
    "repeat_count",
    "seed_argument",
    "step_count",
    "step_interval",
    "thread_count",
    "worker_count",
]
