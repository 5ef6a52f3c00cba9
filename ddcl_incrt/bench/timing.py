"""How a number is measured: :func:`measure` (one callable, warm-up then timed calls), :func:`measure_paired`
(two callables timed in alternation, ``A B A B …``, so that a drift of the machine's speed falls on both
alike and cancels in their ratio), :class:`Timing` (the samples and their statistics) and the spread
check (:func:`wide_spread`, :func:`spread_warnings`): a row whose samples spread wider than its median is
named in the report's notes, because its median is not to be trusted to better than that."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Timing:
    """Seconds per iteration: the timed samples and the warm-up iterations before them."""

    samples_s: tuple[float, ...]
    warmup_s: tuple[float, ...] = ()

    def _q(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.samples_s), q))

    @property
    def median_s(self) -> float:
        return self._q(50.0)

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def max_s(self) -> float:
        return max(self.samples_s)

    @property
    def spread_s(self) -> float:
        """``max − min`` of the timed samples: the range the tables print beside the median."""
        return self.max_s - self.min_s

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median_s,
            "min_s": self.min_s,
            "max_s": self.max_s,
            "q1_s": self._q(25.0),
            "q3_s": self._q(75.0),
            "spread_over_median": self.spread_s / self.median_s,
            "repeats": len(self.samples_s),
            "samples_s": list(self.samples_s),
            "warmup_s": list(self.warmup_s),
        }


@dataclass(frozen=True)
class Paired:
    """Two callables timed in alternation: ``a`` and ``b`` hold the samples of each, ``order`` the order
    the timed calls ran in (``"A"``, ``"B"``, …)."""

    a: Timing
    b: Timing
    order: tuple[str, ...]

    @property
    def ratios(self) -> tuple[float, ...]:
        """``a_i / b_i`` of each pair (the two calls of a pair ran back to back)."""
        return tuple(x / y for x, y in zip(self.a.samples_s, self.b.samples_s, strict=True))

    def ratio_json(self) -> dict[str, Any]:
        """The pairs' ratios: their median and quartiles (what drift between pairs does not move)."""
        r = np.asarray(self.ratios)
        return {
            "median": float(np.median(r)),
            "q1": float(np.percentile(r, 25.0)),
            "q3": float(np.percentile(r, 75.0)),
            "min": float(r.min()),
            "max": float(r.max()),
            "pairs": len(r),
            "order": "".join(self.order[:8]) + ("…" if len(self.order) > 8 else ""),
        }


def sync(device: str) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str, clock: Callable[[], float]) -> float:
    """One call of ``fn`` timed alone, the device synchronised before both clock reads (work queued on a
    GPU is counted, not hidden)."""
    sync(device)
    t0 = clock()
    fn()
    sync(device)
    return clock() - t0


def measure(
    fn: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    device: str,
    after_warmup: Callable[[], None] | None = None,
) -> Timing:
    """``fn()`` ``warmup`` times, then ``repeats`` times, each call timed alone by ``time.perf_counter``
    with the device synchronised before both clock reads; ``after_warmup`` runs between the two phases,
    untimed."""
    warm = tuple(_timed(fn, device, time.perf_counter) for _ in range(warmup))
    if after_warmup is not None:
        after_warmup()
    return Timing(samples_s=tuple(_timed(fn, device, time.perf_counter) for _ in range(repeats)), warmup_s=warm)


def measure_paired(
    a: Callable[[], object],
    b: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    device: str,
    after_warmup: Callable[[str], None] | None = None,
    after_each: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Paired:
    """``a`` warmed up ``warmup`` times, then ``b`` (so that each one's compilation falls in its own first
    warm-up call), then ``repeats`` pairs ``a b a b …``, each call timed alone as by :func:`measure`.
    ``after_warmup("A")`` / ``("B")`` runs after each warm-up phase and ``after_each("A")`` / ``("B")``
    after each timed call, untimed (the bench counts the graphs compiled there)."""
    warm: dict[str, tuple[float, ...]] = {}
    for name, fn in (("A", a), ("B", b)):
        warm[name] = tuple(_timed(fn, device, clock) for _ in range(warmup))
        if after_warmup is not None:
            after_warmup(name)
    samples: dict[str, list[float]] = {"A": [], "B": []}
    order: list[str] = []
    for _ in range(repeats):
        for name, fn in (("A", a), ("B", b)):
            samples[name].append(_timed(fn, device, clock))
            order.append(name)
            if after_each is not None:
                after_each(name)
    return Paired(
        a=Timing(samples_s=tuple(samples["A"]), warmup_s=warm["A"]),
        b=Timing(samples_s=tuple(samples["B"]), warmup_s=warm["B"]),
        order=tuple(order),
    )


def wide_spread(timing: dict[str, Any]) -> bool:
    """Whether a timing (:meth:`Timing.to_json`) spreads wider than its median: ``max − min > median``."""
    return bool(timing["max_s"] - timing["min_s"] > timing["median_s"])


def _row_name(row: object) -> str:
    """A section row's name from the keys that tell its rows apart (label, dtype, mode, trackers, …)."""
    if not isinstance(row, dict):
        return ""
    parts = [str(row[k]) for k in ("label", "variant", "dtype", "mode") if k in row]
    if "tracker_steps" in row:
        parts.append(f"{row['tracker_steps']} tracker steps")
    if "check_invariants" in row:
        parts.append("invariants " + ("on" if row["check_invariants"] else "off"))
    return " ".join(parts)


def _timings(obj: object, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every timing (a dict with ``samples_s``) under ``obj``, with a readable path to it."""
    if isinstance(obj, dict):
        if "samples_s" in obj and "median_s" in obj:
            yield path, obj
            return
        for k, v in obj.items():
            yield from _timings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _timings(v, f"{path}[{_row_name(v) or i}]")


def spread_warnings(report: dict[str, Any]) -> list[str]:
    """One line per timing in ``report`` whose spread is wider than its median (:func:`wide_spread`)."""
    return [
        f"{path}: spread {1e3 * (t['max_s'] - t['min_s']):.3g} ms (min {1e3 * t['min_s']:.3g}, max "
        f"{1e3 * t['max_s']:.3g}) is wider than its median {1e3 * t['median_s']:.3g} ms: do not read this "
        "row closer than that"
        for path, t in _timings(report, "")
        if wide_spread(t)
    ]


__all__ = ["Paired", "Timing", "measure", "measure_paired", "spread_warnings", "sync", "wide_spread"]
