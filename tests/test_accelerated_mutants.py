"""The mutation self-test of the accelerated path: each planted bug is one a port author makes, and
the differential harness (``tests/_accelerated_harness.py``) must find every one of them.

Each bug is planted with ``monkeypatch`` into the accelerated modules only (the reference is the
comparison point and stays intact), then the harness that covers that layer of the product runs:
the layer (forward, losses, gradients), the growth statistics, the growth decisions on static
operators (exact ties, the dwell boundary) or a whole training trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _accelerated_harness import (  # noqa: E402
    compare_growth,
    compare_model,
    compare_trajectories,
    tie_differences,
    trajectory_runs,
)

from accelerated import growth_phases as acc_gp  # noqa: E402
from accelerated import growth_statistics as acc_gs  # noqa: E402
from accelerated import model as acc  # noqa: E402
from ddcl_incrt.strategies.model import ModelSpec  # noqa: E402
from reference.model import LayerConfig  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402

VALUE = tolerance("float64", CheckKind.VALUE).rtol
SMALL = LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5)


def _two_heads() -> Any:
    return ModelSpec(
        cfg=SMALL, seed=1, head_ops=(("add", 0),), removed_prototypes=(), log_temperatures=(0.3, -0.4), batch=2
    ).build()


def _model_found() -> bool:
    return max(compare_model(_two_heads(), torch.float64).values()) > VALUE


def _growth_found() -> bool:
    return max(compare_growth(_two_heads(), 2).values()) > VALUE


def _ties_found() -> bool:
    return tie_differences() != []


def _trajectory_found() -> bool:
    """A disagreement, or the accelerated run refused by one of the reference's checks on the way (e.g.
    G1's orthogonality test in ``append_direction``): a bug that stops the run loudly is found too."""
    try:
        ref, out = trajectory_runs()
    except (ValueError, RuntimeError):
        return True
    return compare_trajectories(ref, out, VALUE).differences != ()


# ---- the planted bugs ------------------------------------------------------------------------------


def wrong_temperature(mp: pytest.MonkeyPatch) -> None:
    """``M_h`` scaled by ``τ_h`` instead of ``1/τ_h`` (``exp(s)`` for ``exp(−s)``)."""
    real = torch.exp

    class WrongExp:
        def __getattr__(self, name: str) -> Any:
            return getattr(torch, name)

        @staticmethod
        def exp(t: Any) -> Any:
            return real(-t)

    mp.setattr(acc, "torch", WrongExp())


def missing_term_in_v(mp: pytest.MonkeyPatch) -> None:
    """``V`` without its ``q_tj`` weights."""

    def unweighted(P: Any, Q: Any) -> Any:
        diff = P.T[None, :, :] - (Q @ P.T)[:, None, :]
        return (diff * diff).sum() / Q.shape[0]

    mp.setattr(acc, "prototype_variance", unweighted)


def forgotten_projection(mp: pytest.MonkeyPatch) -> None:
    """``A_res`` formed without ``Π⊥`` (the captured directions not projected out)."""
    right = acc_gs.residual_operator
    mp.setattr(acc_gs, "residual_operator", lambda C, M_a, Q: right(C, M_a, Q[:, :0]))


def dwell_off_by_one(mp: pytest.MonkeyPatch) -> None:
    """The dwell test as ``step − last > T_d`` instead of ``≥`` (one step too long)."""
    right = acc_gp.grow_decision

    def late(state: Any, config: Any, top: Any, step: int, **kw: Any) -> Any:
        return right(state, replace(config, T_d=config.T_d + 1), top, step, **kw)

    mp.setattr(acc_gp, "grow_decision", late)


def threshold_ge(mp: pytest.MonkeyPatch) -> None:
    """Grow at ``λ_max ≥ θ`` instead of ``λ_max > θ``."""
    right = acc_gp.grow_decision

    def ge(state: Any, config: Any, top: Any, step: int, **kw: Any) -> Any:
        lam, u = top
        if lam == config.theta:
            lam = float(np.nextafter(lam, np.inf))
        return right(state, config, (lam, u), step, **kw)

    mp.setattr(acc_gp, "grow_decision", ge)


def stale_captured_basis(mp: pytest.MonkeyPatch) -> None:
    """The device's copy of ``Q_cap`` not updated at a birth (the next checks project with the old basis)."""
    right = acc_gp.grow_phase

    def stale(ctx: Any, state: Any, stats: Any) -> Any:
        out = right(ctx, state, stats)
        return replace(out, state=replace(out.state, Q_cap=state.Q_cap))

    mp.setattr(acc_gp, "grow_phase", stale)


def optimiser_state_lost_at_birth(mp: pytest.MonkeyPatch) -> None:
    """Adam's moments restarted when a head is born (as a careless rebuild of the optimiser does)."""
    right = acc_gp.grow_phase

    def forgetful(ctx: Any, state: Any, stats: Any) -> Any:
        out = right(ctx, state, stats)
        if len(out.state.params.heads) > len(state.params.heads):
            fresh = type(state.opt_state)() if not hasattr(state.opt_state, "moments") else type(state.opt_state)({})
            return replace(out, state=replace(out.state, opt_state=fresh))
        return out

    mp.setattr(acc_gp, "grow_phase", forgetful)


PLANTED: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], Callable[[], bool]]] = {
    "wrong temperature scaling": (wrong_temperature, _model_found),
    "missing term in V": (missing_term_in_v, _model_found),
    "forgotten projection Π⊥": (forgotten_projection, _growth_found),
    "dwell time off by one": (dwell_off_by_one, _trajectory_found),
    "> vs ≥ at the threshold": (threshold_ge, _ties_found),
    "stale captured basis": (stale_captured_basis, _trajectory_found),
    "optimiser state lost at a birth": (optimiser_state_lost_at_birth, _trajectory_found),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_differential_suite_finds_the_planted_bug(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plant, found = PLANTED[name]
    assert not found(), f"the harness must be clean before {name!r} is planted"
    plant(monkeypatch)
    assert found(), f"planted bug {name!r} went unnoticed"
