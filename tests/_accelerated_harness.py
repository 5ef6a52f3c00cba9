"""The differential harness: the accelerated engine against the reference, one comparison per layer
of the product (the layer's forward and gradients, the growth statistics, the growth decisions on
static operators, whole training trajectories). Each function returns the disagreements it found,
so the same harness serves the differential tests (nothing found) and the mutation self-test
(``tests/test_accelerated_mutants.py``: every planted bug is found). Tolerances come from the table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from _small_run import LAYER, RUN, TRAIN_SEED, small_data, small_run

from accelerated import backward as acc_backward
from accelerated import growth_phases as acc_gp
from accelerated import growth_statistics as acc_gs
from accelerated import trainer as acc_trainer
from accelerated.step import StepFunction, reported_terms
from ddcl_incrt.strategies.model import ModelCase, ModelSpec
from reference import growth_statistics as rgs
from reference.backward import loss_and_gradients
from reference.growth_phases import Context, Measured, grow_phase
from reference.growth_statistics import Probe
from reference.incrt import operators as rops
from reference.incrt.controller import EventKind, GrowthConfig, grow_check, initial_state
from reference.invariants.ddcl import CollapseStatus
from reference.log import LOSS_FIELDS
from reference.model import LayerConfig
from reference.surgery import flatten
from reference.tolerances import CheckKind, tolerance
from reference.train_config import TrainConfig
from training.record import RunRecord

FORWARD_FIELDS = ("X", "U", "Y", "D", "Q", "Z", "z_bar", "logits", "log_probs")


def max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a − b| / max(max|b|, 1)`` (relative to the array's scale, absolute below 1)."""
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))


# --------------------------------------------------------------------------------------------------
# The layer: forward intermediates, loss terms, gradients
# --------------------------------------------------------------------------------------------------


def compare_model(case: ModelCase, dtype: Any, device: str = "cpu") -> dict[str, float]:
    """Worst scaled difference per compared quantity between the two engines."""
    ref_cache, ref_grads = loss_and_gradients(case.params, case.cfg, case.x, case.labels)
    params = acc_backward.from_reference(case.params, dtype=dtype, device=device)
    cache, grads = acc_backward.loss_and_gradients(
        params, case.cfg, torch.tensor(case.x, dtype=dtype, device=device), torch.tensor(case.labels, device=device)
    )
    err: dict[str, float] = {}
    for name in FORWARD_FIELDS:
        err[name] = max_rel(getattr(cache, name).detach().double().cpu().numpy(), getattr(ref_cache, name))
    for hid, hc in cache.heads.items():
        err[f"heads.{hid}.A"] = max_rel(hc.A.detach().double().cpu().numpy(), ref_cache.heads[hid].A)
        err[f"heads.{hid}.out"] = max_rel(hc.out.detach().double().cpu().numpy(), ref_cache.heads[hid].out)
    for name in LOSS_FIELDS:
        err[name] = max_rel(np.array(float(getattr(cache, name).detach())), np.array(getattr(ref_cache, name)))
    acc_np = acc_backward.to_numpy(grads)
    assert list(acc_np) == list(ref_grads), "gradient names and order must be the reference's"
    for name, g in ref_grads.items():
        err[f"∂L/∂{name}"] = max_rel(acc_np[name], g)
    err.update(compare_step(case, dtype, ref_cache, ref_grads, device))
    return err


def compare_step(
    case: ModelCase, dtype: Any, ref_cache: Any, ref_grads: dict[str, np.ndarray], device: str = "cpu"
) -> dict[str, float]:
    """The training step's hot path (:class:`accelerated.step.StepFunction`, eager) against the
    reference: its losses, its ``Y``, ``Q``, the reported terms and its autograd gradients."""
    params = acc_backward.from_reference(case.params, dtype=dtype, device=device)
    x = torch.tensor(case.x, dtype=dtype, device=device)
    L, L_task, L_q, Y, Q = StepFunction()(
        params, x, torch.tensor(case.labels, device=device), case.cfg.T_P, case.cfg.lambda_q
    )
    stored = acc_backward.leaves(params)
    stacked = dict(zip(stored, torch.autograd.grad(L, list(stored.values())), strict=True))
    grads = acc_backward.flat_from_leaves(params.heads.ids, stacked)
    err = {
        "step Y": max_rel(Y.detach().double().cpu().numpy(), ref_cache.tokens()),
        "step Q": max_rel(Q.detach().double().cpu().numpy(), ref_cache.Q),
    }
    terms = {"L": L, "L_task": L_task, "L_q": L_q, **reported_terms(Y, params.P, Q, case.cfg.T_P)}
    for name, t in terms.items():
        err[f"step {name}"] = max_rel(np.array(float(t.detach())), np.array(getattr(ref_cache, name)))
    for name, g in acc_backward.to_numpy(grads).items():
        err[f"step ∂L/∂{name}"] = max_rel(g, ref_grads[name])
    return err


