"""The audit report's figures, each read from a :class:`~training.record.RunRecord` and nothing else.

Every figure is two functions: ``<name>_data(record)`` returns everything the figure plots, read only
from the record (so a test can change the record and see the plotted values change with it), and
``draw_<name>(data, path)`` draws exactly that data to a PNG. :data:`FIGURES` lists them in report
order as :class:`FigureSpec` records.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit Agg canvas, never through
``pyplot``: no global backend or figure registry is touched, so importing this module changes nothing
for other matplotlib users in the same process. PNGs are written atomically (:func:`training.files.write_atomic`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reference.coupling_statistics import log_temperature_variance, pearson
from reference.incrt.controller import EventKind
from training.files import write_atomic
from training.record import RunRecord

FigureData: TypeAlias = dict[str, list[Any] | np.ndarray | float]
"""What a figure plots: named arrays, lists (ragged: one entry per birth) and scalars."""

# Tracker gaps below this are drawn at it: exact zeros and the round-off of float64 (1 − |cos| can come
# out as −4e−16 when |cos| rounds above 1) cannot be shown on a log axis. Stated in the caption.
TRACKER_FLOOR = 1e-15

_WIDTH_IN = 8.0
_DPI = 100


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: ``data_fn`` reads the record, ``draw_fn`` draws that data to a PNG."""

    name: str
    title: str
    caption: str
    data_fn: Callable[[RunRecord], FigureData]
    draw_fn: Callable[[FigureData, Path], Path]

    def render(self, record: RunRecord, path: Path) -> Path:
        """Draw this figure for ``record`` to ``path`` (a PNG, written atomically); returns the path."""
        return self.draw_fn(self.data_fn(record), path)


# -- files --------------------------------------------------------------------------------------------


def _new_figure(height_in: float) -> Figure:
    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # an explicit Agg canvas: no pyplot, no global backend
    return fig


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return write_atomic(path, buf.getvalue())


def _note(ax: Axes, text: str) -> None:
    """Say in the panel why there is nothing (or something partial) to see, instead of failing."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12, color="0.3")


def _log_if_positive(ax: Axes, *arrays: np.ndarray) -> None:
    """Log y-scale when every finite plotted value is positive (and there is one); else stay linear."""
    vals = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays]) if arrays else np.zeros(0)
    vals = vals[np.isfinite(vals)]
    if vals.size and bool(np.all(vals > 0.0)):
        ax.set_yscale("log")


def _legend(ax: Axes, **kw: Any) -> None:
    """The legend outside the axes, to their right: a legend inside would hide data (the last heads, the
    largest eigenvalues)."""
    if ax.get_legend_handles_labels()[0]:
        kw.pop("loc", None)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def _shared_legend(fig: Figure, *axes: Axes) -> None:
    """One legend for an axes and its twin, below the figure: two legends beside the axes would overlap
    each other and the twin's tick labels on the right."""
    handles: list[Any] = []
    labels: list[str] = []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)


def _arr(data: FigureData, key: str) -> np.ndarray:
    """``data[key]`` as a float array (lists of numbers and scalars included)."""
    return np.asarray(data[key], dtype=np.float64)


def _list(data: FigureData, key: str) -> list[Any]:
    """``data[key]`` as a list (ragged entries, e.g. one spectrum per birth, stay as they are)."""
    value = data[key]
    if isinstance(value, float):
        raise TypeError(f"figure data {key!r}: expected a list or an array, got a float")
    return list(value)


def _float(data: FigureData, key: str) -> float:
    return float(np.asarray(data[key], dtype=np.float64))


def _steps_of(record: RunRecord, kind: EventKind) -> list[int]:
    return [e.step for e in record.events if e.kind is kind]


# -- loss -----------------------------------------------------------------------------------------------


def loss_data(record: RunRecord) -> FigureData:
    """Per step: ``L``, ``L_task`` and ``L_q`` with its decomposition ``L_OLS`` and ``V`` (claim D1), and the
    largest ``|L_q − (L_OLS + V)|`` over the run (the identity's residual, shown in the panel title)."""
    lo = record.losses
    L_q, L_OLS, V = (np.asarray(v, dtype=np.float64) for v in (lo.L_q, lo.L_OLS, lo.V))
    resid = np.abs(L_q - (L_OLS + V))
    resid = resid[np.isfinite(resid)]
    return {
        "steps": np.arange(1, len(lo.L) + 1, dtype=np.float64),
        "L": np.asarray(lo.L, dtype=np.float64),
        "L_task": np.asarray(lo.L_task, dtype=np.float64),
        "L_q": L_q,
        "L_OLS": L_OLS,
        "V": V,
        "identity_residual": float(resid.max()) if resid.size else 0.0,
    }


