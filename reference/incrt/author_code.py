"""The growth rule as its author coded it: the growth variant ``author_code`` (docs/studies/planted-heads.md §2.5).

Transcribed from the only public code of the method's author, ``nimzoexin59/incrt-geo-proteins``,
notebook ``incrt_geo_v8.ipynb`` (the growth code is byte-identical in the repository's five notebooks):
cell 5 "Model definitions" (``INCRTConfig``, ``oja_step``, ``mca_exin_step``, ``spectral_gaps``,
``min_dwell_time``, ``project_out``, ``LayerState``, ``try_grow_head``, ``try_prune_heads``) and cell 10
``train_v8_pretrain`` (a check every ``grow_every = 5`` optimiser steps, the calibration). Cells are
counted from 0 in the notebook's JSON. Element by element:

* **Operator and scale** (cell 5 ``compute_Ares``): the author's operator is ``Π⊥ ½(XᵀX M_a + (XᵀX M_a)ᵀ) Π⊥``
  with ``X`` the probe's tokens, unnormalised (``XᵀX``, where the project's ``C = XᵀX/N``). The trackers,
  the gaps and the dwell below act on ``S = N · A_res`` (:func:`author_operator`, ``N`` the probe's
  tokens, :func:`reference.growth_phases.author_scale`): the author's formula on the project's probe,
  so the author's fixed step sizes and absolute constants apply to the operator they were written for;
  decisions compare ``λ̂(S)/N`` with θ (the author's ``θ_w = 0.1 median ‖S‖_F`` is ``N θ``). The
  author's probe is one sequence of 512 tokens, the project's ``probe_size`` sequences: the scale, and
  with it ``η₊(λ_max − λ_min)`` and every dwell, follows the probe.
* **Trackers** (cell 5 ``INCRTConfig.__post_init__``, ``oja_step``, ``mca_exin_step``): fixed steps
  ``η₊ = 1/(10d)``, ``η₋ = η₊/2`` (:func:`author_steps`); **one** step of each per check (cell 5
  ``try_grow_head``), Oja first, then MCA-EXIN with the new ``u₊``; coupled through ``c = u₊ᵀSu₋``
  weighted by ``g* = Δ₊/(Δ₊ + Δ₋ + 10⁻⁸)`` (:func:`gamma_star`), ``Δ₊, Δ₋`` the exact end gaps of ``S`` by
  ``eigvalsh``, each floored at ``10⁻⁸`` (cell 5 ``spectral_gaps``). The MCA-EXIN step carries the extra
  factor ``y = uᵀSu`` (:func:`author_mca_exin_step`), so it is a descent only while ``y > 0``. Not
  corrected here.
* **Growth condition** (cell 5 ``try_grow_head``; ``φ_w = 0.5 θ_w`` in ``INCRTConfig.calibrate``): the
  trackers' Rayleigh quotients after the step, ``λ̂_max > θ`` **and** ``λ̂_min < θ/2``
  (:func:`author_grow_decision`). The captured direction is the tracker's ``u₊``, not the exact
  eigenvector.
* **Re-draw** (cell 5 ``try_grow_head`` after a birth; ``project_out``): both tracker vectors are drawn
  anew, ``u₊ = Π⊥ν/‖·‖``, ``u₋`` projected out of ``[Q_cap, u₊]`` (:func:`redraw_trackers`); at the start
  (cell 5 ``LayerState``) ``u₋`` is orthogonalised against ``u₊`` (:func:`initial_trackers`).
* **Growth dwell** (cell 5 ``min_dwell_time``, ``try_grow_head``): ``T_d = ⌈κ_T/(η₊Δ₊²) · ln(1/ε)⌉``
  *checks* with ``κ_T = 2``, ``ε = 0.05``, ``Δ₊`` this check's gap (10 000 when ``Δ₊ < 10⁻⁸``,
  unreachable behind the floor); no birth while ``checks since the last birth < T_d``; the last birth is
  at check −10 000 before the first (cell 5 ``LayerState.last_trigger_step``), so the first birth is not
  delayed by any dwell below 10 000 checks.
* **Pruning** (cell 5 ``try_prune_heads``; ``T_prune = 100`` in ``INCRTConfig``): a constant prune dwell
  ``T_d(η₊, Δ = 0.1)`` checks (:func:`author_prune_dwell`); a head younger than it has its counter reset
  to 0 and is not measured; otherwise the counter of checks with ``G_h < φ_g`` (``φ_g = 0.01 θ``) grows,
  and a head whose counter reaches 100 is pruned. No hysteresis, no minimum head count, every such head
  at once (:func:`author_prune_decision`).

Not part of the variant (the project's, kept): the fixed probe (the author's is the batch's first
sequence with dropout on), the way heads combine (``LayerNorm(X + mean_h out_h)`` in cell 5
``INCRTForMLM.forward``), the check interval ``g`` (``TrainConfig.check_every``), ``max_heads``, the
newborn's initialisation and the prototype rule. Ages and dwells are counted in checks, ``(step −
step₀)/g``; the initial head counts as born at step 0 (the author's at check 0, one check earlier):
irrelevant beside a prune dwell of ≥ 10⁵ checks.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from jaxtyping import Float64

from reference._arrays import F64Array, arr, check_array, check_count, check_dim, check_positive, check_real, f64
from reference.incrt.capture import append_direction
from reference.incrt.controller import (
    EventKind,
    GrowthConfig,
    GrowthEvent,
    GrowthState,
    HeadRecord,
    _near_tie_event,
)
from reference.incrt.operators import check_symmetric, frobenius, is_near_tie

# cell 5 INCRTConfig: kappa_T, eps_conv, T_prune; spectral_gaps' floor; LayerState.last_trigger_step
KAPPA_T = 2.0
EPS_CONV = 0.05
T_PRUNE = 100
GAP_FLOOR = 1e-8
NEVER_TRIGGERED = -10_000
PRUNE_DWELL_GAP = 0.1  # try_prune_heads: min_dwell_time(cfg.eta_plus, 0.1, ...)
PHI_W_FACTOR = 0.5  # INCRTConfig.calibrate: phi_w = 0.50 · theta_w, the λ̂_min gate


def author_steps(d: int) -> tuple[float, float]:
    """``(η₊, η₋) = (1/(10d), η₊/2)`` (cell 5 ``INCRTConfig.__post_init__``)."""
    d_ = check_count("d", d, 1)
    eta_plus = 1.0 / (10 * d_)
    return eta_plus, eta_plus / 2


def author_operator(A_res: Float64[np.ndarray, "d d"], scale: int) -> F64Array:
    """``S = N · A_res``: the author's unnormalised operator on ``X``, the probe's ``N`` tokens
    (cell 5 ``compute_Ares`` uses ``XᵀX``, the project ``C = XᵀX/N``)."""
    return arr(check_count("scale", scale, 1) * check_symmetric("A_res", A_res))


def spectral_gaps(spectrum_desc: Float64[np.ndarray, " d"]) -> tuple[float, float]:
    """``(Δ₊, Δ₋) = (max(λ_1 − λ_2, 10⁻⁸), max(λ_{d−1} − λ_d, 10⁻⁸))`` of a spectrum in non-increasing
    order; ``(10⁻⁸, 10⁻⁸)`` for d < 2 (cell 5 ``spectral_gaps``)."""
    lam = check_array("spectrum_desc", spectrum_desc, 1)
    if lam.shape[0] < 2:
        return GAP_FLOOR, GAP_FLOOR
    return max(f64(lam[0] - lam[1]), GAP_FLOOR), max(f64(lam[-2] - lam[-1]), GAP_FLOOR)


def gamma_star(delta_plus: float, delta_minus: float) -> float:
    """``g* = Δ₊/(Δ₊ + Δ₋ + 10⁻⁸)`` (cell 5 ``try_grow_head``)."""
    return check_real("delta_plus", delta_plus) / (check_real("delta_minus", delta_minus) + delta_plus + 1e-8)


def min_dwell_time(eta: float, delta: float, eps: float = EPS_CONV, kappa_T: float = KAPPA_T) -> int:
    """``⌈κ_T/(ηΔ²) · ln(1/ε)⌉``, or 10 000 when ``Δ < 10⁻⁸`` (cell 5 ``min_dwell_time``, same order of
    operations)."""
    e, dl = check_positive("eta", eta), check_real("delta", delta)
    if dl < 1e-8:
        return 10000
    return math.ceil(kappa_T / (e * dl**2) * math.log(1.0 / eps))


def author_prune_dwell(d: int) -> int:
    """The constant prune dwell ``T_d(η₊, Δ = 0.1)`` in checks (cell 5 ``try_prune_heads``): 95 864 at
    d = 16, 1 533 815 at the author's d = 256."""
    return min_dwell_time(author_steps(d)[0], PRUNE_DWELL_GAP)


