"""The accelerated layer (PyTorch) against the reference (NumPy): one generic differential harness.

For hypothesis-generated cases (configurations, parameters reached by growth and prune events, head
temperatures, pruned prototypes, batches — :mod:`ddcl_incrt.strategies.model`): every forward
intermediate, every loss term (D1's decomposition included) and every gradient (autograd against the
reference's hand-derived backward: the third of the three backprop checks) agree. float64 uses the
VALUE row of the tolerance table; ``accelerated/model.py`` mirrors ``reference/model.py`` name for
name and in order. The whole module skips where torch is not installed.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from accelerated import backward as acc_backward  # noqa: E402
from accelerated import growth_statistics as acc_gs  # noqa: E402
from accelerated import model as acc  # noqa: E402
from ddcl_incrt.strategies.model import ModelCase, ModelSpec, model_specs  # noqa: E402
from reference import growth_statistics as rgs  # noqa: E402
from reference.backward import loss_and_gradients  # noqa: E402
from reference.incrt import operators as rops  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FORWARD_FIELDS = ("X", "U", "Y", "D", "Q", "Z", "z_bar", "logits", "log_probs")
LOSS_FIELDS = ("L", "L_task", "L_q", "L_OLS", "V", "F", "H_bar")
# Names only the accelerated engine has, and why: the stacked evaluation of all heads.
ACCELERATED_ONLY = {"stacked_score_operators", "heads_forward"}


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a − b| / max(max|b|, 1)`` (relative to the array's scale, absolute below 1)."""
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))


def _compare(case: ModelCase, dtype: Any) -> dict[str, float]:
    """Worst scaled difference per compared quantity between the two engines."""
    ref_cache, ref_grads = loss_and_gradients(case.params, case.cfg, case.x, case.labels)
    params = acc_backward.from_reference(case.params, dtype=dtype)
    x = torch.tensor(case.x, dtype=dtype)
    labels = torch.tensor(case.labels)
    cache, grads = acc_backward.loss_and_gradients(params, case.cfg, x, labels)
    err: dict[str, float] = {}
    for name in FORWARD_FIELDS:
        err[name] = _max_rel(getattr(cache, name).detach().double().numpy(), getattr(ref_cache, name))
    for hid, hc in cache.heads.items():
        err[f"heads.{hid}.A"] = _max_rel(hc.A.detach().double().numpy(), ref_cache.heads[hid].A)
        err[f"heads.{hid}.out"] = _max_rel(hc.out.detach().double().numpy(), ref_cache.heads[hid].out)
    for name in LOSS_FIELDS:
        err[name] = _max_rel(np.array(float(getattr(cache, name).detach())), np.array(getattr(ref_cache, name)))
    acc_np = acc_backward.to_numpy(grads)
    assert list(acc_np) == list(ref_grads), "gradient names and order must be the reference's"
    for name, g in ref_grads.items():
        err[f"∂L/∂{name}"] = _max_rel(acc_np[name], g)
    return err


@given(spec=model_specs())
def test_float64_forward_losses_and_gradients_agree_with_the_reference(spec: ModelSpec) -> None:
    case = spec.build()
    tol = tolerance("float64", CheckKind.VALUE)
    err = _compare(case, torch.float64)
    bad = {k: v for k, v in err.items() if v > tol.rtol}
    assert not bad, f"{bad} exceed {tol.rtol:g}; repro: {case.repro()}"


@given(spec=model_specs())
def test_float32_forward_losses_and_gradients_agree_with_the_reference(spec: ModelSpec) -> None:
    """float32 against the float64 reference, within the table's float32 VALUE row (an order-of-magnitude
    bound for O(1)-scaled quantities after O(10²) float32 operations; docs/tolerances.md)."""
    case = spec.build()
    tol = tolerance("float32", CheckKind.VALUE)
    err = _compare(case, torch.float32)
    bad = {k: v for k, v in err.items() if v > tol.rtol}
    assert not bad, f"{bad} exceed {tol.rtol:g}; repro: {case.repro()}"