def draw_loss(data: FigureData, path: Path) -> Path:
    """Top: ``L`` and ``L_task`` (log scale where positive). Middle: ``L_OLS`` and ``V`` stacked, with
    ``L_q`` drawn over them: the line runs along the top of the stack exactly when ``L_q = L_OLS + V``.
    Bottom: ``V`` on its own (log) scale, where it is visible even when it is a sliver of ``L_q``."""
    fig = _new_figure(7.5)
    top, bottom, var = fig.subplots(3, 1, sharex=True)
    steps = _arr(data, "steps")
    if steps.size == 0:
        _note(top, "no training steps in this run")
        return _save(fig, path)
    L, L_task = _arr(data, "L"), _arr(data, "L_task")
    top.plot(steps, L, label="L", color="C0")
    top.plot(steps, L_task, label=r"$L_{\mathrm{task}}$", color="C1")
    _log_if_positive(top, L, L_task)
    top.set_ylabel("loss (minibatch)")
    _legend(top, loc="upper right")
    L_OLS, V, L_q = _arr(data, "L_OLS"), _arr(data, "V"), _arr(data, "L_q")
    bottom.fill_between(steps, 0.0, L_OLS, color="C2", alpha=0.45, linewidth=0, label=r"$L_{\mathrm{OLS}}$")
    bottom.fill_between(steps, L_OLS, L_OLS + V, color="C4", alpha=0.45, linewidth=0, label="V (stacked)")
    bottom.plot(steps, L_q, color="k", linestyle="--", linewidth=1.2, label=r"$L_q$")
    resid = _float(data, "identity_residual")
    bottom.set_title(rf"$L_q = L_{{\mathrm{{OLS}}}} + V$ (largest residual {resid:.2g})", fontsize=10)
    bottom.set_ylabel("quantisation loss")
    _legend(bottom, loc="upper right")
    var.plot(steps, V, color="C4", label="V")
    _log_if_positive(var, V)
    var.set_ylabel("V (own scale)")
    var.set_xlabel("step")
    _legend(var, loc="upper right")
    return _save(fig, path)


# -- accuracy -----------------------------------------------------------------------------------------


def accuracy_data(record: RunRecord) -> FigureData:
    """Train and test accuracy at every evaluation, and chance (uniform guessing, ``1/n_classes``)."""
    ev = record.evaluations
    return {
        "steps": np.array([e.step for e in ev], dtype=np.float64),
        "train": np.array([e.train_accuracy for e in ev], dtype=np.float64),
        "test": np.array([e.test_accuracy for e in ev], dtype=np.float64),
        "chance": 1.0 / record.layer_config.n_classes,
    }


def draw_accuracy(data: FigureData, path: Path) -> Path:
    fig = _new_figure(3.5)
    ax = fig.subplots()
    steps = _arr(data, "steps")
    if steps.size == 0:
        _note(ax, "no evaluation in this run")
        return _save(fig, path)
    ax.plot(steps, _arr(data, "train"), "o-", color="C0", label="train")
    ax.plot(steps, _arr(data, "test"), "s-", color="C1", label="test")
    ax.axhline(_float(data, "chance"), color="0.4", linestyle=":", linewidth=1.0, label="chance (1/classes)")
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("accuracy")
    _legend(ax)
    return _save(fig, path)


# -- architecture -------------------------------------------------------------------------------------


def architecture_data(record: RunRecord) -> FigureData:
    """Heads and prototypes over the run, and the steps of births and prunes.

    A check's counts are taken before that check's decisions, so they hold on the steps since the
    previous check: the step function starts at step 0 with the first check's counts and ends at the
    last step with the final architecture (after the last check's decisions)."""
    checks = record.checks
    arch = record.architecture
    first_h = checks[0].n_heads if checks else arch.n_heads
    first_p = checks[0].n_prototypes if checks else arch.n_prototypes
    return {
        "steps": np.array([0, *(c.step for c in checks), len(record.losses.L)], dtype=np.float64),
        "n_heads": np.array([first_h, *(c.n_heads for c in checks), arch.n_heads], dtype=np.float64),
        "n_prototypes": np.array([first_p, *(c.n_prototypes for c in checks), arch.n_prototypes], dtype=np.float64),
        "n_checks": float(len(checks)),
        "birth_steps": _steps_of(record, EventKind.BIRTH),
        "head_prune_steps": _steps_of(record, EventKind.HEAD_PRUNE),
        "prototype_prune_steps": _steps_of(record, EventKind.PROTOTYPE_PRUNE),
    }


