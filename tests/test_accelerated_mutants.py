"""The mutation self-test of the accelerated path: each planted bug is one a port author makes, and
the differential harness (``tests/_accelerated_harness.py``) must find every one of them.

Each bug is planted with ``monkeypatch`` into the accelerated modules only (the reference is the
comparison point and stays intact), then the harness that covers that layer of the product runs:
the layer (forward, losses, gradients), the growth statistics, the growth decisions on static
operators (exact ties, the dwell boundary) or a whole training trajectory.

The decisions themselves (the dwell, the strict ``>`` at θ, hysteresis) are no longer the accelerated
path's: both engines run the one check of :mod:`reference.growth_phases` over their backends, so a bug
there is a reference mutant (``scripts/mutation/mutants.toml``, the ``ctl-`` ids). What the torch
backend can still get wrong in a decision is what it measures: which end of ``eigh`` it reads.
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
from accelerated.optim import HeadMoments  # noqa: E402
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


def top_from_wrong_end(mp: pytest.MonkeyPatch) -> None:
    """``λ_max`` read from the wrong end of ``eigh``'s ascending eigenvalues (``lam[0]``)."""
    mp.setattr(acc_gp.Statistics, "lam_max", property(lambda self: float(self.lam[0])))


def u_plus_from_wrong_column(mp: pytest.MonkeyPatch) -> None:
    """``u₊`` taken from the first eigenvector column (the bottom one) instead of the last."""

    def u_min(self: Any) -> np.ndarray:
        u = acc_gp.to_host(self.V[:, 0])
        i = int(np.argmax(np.abs(u)))
        return u if u[i] >= 0.0 else -u

    mp.setattr(acc_gp.Statistics, "u_max", u_min)


def stale_captured_basis(mp: pytest.MonkeyPatch) -> None:
    """The device's copy of ``Q_cap`` not updated at a birth (the next checks project with the old basis)."""
    right = acc_gp.TorchBackend.with_growth

    def stale(self: Any, state: Any, growth: Any, ranks: Any) -> Any:
        return replace(right(self, state, growth, ranks), Q_cap=state.Q_cap)

    mp.setattr(acc_gp.TorchBackend, "with_growth", stale)


def optimiser_state_lost_at_birth(mp: pytest.MonkeyPatch) -> None:
    """Adam's moments restarted when a head is born (as a careless rebuild of the optimiser does)."""
    right = acc_gp.TorchBackend.add_head

    def forgetful(self: Any, ctx: Any, state: Any, head: Any, rng: Any) -> Any:
        out, hid = right(self, ctx, state, head, rng)
        # every moment and count back to zero, the stacked heads' included (rows for the new head count)
        fresh = replace(out.opt_state.without(out.opt_state.moments), heads=HeadMoments.zeros(out.params.heads))
        return replace(out, opt_state=fresh), hid

    mp.setattr(acc_gp.TorchBackend, "add_head", forgetful)


PLANTED: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], Callable[[], bool]]] = {
    "wrong temperature scaling": (wrong_temperature, _model_found),
    "missing term in V": (missing_term_in_v, _model_found),
    "forgotten projection Π⊥": (forgotten_projection, _growth_found),
    "λ_max from the wrong end of eigh": (top_from_wrong_end, _ties_found),
    "u₊ from the wrong eigenvector": (u_plus_from_wrong_column, _trajectory_found),
    "stale captured basis": (stale_captured_basis, _trajectory_found),
    "optimiser state lost at a birth": (optimiser_state_lost_at_birth, _trajectory_found),
}


@pytest.mark.parametrize("name", list(PLANTED))
def test_the_differential_suite_finds_the_planted_bug(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plant, found = PLANTED[name]
    assert not found(), f"the harness must be clean before {name!r} is planted"
    plant(monkeypatch)
    assert found(), f"planted bug {name!r} went unnoticed"
