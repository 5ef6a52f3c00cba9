"""The timed sections of ``ddcl-incrt bench``, each a function of the options returning its rows:

1. :func:`training_step_section`: our step against ``nn.TransformerEncoderLayer``, paired;
2. :func:`growth_check_section`: one growth check against our step, paired;
3. :func:`reference_section`: the NumPy reference against section 1's steps;
4. :func:`scaling_section`: our eager float32 step with one dimension doubled at a time;
5. :func:`flops_section`: the achieved FLOP/s against this machine's ``torch.matmul``.

"Paired": the two steps of a ratio are timed in alternation, ``A B A B …`` in one process
(:func:`ddcl_incrt.bench.timing.measure_paired`), so a change in the machine's speed during the row
(another process starting, the clock stepping down) falls on both and cancels in the ratio."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from accelerated.growth_phases import AcceleratedState, growth_check
from accelerated.step import compile_count
from accelerated.trainer import AcceleratedEngine
from ddcl_incrt.bench.configs import (
    CHECK_EVERY,
    D_IN,
    MATMUL_N,
    N_CLASSES,
    PROBE_SIZE,
    WARMUP,
    BenchConfig,
    BenchOptions,
    Mode,
    forward_flops,
)
from ddcl_incrt.bench.steps import BaselineStep, OursStep, ReferenceStep, dtype_name
from ddcl_incrt.bench.timing import Paired, Timing, measure, measure_paired
from reference.growth_phases import Context, calibrate
from reference.growth_statistics import Probe
from reference.train_config import TrainConfig
from training.trainer import init_state

Status = Callable[[str], None]

# ==================================================================================================
# Section 1: the training step against nn.TransformerEncoderLayer
# ==================================================================================================


def _step_row(
    step: OursStep | BaselineStep,
    timing: Timing,
    compiled: bool,
    graphs_compiled: int,
    recompiles_while_timed: int,
) -> dict[str, Any]:
    exc = step.compile_error()
    loss = float(step.loss) if step.loss is not None else math.nan
    return {
        "timing": timing.to_json(),
        "first_iteration_s": timing.warmup_s[0] if timing.warmup_s else None,
        "compile_s": timing.warmup_s[0] - timing.median_s if compiled and timing.warmup_s else None,
        "compile_error": None if exc is None else f"{type(exc).__name__}: {exc}",
        "fell_back_to_eager": exc is not None,
        "graphs_compiled": graphs_compiled,
        "recompiles_while_timed": recompiles_while_timed,
        "final_loss": loss if math.isfinite(loss) else None,
        "n_params": step.n_params(),
    }


def time_pair(
    ours: OursStep, base: BaselineStep, opts: BenchOptions, compiled: bool
) -> tuple[dict[str, Any], dict[str, Any], Paired]:
    """Our step (A) and the baseline's (B) timed as a pair (:func:`measure_paired`): A's warm-up, B's,
    then ``A B A B …``. Compiled, from a fresh dynamo cache, so that each one's first warm-up iteration
    holds its whole compilation (its excess over its median is the compile time); the graphs compiled
    are counted per step, in its warm-up and after each of its timed calls."""
    if compiled:
        torch._dynamo.reset()
    graphs = {"A": 0, "B": 0}
    recompiles = {"A": 0, "B": 0}
    last = [compile_count()]

    def count(into: dict[str, int], name: str) -> None:
        now = compile_count()
        into[name] += now - last[0]
        last[0] = now

    paired = measure_paired(
        ours,
        base,
        warmup=WARMUP,
        repeats=opts.n_repeats,
        device=opts.device_name,
        after_warmup=functools.partial(count, graphs),
        after_each=functools.partial(count, recompiles),
    )
    rows = tuple(
        _step_row(step, timing, compiled, graphs[k] + recompiles[k], recompiles[k])
        for step, timing, k in ((ours, paired.a, "A"), (base, paired.b, "B"))
    )
    return rows[0], rows[1], paired


def training_step_section(opts: BenchOptions, status: Status) -> list[dict[str, Any]]:
    """Section 1: per configuration, dtype and mode, our step and the baseline's timed as a pair
    (:func:`time_pair`), the ratio of their medians and the median of the pairs' ratios."""
    rows: list[dict[str, Any]] = []
    modes: list[Mode] = ["eager", "compiled"] if opts.compiles else ["eager"]
    for cfg in opts.training_configs():
        for dtype in (torch.float32, torch.float64):
            for mode in modes:
                compiled = mode == "compiled"
                status(f"training step: {cfg.label} {dtype_name(dtype)} {mode} (ours and the baseline, paired)")
                ours = OursStep(cfg, dtype, opts.device_name, compiled)
                base = BaselineStep(cfg, dtype, opts.device_name, compiled)
                ours_row, base_row, paired = time_pair(ours, base, opts, compiled)
                base_row |= {"heads": base.nhead, "dim_feedforward": base.ff}
                rows.append(
                    {
                        "config": cfg.to_json(),
                        "label": cfg.label,
                        "dtype": dtype_name(dtype),
                        "mode": mode,
                        "ours": ours_row,
                        "baseline": base_row,
                        "ratio_ours_over_baseline": ours_row["timing"]["median_s"] / base_row["timing"]["median_s"],
                        "paired_ratio": paired.ratio_json(),
                    }
                )
    return rows