def draw_architecture(data: FigureData, path: Path) -> Path:
    """Two step functions (heads, prototypes) with births, head prunes and prototype prunes marked."""
    fig = _new_figure(5.0)
    ax_h, ax_p = fig.subplots(2, 1, sharex=True)
    steps = _arr(data, "steps")
    ax_h.plot(steps, _arr(data, "n_heads"), drawstyle="steps-pre", color="C0", label="heads")
    ax_p.plot(steps, _arr(data, "n_prototypes"), drawstyle="steps-pre", color="C2", label="prototypes")
    marks: Sequence[tuple[Axes, str, str, str, str]] = (
        (ax_h, "birth_steps", "birth", "C3", "-"),
        (ax_h, "head_prune_steps", "head prune", "C1", "--"),
        (ax_p, "prototype_prune_steps", "prototype prune", "C1", "--"),
    )
    for ax, key, label, color, style in marks:
        for i, s in enumerate(sorted(set(_arr(data, key).tolist()))):
            ax.axvline(s, color=color, linestyle=style, linewidth=1.0, alpha=0.8, label=label if i == 0 else None)
    if not any(_list(data, key) for key in ("birth_steps", "head_prune_steps", "prototype_prune_steps")):
        _note(ax_h, "no births or prunes in this run")
    if _float(data, "n_checks") == 0:
        _note(ax_p, "no checks in this run")
    for ax, label in ((ax_h, "heads"), (ax_p, "prototypes")):
        ax.set_ylabel(label)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.margins(y=0.15)
        _legend(ax, loc="upper right", fontsize=8)
    ax_p.set_xlabel("step")
    return _save(fig, path)


# -- spectrum at births ---------------------------------------------------------------------------------


def spectrum_at_births_data(record: RunRecord) -> FigureData:
    """For each birth, the ``A_res`` spectrum of the check at the birth's step and that check's ``θ``;
    ``missing_steps`` lists births no check of the record matches (none in a well-formed record)."""
    by_step = {c.step: c for c in record.checks}
    steps: list[int] = []
    spectra: list[list[float]] = []
    thetas: list[float] = []
    missing: list[int] = []
    for e in record.births():
        c = by_step.get(e.step)
        if c is None:
            missing.append(e.step)
            continue
        steps.append(e.step)
        spectra.append([float(v) for v in c.spectrum])
        thetas.append(float(c.theta))
    return {"birth_steps": steps, "spectra": spectra, "theta": thetas, "missing_steps": missing}


def draw_spectrum_at_births(data: FigureData, path: Path) -> Path:
    """Stems of every eigenvalue (index 1 = largest) per birth, offset slightly per birth, and θ: at a
    birth the top eigenvalue is above the line (spectral ordering, G2)."""
    fig = _new_figure(7.0)
    ax, zoom = fig.subplots(2, 1)
    spectra = _list(data, "spectra")
    steps = _list(data, "birth_steps")
    thetas = _list(data, "theta")
    if not spectra:
        missing = _list(data, "missing_steps")
        for a in (ax, zoom):
            _note(a, "no births in this run" if not missing else f"no check recorded at the births (steps {missing})")
            a.set_xticks([])
            a.set_yticks([])
        return _save(fig, path)
    cmap = colormaps["viridis"]
    n = len(spectra)
    width = 0.6
    for panel in (ax, zoom):
        for j, (step, spec) in enumerate(zip(steps, spectra, strict=True)):
            color = cmap(j / max(n - 1, 1))
            x = np.arange(1, len(spec) + 1, dtype=np.float64) + (j - (n - 1) / 2) * width / max(n, 1)
            y = np.asarray(spec, dtype=np.float64)
            panel.vlines(x, 0.0, y, color=color, linewidth=1.0)
            label = f"birth at step {step}" if n <= 12 and panel is ax else None
            panel.plot(x, y, "o", color=color, markersize=4, label=label)
        for k, th in enumerate(sorted(set(thetas))):
            panel.axhline(th, color="C3", linestyle="--", linewidth=1.0, label="θ" if k == 0 and panel is ax else None)
        panel.axhline(0.0, color="0.6", linewidth=0.6)
        panel.set_ylabel(r"eigenvalue of $A_{\mathrm{res}}$")
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
    th_max = max(thetas)
    zoom.set_ylim(-3.0 * th_max, 5.0 * th_max)  # near θ: which eigenvalues are just above or below it
    ax.set_title("all eigenvalues", fontsize=10)
    zoom.set_title("zoomed to [−3θ, 5θ]", fontsize=10)
    zoom.set_xlabel("eigenvalue index (1 = largest)")
    _legend(ax, loc="upper right", fontsize=8)
    return _save(fig, path)