# --------------------------------------------------------------------------------------------------
# Growth statistics on the device (C, M_a^h, A_res, G_h, spectrum)
# --------------------------------------------------------------------------------------------------


def compare_growth(case: ModelCase, m: int) -> dict[str, float]:
    """Scaled differences of C, M_a^h, A_res, G_h, and the spectrum's excess over its Weyl bound."""
    d = case.cfg.d
    Q_cap = np.linalg.qr(np.random.default_rng(m).standard_normal((d, d)))[0][:, :m]
    ref_C = rgs.probe_second_moment(case.params, rgs.Probe(x=case.x, labels=case.labels))
    ref_M = rgs.head_operators(case.params)
    ref_A = rgs.residual_for(case.params, ref_C, Q_cap)
    params = acc_backward.from_reference(case.params, dtype=torch.float64)
    with torch.no_grad():
        C = acc_gs.probe_second_moment(params, torch.tensor(case.x))
        M = acc_gs.head_operators(params)
        A = acc_gs.residual_for(params, C, torch.tensor(Q_cap))
        G = acc_gs.head_strengths(C, M)
        lam = acc_gs.spectrum_desc(A)
    ref_G = np.array([rops.head_strength(ref_C, ref_M[h]) for h in sorted(ref_M)])
    # Weyl: two eigen-solvers on two roundings of A_res differ by at most E(A) + E(Â) + ‖A − Â‖_2
    A_np = A.numpy()
    bound = rops.eigh_error_bound(ref_A) + rops.eigh_error_bound(A_np) + float(np.linalg.norm(A_np - ref_A, 2))
    lam_err = float(np.max(np.abs(lam.numpy() - rops.eigenvalues_desc(ref_A))))
    return {
        "C": max_rel(C.numpy(), ref_C),
        "M_a": max_rel(M.numpy(), np.stack([ref_M[h] for h in sorted(ref_M)])),
        "A_res": max_rel(A_np, ref_A),
        "G_h": max_rel(G.numpy(), ref_G),
        "spectrum excess": max(0.0, lam_err - bound),
    }


# --------------------------------------------------------------------------------------------------
# Growth decisions on static operators, exact ties included
# --------------------------------------------------------------------------------------------------

TIE_CASE = ModelSpec(
    cfg=LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5),
    seed=4,
    head_ops=(),
    removed_prototypes=(),
    log_temperatures=(0.0,),
    batch=2,
)


