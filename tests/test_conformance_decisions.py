"""The kit's decision cases at the boundaries a port gets wrong: each constructed exactly (dyadic
operators and masses, a frozen temperature), its outcome derived by hand here and equal to the golden
vector the reference wrote, and each failed by the planted variant of the rule it pins while the same
port with the rule right passes it."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest

from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.cases import EXACT_C, EXACT_STEP, exact_head_operators
from ddcl_incrt.conformance.runner import golden, run_adapter
from reference.incrt.operators import head_strength, residual_operator
from reference.tolerances import CheckKind, tolerance

# --------------------------------------------------------------------------------------------------
# The outcomes, by hand (the rows of the state after the check, in state order)
# --------------------------------------------------------------------------------------------------

# prune_decision: state.heads rows (head_id, birth_step, below_count)
HEADS_BY_HAND: dict[str, list[list[int]]] = {
    "two_prunes_recomputed": [[0, 0, 0]],
    "three_prunes_recomputed": [[0, 0, 0]],
    "second_prune_blocked": [[0, 0, 0], [2, 20, 2]],
    "last_head_kept": [[0, 0, 2]],
    "min_heads_binds": [[0, 0, 0], [2, 20, 2]],
    "counter_resets_on_recovery": [[0, 0, 0], [1, 20, 0]],
    "weak_since_birth_pruned_at_T_d": [[0, 0, 0]],
    "newborn_in_prune_phase": [[0, 0, 0], [1, 20, 2], [2, EXACT_STEP, 1]],
}

# prototype_prune_decision: state.prototypes rows (prototype_id, low_mass_count)
PROTOTYPES_BY_HAND: dict[str, list[list[int]]] = {
    "floor_by_mass": [[3, 0], [6, 2], [1, 0]],
    "all_idle_last_kept": [[0, 2]],
    "equal_masses_by_id": [[5, 2], [7, 0]],
}

# the statistics each exact prune note states: λ_max(A_res) of a set of heads, and G_h
LAM_BY_HAND: dict[str, dict[tuple[int, ...], float]] = {
    "two_prunes_recomputed": {(0, 1, 2): 0.28125, (0, 2): 0.15625},
    "three_prunes_recomputed": {(0, 1, 2, 3): 0.46875, (0, 2, 3): 0.34375, (0, 3): 0.1875},
    "second_prune_blocked": {(0, 1, 2): 0.53125, (0, 2): 0.65625},
    "newborn_in_prune_phase": {(0, 1, 2): 0.3125, (0, 1): 0.125},
}


def _golden_outputs() -> dict[str, Mapping[str, np.ndarray]]:
    out: dict[str, Mapping[str, np.ndarray]] = {}
    for e in golden():
        assert e.outputs is not None
        out[e.case.check] = e.outputs
    return out


def test_the_golden_decisions_are_the_hand_derived_ones() -> None:
    """The reference's committed outputs equal what the notes derive by hand (so neither the reference
    nor the construction is trusted alone)."""
    outputs = _golden_outputs()
    for name, rows in HEADS_BY_HAND.items():
        assert outputs[f"prune_decision/{name}"]["state.heads"].tolist() == rows, name
    for name, rows in PROTOTYPES_BY_HAND.items():
        assert outputs[f"prototype_prune_decision/{name}"]["state.prototypes"].tolist() == rows, name


def test_the_exact_statistics_are_the_dyadic_values_of_the_notes() -> None:
    """λ_max(A_res) and G_h of the exact cases are the stated dyadic values up to float64 rounding, and
    every comparison of a case is at least 1/32 from its threshold: no CPU's eigh can flip one."""
    rtol = tolerance("float64", CheckKind.VALUE).rtol
    cases = {e.case.check: e.case for e in golden()}
    for name, lams in LAM_BY_HAND.items():
        case = cases[f"prune_decision/{name}"]
        C, Q_cap = case.inputs["C"], case.inputs["state.Q_cap"]
        assert np.array_equal(C, np.diag(np.array(EXACT_C)))
        theta = float(case.scalar("config.theta"))
        for heads, lam in lams.items():
            M = sum((case.inputs[f"M_a.{h}"] for h in heads), np.zeros_like(C))
            got = float(np.linalg.eigvalsh(residual_operator(C, M, Q_cap))[-1])
            assert abs(got - lam) <= rtol, (name, heads, got, lam)
        T_prune, T_d = int(case.scalar("config.T_prune")), int(case.scalar("config.T_d"))
        for h, birth, below in case.inputs["state.heads"].tolist():
            g_h, phi_g = head_strength(C, case.inputs[f"M_a.{h}"]), float(case.scalar("config.phi_g"))
            assert abs(g_h - phi_g) >= 1.0 / 32 - rtol, (name, h)
            eligible = g_h < phi_g and below + 1 >= T_prune and EXACT_STEP - birth >= T_d
            if eligible:  # its hysteresis sums are decided with room too
                assert min(abs(g_h + lam - theta) for lam in lams.values()) >= 1.0 / 32 - rtol, (name, h)