# -- growth signal --------------------------------------------------------------------------------------


def dwell_blocked_steps(record: RunRecord) -> list[int]:
    """The checks at which the dwell blocked a birth: fewer than ``T_d`` steps after the last growth (a
    birth, or the initial head at step 0), the rule ``step − last_growth_step ≥ T_d`` of
    :func:`reference.incrt.controller.grow_decision`. A birth's own check is not blocked (it is the
    birth); the first check at ``T_d`` steps after it is not either (a birth may happen there)."""
    births = sorted(e.step for e in record.births())
    out = []
    for c in record.checks:
        last = max((b for b in births if b < c.step), default=0)
        if c.step not in births and c.step - last < record.train_config.T_d:
            out.append(c.step)
    return out


def _runs(steps: Sequence[int], all_steps: Sequence[int]) -> list[tuple[int, int]]:
    """``steps`` (a subset of the sorted ``all_steps``) as runs of consecutive entries of ``all_steps``:
    ``(first, last)`` of each."""
    index = {s: i for i, s in enumerate(all_steps)}
    out: list[tuple[int, int]] = []
    for s in steps:
        if out and index[s] == index[out[-1][1]] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def growth_signal_data(record: RunRecord) -> FigureData:
    """``λ_max(A_res)/θ`` at every check (θ of that check) and at every birth (the birth's statistic over
    its threshold): growth fires above 1. The dwell: ``T_d`` and ``dwell_spans``, the stretches of checks
    it blocked (:func:`dwell_blocked_steps`), each from half a check interval before its first blocked
    check to half one after its last, so a span covers exactly the checks where no birth could happen
    and never a birth's check; ``held_steps`` / ``held_ratio`` the blocked checks where the ratio was
    above 1 (a birth held back by the dwell). ``adaptive_dwell`` is 1 under ``author_code`` (its dwell
    is adaptive, not ``T_d``: nothing shaded)."""
    births = record.births()
    steps = [c.step for c in record.checks]
    adaptive = "author_code" in record.growth_config.variants
    blocked = [] if adaptive else dwell_blocked_steps(record)
    half = float(np.median(np.diff(steps))) / 2.0 if len(steps) > 1 else 0.5
    ratio = {c.step: c.lam_max / c.theta for c in record.checks}
    held = [s for s in blocked if ratio[s] > 1.0]
    return {
        "steps": np.array(steps, dtype=np.float64),
        "ratio": np.array([ratio[s] for s in steps], dtype=np.float64),
        "birth_steps": np.array([e.step for e in births], dtype=np.float64),
        "birth_ratio": np.array([e.statistic / e.threshold for e in births], dtype=np.float64),
        "T_d": float(record.train_config.T_d),
        "dwell_spans": np.array([[a - half, b + half] for a, b in _runs(blocked, steps)], dtype=np.float64).reshape(
            -1, 2
        ),
        "held_steps": np.array(held, dtype=np.float64),
        "held_ratio": np.array([ratio[s] for s in held], dtype=np.float64),
        "adaptive_dwell": 1.0 if adaptive else 0.0,
    }