def decision_differences(lam_top: float, theta: float, *, T_d: int, step: int) -> list[str]:
    """The grow phase on the torch backend against :func:`reference.incrt.controller.grow_check` on one static
    operator ``A_res = diag(lam_top, lam_top/2, 0, −lam_top/4)``, whose eigenvalues ``eigh`` returns
    exactly in both engines (a diagonal matrix is already reduced), so ``λ_max = θ`` can be an exact
    tie: SPEC §3.2's strict ``>`` must not grow there, and both engines must decide alike."""
    case = TIE_CASE.build()
    cfg = case.cfg
    A = np.diag([lam_top, lam_top / 2.0, 0.0, -lam_top / 4.0])
    growth = initial_state(cfg.d, cfg.K_max)
    gcfg = GrowthConfig(theta=theta, phi_g=0.0, T_d=T_d, T_prune=1, eps_K=0.0)
    ref_growth, ref_events = grow_check(growth, gcfg, A, step, new_head_id=case.params.next_head_id)
    # decisions only: the invariants at a birth read the probe's tokens, which this static operator has not
    ctx = Context(layer_cfg=cfg, train_cfg=TrainConfig(steps=step, T_d=T_d, check_invariants=False), growth_cfg=gcfg)
    t = torch.tensor(A)
    lam, V = torch.linalg.eigh(t)
    stats = acc_gp.Statistics(C=t, M_a=t[None], A_res=t, lam=lam, V=V)
    measured = Measured(  # the spectrum as the torch backend reads it; the rest is not read by the grow phase
        probe=Probe(x=case.x, labels=case.labels),
        C=A,
        A_res=A,
        lam_max=stats.lam_max,
        lam_min=float(stats.lam[0]),
        u_max=stats.u_max(),
        fro=float(np.linalg.norm(A)),
        spectrum=tuple(sorted(np.diag(A).tolist(), reverse=True)),
        head_strength={},
        tau={},
        n_heads=len(case.params.heads),
        n_prototypes=case.params.P.shape[1],
        tokens=np.zeros((0, cfg.d)),  # read only by the invariants, which this context does not check
        collapse=CollapseStatus(cfg.T_P, 0.0, 0.0),
        coupling={},
    )
    es = acc_gp.AcceleratedState(
        params=acc_backward.from_reference(case.params, dtype=torch.float64),
        opt_state=acc_trainer.AcceleratedEngine().optimizer(ctx.train_cfg).init_state(),
        growth=growth,
        Q_cap=torch.zeros((cfg.d, 0), dtype=torch.float64),
        step=step,
        ranks=(0,),
        w_top=torch.ones(cfg.d, dtype=torch.float64),
        w_bottom=torch.ones(cfg.d, dtype=torch.float64),
    )
    out = grow_phase(acc_gp.TORCH_BACKEND, ctx, es, measured)
    births = [e for e in out.events if e.kind is EventKind.BIRTH]
    ref_births = [e for e in ref_events if e.kind is EventKind.BIRTH]
    diffs = []
    if len(births) != len(ref_births):
        diffs.append(f"λ_max = {lam_top!r}, θ = {theta!r}: {len(births)} births, reference {len(ref_births)}")
    if len(out.state.params.heads) != len(ref_growth.heads):
        diffs.append(f"heads after the check: {len(out.state.params.heads)}, reference {len(ref_growth.heads)}")
    if (
        births
        and ref_births
        and max_rel(births[0].u_plus, ref_births[0].u_plus) > tolerance("float64", CheckKind.VALUE).rtol
    ):
        diffs.append("u₊ differs")
    return diffs


def tie_differences() -> list[str]:
    """At, just above and just below an exact tie; at the dwell boundary and one step before it."""
    theta = 0.5
    out: list[str] = []
    for lam in (theta, float(np.nextafter(theta, np.inf)), float(np.nextafter(theta, -np.inf)), 2.0 * theta):
        out += decision_differences(lam, theta, T_d=10, step=10)
    out += decision_differences(2.0 * theta, theta, T_d=10, step=9)
    return out


# --------------------------------------------------------------------------------------------------
# Whole training trajectories
# --------------------------------------------------------------------------------------------------

CHECK_SCALARS = (
    "lam_max",
    "lam_min",
    "fro",
    "oja_lam_gap",
    "oja_cos",
    "exin_lam_gap",
    "exin_cos",
    "collapse_T_c",
    "separation",
    "min_separation",
    "grad_V_norm",
)
CHECK_MAPS = ("head_strength", "tau", "mass", "attention_entropy")


def trajectory_runs(
    run_cfg: TrainConfig = RUN, dtype: torch.dtype = torch.float64, device: str = "cpu", compile: bool = False
) -> tuple[RunRecord, RunRecord]:
    """The reference and the accelerated engine from the same ``rng`` (same batches, probes, births)."""
    ref = small_run(run_cfg)
    acc = acc_trainer.train(
        small_data(), LAYER, run_cfg, rng=np.random.default_rng(TRAIN_SEED), dtype=dtype, device=device, compile=compile
    )
    return ref, acc