def test_the_differential_harness_fires_on_a_planted_temperature_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta-test: a head temperature applied as τ instead of 1/τ in the stacked heads is found."""
    spec = ModelSpec(
        cfg=acc.LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5),
        seed=1,
        head_ops=(("add", 0),),
        removed_prototypes=(),
        log_temperatures=(0.3, -0.4),
        batch=2,
    )
    case = spec.build()
    real = torch.exp

    class WrongExp:
        def __getattr__(self, name: str) -> Any:
            return getattr(torch, name)

        @staticmethod
        def exp(t: Any) -> Any:
            return real(-t)

    monkeypatch.setattr(acc, "torch", WrongExp())
    err = _compare(case, torch.float64)
    assert max(err.values()) > tolerance("float64", CheckKind.VALUE).rtol


def _public_functions_in_order(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            names.append(node.name)
    return names


def test_accelerated_model_mirrors_the_reference_name_for_name_and_in_order() -> None:
    ref_names = _public_functions_in_order(ROOT / "reference" / "model.py")
    acc_names = [n for n in _public_functions_in_order(ROOT / "accelerated" / "model.py") if n not in ACCELERATED_ONLY]
    ref_names = [n for n in ref_names if n != "LayerConfig"]  # the configuration object is shared, re-exported
    assert acc.LayerConfig is __import__("reference.model", fromlist=["LayerConfig"]).LayerConfig
    assert acc_names == ref_names
    ref_cache_fields = [f.name for f in dataclasses.fields(__import__("reference.model", fromlist=["x"]).ForwardCache)]
    assert [f.name for f in dataclasses.fields(acc.ForwardCache)] == ref_cache_fields


def test_stacked_heads_equal_one_head_at_a_time() -> None:
    """:func:`accelerated.model.heads_forward` (all heads in one batched matmul) is the per-head mirror."""
    case = ModelSpec(
        cfg=acc.LayerConfig(d_in=3, d=5, d_k=2, d_v=3, seq_len=4, K_max=3, n_classes=3, T_P=0.7, lambda_q=0.2),
        seed=5,
        head_ops=(("add", 0), ("add", 0), ("remove", 1)),
        removed_prototypes=(),
        log_temperatures=(0.1, -0.2),
        batch=3,
    ).build()
    params = acc_backward.from_reference(case.params, dtype=torch.float64)
    X = acc.layer_input(params, torch.tensor(case.x))
    stacked = acc.heads_forward(params, X)
    assert list(stacked) == sorted(params.heads)
    tol = tolerance("float64", CheckKind.VALUE)
    for hid, head in params.heads.items():
        one = acc.head_forward(head, X)
        for field in ("M", "A", "values", "out"):
            a, b = getattr(stacked[hid], field).detach().numpy(), getattr(one, field).detach().numpy()
            assert _max_rel(a, b) <= tol.rtol, (hid, field)


# --------------------------------------------------------------------------------------------------
# Growth statistics on the device (C, M_a^h, A_res, G_h, the spectrum) against the reference
# --------------------------------------------------------------------------------------------------


def _compare_growth(case: ModelCase, m: int) -> dict[str, float]:
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
        "C": _max_rel(C.numpy(), ref_C),
        "M_a": _max_rel(M.numpy(), np.stack([ref_M[h] for h in sorted(ref_M)])),
        "A_res": _max_rel(A_np, ref_A),
        "G_h": _max_rel(G.numpy(), ref_G),
        "spectrum excess": max(0.0, lam_err - bound),
    }


@given(spec=model_specs(), data=st.data())
def test_float64_growth_statistics_agree_with_the_reference(spec: ModelSpec, data: st.DataObject) -> None:
    case = spec.build()
    err = _compare_growth(case, data.draw(st.integers(0, case.cfg.d - 1), label="m"))
    bad = {k: v for k, v in err.items() if v > tolerance("float64", CheckKind.VALUE).rtol}
    assert not bad, f"{bad}; repro: {case.repro()}"


def test_the_growth_statistics_harness_fires_on_a_forgotten_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta-test: ``A_res`` formed without ``Π⊥`` (the classic slip) is found."""
    case = ModelSpec(
        cfg=acc.LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=2, n_classes=2, T_P=1.0, lambda_q=0.0),
        seed=3,
        head_ops=(("add", 0),),
        removed_prototypes=(),
        log_temperatures=(0.0, 0.2),
        batch=3,
    ).build()
    right = acc_gs.residual_operator
    monkeypatch.setattr(acc_gs, "residual_operator", lambda C, M_a, Q: right(C, M_a, Q[:, :0]))
    assert _compare_growth(case, 2)["A_res"] > tolerance("float64", CheckKind.VALUE).rtol


def test_the_differential_harness_fires_on_a_missing_term_in_v(monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta-test (one of the issue's planted bugs): ``V`` without its ``q_tj`` weights."""
    case = ModelSpec(
        cfg=acc.LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5),
        seed=2,
        head_ops=(),
        removed_prototypes=(),
        log_temperatures=(0.0,),
        batch=2,
    ).build()

    def unweighted(P: Any, Q: Any) -> Any:
        diff = P.T[None, :, :] - (Q @ P.T)[:, None, :]
        return (diff * diff).sum() / Q.shape[0]

    monkeypatch.setattr(acc, "prototype_variance", unweighted)
    assert _compare(case, torch.float64)["V"] > tolerance("float64", CheckKind.VALUE).rtol