def test_exact_operators_are_those_of_the_notes() -> None:
    """Block (2, 3): G_h = |a| and eigenvalues ±|a|/2; block (0, 1): G_h = |a|√(5/4), eigenvalues ±|a|/4."""
    C, Ms = exact_head_operators(((0, 0, 0, "strong", 0.5), (1, 0, 0, "weak", 0.25)))
    Q = np.zeros((len(EXACT_C), 1))
    Q[-1, 0] = 1.0
    assert head_strength(C, Ms[1]) == 0.25
    assert abs(head_strength(C, Ms[0]) - 0.5 * np.sqrt(1.25)) <= tolerance("float64", CheckKind.VALUE).rtol
    assert np.allclose(np.linalg.eigvalsh(residual_operator(C, Ms[1], Q))[[0, -1]], [-0.125, 0.125], rtol=0, atol=0)
    assert np.allclose(np.linalg.eigvalsh(residual_operator(C, Ms[0], Q))[[0, -1]], [-0.125, 0.125], rtol=0, atol=0)


def test_the_frozen_setting_underflows_without_the_row_shift() -> None:
    """Every D_tj/T_P of the frozen cases exceeds 745, where exp(−x) is 0 in float64 (its smallest
    subnormal is 2^-1074 = e^-744.4), so the unshifted softmax is 0/0 in every row."""
    case = next(e.case for e in golden() if e.case.check == "soft_assignments/frozen")
    D, T_P = case.inputs["D"], float(case.scalar("T_P"))
    assert float(np.min(D / T_P)) > 745.0
    with np.errstate(all="ignore"):
        assert np.all(np.exp(-D / T_P) == 0.0)


# --------------------------------------------------------------------------------------------------
# Each case fails for the planted variant of the rule it pins; the rule written right passes them all
# --------------------------------------------------------------------------------------------------


def _variant(base: type, **switches: object) -> Callable[[], object]:
    return lambda: type(f"Planted{base.__name__}", (base,), dict(switches))()