def decisions(rec: RunRecord, before: int | None = None) -> list[tuple[int, str, int | None, int | None]]:
    return [
        (e.step, e.kind.value, e.head_id, e.prototype_id)
        for e in rec.events
        if e.kind is not EventKind.NEAR_TIE and (before is None or e.step < before)
    ]


@dataclass(frozen=True)
class TrajectoryComparison:
    """What differed, and the step of the first near-tie where the comparison stopped (SPEC §6)."""

    differences: tuple[str, ...]
    stopped_at: int | None


def first_tie(rec: RunRecord, band: str) -> int | None:
    """The first step at which ``rec`` has a declared near-tie, or — for a lower-precision comparison
    (``band = "float32"``) — a check statistic within that dtype's DECISION row of its threshold
    (``λ_max`` vs θ, ``G_h`` vs φ_g, ``n_j/n`` vs ε_K): there, rounding in the other engine may
    legitimately flip the decision."""
    steps = [e.step for e in rec.events if e.kind is EventKind.NEAR_TIE]
    if band != "float64":
        tol = tolerance(band, CheckKind.DECISION)
        cfg = rec.growth_config
        for c in rec.checks:
            pairs = [(c.lam_max, cfg.theta)] + [(g, cfg.phi_g) for g in c.head_strength.values()]
            pairs += [(m, cfg.eps_K) for m in c.mass.values()]
            if any(tol.allows(a, b) for a, b in pairs):
                steps.append(c.step)
    return min(steps) if steps else None


def compare_trajectories(ref: RunRecord, acc: RunRecord, rtol: float, band: str = "float64") -> TrajectoryComparison:
    """Decisions identical and every loss, check statistic and final parameter within ``rtol`` up to
    the first near-tie (:func:`first_tie` in either record, ``band`` the compared precision); from there
    on nothing is compared (the decision there may legitimately differ) and ``stopped_at`` says where."""
    ties = [t for t in (first_tie(ref, band), first_tie(acc, band)) if t is not None]
    stop = min(ties) if ties else None
    diffs: list[str] = []
    if decisions(acc, stop) != decisions(ref, stop):
        diffs.append(f"decisions: {decisions(acc, stop)} vs reference {decisions(ref, stop)}")
    n = len(ref.losses.L) if stop is None else stop
    for name in LOSS_FIELDS:
        a, b = np.array(getattr(acc.losses, name)[:n]), np.array(getattr(ref.losses, name)[:n])
        if max_rel(a, b) > rtol:
            diffs.append(f"loss {name}: {max_rel(a, b):.2e}")
    for ca, cr in zip(acc.checks, ref.checks, strict=True):
        if stop is not None and cr.step >= stop:
            break
        for f in CHECK_SCALARS:
            a, b = getattr(ca, f), getattr(cr, f)
            if (a is None) != (b is None):
                diffs.append(f"check {cr.step} {f}: {a} vs {b}")
                continue
            if a is None:
                continue
            e = max_rel(np.array(a), np.array(b))
            if e > rtol:
                diffs.append(f"check {cr.step} {f}: {e:.2e}")
        if len(ca.spectrum) != len(cr.spectrum) or max_rel(np.array(ca.spectrum), np.array(cr.spectrum)) > rtol:
            diffs.append(f"check {cr.step} spectrum")
        for f in CHECK_MAPS:
            ma, mr = getattr(ca, f), getattr(cr, f)
            if list(ma) != list(mr) or max_rel(np.array(list(ma.values())), np.array(list(mr.values()))) > rtol:
                diffs.append(f"check {cr.step} {f}")
    if stop is None:
        fa, fr = flatten(acc.final_params), flatten(ref.final_params)
        if list(fa) != list(fr):
            diffs.append(f"final parameter names: {list(fa)} vs {list(fr)}")
        else:
            diffs += [f"final {k}" for k in fr if max_rel(fa[k], fr[k]) > rtol]
        if acc.architecture != ref.architecture:
            diffs.append(f"architecture: {acc.architecture} vs {ref.architecture}")
    return TrajectoryComparison(tuple(diffs), stop)


def run_with(**changes: Any) -> TrainConfig:
    return replace(RUN, **changes)
