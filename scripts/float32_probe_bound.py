"""Could a growth check's probe run in float32? First-order bounds on the float32 masses' error, against
the error float32 actually makes; prints a table.

    .venv/bin/python scripts/float32_probe_bound.py

The prototype decision compares each mass ``n_j/n`` with ``ε_K``, and must equal the float64 check's
outside the float64 DECISION row (docs/tolerances.md). A float32 probe forward is 4–5× cheaper than the
float64 one at the bench's mid size (docs/performance.md, "The growth check, third pass"), so it could
decide wherever a bound on its masses' error keeps them on the same side of ``ε_K``, and fall back to
float64 elsewhere. This script evaluates a priori, componentwise, first-order error bounds for the
probe forward of :func:`accelerated.growth_phases.probe_forward` done in float32, on the exact (float64)
intermediates: every float32 product ``fl(AB)`` within ``γ_n |A||B|``; each softmax's own rounding
(the subtraction of the row maximum ``u|z − max z|``, ``exp``, sum and division: ``γ_{n+5}``
relative); the layer input, ``q, k, v``, the scores, the attention, ``Y = X + Σ_h A_h v_h W_O^h``, the
logits ``(2yᵀp − ‖p‖²)/T_P`` and the assignments. Two ways of carrying an error through a softmax:

* **shift-blind**: a row within ``A_ts(e_ts + Σ_r A_tr e_tr)`` of its logit errors ``e``;
* **shift-aware**: a softmax ignores a shift common to its row, so an error propagated into the logits
  from the row's common input enters as ``Σ_s A_ts e_ts (v_s − v̄_t)`` in the attention output (``v̄_t =
  Σ_s A_ts v_s``) and as ``Q_tj · 2ΔY_t·(p_j − p̄_t)/T_P`` in the assignments (``p̄_t = Σ_k Q_tk p_k``);
  the logits' own roundings, independent entry by entry, enter shift-blind.

Both are first-order (second-order terms dropped): neither is a certificate a decision could rest on,
but a rigorous bound would be at least as large as its first-order part. The actual error: the same
forward in float32 (the masses summed in float64) against float64. On the bench's initial state of each
size, with ``ε_K`` = 0.01 (the default): the masses whose bound straddles it (a fallback to float64).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from accelerated.growth_phases import DeviceProbe, as_float64, probe_forward
from accelerated.step import head_projections, output_projection
from ddcl_incrt.bench.configs import CHECK_EVERY, D_IN, PROBE_SIZE, BenchConfig, digits, mid
from ddcl_incrt.bench.sections import _check_setup
from reference.train_config import TrainConfig

U32 = 2.0**-24
EPS_K = 0.01  # TrainConfig's default ε_K


def gamma32(m: int) -> float:
    return m * U32 / (1 - m * U32)


def softmax_with_error(Z: Tensor, E: Tensor) -> tuple[Tensor, Tensor]:
    """Rows of ``softmax(Z)`` and the first-order bound on the float32 rows' error, given logit errors ``E``."""
    A = torch.softmax(Z, -1)
    E_ = E + U32 * (Z.max(-1, keepdim=True).values - Z)
    return A, A * (E_ + (A * E_).sum(-1, keepdim=True)) + gamma32(Z.shape[-1] + 5) * A