def draw_growth_signal(data: FigureData, path: Path) -> Path:
    """The ratio over checks, the line 1 (the threshold), the births marked on it, the checks the dwell
    blocked shaded and those of them above the line marked."""
    fig = _new_figure(4.0)
    ax = fig.subplots()
    steps = _arr(data, "steps")
    if steps.size == 0:
        _note(ax, "no checks in this run")
        return _save(fig, path)
    T_d = _float(data, "T_d")
    for i, (a, b) in enumerate(_arr(data, "dwell_spans").reshape(-1, 2)):
        label = f"dwell (< T_d = {T_d:g} steps after a birth)" if i == 0 else None
        ax.axvspan(a, b, color="0.9", linewidth=0, label=label)
    ratio = _arr(data, "ratio")
    ax.plot(steps, ratio, "o-", color="C0", markersize=3, label=r"$\lambda_{\max}(A_{\mathrm{res}})/\theta$")
    ax.axhline(1.0, color="C3", linestyle="--", linewidth=1.0, label="1 (threshold θ)")
    _log_if_positive(ax, ratio)
    ax.set_xlim(0.0, float(steps.max()) * 1.02)
    held = _arr(data, "held_steps")
    if held.size:
        ax.plot(held, _arr(data, "held_ratio"), "x", color="C1", markersize=7, label="above 1, held by the dwell")
    b_steps = _arr(data, "birth_steps")
    if b_steps.size:
        ax.plot(b_steps, _arr(data, "birth_ratio"), "^", color="C3", markersize=9, label="birth")
    else:
        ax.text(0.02, 0.95, "no births in this run", transform=ax.transAxes, va="top", color="0.3")
    if _float(data, "adaptive_dwell"):
        ax.set_title("author_code: the dwell is adaptive (not T_d), not shaded", fontsize=9)
    ax.set_xlabel("step (check)")
    ax.set_ylabel(r"$\lambda_{\max}/\theta$")
    _legend(ax, loc="upper right", fontsize=8)
    return _save(fig, path)


# -- heads ------------------------------------------------------------------------------------------------


def _birth_order(record: RunRecord) -> list[int]:
    """Head ids in the order they first appear at a check (ids are handed out increasingly at birth)."""
    seen: dict[int, tuple[int, int]] = {}
    for c in record.checks:
        for h in (*c.tau, *c.head_strength):
            seen.setdefault(int(h), (c.step, int(h)))
    return sorted(seen, key=lambda h: seen[h])


def heads_data(record: RunRecord) -> FigureData:
    """``τ_h`` and ``G_h`` per head (rows, in birth order) at every check (columns; NaN where the head
    was not alive), and ``φ_g`` at every check."""
    ids = _birth_order(record)
    row = {h: i for i, h in enumerate(ids)}
    tau = np.full((len(ids), len(record.checks)), np.nan)
    strength = np.full_like(tau, np.nan)
    for j, c in enumerate(record.checks):
        for h, v in c.tau.items():
            tau[row[int(h)], j] = v
        for h, v in c.head_strength.items():
            strength[row[int(h)], j] = v
    return {
        "steps": np.array([c.step for c in record.checks], dtype=np.float64),
        "head_ids": ids,
        "tau": tau,
        "strength": strength,
        "phi_g": np.array([c.phi_g for c in record.checks], dtype=np.float64),
    }


def draw_heads(data: FigureData, path: Path) -> Path:
    """Top: ``τ_h`` per head; bottom: ``G_h`` per head with the pruning threshold ``φ_g``. Colour is birth
    order (dark first, light last)."""
    fig = _new_figure(6.0)
    ax_t, ax_g = fig.subplots(2, 1, sharex=True)
    steps = _arr(data, "steps")
    ids = _list(data, "head_ids")
    if steps.size == 0 or not ids:
        _note(ax_t, "no checks in this run" if steps.size == 0 else "no heads at any check")
        return _save(fig, path)
    tau, strength = _arr(data, "tau"), _arr(data, "strength")
    cmap = colormaps["viridis"]
    legend = len(ids) <= 12
    for i, h in enumerate(ids):
        color = cmap(0.85 * i / max(len(ids) - 1, 1))
        label = f"head {h}" if legend else None
        ax_t.plot(steps, tau[i], "o-", color=color, markersize=3, label=label)
        ax_g.plot(steps, strength[i], "o-", color=color, markersize=3)
    ax_g.plot(steps, _arr(data, "phi_g"), color="C3", linestyle="--", linewidth=1.0, label=r"$\varphi_g$")
    _log_if_positive(ax_g, strength, _arr(data, "phi_g"))
    ax_t.set_ylabel(r"$\tau_h$")
    ax_g.set_ylabel(r"$G_h = \|C M_a^h\|_F$")
    ax_g.set_xlabel("step (check)")
    _legend(ax_t, loc="upper right", fontsize=8, ncol=min(len(ids), 4))
    _legend(ax_g, loc="upper right", fontsize=8)
    if not legend:
        ax_t.set_title(f"{len(ids)} heads, colour = birth order (dark = first)", fontsize=9)
    return _save(fig, path)


# -- trackers -------------------------------------------------------------------------------------------