# ==================================================================================================
# Section 2: the growth check
# ==================================================================================================


def _random_probe(cfg: BenchConfig, rng: np.random.Generator) -> Probe:
    return Probe(x=rng.standard_normal((PROBE_SIZE, cfg.T, D_IN)), labels=rng.integers(0, N_CLASSES, size=PROBE_SIZE))


def _check_setup(cfg: BenchConfig, train_cfg: TrainConfig, device: str) -> tuple[Context, AcceleratedState, Probe]:
    """As :func:`training.trainer.run`: initial state, probe, calibration probes, ``calibrate``,
    ``Context``, then :meth:`accelerated.trainer.AcceleratedEngine.start` (float32 training). The probe
    is the host's: the check copies it to the device, as in training."""
    lc = cfg.layer()
    rng = np.random.default_rng(0)
    state = init_state(lc, train_cfg, rng=rng)
    probe = _random_probe(cfg, rng)
    calib = [_random_probe(cfg, rng) for _ in range(train_cfg.calibration_probes)]
    growth_cfg, _ = calibrate(state.params, train_cfg, calib)
    ctx = Context(layer_cfg=lc, train_cfg=train_cfg, growth_cfg=growth_cfg)
    es = AcceleratedEngine(dtype=torch.float32, device=device).start(ctx, state)
    return ctx, es, probe


def growth_check_section(opts: BenchOptions, status: Status) -> list[dict[str, Any]]:
    """Section 2: one check on the run's initial state (one head, ``K_max`` prototypes), always from the
    same state (the check is a pure function of it), with the default trackers and with the fewest
    ``TrainConfig`` allows (1 iteration: 0 is rejected), invariants off (the timing) and on; each timed
    as a pair with the eager float32 step at the same size (check A, step B), for the share and the cost
    amortised over ``g`` steps."""
    rows: list[dict[str, Any]] = []
    default_trackers = TrainConfig(steps=1).tracker_steps
    for cfg in opts.growth_configs():
        step = OursStep(cfg, torch.float32, opts.device_name, compiled=False)
        for trackers in (default_trackers, 1):
            for invariants in (False, True):
                status(f"growth check: {cfg.label}, {trackers} tracker steps, invariants {invariants} (paired)")
                train_cfg = TrainConfig(
                    steps=1,
                    probe_size=PROBE_SIZE,
                    check_every=CHECK_EVERY,
                    tracker_steps=trackers,
                    check_invariants=invariants,
                )
                ctx, es, probe = _check_setup(cfg, train_cfg, opts.device_name)
                _, record, events, inv = growth_check(ctx, es, probe)
                paired = measure_paired(
                    functools.partial(growth_check, ctx, es, probe),
                    step,
                    warmup=WARMUP,
                    repeats=opts.n_repeats,
                    device=opts.device_name,
                )
                check, step_t = paired.a, paired.b
                rows.append(
                    {
                        "config": cfg.to_json(),
                        "label": cfg.label,
                        "tracker_steps": trackers,
                        "check_invariants": invariants,
                        "check": check.to_json(),
                        "step_float32_eager": step_t.to_json(),
                        "check_over_step": check.median_s / step_t.median_s,
                        "paired_ratio": paired.ratio_json(),
                        "amortised_over_g": check.median_s / (CHECK_EVERY * step_t.median_s),
                        "g": CHECK_EVERY,
                        "events_per_check": [e.kind.value for e in events],
                        "invariants_per_check": len(inv),
                        "lam_max": record.lam_max,
                        "theta": ctx.growth_cfg.theta,
                    }
                )
    return rows