def mass_bound(cfg: BenchConfig) -> dict[str, float | str]:
    train_cfg = TrainConfig(steps=1, probe_size=PROBE_SIZE, check_every=CHECK_EVERY, check_invariants=False)
    ctx, state, probe = _check_setup(cfg, train_cfg, "cpu")
    dprobe = DeviceProbe.of(probe, "cpu")
    p = as_float64(state.params)
    h, T_P, d, d_k = p.heads, ctx.layer_cfg.T_P, cfg.d, cfg.d_k
    with torch.no_grad():
        x = dprobe.x
        X = x @ p.W_in + p.E_pos[None]
        E_X = gamma32(D_IN + 2) * (x.abs() @ p.W_in.abs() + p.E_pos.abs()[None])  # x rounded to float32 too
        W_q = h.W_Q * (torch.exp(-h.s) / math.sqrt(d_k))[:, None, None]

        def projection(W: Tensor, roundings: int) -> tuple[Tensor, Tensor]:
            value = torch.einsum("btd,hdk->bhtk", X, W)
            abs_x = torch.einsum("btd,hdk->bhtk", X.abs(), W.abs())
            return value, torch.einsum("btd,hdk->bhtk", E_X, W.abs()) + gamma32(d + roundings) * abs_x

        q, E_q = projection(W_q, 5)  # exp(−s)/√d_k and its product with W_Q: five more roundings
        k, E_k = projection(h.W_K, 0)
        v, E_v = projection(h.W_V, 0)
        S = q @ k.transpose(-1, -2)
        kT, E_kT = k.abs().transpose(-1, -2), E_k.transpose(-1, -2)
        E_S = E_q @ kT + q.abs() @ E_kT + gamma32(d_k) * (q.abs() @ kT)
        A, E_A = softmax_with_error(S, E_S)
        o = A @ v
        E_o = E_A @ v.abs() + A @ E_v + gamma32(cfg.T) * (A @ v.abs())
        W_O = h.W_O.reshape(-1, d)
        o_, E_o_ = (t.transpose(1, 2).reshape(X.shape[0], X.shape[1], -1) for t in (o, E_o))
        Uo = o_ @ W_O
        E_U = E_o_ @ W_O.abs() + gamma32(W_O.shape[0]) * (o_.abs() @ W_O.abs())
        Y = (X + Uo).reshape(-1, d)
        E_Y = (E_X + E_U + U32 * (X.abs() + Uo.abs())).reshape(-1, d)
        P = p.P
        pn = (P * P).sum(0)
        z = (2 * Y @ P - pn) / T_P
        E_z = (2 * E_Y @ P.abs() + gamma32(d + 3) * (2 * Y.abs() @ P.abs() + pn)) / T_P
        Q, E_Q = softmax_with_error(z, E_z)
        relative_bound = E_Q.mean(0) / Q.mean(0)
        # shift-aware: the attention's and the assignments' errors through their rows' centred inputs
        E_S_own = E_S + U32 * (S.max(-1, keepdim=True).values - S)
        spread_v = (v[:, :, None, :, :] - o[:, :, :, None, :]).abs()  # |v_s − v̄_t|: B×H×T×T×d_v
        E_o_aware = (
            ((A * E_S_own)[..., None] * spread_v).sum(-2)
            + gamma32(cfg.T + 5) * (A @ v.abs())
            + A @ E_v
            + gamma32(cfg.T) * (A @ v.abs())
        )
        E_U_aware = E_o_aware.transpose(1, 2).reshape(X.shape[0], X.shape[1], -1) @ W_O.abs() + gamma32(
            W_O.shape[0]
        ) * (o_.abs() @ W_O.abs())
        E_Y_aware = (E_X + E_U_aware + U32 * (X.abs() + Uo.abs())).reshape(-1, d)
        spread_p = (P[None, :, :] - (Q @ P.T)[:, :, None]).abs()  # |p_j − p̄_t|: n×d×K
        e_round = gamma32(d + 3) * (2 * Y.abs() @ P.abs() + pn) / T_P + U32 * (z.max(-1, keepdim=True).values - z)
        E_Q_aware = (
            Q * (2 * (E_Y_aware[:, :, None] * spread_p).sum(1) / T_P + e_round + (Q * e_round).sum(-1, keepdim=True))
            + gamma32(P.shape[1] + 5) * Q
        )
        aware = E_Q_aware.mean(0) / Q.mean(0)
        m = Q.mean(0)

        def straddling(rel: Tensor) -> int:
            return int(((m * (1 - rel) <= EPS_K) & (m * (1 + rel) >= EPS_K)).sum())

        # what float32 actually makes
        p32, h32 = state.params, state.params.heads
        X32 = x.float() @ p32.W_in.detach() + p32.E_pos.detach()[None]
        q3, k3, v3 = head_projections(X32, h32.W_Q.detach(), h32.W_K.detach(), h32.W_V.detach(), h32.s.detach())
        att = torch.softmax(q3 @ k3.transpose(-1, -2), -1)
        Y32 = (X32 + output_projection(att @ v3, h32.W_O.detach())).reshape(-1, d)
        P32 = p32.P.detach()
        Q32 = torch.softmax((2 * (Y32 @ P32) - (P32 * P32).sum(0)) / T_P, 1)
        m32 = Q32.sum(0, dtype=torch.float64) / Q32.shape[0]
    _, Y64, Q64, _ = probe_forward(p, ctx, dprobe)
    m64 = Q64.mean(0)
    return {
        "largest score": float(S.abs().max()),
        "score error bound": float(E_S.max()),
        "‖ΔY_t‖ bound": float(E_Y.norm(dim=1).max()),
        "‖ΔY_t‖ actual": float((Y32.double() - Y64).norm(dim=1).max()),
        "logit error bound": float(E_z.max()),
        "mass rel. bound, shift-blind (median)": float(relative_bound.median()),
        "mass rel. bound, shift-blind (max)": float(relative_bound.max()),
        "‖ΔY_t‖ bound, shift-aware": float(E_Y_aware.norm(dim=1).max()),
        "mass rel. bound, shift-aware (median)": float(aware.median()),
        "mass rel. bound, shift-aware (max)": float(aware.max()),
        "mass rel. error actual (max)": float(((m32 - m64).abs() / m64).max()),
        "masses (K) / straddling ε_K: shift-blind, shift-aware": (
            f"{len(m)} / {straddling(relative_bound)}, {straddling(aware)}"
        ),
    }


def main() -> None:
    torch.set_num_threads(1)
    rows = {cfg.label: mass_bound(cfg) for cfg in (digits(1), mid(1))}
    keys = list(next(iter(rows.values())))
    print("| quantity | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in keys:
        print(
            f"| {k} | "
            + " | ".join(v if isinstance(v, str) else f"{v:.3g}" for v in (r[k] for r in rows.values()))
            + " |"
        )


if __name__ == "__main__":
    main()