def trackers_data(record: RunRecord) -> FigureData:
    """The G6 trackers against the exact eigen-decomposition at every check: eigenvalue gaps relative to
    that check's θ and ``1 − |cos|`` of the direction, for Oja (top eigenpair) and MCA-EXIN (bottom);
    ``floor`` is the value gaps below it are drawn at on the log axes."""
    cs = record.checks
    return {
        "steps": np.array([c.step for c in cs], dtype=np.float64),
        "oja_lam_rel": np.array([c.oja_lam_gap / c.theta for c in cs], dtype=np.float64),
        "exin_lam_rel": np.array([c.exin_lam_gap / c.theta for c in cs], dtype=np.float64),
        "oja_angle": np.array([1.0 - abs(c.oja_cos) for c in cs], dtype=np.float64),
        "exin_angle": np.array([1.0 - abs(c.exin_cos) for c in cs], dtype=np.float64),
        "floor": TRACKER_FLOOR,
    }


def draw_trackers(data: FigureData, path: Path) -> Path:
    """Two log panels, values clipped below at ``floor`` (and NaN left out)."""
    fig = _new_figure(5.5)
    ax_l, ax_c = fig.subplots(2, 1, sharex=True)
    steps = _arr(data, "steps")
    if steps.size == 0:
        _note(ax_l, "no checks in this run")
        return _save(fig, path)
    floor = _float(data, "floor")
    for ax, keys in ((ax_l, ("oja_lam_rel", "exin_lam_rel")), (ax_c, ("oja_angle", "exin_angle"))):
        for key, label, color in zip(keys, ("Oja (top)", "MCA-EXIN (bottom)"), ("C0", "C1"), strict=True):
            ax.plot(steps, np.maximum(_arr(data, key), floor), "o-", color=color, markersize=3, label=label)
        ax.axhline(floor, color="0.6", linestyle=":", linewidth=0.8, label=f"floor {floor:.0e}")
        ax.set_yscale("log")
        _legend(ax, loc="upper right", fontsize=8)
    ax_l.set_ylabel(r"$|\hat\lambda - \lambda| / \theta$")
    ax_c.set_ylabel(r"$1 - |\cos\angle(\hat u, u)|$")
    ax_c.set_xlabel("step (check)")
    return _save(fig, path)


# -- coupling (R1(b), R2, R4) ------------------------------------------------------------------------