# ==================================================================================================
# Section 3: the reference; section 4: scaling; section 5: FLOP/s
# ==================================================================================================


def reference_section(opts: BenchOptions, training: list[dict[str, Any]], status: Status) -> list[dict[str, Any]]:
    """Section 3: the reference's step at each configuration, and its median over the medians of
    section 1's steps (ours, every dtype and mode) at the same configuration."""
    rows: list[dict[str, Any]] = []
    for cfg in opts.reference_configs():
        status(f"reference step: {cfg.label}")
        ref = measure(ReferenceStep(cfg), warmup=1, repeats=opts.reference_repeats, device="cpu")
        speedups = {
            f"{r['dtype']} {r['mode']}": {
                "ours_median_s": r["ours"]["timing"]["median_s"],
                "speedup": ref.median_s / r["ours"]["timing"]["median_s"],
                "fell_back_to_eager": r["ours"]["fell_back_to_eager"],
            }
            for r in training
            if r["label"] == cfg.label
        }
        rows.append({"config": cfg.to_json(), "label": cfg.label, "reference": ref.to_json(), "ours": speedups})
    return rows


def scaling_section(opts: BenchOptions, status: Status) -> list[dict[str, Any]]:
    """Section 4: the eager float32 step at the base size and with each of ``T``, ``K``, ``H``, ``d``
    doubled alone (``d_k`` kept), beside the ratio :func:`forward_flops` predicts."""
    base = opts.scaling_base()
    variants = {
        "base": base,
        "T×2": replace(base, T=2 * base.T),
        "K×2": replace(base, K=2 * base.K),
        "H×2": replace(base, H=2 * base.H),
        "d×2": replace(base, d=2 * base.d),
    }
    rows: list[dict[str, Any]] = []
    base_time = math.nan
    for name, cfg in variants.items():
        status(f"scaling: {name}")
        t = measure(
            OursStep(cfg, torch.float32, opts.device_name, compiled=False),
            warmup=WARMUP,
            repeats=opts.n_repeats,
            device=opts.device_name,
        )
        if name == "base":
            base_time = t.median_s
        rows.append(
            {
                "variant": name,
                "config": cfg.to_json(),
                "timing": t.to_json(),
                "ratio_to_base": t.median_s / base_time,
                "flop_ratio_to_base": forward_flops(cfg) / forward_flops(base),
            }
        )
    return rows


def matmul_peak(dtype: torch.dtype, opts: BenchOptions) -> dict[str, Any]:
    """The machine's reference rate: a square ``MATMUL_N`` ``torch.matmul`` (``2·N³`` operations),
    median over the repeats, in the run's thread setting."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(MATMUL_N, MATMUL_N, generator=gen, dtype=dtype).to(opts.device_name) for _ in range(2))
    t = measure(lambda: torch.matmul(a, b), warmup=WARMUP, repeats=opts.n_repeats, device=opts.device_name)
    return {"n": MATMUL_N, "timing": t.to_json(), "flop_per_s": 2.0 * MATMUL_N**3 / t.median_s}


def flops_section(opts: BenchOptions, training: list[dict[str, Any]], status: Status) -> dict[str, Any]:
    """Section 5: the matmul rate per dtype and, for each of our steps in section 1, the achieved rate
    ``3·forward_flops / median`` as a fraction of it."""
    status("FLOP/s: matmul peak")
    peak = {dtype_name(dt): matmul_peak(dt, opts) for dt in (torch.float32, torch.float64)}
    rows = []
    for r in training:
        cfg = BenchConfig.from_json(r["config"])
        flops = 3 * forward_flops(cfg)
        rate = flops / r["ours"]["timing"]["median_s"]
        rows.append(
            {
                "label": r["label"],
                "dtype": r["dtype"],
                "mode": r["mode"],
                "fell_back_to_eager": r["ours"]["fell_back_to_eager"],
                "flop_per_step": flops,
                "flop_per_s": rate,
                "fraction_of_peak": rate / peak[r["dtype"]]["flop_per_s"],
            }
        )
    return {"peak": peak, "rows": rows}


__all__ = [
    "Status",
    "flops_section",
    "growth_check_section",
    "matmul_peak",
    "reference_section",
    "scaling_section",
    "time_pair",
    "training_step_section",
]