def _normalize(v: F64Array) -> F64Array:
    """``F.normalize(v, dim=0)``: ``v / max(‖v‖, 10⁻¹²)``."""
    return arr(v / max(float(np.sqrt(v @ v)), 1e-12))


def author_oja_step(
    u_plus: F64Array, u_minus: F64Array, S: F64Array, eta: float, gstar: float
) -> Float64[np.ndarray, " d"]:
    """``normalize(u₊ + η((Su₊ − Ru₊) − (1 − g*) c u₋))``, ``R = u₊ᵀSu₊``, ``c = u₊ᵀSu₋`` (cell 5 ``oja_step``)."""
    Au = S @ u_plus
    R = f64(u_plus @ Au)
    coupling = f64(u_plus @ (S @ u_minus))
    return _normalize(arr(u_plus + eta * ((Au - R * u_plus) - (1 - gstar) * coupling * u_minus)))


def author_mca_exin_step(
    u_minus: F64Array, u_plus: F64Array, S: F64Array, eta: float, gstar: float
) -> Float64[np.ndarray, " d"]:
    """Cell 5 ``mca_exin_step``: ``y = u₋ᵀSu₋``, ``u' = u₋ − (ηy/‖u₋‖²)(Su₋ − (y/‖u₋‖²)u₋) + η g*(1 − g*) c u₊``
    with ``c = u₊ᵀSu₋``; normalised, orthogonalised against ``u₊``, normalised again."""
    nrm = f64(u_minus @ u_minus)
    Au = S @ u_minus
    y = f64(u_minus @ Au)
    mca = (eta * y / nrm) * (Au - (y / nrm) * u_minus)
    coupling = f64(u_plus @ (S @ u_minus))
    u_new = _normalize(arr(u_minus - mca + eta * gstar * (1 - gstar) * coupling * u_plus))
    u_new = arr(u_new - f64(u_new @ u_plus) * u_plus)
    return _normalize(u_new)