def _opt(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def separation_data(record: RunRecord) -> FigureData:
    """R1(b): prototype separation ``S`` and ``S_min`` at every check (NaN with one prototype), the growth
    signal ``λ_max/θ`` beside it, and the birth steps."""
    cs = record.checks
    return {
        "steps": np.array([c.step for c in cs], dtype=np.float64),
        "S": _opt([c.separation for c in cs]),
        "S_min": _opt([c.min_separation for c in cs]),
        "ratio": np.array([c.lam_max / c.theta for c in cs], dtype=np.float64),
        "birth_steps": np.array([e.step for e in record.births()], dtype=np.float64),
    }


# S_min "coincides" with S (said in the figure's title) within this fraction of S.
SAME_SEPARATION = 1e-3


def draw_separation(data: FigureData, path: Path) -> Path:
    """S (line) and S_min (open squares in another colour, drawn over S: with two prototypes the two
    coincide, and the squares stay visible on the line), births as red lines, ``λ_max/θ`` on the right
    axis; one legend for both axes, below the plot, where it covers neither data nor the right axis."""
    fig = _new_figure(5.0)
    ax = fig.subplots()
    steps = _arr(data, "steps")
    if steps.size == 0 or np.all(np.isnan(_arr(data, "S"))):
        _note(ax, "no check with two or more prototypes in this run")
        return _save(fig, path)
    ax.plot(steps, _arr(data, "S"), "o-", color="C0", markersize=3, label="S (mass-weighted mean pairwise distance)")
    ax.plot(
        steps,
        _arr(data, "S_min"),
        "s",
        color="C1",
        markerfacecolor="none",
        markersize=7,
        markeredgewidth=1.2,
        zorder=3,
        label=r"$S_{\min}$ (smallest pairwise distance)",
    )
    S, S_min = _arr(data, "S"), _arr(data, "S_min")
    both = np.isfinite(S) & np.isfinite(S_min)
    same = int(np.sum(np.abs(S[both] - S_min[both]) <= SAME_SEPARATION * np.abs(S[both])))
    if same:
        ax.set_title(
            rf"$S_{{\min}}$ within {SAME_SEPARATION:.1%} of S at {same} of {int(both.sum())} checks "
            "(squares on the line)",
            fontsize=9,
        )
    for i, b in enumerate(_arr(data, "birth_steps")):
        ax.axvline(b, color="C3", linewidth=0.8, alpha=0.5, label="birth" if i == 0 else None)
    ax.set_xlabel("step (check)")
    ax.set_ylabel("prototype separation")
    twin = ax.twinx()
    twin.plot(steps, _arr(data, "ratio"), ":", color="C2", label=r"$\lambda_{\max}/\theta$ (right axis)")
    twin.set_ylabel(r"$\lambda_{\max}/\theta$")
    _shared_legend(fig, ax, twin)
    return _save(fig, path)


def granularity_data(record: RunRecord) -> FigureData:
    """R2: per head in birth order, ``τ_h`` and its attention entropy at the last check it was alive, and
    ``Var(log τ_h)`` over the active heads at every check."""
    ids = _birth_order(record)
    last_tau: dict[int, float] = {}
    last_ent: dict[int, float] = {}
    var_log = []
    for c in record.checks:
        for h, t in c.tau.items():
            last_tau[int(h)] = t
        for h, e in c.attention_entropy.items():
            last_ent[int(h)] = e
        v = log_temperature_variance(dict(c.tau))
        var_log.append(np.nan if v is None else v)
    return {
        "head_ids": ids,
        "tau_last": np.array([last_tau.get(h, np.nan) for h in ids], dtype=np.float64),
        "entropy_last": np.array([last_ent.get(h, np.nan) for h in ids], dtype=np.float64),
        "steps": np.array([c.step for c in record.checks], dtype=np.float64),
        "var_log_tau": np.array(var_log, dtype=np.float64),
    }


def draw_granularity(data: FigureData, path: Path) -> Path:
    fig = _new_figure(4.5)
    ax_h, ax_v = fig.subplots(1, 2)
    ids = _list(data, "head_ids")
    if not ids:
        _note(ax_h, "no heads at any check")
        return _save(fig, path)
    order = np.arange(1, len(ids) + 1)
    ax_h.plot(order, _arr(data, "tau_last"), "o-", color="C0", label=r"$\tau_h$")
    ax_h.set_xlabel("birth order (1 = initial head)")
    ax_h.set_ylabel(r"$\tau_h$ at its last check")
    twin = ax_h.twinx()
    twin.plot(order, _arr(data, "entropy_last"), "s--", color="C1", label="attention entropy (right)")
    twin.set_ylabel("attention entropy (nats)")
    _shared_legend(fig, ax_h, twin)
    ax_v.plot(_arr(data, "steps"), _arr(data, "var_log_tau"), "o-", color="C2", markersize=3)
    ax_v.set_xlabel("step (check)")
    ax_v.set_ylabel(r"Var(log $\tau_h$) over the heads")
    return _save(fig, path)


def feedback_data(record: RunRecord) -> FigureData:
    """R4: separation ``S_t`` against ``‖∇_P V‖_t`` over the checks where both are defined, and their
    Pearson correlation."""
    pairs = [(c.separation, c.grad_V_norm, c.step) for c in record.checks]
    pairs = [(a, b, st) for a, b, st in pairs if a is not None and b is not None]
    S = np.array([a for a, _, _ in pairs], dtype=np.float64)
    G = np.array([b for _, b, _ in pairs], dtype=np.float64)
    r = pearson(S.tolist(), G.tolist()) if len(pairs) >= 2 else None
    return {
        "S": S,
        "grad_V": G,
        "steps": np.array([st for _, _, st in pairs], dtype=np.float64),
        "r": np.nan if r is None else r,
    }


def draw_feedback(data: FigureData, path: Path) -> Path:
    fig = _new_figure(4.5)
    ax = fig.subplots()
    S = _arr(data, "S")
    if S.size == 0:
        _note(ax, "no check with two or more prototypes in this run")
        return _save(fig, path)
    sc = ax.scatter(_arr(data, "grad_V"), S, c=_arr(data, "steps"), cmap="viridis", s=14)
    fig.colorbar(sc, ax=ax, label="step")
    r = _float(data, "r")
    ax.set_title(f"Pearson r = {r:+.3f} (DDCL paper: −0.98)" if np.isfinite(r) else "r undefined", fontsize=10)
    ax.set_xlabel(r"$\|\nabla_P V\|_F$")
    ax.set_ylabel("prototype separation S")
    return _save(fig, path)


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec(
        "loss",
        "Loss and its decomposition",
        "Per step on the minibatch: L and L_task (top, log scale where positive); L_OLS and V stacked with "
        "L_q dashed over them (middle): the dashed line follows the top of the stack because L_q = L_OLS + V "
        "(claim D1), and the title gives the largest residual; V alone on its own log scale (bottom), where "
        "it is visible even when it is a sliver of L_q.",
        loss_data,
        draw_loss,
    ),
    FigureSpec(
        "accuracy",
        "Accuracy",
        "Train and test accuracy on the whole sets at every evaluation, with chance (uniform guessing, "
        "1/classes) dotted.",
        accuracy_data,
        draw_accuracy,
    ),
    FigureSpec(
        "architecture",
        "Derived architecture",
        "Heads and prototypes over the run (counts at each check, before its decisions; the last point is the "
        "final architecture), with births, head prunes and prototype prunes marked at their steps.",
        architecture_data,
        draw_architecture,
    ),
    FigureSpec(
        "spectrum_at_births",
        "A_res spectrum at each birth",
        "Every eigenvalue of A_res at the check where a head was born (index 1 = largest), with θ dashed: "
        "the top eigenvalue is above θ and the birth takes its direction (spectral ordering, G2). The bottom "
        "panel zooms to [−3θ, 5θ], where the eigenvalues just above or below θ are told apart.",
        spectrum_at_births_data,
        draw_spectrum_at_births,
    ),
    FigureSpec(
        "growth_signal",
        "Growth signal",
        "λ_max(A_res)/θ at every check (log scale), with the threshold 1 dashed and births marked (▲). "
        "Shaded: the checks at which the dwell blocked a birth (fewer than T_d steps after the last birth, or "
        "after the start); × marks those of them where the ratio was above 1, a birth held back by the "
        "dwell. A head is born at the first unshaded check where the ratio exceeds 1; where every birth "
        "comes at the first check after a shaded stretch, growth was paced by the dwell, not by the signal.",
        growth_signal_data,
        draw_growth_signal,
    ),
    FigureSpec(
        "heads",
        "Per-head temperature and strength",
        "τ_h (top) and G_h = ‖C M_a^h‖_F (bottom) per head at every check, coloured by birth order, with the "
        "pruning threshold φ_g dashed: a head is pruned after G_h stays below φ_g for T_prune checks.",
        heads_data,
        draw_heads,
    ),
    FigureSpec(
        "trackers",
        "Eigen-trackers against the exact spectrum (G6)",
        f"Oja (top eigenpair) and MCA-EXIN (bottom eigenpair) against eigh at every check: |λ̂ − λ|/θ (top) "
        f"and 1 − |cos| of the direction (bottom), log scale; values below {TRACKER_FLOOR:.0e} (exact zeros and "
        "float64 round-off) are drawn at that floor.",
        trackers_data,
        draw_trackers,
    ),
    FigureSpec(
        "separation",
        "Prototype separation and the growth signal (R1(b), measured)",
        "Mass-weighted mean pairwise distance S of the active prototypes (line) and the smallest distance "
        "S_min (open squares) at every check, with births as red lines and λ_max/θ on the right axis "
        "(definitions: docs/theory.md, 'Coupling statistics'). Where two prototypes carry (nearly) all the "
        "mass and no pair is closer than theirs, S_min equals S (with two prototypes always): its squares "
        "then sit on S's line, and the title counts those checks.",
        separation_data,
        draw_separation,
    ),
    FigureSpec(
        "granularity",
        "Granularity by birth order (R2, measured)",
        "Left: each head's temperature τ_h and mean attention entropy at the last check it was alive, by "
        "birth order; right: Var(log τ_h) over the active heads at every check ('temperature divergence').",
        granularity_data,
        draw_granularity,
    ),
    FigureSpec(
        "feedback",
        "Negative feedback (R4, measured)",
        "Prototype separation S against the variance-gradient force ‖∇_P V‖_F at every check (colour = step), "
        "with their Pearson correlation; the DDCL paper reports −0.98.",
        feedback_data,
        draw_feedback,
    ),
)
"""The report's figures, in the order the report shows them."""


__all__ = [
    "FIGURES",
    "SAME_SEPARATION",
    "TRACKER_FLOOR",
    "FigureData",
    "FigureSpec",
    "accuracy_data",
    "architecture_data",
    "draw_accuracy",
    "draw_architecture",
    "draw_feedback",
    "draw_granularity",
    "draw_growth_signal",
    "draw_heads",
    "draw_loss",
    "draw_separation",
    "draw_spectrum_at_births",
    "draw_trackers",
    "dwell_blocked_steps",
    "feedback_data",
    "granularity_data",
    "growth_signal_data",
    "heads_data",
    "loss_data",
    "separation_data",
    "spectrum_at_births_data",
    "trackers_data",
]