PLANTED: dict[str, tuple[Callable[[], object], str]] = {
    "soft_assignments/frozen": (_variant(broken._SoftmaxRule, shift=False), "softmax without the row shift"),
    "free_energy/frozen": (_variant(broken._SoftmaxRule, shift=False), "log-sum-exp without the row shift"),
    "prune_decision/two_prunes_recomputed": (
        _variant(broken._PruneRule, recompute_after_removal=False),
        "λ_max of the check's start at every prune",
    ),
    "prune_decision/three_prunes_recomputed": (
        _variant(broken._PruneRule, recompute_after_removal=False),
        "λ_max of the check's start at every prune",
    ),
    "prune_decision/second_prune_blocked": (
        _variant(broken._PruneRule, recompute_after_removal=False),
        "λ_max of the check's start at every prune",
    ),
    "prune_decision/last_head_kept": (_variant(broken._PruneRule, respect_min_heads=False), "min_heads ignored"),
    "prune_decision/min_heads_binds": (_variant(broken._PruneRule, respect_min_heads=False), "min_heads ignored"),
    "prune_decision/counter_resets_on_recovery": (
        _variant(broken._PruneRule, reset_on_recovery=False),
        "count never reset",
    ),
    "prune_decision/too_young": (  # an existing case: a head 5 steps old, weak, counts 1 -> 2
        _variant(broken._PruneRule, count_while_young=False),
        "no count while younger than T_d",
    ),
    "prune_decision/weak_since_birth_pruned_at_T_d": (
        _variant(broken._PruneRule, old_enough=staticmethod(lambda age, T_d: age > T_d)),
        "older than T_d read as >",
    ),
    "prune_decision/newborn_in_prune_phase": (
        _variant(broken._PruneRule, newborn_in_residual=False),
        "the newborn left out of A_res",
    ),
    "prototype_prune_decision/floor_by_mass": (
        _variant(broken._PrototypePruneRule, order="position"),
        "removed by position",
    ),
    "prototype_prune_decision/all_idle_last_kept": (
        _variant(broken._PrototypePruneRule, respect_min_prototypes=False),
        "min_prototypes ignored",
    ),
    "prototype_prune_decision/equal_masses_by_id": (
        _variant(broken._PrototypePruneRule, order="mass_then_position"),
        "a mass tie broken by position",
    ),
}

# more variants each case must catch (a case often pins several details)
ALSO_PLANTED: dict[str, Callable[[], object]] = {
    "prune_decision/newborn_in_prune_phase": _variant(broken._PruneRule, count_while_young=False),
    "prototype_prune_decision/floor_by_mass": _variant(broken._PrototypePruneRule, order="id"),
    "prototype_prune_decision/all_idle_last_kept": _variant(broken._PrototypePruneRule, order="position"),
}


@pytest.mark.parametrize("check", sorted(PLANTED))
def test_each_case_fails_for_the_planted_rule_it_pins(check: str) -> None:
    make, what = PLANTED[check]
    ports = [make()] + ([ALSO_PLANTED[check]()] if check in ALSO_PLANTED else [])
    for port in ports:
        (result,) = run_adapter(port, only=[check]).results  # type: ignore[arg-type]
        assert result.status == "fail", f"{check} does not catch {what}: {result.status} {result.message}"


def test_the_rules_written_right_pass_every_case_of_their_operations() -> None:
    """The planted variants differ from the reference only by their switch: with the defaults they pass."""
    for port, op in (
        (broken._SoftmaxRule(), "soft_assignments/*"),
        (broken._SoftmaxRule(), "free_energy/*"),
        (broken._PruneRule(), "prune_decision/*"),
        (broken._PrototypePruneRule(), "prototype_prune_decision/*"),
    ):
        report = run_adapter(port, only=[op])
        assert {r.status for r in report.results} == {"pass"}, [(r.check, r.message) for r in report.failures]


def test_every_new_boundary_case_is_pinned_by_a_planted_rule() -> None:
    """No exact decision case or frozen temperature case without a bug it is shown to catch."""
    pinned = {f"prune_decision/{n}" for n in HEADS_BY_HAND} | {
        f"prototype_prune_decision/{n}" for n in PROTOTYPES_BY_HAND
    }
    assert pinned <= set(PLANTED)
    assert {"soft_assignments/frozen", "free_energy/frozen"} <= set(PLANTED)


def test_a_transposed_square_P_fails_only_the_square_layer_case() -> None:
    """The square setting is what catches a P read transposed: the port that guesses P's orientation
    from its shape passes every layer case with d ≠ K and fails layer_forward/square_d_K."""
    case = next(e.case for e in golden() if e.case.check == "layer_forward/square_d_K")
    assert case.inputs["params.P"].shape[0] == case.inputs["params.P"].shape[1] == case.scalar("cfg.d")
    report = run_adapter(broken.PrototypesOrientationSniffed(), only=["layer_forward/*"])
    assert [r.check for r in report.failures] == ["layer_forward/square_d_K"]
    assert len(report.results) > 1