def author_track(
    S: Float64[np.ndarray, "d d"],
    u_plus: Float64[np.ndarray, " d"],
    u_minus: Float64[np.ndarray, " d"],
    spectrum_desc: Float64[np.ndarray, " d"],
) -> tuple[F64Array, F64Array]:
    """One check's tracker update (cell 5 ``try_grow_head``): ``g*`` from the exact gaps of ``S``
    (``spectrum_desc``, its eigenvalues), one Oja step, then one MCA-EXIN step with the new ``u₊``."""
    S_ = check_symmetric("S", S)
    d = S_.shape[0]
    up, um = check_array("u_plus", u_plus, 1), check_array("u_minus", u_minus, 1)
    check_dim("u_plus", up, 0, d, "S's width d")
    check_dim("u_minus", um, 0, d, "S's width d")
    eta_plus, eta_minus = author_steps(d)
    g = gamma_star(*spectral_gaps(spectrum_desc))
    up_new = author_oja_step(up, um, S_, eta_plus, g)
    return up_new, author_mca_exin_step(um, up_new, S_, eta_minus, g)


def project_out(v: F64Array, Q: F64Array) -> F64Array:
    """``normalize(v − Q Qᵀv)``; ``v`` itself when ``Q`` has no columns (cell 5 ``project_out``)."""
    if Q.shape[1] == 0:
        return v
    return _normalize(arr(v - Q @ (Q.T @ v)))


def initial_trackers(rng: np.random.Generator, d: int) -> tuple[F64Array, F64Array]:
    """Cell 5 ``LayerState.__init__``: ``u₊ = normalize(ν)``, ``u₋ = normalize(ν' − (ν'ᵀu₊)u₊)``."""
    u_plus = _normalize(arr(rng.standard_normal(d)))
    u_minus = _normalize(arr(rng.standard_normal(d)))
    return u_plus, orthogonalised(u_minus, u_plus)


def orthogonalised(u_minus: F64Array, u_plus: F64Array) -> F64Array:
    """``normalize(u₋ − (u₋ᵀu₊)u₊)`` (cell 5 ``LayerState.__init__``)."""
    return _normalize(arr(u_minus - f64(u_minus @ u_plus) * u_plus))


def redraw_rng(seed: int, head_id: int) -> np.random.Generator:
    """The generator of the re-draw after head ``head_id``'s birth: ``default_rng([seed, head_id, 11])``."""
    return np.random.default_rng([seed, head_id, 11])


def redraw_trackers(rng: np.random.Generator, Q_cap: Float64[np.ndarray, "d m"]) -> tuple[F64Array, F64Array]:
    """Cell 5 ``try_grow_head`` after a birth: ``u₊ = project_out(normalize(ν), Q)``,
    ``u₋ = project_out(normalize(ν'), [Q, u₊])`` with ``Q`` including the newborn's direction."""
    Q = check_array("Q_cap", Q_cap, 2, allow_empty=True)
    d = Q.shape[0]
    u_plus = project_out(_normalize(arr(rng.standard_normal(d))), Q)
    u_minus = project_out(_normalize(arr(rng.standard_normal(d))), arr(np.column_stack([Q, u_plus])))
    return u_plus, u_minus


def checks_since(step: int, since: int, check_every: int) -> int:
    """Checks between the check at ``since`` and the one at ``step`` (checks every ``check_every`` steps)."""
    return (step - since) // check_every


def author_growth_dwell(state: GrowthState, step: int, check_every: int) -> int:
    """Checks since the last birth, ``10 000 + (checks so far − 1)`` before the first one (the author's
    ``last_trigger_step = −10 000`` at its check index 0, the project's first check)."""
    if state.m == 0:
        return step // check_every - 1 - NEVER_TRIGGERED
    return checks_since(step, state.last_growth_step, check_every)


def author_grow_decision(
    state: GrowthState,
    config: GrowthConfig,
    estimates: tuple[float, float, Float64[np.ndarray, " d"]],
    delta_plus: float,
    step: int,
    *,
    d: int,
    check_every: int,
    new_head_id: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """Cell 5 ``try_grow_head``'s decision as a pure function: ``estimates = (λ̂_max, λ̂_min, u₊)``, the
    trackers' Rayleigh quotients after this check's step (on ``A_res``'s scale: ``λ̂(S)/N``) and ``u₊``;
    ``delta_plus`` the exact top gap ``Δ₊`` of ``S`` (floored, :func:`spectral_gaps`). Grow when the
    checks since the last birth reach ``T_d = min_dwell_time(η₊, Δ₊)`` and ``λ̂_max > θ`` and
    ``λ̂_min < θ/2`` (and fewer than d directions are captured); the tracker's ``u₊`` is appended to
    ``Q_cap``. Near-ties of both comparisons are reported (``grow``, ``grow_lambda_min``)."""
    lam_max, lam_min = check_real("estimates[0]", estimates[0]), check_real("estimates[1]", estimates[1])
    u = check_array("estimates[2]", estimates[2], 1)
    check_dim("estimates[2]", u, 0, state.d, "the model width d (state.Q_cap)")
    s = check_count("step", step, 0)
    g = check_count("check_every", check_every, 1)
    hid = check_count("new_head_id", new_head_id, 0)
    if hid in state.head_ids:
        raise ValueError(f"new_head_id: {hid} names an active head {state.head_ids}")
    theta, gate = config.theta, PHI_W_FACTOR * config.theta
    events: list[GrowthEvent] = []
    if is_near_tie(lam_max, theta):
        events.append(_near_tie_event(s, "grow", lam_max, theta, lam_max - theta))
    if is_near_tie(lam_min, gate):
        events.append(_near_tie_event(s, "grow_lambda_min", lam_min, gate, gate - lam_min))
    T_d = min_dwell_time(author_steps(d)[0], delta_plus)
    if author_growth_dwell(state, s, g) < T_d:
        return state, tuple(events)
    if lam_max > theta and lam_min < gate and state.m < state.d and frobenius(u) > 0.0:
        Q = append_direction(state.Q_cap, u)
        u_new = arr(Q[:, -1].copy())
        events.append(
            GrowthEvent(
                s,
                EventKind.BIRTH,
                lam_max,
                theta,
                lam_max - theta,
                "grow",
                head_id=hid,
                u_plus=u_new,
                lam_birth=lam_max,
            )
        )
        state = replace(state, Q_cap=Q, last_growth_step=s, heads=(*state.heads, HeadRecord(hid, s)))
    return state, tuple(events)


def author_prune_decision(
    state: GrowthState,
    config: GrowthConfig,
    strengths: dict[int, float],
    step: int,
    *,
    d: int,
    check_every: int,
) -> tuple[GrowthState, tuple[GrowthEvent, ...]]:
    """Cell 5 ``try_prune_heads`` as a pure function of ``G_h = ‖C M_a^h‖_F`` (the author's
    ``‖XᵀX M_a^h‖_F`` over ``N``, compared with ``φ_g = 0.01 θ`` on the same scale): a head younger than
    the prune dwell (:func:`author_prune_dwell` checks) has its counter reset and is not measured;
    otherwise the counter counts consecutive checks with ``G_h < φ_g``; every head whose counter reaches
    ``T_PRUNE = 100`` is removed. No hysteresis, no minimum head count, no ordering. ``Q_cap`` unchanged."""
    s = check_count("step", step, 0)
    g = check_count("check_every", check_every, 1)
    if set(strengths) != set(state.head_ids):
        raise ValueError(
            f"strengths: keys must be the active head ids {sorted(state.head_ids)}, got {sorted(strengths)}"
        )
    dwell = author_prune_dwell(d)
    events: list[GrowthEvent] = []
    kept: list[HeadRecord] = []
    for rec in state.heads:
        if checks_since(s, rec.birth_step, g) < dwell:
            kept.append(replace(rec, below_count=0))
            continue
        gh = check_real(f"strengths[{rec.head_id}]", strengths[rec.head_id])
        if is_near_tie(gh, config.phi_g):
            events.append(_near_tie_event(s, "head_prune", gh, config.phi_g, config.phi_g - gh, head_id=rec.head_id))
        rec = replace(rec, below_count=rec.below_count + 1 if gh < config.phi_g else 0)
        if rec.below_count >= T_PRUNE:
            events.append(
                GrowthEvent(
                    s, EventKind.HEAD_PRUNE, gh, config.phi_g, config.phi_g - gh, "head_prune", head_id=rec.head_id
                )
            )
            continue
        kept.append(rec)
    return replace(state, heads=tuple(kept)), tuple(events)


__all__ = [
    "EPS_CONV",
    "GAP_FLOOR",
    "KAPPA_T",
    "NEVER_TRIGGERED",
    "PHI_W_FACTOR",
    "PRUNE_DWELL_GAP",
    "T_PRUNE",
    "author_grow_decision",
    "author_growth_dwell",
    "author_mca_exin_step",
    "author_oja_step",
    "author_operator",
    "author_prune_decision",
    "author_prune_dwell",
    "author_steps",
    "author_track",
    "checks_since",
    "gamma_star",
    "initial_trackers",
    "min_dwell_time",
    "orthogonalised",
    "project_out",
    "redraw_rng",
    "redraw_trackers",
    "spectral_gaps",
]
